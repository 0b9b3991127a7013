//! `deployer pause` / `resume` and what `status` and `up` say about a paused deployment: the
//! network stack on moto (CloudFormation really deletes and recreates the NAT gateways and their
//! addresses), and every stack with the app on the scripted [`Stacks`] CloudFormation double
//! (moto cannot run the app stack), which keeps the deployed template and previous parameter
//! values of a parameter-only update as CloudFormation does.

use model_doubles::moto::Moto;

use crate::cfn_double::Stacks;
use crate::helpers::{self, run_with, with_sdk};

const IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/llm-eval-app@sha256:0000000000000000000000000000000000000000000000000000000000000001";

/// NAT gateways not deleted, and Elastic IPs, as EC2 (moto) reports them.
fn nat_and_addresses(moto: &Moto) -> (usize, usize) {
    with_sdk(moto, async |config| {
        let ec2 = aws_sdk_ec2::Client::new(&config);
        let nat = ec2.describe_nat_gateways().send().await.unwrap();
        let live = nat
            .nat_gateways()
            .iter()
            .filter(|gateway| {
                !matches!(
                    gateway.state(),
                    Some(
                        aws_sdk_ec2::types::NatGatewayState::Deleted
                            | aws_sdk_ec2::types::NatGatewayState::Deleting
                    )
                )
            })
            .count();
        let addresses = ec2.describe_addresses().send().await.unwrap();
        (live, addresses.addresses().len())
    })
}

#[test]
fn pause_removes_the_nat_gateways_and_resume_brings_them_back_on_moto() {
    let moto = Moto::start_blocking();
    let dir = tempfile::tempdir().unwrap();
    let mut env = helpers::aws_env(&moto);
    env.push(("DEPLOY_PROMPT_APP", "no".to_owned()));
    env.push(("DEPLOY_SAGEMAKER_DOMAIN", "no".to_owned()));
    let up = run_with(dir.path(), &env, &["up", "--require-approval", "never"]);
    assert_eq!(up.code, Some(0), "{}", up.stderr);
    assert!(up.stderr.contains("estimated cost while idle"), "{}", up.stderr);
    assert_eq!(nat_and_addresses(&moto), (2, 2));

    let pause = run_with(dir.path(), &env, &["pause"]);
    assert_eq!(pause.code, Some(0), "{}", pause.stderr);
    assert!(pause.stdout.contains("llm-eval-network: paused"), "{}", pause.stdout);
    assert_eq!(nat_and_addresses(&moto), (0, 0));
    let status = run_with(dir.path(), &env, &["status"]);
    assert_eq!(status.code, Some(0), "{}", status.stderr);
    assert!(status.stdout.contains("  state: paused"), "{}", status.stdout);
    assert!(status.stdout.contains("deployment: paused"), "{}", status.stdout);
    let again = run_with(dir.path(), &env, &["pause"]);
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert!(again.stdout.contains("llm-eval-network: already paused"), "{}", again.stdout);

    let resume = run_with(dir.path(), &env, &["resume"]);
    assert_eq!(resume.code, Some(0), "{}", resume.stderr);
    assert!(resume.stdout.contains("llm-eval-network: running"), "{}", resume.stdout);
    assert_eq!(nat_and_addresses(&moto), (2, 2));
    let status = run_with(dir.path(), &env, &["status"]);
    assert!(status.stdout.contains("deployment: running"), "{}", status.stdout);
}

fn parameter(stacks: &Stacks, stack: &str, key: &str) -> Option<String> {
    stacks
        .parameters(stack)
        .into_iter()
        .find(|(name, _)| name == key)
        .map(|(_, value)| value)
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
    let stacks = Stacks::start(&[]);
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
    assert_eq!(parameter(&stacks, "llm-eval-app", "ImageUri").as_deref(), Some(IMAGE));
    let before = change_sets(&stacks).len();

    let pause = run_with(dir.path(), &env, &["pause"]);
    assert_eq!(pause.code, Some(0), "{}", pause.stderr);
    // The app first (no task left), then the network.
    assert_eq!(
        change_sets(&stacks)[before..],
        ["llm-eval-app".to_owned(), "llm-eval-network".to_owned()]
    );
    for stack in ["llm-eval-app", "llm-eval-network"] {
        assert_eq!(parameter(&stacks, stack, "Paused").as_deref(), Some("true"), "{stack}");
    }
    // Every other parameter kept its value.
    assert_eq!(parameter(&stacks, "llm-eval-app", "ImageUri").as_deref(), Some(IMAGE));
    let status = run_with(dir.path(), &env, &["status"]);
    assert!(status.stdout.contains("deployment: paused"), "{}", status.stdout);

    // `up` on a paused deployment updates it and keeps it paused.
    let up_again = run_with(
        dir.path(),
        &env,
        &["up", "--require-approval", "never", "--image", IMAGE],
    );
    assert_eq!(up_again.code, Some(0), "{}", up_again.stderr);
    assert!(up_again.stderr.contains("llm-eval-app: paused; it stays paused"), "{}", up_again.stderr);
    assert_eq!(parameter(&stacks, "llm-eval-app", "Paused").as_deref(), Some("true"));

    let before = change_sets(&stacks).len();
    let resume = run_with(dir.path(), &env, &["resume"]);
    assert_eq!(resume.code, Some(0), "{}", resume.stderr);
    // The network first (the tasks need their way out), then the app.
    assert_eq!(
        change_sets(&stacks)[before..],
        ["llm-eval-network".to_owned(), "llm-eval-app".to_owned()]
    );
    for stack in ["llm-eval-app", "llm-eval-network"] {
        assert_eq!(parameter(&stacks, stack, "Paused").as_deref(), Some("false"), "{stack}");
    }
    assert_eq!(parameter(&stacks, "llm-eval-app", "ImageUri").as_deref(), Some(IMAGE));
}
