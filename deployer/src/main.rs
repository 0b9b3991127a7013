//! `deployer`: synthesizes, checks and deploys the LLM-evaluation stacks.
//!
//! `main` only parses arguments, dispatches, and maps errors to exit codes in one place:
//! 0 success, 1 checks failed (e.g. unsuppressed nag errors), 2 usage or input errors.

mod commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Command-line interface of the deployer.
#[derive(Debug, Parser)]
#[command(name = "deployer", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check CloudFormation templates against the cdk-nag-style security rule pack.
    Nag(commands::nag::NagArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Nag(args) => commands::nag::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
