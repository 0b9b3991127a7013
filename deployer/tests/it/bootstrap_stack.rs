//! `deployer bootstrap up | down | status`: cfn_bootstrap.yaml deployed as a stack and its
//! CodeBuild build followed phase by phase, with the build log's tail on failure.
//!
//! CloudFormation is the scripted double (moto cannot run the template's Lambda-backed custom
//! resource, whose answer decides how the stack ends), CodeBuild the scripted double of
//! `servers.rs` (moto's builds are SUCCEEDED at once, every phase succeeded, so a build going
//! through its phases and failing in one cannot be expressed there), and STS and CloudWatch Logs
//! are moto, where the test writes the build's log.

use serde_json::{Value as Json, json};

use crate::cfn_double::{CfnDouble, Script};
use crate::helpers::{Run, deployer};
use crate::servers::CodeBuildDouble;
use model_doubles::moto::Moto;

const LOG_GROUP: &str = "/aws/codebuild/llm-eval-deployer";
const CUSTOM: &str = "Custom::Deployment";
const STACK: &str = "AWS::CloudFormation::Stack";

/// A build of the project in `status`, with `phases` (type, status once ended).
fn build(id: &str, action: &str, status: &str, phases: &[(&str, Option<&str>)]) -> Json {
    let phases: Vec<Json> = phases
        .iter()
        .map(|(kind, phase_status)| {
            let mut phase = json!({"phaseType": kind});
            if let Some(phase_status) = phase_status {
                phase["phaseStatus"] = json!(phase_status);
                phase["durationInSeconds"] = json!(3);
            }
            if *phase_status == Some("FAILED") {
                phase["contexts"] = json!([{"statusCode": "COMMAND_EXECUTION_ERROR",
                    "message": "Error while executing command: deployer bootstrap run. Reason: exit status 1"}]);
            }
            phase
        })
        .collect();
    let stream = id.rsplit(':').next().unwrap();
    json!({
        "id": id,
        "buildStatus": status,
        "phases": phases,
        "logs": {"groupName": LOG_GROUP, "streamName": stream,
            "deepLink": format!("https://console.aws.amazon.com/cloudwatch/home?region=us-east-1#logEvent:group={LOG_GROUP};stream={stream}")},
        "environment": {"type": "LINUX_CONTAINER", "image": "aws/codebuild/amazonlinux-x86_64-standard:5.0",
            "computeType": "BUILD_GENERAL1_LARGE",
            "environmentVariables": [{"name": "DEPLOYER_ACTION", "value": action, "type": "PLAINTEXT"}]},
    })
}

/// Writes `lines` as the log stream `stream` of the project's log group in moto.
fn write_log(moto: &Moto, stream: &str, lines: &[&str]) {
    crate::helpers::with_sdk(moto, async |config| {
        let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
        let _ = logs
            .create_log_group()
            .log_group_name(LOG_GROUP)
            .send()
            .await;
        logs.create_log_stream()
            .log_group_name(LOG_GROUP)
            .log_stream_name(stream)
            .send()
            .await
            .unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let events = lines.iter().enumerate().map(|(n, line)| {
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(now + n as i64)
                .message(*line)
                .build()
                .unwrap()
        });
        logs.put_log_events()
            .log_group_name(LOG_GROUP)
            .log_stream_name(stream)
            .set_log_events(Some(events.collect()))
            .send()
            .await
            .unwrap();
    });
}

fn env(moto: &Moto, cfn: &CfnDouble, codebuild: &CodeBuildDouble) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", moto.url().to_owned()),
        ("AWS_ENDPOINT_URL_CLOUDFORMATION", cfn.url().to_owned()),
        ("AWS_ENDPOINT_URL_CODEBUILD", codebuild.url().to_owned()),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ("AWS_CONFIG_FILE", "/nonexistent/config".to_owned()),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/credentials".to_owned(),
        ),
    ]
}

