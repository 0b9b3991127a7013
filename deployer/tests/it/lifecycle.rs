//! `deployer up`, `status` and `down` against a moto server of the test's own: create, no-op,
//! delete and idempotent delete of the network stack (what moto's CloudFormation can run).

use model_doubles::moto::Moto;

use crate::cfn_double::{CfnDouble, Script};
use crate::helpers::{self, Run, deployer, run_with};

/// Moto's environment with only the network stack (and the toolkit) to deploy.
fn aws_env(moto: &Moto) -> Vec<(&'static str, String)> {
    let mut env = helpers::aws_env(moto);
    env.push(("DEPLOY_PROMPT_APP", "no".to_owned()));
    env.push(("DEPLOY_SAGEMAKER_DOMAIN", "no".to_owned()));
    env
}

fn run(dir: &std::path::Path, moto: &Moto, args: &[&str]) -> Run {
    run_with(dir, &aws_env(moto), args)
}

#[test]
fn network_stack_create_noop_status_delete() {
    let moto = Moto::start_blocking();
    let dir = tempfile::tempdir().unwrap();

    let first = run(dir.path(), &moto, &["up", "--require-approval", "never"]);
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    assert!(
        first.stderr.contains("llm-eval-network: CREATE_COMPLETE"),
        "{}",
        first.stderr
    );
    assert!(
        first.stderr.contains("add      Vpc AWS::EC2::VPC"),
        "{}",
        first.stderr
    );

    // Nothing changed: no change set at all.
    let second = run(dir.path(), &moto, &["up", "--outputs-file", "outputs.json"]);
    assert_eq!(second.code, Some(0), "{}", second.stderr);
    assert!(
        second.stderr.contains("llm-eval-network: unchanged"),
        "{}",
        second.stderr
    );
    assert!(!second.stderr.contains("change(s)"), "{}", second.stderr);
    let outputs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("outputs.json")).unwrap()).unwrap();
    assert!(outputs["llm-eval-network"].is_object(), "{outputs}");

    let status = run(dir.path(), &moto, &["status"]);
    assert_eq!(status.code, Some(0), "{}", status.stderr);
    assert!(
        status.stdout.contains("llm-eval-network: CREATE_COMPLETE"),
        "{}",
        status.stdout
    );

    // Without a terminal, `down` needs --force.
    let refused = run(dir.path(), &moto, &["down"]);
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);
    assert!(refused.stderr.contains("--force"), "{}", refused.stderr);
}

/// On a terminal (`script` gives the deployer a pseudo-terminal) the progress is a bar, and the
/// stack's final state still gets a line of its own.
#[test]
fn a_terminal_gets_a_progress_bar() {
    let moto = Moto::start_blocking();
    let dir = tempfile::tempdir().unwrap();
    let command = format!(
        "{} up --require-approval never",
        env!("CARGO_BIN_EXE_deployer")
    );
    let mut env = aws_env(&moto);
    env.push(("TERM", "xterm".to_owned()));
    let env: Vec<(&str, &str)> = env
        .iter()
        .map(|(key, value)| (*key, value.as_str()))
        .collect();
    let mut script = std::process::Command::new("script");
    script
        .args(["--quiet", "--return", "--command", &command, "/dev/null"])
        .current_dir(dir.path())
        .stdin(std::process::Stdio::null());
    for (key, value) in &env {
        script.env(key, value);
    }
    let output = script.output().expect("script (util-linux) runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains("llm-eval-network [") && text.contains("] 0/24 "),
        "a bar: {text}"
    );
    assert!(
        !text.contains("s] llm-eval-network"),
        "no log lines: {text}"
    );
    // What comes before the final state: a line break or a cursor movement of the cleared
    // bar, not the bar's own text.
    let at = text
        .find("llm-eval-network: CREATE_COMPLETE")
        .unwrap_or_else(|| panic!("no final state: {text:?}"));
    let before = &text[..at];
    assert!(
        before.ends_with('\n')
            || before.ends_with('\r')
            || before
                .rfind('\u{1b}')
                .is_some_and(|escape| at - escape <= 4),
        "the final state starts its own line: {text:?}"
    );
}

