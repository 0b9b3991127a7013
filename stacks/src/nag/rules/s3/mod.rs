//! S3 rules: access logging, public access block, TLS-only bucket policies, website buckets.

mod s3_bucket_logging_enabled;
mod s3_bucket_public_access_blocked;
mod s3_bucket_tls_only;
mod s3_web_bucket_oai_access;

pub use s3_bucket_logging_enabled::S3_BUCKET_LOGGING_ENABLED;
pub use s3_bucket_public_access_blocked::S3_BUCKET_PUBLIC_ACCESS_BLOCKED;
pub use s3_bucket_tls_only::S3_BUCKET_TLS_ONLY;
pub use s3_web_bucket_oai_access::S3_WEB_BUCKET_OAI_ACCESS;

use serde_json::Value;

use crate::nag::resolve::referenced_id;
use crate::nag::{ByValue, Resource};

/// The bucket policies that may apply to a bucket, in template order: those referencing it,
/// plus (when the bucket has a name, literal or built by an intrinsic) those whose `Bucket` is
/// that same value, found through the template's index rather than a scan of every policy.
pub(crate) fn candidate_policies<'a>(bucket: &Resource<'a>) -> Vec<Resource<'a>> {
    const POLICY: &[&str] = &["AWS::S3::BucketPolicy"];
    let mut policies: Vec<Resource<'a>> = bucket.referrers(POLICY).collect();
    if let Some(name) = bucket.prop("BucketName") {
        policies.extend(bucket.others_with_value(ByValue::BucketPolicyBucket, name));
        policies.sort_by_key(|policy| bucket.template.ordinal(policy.logical_id));
        policies.dedup_by_key(|policy| policy.logical_id);
    }
    policies
}

/// True when a bucket policy's `Bucket` value names this bucket: by reference, or by the very
/// value of its `BucketName` (a literal, or the same intrinsic such as `!Sub ${App}-data`).
pub(crate) fn policy_targets(bucket: &Resource<'_>, policy: &Resource<'_>) -> bool {
    let Some(target) = policy.prop("Bucket") else {
        return false;
    };
    if referenced_id(target) == Some(bucket.logical_id) {
        return true;
    }
    bucket.prop("BucketName") == Some(target)
}

/// The text that names a bucket inside ARNs: a literal name, or the template string of an
/// `Fn::Sub` (`${App}-data` appears as is in `!Sub arn:${AWS::Partition}:s3:::${App}-data/*`).
pub(crate) fn bucket_name_text(name: &Value) -> Option<&str> {
    match name {
        Value::String(text) => Some(text),
        Value::Object(object) if object.len() == 1 => match object.get("Fn::Sub")? {
            Value::String(text) => Some(text),
            Value::Array(parts) => parts.first()?.as_str(),
            _ => None,
        },
        _ => None,
    }
}
