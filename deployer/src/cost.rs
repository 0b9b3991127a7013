//! The monthly cost model of `deployer cost`: what one account of a configuration costs idle
//! (running and paused), and what 1,000 evaluated records add, line by line.
//!
//! Prices come from the table shipped in `deployer/prices/us-east-1.toml` (embedded), with its
//! region and the date it was read; what is billed comes from the synthesized templates
//! themselves (NAT gateways, addresses, load balancers, secrets, log groups, keys, Studio
//! domains are counted there), so the estimate follows the stacks without a second list of
//! resources. Resources under the `Running` condition are what `deployer pause` removes.
//!
//! Pure: no IO, no clock; the same config and stacks give the same estimate.

use std::collections::BTreeMap;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use stacks::{StackConfig, SynthStack};

/// The price table shipped with the deployer.
pub const PRICE_TABLE: &str = include_str!("../prices/us-east-1.toml");

/// Where the price table lives in the repository (for messages).
pub const PRICE_TABLE_PATH: &str = "deployer/prices/us-east-1.toml";

/// A price table: list prices of one region, the date they were read, what `cost` assumes
/// about an account's use, and the per-token prices of the workshop models.
#[derive(Debug, Clone, Deserialize)]
pub struct PriceTable {
    /// Region of the prices.
    pub region: String,
    /// When the prices were compared with AWS's pricing pages.
    pub read_on: String,
    /// Hours billed in a month.
    pub hours_per_month: f64,
    /// Unit prices.
    pub prices: Prices,
    /// Usage assumptions.
    pub assumptions: Assumptions,
    /// Model prices by catalog alias.
    pub models: BTreeMap<String, ModelPrice>,
}

/// Unit prices in USD (see the table's comments for each source).
#[derive(Debug, Clone, Deserialize)]
#[allow(missing_docs)]
pub struct Prices {
    pub nat_gateway_hour: f64,
    pub nat_gateway_gb: f64,
    pub public_ipv4_hour: f64,
    pub alb_hour: f64,
    pub alb_lcu_hour: f64,
    pub fargate_vcpu_hour: f64,
    pub fargate_gb_hour: f64,
    pub fargate_spot_vcpu_hour: f64,
    pub fargate_spot_gb_hour: f64,
    pub dynamodb_write_million: f64,
    pub dynamodb_read_million: f64,
    pub dynamodb_gb_month: f64,
    pub secret_month: f64,
    pub logs_ingest_gb: f64,
    pub logs_storage_gb_month: f64,
    pub kms_key_month: f64,
    pub efs_gb_month: f64,
    pub budget_month: f64,
    pub gateway_endpoint_month: f64,
}

/// What an account is assumed to use.
#[derive(Debug, Clone, Deserialize)]
#[allow(missing_docs)]
pub struct Assumptions {
    pub idle_log_gb_per_group: f64,
    pub dynamodb_stored_gb: f64,
    pub studio_efs_gb: f64,
    pub record_write_units: f64,
    pub record_read_units: f64,
    pub record_nat_bytes: f64,
    pub record_log_bytes: f64,
    pub alb_lcu_hours_per_1000_records: f64,
}

/// A model's on-demand price per 1,000 tokens.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelPrice {
    /// Bedrock model or inference profile id (or the OpenAI model name).
    pub model_id: String,
    /// USD per 1,000 input tokens.
    pub input_1k: f64,
    /// USD per 1,000 output tokens.
    pub output_1k: f64,
}

impl PriceTable {
    /// The shipped table.
    pub fn shipped() -> anyhow::Result<PriceTable> {
        toml::from_str(PRICE_TABLE).with_context(|| format!("internal: {PRICE_TABLE_PATH}"))
    }

    /// The model of `name`: a catalog alias of the table, or one of their model ids.
    pub fn model(&self, name: &str) -> Option<(&str, &ModelPrice)> {
        self.models
            .iter()
            .find(|(alias, price)| alias.as_str() == name || price.model_id == name)
            .map(|(alias, price)| (alias.as_str(), price))
    }
}

/// What a run of records looks like, for the per-1,000-records figure.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Catalog aliases of the models each record goes to.
    pub models: Vec<String>,
    /// Prompt tokens per record and model.
    pub input_tokens: u32,
    /// Answer tokens per record and model.
    pub output_tokens: u32,
}

