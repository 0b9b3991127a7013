//! `deployer doctor`: a read-only preflight of the account a workshop will use, one
//! pass / warn / fail line per check with the reason and the fix.
//!
//! Checks: credentials and account (STS); the region and the stacks toggled on; each workshop
//! model offered in the region and access granted (Bedrock `ListFoundationModels`,
//! `GetFoundationModelAvailability`; inference-profile ids are checked through their foundation
//! model); the on-demand requests- and tokens-per-minute quotas of those models (Service Quotas
//! `ListServiceQuotas` for `bedrock`) with the time `--records` records take at them; an
//! existing SageMaker domain in the region (Studio on); the service-linked roles ECS and ELB need
//! (IAM `GetRole`; app on); VPC and Elastic IP headroom for the network stack (EC2 counts
//! against the `vpc` / `ec2` quotas); whether Bedrock batch inference is offered for each model
//! (its per-model batch quotas in Service Quotas); and whether CloudFront VPC origins work in the
//! region and the two zones the network stack will use (EC2 `DescribeAvailabilityZones`, zone
//! ids against [`VPC_ORIGIN_REGIONS`]; app on).
//!
//! Nothing is created or changed. Exit 0 when nothing failed (warnings allowed), 1 when a check
//! failed (the table says which and how to fix it), 2 for usage errors. Without credentials the
//! other checks are not attempted: each would fail for the same reason.

use anyhow::Context;
use aws_config::SdkConfig;
use clap::Args;
use serde::Serialize;
use stacks::StackConfig;

use crate::commands::cost::EstimateArgs;
use crate::config::ConfigArgs;
use crate::cost::PriceTable;
use crate::deployment::Deployment;
use crate::outcome::{Outcome, usage};
use crate::output::Stdout;

/// Arguments of `deployer doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Settings.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Records of one run, for the time it takes at the models' quotas.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub records: u32,
    /// The workshop's models, tokens per record and output format.
    #[command(flatten)]
    pub estimate: EstimateArgs,
}

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Fine.
    Pass,
    /// Works, but worth a look before the workshop.
    Warn,
    /// Will not work as configured.
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was checked.
    pub check: String,
    /// How it ended.
    pub status: Status,
    /// Why.
    pub reason: String,
    /// What to do about it (warnings and failures).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn check(name: &str, status: Status, reason: String, fix: Option<String>) -> Check {
    Check {
        check: name.to_owned(),
        status,
        reason,
        fix,
    }
}

/// The quota codes of the network stack's needs: VPCs per Region and EC2-VPC Elastic IPs.
const VPC_QUOTA: (&str, &str, f64) = ("vpc", "L-F678F1CE", 5.0);
const EIP_QUOTA: (&str, &str, f64) = ("ec2", "L-0263D0A3", 5.0);
/// A run longer than this at the quotas is a warning.
const SLOW_RUN_MINUTES: f64 = 30.0;
/// Cross-region inference profile prefixes (`us.anthropic...`).
const PROFILE_PREFIXES: [&str; 7] = ["us", "eu", "apac", "global", "ca", "jp", "au"];

