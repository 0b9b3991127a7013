//! `AWS::KMS::*`: customer managed keys.

use serde::Serialize;

use crate::model::Value;
use crate::resources::iam::PolicyDocument;
use crate::resources::{Tag, resource};

/// `AWS::KMS::Key` (a symmetric encryption key unless `KeySpec` says otherwise).
#[derive(Debug, Clone, Serialize)]
pub struct Key {
    /// What the key protects.
    #[serde(rename = "Description", skip_serializing_if = "Option::is_none")]
    pub description: Option<Value<String>>,
    /// Automatic rotation of the key material (yearly unless `RotationPeriodInDays`).
    #[serde(rename = "EnableKeyRotation", skip_serializing_if = "Option::is_none")]
    pub enable_key_rotation: Option<Value<bool>>,
    /// The key policy.
    #[serde(rename = "KeyPolicy")]
    pub key_policy: PolicyDocument,
    /// Waiting period (7-30 days) between the key's removal from the stack and its deletion.
    #[serde(
        rename = "PendingWindowInDays",
        skip_serializing_if = "Option::is_none"
    )]
    pub pending_window_in_days: Option<Value<i64>>,
    /// Tags.
    #[serde(rename = "Tags", skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}
resource!(Key, "AWS::KMS::Key", KeyAttr { Arn => "Arn", KeyId => "KeyId" });
