//! `deployer down --purge`: what the stacks retain by design, deleted on request: a bucket with
//! every object version and delete marker in it, and the image repository with its images.
//!
//! Both are idempotent: a bucket or repository already gone counts as purged.

use anyhow::Context;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Most object versions deleted from one bucket (DeleteObjects takes 1,000 a call), so a purge
/// cannot run unbounded; a bigger bucket is emptied by running `down --purge` again.
const MAX_VERSIONS: usize = 1_000_000;

/// Empties `bucket` (all versions and delete markers) and deletes it; returns how many versions
/// and markers were deleted.
pub async fn delete_bucket(config: &aws_config::SdkConfig, bucket: &str) -> anyhow::Result<usize> {
    let s3 = aws_sdk_s3::Client::new(config);
    let s3_error = |err: aws_sdk_s3::Error| {
        anyhow::Error::new(err).context(format!("purging bucket {bucket}"))
    };
    let mut n_deleted = 0;
    loop {
        // Always the first page: what was deleted is no longer listed.
        let listed = match s3
            .list_object_versions()
            .bucket(bucket)
            .max_keys(1000)
            .send()
            .await
        {
            Ok(listed) => listed,
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.code() == Some("NoSuchBucket")) =>
            {
                return Ok(n_deleted);
            }
            Err(err) => return Err(s3_error(err.into())),
        };
        let mut objects = Vec::new();
        for version in listed.versions() {
            if let Some(key) = version.key() {
                objects.push(identifier(key, version.version_id())?);
            }
        }
        for marker in listed.delete_markers() {
            if let Some(key) = marker.key() {
                objects.push(identifier(key, marker.version_id())?);
            }
        }
        if objects.is_empty() {
            break;
        }
        let n_batch = objects.len();
        let deleted = s3
            .delete_objects()
            .bucket(bucket)
            .delete(
                Delete::builder()
                    .set_objects(Some(objects))
                    .quiet(true)
                    .build()
                    .context("internal: a Delete with objects builds")?,
            )
            .send()
            .await
            .map_err(|err| s3_error(err.into()))?;
        if let Some(failure) = deleted.errors().first() {
            anyhow::bail!(
                "purging bucket {bucket}: could not delete {}: {}",
                failure.key().unwrap_or_default(),
                failure.message().unwrap_or_default()
            );
        }
        n_deleted += n_batch;
        if n_deleted >= MAX_VERSIONS {
            anyhow::bail!(
                "purging bucket {bucket}: deleted {n_deleted} object versions and it is not empty yet; run `deployer down --purge` again"
            );
        }
    }
    match s3.delete_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(n_deleted),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.code() == Some("NoSuchBucket")) =>
        {
            Ok(n_deleted)
        }
        Err(err) => Err(s3_error(err.into())),
    }
}

fn identifier(key: &str, version_id: Option<&str>) -> anyhow::Result<ObjectIdentifier> {
    ObjectIdentifier::builder()
        .key(key)
        .set_version_id(version_id.map(str::to_owned))
        .build()
        .context("internal: an ObjectIdentifier with a key builds")
}

/// Deletes the ECR repository `name` with its images; `false` when it did not exist.
pub async fn delete_repository(config: &aws_config::SdkConfig, name: &str) -> anyhow::Result<bool> {
    match aws_sdk_ecr::Client::new(config)
        .delete_repository()
        .repository_name(name)
        .force(true)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_repository_not_found_exception()) =>
        {
            Ok(false)
        }
        Err(err) => Err(anyhow::Error::new(aws_sdk_ecr::Error::from(err)))
            .with_context(|| format!("purging image repository {name}")),
    }
}