fn run(env: &[(&'static str, String)], args: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    deployer(dir.path(), args, &env)
}

fn parameter(form: &std::collections::HashMap<String, String>, key: &str) -> Option<String> {
    (1..=20).find_map(|n| {
        (form.get(&format!("Parameters.member.{n}.ParameterKey"))? == key).then(|| {
            form.get(&format!("Parameters.member.{n}.ParameterValue"))
                .cloned()
                .unwrap_or_default()
        })
    })
}

const REASON: &str = "deployer up failed: stack llm-eval-network: NatGateway1 (AWS::EC2::NatGateway): CREATE_FAILED: The maximum number of NAT gateways has been reached (CodeBuild build llm-eval-deployer:b-1)";

#[test]
fn bootstrap_up_follows_a_failing_build_and_reports_the_deployers_reason() {
    let moto = Moto::start_blocking();
    write_log(
        &moto,
        "b-1",
        &[
            "[Container] Running command deployer bootstrap run",
            "error: stack llm-eval-network: NatGateway1 (AWS::EC2::NatGateway): CREATE_FAILED: The maximum number of NAT gateways has been reached",
            "reported FAILED to CloudFormation (Deployment req-1)",
        ],
    );
    let cfn = CfnDouble::start(Script {
        initial: None,
        after_execute: (
            "ROLLBACK_COMPLETE",
            vec![
                ("Deployment", CUSTOM, "CREATE_IN_PROGRESS", ""),
                ("Deployment", CUSTOM, "CREATE_FAILED", REASON),
                ("llm-eval-bootstrap", STACK, "ROLLBACK_IN_PROGRESS", ""),
                ("llm-eval-bootstrap", STACK, "ROLLBACK_COMPLETE", ""),
            ],
        ),
        after_delete: (None, Vec::new()),
    });
    let id = "llm-eval-deployer:b-1";
    let codebuild = CodeBuildDouble::progressing(
        vec![
            build(
                id,
                "up",
                "IN_PROGRESS",
                &[("SUBMITTED", Some("SUCCEEDED")), ("PROVISIONING", None)],
            ),
            build(
                id,
                "up",
                "IN_PROGRESS",
                &[
                    ("SUBMITTED", Some("SUCCEEDED")),
                    ("PROVISIONING", Some("SUCCEEDED")),
                    ("DOWNLOAD_SOURCE", Some("SUCCEEDED")),
                    ("BUILD", None),
                ],
            ),
            build(
                id,
                "up",
                "FAILED",
                &[
                    ("SUBMITTED", Some("SUCCEEDED")),
                    ("PROVISIONING", Some("SUCCEEDED")),
                    ("DOWNLOAD_SOURCE", Some("SUCCEEDED")),
                    ("BUILD", Some("FAILED")),
                    ("FINALIZING", Some("SUCCEEDED")),
                    ("COMPLETED", None),
                ],
            ),
        ],
        vec![Vec::new(), vec![id.to_owned()]],
    );
    let up = run(
        &env(&moto, &cfn, &codebuild),
        &[
            "bootstrap",
            "up",
            "--source-repository-url",
            "https://github.com/example/llm-eval",
            "--deploy-sagemaker-domain",
            "no",
        ],
    );
    assert_eq!(up.code, Some(1), "{}", up.stderr);
    for expected in [
        "following CodeBuild build llm-eval-deployer:b-1",
        "build llm-eval-deployer:b-1: PROVISIONING ...",
        "build llm-eval-deployer:b-1: DOWNLOAD_SOURCE SUCCEEDED (3 s)",
        "build llm-eval-deployer:b-1: BUILD FAILED (3 s): COMMAND_EXECUTION_ERROR Error while executing command: deployer bootstrap run. Reason: exit status 1",
        "build llm-eval-deployer:b-1: FAILED",
        "last lines of the log of build llm-eval-deployer:b-1:",
        "  error: stack llm-eval-network: NatGateway1 (AWS::EC2::NatGateway): CREATE_FAILED: The maximum number of NAT gateways has been reached",
    ] {
        assert!(
            up.stderr.contains(expected),
            "no `{expected}` in:\n{}",
            up.stderr
        );
    }
    let last = up.stderr.trim_end().lines().last().unwrap();
    assert_eq!(
        last,
        format!(
            "error: bootstrap stack llm-eval-bootstrap: ROLLBACK_COMPLETE: Deployment (Custom::Deployment): CREATE_FAILED: {REASON} (build llm-eval-deployer:b-1 FAILED)"
        )
    );
    // The stack got the console form's parameters, under the template's names.
    let created = cfn.requests("CreateChangeSet");
    assert_eq!(created.len(), 1);
    let form = &created[0];
    assert_eq!(form["StackName"], "llm-eval-bootstrap");
    assert_eq!(form["ChangeSetType"], "CREATE");
    assert_eq!(
        parameter(form, "SourceRepositoryUrl").as_deref(),
        Some("https://github.com/example/llm-eval")
    );
    assert_eq!(
        parameter(form, "DeploySageMakerDomain").as_deref(),
        Some("no")
    );
    assert_eq!(parameter(form, "DeployPromptApp").as_deref(), Some("yes"));
    assert_eq!(parameter(form, "StackPrefix").as_deref(), Some("llm-eval"));
    assert_eq!(parameter(form, "SourceS3Location").as_deref(), Some(""));
    assert!(form["TemplateBody"].contains("Custom::Deployment"));
}

#[test]
fn bootstrap_up_status_down_with_builds_that_succeed() {
    let moto = Moto::start_blocking();
    let cfn = CfnDouble::start(Script {
        initial: None,
        after_execute: (
            "CREATE_COMPLETE",
            vec![
                ("Deployment", CUSTOM, "CREATE_IN_PROGRESS", ""),
                ("Deployment", CUSTOM, "CREATE_COMPLETE", ""),
                ("llm-eval-bootstrap", STACK, "CREATE_COMPLETE", ""),
            ],
        ),
        after_delete: (
            None,
            vec![
                ("Deployment", CUSTOM, "DELETE_IN_PROGRESS", ""),
                ("Deployment", CUSTOM, "DELETE_COMPLETE", ""),
            ],
        ),
    });
    cfn.set_outputs(&[
        ("AppUrl", "https://d111111abcdef8.cloudfront.net"),
        ("UserPoolId", "us-east-1_abc"),
    ]);
    let up_build = "llm-eval-deployer:b-1";
    let phases = [
        ("SUBMITTED", Some("SUCCEEDED")),
        ("DOWNLOAD_SOURCE", Some("SUCCEEDED")),
        ("BUILD", Some("SUCCEEDED")),
        ("COMPLETED", None),
    ];
    let codebuild = CodeBuildDouble::progressing(
        vec![
            build(up_build, "up", "IN_PROGRESS", &phases[..2]),
            build(up_build, "up", "SUCCEEDED", &phases),
        ],
        vec![Vec::new(), vec![up_build.to_owned()]],
    );
    let up = run(
        &env(&moto, &cfn, &codebuild),
        &[
            "bootstrap",
            "up",
            "--source-s3-location",
            "my-bucket/llm-eval.zip",
            "--admin-email",
            "admin@example.com",
        ],
    );
    assert_eq!(up.code, Some(0), "{}", up.stderr);
    assert_eq!(
        up.stdout,
        "AppUrl = https://d111111abcdef8.cloudfront.net\nUserPoolId = us-east-1_abc\n"
    );
    assert!(
        up.stderr.contains("build llm-eval-deployer:b-1: SUCCEEDED"),
        "{}",
        up.stderr
    );
    assert!(!up.stderr.contains("last lines"), "{}", up.stderr);
    let form = &cfn.requests("CreateChangeSet")[0];
    assert_eq!(
        parameter(form, "AdminEmail").as_deref(),
        Some("admin@example.com")
    );
    assert_eq!(
        parameter(form, "SourceS3Location").as_deref(),
        Some("my-bucket/llm-eval.zip")
    );

    let status = run(&env(&moto, &cfn, &codebuild), &["bootstrap", "status"]);
    assert_eq!(status.code, Some(0), "{}", status.stderr);
    for expected in [
        "llm-eval-bootstrap: CREATE_COMPLETE",
        "  AppUrl = https://d111111abcdef8.cloudfront.net",
        "latest build llm-eval-deployer:b-1 (deployer up): SUCCEEDED",
        "  BUILD SUCCEEDED",
    ] {
        assert!(
            status.stdout.contains(expected),
            "no `{expected}` in:\n{}",
            status.stdout
        );
    }

    // Without a terminal, down needs --force.
    let refused = run(&env(&moto, &cfn, &codebuild), &["bootstrap", "down"]);
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);

    // The delete starts a new (down) build; the up build is not followed again.
    let down_build = "llm-eval-deployer:b-2";
    let codebuild = CodeBuildDouble::progressing(
        vec![
            build(down_build, "down", "IN_PROGRESS", &phases[..1]),
            build(down_build, "down", "SUCCEEDED", &phases),
        ],
        vec![
            vec![up_build.to_owned()],
            vec![down_build.to_owned(), up_build.to_owned()],
        ],
    );
    let down = run(
        &env(&moto, &cfn, &codebuild),
        &["bootstrap", "down", "--force"],
    );
    assert_eq!(down.code, Some(0), "{}", down.stderr);
    assert_eq!(down.stdout, "deleted llm-eval-bootstrap\n");
    assert!(
        down.stderr
            .contains("following CodeBuild build llm-eval-deployer:b-2"),
        "{}",
        down.stderr
    );
    assert!(
        !down.stderr.contains("build llm-eval-deployer:b-1"),
        "{}",
        down.stderr
    );

    let again = run(
        &env(&moto, &cfn, &codebuild),
        &["bootstrap", "down", "--force"],
    );
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert!(
        again.stdout.starts_with("nothing to delete"),
        "{}",
        again.stdout
    );
}

#[test]
fn bootstrap_up_needs_exactly_one_source() {
    let moto = Moto::start_blocking();
    let cfn = CfnDouble::start(Script {
        initial: None,
        after_execute: ("CREATE_COMPLETE", Vec::new()),
        after_delete: (None, Vec::new()),
    });
    let codebuild = CodeBuildDouble::progressing(Vec::new(), Vec::new());
    let up = run(&env(&moto, &cfn, &codebuild), &["bootstrap", "up"]);
    assert_eq!(up.code, Some(2), "{}", up.stderr);
    assert!(
        up.stderr.contains("--source-repository-url"),
        "{}",
        up.stderr
    );
    assert!(cfn.actions().is_empty(), "{:?}", cfn.actions());
}

#[test]
fn bootstrap_up_replaces_a_stack_a_failed_create_left_behind() {
    let moto = Moto::start_blocking();
    let cfn = CfnDouble::start(Script {
        initial: Some("ROLLBACK_COMPLETE"),
        after_execute: (
            "CREATE_COMPLETE",
            vec![("Deployment", CUSTOM, "CREATE_COMPLETE", "")],
        ),
        after_delete: (
            None,
            vec![("llm-eval-bootstrap", STACK, "DELETE_COMPLETE", "")],
        ),
    });
    let old = "llm-eval-deployer:b-1";
    let new = "llm-eval-deployer:b-2";
    let codebuild = CodeBuildDouble::progressing(
        vec![build(
            new,
            "up",
            "SUCCEEDED",
            &[("BUILD", Some("SUCCEEDED"))],
        )],
        vec![vec![old.to_owned()], vec![new.to_owned(), old.to_owned()]],
    );
    let up = run(
        &env(&moto, &cfn, &codebuild),
        &[
            "bootstrap",
            "up",
            "--source-repository-url",
            "https://github.com/example/llm-eval",
        ],
    );
    assert_eq!(up.code, Some(0), "{}", up.stderr);
    assert!(
        up.stderr.contains(
            "llm-eval-bootstrap: ROLLBACK_COMPLETE from an earlier failed create; deleting it first"
        ),
        "{}",
        up.stderr
    );
    let actions = cfn.actions();
    let deleted = actions.iter().position(|a| a == "DeleteStack").unwrap();
    let planned = actions.iter().position(|a| a == "CreateChangeSet").unwrap();
    assert!(deleted < planned, "{actions:?}");
    assert_eq!(
        cfn.requests("CreateChangeSet")[0]["ChangeSetType"],
        "CREATE"
    );
}

/// A source without buildspec.yml: the first build fails in DOWNLOAD_SOURCE and the Lambda
/// starts a second one with the inline buildspec, which is then followed (and succeeds) while
/// the stack waits for it.
#[test]
fn bootstrap_up_follows_the_build_restarted_with_the_inline_buildspec() {
    let moto = Moto::start_blocking();
    let cfn = CfnDouble::start(Script {
        initial: None,
        after_execute: (
            "CREATE_COMPLETE",
            vec![("Deployment", CUSTOM, "CREATE_COMPLETE", "")],
        ),
        after_delete: (None, Vec::new()),
    });
    cfn.set_execute_polls(4);
    let first = "llm-eval-deployer:b-1";
    let second = "llm-eval-deployer:b-2";
    let mut failed = build(
        first,
        "up",
        "FAILED",
        &[
            ("SUBMITTED", Some("SUCCEEDED")),
            ("DOWNLOAD_SOURCE", Some("FAILED")),
        ],
    );
    failed["phases"][1]["contexts"] = json!([{"statusCode": "YAML_FILE_ERROR",
        "message": "stat /codebuild/output/src1/src/buildspec.yml: no such file or directory"}]);
    let codebuild = CodeBuildDouble::with_builds(
        vec![
            (first, vec![failed]),
            (
                second,
                vec![
                    build(
                        second,
                        "up",
                        "IN_PROGRESS",
                        &[("SUBMITTED", Some("SUCCEEDED"))],
                    ),
                    build(
                        second,
                        "up",
                        "SUCCEEDED",
                        &[
                            ("SUBMITTED", Some("SUCCEEDED")),
                            ("BUILD", Some("SUCCEEDED")),
                        ],
                    ),
                ],
            ),
        ],
        vec![
            Vec::new(),
            vec![first.to_owned()],
            vec![second.to_owned(), first.to_owned()],
        ],
    );
    let up = run(
        &env(&moto, &cfn, &codebuild),
        &[
            "bootstrap",
            "up",
            "--source-repository-url",
            "https://github.com/example/llm-eval",
        ],
    );
    assert_eq!(up.code, Some(0), "{}", up.stderr);
    for expected in [
        "following CodeBuild build llm-eval-deployer:b-1",
        "build llm-eval-deployer:b-1: DOWNLOAD_SOURCE FAILED (3 s): YAML_FILE_ERROR stat /codebuild/output/src1/src/buildspec.yml: no such file or directory",
        "following CodeBuild build llm-eval-deployer:b-2",
        "build llm-eval-deployer:b-2: BUILD SUCCEEDED (3 s)",
        "build llm-eval-deployer:b-2: SUCCEEDED",
    ] {
        assert!(
            up.stderr.contains(expected),
            "no `{expected}` in:\n{}",
            up.stderr
        );
    }
    assert!(!up.stderr.contains("last lines"), "{}", up.stderr);
}
