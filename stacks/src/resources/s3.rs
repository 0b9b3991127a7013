//! `AWS::S3::*`: buckets and bucket policies.

use serde::Serialize;

use crate::model::Value;
use crate::resources::iam::PolicyDocument;
use crate::resources::{Tag, resource};

/// Default encryption.
#[derive(Debug, Clone, Serialize)]
pub struct ServerSideEncryptionByDefault {
    /// `AES256`, `aws:kms` or `aws:kms:dsse`.
    #[serde(rename = "SSEAlgorithm")]
    pub sse_algorithm: Value<String>,
    /// KMS key for `aws:kms`.
    #[serde(rename = "KMSMasterKeyID", skip_serializing_if = "Option::is_none")]
    pub kms_master_key_id: Option<Value<String>>,
}

/// One encryption rule.
#[derive(Debug, Clone, Serialize)]
pub struct ServerSideEncryptionRule {
    /// Default encryption.
    #[serde(
        rename = "ServerSideEncryptionByDefault",
        skip_serializing_if = "Option::is_none"
    )]
    pub server_side_encryption_by_default: Option<ServerSideEncryptionByDefault>,
    /// S3 bucket keys (fewer KMS calls).
    #[serde(rename = "BucketKeyEnabled", skip_serializing_if = "Option::is_none")]
    pub bucket_key_enabled: Option<Value<bool>>,
}

/// Bucket encryption.
#[derive(Debug, Clone, Serialize)]
pub struct BucketEncryption {
    /// Rules.
    #[serde(rename = "ServerSideEncryptionConfiguration")]
    pub server_side_encryption_configuration: Vec<ServerSideEncryptionRule>,
}

impl BucketEncryption {
    /// SSE-S3 (`AES256`).
    pub fn sse_s3() -> BucketEncryption {
        BucketEncryption {
            server_side_encryption_configuration: vec![ServerSideEncryptionRule {
                server_side_encryption_by_default: Some(ServerSideEncryptionByDefault {
                    sse_algorithm: "AES256".into(),
                    kms_master_key_id: None,
                }),
                bucket_key_enabled: None,
            }],
        }
    }
}

/// Block public access.
#[derive(Debug, Clone, Serialize)]
pub struct PublicAccessBlockConfiguration {
    /// Reject public ACLs.
    #[serde(rename = "BlockPublicAcls", skip_serializing_if = "Option::is_none")]
    pub block_public_acls: Option<Value<bool>>,
    /// Reject public bucket policies.
    #[serde(rename = "BlockPublicPolicy", skip_serializing_if = "Option::is_none")]
    pub block_public_policy: Option<Value<bool>>,
    /// Ignore public ACLs.
    #[serde(rename = "IgnorePublicAcls", skip_serializing_if = "Option::is_none")]
    pub ignore_public_acls: Option<Value<bool>>,
    /// Restrict access under public policies.
    #[serde(
        rename = "RestrictPublicBuckets",
        skip_serializing_if = "Option::is_none"
    )]
    pub restrict_public_buckets: Option<Value<bool>>,
}

impl PublicAccessBlockConfiguration {
    /// All four switches on.
    pub fn all() -> PublicAccessBlockConfiguration {
        PublicAccessBlockConfiguration {
            block_public_acls: Some(true.into()),
            block_public_policy: Some(true.into()),
            ignore_public_acls: Some(true.into()),
            restrict_public_buckets: Some(true.into()),
        }
    }
}

/// Versioning.
#[derive(Debug, Clone, Serialize)]
pub struct VersioningConfiguration {
    /// `Enabled` or `Suspended`.
    #[serde(rename = "Status")]
    pub status: Value<String>,
}

/// Server access logging.
#[derive(Debug, Clone, Serialize)]
pub struct LoggingConfiguration {
    /// Target bucket name.
    #[serde(
        rename = "DestinationBucketName",
        skip_serializing_if = "Option::is_none"
    )]
    pub destination_bucket_name: Option<Value<String>>,
    /// Key prefix.
    #[serde(rename = "LogFilePrefix", skip_serializing_if = "Option::is_none")]
    pub log_file_prefix: Option<Value<String>>,
}

/// One object ownership rule.
#[derive(Debug, Clone, Serialize)]
pub struct OwnershipControlsRule {
    /// `BucketOwnerEnforced`, `BucketOwnerPreferred` or `ObjectWriter`.
    #[serde(rename = "ObjectOwnership", skip_serializing_if = "Option::is_none")]
    pub object_ownership: Option<Value<String>>,
}

