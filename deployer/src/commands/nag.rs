//! `deployer nag`: runs the security rule pack over CloudFormation templates.
//!
//! Without `--template` it checks our synthesized stacks (the current configuration, or every
//! toggle combination with `--all-combinations`); with it, any JSON/YAML templates.
//! Outcomes: done when no unsuppressed error remains, a failed check when there are errors, bad
//! input for templates that cannot be read or parsed (the error names the file, line and
//! column); such a template does not stop the others from being checked and reported.
//! [`after_synth`] is the same check run by `CDK_NAG=true deployer synth`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use stacks::nag::report::Unchecked;
use stacks::nag::{self, Finding, Level, ParsedTemplate, RULES, report};
use stacks::{StackConfig, synth_all};

use crate::cli::ConfigArgs;
use crate::config;
use crate::input::{self, ByteSize};
use crate::outcome::{Outcome, usage};
use crate::output::Stdout;

/// Output format of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One line per finding plus a summary.
    Text,
    /// `{"findings": [...], "summary": {...}}`.
    Json,
    /// SARIF 2.1.0, for GitHub code scanning.
    Sarif,
}

/// Lowest level shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LevelArg {
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warning,
}

/// Arguments of `deployer nag`.
#[derive(Debug, Args)]
pub struct NagArgs {
    /// Settings of the stacks to synthesize and check (ignored with --template).
    #[command(flatten)]
    pub config: ConfigArgs,
    /// CloudFormation templates (JSON or YAML) to check instead of our stacks.
    #[arg(long = "template", value_name = "FILE", num_args = 1..)]
    pub templates: Vec<PathBuf>,
    /// Check our stacks under every combination of the deploy toggles.
    #[arg(long, conflicts_with = "templates")]
    pub all_combinations: bool,
    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Lowest level to report (errors always decide the exit code).
    #[arg(long, value_enum, default_value_t = LevelArg::Warning)]
    pub level: LevelArg,
    /// Print why a rule exists and how to fix its findings, then exit.
    #[arg(long, value_name = "RULE_ID")]
    pub explain: Option<String>,
    /// List every rule of the pack, then exit.
    #[arg(long)]
    pub list_rules: bool,
    /// Also show suppressed findings and each rule's explanation.
    #[arg(long)]
    pub verbose: bool,
    /// Refuse a --template file larger than this (e.g. 8MiB, 500K).
    #[arg(long, value_name = "SIZE", value_parser = input::parse_size, default_value_t = input::DEFAULT_MAX_TEMPLATE_SIZE)]
    pub max_template_size: ByteSize,
}

