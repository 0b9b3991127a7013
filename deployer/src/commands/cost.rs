//! `deployer cost`: the monthly estimate of the chosen configuration (see [`crate::cost`]),
//! idle (running and paused) and per 1,000 evaluated records, for one account or
//! `--accounts N` of them (`deployer fleet cost` passes its number of targets). Offline: no
//! credentials, no AWS call.

use clap::Args;

use crate::config::{self, ConfigArgs};
use crate::cost::{self, PriceTable, Workload};
use crate::outcome::{Outcome, usage};
use crate::output::Stdout;

/// What shapes the estimate besides the settings.
#[derive(Debug, Clone, Args)]
pub struct EstimateArgs {
    /// Catalog aliases (or model ids) of the models each record is evaluated with.
    #[arg(
        long,
        value_name = "ALIAS,...",
        value_delimiter = ',',
        default_value = "claude-3-haiku"
    )]
    pub models: Vec<String>,
    /// Prompt tokens per record and model.
    #[arg(long, value_name = "N", default_value_t = 500)]
    pub input_tokens: u32,
    /// Answer tokens per record and model.
    #[arg(long, value_name = "N", default_value_t = 150)]
    pub output_tokens: u32,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `deployer cost`.
#[derive(Debug, Args)]
pub struct CostArgs {
    /// Settings.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// How many accounts run this configuration (a workshop's fleet).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub accounts: u32,
    /// Models, tokens and output format.
    #[command(flatten)]
    pub estimate: EstimateArgs,
}

/// Runs `deployer cost`.
pub fn run(
    args: &CostArgs,
    env: &dyn Fn(&str) -> Option<String>,
    stdout: &mut Stdout,
) -> anyhow::Result<Outcome> {
    print_estimate(&args.config, args.accounts, &args.estimate, env, stdout)
}

/// Resolves the settings, estimates one account and prints it for `accounts` accounts.
pub fn print_estimate(
    config: &ConfigArgs,
    accounts: u32,
    args: &EstimateArgs,
    env: &dyn Fn(&str) -> Option<String>,
    stdout: &mut Stdout,
) -> anyhow::Result<Outcome> {
    let cfg = config::resolve(config, env).map_err(usage)?;
    let stacks = stacks::synth_all(&cfg)?;
    let table = PriceTable::shipped()?;
    let workload = Workload {
        models: args.models.clone(),
        input_tokens: args.input_tokens,
        output_tokens: args.output_tokens,
    };
    let estimate = cost::estimate(&cfg, &stacks, &table, &workload).map_err(usage)?;
    if cfg.region != table.region {
        eprintln!(
            "warning: the shipped prices are {}'s; {} may differ by a few percent",
            table.region, cfg.region
        );
    }
    if args.json {
        let value = serde_json::json!({
            "accounts": accounts,
            "account": estimate,
            "all_accounts": {
                "running_usd": cost::cents(estimate.running_usd * f64::from(accounts)),
                "paused_usd": cost::cents(estimate.paused_usd * f64::from(accounts)),
            },
            "workload": {
                "models": workload.models,
                "input_tokens": workload.input_tokens,
                "output_tokens": workload.output_tokens,
            },
        });
        let mut text = serde_json::to_string_pretty(&value)?;
        text.push('\n');
        stdout.print(text)?;
    } else {
        stdout.print(cost::render(&estimate, accounts, &workload))?;
    }
    Ok(Outcome::Done)
}

/// The idle figure `up` prints before it asks for approval (prices are the shipped table's).
pub fn idle_summary(cfg: &stacks::StackConfig, stacks: &[stacks::SynthStack]) -> Option<String> {
    let table = PriceTable::shipped().ok()?;
    let workload = Workload {
        models: Vec::new(),
        input_tokens: 0,
        output_tokens: 0,
    };
    let estimate = cost::estimate(cfg, stacks, &table, &workload).ok()?;
    Some(format!(
        "estimated cost while idle: {:.2} USD a month running, {:.2} USD paused ({} list prices of {}; `deployer cost` for the lines)",
        estimate.running_usd, estimate.paused_usd, table.region, table.read_on
    ))
}
