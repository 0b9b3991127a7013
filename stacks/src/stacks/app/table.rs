//! The app's store table (`LLM_EVAL_STORE=dynamodb:<table>`): runs, per-record results,
//! datasets' metadata, settings, sessions and run leases, shared by every task.
//!
//! On demand, point-in-time recovery, encrypted with a KMS key (the `aws/dynamodb` managed
//! key, or the customer managed key of `DEPLOY_KMS_KEY`), deletion protection on, and kept when the stack is deleted like the data bucket
//! (`deployer down --purge` deletes it). The key schema and the two indexes are the ones the
//! app's `DynamoStore` queries (`app/src/store/dynamo.rs`); sessions expire through the
//! table's time-to-live attribute `ttl` as well.

use crate::config::StackConfig;
use crate::model::{Handle, Policy as Retention, Template, s};
use crate::resources::dynamodb::{
    AttributeDefinition, KeySchema, PointInTimeRecoverySpecification, Projection, SecondaryIndex,
    SseSpecification, Table, TimeToLiveSpecification,
};
use crate::stacks::app::{Imports, app_tags};
use crate::stacks::checkov;

/// The table's name for a stack prefix (`deployer down --purge` deletes it by this name).
pub fn table_name(prefix: &str) -> String {
    format!("{prefix}-store")
}

/// The indexes the store queries: a user's runs and datasets newest first, and the running
/// runs of every user.
pub const TABLE_INDEXES: &[&str] = &["by_created", "running"];

pub(super) fn add(t: &mut Template, cfg: &StackConfig, imports: &Imports) -> Handle<Table> {
    let table = t.add(
        "StoreTable",
        Table {
            table_name: Some(s(table_name(&cfg.prefix))),
            billing_mode: Some(s("PAY_PER_REQUEST")),
            attribute_definitions: ["pk", "sk", "ckey", "running"]
                .into_iter()
                .map(AttributeDefinition::string)
                .collect(),
            key_schema: vec![KeySchema::hash("pk"), KeySchema::range("sk")],
            local_secondary_indexes: vec![SecondaryIndex {
                index_name: s(TABLE_INDEXES[0]),
                key_schema: vec![KeySchema::hash("pk"), KeySchema::range("ckey")],
                projection: Projection {
                    projection_type: Some(s("ALL")),
                },
            }],
            global_secondary_indexes: vec![SecondaryIndex {
                index_name: s(TABLE_INDEXES[1]),
                key_schema: vec![KeySchema::hash("running"), KeySchema::range("sk")],
                projection: Projection {
                    projection_type: Some(s("KEYS_ONLY")),
                },
            }],
            point_in_time_recovery_specification: Some(PointInTimeRecoverySpecification {
                point_in_time_recovery_enabled: Some(true.into()),
            }),
            sse_specification: Some(SseSpecification {
                sse_enabled: true.into(),
                sse_type: Some(s("KMS")),
                kms_master_key_id: imports.kms_key.clone(),
            }),
            deletion_protection_enabled: Some(true.into()),
            time_to_live_specification: Some(TimeToLiveSpecification {
                attribute_name: Some(s("ttl")),
                enabled: true.into(),
            }),
            tags: app_tags(cfg),
        },
    );
    // Runs and results outlive the stack, like the data bucket.
    t.set_policies(&table, Retention::Retain, Retention::Retain);
    checkov::skip_without_cmk(t, cfg, &table, "CKV_AWS_119");
    table
}