#[test]
fn down_with_nothing_deployed_succeeds_and_says_so() {
    let moto = Moto::start_blocking();
    let dir = tempfile::tempdir().unwrap();
    let down = run(dir.path(), &moto, &["down", "--force"]);
    assert_eq!(down.code, Some(0), "{}", down.stderr);
    assert!(
        down.stdout.starts_with("nothing to delete"),
        "{}",
        down.stdout
    );
    let status = run(dir.path(), &moto, &["status"]);
    assert!(
        status.stdout.contains("llm-eval-network: not deployed"),
        "{}",
        status.stdout
    );
}

#[test]
fn no_credentials_error_names_how_to_provide_them() {
    let moto = Moto::start_blocking();
    let dir = tempfile::tempdir().unwrap();
    let mut env = aws_env(&moto);
    env.retain(|(key, _)| !key.starts_with("AWS_ACCESS") && !key.starts_with("AWS_SECRET"));
    let env: Vec<(&str, &str)> = env
        .iter()
        .map(|(key, value)| (*key, value.as_str()))
        .collect();
    let up = deployer(dir.path(), &["up"], &env);
    assert_eq!(up.code, Some(1), "{}", up.stderr);
    assert!(up.stderr.contains("aws sso login"), "{}", up.stderr);
}

/// Environment with CloudFormation served by the scripted double and everything else by moto.
fn double_env(moto: &Moto, double: &CfnDouble) -> Vec<(&'static str, String)> {
    let mut env = aws_env(moto);
    env.push(("AWS_ENDPOINT_URL_CLOUDFORMATION", double.url().to_owned()));
    env
}

const VPC: &str = "AWS::EC2::VPC";
const STACK: &str = "AWS::CloudFormation::Stack";

/// Scripted double: a create that fails. The root cause is the VPC's own reason, not the
/// cancellation of the gateway nor the stack's summary event.
#[test]
fn failed_create_reports_the_root_cause() {
    let moto = Moto::start_blocking();
    let double = CfnDouble::start(Script {
        initial: None,
        after_execute: (
            "ROLLBACK_COMPLETE",
            vec![
                (
                    "llm-eval-network",
                    STACK,
                    "CREATE_IN_PROGRESS",
                    "User Initiated",
                ),
                ("Vpc", VPC, "CREATE_IN_PROGRESS", ""),
                (
                    "InternetGateway",
                    "AWS::EC2::InternetGateway",
                    "CREATE_IN_PROGRESS",
                    "",
                ),
                (
                    "Vpc",
                    VPC,
                    "CREATE_FAILED",
                    "The maximum number of VPCs has been reached.",
                ),
                (
                    "InternetGateway",
                    "AWS::EC2::InternetGateway",
                    "CREATE_FAILED",
                    "Resource creation cancelled",
                ),
                (
                    "llm-eval-network",
                    STACK,
                    "ROLLBACK_IN_PROGRESS",
                    "The following resource(s) failed to create: [Vpc, InternetGateway].",
                ),
                ("llm-eval-network", STACK, "ROLLBACK_COMPLETE", ""),
            ],
        ),
        after_delete: (None, Vec::new()),
    });
    let dir = tempfile::tempdir().unwrap();
    let up = run_with(
        dir.path(),
        &double_env(&moto, &double),
        &["up", "--require-approval", "never"],
    );
    assert_eq!(up.code, Some(1), "{}", up.stderr);
    assert!(
        up.stderr.contains("llm-eval-network failed: Vpc (AWS::EC2::VPC): CREATE_FAILED: The maximum number of VPCs has been reached."),
        "{}",
        up.stderr
    );
    assert!(
        up.stderr.contains("final state: ROLLBACK_COMPLETE"),
        "{}",
        up.stderr
    );
    assert!(
        up.stderr.contains("the next `deployer up` deletes it"),
        "{}",
        up.stderr
    );
    // Progress lines (no terminal) show each event with a timestamp.
    assert!(
        up.stderr
            .contains("s] llm-eval-network Vpc AWS::EC2::VPC CREATE_IN_PROGRESS"),
        "{}",
        up.stderr
    );
}

