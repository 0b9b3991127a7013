//! `deployer down --purge`: what the stacks retain by design, deleted on request: a bucket with
//! every object version and delete marker in it, the image repository with its images, and the
//! app's store table (its deletion protection switched off first).
//!
//! All are idempotent: a bucket, repository or table already gone counts as purged.

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

/// Deletes the DynamoDB table `name` (switching its deletion protection off first); `false`
/// when it did not exist.
pub async fn delete_table(config: &aws_config::SdkConfig, name: &str) -> anyhow::Result<bool> {
    let dynamo = aws_sdk_dynamodb::Client::new(config);
    let gone = |err: &aws_sdk_dynamodb::Error| {
        matches!(err, aws_sdk_dynamodb::Error::ResourceNotFoundException(_))
    };
    let context = || format!("purging table {name}");
    match dynamo
        .update_table()
        .table_name(name)
        .deletion_protection_enabled(false)
        .send()
        .await
        .map_err(aws_sdk_dynamodb::Error::from)
    {
        Ok(_) => {}
        Err(err) if gone(&err) => return Ok(false),
        Err(err) => return Err(anyhow::Error::new(err)).with_context(context),
    }
    match dynamo
        .delete_table()
        .table_name(name)
        .send()
        .await
        .map_err(aws_sdk_dynamodb::Error::from)
    {
        Ok(_) => Ok(true),
        Err(err) if gone(&err) => Ok(false),
        Err(err) => Err(anyhow::Error::new(err)).with_context(context),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_protected_table_is_deleted_and_a_missing_one_counts_as_purged() {
        let moto = model_doubles::Moto::start().await;
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(moto.url())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .load()
            .await;
        let dynamo = aws_sdk_dynamodb::Client::new(&config);
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        };
        dynamo
            .create_table()
            .table_name("p-store")
            .billing_mode(BillingMode::PayPerRequest)
            .deletion_protection_enabled(true)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("pk")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("pk")
                    .key_type(KeyType::Hash)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        // Protected: a plain delete is refused.
        assert!(
            dynamo
                .delete_table()
                .table_name("p-store")
                .send()
                .await
                .is_err()
        );
        assert!(delete_table(&config, "p-store").await.unwrap());
        assert!(
            dynamo
                .describe_table()
                .table_name("p-store")
                .send()
                .await
                .is_err()
        );
        assert!(!delete_table(&config, "p-store").await.unwrap());
    }
}
