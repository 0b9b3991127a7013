//! `AWS::ECR::*`: the app's image repository.

use serde::Serialize;

use crate::model::Value;
use crate::resources::{Tag, resource};

/// `AWS::ECR::Repository`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Repository {
    /// Name (generated when absent).
    #[serde(rename = "RepositoryName", skip_serializing_if = "Option::is_none")]
    pub repository_name: Option<Value<String>>,
    /// Scan images for vulnerabilities when they are pushed.
    #[serde(
        rename = "ImageScanningConfiguration",
        skip_serializing_if = "Option::is_none"
    )]
    pub image_scanning_configuration: Option<ImageScanningConfiguration>,
    /// `MUTABLE` or `IMMUTABLE` tags.
    #[serde(rename = "ImageTagMutability", skip_serializing_if = "Option::is_none")]
    pub image_tag_mutability: Option<Value<String>>,
    /// Which images are expired.
    #[serde(rename = "LifecyclePolicy", skip_serializing_if = "Option::is_none")]
    pub lifecycle_policy: Option<LifecyclePolicy>,
    /// Encryption at rest (`AES256` by default).
    #[serde(
        rename = "EncryptionConfiguration",
        skip_serializing_if = "Option::is_none"
    )]
    pub encryption_configuration: Option<EncryptionConfiguration>,
    /// Delete the images with the repository when the stack deletes it.
    #[serde(rename = "EmptyOnDelete", skip_serializing_if = "Option::is_none")]
    pub empty_on_delete: Option<Value<bool>>,
    /// Tags.
    #[serde(rename = "Tags", skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}
resource!(Repository, "AWS::ECR::Repository", RepositoryAttr { Arn => "Arn", RepositoryUri => "RepositoryUri" });

/// `ImageScanningConfiguration`.
#[derive(Debug, Clone, Serialize)]
pub struct ImageScanningConfiguration {
    /// Scan each pushed image.
    #[serde(rename = "ScanOnPush", skip_serializing_if = "Option::is_none")]
    pub scan_on_push: Option<Value<bool>>,
}

/// `LifecyclePolicy`.
#[derive(Debug, Clone, Serialize)]
pub struct LifecyclePolicy {
    /// The policy document, as JSON text.
    #[serde(
        rename = "LifecyclePolicyText",
        skip_serializing_if = "Option::is_none"
    )]
    pub lifecycle_policy_text: Option<Value<String>>,
}

/// `EncryptionConfiguration`.
#[derive(Debug, Clone, Serialize)]
pub struct EncryptionConfiguration {
    /// `AES256` or `KMS`.
    #[serde(rename = "EncryptionType")]
    pub encryption_type: Value<String>,
}
