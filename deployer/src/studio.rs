//! SageMaker Studio hygiene for `deployer down` (the original's teardown failed on leftovers).
//!
//! Before the studio stack is deleted: every app of the domain is deleted (and waited for),
//! then the spaces and user profiles CloudFormation does not own (users create their own in
//! Studio), because SageMaker refuses to delete a domain that still has any. After the stack is
//! gone: SageMaker retains the domain's home EFS file system, so its mount targets, the file
//! system and the two NFS security groups SageMaker created are deleted, so the network stack
//! (VPC, subnets) can be deleted next.
//!
//! Every wait is bounded ([`WAIT_LIMIT`]); a resource already gone counts as deleted, so the
//! cleanup can be run again after an interruption.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use aws_sdk_sagemaker::types::AppStatus;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Longest any one wait (apps, spaces, profiles, mount targets) may take.
const WAIT_LIMIT: Duration = Duration::from_secs(20 * 60);
/// Delay between polls.
const POLL: Duration = Duration::from_secs(2);
/// Most items read from one listing (pages of 100).
const MAX_ITEMS: usize = 1_000;

/// What the domain leaves behind once CloudFormation deleted it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leftovers {
    /// The domain id (`d-...`).
    pub domain_id: String,
    /// The home EFS file system SageMaker created and retains.
    pub efs_id: Option<String>,
    /// The VPC of the domain.
    pub vpc_id: Option<String>,
}

fn sagemaker_error<E>(err: aws_sdk_sagemaker::error::SdkError<E>) -> anyhow::Error
where
    E: std::error::Error + Send + Sync + 'static,
    aws_sdk_sagemaker::Error: From<aws_sdk_sagemaker::error::SdkError<E>>,
{
    anyhow::Error::new(aws_sdk_sagemaker::Error::from(err))
}

/// A SageMaker delete's result: "not found" (already gone) counts as deleted.
fn deleted<T, E>(
    result: Result<T, aws_sdk_sagemaker::error::SdkError<E>>,
    what: impl FnOnce() -> String,
) -> anyhow::Result<()>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    aws_sdk_sagemaker::Error: From<aws_sdk_sagemaker::error::SdkError<E>>,
{
    match result {
        Ok(_) => Ok(()),
        Err(err) if err.as_service_error().is_some_and(is_not_found) => Ok(()),
        Err(err) => Err(sagemaker_error(err)).with_context(|| format!("deleting {}", what())),
    }
}

fn is_not_found(err: &impl ProvideErrorMetadata) -> bool {
    matches!(
        err.code(),
        Some(
            "ResourceNotFound"
                | "ResourceNotFoundException"
                | "FileSystemNotFound"
                | "MountTargetNotFound"
                | "InvalidGroup.NotFound"
        )
    )
}

/// The domain named `name` (ListDomains), if it exists.
pub async fn find_domain(
    config: &aws_config::SdkConfig,
    name: &str,
) -> anyhow::Result<Option<String>> {
    let client = aws_sdk_sagemaker::Client::new(config);
    let mut pages = client.list_domains().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page
            .map_err(sagemaker_error)
            .context("listing SageMaker domains")?;
        if let Some(domain) = page
            .domains()
            .iter()
            .find(|domain| domain.domain_name() == Some(name))
        {
            return Ok(domain.domain_id().map(str::to_owned));
        }
    }
    Ok(None)
}

/// Empties the domain of apps and of the spaces and user profiles not in `owned_spaces` /
/// `owned_profiles` (CloudFormation deletes those), waiting for each kind to be gone; returns
/// what must be cleaned after the domain is deleted.
pub async fn before_delete(
    config: &aws_config::SdkConfig,
    domain_id: &str,
    owned_spaces: &BTreeSet<String>,
    owned_profiles: &BTreeSet<String>,
) -> anyhow::Result<Leftovers> {
    let client = aws_sdk_sagemaker::Client::new(config);
    let domain = match client.describe_domain().domain_id(domain_id).send().await {
        Ok(domain) => domain,
        Err(err) if err.as_service_error().is_some_and(is_not_found) => {
            return Ok(Leftovers {
                domain_id: domain_id.to_owned(),
                ..Leftovers::default()
            });
        }
        Err(err) => {
            return Err(sagemaker_error(err))
                .with_context(|| format!("describing SageMaker domain {domain_id}"));
        }
    };
    let leftovers = Leftovers {
        domain_id: domain_id.to_owned(),
        efs_id: domain.home_efs_file_system_id().map(str::to_owned),
        vpc_id: domain.vpc_id().map(str::to_owned),
    };
    delete_apps(&client, domain_id).await?;
    let spaces = list_spaces(&client, domain_id).await?;
    for space in spaces.iter().filter(|space| !owned_spaces.contains(*space)) {
        eprintln!("studio: deleting space {space}");
        let result = client
            .delete_space()
            .domain_id(domain_id)
            .space_name(space)
            .send()
            .await;
        deleted(result, || format!("space {space}"))?;
    }
    wait_until("spaces", || async {
        let left = list_spaces(&client, domain_id).await?;
        Ok(left.iter().all(|space| owned_spaces.contains(space)))
    })
    .await?;
    let profiles = list_profiles(&client, domain_id).await?;
    for profile in profiles
        .iter()
        .filter(|profile| !owned_profiles.contains(*profile))
    {
        eprintln!("studio: deleting user profile {profile}");
        let result = client
            .delete_user_profile()
            .domain_id(domain_id)
            .user_profile_name(profile)
            .send()
            .await;
        deleted(result, || format!("user profile {profile}"))?;
    }
    wait_until("user profiles", || async {
        let left = list_profiles(&client, domain_id).await?;
        Ok(left.iter().all(|profile| owned_profiles.contains(profile)))
    })
    .await?;
    Ok(leftovers)
}

