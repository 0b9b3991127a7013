//! `deployer`: synthesizes, checks and deploys the LLM-evaluation stacks.

use clap::Parser;

/// Command-line interface of the deployer.
#[derive(Debug, Parser)]
#[command(name = "deployer", version, about)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
