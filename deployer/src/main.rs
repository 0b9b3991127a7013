//! `deployer`: synthesizes, checks and deploys the LLM-evaluation stacks.
//!
//! `main` parses flags, resolves the configuration (flags > env > `--config` file > defaults),
//! runs one command and turns its result into an exit code: 0 on success, 1 on any error
//! (printed with its full context chain) or on unsuppressed nag errors, 2 for usage errors
//! (from clap) and for `deployer nag` input errors (unreadable or invalid templates).

mod cli;
mod commands;
mod config;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let env = |name: &str| std::env::var(name).ok();
    match cli.command {
        Command::Synth(args) => {
            let cfg = config::resolve(&args.config, &env)?;
            commands::synth::run(&args, &cfg)?;
            if cfg.cdk_nag {
                return commands::nag::after_synth(&cfg);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Nag(args) => Ok(commands::nag::run(&args, &env)),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
