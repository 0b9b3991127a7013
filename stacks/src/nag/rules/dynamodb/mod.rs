//! DynamoDB rules: point-in-time recovery.

mod dynamodb_pitr_enabled;

pub use dynamodb_pitr_enabled::DYNAMODB_PITR_ENABLED;
