//! `deployer down`: deletes the stacks of the configuration in reverse dependency order,
//! waiting for each, with progress.
//!
//! Asks for confirmation naming the stacks unless `--force` (without a terminal `--force` is
//! required). Idempotent: stacks that are not deployed are reported and skipped, so a second
//! run, or a run where nothing is deployed, succeeds. A stack that ends in `DELETE_FAILED` is
//! reported with the resources that blocked it, and `down` stops there (the stacks it depends
//! on are still in use).
//!
//! Before the studio stack, the domain is emptied of apps, spaces and user profiles; after it,
//! the home EFS file system and SageMaker's NFS security groups are deleted (see
//! [`crate::studio`]). The data and logs buckets, the store table, the user pool and the image
//! repository are retained by their stacks and kept, and the command names them; `--purge`
//! empties the buckets (every object version) and deletes them, the table (switching its
//! deletion protection off) and the repository with its images.

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
    /// Also empty (every object version) and delete the data and logs buckets, delete the store
    /// table (runs, results, settings) and the image repository with its images; by default
    /// they are kept.
    #[arg(long)]
    pub purge: bool,
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
    let names: Vec<&str> = deployed
        .iter()
        .map(|(stack, _)| stack.name.as_str())
        .collect();
    if !args.force {
        if !std::io::stdin().is_terminal() {
            return Err(usage(anyhow::anyhow!(
                "`deployer down` would delete {}; without a terminal to confirm, pass --force",
                names.join(", ")
            )));
        }
        eprint!(
            "delete {} in {}? [y/N] ",
            names.join(", "),
            deployment.cfg.region
        );
        std::io::stderr().flush().ok();
        let mut answer = String::new();
        std::io::stdin().lock().take(16).read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            stdout.print("nothing deleted\n")?;
            return Ok(Outcome::Done);
        }
    }
    // Names of what the stacks retain, read before the stacks (and their outputs) are gone.
    // The app's data and logs, and the toolkit's templates bucket (retained too, and holding
    // the oversized templates `up` uploaded).
    let retained_buckets: Vec<String> = deployed
        .iter()
        .flat_map(|(stack, state)| {
            let keys: &[&str] = match stack.kind.short_name() {
                "app" => &["DataBucketName", "LogsBucketName"],
                "toolkit" => &[stacks::stacks::toolkit::TEMPLATES_BUCKET_OUTPUT],
                _ => &[],
            };
            keys.iter()
                .filter_map(|key| state.output(key).map(str::to_owned))
                .collect::<Vec<_>>()
        })
        .collect();
    let retained_table: Option<String> = deployed
        .iter()
        .filter(|(stack, _)| stack.kind.short_name() == "app")
        .find_map(|(_, state)| state.output("StoreTableName").map(str::to_owned));
    let repository = deployed
        .iter()
        .any(|(stack, _)| stack.kind.short_name() == "toolkit")
        .then(|| stacks::stacks::toolkit::repository_name(&deployment.cfg.prefix));
    let mut display = progress::for_stderr();
    for (stack, state) in &deployed {
        let n_resources = stack.template.resources().count();
        let studio_leftovers = if stack.kind.short_name() == "studio" {
            empty_studio_domain(&deployment, stack, state).await?
        } else {
            None
        };
        let watch = if state.status == "DELETE_IN_PROGRESS" {
            deployment
                .cfn
                .wait_settled(&stack.name, display.as_mut())
                .await?;
            deployment.cfn.describe(&stack.name).await?.map_or(
                crate::cfn::Watch {
                    state: None,
                    root_cause: None,
                    delete_failures: Vec::new(),
                },
                |state| crate::cfn::Watch {
                    state: Some(state),
                    root_cause: None,
                    delete_failures: Vec::new(),
                },
            )
        } else {
            deployment
                .cfn
                .delete(&stack.name, n_resources, display.as_mut())
                .await?
        };
        if let Some(left) = watch.state {
            let blocked = if watch.delete_failures.is_empty() {
                left.reason
                    .unwrap_or_else(|| "CloudFormation gave no reason".to_owned())
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
        if let Some(leftovers) = studio_leftovers {
            for line in crate::studio::after_delete(&deployment.sdk, &leftovers).await? {
                eprintln!("studio: {line}");
            }
        }
    }
    let mut text = format!("deleted {}\n", names.join(", "));
    if args.purge {
        for bucket in &retained_buckets {
            let n_objects = crate::purge::delete_bucket(&deployment.sdk, bucket).await?;
            text.push_str(&format!(
                "purged bucket {bucket} ({n_objects} object versions)\n"
            ));
        }
        if let Some(table) = &retained_table
            && crate::purge::delete_table(&deployment.sdk, table).await?
        {
            text.push_str(&format!(
                "purged table {table} (its runs, results and settings)\n"
            ));
        }
        if let Some(repository) = &repository
            && crate::purge::delete_repository(&deployment.sdk, repository).await?
        {
            text.push_str(&format!(
                "purged image repository {repository} and its images\n"
            ));
        }
        text.push_str(
            "kept (retained by design): the Cognito user pool of the app stack, with its users\n",
        );
    } else {
        let mut kept: Vec<String> = retained_buckets
            .iter()
            .map(|bucket| format!("bucket {bucket}"))
            .collect();
        kept.extend(
            retained_table
                .iter()
                .map(|table| format!("table {table} (runs, results, settings)")),
        );
        kept.extend(
            repository
                .iter()
                .map(|name| format!("image repository {name} and its images")),
        );
        kept.push("the Cognito user pool of the app stack".to_owned());
        text.push_str(&format!(
            "kept (retained by design): {}; `deployer down --purge` deletes the buckets, the table and images\n",
            kept.join(", ")
        ));
    }
    if deployment.cfg.kms_key == stacks::config::KmsKey::Create {
        // Retained with the network stack: a kept table or restore is readable only with it.
        text.push_str(&format!(
            "kept (retained by design): the customer managed KMS key described `{}: store table, log groups, secrets and Studio domain`; once no kept table or backup needs it, `aws kms schedule-key-deletion --key-id <its arn>` deletes it after 7-30 days\n",
            deployment.cfg.prefix
        ));
    }
    stdout.print(text)?;
    Ok(Outcome::Done)
}

/// The studio stack's domain emptied of what CloudFormation does not own; `None` when there is
/// no domain (never created, or already gone).
async fn empty_studio_domain(
    deployment: &Deployment,
    stack: &stacks::SynthStack,
    state: &crate::cfn::StackState,
) -> anyhow::Result<Option<crate::studio::Leftovers>> {
    let template = stack.template.to_json_value();
    let names_of = |kind: &str, property: &str| -> std::collections::BTreeSet<String> {
        template["Resources"]
            .as_object()
            .into_iter()
            .flat_map(|resources| resources.values())
            .filter(|resource| resource["Type"] == kind)
            .filter_map(|resource| resource["Properties"][property].as_str().map(str::to_owned))
            .collect()
    };
    let owned_spaces = names_of("AWS::SageMaker::Space", "SpaceName");
    let owned_profiles = names_of("AWS::SageMaker::UserProfile", "UserProfileName");
    let domain_name = template["Resources"]
        .as_object()
        .into_iter()
        .flat_map(|resources| resources.values())
        .find(|resource| resource["Type"] == "AWS::SageMaker::Domain")
        .and_then(|resource| {
            resource["Properties"]["DomainName"]
                .as_str()
                .map(str::to_owned)
        });
    let domain_id = match state.output("DomainId") {
        Some(id) => Some(id.to_owned()),
        None => match &domain_name {
            Some(name) => crate::studio::find_domain(&deployment.sdk, name).await?,
            None => None,
        },
    };
    let Some(domain_id) = domain_id else {
        eprintln!("studio: no SageMaker domain found; nothing to clean up first");
        return Ok(None);
    };
    eprintln!(
        "studio: emptying domain {domain_id} (apps, spaces and user profiles CloudFormation does not own)"
    );
    let leftovers =
        crate::studio::before_delete(&deployment.sdk, &domain_id, &owned_spaces, &owned_profiles)
            .await?;
    Ok(Some(leftovers))
}
