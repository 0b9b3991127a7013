//! `deployer doctor` against moto (STS, IAM, EC2, SageMaker, CloudFormation) plus the local
//! doubles of what moto lacks, which speak the real protocols: the Bedrock control plane
//! (`model_doubles::bedrock_control`, REST-JSON) and Service Quotas
//! (`model_doubles::service_quotas`, AWS JSON 1.1). Cases: a healthy account, a model without
//! access, a low quota, an existing SageMaker domain, a model without batch inference or with no
//! batch job allowed. The CloudFront VPC-origin zones pass on moto's us-east-1 zones; the
//! excluded zone ids and unsupported regions are unit tests of `doctor::vpc_origin_verdict`
//! (moto's first two zones of every region are supported ones).

use model_doubles::bedrock_control::{BedrockControl, FoundationModel};
use model_doubles::moto::Moto;
use model_doubles::service_quotas::{Quota, ServiceQuotas};

use crate::helpers::{self, Run, run_with, with_sdk};

const HAIKU: &str = "anthropic.claude-3-haiku-20240307-v1:0";

fn haiku() -> FoundationModel {
    FoundationModel::new(HAIKU, "Claude 3 Haiku", "Anthropic")
}

/// Bedrock quotas of Claude 3 Haiku (and of another model, so the right one must be picked),
/// and the VPC and Elastic IP quotas.
fn quotas(requests_per_minute: f64) -> Vec<Quota> {
    vec![
        Quota::new(
            "bedrock",
            "L-254CACF4",
            "On-demand model inference requests per minute for Anthropic Claude 3 Sonnet",
            500.0,
        ),
        Quota::new(
            "bedrock",
            "L-F406804E",
            "On-demand model inference tokens per minute for Anthropic Claude 3 Sonnet",
            1_000_000.0,
        ),
        Quota::new(
            "bedrock",
            "L-2DC80978",
            "On-demand model inference requests per minute for Anthropic Claude 3 Haiku",
            requests_per_minute,
        ),
        Quota::new(
            "bedrock",
            "L-8CE99163",
            "On-demand model inference tokens per minute for Anthropic Claude 3 Haiku",
            2_000_000.0,
        ),
        // Batch inference: Claude 3 Haiku's records per job, and another model's job quota
        // (batch quotas name the model without its provider).
        Quota::new(
            "bedrock",
            "L-1F644C2A",
            "Records per batch inference job for Claude 3 Haiku",
            50_000.0,
        ),
        Quota::new(
            "bedrock",
            "L-4E7EE0B5",
            "Sum of in-progress and submitted batch inference jobs using a base model for Claude 3.5 Sonnet",
            20.0,
        ),
        Quota::new("vpc", "L-F678F1CE", "VPCs per Region", 5.0),
        Quota::new("ec2", "L-0263D0A3", "EC2-VPC Elastic IPs", 5.0),
    ]
}

/// Creates the service-linked roles ECS and ELB need, with the names and paths AWS gives them
/// (moto's `CreateServiceLinkedRole` derives other names, so they are created as plain roles).
fn create_roles(moto: &Moto) {
    with_sdk(moto, async |config| {
        let iam = aws_sdk_iam::Client::new(&config);
        for (role, service) in [
            ("AWSServiceRoleForECS", "ecs.amazonaws.com"),
            (
                "AWSServiceRoleForElasticLoadBalancing",
                "elasticloadbalancing.amazonaws.com",
            ),
        ] {
            let trust = serde_json::json!({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
            });
            iam.create_role()
                .role_name(role)
                .path(format!("/aws-service-role/{service}/"))
                .assume_role_policy_document(trust.to_string())
                .send()
                .await
                .unwrap();
        }
    });
}

/// Runs `deployer doctor args...` with Bedrock and Service Quotas served by the doubles.
fn doctor(moto: &Moto, models: Vec<FoundationModel>, quotas: Vec<Quota>, args: &[&str]) -> Run {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let bedrock = runtime
        .block_on(BedrockControl::start("us-east-1", models))
        .unwrap();
    let service_quotas = runtime
        .block_on(ServiceQuotas::start("us-east-1", quotas))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut env = helpers::aws_env(moto);
    env.push(("AWS_ENDPOINT_URL_BEDROCK", bedrock.url()));
    env.push(("AWS_ENDPOINT_URL_SERVICE_QUOTAS", service_quotas.url()));
    let mut all = vec!["doctor"];
    all.extend_from_slice(args);
    let run = run_with(dir.path(), &env, &all);
    // The deployer really asked the Bedrock double.
    assert!(bedrock.requests() >= 1, "{}", run.stderr);
    run
}

