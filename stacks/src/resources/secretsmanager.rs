//! `AWS::SecretsManager::*`: secrets.

use serde::Serialize;

use crate::model::Value;
use crate::resources::{Tag, resource};

/// `AWS::SecretsManager::Secret`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Secret {
    /// Secret name.
    #[serde(rename = "Name", skip_serializing_if = "Option::is_none")]
    pub name: Option<Value<String>>,
    /// What the secret holds.
    #[serde(rename = "Description", skip_serializing_if = "Option::is_none")]
    pub description: Option<Value<String>>,
    /// The value; only ever built from deploy-time references, never from synth-time secrets.
    #[serde(rename = "SecretString", skip_serializing_if = "Option::is_none")]
    pub secret_string: Option<Value<String>>,
    /// KMS key (default: the account's `aws/secretsmanager` key).
    #[serde(rename = "KmsKeyId", skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<Value<String>>,
    /// Tags.
    #[serde(rename = "Tags", skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}
resource!(Secret, "AWS::SecretsManager::Secret", SecretAttr { Id => "Id" });