/// The regions where CloudFront VPC origins are supported, with the zone ids they are not
/// supported in, from the CloudFront Developer Guide, "Restrict access with VPC origins",
/// section "Supported AWS Regions for VPC origins" (read 2026-12-07). The app stack's VPC
/// origin has an interface in each private subnet, so both of the network stack's zones must
/// be supported.
pub const VPC_ORIGIN_REGIONS: &[(&str, &[&str])] = &[
    ("us-east-2", &[]),
    ("us-east-1", &["use1-az3"]),
    ("us-west-1", &["usw1-az2"]),
    ("us-west-2", &[]),
    ("af-south-1", &[]),
    ("ap-east-1", &[]),
    ("ap-south-1", &[]),
    ("ap-south-2", &[]),
    ("ap-southeast-3", &[]),
    ("ap-southeast-4", &[]),
    ("ap-northeast-3", &[]),
    ("ap-southeast-1", &[]),
    ("ap-southeast-2", &[]),
    ("ap-northeast-1", &["apne1-az3"]),
    ("ap-northeast-2", &[]),
    ("ap-southeast-7", &[]),
    ("ap-southeast-5", &[]),
    ("ap-east-2", &[]),
    ("ca-central-1", &["cac1-az3"]),
    ("ca-west-1", &[]),
    ("eu-central-1", &[]),
    ("eu-west-1", &[]),
    ("eu-west-2", &[]),
    ("eu-south-1", &[]),
    ("eu-west-3", &[]),
    ("eu-south-2", &[]),
    ("eu-north-1", &[]),
    ("eu-central-2", &[]),
    ("il-central-1", &[]),
    ("me-south-1", &[]),
    ("me-central-1", &[]),
    ("sa-east-1", &[]),
    ("mx-central-1", &[]),
];

/// A model the workshop uses, resolved from the price table or taken as a Bedrock id.
struct WorkshopModel {
    label: String,
    /// The id the app calls (a foundation model or an inference profile).
    model_id: String,
    /// The foundation model behind it.
    foundation_id: String,
    /// Whether `model_id` is a cross-region inference profile.
    profile: bool,
    bedrock: bool,
}

fn resolve_models(names: &[String]) -> anyhow::Result<Vec<WorkshopModel>> {
    let table = PriceTable::shipped()?;
    let mut models = Vec::with_capacity(names.len());
    for name in names {
        let (label, model_id) = match table.model(name) {
            Some((alias, price)) => (alias.to_owned(), price.model_id.clone()),
            None if name.contains('.') => (name.clone(), name.clone()),
            None => {
                return Err(usage(anyhow::anyhow!(
                    "--models: `{name}` is neither a model of {} nor a Bedrock model id",
                    crate::cost::PRICE_TABLE_PATH
                )));
            }
        };
        let (foundation_id, profile) = match model_id.split_once('.') {
            Some((geo, rest)) if PROFILE_PREFIXES.contains(&geo) => (rest.to_owned(), true),
            _ => (model_id.clone(), false),
        };
        models.push(WorkshopModel {
            label,
            bedrock: model_id.contains('.'),
            model_id,
            foundation_id,
            profile,
        });
    }
    Ok(models)
}

/// Runs `deployer doctor`.
pub async fn run(
    args: &DoctorArgs,
    env: &dyn Fn(&str) -> Option<String>,
    stdout: &mut Stdout,
) -> anyhow::Result<Outcome> {
    let models = resolve_models(&args.estimate.models)?;
    let deployment = Deployment::open(&args.config, env).await?;
    let report = diagnose(&deployment, &models, args).await;
    let failed: Vec<&str> = report
        .checks
        .iter()
        .filter(|check| check.status == Status::Fail)
        .map(|check| check.check.as_str())
        .collect();
    if args.estimate.json {
        let mut text = serde_json::to_string_pretty(&report)?;
        text.push('\n');
        stdout.print(text)?;
    } else {
        stdout.print(render(&report))?;
    }
    if failed.is_empty() {
        Ok(Outcome::Done)
    } else {
        // The last line names the failures, so `fleet doctor` shows them as the root cause.
        eprintln!(
            "error: {} check(s) failed: {}",
            failed.len(),
            failed.join(", ")
        );
        Ok(Outcome::CheckFailed)
    }
}

/// The report of one account.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The account, when the credentials work.
    pub account: Option<String>,
    /// The region checked.
    pub region: String,
    /// Every check, in order.
    pub checks: Vec<Check>,
}

