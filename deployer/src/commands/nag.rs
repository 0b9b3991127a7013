//! `deployer nag`: runs the security rule pack over CloudFormation templates.
//!
//! Without `--template` it checks our synthesized stacks (the current configuration, or every
//! toggle combination with `--all-combinations`); with it, any JSON/YAML templates.
//! Exit codes: 0 when no unsuppressed error remains, 1 when there are errors, 2 for usage or
//! input errors (the error names the file, line and column). A template that cannot be read or
//! parsed does not stop the others from being checked and reported; the exit code is then 2. [`after_synth`] is the same check
//! run by `CDK_NAG=true deployer synth`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use stacks::nag::{self, Finding, Level, ParsedTemplate, RULES, report};
use stacks::{StackConfig, synth_all};

use crate::cli::ConfigArgs;
use crate::config;
use crate::input::{self, ByteSize};

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

/// Runs `deployer nag`, printing input errors itself (exit code 2).
pub fn run(args: &NagArgs, env: &dyn Fn(&str) -> Option<String>) -> ExitCode {
    match try_run(args, env) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn try_run(args: &NagArgs, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<ExitCode> {
    if args.list_rules {
        let listing: String = RULES
            .iter()
            .map(|rule| format!("{:<20} {:<8} {}\n", rule.id, rule.level, rule.info))
            .collect();
        print_stdout(&listing)?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(id) = &args.explain {
        let Some(rule) = nag::find_rule(id) else {
            bail!("unknown rule `{id}` (see `deployer nag --list-rules`)");
        };
        print_stdout(&format!(
            "{} ({}, cdk-nag {})\n\n{}\n\n{}\n",
            rule.id, rule.level, rule.name, rule.info, rule.explanation
        ))?;
        return Ok(ExitCode::SUCCESS);
    }
    // Templates that could not be read or parsed: reported after the others were checked.
    let mut input_errors: Vec<anyhow::Error> = Vec::new();
    let templates = if args.templates.is_empty() {
        let cfg = config::resolve(&args.config, env)?;
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
            let parsed = input::read_capped(path, args.max_template_size, "--max-template-size")
                .and_then(|bytes| {
                    Ok(nag::parse_template_bytes(
                        &path.display().to_string(),
                        &bytes,
                    )?)
                });
            match parsed {
                Ok(template) => templates.push(template),
                Err(error) => input_errors.push(error),
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
        Format::Json => serde_json::to_string_pretty(&report::json(&findings, filter))? + "\n",
        Format::Sarif => serde_json::to_string_pretty(&report::sarif(&findings, filter))? + "\n",
    };
    if input_errors.is_empty() {
        print_stdout(&rendered)?;
        return Ok(exit_code(&findings));
    }
    // A report over no template at all ("0 error(s)") would read like a pass.
    if !templates.is_empty() {
        print_stdout(&rendered)?;
    }
    for error in &input_errors {
        eprintln!("error: {error:#}");
    }
    if args.templates.len() > 1 {
        eprintln!(
            "error: {} of {} templates could not be checked",
            input_errors.len(),
            args.templates.len()
        );
    }
    Ok(ExitCode::from(2))
}

/// Writes to stdout; a reader that went away (`deployer nag | head`) is not an error, so the
/// exit code still says whether the templates passed (`print!` would panic instead).
fn print_stdout(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        res => res.context("writing to stdout"),
    }
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

/// `CDK_NAG=true deployer synth`: checks the synthesized stacks, prints the findings on stderr
/// (stdout may carry the templates) and fails with 1 on unsuppressed errors.
pub fn after_synth(cfg: &StackConfig) -> anyhow::Result<ExitCode> {
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
    Ok(exit_code(&findings))
}

fn exit_code(findings: &[Finding]) -> ExitCode {
    if findings.iter().any(Finding::is_blocking) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
