//! `deployer pause` / `deployer resume`: stop paying by the hour for an idle account, and start
//! again.
//!
//! Pause sets the `Paused` parameter of the app stack (the service's desired count becomes 0;
//! CloudFormation deletes the load balancer, its listener and target group and the CloudFront
//! VPC origin, and the distribution, whose URL stays, answers with the paused page) and then of
//! the network stack (CloudFormation deletes the NAT gateways, their Elastic IPs and the private
//! default routes). Everything deleted carries the condition `Running`. Both are
//! parameter-only updates of the deployed templates through `cfn.rs`; the data (table, buckets),
//! the users (Cognito) and every stack stay. Resume does the same in the other order: the
//! network first, so the tasks find their way out when they start.
//!
//! A stack that is not deployed is skipped; one deployed by a deployer that had no pause is
//! refused with the fix (`deployer up` first).

use anyhow::bail;
use clap::Args;
use stacks::SynthStack;
use stacks::stacks::PAUSED_PARAMETER;

use crate::cfn::{Plan, StackState};
use crate::config::ConfigArgs;
use crate::deployment::Deployment;
use crate::outcome::Outcome;
use crate::output::Stdout;
use crate::progress;

/// Arguments of `deployer pause` and `deployer resume`.
#[derive(Debug, Args)]
pub struct PauseArgs {
    /// Settings.
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// Whether a deployed stack is paused.
pub fn is_paused(state: &StackState) -> bool {
    state
        .parameters
        .iter()
        .any(|(key, value)| key == PAUSED_PARAMETER && value == "true")
}

/// Runs `deployer pause` (`pause` true) or `deployer resume` (false).
pub async fn run(
    args: &PauseArgs,
    pause: bool,
    env: &dyn Fn(&str) -> Option<String>,
    stdout: &mut Stdout,
) -> anyhow::Result<Outcome> {
    let deployment = Deployment::open(&args.config, env).await?;
    // Pause: the app first (no task needs the NAT gateways any more), then the network.
    let mut order: Vec<&SynthStack> = ["app", "network"]
        .iter()
        .filter_map(|kind| deployment.stack(kind))
        .collect();
    if !pause {
        order.reverse();
    }
    let value = if pause { "true" } else { "false" };
    let verb = if pause { "paused" } else { "running" };
    let mut text = String::new();
    for stack in order {
        let name = stack.name.as_str();
        let Some(state) = deployment.cfn.describe(name).await? else {
            text.push_str(&format!("{name}: not deployed; skipped\n"));
            continue;
        };
        if !state
            .parameters
            .iter()
            .any(|(key, _)| key == PAUSED_PARAMETER)
        {
            bail!(
                "{name} was deployed by a deployer without pause (no `{PAUSED_PARAMETER}` parameter); run `deployer up` once, then `deployer {}`",
                if pause { "pause" } else { "resume" }
            );
        }
        if !state.is_settled() {
            bail!(
                "{name} is {} (another operation); wait for it to end, then try again",
                state.status
            );
        }
        if is_paused(&state) == pause {
            text.push_str(&format!("{name}: already {verb}\n"));
            continue;
        }
        eprintln!("{name}: setting {PAUSED_PARAMETER}={value}");
        let change_set = match deployment
            .cfn
            .plan_parameter(name, &state, PAUSED_PARAMETER, value)
            .await?
        {
            Plan::NoChanges => {
                text.push_str(&format!("{name}: {verb} (nothing to change)\n"));
                continue;
            }
            Plan::Changes(change_set) => change_set,
        };
        let mut display = progress::for_stderr();
        let watch = deployment
            .cfn
            .execute(name, &change_set, display.as_mut())
            .await?;
        let Some(final_state) = watch.state else {
            bail!("{name} was deleted while it was being {verb}");
        };
        if final_state.status != "UPDATE_COMPLETE" {
            let cause = watch
                .root_cause
                .or(final_state.reason)
                .unwrap_or_else(|| "CloudFormation gave no reason".to_owned());
            bail!(
                "{name}: could not set {PAUSED_PARAMETER}={value}: {cause}\n  final state: {}\n  next: fix the cause and run the same command again",
                final_state.status
            );
        }
        text.push_str(&format!(
            "{name}: {verb} ({} resource change(s))\n",
            change_set.changes.len()
        ));
    }
    text.push_str(if pause {
        "paused: no app task, load balancer, NAT gateway or address; the app's URL shows a paused page; data, users and stacks kept. `deployer resume` brings it back\n"
    } else {
        "resumed: NAT gateways, load balancer and app tasks are back at the same URL; unfinished runs continue on the new task through their lease\n"
    });
    stdout.print(text)?;
    Ok(Outcome::Done)
}