async fn diagnose(deployment: &Deployment, models: &[WorkshopModel], args: &DoctorArgs) -> Report {
    let cfg = &deployment.cfg;
    let sdk = &deployment.sdk;
    let mut checks = Vec::new();
    let account = match crate::aws::account_id(sdk).await {
        Ok(account) => {
            checks.push(check(
                "credentials",
                Status::Pass,
                format!("account {account}"),
                None,
            ));
            account
        }
        Err(err) => {
            checks.push(check(
                "credentials",
                Status::Fail,
                format!("{err:#}"),
                Some("provide credentials of the workshop account (`aws sso login`, AWS_PROFILE, or access keys); the other checks need them".into()),
            ));
            return Report {
                account: None,
                region: cfg.region.clone(),
                checks,
            };
        }
    };
    let kinds: Vec<&str> = deployment
        .stacks
        .iter()
        .map(|stack| stack.kind.short_name())
        .collect();
    checks.push(check(
        "region",
        Status::Pass,
        format!(
            "{} is a region of the commercial partition; stacks toggled on: {} (the service checks below confirm the region answers)",
            cfg.region,
            kinds.join(", ")
        ),
        None,
    ));
    let quotas = list_quotas(sdk, "bedrock").await;
    checks.extend(model_checks(sdk, cfg, models, &quotas, args).await);
    if cfg.deploy_sagemaker_domain {
        checks.push(domain_check(sdk, cfg).await);
    }
    if cfg.deploy_prompt_app {
        for (role, service) in [
            ("AWSServiceRoleForECS", "ecs.amazonaws.com"),
            (
                "AWSServiceRoleForElasticLoadBalancing",
                "elasticloadbalancing.amazonaws.com",
            ),
        ] {
            checks.push(role_check(sdk, role, service).await);
        }
    }
    checks.extend(headroom_checks(deployment).await);
    if cfg.deploy_prompt_app {
        checks.push(vpc_origin_check(sdk, cfg).await);
    }
    Report {
        account: Some(account),
        region: cfg.region.clone(),
        checks,
    }
}

/// `(quota code, name, value)` of every applied quota of `service`, or why they could not be
/// read.
async fn list_quotas(sdk: &SdkConfig, service: &str) -> Result<Vec<(String, String, f64)>, String> {
    let client = aws_sdk_servicequotas::Client::new(sdk);
    let mut pages = client
        .list_service_quotas()
        .service_code(service)
        .into_paginator()
        .send();
    let mut quotas = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|err| {
            format!(
                "{:#}",
                anyhow::Error::new(aws_sdk_servicequotas::Error::from(err))
            )
        })?;
        for quota in page.quotas() {
            quotas.push((
                quota.quota_code().unwrap_or_default().to_owned(),
                quota.quota_name().unwrap_or_default().to_owned(),
                quota.value().unwrap_or_default(),
            ));
        }
    }
    Ok(quotas)
}

