//! `deployer pause` / `resume` and what `status` and `up` say about a paused deployment, with
//! every stack on the scripted [`Stacks`] CloudFormation double, which keeps the deployed template
//! and the previous parameter values of a parameter-only update as CloudFormation does; STS, EC2
//! and the rest are moto.
//!
//! Not on moto's CloudFormation: moto 5.2.1 does not re-evaluate conditions when only a parameter
//! changes (a change set comes back empty, `UpdateStack` keeps every resource), so it cannot show
//! the NAT gateways going away. That the NAT gateways, their addresses and the private default
//! routes, and the app's load balancer, listener, target group and VPC origin, carry the
//! `Running` condition of the `Paused` parameter, and that the distribution and its paused page
//! stay, is checked on the templates (`stacks/tests/it/security.rs`) and by cfn-lint.

use model_doubles::moto::Moto;

use crate::cfn_double::Stacks;
use crate::helpers::{self, run_with};

const IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/llm-eval-app@sha256:0000000000000000000000000000000000000000000000000000000000000001";

fn parameter(stacks: &Stacks, stack: &str, key: &str) -> Option<String> {
    stacks
        .parameters(stack)
        .into_iter()
        .find(|(name, _)| name == key)
        .map(|(_, value)| value)
}

/// `(Action, LogicalResourceId)` of the change set of `stack` described last.
fn last_changes(stacks: &Stacks, stack: &str) -> Vec<(String, String)> {
    stacks.described_changes(stack).pop().unwrap_or_default()
}

/// The `CreateChangeSet` calls, by stack, in order.
fn change_sets(stacks: &Stacks) -> Vec<String> {
    stacks
        .calls()
        .into_iter()
        .filter(|(action, _)| action == "CreateChangeSet")
        .map(|(_, stack)| stack)
        .collect()
}

