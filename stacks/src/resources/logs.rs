//! `AWS::Logs::*`: CloudWatch log groups.

use serde::Serialize;

use crate::model::Value;
use crate::resources::{Tag, resource};

/// `AWS::Logs::LogGroup`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LogGroup {
    /// Name (generated when absent).
    #[serde(rename = "LogGroupName", skip_serializing_if = "Option::is_none")]
    pub log_group_name: Option<Value<String>>,
    /// Retention; one of the values CloudWatch accepts (1, 3, 5, 7, 14, 30, 60, 90, ...).
    #[serde(rename = "RetentionInDays", skip_serializing_if = "Option::is_none")]
    pub retention_in_days: Option<Value<i64>>,
    /// KMS key ARN for encryption.
    #[serde(rename = "KmsKeyId", skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<Value<String>>,
    /// Tags.
    #[serde(rename = "Tags", skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}
resource!(LogGroup, "AWS::Logs::LogGroup", LogGroupAttr { Arn => "Arn" });