/// Scripted double: a stack left in ROLLBACK_COMPLETE is deleted, then created again.
#[test]
fn rollback_complete_is_deleted_and_created_again() {
    let moto = Moto::start_blocking();
    let double = CfnDouble::start(Script {
        initial: Some("ROLLBACK_COMPLETE"),
        after_execute: (
            "CREATE_COMPLETE",
            vec![
                ("Vpc", VPC, "CREATE_COMPLETE", ""),
                ("llm-eval-network", STACK, "CREATE_COMPLETE", ""),
            ],
        ),
        after_delete: (
            None,
            vec![("llm-eval-network", STACK, "DELETE_COMPLETE", "")],
        ),
    });
    let dir = tempfile::tempdir().unwrap();
    let up = run_with(
        dir.path(),
        &double_env(&moto, &double),
        &["up", "--require-approval", "never"],
    );
    assert_eq!(up.code, Some(0), "{}", up.stderr);
    assert!(
        up.stderr.contains("deleting it to create it again"),
        "{}",
        up.stderr
    );
    let actions = double.actions();
    let delete = actions.iter().position(|a| a == "DeleteStack").unwrap();
    let create = actions.iter().position(|a| a == "CreateChangeSet").unwrap();
    assert!(delete < create, "{actions:?}");
}

/// Scripted double: UPDATE_ROLLBACK_FAILED stops `up` with the ContinueUpdateRollback hint.
#[test]
fn update_rollback_failed_gets_the_continue_hint() {
    let moto = Moto::start_blocking();
    let double = CfnDouble::start(Script {
        initial: Some("UPDATE_ROLLBACK_FAILED"),
        after_execute: ("UPDATE_COMPLETE", Vec::new()),
        after_delete: (None, Vec::new()),
    });
    let dir = tempfile::tempdir().unwrap();
    let up = run_with(
        dir.path(),
        &double_env(&moto, &double),
        &["up", "--require-approval", "never"],
    );
    assert_eq!(up.code, Some(1), "{}", up.stderr);
    assert!(
        up.stderr
            .contains("continue-update-rollback --stack-name llm-eval-network"),
        "{}",
        up.stderr
    );
    assert!(
        !double.actions().iter().any(|a| a == "CreateChangeSet"),
        "{:?}",
        double.actions()
    );
}

/// Scripted double: a deletion that ends in DELETE_FAILED names the resources that blocked it.
#[test]
fn delete_failed_names_the_blocking_resources() {
    let moto = Moto::start_blocking();
    let double = CfnDouble::start(Script {
        initial: Some("CREATE_COMPLETE"),
        after_execute: ("UPDATE_COMPLETE", Vec::new()),
        after_delete: (
            Some("DELETE_FAILED"),
            vec![
                (
                    "llm-eval-network",
                    STACK,
                    "DELETE_IN_PROGRESS",
                    "User Initiated",
                ),
                (
                    "Vpc",
                    VPC,
                    "DELETE_FAILED",
                    "The vpc 'vpc-1' has dependencies and cannot be deleted. (Service: Ec2, Status Code: 400, Error Code: DependencyViolation)",
                ),
                (
                    "llm-eval-network",
                    STACK,
                    "DELETE_FAILED",
                    "The following resource(s) failed to delete: [Vpc].",
                ),
            ],
        ),
    });
    let dir = tempfile::tempdir().unwrap();
    let down = run_with(
        dir.path(),
        &double_env(&moto, &double),
        &["down", "--force"],
    );
    assert_eq!(down.code, Some(1), "{}", down.stderr);
    assert!(down.stderr.contains("llm-eval-network is DELETE_FAILED; blocked by:\n  Vpc: The vpc 'vpc-1' has dependencies"), "{}", down.stderr);
}