/// One line of the estimate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    /// What is billed.
    pub item: String,
    /// How the figure was computed.
    pub detail: String,
    /// USD a month while running idle.
    pub running_usd: f64,
    /// USD a month while paused.
    pub paused_usd: f64,
}

/// One line of the per-1,000-records estimate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageLine {
    /// What is billed.
    pub item: String,
    /// How the figure was computed.
    pub detail: String,
    /// USD per 1,000 records.
    pub usd: f64,
}

/// The estimate of one account.
#[derive(Debug, Clone, Serialize)]
pub struct Estimate {
    /// Region of the prices.
    pub price_region: String,
    /// When the prices were read.
    pub prices_read_on: String,
    /// Idle lines.
    pub lines: Vec<Line>,
    /// Sum of the running column.
    pub running_usd: f64,
    /// Sum of the paused column.
    pub paused_usd: f64,
    /// Per-1,000-records lines.
    pub per_1000_records: Vec<UsageLine>,
    /// Sum of those.
    pub per_1000_records_usd: f64,
}

/// Counts of the billed resources in `stacks`: (all, those that pause removes).
fn count(stacks: &[SynthStack], resource_type: &str) -> (u32, u32) {
    let mut all = 0;
    let mut paused_away = 0;
    for stack in stacks {
        for (_, entry) in stack.template.resources() {
            if entry.resource_type == resource_type {
                all += 1;
                if entry
                    .condition
                    .as_ref()
                    .is_some_and(|condition| condition.as_str() == "Running")
                {
                    paused_away += 1;
                }
            }
        }
    }
    (all, paused_away)
}

/// How many running tasks get a public IPv4 address: the desired tasks of every ECS service
/// whose network configuration assigns one (`DEPLOY_TASK_EGRESS=public-ip`), read from the
/// templates. Tasks run only while not paused.
fn public_ip_tasks(cfg: &StackConfig, stacks: &[SynthStack]) -> u32 {
    let services = stacks
        .iter()
        .flat_map(|stack| stack.template.resources())
        .filter(|(_, entry)| entry.resource_type == "AWS::ECS::Service")
        .filter(|(_, entry)| {
            entry
                .properties
                .get("NetworkConfiguration")
                .and_then(|config| config.get("AwsvpcConfiguration"))
                .and_then(|config| config.get("AssignPublicIp"))
                .and_then(serde_json::Value::as_str)
                == Some("ENABLED")
        })
        .count();
    u32::try_from(services)
        .unwrap_or(u32::MAX)
        .saturating_mul(cfg.task_count)
}

/// Rounds to cents (what is printed and compared).
pub fn cents(usd: f64) -> f64 {
    (usd * 100.0).round() / 100.0
}

