//! `deployer nag`: runs the security rule pack over CloudFormation templates.
//!
//! Exit codes: 0 when no unsuppressed error remains, 1 when there are errors, 2 for usage or
//! parse errors (the error names the file, line and column).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use stacks::nag::{self, Finding, Level, RULES, report};

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
    /// CloudFormation templates (JSON or YAML) to check.
    #[arg(long = "template", value_name = "FILE", num_args = 1..)]
    pub templates: Vec<PathBuf>,
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
}

/// Runs `deployer nag`; errors are usage or input errors (exit code 2).
pub fn run(args: &NagArgs) -> anyhow::Result<ExitCode> {
    if args.list_rules {
        for rule in RULES {
            println!("{:<20} {:<8} {}", rule.id, rule.level, rule.info);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(id) = &args.explain {
        let Some(rule) = nag::find_rule(id) else {
            bail!("unknown rule `{id}` (see `deployer nag --list-rules`)");
        };
        println!(
            "{} ({}, cdk-nag {})\n\n{}\n\n{}",
            rule.id, rule.level, rule.name, rule.info, rule.explanation
        );
        return Ok(ExitCode::SUCCESS);
    }
    if args.templates.is_empty() {
        bail!("no templates to check: pass --template FILE...");
    }
    let mut findings: Vec<Finding> = Vec::new();
    for path in &args.templates {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let parsed = nag::parse_template(&path.display().to_string(), &text)?;
        findings.extend(nag::check_template(&parsed));
    }
    let filter = report::Filter {
        min_level: match args.level {
            LevelArg::Error => Level::Error,
            LevelArg::Warning => Level::Warning,
        },
        verbose: args.verbose,
    };
    match args.format {
        Format::Text => print!("{}", report::text(&findings, filter)),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report::json(&findings, filter))?
        ),
        Format::Sarif => println!(
            "{}",
            serde_json::to_string_pretty(&report::sarif(&findings, filter))?
        ),
    }
    let blocking = findings.iter().any(Finding::is_blocking);
    Ok(if blocking {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