/// Deletes every app of the domain that is not deleted yet, then waits until all are.
async fn delete_apps(client: &aws_sdk_sagemaker::Client, domain_id: &str) -> anyhow::Result<()> {
    let live = |status: Option<&AppStatus>| {
        !matches!(status, Some(AppStatus::Deleted | AppStatus::Failed))
    };
    let apps = list_apps(client, domain_id).await?;
    for app in &apps {
        if !live(app.status()) || app.status() == Some(&AppStatus::Deleting) {
            continue;
        }
        let (Some(app_type), Some(app_name)) = (app.app_type(), app.app_name()) else {
            continue;
        };
        eprintln!("studio: deleting app {app_name} ({})", app_type.as_str());
        let result = client
            .delete_app()
            .domain_id(domain_id)
            .app_type(app_type.clone())
            .app_name(app_name)
            .set_user_profile_name(app.user_profile_name().map(str::to_owned))
            .set_space_name(app.space_name().map(str::to_owned))
            .send()
            .await;
        deleted(result, || format!("app {app_name}"))?;
    }
    wait_until("apps", || async {
        let apps = list_apps(client, domain_id).await?;
        Ok(apps.iter().all(|app| !live(app.status())))
    })
    .await
}

async fn list_apps(
    client: &aws_sdk_sagemaker::Client,
    domain_id: &str,
) -> anyhow::Result<Vec<aws_sdk_sagemaker::types::AppDetails>> {
    let items = client
        .list_apps()
        .domain_id_equals(domain_id)
        .into_paginator()
        .items()
        .send();
    collect("apps", items).await
}

async fn list_spaces(
    client: &aws_sdk_sagemaker::Client,
    domain_id: &str,
) -> anyhow::Result<Vec<String>> {
    let items = client
        .list_spaces()
        .domain_id_equals(domain_id)
        .into_paginator()
        .items()
        .send();
    let spaces = collect("spaces", items).await?;
    Ok(spaces
        .iter()
        .filter_map(|space| space.space_name())
        .map(str::to_owned)
        .collect())
}

async fn list_profiles(
    client: &aws_sdk_sagemaker::Client,
    domain_id: &str,
) -> anyhow::Result<Vec<String>> {
    let items = client
        .list_user_profiles()
        .domain_id_equals(domain_id)
        .into_paginator()
        .items()
        .send();
    let profiles = collect("user profiles", items).await?;
    Ok(profiles
        .iter()
        .filter_map(|profile| profile.user_profile_name())
        .map(str::to_owned)
        .collect())
}

/// The first [`MAX_ITEMS`] items of a paginated Studio listing of `what`.
async fn collect<T, E>(
    what: &str,
    mut items: aws_smithy_async::future::pagination_stream::PaginationStream<
        Result<T, aws_sdk_sagemaker::error::SdkError<E>>,
    >,
) -> anyhow::Result<Vec<T>>
where
    E: std::error::Error + Send + Sync + 'static,
    aws_sdk_sagemaker::Error: From<aws_sdk_sagemaker::error::SdkError<E>>,
{
    let mut all = Vec::new();
    while let Some(item) = items.next().await {
        all.push(
            item.map_err(sagemaker_error)
                .with_context(|| format!("listing Studio {what}"))?,
        );
        if all.len() >= MAX_ITEMS {
            break;
        }
    }
    Ok(all)
}