/// Availability, access and quota of each model.
async fn model_checks(
    sdk: &SdkConfig,
    cfg: &StackConfig,
    models: &[WorkshopModel],
    quotas: &Result<Vec<(String, String, f64)>, String>,
    args: &DoctorArgs,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let bedrock = aws_sdk_bedrock::Client::new(sdk);
    let listed = if models.iter().any(|model| model.bedrock) {
        bedrock
            .list_foundation_models()
            .send()
            .await
            .map_err(|err| {
                format!(
                    "{:#}",
                    anyhow::Error::new(aws_sdk_bedrock::Error::from(err))
                )
            })
    } else {
        return checks;
    };
    let listed = match listed {
        Ok(listed) => listed,
        Err(err) => {
            checks.push(check(
                "bedrock",
                Status::Fail,
                format!("cannot list the foundation models of {}: {err}", cfg.region),
                Some(
                    "use a region where Bedrock is offered, and allow bedrock:ListFoundationModels"
                        .into(),
                ),
            ));
            return checks;
        }
    };
    for model in models {
        let name = format!("model {}", model.label);
        if !model.bedrock {
            checks.push(check(
                &name,
                Status::Warn,
                format!(
                    "{} is not a Bedrock model; doctor cannot check it",
                    model.model_id
                ),
                Some(format!(
                    "make sure the secret {} holds a working API key",
                    cfg.openai_secret_name
                )),
            ));
            continue;
        }
        let Some(summary) = listed
            .model_summaries()
            .iter()
            .find(|summary| summary.model_id() == model.foundation_id)
        else {
            checks.push(check(
                &name,
                Status::Fail,
                format!("{} is not offered in {}", model.foundation_id, cfg.region),
                Some("pick a region that offers it (Bedrock console, model catalog) or another model".into()),
            ));
            continue;
        };
        let display = format!(
            "{} {}",
            summary.provider_name().unwrap_or_default(),
            summary.model_name().unwrap_or_default()
        );
        let access = bedrock
            .get_foundation_model_availability()
            .model_id(&model.foundation_id)
            .send()
            .await;
        match access {
            Err(err) => checks.push(check(
                &name,
                Status::Warn,
                format!(
                    "{display} is offered, but its access could not be read: {:#}",
                    anyhow::Error::new(aws_sdk_bedrock::Error::from(err))
                ),
                Some("allow bedrock:GetFoundationModelAvailability, or check Model access in the Bedrock console".into()),
            )),
            Ok(access) => {
                use aws_sdk_bedrock::types::{AuthorizationStatus, EntitlementAvailability, RegionAvailability};
                let mut missing = Vec::new();
                if *access.authorization_status() != AuthorizationStatus::Authorized {
                    missing.push("not authorized");
                }
                if *access.entitlement_availability() != EntitlementAvailability::Available {
                    missing.push("no entitlement (agreement not accepted)");
                }
                if *access.region_availability() != RegionAvailability::Available {
                    missing.push("not available in the region");
                }
                if missing.is_empty() {
                    checks.push(check(
                        &name,
                        Status::Pass,
                        format!("{display} ({}) is offered and access is granted", model.model_id),
                        None,
                    ));
                } else {
                    checks.push(check(
                        &name,
                        Status::Fail,
                        format!("{display} ({}): {}", model.model_id, missing.join(", ")),
                        Some(format!("Bedrock console > Model access: request access to {display} in {} (Anthropic models ask for a use case first)", cfg.region)),
                    ));
                }
            }
        }
        checks.push(quota_check(model, &display, quotas, args));
        checks.push(batch_check(
            model,
            summary.model_name().unwrap_or_default(),
            &display,
            quotas,
        ));
    }
    checks
}

/// Whether Bedrock batch inference (`eval --mode batch`) is offered for the model here: AWS
/// lists per-model batch quotas in Service Quotas ("Records per batch inference job for
/// <model>", "Sum of in-progress and submitted batch inference jobs using a base model for
/// <model>") only for the models and regions that offer it.
fn batch_check(
    model: &WorkshopModel,
    model_name: &str,
    display: &str,
    quotas: &Result<Vec<(String, String, f64)>, String>,
) -> Check {
    let name = format!("batch {}", model.label);
    let quotas = match quotas {
        Ok(quotas) => quotas,
        Err(err) => {
            return check(
                &name,
                Status::Warn,
                format!(
                    "cannot read the Bedrock quotas, so not whether batch inference is offered: {err}"
                ),
                Some("allow servicequotas:ListServiceQuotas".into()),
            );
        }
    };
    // Batch quotas name the model without its provider ("... for Claude 3 Haiku"); accept
    // the provider's prefix too.
    let suffixes = [
        format!(" for {}", model_name.to_ascii_lowercase()),
        format!(" for {}", display.to_ascii_lowercase()),
    ];
    let find = |start: &str| {
        quotas.iter().find(|(_, quota_name, _)| {
            let lower = quota_name.to_ascii_lowercase();
            lower.starts_with(start) && suffixes.iter().any(|suffix| lower.ends_with(suffix))
        })
    };
    let Some(records) = find("records per batch inference job for") else {
        return check(
            &name,
            Status::Warn,
            format!(
                "no batch inference quota listed for {display}: batch inference is probably not offered for it here, so `eval --mode batch` cannot use it"
            ),
            Some("evaluate it on demand (the default mode), or pick a model and region that offer batch inference (Bedrock user guide, \"Supported Regions and models for batch inference\")".into()),
        );
    };
    let jobs = find("sum of in-progress and submitted batch inference jobs");
    if let Some((code, _, _)) = jobs.filter(|(_, _, value)| *value <= 0.0) {
        return check(
            &name,
            Status::Fail,
            format!(
                "{display}: batch inference is offered, but no job may be in progress (quota {code} is 0)"
            ),
            Some(format!(
                "request an increase of {code} in Service Quotas, or evaluate on demand"
            )),
        );
    }
    let jobs_text = jobs.map_or_else(String::new, |(code, _, value)| {
        format!("; {value} job(s) in progress at once ({code})")
    });
    check(
        &name,
        Status::Pass,
        format!(
            "{display}: batch inference offered, up to {} records per job ({}){jobs_text}; a job takes at least 100 records (fewer run on demand)",
            records.2, records.0
        ),
        None,
    )
}