#[test]
fn pause_and_resume_with_the_app_stack_keep_the_image_and_order_the_stacks() {
    let moto = Moto::start_blocking();
    // The app template is over CloudFormation's inline limit: `up` uploads it to the toolkit's
    // templates bucket, which the double reads it from.
    let templates_bucket = "llm-eval-templates-test";
    helpers::with_sdk(&moto, async |config| {
        aws_sdk_s3::Client::new(&config)
            .create_bucket()
            .bucket(templates_bucket)
            .send()
            .await
            .unwrap();
    });
    let stacks = Stacks::start(&[(
        "llm-eval-toolkit",
        &[("TemplatesBucketName", templates_bucket)],
    )])
    .with_s3(moto.url());
    let dir = tempfile::tempdir().unwrap();
    let mut env = helpers::aws_env(&moto);
    env.push(("DEPLOY_SAGEMAKER_DOMAIN", "no".to_owned()));
    env.push(("AWS_ENDPOINT_URL_CLOUDFORMATION", stacks.url().to_owned()));
    let up = run_with(
        dir.path(),
        &env,
        &["up", "--require-approval", "never", "--image", IMAGE],
    );
    assert_eq!(up.code, Some(0), "{}", up.stderr);
    // The idle figure comes before any change set (no Studio: 108.55 − 0.30, 0.86 − 0.30).
    let idle = "estimated cost while idle: 108.25 USD a month running, 0.56 USD paused";
    let idle_at = up
        .stderr
        .find(idle)
        .unwrap_or_else(|| panic!("{}", up.stderr));
    assert!(
        idle_at < up.stderr.find("add ").unwrap_or(usize::MAX),
        "{}",
        up.stderr
    );
    assert_eq!(
        parameter(&stacks, "llm-eval-app", "ImageUri").as_deref(),
        Some(IMAGE)
    );
    let before = change_sets(&stacks).len();

    let pause = run_with(dir.path(), &env, &["pause"]);
    assert_eq!(pause.code, Some(0), "{}", pause.stderr);
    assert!(
        pause
            .stdout
            .contains("paused: no app task, load balancer, NAT gateway or address; the app's URL shows a paused page"),
        "{}",
        pause.stdout
    );
    // The app first (no task left), then the network.
    assert_eq!(
        change_sets(&stacks)[before..],
        ["llm-eval-app".to_owned(), "llm-eval-network".to_owned()]
    );
    for stack in ["llm-eval-app", "llm-eval-network"] {
        assert_eq!(
            parameter(&stacks, stack, "Paused").as_deref(),
            Some("true"),
            "{stack}"
        );
    }
    // What CloudFormation does with the flip (the double derives it from the condition
    // `Running`): the app loses its load balancer and VPC origin but keeps the distribution,
    // whose origin and paused page switch; the network loses its NAT gateways and addresses.
    let app_changes = last_changes(&stacks, "llm-eval-app");
    for removed in [
        "LoadBalancer",
        "TargetGroup",
        "HttpListener",
        "AlbVpcOrigin",
    ] {
        assert!(
            app_changes.contains(&("Remove".to_owned(), removed.to_owned())),
            "{removed}: {app_changes:?}"
        );
    }
    for modified in ["Distribution", "Service"] {
        assert!(
            app_changes.contains(&("Modify".to_owned(), modified.to_owned())),
            "{modified}: {app_changes:?}"
        );
    }
    assert!(
        !app_changes.contains(&("Remove".to_owned(), "Distribution".to_owned())),
        "{app_changes:?}"
    );
    let network_changes = last_changes(&stacks, "llm-eval-network");
    assert_eq!(
        network_changes,
        [
            "NatEip1",
            "NatGateway1",
            "PrivateDefaultRoute1",
            "NatEip2",
            "NatGateway2",
            "PrivateDefaultRoute2"
        ]
        .map(|id| ("Remove".to_owned(), id.to_owned()))
    );
    // Every other parameter kept its value.
    assert_eq!(
        parameter(&stacks, "llm-eval-app", "ImageUri").as_deref(),
        Some(IMAGE)
    );
    let status = run_with(dir.path(), &env, &["status"]);
    assert!(
        status.stdout.contains("deployment: paused"),
        "{}",
        status.stdout
    );

    // `up` on a paused deployment updates it and keeps it paused.
    let up_again = run_with(
        dir.path(),
        &env,
        &["up", "--require-approval", "never", "--image", IMAGE],
    );
    assert_eq!(up_again.code, Some(0), "{}", up_again.stderr);
    assert!(
        up_again
            .stderr
            .contains("llm-eval-app: paused; it stays paused"),
        "{}",
        up_again.stderr
    );
    assert_eq!(
        parameter(&stacks, "llm-eval-app", "Paused").as_deref(),
        Some("true")
    );

    let before = change_sets(&stacks).len();
    let resume = run_with(dir.path(), &env, &["resume"]);
    assert_eq!(resume.code, Some(0), "{}", resume.stderr);
    // The network first (the tasks need their way out), then the app.
    assert_eq!(
        change_sets(&stacks)[before..],
        ["llm-eval-network".to_owned(), "llm-eval-app".to_owned()]
    );
    for stack in ["llm-eval-app", "llm-eval-network"] {
        assert_eq!(
            parameter(&stacks, stack, "Paused").as_deref(),
            Some("false"),
            "{stack}"
        );
    }
    // Resume creates them again.
    let app_changes = last_changes(&stacks, "llm-eval-app");
    for added in [
        "LoadBalancer",
        "TargetGroup",
        "HttpListener",
        "AlbVpcOrigin",
    ] {
        assert!(
            app_changes.contains(&("Add".to_owned(), added.to_owned())),
            "{added}: {app_changes:?}"
        );
    }
    assert!(
        last_changes(&stacks, "llm-eval-network")
            .contains(&("Add".to_owned(), "NatGateway1".to_owned()))
    );
    assert_eq!(
        parameter(&stacks, "llm-eval-app", "ImageUri").as_deref(),
        Some(IMAGE)
    );
}