/// Polls `done` until it is true, at most [`WAIT_LIMIT`].
async fn wait_until<F, Fut>(what: &str, mut done: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let started = Instant::now();
    loop {
        if done().await? {
            return Ok(());
        }
        if started.elapsed() > WAIT_LIMIT {
            bail!(
                "studio: {what} were still being deleted after {} minutes; run `deployer down` again later",
                WAIT_LIMIT.as_secs() / 60
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Deletes the domain's home file system (mount targets first) and SageMaker's NFS security
/// groups; returns one line per thing deleted.
pub async fn after_delete(
    config: &aws_config::SdkConfig,
    leftovers: &Leftovers,
) -> anyhow::Result<Vec<String>> {
    let mut done = Vec::new();
    if let Some(efs_id) = &leftovers.efs_id {
        done.extend(delete_file_system(config, efs_id).await?);
    }
    if let Some(vpc_id) = &leftovers.vpc_id {
        done.extend(delete_nfs_security_groups(config, vpc_id, &leftovers.domain_id).await?);
    }
    Ok(done)
}

async fn delete_file_system(
    config: &aws_config::SdkConfig,
    efs_id: &str,
) -> anyhow::Result<Vec<String>> {
    let efs = aws_sdk_efs::Client::new(config);
    let efs_error =
        |err: anyhow::Error| err.context(format!("cleaning up EFS file system {efs_id}"));
    let targets = match efs
        .describe_mount_targets()
        .file_system_id(efs_id)
        .send()
        .await
    {
        Ok(output) => output,
        Err(err) if err.as_service_error().is_some_and(is_not_found) => return Ok(Vec::new()),
        Err(err) => return Err(efs_error(anyhow::Error::new(aws_sdk_efs::Error::from(err)))),
    };
    let mut done = Vec::new();
    for target in targets.mount_targets() {
        let id = target.mount_target_id();
        match efs.delete_mount_target().mount_target_id(id).send().await {
            Ok(_) => done.push(format!("deleted EFS mount target {id}")),
            Err(err) if err.as_service_error().is_some_and(is_not_found) => {}
            Err(err) => return Err(efs_error(anyhow::Error::new(aws_sdk_efs::Error::from(err)))),
        }
    }
    wait_until("EFS mount targets", || async {
        match efs
            .describe_mount_targets()
            .file_system_id(efs_id)
            .send()
            .await
        {
            Ok(output) => Ok(output.mount_targets().is_empty()),
            Err(err) if err.as_service_error().is_some_and(is_not_found) => Ok(true),
            Err(err) => Err(efs_error(anyhow::Error::new(aws_sdk_efs::Error::from(err)))),
        }
    })
    .await?;
    match efs.delete_file_system().file_system_id(efs_id).send().await {
        Ok(_) => done.push(format!(
            "deleted EFS file system {efs_id} (Studio home directories)"
        )),
        Err(err) if err.as_service_error().is_some_and(is_not_found) => {}
        Err(err) => return Err(efs_error(anyhow::Error::new(aws_sdk_efs::Error::from(err)))),
    }
    Ok(done)
}

/// SageMaker's `security-group-for-inbound-nfs-<domain>` and `...-outbound-nfs-<domain>`: they
/// reference each other, so their rules are revoked before either is deleted.
async fn delete_nfs_security_groups(
    config: &aws_config::SdkConfig,
    vpc_id: &str,
    domain_id: &str,
) -> anyhow::Result<Vec<String>> {
    let ec2 = aws_sdk_ec2::Client::new(config);
    let ec2_error = |err: aws_sdk_ec2::Error| {
        anyhow::Error::new(err).context(format!("deleting the NFS security groups of {domain_id}"))
    };
    let filter = |name: &str, values: Vec<String>| {
        aws_sdk_ec2::types::Filter::builder()
            .name(name)
            .set_values(Some(values))
            .build()
    };
    let groups = ec2
        .describe_security_groups()
        .filters(filter("vpc-id", vec![vpc_id.to_owned()]))
        .filters(filter(
            "group-name",
            vec![
                format!("security-group-for-inbound-nfs-{domain_id}"),
                format!("security-group-for-outbound-nfs-{domain_id}"),
            ],
        ))
        .send()
        .await
        .map_err(|err| ec2_error(err.into()))?;
    for group in groups.security_groups() {
        let Some(id) = group.group_id() else { continue };
        if !group.ip_permissions().is_empty() {
            ec2.revoke_security_group_ingress()
                .group_id(id)
                .set_ip_permissions(Some(group.ip_permissions().to_vec()))
                .send()
                .await
                .map_err(|err| ec2_error(err.into()))?;
        }
        if !group.ip_permissions_egress().is_empty() {
            ec2.revoke_security_group_egress()
                .group_id(id)
                .set_ip_permissions(Some(group.ip_permissions_egress().to_vec()))
                .send()
                .await
                .map_err(|err| ec2_error(err.into()))?;
        }
    }
    let mut done = Vec::new();
    for group in groups.security_groups() {
        let Some(id) = group.group_id() else { continue };
        match ec2.delete_security_group().group_id(id).send().await {
            Ok(_) => done.push(format!(
                "deleted security group {id} ({})",
                group.group_name().unwrap_or_default()
            )),
            Err(err) if err.as_service_error().is_some_and(is_not_found) => {}
            Err(err) => return Err(ec2_error(err.into())),
        }
    }
    Ok(done)
}