/// Runs `deployer nag`.
pub fn run(
    args: &NagArgs,
    env: &dyn Fn(&str) -> Option<String>,
    stdout: &mut Stdout,
) -> anyhow::Result<Outcome> {
    if args.list_rules {
        let listing: String = RULES
            .iter()
            .map(|rule| format!("{:<20} {:<8} {}\n", rule.id, rule.level, rule.info))
            .collect();
        stdout.print(listing)?;
        return Ok(Outcome::Done);
    }
    if let Some(id) = &args.explain {
        let Some(rule) = nag::find_rule(id) else {
            return Err(usage(anyhow::anyhow!(
                "unknown rule `{id}` (see `deployer nag --list-rules`)"
            )));
        };
        stdout.print(format!(
            "{} ({}, cdk-nag {})\n\n{}\n\n{}\n",
            rule.id, rule.level, rule.name, rule.info, rule.explanation
        ))?;
        return Ok(Outcome::Done);
    }
    // Templates that could not be read or parsed: in the report (JSON, SARIF) and on stderr,
    // after the others were checked.
    let mut unchecked: Vec<Unchecked> = Vec::new();
    let mut input_errors: Vec<anyhow::Error> = Vec::new();
    let templates = if args.templates.is_empty() {
        let cfg = config::resolve(&args.config, env).map_err(usage)?;
        let configs: Vec<StackConfig> = if args.all_combinations {
            cfg.toggle_combinations().collect()
        } else {
            vec![cfg]
        };
        let mut templates = Vec::new();
        for cfg in &configs {
            let label = args.all_combinations.then(|| cfg.toggle_label());
            templates.extend(synthesized(cfg, label.as_deref())?);
        }
        templates
    } else {
        let mut templates = Vec::with_capacity(args.templates.len());
        for path in &args.templates {
            let file = path.display().to_string();
            let bytes =
                match input::read_capped(path, args.max_template_size, "--max-template-size") {
                    Ok(bytes) => bytes,
                    Err(error) => {
                        unchecked.push(Unchecked {
                            file: file.clone(),
                            position: None,
                            message: error.reason(),
                        });
                        input_errors.push(error.into());
                        continue;
                    }
                };
            match nag::parse_template_bytes(&file, &bytes) {
                Ok(template) => templates.push(template),
                Err(error) => {
                    unchecked.push(Unchecked::from_parse_error(&error));
                    input_errors.push(error.into());
                }
            }
        }
        templates
    };
    let findings: Vec<Finding> = templates.iter().flat_map(nag::check_template).collect();
    let filter = report::Filter {
        min_level: match args.level {
            LevelArg::Error => Level::Error,
            LevelArg::Warning => Level::Warning,
        },
        verbose: args.verbose,
    };
    let rendered = match args.format {
        Format::Text => report::text(&findings, filter),
        Format::Json => {
            serde_json::to_string_pretty(&report::json(&findings, &unchecked, filter))? + "\n"
        }
        Format::Sarif => {
            serde_json::to_string_pretty(&report::sarif(&findings, &unchecked, filter))? + "\n"
        }
    };
    if input_errors.is_empty() {
        stdout.print(rendered)?;
        return Ok(outcome(&findings));
    }
    // A text report over no template at all ("0 error(s)") would read like a pass; JSON and
    // SARIF carry the unchecked templates themselves, so they are always printed.
    if !templates.is_empty() || args.format != Format::Text {
        stdout.print(rendered)?;
    }
    if args.templates.len() > 1 {
        input_errors.push(anyhow::anyhow!(
            "{} of {} templates could not be checked",
            input_errors.len(),
            args.templates.len()
        ));
    }
    Ok(Outcome::BadInput(input_errors))
}

/// The synthesized templates of one configuration, named like `deployer synth --out` writes
/// them (prefixed with the toggle label when several configurations are checked).
pub fn synthesized(cfg: &StackConfig, label: Option<&str>) -> anyhow::Result<Vec<ParsedTemplate>> {
    let stacks = synth_all(cfg).context("synthesizing the stacks")?;
    let mut templates = Vec::with_capacity(stacks.len());
    for stack in &stacks {
        let file = match label {
            Some(label) => format!("{label}/{}.template.json", stack.name),
            None => format!("{}.template.json", stack.name),
        };
        let text = String::from_utf8(stack.template.to_json_bytes())
            .with_context(|| format!("{file} is not UTF-8"))?;
        templates.push(nag::parse_template(&file, &text)?);
    }
    Ok(templates)
}

/// `CDK_NAG=true deployer synth`: checks the synthesized stacks and prints the findings on
/// stderr (stdout may carry the templates); unsuppressed errors fail the check.
pub fn after_synth(cfg: &StackConfig) -> anyhow::Result<Outcome> {
    let findings: Vec<Finding> = synthesized(cfg, None)?
        .iter()
        .flat_map(nag::check_template)
        .collect();
    let filter = report::Filter {
        min_level: Level::Warning,
        verbose: false,
    };
    eprintln!("nag (CDK_NAG=true): security rule pack over the synthesized stacks");
    eprint!("{}", report::text(&findings, filter));
    Ok(outcome(&findings))
}

fn outcome(findings: &[Finding]) -> Outcome {
    if findings.iter().any(Finding::is_blocking) {
        Outcome::CheckFailed
    } else {
        Outcome::Done
    }
}
