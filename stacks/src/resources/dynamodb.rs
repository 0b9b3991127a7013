//! `AWS::DynamoDB::*`: tables.

use serde::Serialize;

use crate::model::Value;
use crate::resources::{Tag, resource};

/// `AWS::DynamoDB::Table`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Table {
    /// Table name (generated when absent).
    #[serde(rename = "TableName", skip_serializing_if = "Option::is_none")]
    pub table_name: Option<Value<String>>,
    /// `PAY_PER_REQUEST` (on demand) or `PROVISIONED`.
    #[serde(rename = "BillingMode", skip_serializing_if = "Option::is_none")]
    pub billing_mode: Option<Value<String>>,
    /// The attributes used in the table's and its indexes' key schemas.
    #[serde(rename = "AttributeDefinitions", skip_serializing_if = "Vec::is_empty")]
    pub attribute_definitions: Vec<AttributeDefinition>,
    /// The primary key (hash, then range).
    #[serde(rename = "KeySchema")]
    pub key_schema: Vec<KeySchema>,
    /// Local secondary indexes (created with the table only).
    #[serde(
        rename = "LocalSecondaryIndexes",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub local_secondary_indexes: Vec<SecondaryIndex>,
    /// Global secondary indexes.
    #[serde(
        rename = "GlobalSecondaryIndexes",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub global_secondary_indexes: Vec<SecondaryIndex>,
    /// Point-in-time recovery.
    #[serde(
        rename = "PointInTimeRecoverySpecification",
        skip_serializing_if = "Option::is_none"
    )]
    pub point_in_time_recovery_specification: Option<PointInTimeRecoverySpecification>,
    /// Server-side encryption (absent: an AWS owned key).
    #[serde(rename = "SSESpecification", skip_serializing_if = "Option::is_none")]
    pub sse_specification: Option<SseSpecification>,
    /// Refuses `DeleteTable` while true.
    #[serde(
        rename = "DeletionProtectionEnabled",
        skip_serializing_if = "Option::is_none"
    )]
    pub deletion_protection_enabled: Option<Value<bool>>,
    /// The attribute holding each item's expiry (Unix seconds).
    #[serde(
        rename = "TimeToLiveSpecification",
        skip_serializing_if = "Option::is_none"
    )]
    pub time_to_live_specification: Option<TimeToLiveSpecification>,
    /// Tags.
    #[serde(rename = "Tags", skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}
resource!(Table, "AWS::DynamoDB::Table", TableAttr { Arn => "Arn" });

/// An attribute of a key schema.
#[derive(Debug, Clone, Serialize)]
pub struct AttributeDefinition {
    /// Its name.
    #[serde(rename = "AttributeName")]
    pub attribute_name: Value<String>,
    /// `S`, `N` or `B`.
    #[serde(rename = "AttributeType")]
    pub attribute_type: Value<String>,
}

impl AttributeDefinition {
    /// A string attribute.
    pub fn string(name: &str) -> AttributeDefinition {
        AttributeDefinition {
            attribute_name: name.into(),
            attribute_type: "S".into(),
        }
    }
}

/// One element of a key schema.
#[derive(Debug, Clone, Serialize)]
pub struct KeySchema {
    /// The attribute.
    #[serde(rename = "AttributeName")]
    pub attribute_name: Value<String>,
    /// `HASH` or `RANGE`.
    #[serde(rename = "KeyType")]
    pub key_type: Value<String>,
}

impl KeySchema {
    /// A hash (partition) key.
    pub fn hash(name: &str) -> KeySchema {
        KeySchema {
            attribute_name: name.into(),
            key_type: "HASH".into(),
        }
    }

    /// A range (sort) key.
    pub fn range(name: &str) -> KeySchema {
        KeySchema {
            attribute_name: name.into(),
            key_type: "RANGE".into(),
        }
    }
}

/// A local or global secondary index (the same shape in CloudFormation, less throughput).
#[derive(Debug, Clone, Serialize)]
pub struct SecondaryIndex {
    /// The index's name.
    #[serde(rename = "IndexName")]
    pub index_name: Value<String>,
    /// Its key.
    #[serde(rename = "KeySchema")]
    pub key_schema: Vec<KeySchema>,
    /// Which attributes it copies.
    #[serde(rename = "Projection")]
    pub projection: Projection,
}

/// Which attributes an index copies.
#[derive(Debug, Clone, Serialize)]
pub struct Projection {
    /// `ALL`, `KEYS_ONLY` or `INCLUDE`.
    #[serde(rename = "ProjectionType", skip_serializing_if = "Option::is_none")]
    pub projection_type: Option<Value<String>>,
}

/// `PointInTimeRecoverySpecification`.
#[derive(Debug, Clone, Serialize)]
pub struct PointInTimeRecoverySpecification {
    /// Continuous backups for the last 35 days.
    #[serde(
        rename = "PointInTimeRecoveryEnabled",
        skip_serializing_if = "Option::is_none"
    )]
    pub point_in_time_recovery_enabled: Option<Value<bool>>,
}

/// `SSESpecification`.
#[derive(Debug, Clone, Serialize)]
pub struct SseSpecification {
    /// True: a KMS key (the `aws/dynamodb` managed key, or `KMSMasterKeyId`); false: an AWS
    /// owned key.
    #[serde(rename = "SSEEnabled")]
    pub sse_enabled: Value<bool>,
    /// `KMS` when enabled.
    #[serde(rename = "SSEType", skip_serializing_if = "Option::is_none")]
    pub sse_type: Option<Value<String>>,
    /// A customer managed key.
    #[serde(rename = "KMSMasterKeyId", skip_serializing_if = "Option::is_none")]
    pub kms_master_key_id: Option<Value<String>>,
}

/// `TimeToLiveSpecification`.
#[derive(Debug, Clone, Serialize)]
pub struct TimeToLiveSpecification {
    /// The attribute.
    #[serde(rename = "AttributeName", skip_serializing_if = "Option::is_none")]
    pub attribute_name: Option<Value<String>>,
    /// Whether expired items are removed.
    #[serde(rename = "Enabled")]
    pub enabled: Value<bool>,
}