/// `(check, status)` of the JSON report.
fn statuses(run: &Run) -> Vec<(String, String)> {
    let report: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|err| panic!("{err}: {}\n{}", run.stdout, run.stderr));
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|check| {
            (
                check["check"].as_str().unwrap().to_owned(),
                check["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn status_of<'a>(statuses: &'a [(String, String)], check: &str) -> &'a str {
    statuses
        .iter()
        .find(|(name, _)| name == check)
        .map(|(_, status)| status.as_str())
        .unwrap_or_else(|| panic!("no check {check} in {statuses:?}"))
}

#[test]
fn a_healthy_account_passes_every_check() {
    let moto = Moto::start_blocking();
    create_roles(&moto);
    let run = doctor(&moto, vec![haiku()], quotas(1000.0), &["--json"]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let statuses = statuses(&run);
    assert_eq!(
        statuses,
        [
            ("credentials", "pass"),
            ("region", "pass"),
            ("model claude-3-haiku", "pass"),
            ("quota claude-3-haiku", "pass"),
            ("batch claude-3-haiku", "pass"),
            ("sagemaker domain", "pass"),
            ("role AWSServiceRoleForECS", "pass"),
            ("role AWSServiceRoleForElasticLoadBalancing", "pass"),
            ("vpc headroom", "pass"),
            ("elastic ip headroom", "pass"),
            ("vpc origin zones", "pass"),
        ]
        .map(|(check, status)| (check.to_owned(), status.to_owned()))
    );
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["account"], "123456789012");
    // 1,000 records at 1,000 requests a minute (and 650 tokens each at 2,000,000 a minute).
    let quota = report["checks"][3]["reason"].as_str().unwrap();
    assert!(quota.contains("take at least 1.0 min"), "{quota}");
    let batch = report["checks"][4]["reason"].as_str().unwrap();
    assert!(
        batch.contains("up to 50000 records per job (L-1F644C2A)"),
        "{batch}"
    );
    // moto's us-east-1: us-east-1a is use1-az6 and us-east-1b use1-az1 (use1-az3 is excluded).
    let zones = report["checks"][10]["reason"].as_str().unwrap();
    assert!(
        zones.contains("us-east-1a (use1-az6), us-east-1b (use1-az1)"),
        "{zones}"
    );
}

#[test]
fn batch_inference_not_offered_warns_and_no_batch_job_allowed_fails() {
    let moto = Moto::start_blocking();
    create_roles(&moto);
    let without_batch: Vec<Quota> = quotas(1000.0)
        .into_iter()
        .filter(|quota| {
            !quota.quota_name.contains("Claude 3 Haiku") || !quota.quota_name.contains("batch")
        })
        .collect();
    let run = doctor(&moto, vec![haiku()], without_batch, &[]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("WARN  batch claude-3-haiku")
            && run
                .stdout
                .contains("batch inference is probably not offered for it here"),
        "{}",
        run.stdout
    );
    // A job quota of 0 (the code is illustrative): batch mode cannot start a job.
    let mut no_jobs = quotas(1000.0);
    no_jobs.push(Quota::new(
        "bedrock",
        "L-0C0FFEE0",
        "Sum of in-progress and submitted batch inference jobs using a base model for Claude 3 Haiku",
        0.0,
    ));
    let run = doctor(&moto, vec![haiku()], no_jobs, &["--json"]);
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(status_of(&statuses(&run), "batch claude-3-haiku"), "fail");
    assert!(
        run.stderr
            .contains("error: 1 check(s) failed: batch claude-3-haiku"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_model_without_access_fails_with_the_fix() {
    let moto = Moto::start_blocking();
    let run = doctor(&moto, vec![haiku().without_access()], quotas(1000.0), &[]);
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("FAIL  model claude-3-haiku") && run.stdout.contains("not authorized"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("fix: Bedrock console > Model access"),
        "{}",
        run.stdout
    );
    // The roles were never created in this account: a warning with the command that creates them.
    assert!(
        run.stdout
            .contains("aws iam create-service-linked-role --aws-service-name ecs.amazonaws.com"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains("error: 1 check(s) failed: model claude-3-haiku"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_model_the_region_lacks_fails() {
    let moto = Moto::start_blocking();
    create_roles(&moto);
    let other = FoundationModel::new("amazon.nova-micro-v1:0", "Nova Micro", "Amazon");
    let run = doctor(&moto, vec![other], quotas(1000.0), &["--json"]);
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(status_of(&statuses(&run), "model claude-3-haiku"), "fail");
}

#[test]
fn a_low_quota_warns_with_the_time_a_run_takes() {
    let moto = Moto::start_blocking();
    create_roles(&moto);
    // 1,000 records at 20 requests a minute: 50 minutes.
    let run = doctor(&moto, vec![haiku()], quotas(20.0), &[]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("WARN  quota claude-3-haiku")
            && run.stdout.contains("20 requests and 2000000 tokens per minute; 1000 records of 650 tokens take at least 50.0 min"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("request an increase of L-2DC80978"),
        "{}",
        run.stdout
    );
}

#[test]
fn an_existing_domain_is_reported() {
    let moto = Moto::start_blocking();
    create_roles(&moto);
    with_sdk(&moto, async |config| {
        aws_sdk_sagemaker::Client::new(&config)
            .create_domain()
            .domain_name("someone-elses")
            .auth_mode(aws_sdk_sagemaker::types::AuthMode::Iam)
            .default_user_settings(
                aws_sdk_sagemaker::types::UserSettings::builder()
                    .execution_role("arn:aws:iam::123456789012:role/studio")
                    .build(),
            )
            .subnet_ids("subnet-12345678")
            .vpc_id("vpc-12345678")
            .send()
            .await
            .unwrap();
    });
    let run = doctor(&moto, vec![haiku()], quotas(1000.0), &["--json"]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(status_of(&statuses(&run), "sagemaker domain"), "warn");
    assert!(run.stdout.contains("someone-elses"), "{}", run.stdout);
    // Without Studio the domain does not matter.
    let without = doctor(
        &moto,
        vec![haiku()],
        quotas(1000.0),
        &["--json", "--deploy-sagemaker-domain", "no"],
    );
    assert!(
        !statuses(&without)
            .iter()
            .any(|(check, _)| check == "sagemaker domain"),
        "{}",
        without.stdout
    );
}
