//! `deployer`: synthesizes, checks and deploys the LLM-evaluation stacks.
//!
//! `main` parses flags, runs one command and is the only place that turns its result into an
//! exit code (see [`outcome`]): 0 on success, 1 on a failed check (unsuppressed nag errors) or
//! any other error (printed with its full context chain), 2 for usage errors (from clap, an
//! invalid setting or config file, an unknown `--stack` or rule) and unusable inputs
//! (unreadable or invalid `deployer nag --template` files). A closed stdout is handled by
//! [`output::Stdout`] and is not an error.

mod aws;
mod bootstrap;
mod cfn;
mod cli;
mod codebuild;
mod cognito;
mod commands;
mod config;
mod cost;
mod deployment;
mod fleet;
mod image;
mod input;
mod outcome;
mod output;
mod progress;
mod purge;
mod studio;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::outcome::Outcome;
use crate::output::Stdout;

fn run(cli: Cli, stdout: &mut Stdout) -> anyhow::Result<Outcome> {
    // A value that is not UTF-8 is kept (lossily) rather than read as unset, so it fails
    // validation with an error naming the variable instead of silently using the default.
    let env = |name: &str| std::env::var_os(name).map(|value| value.to_string_lossy().into_owned());
    match cli.command {
        Command::Synth(args) => commands::synth::run(&args, &env, stdout),
        Command::Cost(args) => commands::cost::run(&args, &env, stdout),
        Command::Nag(args) => commands::nag::run(&args, &env, stdout),
        Command::Up(args) => runtime()?.block_on(commands::up::run(&args, &env, stdout)),
        Command::Diff(args) => runtime()?.block_on(commands::diff::run(&args, &env, stdout)),
        Command::Status(args) => runtime()?.block_on(commands::status::run(&args, &env, stdout)),
        Command::Doctor(args) => runtime()?.block_on(commands::doctor::run(&args, &env, stdout)),
        Command::Pause(args) => {
            runtime()?.block_on(commands::pause::run(&args, true, &env, stdout))
        }
        Command::Resume(args) => {
            runtime()?.block_on(commands::pause::run(&args, false, &env, stdout))
        }
        Command::Down(args) => runtime()?.block_on(commands::down::run(&args, &env, stdout)),
        Command::Users(args) => runtime()?.block_on(commands::users::run(&args, &env, stdout)),
        Command::Bootstrap(args) => commands::bootstrap::run(&args, &env, stdout),
        Command::Fleet(args) => runtime()?.block_on(commands::fleet::run(&args, &env, stdout)),
        Command::Image(args) => commands::image::run(&args, stdout),
    }
}

/// The async runtime of the commands that talk to AWS (`synth` and `nag` need none).
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut stdout = Stdout::default();
    match run(cli, &mut stdout) {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::CheckFailed) => ExitCode::FAILURE,
        Ok(Outcome::BadInput(errors)) => {
            for error in &errors {
                eprintln!("error: {error:#}");
            }
            ExitCode::from(2)
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            if outcome::is_usage(&err) {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