/// The estimate of one account of `cfg` (whose synthesized stacks are `stacks`).
pub fn estimate(
    cfg: &StackConfig,
    stacks: &[SynthStack],
    table: &PriceTable,
    workload: &Workload,
) -> anyhow::Result<Estimate> {
    let p = &table.prices;
    let a = &table.assumptions;
    let hours = table.hours_per_month;
    let mut lines = Vec::new();
    let mut add = |item: &str, detail: String, running: f64, paused: f64| {
        lines.push(Line {
            item: item.to_owned(),
            detail,
            running_usd: cents(running),
            paused_usd: cents(paused),
        });
    };

    let (nat, nat_paused) = count(stacks, "AWS::EC2::NatGateway");
    let nat_kept = nat - nat_paused;
    add(
        "NAT gateways",
        format!("{nat} × {hours} h × {} USD", p.nat_gateway_hour),
        f64::from(nat) * hours * p.nat_gateway_hour,
        f64::from(nat_kept) * hours * p.nat_gateway_hour,
    );
    let (eip, eip_paused) = count(stacks, "AWS::EC2::EIP");
    add(
        "public IPv4 addresses",
        format!("{eip} × {hours} h × {} USD", p.public_ipv4_hour),
        f64::from(eip) * hours * p.public_ipv4_hour,
        f64::from(eip - eip_paused) * hours * p.public_ipv4_hour,
    );
    let (endpoints, _) = count(stacks, "AWS::EC2::VPCEndpoint");
    if endpoints > 0 {
        add(
            "gateway VPC endpoints (S3, DynamoDB)",
            format!("{endpoints} × {} USD", p.gateway_endpoint_month),
            f64::from(endpoints) * p.gateway_endpoint_month,
            f64::from(endpoints) * p.gateway_endpoint_month,
        );
    }
    let (albs, albs_paused) = count(stacks, "AWS::ElasticLoadBalancingV2::LoadBalancer");
    if albs > 0 {
        add(
            "application load balancer",
            format!(
                "{albs} × {hours} h × {} USD (idle: no LCUs); {} while paused",
                p.alb_hour,
                if albs_paused == albs {
                    "deleted"
                } else {
                    "kept"
                }
            ),
            f64::from(albs) * hours * p.alb_hour,
            f64::from(albs - albs_paused) * hours * p.alb_hour,
        );
    }
    let public_tasks = public_ip_tasks(cfg, stacks);
    if public_tasks > 0 {
        add(
            "public IPv4 addresses of the tasks",
            format!(
                "{public_tasks} task(s) × {hours} h × {} USD; none while paused",
                p.public_ipv4_hour
            ),
            f64::from(public_tasks) * hours * p.public_ipv4_hour,
            0.0,
        );
    }
    let (services, _) = count(stacks, "AWS::ECS::Service");
    if services > 0 {
        let vcpu = f64::from(cfg.task_size.cpu()) / 1024.0;
        let gb = f64::from(cfg.task_size.memory()) / 1024.0;
        let (vcpu_hour, gb_hour, kind) = if cfg.fargate_spot {
            (
                p.fargate_spot_vcpu_hour,
                p.fargate_spot_gb_hour,
                "Fargate Spot",
            )
        } else {
            (p.fargate_vcpu_hour, p.fargate_gb_hour, "Fargate")
        };
        let tasks = f64::from(cfg.task_count);
        add(
            kind,
            format!(
                "{} task(s) × {hours} h × ({vcpu} vCPU × {vcpu_hour} + {gb} GB × {gb_hour} USD); none while paused",
                cfg.task_count
            ),
            tasks * hours * (vcpu * vcpu_hour + gb * gb_hour),
            0.0,
        );
    }
    let (tables, _) = count(stacks, "AWS::DynamoDB::Table");
    if tables > 0 {
        let stored = f64::from(tables) * a.dynamodb_stored_gb;
        add(
            "DynamoDB on demand",
            format!(
                "{stored} GB stored × {} USD (no requests while idle; 25 GB always free)",
                p.dynamodb_gb_month
            ),
            stored * p.dynamodb_gb_month,
            stored * p.dynamodb_gb_month,
        );
    }
    let (secrets, _) = count(stacks, "AWS::SecretsManager::Secret");
    if secrets > 0 {
        add(
            "Secrets Manager",
            format!("{secrets} secret(s) × {} USD", p.secret_month),
            f64::from(secrets) * p.secret_month,
            f64::from(secrets) * p.secret_month,
        );
    }
    let (groups, _) = count(stacks, "AWS::Logs::LogGroup");
    if groups > 0 {
        let gb = f64::from(groups) * a.idle_log_gb_per_group;
        let per_gb = p.logs_ingest_gb + p.logs_storage_gb_month;
        add(
            "CloudWatch Logs",
            format!(
                "{groups} group(s) × {} GB × ({} ingest + {} storage USD); a tenth while paused",
                a.idle_log_gb_per_group, p.logs_ingest_gb, p.logs_storage_gb_month
            ),
            gb * per_gb,
            gb * per_gb / 10.0,
        );
    }
    let (keys, _) = count(stacks, "AWS::KMS::Key");
    let own_key = u32::from(matches!(cfg.kms_key, stacks::config::KmsKey::Existing(_)));
    if keys > 0 || own_key > 0 {
        let detail = if keys > 0 {
            format!("{keys} key(s) × {} USD", p.kms_key_month)
        } else {
            "your existing key (billed already; not counted)".to_owned()
        };
        add(
            "KMS customer managed key",
            detail,
            f64::from(keys) * p.kms_key_month,
            f64::from(keys) * p.kms_key_month,
        );
    }
    let (domains, _) = count(stacks, "AWS::SageMaker::Domain");
    if domains > 0 {
        let gb = f64::from(domains) * a.studio_efs_gb;
        add(
            "SageMaker Studio",
            format!(
                "domain free; {gb} GB EFS × {} USD (apps billed only while running)",
                p.efs_gb_month
            ),
            gb * p.efs_gb_month,
            gb * p.efs_gb_month,
        );
    }
    let (budgets, _) = count(stacks, "AWS::Budgets::Budget");
    if budgets > 0 {
        add(
            "AWS Budgets",
            format!(
                "{budgets} budget(s) × {} USD (the first two are free)",
                p.budget_month
            ),
            f64::from(budgets) * p.budget_month,
            f64::from(budgets) * p.budget_month,
        );
    }
    let running_usd = cents(lines.iter().map(|line| line.running_usd).sum());
    let paused_usd = cents(lines.iter().map(|line| line.paused_usd).sum());

    let per_1000_records = usage(cfg, stacks, table, workload)?;
    let per_1000_records_usd = cents(per_1000_records.iter().map(|line| line.usd).sum());
    Ok(Estimate {
        price_region: table.region.clone(),
        prices_read_on: table.read_on.clone(),
        lines,
        running_usd,
        paused_usd,
        per_1000_records,
        per_1000_records_usd,
    })
}