#[test]
fn diff_shows_what_up_would_do_and_fail_exits_1() {
    let moto = Moto::start_blocking();
    let dir = tempfile::tempdir().unwrap();
    let before = run(dir.path(), &moto, &["diff", "--fail"]);
    assert_eq!(before.code, Some(1), "{}", before.stderr);
    assert!(
        before
            .stdout
            .contains("llm-eval-network: not deployed; `up` would create it"),
        "{}",
        before.stdout
    );
    let up = run(dir.path(), &moto, &["up", "--require-approval", "never"]);
    assert_eq!(up.code, Some(0), "{}", up.stderr);
    let after = run(dir.path(), &moto, &["diff", "--fail"]);
    assert_eq!(after.code, Some(0), "{}\n{}", after.stdout, after.stderr);
    assert!(
        after
            .stdout
            .contains("llm-eval-network: template unchanged"),
        "{}",
        after.stdout
    );
}

/// Studio hygiene on `down`: CloudFormation is the scripted double (one stack state for both
/// the network and studio stacks: deployed, then gone after DeleteStack), SageMaker's apps,
/// spaces and user profiles the scripted SageMaker double (moto 5.2 has only domains), and the
/// domain's EFS file system, mount target and NFS security groups are real moto resources.
#[test]
fn down_empties_the_studio_domain_and_deletes_its_efs_leftovers() {
    use crate::sagemaker_double::{Domain, SageMakerDouble};
    let moto = Moto::start_blocking();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let config = runtime.block_on(
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(moto.url())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_cognitoidentityprovider::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .load(),
    );
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let efs = aws_sdk_efs::Client::new(&config);
    let domain_id = "d-abc123";
    let (vpc_id, efs_id) = runtime.block_on(async {
        let vpc = ec2
            .create_vpc()
            .cidr_block("10.0.0.0/16")
            .send()
            .await
            .unwrap();
        let vpc_id = vpc.vpc().unwrap().vpc_id().unwrap().to_owned();
        let subnet = ec2
            .create_subnet()
            .vpc_id(&vpc_id)
            .cidr_block("10.0.1.0/24")
            .send()
            .await
            .unwrap();
        let subnet_id = subnet.subnet().unwrap().subnet_id().unwrap().to_owned();
        let mut groups = Vec::new();
        for direction in ["inbound", "outbound"] {
            let group = ec2
                .create_security_group()
                .vpc_id(&vpc_id)
                .group_name(format!("security-group-for-{direction}-nfs-{domain_id}"))
                .description("created by SageMaker")
                .send()
                .await
                .unwrap();
            groups.push(group.group_id().unwrap().to_owned());
        }
        // They reference each other, as SageMaker's do.
        let nfs_from = |group: &str| {
            aws_sdk_ec2::types::IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(2049)
                .to_port(2049)
                .user_id_group_pairs(
                    aws_sdk_ec2::types::UserIdGroupPair::builder()
                        .group_id(group)
                        .build(),
                )
                .build()
        };
        ec2.authorize_security_group_ingress()
            .group_id(&groups[0])
            .ip_permissions(nfs_from(&groups[1]))
            .send()
            .await
            .unwrap();
        ec2.authorize_security_group_egress()
            .group_id(&groups[1])
            .ip_permissions(nfs_from(&groups[0]))
            .send()
            .await
            .unwrap();
        let fs = efs
            .create_file_system()
            .creation_token("studio-home")
            .send()
            .await
            .unwrap();
        let efs_id = fs.file_system_id().to_owned();
        efs.create_mount_target()
            .file_system_id(&efs_id)
            .subnet_id(&subnet_id)
            .security_groups(&groups[0])
            .send()
            .await
            .unwrap();
        (vpc_id, efs_id)
    });
    let sagemaker = SageMakerDouble::start(Domain {
        id: domain_id.into(),
        name: "llm-eval-studio".into(),
        efs_id: efs_id.clone(),
        vpc_id: vpc_id.clone(),
        apps: vec![
            ("default".into(), "shared-space".into(), "InService".into()),
            ("mine".into(), "ada-space".into(), "InService".into()),
        ],
        spaces: vec!["shared-space".into(), "ada-space".into()],
        profiles: vec!["studio-user".into(), "ada".into()],
    });
    let double = CfnDouble::start(Script {
        initial: Some("CREATE_COMPLETE"),
        after_execute: ("UPDATE_COMPLETE", Vec::new()),
        after_delete: (None, Vec::new()),
    });
    let mut env = double_env(&moto, &double);
    env.retain(|(key, _)| *key != "DEPLOY_SAGEMAKER_DOMAIN");
    env.push(("DEPLOY_SAGEMAKER_DOMAIN", "yes".to_owned()));
    env.push(("AWS_ENDPOINT_URL_SAGEMAKER", sagemaker.url().to_owned()));
    let dir = tempfile::tempdir().unwrap();
    let down = run_with(dir.path(), &env, &["down", "--force"]);
    assert_eq!(down.code, Some(0), "{}\n{}", down.stdout, down.stderr);

    // Apps first, then only what CloudFormation does not own (shared-space, studio-user are
    // the stack's).
    assert_eq!(
        sagemaker.calls(),
        [
            "DeleteApp default",
            "DeleteApp mine",
            "DeleteSpace ada-space",
            "DeleteUserProfile ada"
        ],
        "{}",
        down.stderr
    );
    assert_eq!(sagemaker.domain().spaces, ["shared-space"]);
    assert!(
        down.stderr
            .contains(&format!("studio: deleted EFS file system {efs_id}")),
        "{}",
        down.stderr
    );
    assert!(
        down.stderr
            .contains("(security-group-for-inbound-nfs-d-abc123)"),
        "{}",
        down.stderr
    );
    runtime.block_on(async {
        let left = efs.describe_file_systems().send().await.unwrap();
        assert!(left.file_systems().is_empty(), "{left:?}");
        let groups = ec2
            .describe_security_groups()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("vpc-id")
                    .values(&vpc_id)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let names: Vec<&str> = groups
            .security_groups()
            .iter()
            .filter_map(|group| group.group_name())
            .collect();
        assert_eq!(names, ["default"], "only the VPC's default group is left");
    });
    // The stacks were deleted studio first.
    let deletes = double
        .actions()
        .iter()
        .filter(|action| *action == "DeleteStack")
        .count();
    assert_eq!(deletes, 2, "{:?}", double.actions());
    assert!(
        down.stdout
            .contains("deleted llm-eval-studio, llm-eval-network"),
        "{}",
        down.stdout
    );
}

