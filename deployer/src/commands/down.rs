//! `deployer down`: deletes the stacks of the configuration in reverse dependency order,
//! waiting for each, with progress.
//!
//! Asks for confirmation naming the stacks unless `--force` (without a terminal `--force` is
//! required). Idempotent: stacks that are not deployed are reported and skipped, so a second
//! run, or a run where nothing is deployed, succeeds. A stack that ends in `DELETE_FAILED` is
//! reported with the resources that blocked it, and `down` stops there (the stacks it depends
//! on are still in use). The retained data bucket, logs bucket, user pool and image repository
//! are kept and named.

use std::io::{BufRead, IsTerminal, Read, Write};

use anyhow::bail;
use clap::Args;

use crate::config::ConfigArgs;
use crate::deployment::Deployment;
use crate::outcome::{Outcome, usage};
use crate::output::Stdout;
use crate::progress;

/// Arguments of `deployer down`.
#[derive(Debug, Args)]
pub struct DownArgs {
    /// Settings.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Delete without asking.
    #[arg(long)]
    pub force: bool,
}

/// Runs `deployer down`.
pub async fn run(
    args: &DownArgs,
    env: &dyn Fn(&str) -> Option<String>,
    stdout: &mut Stdout,
) -> anyhow::Result<Outcome> {
    let deployment = Deployment::open(&args.config, env).await?;
    let mut deployed = Vec::new();
    for stack in deployment.stacks.iter().rev() {
        match deployment.cfn.describe(&stack.name).await? {
            Some(state) => deployed.push((stack, state)),
            None => eprintln!("{}: not deployed", stack.name),
        }
    }
    if deployed.is_empty() {
        stdout.print(format!(
            "nothing to delete: no stack of prefix {} is deployed in {}\n",
            deployment.cfg.prefix, deployment.cfg.region
        ))?;
        return Ok(Outcome::Done);
    }
    let names: Vec<&str> = deployed.iter().map(|(stack, _)| stack.name.as_str()).collect();
    if !args.force {
        if !std::io::stdin().is_terminal() {
            return Err(usage(anyhow::anyhow!(
                "`deployer down` would delete {}; without a terminal to confirm, pass --force",
                names.join(", ")
            )));
        }
        eprint!("delete {} in {}? [y/N] ", names.join(", "), deployment.cfg.region);
        std::io::stderr().flush().ok();
        let mut answer = String::new();
        std::io::stdin().lock().take(16).read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            stdout.print("nothing deleted\n")?;
            return Ok(Outcome::Done);
        }
    }
    let mut display = progress::for_stderr();
    for (stack, state) in &deployed {
        let n_resources = stack.template.resources().count();
        let watch = if state.status == "DELETE_IN_PROGRESS" {
            deployment.cfn.wait_settled(&stack.name, display.as_mut()).await?;
            deployment.cfn.describe(&stack.name).await?.map_or(
                crate::cfn::Watch { state: None, root_cause: None, delete_failures: Vec::new() },
                |state| crate::cfn::Watch { state: Some(state), root_cause: None, delete_failures: Vec::new() },
            )
        } else {
            deployment
                .cfn
                .delete(&stack.name, n_resources, display.as_mut())
                .await?
        };
        if let Some(left) = watch.state {
            let blocked = if watch.delete_failures.is_empty() {
                left.reason.unwrap_or_else(|| "CloudFormation gave no reason".to_owned())
            } else {
                watch.delete_failures.join("\n  ")
            };
            bail!(
                "{} is {}; blocked by:\n  {blocked}\nfix or remove those resources, then run `deployer down` again",
                stack.name,
                left.status
            );
        }
        eprintln!("{}: deleted", stack.name);
    }
    stdout.print(format!(
        "deleted {}\nkept (retained by design): the data and logs buckets and the Cognito user pool of the app stack, and the image repository {}; delete them in the console or with the AWS CLI when no longer needed\n",
        names.join(", "),
        stacks::stacks::toolkit::repository_name(&deployment.cfg.prefix)
    ))?;
    Ok(Outcome::Done)
}