/// Object ownership.
#[derive(Debug, Clone, Serialize)]
pub struct OwnershipControls {
    /// Rules.
    #[serde(rename = "Rules")]
    pub rules: Vec<OwnershipControlsRule>,
}

/// Abort multipart uploads left unfinished.
#[derive(Debug, Clone, Serialize)]
pub struct AbortIncompleteMultipartUpload {
    /// Days after start.
    #[serde(rename = "DaysAfterInitiation")]
    pub days_after_initiation: Value<i64>,
}

/// Expire old object versions.
#[derive(Debug, Clone, Serialize)]
pub struct NoncurrentVersionExpiration {
    /// Days after becoming noncurrent.
    #[serde(rename = "NoncurrentDays")]
    pub noncurrent_days: Value<i64>,
}

/// One lifecycle rule.
#[derive(Debug, Clone, Serialize)]
pub struct Rule {
    /// `Enabled` or `Disabled`.
    #[serde(rename = "Status")]
    pub status: Value<String>,
    /// Rule id.
    #[serde(rename = "Id", skip_serializing_if = "Option::is_none")]
    pub id: Option<Value<String>>,
    /// Only objects whose keys start with this prefix.
    #[serde(rename = "Prefix", skip_serializing_if = "Option::is_none")]
    pub prefix: Option<Value<String>>,
    /// Expire current objects after this many days.
    #[serde(rename = "ExpirationInDays", skip_serializing_if = "Option::is_none")]
    pub expiration_in_days: Option<Value<i64>>,
    /// Abort unfinished multipart uploads.
    #[serde(
        rename = "AbortIncompleteMultipartUpload",
        skip_serializing_if = "Option::is_none"
    )]
    pub abort_incomplete_multipart_upload: Option<AbortIncompleteMultipartUpload>,
    /// Expire noncurrent versions.
    #[serde(
        rename = "NoncurrentVersionExpiration",
        skip_serializing_if = "Option::is_none"
    )]
    pub noncurrent_version_expiration: Option<NoncurrentVersionExpiration>,
}

/// Lifecycle rules.
#[derive(Debug, Clone, Serialize)]
pub struct LifecycleConfiguration {
    /// Rules.
    #[serde(rename = "Rules")]
    pub rules: Vec<Rule>,
}

/// `AWS::S3::Bucket`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Bucket {
    /// Encryption.
    #[serde(rename = "BucketEncryption", skip_serializing_if = "Option::is_none")]
    pub bucket_encryption: Option<BucketEncryption>,
    /// Block public access.
    #[serde(
        rename = "PublicAccessBlockConfiguration",
        skip_serializing_if = "Option::is_none"
    )]
    pub public_access_block_configuration: Option<PublicAccessBlockConfiguration>,
    /// Versioning.
    #[serde(
        rename = "VersioningConfiguration",
        skip_serializing_if = "Option::is_none"
    )]
    pub versioning_configuration: Option<VersioningConfiguration>,
    /// Server access logs.
    #[serde(
        rename = "LoggingConfiguration",
        skip_serializing_if = "Option::is_none"
    )]
    pub logging_configuration: Option<LoggingConfiguration>,
    /// Object ownership.
    #[serde(rename = "OwnershipControls", skip_serializing_if = "Option::is_none")]
    pub ownership_controls: Option<OwnershipControls>,
    /// Lifecycle.
    #[serde(
        rename = "LifecycleConfiguration",
        skip_serializing_if = "Option::is_none"
    )]
    pub lifecycle_configuration: Option<LifecycleConfiguration>,
    /// Tags.
    #[serde(rename = "Tags", skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}
resource!(Bucket, "AWS::S3::Bucket", BucketAttr {
    Arn => "Arn",
    DomainName => "DomainName",
    DualStackDomainName => "DualStackDomainName",
    RegionalDomainName => "RegionalDomainName",
    WebsiteUrl => "WebsiteURL",
});

/// `AWS::S3::BucketPolicy`.
#[derive(Debug, Clone, Serialize)]
pub struct BucketPolicy {
    /// Bucket name.
    #[serde(rename = "Bucket")]
    pub bucket: Value<String>,
    /// The policy.
    #[serde(rename = "PolicyDocument")]
    pub policy_document: PolicyDocument,
}
resource!(BucketPolicy, "AWS::S3::BucketPolicy");