/// With `DEPLOY_KMS_KEY=yes` the network stack creates the key and encrypts the flow log
/// group with it, which moto's CloudFormation and KMS accept.
#[test]
fn network_stack_with_a_key_creates_it() {
    let moto = Moto::start_blocking();
    let dir = tempfile::tempdir().unwrap();
    let mut env = aws_env(&moto);
    env.push(("DEPLOY_KMS_KEY", "yes".to_owned()));
    let up = run_with(dir.path(), &env, &["up", "--require-approval", "never"]);
    assert_eq!(up.code, Some(0), "{}", up.stderr);
    assert!(
        up.stderr.contains("add      EncryptionKey AWS::KMS::Key"),
        "{}",
        up.stderr
    );
    assert!(
        up.stderr.contains("llm-eval-network: CREATE_COMPLETE"),
        "{}",
        up.stderr
    );
}

/// Scripted double (moto cannot delete the network stack's VPC): after `down` of a stack
/// with a created key, the output says the key is kept (retained: a kept table is readable
/// only with it) and how to delete it.
#[test]
fn down_with_a_key_names_the_kept_key() {
    let moto = Moto::start_blocking();
    let double = CfnDouble::start(Script {
        initial: Some("CREATE_COMPLETE"),
        after_execute: ("UPDATE_COMPLETE", Vec::new()),
        after_delete: (None, Vec::new()),
    });
    let dir = tempfile::tempdir().unwrap();
    let mut env = double_env(&moto, &double);
    env.push(("DEPLOY_KMS_KEY", "yes".to_owned()));
    let down = run_with(dir.path(), &env, &["down", "--force"]);
    assert_eq!(down.code, Some(0), "{}", down.stderr);
    assert!(
        down.stdout.contains(
            "kept (retained by design): the customer managed KMS key described `llm-eval: store table, log groups, secrets and Studio domain`"
        ),
        "{}",
        down.stdout
    );
}