/// What 1,000 evaluated records add: the models' tokens, and the infrastructure they use.
fn usage(
    cfg: &StackConfig,
    stacks: &[SynthStack],
    table: &PriceTable,
    workload: &Workload,
) -> anyhow::Result<Vec<UsageLine>> {
    let p = &table.prices;
    let a = &table.assumptions;
    let mut lines = Vec::new();
    let records = 1000.0;
    let input = f64::from(workload.input_tokens);
    let output = f64::from(workload.output_tokens);
    for name in &workload.models {
        let (alias, price) = table.model(name).with_context(|| {
            format!(
                "model `{name}` has no price in {PRICE_TABLE_PATH}; known: {}",
                table.models.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })?;
        lines.push(UsageLine {
            item: format!("model {alias}"),
            detail: format!(
                "1,000 × ({input} in × {} + {output} out × {} USD / 1,000 tokens)",
                price.input_1k, price.output_1k
            ),
            usd: cents(
                records * (input / 1000.0 * price.input_1k + output / 1000.0 * price.output_1k),
            ),
        });
    }
    let calls = records * workload.models.len() as f64;
    if cfg.deploy_prompt_app {
        lines.push(UsageLine {
            item: "DynamoDB requests".into(),
            detail: format!(
                "{calls} rows × ({} writes × {} + {} reads × {} USD / million)",
                a.record_write_units,
                p.dynamodb_write_million,
                a.record_read_units,
                p.dynamodb_read_million
            ),
            usd: cents(
                calls
                    * (a.record_write_units * p.dynamodb_write_million
                        + a.record_read_units * p.dynamodb_read_million)
                    / 1e6,
            ),
        });
        let (albs, _) = count(stacks, "AWS::ElasticLoadBalancingV2::LoadBalancer");
        lines.push(UsageLine {
            item: "load balancer LCUs".into(),
            detail: format!(
                "{} LCU-hours × {} USD",
                a.alb_lcu_hours_per_1000_records, p.alb_lcu_hour
            ),
            usd: cents(f64::from(albs) * a.alb_lcu_hours_per_1000_records * p.alb_lcu_hour),
        });
        let (nat, _) = count(stacks, "AWS::EC2::NatGateway");
        let nat_gb = calls * a.record_nat_bytes / 1e9;
        lines.push(if nat > 0 {
            UsageLine {
                item: "NAT data processing".into(),
                detail: format!("{nat_gb} GB × {} USD", p.nat_gateway_gb),
                usd: cents(nat_gb * p.nat_gateway_gb),
            }
        } else {
            UsageLine {
                item: "NAT data processing".into(),
                detail: "no NAT gateway: the tasks go out through their own public addresses"
                    .into(),
                usd: 0.0,
            }
        });
        let log_gb = calls * a.record_log_bytes / 1e9;
        lines.push(UsageLine {
            item: "CloudWatch Logs".into(),
            detail: format!("{log_gb} GB × {} USD", p.logs_ingest_gb),
            usd: cents(log_gb * p.logs_ingest_gb),
        });
    }
    Ok(lines)
}

/// The estimate as text: one line per item, totals, and the totals for `accounts` accounts.
pub fn render(estimate: &Estimate, accounts: u32, workload: &Workload) -> String {
    let mut out = format!(
        "monthly estimate from {} list prices read on {} ({PRICE_TABLE_PATH}); 730 hours a month, no free tier\n\n",
        estimate.price_region, estimate.prices_read_on
    );
    let width = estimate
        .lines
        .iter()
        .map(|line| line.item.len())
        .max()
        .unwrap_or(0)
        .max(36);
    out.push_str(&format!(
        "{:width$}  {:>10}  {:>10}  how\n",
        "idle, per account", "running", "paused"
    ));
    for line in &estimate.lines {
        out.push_str(&format!(
            "{:width$}  {:>10.2}  {:>10.2}  {}\n",
            line.item, line.running_usd, line.paused_usd, line.detail
        ));
    }
    out.push_str(&format!(
        "{:width$}  {:>10.2}  {:>10.2}  USD a month\n",
        "total", estimate.running_usd, estimate.paused_usd
    ));
    if accounts > 1 {
        out.push_str(&format!(
            "{:width$}  {:>10.2}  {:>10.2}  USD a month\n",
            format!("× {accounts} accounts"),
            estimate.running_usd * f64::from(accounts),
            estimate.paused_usd * f64::from(accounts)
        ));
    }
    out.push_str(&format!(
        "\nper 1,000 evaluated records ({} in / {} out tokens per record and model)\n",
        workload.input_tokens, workload.output_tokens
    ));
    for line in &estimate.per_1000_records {
        out.push_str(&format!(
            "{:width$}  {:>10.2}  {}\n",
            line.item, line.usd, line.detail
        ));
    }
    out.push_str(&format!(
        "{:width$}  {:>10.2}  USD per 1,000 records\n",
        "total", estimate.per_1000_records_usd
    ));
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn workload() -> Workload {
        Workload {
            models: vec!["claude-3-haiku".into()],
            input_tokens: 500,
            output_tokens: 150,
        }
    }

    fn estimate_of(cfg: &StackConfig) -> Estimate {
        let stacks = stacks::synth_all(cfg).unwrap();
        estimate(cfg, &stacks, &PriceTable::shipped().unwrap(), &workload()).unwrap()
    }

    /// `(item, running, paused)` of every line.
    fn lines(estimate: &Estimate) -> Vec<(&str, f64, f64)> {
        estimate
            .lines
            .iter()
            .map(|line| (line.item.as_str(), line.running_usd, line.paused_usd))
            .collect()
    }

    fn assert_usd(got: f64, expected: f64) {
        assert!((got - expected).abs() < 0.001, "{got} != {expected}");
    }

    // The default configuration, by hand (730 h a month; cents rounded half away from zero):
    //   NAT gateways      2 × 730 × 0.045                       = 65.70   paused 0
    //   public IPv4       2 × 730 × 0.005                       =  7.30   paused 0
    //   load balancer     730 × 0.0225 = 16.425                 → 16.43   paused 0 (deleted)
    //   Fargate           730 × (0.5 × 0.04048 + 1 × 0.004445)  = 18.02005 → 18.02, paused 0
    //   DynamoDB          0.5 GB × 0.25 = 0.125                 →  0.13
    //   Secrets Manager   1 × 0.40                              =  0.40
    //   CloudWatch Logs   2 groups × 0.25 GB × (0.50 + 0.03) = 0.265 → 0.27; paused a tenth → 0.03
    //   Studio            1 GB EFS × 0.30                       =  0.30
    //   running total     65.70 + 7.30 + 16.43 + 18.02 + 0.13 + 0.40 + 0.27 + 0.30 = 108.55
    //   paused total      0.13 + 0.40 + 0.03 + 0.30 = 0.86
    #[test]
    fn default_configuration_by_hand() {
        let estimate = estimate_of(&StackConfig::default());
        assert_eq!(
            lines(&estimate),
            vec![
                ("NAT gateways", 65.70, 0.0),
                ("public IPv4 addresses", 7.30, 0.0),
                ("application load balancer", 16.43, 0.0),
                ("Fargate", 18.02, 0.0),
                ("DynamoDB on demand", 0.13, 0.13),
                ("Secrets Manager", 0.40, 0.40),
                ("CloudWatch Logs", 0.27, 0.03),
                ("SageMaker Studio", 0.30, 0.30),
            ]
        );
        assert_usd(estimate.running_usd, 108.55);
        assert_usd(estimate.paused_usd, 0.86);
        // Per 1,000 records of Claude 3 Haiku at 500 in / 150 out tokens:
        //   1000 × (0.5 × 0.00025 + 0.15 × 0.00125) = 0.3125 → 0.31; DynamoDB
        //   1000 × (4 × 0.625 + 2 × 0.125) / 1e6 = 0.00275 → 0.00; LCUs 0.05 × 0.008 → 0.00;
        //   NAT 0.012 GB × 0.045 → 0.00; logs 0.0006 GB × 0.50 → 0.00.
        assert_usd(estimate.per_1000_records[0].usd, 0.31);
        assert_usd(estimate.per_1000_records_usd, 0.31);
    }

    // The lean network: one NAT gateway and its address, free gateway endpoints:
    //   32.85 + 3.65 + 0 + 16.43 + 18.02 + 0.13 + 0.40 + 0.27 + 0.30 = 72.05; paused 0.86.
    // With Fargate Spot too: 730 × (0.5 × 0.012144 + 1 × 0.0013335) = 5.406 → 5.41, so
    //   72.05 − 18.02 + 5.41 = 59.44.
    #[test]
    fn lean_configuration_by_hand() {
        let lean = StackConfig {
            lean_network: true,
            ..StackConfig::default()
        };
        let estimate = estimate_of(&lean);
        assert_eq!(
            &lines(&estimate)[..3],
            &[
                ("NAT gateways", 32.85, 0.0),
                ("public IPv4 addresses", 3.65, 0.0),
                ("gateway VPC endpoints (S3, DynamoDB)", 0.0, 0.0),
            ]
        );
        assert_usd(estimate.running_usd, 72.05);
        assert_usd(estimate.paused_usd, 0.86);
        let spot = estimate_of(&StackConfig {
            fargate_spot: true,
            ..lean
        });
        assert_eq!(lines(&spot)[4], ("Fargate Spot", 5.41, 0.0));
        assert_usd(spot.running_usd, 59.44);
    }

    // Public task egress (Studio off, which it needs), the goal's configuration:
    //   NAT gateways 0, their addresses 0, gateway endpoints 0 (free)
    //   load balancer     16.43, paused 0
    //   task's address    1 × 730 × 0.005 = 3.65, paused 0
    //   Fargate           18.02, paused 0
    //   DynamoDB 0.13, Secrets Manager 0.40, CloudWatch Logs 0.27 (paused 0.03)
    //   running total     16.43 + 3.65 + 18.02 + 0.13 + 0.40 + 0.27 = 38.90 (≤ 40)
    //   paused total      0.13 + 0.40 + 0.03 = 0.56 (≤ 5)
    // With Fargate Spot: 38.90 − 18.02 + 5.41 = 26.29. Two tasks: 38.90 + 3.65 + 18.02 = 60.57.
    #[test]
    fn public_ip_egress_meets_the_goals_by_hand() {
        let public = StackConfig {
            lean_network: true,
            task_egress: stacks::config::TaskEgress::PublicIp,
            deploy_sagemaker_domain: false,
            ..StackConfig::default()
        };
        let estimate = estimate_of(&public);
        assert_eq!(
            lines(&estimate),
            vec![
                ("NAT gateways", 0.0, 0.0),
                ("public IPv4 addresses", 0.0, 0.0),
                ("gateway VPC endpoints (S3, DynamoDB)", 0.0, 0.0),
                ("application load balancer", 16.43, 0.0),
                ("public IPv4 addresses of the tasks", 3.65, 0.0),
                ("Fargate", 18.02, 0.0),
                ("DynamoDB on demand", 0.13, 0.13),
                ("Secrets Manager", 0.40, 0.40),
                ("CloudWatch Logs", 0.27, 0.03),
            ]
        );
        assert_usd(estimate.running_usd, 38.90);
        assert_usd(estimate.paused_usd, 0.56);
        let nat = estimate
            .per_1000_records
            .iter()
            .find(|line| line.item == "NAT data processing")
            .unwrap();
        assert_usd(nat.usd, 0.0);
        assert!(nat.detail.contains("no NAT gateway"), "{}", nat.detail);
        let spot = estimate_of(&StackConfig {
            fargate_spot: true,
            ..public.clone()
        });
        assert_usd(spot.running_usd, 26.29);
        let two = estimate_of(&StackConfig {
            task_count: 2,
            ..public
        });
        assert_eq!(
            lines(&two)[4],
            ("public IPv4 addresses of the tasks", 7.30, 0.0)
        );
        assert_usd(two.running_usd, 60.57);
    }

    #[test]
    fn every_combination_is_consistent() {
        for cfg in StackConfig::default().toggle_combinations() {
            let estimate = estimate_of(&cfg);
            let label = cfg.toggle_label();
            for line in &estimate.lines {
                assert!(line.running_usd >= 0.0, "{label}: {line:?}");
                assert!(line.paused_usd <= line.running_usd, "{label}: {line:?}");
            }
            let sum: f64 = estimate.lines.iter().map(|line| line.running_usd).sum();
            assert_usd(estimate.running_usd, cents(sum));
            // Pausing removes every NAT gateway and app task.
            let nat = estimate
                .lines
                .iter()
                .find(|line| line.item == "NAT gateways");
            assert_eq!(nat.map(|line| line.paused_usd), Some(0.0), "{label}");
            let expected_nat = f64::from(cfg.nat_gateways()) * 730.0 * 0.045;
            assert_usd(
                nat.map_or(0.0, |line| line.running_usd),
                cents(expected_nat),
            );
            assert_eq!(
                estimate
                    .lines
                    .iter()
                    .any(|line| line.item == "KMS customer managed key"),
                cfg.kms_key == stacks::config::KmsKey::Create,
                "{label}"
            );
            assert_eq!(
                estimate
                    .lines
                    .iter()
                    .any(|line| line.item == "SageMaker Studio"),
                cfg.deploy_sagemaker_domain,
                "{label}"
            );
            assert_eq!(
                estimate.lines.iter().any(|line| line.item == "AWS Budgets"),
                cfg.has_budget(),
                "{label}"
            );
            // Pausing deletes the load balancer; only public egress gives tasks addresses.
            for line in &estimate.lines {
                if line.item == "application load balancer" {
                    assert_eq!(line.paused_usd, 0.0, "{label}");
                }
            }
            assert_eq!(
                estimate
                    .lines
                    .iter()
                    .any(|line| line.item == "public IPv4 addresses of the tasks"),
                cfg.deploy_prompt_app && cfg.task_egress == stacks::config::TaskEgress::PublicIp,
                "{label}"
            );
            // The goals: every paused account ≤ 5 USD, every lean one with public egress
            // ≤ 40 USD running.
            assert!(
                estimate.paused_usd <= 5.0,
                "{label}: {}",
                estimate.paused_usd
            );
            if cfg.task_egress == stacks::config::TaskEgress::PublicIp {
                assert!(
                    estimate.running_usd <= 40.0,
                    "{label}: {}",
                    estimate.running_usd
                );
            }
        }
    }

    #[test]
    fn unknown_model_names_the_known_ones() {
        let cfg = StackConfig::default();
        let stacks = stacks::synth_all(&cfg).unwrap();
        let err = estimate(
            &cfg,
            &stacks,
            &PriceTable::shipped().unwrap(),
            &Workload {
                models: vec!["gpt-17".into()],
                input_tokens: 1,
                output_tokens: 1,
            },
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("model `gpt-17` has no price"), "{err}");
        assert!(err.contains("claude-3-haiku"), "{err}");
    }

    /// The copied prices match the app's catalog (read as data, the app crate is not a
    /// dependency).
    #[test]
    fn model_prices_match_the_app_catalog() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../app/models.toml");
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|err| panic!("{path}: {err} (did the catalog move? update this test)"));
        let catalog: toml::Table = toml::from_str(&text).unwrap();
        let entries = catalog["model"].as_array().unwrap();
        let table = PriceTable::shipped().unwrap();
        for (alias, price) in &table.models {
            let entry = entries
                .iter()
                .find(|entry| entry["alias"].as_str() == Some(alias.as_str()))
                .unwrap_or_else(|| panic!("{alias} is not in app/models.toml"));
            assert_eq!(
                entry["model_id"].as_str(),
                Some(price.model_id.as_str()),
                "{alias}"
            );
            assert_eq!(
                entry["price_per_1k_input"].as_float(),
                Some(price.input_1k),
                "{alias}"
            );
            assert_eq!(
                entry["price_per_1k_output"].as_float(),
                Some(price.output_1k),
                "{alias}"
            );
        }
    }
}
