//! `deployer cost` and `deployer fleet cost`: offline estimates, JSON, `--accounts`, exit codes.
//! The figures themselves are checked by hand in `deployer/src/cost.rs`'s unit tests.

use crate::helpers::deployer;

#[test]
fn cost_prints_lines_and_totals_for_many_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let run = deployer(dir.path(), &["cost", "--accounts", "20"], &[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    for expected in [
        "read on 2025-10-01",
        "NAT gateways",
        "65.70",
        "108.55",
        "0.86",
        "× 20 accounts",
        "2171.00",
        "17.20",
        "per 1,000 evaluated records",
        "model claude-3-haiku",
    ] {
        assert!(run.stdout.contains(expected), "{expected}:\n{}", run.stdout);
    }
}

#[test]
fn cost_json_of_the_lean_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let run = deployer(
        dir.path(),
        &[
            "cost",
            "--json",
            "--lean-network",
            "yes",
            "--fargate-spot",
            "yes",
            "--accounts",
            "3",
        ],
        &[],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let value: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(value["accounts"], 3);
    assert_eq!(value["account"]["running_usd"], 59.44);
    assert_eq!(value["account"]["paused_usd"], 0.86);
    assert_eq!(value["all_accounts"]["running_usd"], 178.32);
    assert_eq!(value["account"]["prices_read_on"], "2025-10-01");
}

/// The goals' configuration: public task egress (no NAT gateway) with Studio off runs idle for
/// 38.90 USD a month and pauses for 0.56 (hand-checked in `cost.rs`); Studio needs the NAT.
#[test]
fn cost_of_public_ip_egress_meets_the_goals() {
    let dir = tempfile::tempdir().unwrap();
    let run = deployer(
        dir.path(),
        &[
            "cost",
            "--json",
            "--task-egress",
            "public-ip",
            "--deploy-sagemaker-domain",
            "no",
        ],
        &[],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let value: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(value["account"]["running_usd"], 38.90);
    assert_eq!(value["account"]["paused_usd"], 0.56);
    let items: Vec<&str> = value["account"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line["item"].as_str().unwrap())
        .collect();
    assert!(
        items.contains(&"public IPv4 addresses of the tasks"),
        "{items:?}"
    );
    let text = deployer(
        dir.path(),
        &[
            "cost",
            "--task-egress",
            "public-ip",
            "--deploy-sagemaker-domain",
            "no",
        ],
        &[],
    );
    assert!(text.stdout.contains("38.90"), "{}", text.stdout);
    let studio = deployer(dir.path(), &["cost", "--task-egress", "public-ip"], &[]);
    assert_eq!(studio.code, Some(2), "{}", studio.stderr);
    assert!(
        studio
            .stderr
            .contains("DEPLOY_TASK_EGRESS=public-ip removes the NAT gateways"),
        "{}",
        studio.stderr
    );
}

#[test]
fn cost_usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let unknown = deployer(dir.path(), &["cost", "--models", "gpt-17"], &[]);
    assert_eq!(unknown.code, Some(2), "{}", unknown.stderr);
    assert!(
        unknown.stderr.contains("model `gpt-17` has no price"),
        "{}",
        unknown.stderr
    );
    let budget = deployer(dir.path(), &["cost"], &[("DEPLOY_BUDGET_USD", "40")]);
    assert_eq!(budget.code, Some(2), "{}", budget.stderr);
    assert!(
        budget.stderr.contains("a budget needs both"),
        "{}",
        budget.stderr
    );
}

#[test]
fn fleet_cost_multiplies_by_the_targets() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("targets.csv"),
        "account_id,region\n111111111111,us-east-1\n222222222222,us-east-1\n333333333333,eu-west-1\n",
    )
    .unwrap();
    let run = deployer(
        dir.path(),
        &["fleet", "cost", "--targets", "targets.csv", "--json"],
        &[],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let value: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(value["accounts"], 3);
    // 3 × 108.55 and 3 × 0.86.
    assert_eq!(value["all_accounts"]["running_usd"], 325.65);
    assert_eq!(value["all_accounts"]["paused_usd"], 2.58);
}
