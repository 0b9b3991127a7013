//! `deployer`: synthesizes, checks and deploys the LLM-evaluation stacks.
//!
//! `main` parses flags, resolves the configuration (flags > env > `--config` file > defaults),
//! runs one command and turns its result into an exit code: 0 on success, 1 on any other error
//! (printed with its full context chain) or on unsuppressed nag errors, 2 for usage errors
//! (from clap, an invalid setting or config file, an unknown `--stack`) and for `deployer nag`
//! input errors (unreadable or invalid templates).

mod cli;
mod commands;
mod config;
mod input;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // A value that is not UTF-8 is kept (lossily) rather than read as unset, so it fails
    // validation with an error naming the variable instead of silently using the default.
    let env = |name: &str| std::env::var_os(name).map(|value| value.to_string_lossy().into_owned());
    match cli.command {
        Command::Synth(args) => {
            let cfg = match config::resolve(&args.config, &env) {
                Ok(cfg) => cfg,
                Err(err) => return Ok(usage_error(&err)),
            };
            if let Err(err) = commands::synth::run(&args, &cfg) {
                if err
                    .downcast_ref::<commands::synth::StackNotFound>()
                    .is_some()
                {
                    return Ok(usage_error(&err));
                }
                return Err(err);
            }
            if cfg.cdk_nag {
                return commands::nag::after_synth(&cfg);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Nag(args) => Ok(commands::nag::run(&args, &env)),
    }
}

/// Prints a usage error (bad setting, unknown stack); exit code 2, as clap's own.
fn usage_error(err: &anyhow::Error) -> ExitCode {
    eprintln!("error: {err:#}");
    ExitCode::from(2)
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