/// Whether CloudFront VPC origins work in the region and in the network stack's zones.
async fn vpc_origin_check(sdk: &SdkConfig, cfg: &StackConfig) -> Check {
    let ec2 = aws_sdk_ec2::Client::new(sdk);
    let zones = ec2
        .describe_availability_zones()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("zone-type")
                .values("availability-zone")
                .build(),
        )
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("state")
                .values("available")
                .build(),
        )
        .send()
        .await;
    match zones {
        Ok(answer) => {
            let zones: Vec<(String, String)> = answer
                .availability_zones()
                .iter()
                .map(|zone| {
                    (
                        zone.zone_name().unwrap_or_default().to_owned(),
                        zone.zone_id().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            vpc_origin_verdict(&cfg.region, zones)
        }
        Err(err) => check(
            "vpc origin zones",
            Status::Warn,
            format!(
                "cannot list the availability zones: {:#}",
                anyhow::Error::new(aws_sdk_ec2::Error::from(err))
            ),
            Some("allow ec2:DescribeAvailabilityZones".into()),
        ),
    }
}

/// The verdict on `zones` (name, zone id) of `region`: the network stack puts its subnets in
/// the first two zones `Fn::GetAZs` lists (the available zones by name).
pub fn vpc_origin_verdict(region: &str, mut zones: Vec<(String, String)>) -> Check {
    let name = "vpc origin zones";
    let Some((_, excluded)) = VPC_ORIGIN_REGIONS
        .iter()
        .find(|(supported, _)| *supported == region)
    else {
        return check(
            name,
            Status::Fail,
            format!("CloudFront VPC origins are not supported in {region}, and the app stack reaches its load balancer through one"),
            Some("deploy to a region that supports VPC origins (CloudFront developer guide, \"Supported AWS Regions for VPC origins\")".into()),
        );
    };
    zones.sort();
    let used: Vec<&(String, String)> = zones.iter().take(2).collect();
    if used.len() < 2 {
        return check(
            name,
            Status::Fail,
            format!(
                "{region} lists {} available zone(s); the network stack needs two",
                used.len()
            ),
            Some("deploy to a region with at least two available zones".into()),
        );
    }
    let listed = used
        .iter()
        .map(|(zone, id)| format!("{zone} ({id})"))
        .collect::<Vec<_>>()
        .join(", ");
    let bad: Vec<&str> = used
        .iter()
        .filter(|(_, id)| excluded.contains(&id.as_str()))
        .map(|(zone, _)| zone.as_str())
        .collect();
    if bad.is_empty() {
        check(
            name,
            Status::Pass,
            format!("the network stack's zones {listed} support CloudFront VPC origins"),
            None,
        )
    } else {
        check(
            name,
            Status::Fail,
            format!(
                "the network stack's zones are {listed}, and CloudFront VPC origins are not supported in {} (zone ids {})",
                bad.join(", "),
                excluded.join(", ")
            ),
            Some("deploy to another region: zone names map to zone ids per account, so the first two zones of this account include an excluded one".into()),
        )
    }
}

/// The model's requests- and tokens-per-minute quotas and the time a run takes at them.
fn quota_check(
    model: &WorkshopModel,
    display: &str,
    quotas: &Result<Vec<(String, String, f64)>, String>,
    args: &DoctorArgs,
) -> Check {
    let name = format!("quota {}", model.label);
    let quotas = match quotas {
        Ok(quotas) => quotas,
        Err(err) => {
            return check(
                &name,
                Status::Warn,
                format!("cannot read the Bedrock quotas: {err}"),
                Some(
                    "allow servicequotas:ListServiceQuotas to see the quotas before the workshop"
                        .into(),
                ),
            );
        }
    };
    let prefix = if model.profile {
        "cross-region"
    } else {
        "on-demand"
    };
    let suffix = format!(" per minute for {}", display.to_ascii_lowercase());
    let find = |unit: &str| {
        quotas.iter().find(|(_, quota_name, _)| {
            let lower = quota_name.to_ascii_lowercase();
            lower.starts_with(prefix) && lower.ends_with(&format!("{unit}{suffix}"))
        })
    };
    let (Some(requests), Some(tokens)) = (find("requests"), find("tokens")) else {
        return check(
            &name,
            Status::Warn,
            format!("no {prefix} requests and tokens per minute quotas listed for {display}"),
            Some("look the model up in the Service Quotas console (service Amazon Bedrock)".into()),
        );
    };
    let (rpm, tpm) = (requests.2, tokens.2);
    let records = f64::from(args.records);
    let tokens_per_record = f64::from(args.estimate.input_tokens + args.estimate.output_tokens);
    if rpm <= 0.0 || tpm <= 0.0 {
        return check(
            &name,
            Status::Fail,
            format!("{display}: {rpm} requests / {tpm} tokens per minute: no call can succeed"),
            Some(format!(
                "request an increase of {} and {} in Service Quotas",
                requests.0, tokens.0
            )),
        );
    }
    let minutes = (records / rpm).max(records * tokens_per_record / tpm);
    let reason = format!(
        "{display}: {rpm} requests and {tpm} tokens per minute; {} records of {tokens_per_record} tokens take at least {minutes:.1} min",
        args.records
    );
    if minutes > SLOW_RUN_MINUTES {
        check(
            &name,
            Status::Warn,
            reason,
            Some(format!(
                "request an increase of {} (requests) and {} (tokens) in Service Quotas, or plan smaller runs; the quota is shared by every participant of the account",
                requests.0, tokens.0
            )),
        )
    } else {
        check(&name, Status::Pass, reason, None)
    }
}

/// An existing SageMaker domain in the region.
async fn domain_check(sdk: &SdkConfig, cfg: &StackConfig) -> Check {
    let ours = format!("{}-studio", cfg.prefix);
    let client = aws_sdk_sagemaker::Client::new(sdk);
    let mut pages = client.list_domains().into_paginator().send();
    let mut others = Vec::new();
    while let Some(page) = pages.next().await {
        match page {
            Ok(page) => {
                for domain in page.domains() {
                    let name = domain.domain_name().unwrap_or_default();
                    if name != ours {
                        others.push(format!(
                            "{name} ({})",
                            domain.domain_id().unwrap_or_default()
                        ));
                    }
                }
            }
            Err(err) => {
                return check(
                    "sagemaker domain",
                    Status::Warn,
                    format!(
                        "cannot list SageMaker domains: {:#}",
                        anyhow::Error::new(aws_sdk_sagemaker::Error::from(err))
                    ),
                    Some("allow sagemaker:ListDomains".into()),
                );
            }
        }
    }
    if others.is_empty() {
        check(
            "sagemaker domain",
            Status::Pass,
            format!("no other SageMaker domain in {}", cfg.region),
            None,
        )
    } else {
        check(
            "sagemaker domain",
            Status::Warn,
            format!(
                "{} already has SageMaker domain(s): {}; the studio stack creates another ({ours}), which the domains-per-region quota may refuse and participants would see both",
                cfg.region,
                others.join(", ")
            ),
            Some("use the existing domain (DEPLOY_SAGEMAKER_DOMAIN=no), delete it, or deploy to another region".into()),
        )
    }
}

/// A service-linked role ECS or ELB needs.
async fn role_check(sdk: &SdkConfig, role: &str, service: &str) -> Check {
    let name = format!("role {role}");
    match aws_sdk_iam::Client::new(sdk)
        .get_role()
        .role_name(role)
        .send()
        .await
    {
        Ok(_) => check(&name, Status::Pass, "exists".into(), None),
        Err(err) => {
            let missing = err
                .as_service_error()
                .is_some_and(|service_error| service_error.is_no_such_entity_exception());
            if missing {
                check(
                    &name,
                    Status::Warn,
                    format!(
                        "missing; {service} creates it at first use only if the deploying principal may call iam:CreateServiceLinkedRole"
                    ),
                    Some(format!(
                        "aws iam create-service-linked-role --aws-service-name {service}"
                    )),
                )
            } else {
                check(
                    &name,
                    Status::Warn,
                    format!(
                        "cannot read it: {:#}",
                        anyhow::Error::new(aws_sdk_iam::Error::from(err))
                    ),
                    Some("allow iam:GetRole on service-linked roles".into()),
                )
            }
        }
    }
}

/// VPC and Elastic IP headroom for the network stack (none needed once it is deployed).
async fn headroom_checks(deployment: &Deployment) -> Vec<Check> {
    let sdk = &deployment.sdk;
    let cfg = &deployment.cfg;
    let network = stacks::stacks::stack_name(cfg, stacks::stacks::StackKind::Network);
    let deployed = matches!(deployment.cfn.describe(&network).await, Ok(Some(_)));
    let ec2 = aws_sdk_ec2::Client::new(sdk);
    let mut checks = Vec::new();
    let vpcs = count_vpcs(&ec2).await;
    let addresses = ec2
        .describe_addresses()
        .send()
        .await
        .map(|answer| answer.addresses().len())
        .map_err(|err| anyhow::Error::new(aws_sdk_ec2::Error::from(err)));
    let needs = [
        (
            "vpc headroom",
            "VPCs",
            VPC_QUOTA,
            vpcs,
            if deployed { 0 } else { 1 },
        ),
        (
            "elastic ip headroom",
            "Elastic IPs",
            EIP_QUOTA,
            addresses,
            if deployed {
                0
            } else {
                cfg.nat_gateways() as usize
            },
        ),
    ];
    for (name, what, (service, code, default), used, needed) in needs {
        let used = match used {
            Ok(used) => used,
            Err(err) => {
                checks.push(check(
                    name,
                    Status::Warn,
                    format!("cannot count {what}: {err:#}"),
                    Some("allow ec2:DescribeVpcs and ec2:DescribeAddresses".into()),
                ));
                continue;
            }
        };
        let (quota, source) = match list_quotas(sdk, service).await {
            Ok(quotas) => match quotas.iter().find(|(quota_code, _, _)| quota_code == code) {
                Some((_, _, value)) => (*value, "applied quota"),
                None => (default, "default quota; Service Quotas did not list it"),
            },
            Err(_) => (default, "default quota; Service Quotas could not be read"),
        };
        let free = (quota as usize).saturating_sub(used);
        let reason = format!(
            "{used} of {quota} {what} used ({source} {code}); the network stack needs {needed} more"
        );
        if needed > free {
            checks.push(check(
                name,
                Status::Fail,
                reason,
                Some(format!(
                    "release unused {what} or request an increase of {code} in Service Quotas"
                )),
            ));
        } else {
            checks.push(check(name, Status::Pass, reason, None));
        }
    }
    checks
}

async fn count_vpcs(ec2: &aws_sdk_ec2::Client) -> anyhow::Result<usize> {
    let mut pages = ec2.describe_vpcs().into_paginator().send();
    let mut count = 0;
    while let Some(page) = pages.next().await {
        let page = page
            .map_err(|err| anyhow::Error::new(aws_sdk_ec2::Error::from(err)))
            .context("counting VPCs")?;
        count += page.vpcs().len();
    }
    Ok(count)
}

/// The report as text.
pub fn render(report: &Report) -> String {
    let mut out = format!(
        "doctor: account {}, region {}\n",
        report.account.as_deref().unwrap_or("unknown"),
        report.region
    );
    let width = report
        .checks
        .iter()
        .map(|check| check.check.len())
        .max()
        .unwrap_or(0);
    for check in &report.checks {
        let status = match check.status {
            Status::Pass => "pass",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        };
        out.push_str(&format!(
            "{status}  {:width$}  {}\n",
            check.check, check.reason
        ));
        if let Some(fix) = &check.fix {
            out.push_str(&format!("      {:width$}  fix: {fix}\n", ""));
        }
    }
    let count = |status: Status| {
        report
            .checks
            .iter()
            .filter(|check| check.status == status)
            .count()
    };
    out.push_str(&format!(
        "{} passed, {} warning(s), {} failed\n",
        count(Status::Pass),
        count(Status::Warn),
        count(Status::Fail)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zones(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(name, id)| ((*name).to_owned(), (*id).to_owned()))
            .collect()
    }

    #[test]
    fn supported_zones_pass() {
        let verdict = vpc_origin_verdict(
            "us-east-1",
            zones(&[
                ("us-east-1b", "use1-az1"),
                ("us-east-1a", "use1-az6"),
                ("us-east-1e", "use1-az3"),
            ]),
        );
        assert_eq!(verdict.status, Status::Pass, "{verdict:?}");
        assert!(
            verdict
                .reason
                .contains("us-east-1a (use1-az6), us-east-1b (use1-az1)"),
            "{}",
            verdict.reason
        );
    }

    #[test]
    fn an_excluded_zone_among_the_first_two_fails() {
        // Zone names map to ids per account: here us-east-1a is the excluded use1-az3.
        let verdict = vpc_origin_verdict(
            "us-east-1",
            zones(&[("us-east-1a", "use1-az3"), ("us-east-1b", "use1-az1")]),
        );
        assert_eq!(verdict.status, Status::Fail, "{verdict:?}");
        assert!(
            verdict.reason.contains("not supported in us-east-1a"),
            "{}",
            verdict.reason
        );
    }

    #[test]
    fn an_excluded_zone_after_the_first_two_passes() {
        let verdict = vpc_origin_verdict(
            "ap-northeast-1",
            zones(&[
                ("ap-northeast-1a", "apne1-az4"),
                ("ap-northeast-1c", "apne1-az1"),
                ("ap-northeast-1d", "apne1-az3"),
            ]),
        );
        assert_eq!(verdict.status, Status::Pass, "{verdict:?}");
    }

    #[test]
    fn an_unsupported_region_fails() {
        let verdict = vpc_origin_verdict(
            "ap-southeast-6",
            zones(&[
                ("ap-southeast-6a", "apse6-az1"),
                ("ap-southeast-6b", "apse6-az2"),
            ]),
        );
        assert_eq!(verdict.status, Status::Fail, "{verdict:?}");
        assert!(
            verdict.reason.contains("not supported in ap-southeast-6"),
            "{}",
            verdict.reason
        );
    }

    #[test]
    fn one_zone_fails() {
        let verdict = vpc_origin_verdict("us-west-2", zones(&[("us-west-2a", "usw2-az1")]));
        assert_eq!(verdict.status, Status::Fail, "{verdict:?}");
    }
}
