//! `deployer status`: each stack's state and outputs (stacks not deployed are shown as such),
//! and for the app the image the service runs and its running vs desired tasks.

use anyhow::Context;
use clap::Args;

use crate::config::ConfigArgs;
use crate::deployment::Deployment;
use crate::outcome::Outcome;
use crate::output::Stdout;

/// Arguments of `deployer status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Settings.
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// Runs `deployer status`.
pub async fn run(
    args: &StatusArgs,
    env: &dyn Fn(&str) -> Option<String>,
    stdout: &mut Stdout,
) -> anyhow::Result<Outcome> {
    let deployment = Deployment::open(&args.config, env).await?;
    let mut text = format!("region {}\n", deployment.cfg.region);
    let (mut any_paused, mut any_running) = (false, false);
    for stack in &deployment.stacks {
        let Some(state) = deployment.cfn.describe(&stack.name).await? else {
            text.push_str(&format!("{}: not deployed\n", stack.name));
            continue;
        };
        text.push_str(&format!("{}: {}\n", stack.name, state.status));
        if let Some(reason) = &state.reason {
            text.push_str(&format!("  reason: {reason}\n"));
        }
        if state
            .parameters
            .iter()
            .any(|(key, _)| key == stacks::stacks::PAUSED_PARAMETER)
        {
            let paused = crate::commands::pause::is_paused(&state);
            any_paused |= paused;
            any_running |= !paused;
            text.push_str(if paused {
                "  state: paused (`deployer resume` runs it again)\n"
            } else {
                "  state: running\n"
            });
        }
        for (key, value) in &state.outputs {
            text.push_str(&format!("  {key} = {value}\n"));
        }
        if stack.kind.short_name() == "app"
            && let (Some(cluster), Some(service)) =
                (state.output("ClusterName"), state.output("ServiceName"))
        {
            text.push_str(&service_line(&deployment, cluster, service).await?);
        }
    }
    match (any_paused, any_running) {
        (true, false) => text.push_str("deployment: paused\n"),
        (true, true) => text
            .push_str("deployment: partly paused (an interrupted pause or resume; run it again)\n"),
        (false, true) => text.push_str("deployment: running\n"),
        (false, false) => {}
    }
    stdout.print(text)?;
    Ok(Outcome::Done)
}

/// `  service: 1/1 tasks running, image <uri>` for the app's ECS service.
async fn service_line(
    deployment: &Deployment,
    cluster: &str,
    service: &str,
) -> anyhow::Result<String> {
    let ecs = aws_sdk_ecs::Client::new(&deployment.sdk);
    let described = ecs
        .describe_services()
        .cluster(cluster)
        .services(service)
        .send()
        .await
        .map_err(|err| anyhow::Error::new(aws_sdk_ecs::Error::from(err)))
        .context("describing the app's ECS service")?;
    let Some(found) = described.services().first() else {
        return Ok(format!(
            "  service {service}: not found in cluster {cluster}\n"
        ));
    };
    let mut line = format!(
        "  service: {}/{} tasks running",
        found.running_count(),
        found.desired_count()
    );
    if let Some(task_definition) = found.task_definition() {
        let definition = ecs
            .describe_task_definition()
            .task_definition(task_definition)
            .send()
            .await
            .map_err(|err| anyhow::Error::new(aws_sdk_ecs::Error::from(err)))
            .context("describing the app's task definition")?;
        if let Some(image) = definition
            .task_definition()
            .and_then(|definition| definition.container_definitions().first())
            .and_then(|container| container.image())
        {
            line.push_str(&format!(", image {image}"));
        }
    }
    line.push('\n');
    Ok(line)
}
