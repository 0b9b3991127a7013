//! `deployer`: synthesizes, checks and deploys the LLM-evaluation stacks.
//!
//! `main` parses flags, resolves the configuration (flags > env > `--config` file > defaults),
//! runs one command and turns its result into an exit code: 0 on success, 1 on any error
//! (printed with its full context chain), 2 for usage errors (from clap).

mod cli;
mod commands;
mod config;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

fn run(cli: Cli) -> anyhow::Result<()> {
    let env = |name: &str| std::env::var(name).ok();
    match cli.command {
        Command::Synth(args) => {
            let cfg = config::resolve(&args.config, &env)?;
            commands::synth::run(&args, &cfg)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
