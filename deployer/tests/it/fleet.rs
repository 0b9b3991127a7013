//! `deployer fleet` against one moto server holding several accounts: moto's STS `AssumeRole`
//! into `arn:aws:iam::<account>:role/<name>` returns credentials of that account, so each
//! target's `deployer up` really deploys into its own account. One target fails as a missing or
//! untrusting role does in AWS (AccessDenied from AssumeRole, which moto never refuses: a small
//! STS double in front of moto, `servers::StsDouble`, refuses that one account), and re-runs retry
//! only it, until its role is "fixed" and it succeeds.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use aws_config::SdkConfig;

use crate::helpers::{Run, deployer};
use crate::servers::StsDouble;
use model_doubles::moto::Moto;

fn aws_env(moto: &Moto) -> Vec<(&'static str, String)> {
    let mut env = crate::helpers::aws_env(moto);
    env.push(("DEPLOY_PROMPT_APP", "no".to_owned()));
    env.push(("DEPLOY_SAGEMAKER_DOMAIN", "no".to_owned()));
    env
}

/// `run`, with the app stack in the configuration when `app`.
fn run_with_app(dir: &Path, moto: &Moto, args: &[&str], app: bool) -> Run {
    let mut env = aws_env(moto);
    if app {
        env.retain(|(key, _)| *key != "DEPLOY_PROMPT_APP");
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    deployer(dir, args, &env)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// An SDK configuration with credentials of `account` (assumed through moto's STS).
async fn account_config(moto: &Moto, account: &str, region: &str) -> SdkConfig {
    let base = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(moto.url())
        .region(aws_config::Region::new(region.to_owned()))
        .credentials_provider(aws_sdk_sts::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await;
    let assumed = aws_sdk_sts::Client::new(&base)
        .assume_role()
        .role_arn(format!(
            "arn:aws:iam::{account}:role/OrganizationAccountAccessRole"
        ))
        .role_session_name("test-setup")
        .send()
        .await
        .unwrap();
    let credentials = assumed.credentials().unwrap();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(moto.url())
        .region(aws_config::Region::new(region.to_owned()))
        .credentials_provider(aws_sdk_sts::config::Credentials::new(
            credentials.access_key_id(),
            credentials.secret_access_key(),
            Some(credentials.session_token().to_owned()),
            None,
            "test",
        ))
        .load()
        .await
}

/// Names of the stacks of `account` in `region`.
fn stacks_of(moto: &Moto, account: &str, region: &str) -> Vec<String> {
    runtime().block_on(async {
        let config = account_config(moto, account, region).await;
        let listed = aws_sdk_cloudformation::Client::new(&config)
            .describe_stacks()
            .send()
            .await
            .unwrap();
        let mut names: Vec<String> = listed
            .stacks()
            .iter()
            .filter(|stack| {
                stack.stack_status().map(|status| status.as_str()) == Some("CREATE_COMPLETE")
            })
            .filter_map(|stack| stack.stack_name().map(str::to_owned))
            .collect();
        names.sort();
        names
    })
}

/// The table row of `target` on stdout.
fn row<'a>(stdout: &'a str, target: &str) -> &'a str {
    stdout
        .lines()
        .find(|line| line.starts_with(target))
        .unwrap_or_else(|| panic!("no row for {target} in:\n{stdout}"))
}

const TARGETS: &str = "account_id,region,role_name\n\
    111111111111,us-east-1\n\
    # the second participant's account has its own admin role\n\
    222222222222,eu-west-1,WorkshopAdmin\n\
    333333333333,us-east-1\n";

#[test]
fn fleet_up_deploys_into_each_account_and_a_rerun_retries_only_the_failed_one() {
    let moto = Moto::start_blocking();
    let sts = StsDouble::start(moto.url(), &["333333333333"]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("targets.csv"), TARGETS).unwrap();
    let run = |args: &[&str]| {
        let mut env = aws_env(&moto);
        env.push(("AWS_ENDPOINT_URL_STS", sts.url().to_owned()));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        deployer(dir.path(), args, &env)
    };

    let first = run(&["fleet", "up", "--targets", "targets.csv", "--parallel", "2"]);
    assert_eq!(first.code, Some(1), "{}\n{}", first.stdout, first.stderr);
    assert!(first.stdout.starts_with("TARGET "), "{}", first.stdout);
    assert!(
        row(&first.stdout, "111111111111/us-east-1").contains(" ok "),
        "{}",
        first.stdout
    );
    assert!(
        row(&first.stdout, "222222222222/eu-west-1").contains(" ok "),
        "{}",
        first.stdout
    );
    let failed = row(&first.stdout, "333333333333/us-east-1");
    assert!(failed.contains(" failed "), "{failed}");
    assert!(
        failed
            .contains("assuming role arn:aws:iam::333333333333:role/OrganizationAccountAccessRole"),
        "{failed}"
    );
    assert!(failed.contains("AccessDenied"), "{failed}");
    assert!(
        failed.contains("not authorized to perform: sts:AssumeRole"),
        "{failed}"
    );
    // One line when each target starts and one when it ends.
    for target in [
        "111111111111/us-east-1",
        "222222222222/eu-west-1",
        "333333333333/us-east-1",
    ] {
        assert!(
            first.stderr.contains(&format!("{target}: started")),
            "{}",
            first.stderr
        );
    }
    assert!(
        first.stderr.contains("1 of 3 target(s) failed"),
        "{}",
        first.stderr
    );
    // Each deployment went into its own account (and region), none into the caller's.
    assert_eq!(
        stacks_of(&moto, "111111111111", "us-east-1"),
        ["llm-eval-network"]
    );
    assert_eq!(
        stacks_of(&moto, "222222222222", "eu-west-1"),
        ["llm-eval-network"]
    );
    assert!(stacks_of(&moto, "222222222222", "us-east-1").is_empty());
    assert!(stacks_of(&moto, "123456789012", "us-east-1").is_empty());
    let log = std::fs::read_to_string(dir.path().join("fleet-logs/111111111111-us-east-1-up.log"))
        .unwrap();
    assert!(
        log.contains("to account 111111111111, region us-east-1"),
        "{log}"
    );
    let mode = std::fs::metadata(dir.path().join("fleet-logs/111111111111-us-east-1-up.log"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("targets.state.json")).unwrap())
            .unwrap();
    assert_eq!(
        state["commands"]["up"]["111111111111/us-east-1"]["ok"],
        true
    );
    assert_eq!(
        state["commands"]["up"]["333333333333/us-east-1"]["ok"],
        false
    );

    // The re-run retries only the failed target.
    let second = run(&["fleet", "up", "--targets", "targets.csv"]);
    assert_eq!(second.code, Some(1), "{}\n{}", second.stdout, second.stderr);
    assert!(
        second.stderr.contains("1 target(s) to run, 2 skipped"),
        "{}",
        second.stderr
    );
    assert!(
        second.stderr.contains("333333333333/us-east-1: started"),
        "{}",
        second.stderr
    );
    assert!(
        !second.stderr.contains("111111111111/us-east-1: started"),
        "{}",
        second.stderr
    );
    assert!(
        row(&second.stdout, "111111111111/us-east-1").contains(" skipped"),
        "{}",
        second.stdout
    );
    assert!(
        row(&second.stdout, "333333333333/us-east-1").contains(" failed "),
        "{}",
        second.stdout
    );

    // Once its role can be assumed, the next re-run deploys it (and only it).
    sts.allow_all();
    let third = run(&["fleet", "up", "--targets", "targets.csv"]);
    assert_eq!(third.code, Some(0), "{}\n{}", third.stdout, third.stderr);
    assert!(
        third.stderr.contains("1 target(s) to run, 2 skipped"),
        "{}",
        third.stderr
    );
    assert!(
        row(&third.stdout, "333333333333/us-east-1").contains(" ok "),
        "{}",
        third.stdout
    );
    assert_eq!(
        stacks_of(&moto, "333333333333", "us-east-1"),
        ["llm-eval-network"]
    );
    let fourth = run(&["fleet", "up", "--targets", "targets.csv"]);
    assert_eq!(fourth.code, Some(0), "{}", fourth.stderr);
    assert!(
        fourth.stderr.contains("0 target(s) to run, 3 skipped"),
        "{}",
        fourth.stderr
    );

    // `fleet status` looks at every target.
    let status = run(&["fleet", "status", "--targets", "targets.csv"]);
    assert_eq!(status.code, Some(0), "{}\n{}", status.stdout, status.stderr);
    assert!(
        status.stderr.contains("3 target(s) to run, 0 skipped"),
        "{}",
        status.stderr
    );
    let status_log = std::fs::read_to_string(
        dir.path()
            .join("fleet-logs/222222222222-eu-west-1-status.log"),
    )
    .unwrap();
    assert!(
        status_log.contains("llm-eval-network: CREATE_COMPLETE"),
        "{status_log}"
    );

    // moto cannot delete the network stack: every target fails, each with the deployer's own
    // root cause in the table, and a successful `up` does not make `down` skip anything.
    let down = run(&[
        "fleet",
        "down",
        "--targets",
        "targets.csv",
        "--parallel",
        "3",
    ]);
    assert_eq!(down.code, Some(1), "{}\n{}", down.stdout, down.stderr);
    assert!(
        down.stderr.contains("3 target(s) to run, 0 skipped"),
        "{}",
        down.stderr
    );
    for target in [
        "111111111111/us-east-1",
        "222222222222/eu-west-1",
        "333333333333/us-east-1",
    ] {
        let line = row(&down.stdout, target);
        assert!(line.contains(" failed "), "{line}");
        assert!(line.contains("llm-eval-network"), "{line}");
    }
    assert!(
        down.stderr.contains("3 of 3 target(s) failed"),
        "{}",
        down.stderr
    );
}

#[test]
fn fleet_users_creates_each_participant_in_their_own_account() {
    let moto = Moto::start_blocking();
    let dir = tempfile::tempdir().unwrap();
    let accounts = [
        ("111111111111", "us-east-1", "p1@example.com"),
        ("222222222222", "eu-west-1", "p2@example.com"),
    ];
    // A stand-in app stack in each account: its outputs name a pool made in that account
    // (moto's CloudFormation does not resolve a user pool's Ref).
    let pools: Vec<String> = runtime().block_on(async {
        let mut pools = Vec::new();
        for (account, region, _) in accounts {
            let config = account_config(&moto, account, region).await;
            let pool = aws_sdk_cognitoidentityprovider::Client::new(&config)
                .create_user_pool()
                .pool_name("llm-eval-users")
                .send()
                .await
                .unwrap()
                .user_pool()
                .unwrap()
                .id()
                .unwrap()
                .to_owned();
            let template = serde_json::json!({
                "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
                "Outputs": {
                    "UserPoolId": {"Value": pool},
                    "Url": {"Value": format!("https://{account}.cloudfront.net")},
                },
            });
            aws_sdk_cloudformation::Client::new(&config)
                .create_stack()
                .stack_name("llm-eval-app")
                .template_body(template.to_string())
                .send()
                .await
                .unwrap();
            pools.push(pool);
        }
        pools
    });
    let targets: String = accounts
        .iter()
        .map(|(account, region, email)| format!("{account},{region},,{email}\n"))
        .collect();
    std::fs::write(dir.path().join("targets.csv"), targets).unwrap();

    // Status first records each app's URL, which the credentials file then names.
    let status = run_with_app(
        dir.path(),
        &moto,
        &["fleet", "status", "--targets", "targets.csv"],
        true,
    );
    assert_eq!(status.code, Some(0), "{}\n{}", status.stdout, status.stderr);
    assert!(
        row(&status.stdout, "111111111111/us-east-1")
            .contains("https://111111111111.cloudfront.net"),
        "{}",
        status.stdout
    );

    let users = run_with_app(
        dir.path(),
        &moto,
        &[
            "fleet",
            "users",
            "--targets",
            "targets.csv",
            "--csv",
            "participants.csv",
        ],
        true,
    );
    assert_eq!(users.code, Some(0), "{}\n{}", users.stdout, users.stderr);
    let csv_path = dir.path().join("participants.csv");
    let mode = std::fs::metadata(&csv_path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let text = std::fs::read_to_string(&csv_path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "account_id,region,app_url,email,temporary_password"
    );
    assert_eq!(lines.len(), 3, "{text}");
    let mut passwords = Vec::new();
    for (account, region, email) in accounts {
        let line = lines
            .iter()
            .find(|line| line.starts_with(account))
            .unwrap_or_else(|| panic!("no {account} in {text}"));
        let prefix = format!("{account},{region},https://{account}.cloudfront.net,{email},");
        assert!(line.starts_with(&prefix), "{line}");
        let password = &line[prefix.len()..];
        assert!(password.len() >= 14, "{line}");
        passwords.push(password.to_owned());
    }
    // Each participant exists in their own pool only.
    runtime().block_on(async {
        for ((account, region, email), pool) in accounts.iter().zip(&pools) {
            let config = account_config(&moto, account, region).await;
            let listed = aws_sdk_cognitoidentityprovider::Client::new(&config)
                .list_users()
                .user_pool_id(pool)
                .send()
                .await
                .unwrap();
            let names: Vec<&str> = listed
                .users()
                .iter()
                .filter_map(|user| user.username())
                .collect();
            assert_eq!(names, [*email], "pool of {account}");
        }
    });
    // No password reaches the output, the logs or the state file.
    let mut seen = users.stdout.clone() + &users.stderr;
    for entry in std::fs::read_dir(dir.path().join("fleet-logs")).unwrap() {
        seen.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    seen.push_str(&std::fs::read_to_string(dir.path().join("targets.state.json")).unwrap());
    for password in &passwords {
        assert!(!seen.contains(password.as_str()), "a password leaked");
    }
    // Done targets are not provisioned twice.
    let again = run_with_app(
        dir.path(),
        &moto,
        &[
            "fleet",
            "users",
            "--targets",
            "targets.csv",
            "--csv",
            "participants.csv",
        ],
        true,
    );
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert!(
        again.stderr.contains("0 target(s) to run, 2 skipped"),
        "{}",
        again.stderr
    );
    assert_eq!(std::fs::read_to_string(&csv_path).unwrap(), text);
}

#[test]
fn fleet_targets_errors_name_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("targets.csv"),
        "111111111111,us-east-1\n22222222222x,us-east-1\n",
    )
    .unwrap();
    let out = deployer(
        dir.path(),
        &["fleet", "up", "--targets", "targets.csv"],
        &[],
    );
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert_eq!(
        out.stderr.trim_end(),
        "error: targets.csv:2: account_id: `22222222222x` is not a 12-digit account id"
    );
    std::fs::write(dir.path().join("targets.csv"), "111111111111,us-east-1\n").unwrap();
    let users = deployer(
        dir.path(),
        &[
            "fleet",
            "users",
            "--targets",
            "targets.csv",
            "--csv",
            "p.csv",
        ],
        &[],
    );
    assert_eq!(users.code, Some(2), "{}", users.stderr);
    assert!(
        users.stderr.contains("targets.csv:1: email: missing"),
        "{}",
        users.stderr
    );
    let region = deployer(
        dir.path(),
        &[
            "fleet",
            "up",
            "--targets",
            "targets.csv",
            "--region",
            "us-east-1",
        ],
        &[],
    );
    assert_eq!(region.code, Some(2), "{}", region.stderr);
}

/// `--via bootstrap`: each target deploys cfn_bootstrap.yaml and follows its build, nothing is
/// built locally. CloudFormation and CodeBuild are the scripted doubles of the bootstrap tests
/// (one stack, so one target), STS is moto.
#[test]
fn fleet_up_via_bootstrap_deploys_the_bootstrap_stack_in_the_target() {
    use crate::cfn_double::{CfnDouble, Script};
    use crate::servers::CodeBuildDouble;

    let moto = Moto::start_blocking();
    let cfn = CfnDouble::start(Script {
        initial: None,
        after_execute: (
            "CREATE_COMPLETE",
            vec![("Deployment", "Custom::Deployment", "CREATE_COMPLETE", "")],
        ),
        after_delete: (None, Vec::new()),
    });
    cfn.set_outputs(&[("AppUrl", "https://d222.cloudfront.net")]);
    let build = serde_json::json!({
        "id": "llm-eval-deployer:b-1", "buildStatus": "SUCCEEDED",
        "phases": [{"phaseType": "BUILD", "phaseStatus": "SUCCEEDED", "durationInSeconds": 60}],
    });
    let codebuild = CodeBuildDouble::progressing(
        vec![build],
        vec![Vec::new(), vec!["llm-eval-deployer:b-1".to_owned()]],
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("targets.csv"), "222222222222,eu-west-1\n").unwrap();
    let mut env = aws_env(&moto);
    env.push(("AWS_ENDPOINT_URL_CLOUDFORMATION", cfn.url().to_owned()));
    env.push(("AWS_ENDPOINT_URL_CODEBUILD", codebuild.url().to_owned()));
    env.push((
        "DEPLOY_SOURCE_REPOSITORY_URL",
        "https://github.com/example/llm-eval".to_owned(),
    ));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let up = deployer(
        dir.path(),
        &[
            "fleet",
            "up",
            "--via",
            "bootstrap",
            "--targets",
            "targets.csv",
        ],
        &env,
    );
    assert_eq!(up.code, Some(0), "{}\n{}", up.stdout, up.stderr);
    assert!(
        row(&up.stdout, "222222222222/eu-west-1").contains(" ok      https://d222.cloudfront.net"),
        "{}",
        up.stdout
    );
    let log = std::fs::read_to_string(dir.path().join("fleet-logs/222222222222-eu-west-1-up.log"))
        .unwrap();
    assert!(
        log.contains(
            "deploying bootstrap stack llm-eval-bootstrap to account 222222222222, region eu-west-1"
        ),
        "{log}"
    );
    assert!(
        log.contains("build llm-eval-deployer:b-1: SUCCEEDED"),
        "{log}"
    );
    let form = &cfn.requests("CreateChangeSet")[0];
    assert!(
        form.values()
            .any(|value| value == "https://github.com/example/llm-eval"),
        "{form:?}"
    );
}

/// `fleet doctor` runs `doctor` in every target account (Bedrock and Service Quotas served by
/// the local doubles, everything else by moto), names a target's failed checks as its root
/// cause and a healthy target's warnings in its row; `fleet pause` runs `pause` in each (nothing deployed: each says so and succeeds).
#[test]
fn fleet_doctor_and_pause_run_in_every_target() {
    use model_doubles::bedrock_control::{BedrockControl, FoundationModel};
    use model_doubles::service_quotas::ServiceQuotas;

    let moto = Moto::start_blocking();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("targets.csv"),
        "111111111111,us-east-1\n222222222222,us-east-1\n",
    )
    .unwrap();
    let doubles = tokio::runtime::Runtime::new().unwrap();
    let haiku = FoundationModel::new(
        "anthropic.claude-3-haiku-20240307-v1:0",
        "Claude 3 Haiku",
        "Anthropic",
    );
    let quotas = doubles
        .block_on(ServiceQuotas::start("us-east-1", Vec::new()))
        .unwrap();
    let run = |bedrock: &BedrockControl, args: &[&str]| {
        let mut env = aws_env(&moto);
        env.push(("AWS_ENDPOINT_URL_BEDROCK", bedrock.url()));
        env.push(("AWS_ENDPOINT_URL_SERVICE_QUOTAS", quotas.url()));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        deployer(dir.path(), args, &env)
    };

    let granted = doubles
        .block_on(BedrockControl::start("us-east-1", vec![haiku.clone()]))
        .unwrap();
    let healthy = run(&granted, &["fleet", "doctor", "--targets", "targets.csv"]);
    assert_eq!(
        healthy.code,
        Some(0),
        "{}\n{}",
        healthy.stdout,
        healthy.stderr
    );
    for target in ["111111111111/us-east-1", "222222222222/us-east-1"] {
        let line = row(&healthy.stdout, target);
        assert!(line.contains("ok"), "{}", healthy.stdout);
        // The warnings of each account's report are named in its row: no quotas are listed,
        // so neither the on-demand nor the batch quotas of the model are known.
        assert!(
            line.contains("warnings: quota claude-3-haiku, batch claude-3-haiku"),
            "{}",
            healthy.stdout
        );
    }

    let refused = doubles
        .block_on(BedrockControl::start(
            "us-east-1",
            vec![haiku.without_access()],
        ))
        .unwrap();
    let failing = run(&refused, &["fleet", "doctor", "--targets", "targets.csv"]);
    assert_eq!(
        failing.code,
        Some(1),
        "{}\n{}",
        failing.stdout,
        failing.stderr
    );
    let failed_row = row(&failing.stdout, "111111111111/us-east-1");
    assert!(
        failed_row.contains("failed") && failed_row.contains("model claude-3-haiku"),
        "{}",
        failing.stdout
    );

    let pause = run(&granted, &["fleet", "pause", "--targets", "targets.csv"]);
    assert_eq!(pause.code, Some(0), "{}\n{}", pause.stdout, pause.stderr);
    assert!(
        row(&pause.stdout, "222222222222/us-east-1").contains("ok"),
        "{}",
        pause.stdout
    );
    let bootstrap = run(
        &granted,
        &[
            "fleet",
            "pause",
            "--targets",
            "targets.csv",
            "--via",
            "bootstrap",
        ],
    );
    assert_eq!(bootstrap.code, Some(2), "{}", bootstrap.stderr);
}
