//! checkov skips: the checks of checkov (the second opinion `stacks/tests/it/checkov.rs` runs)
//! that our design accepts, written with their reason into the resource's
//! `Metadata.checkov.skip` (checkov's own format), next to the resource like the nag
//! suppressions.

use serde_json::{Value, json};

use crate::config::StackConfig;
use crate::model::Template;
use crate::model::template::HasLogicalId;

/// The reason of every skip for a missing customer managed key.
pub const CMK_COST: &str =
    "a customer-managed key costs money every month; opt in with DEPLOY_KMS_KEY";

/// Appends `(check id, comment)` skips to the resource's `Metadata.checkov.skip`.
pub(crate) fn skip(t: &mut Template, resource: &dyn HasLogicalId, checks: &[(&str, &str)]) {
    let Some(metadata) = t.metadata_mut(resource) else {
        return;
    };
    let checkov = metadata.entry("checkov").or_insert_with(|| json!({}));
    if let Some(list) = checkov
        .as_object_mut()
        .map(|map| map.entry("skip").or_insert_with(|| json!([])))
        .and_then(Value::as_array_mut)
    {
        list.extend(
            checks
                .iter()
                .map(|(id, comment)| json!({"id": id, "comment": comment})),
        );
    }
}

/// Skips `check` (a "not encrypted with a customer managed key" check) on `resource` when
/// `cfg` uses no customer managed key.
pub(crate) fn skip_without_cmk(
    t: &mut Template,
    cfg: &StackConfig,
    resource: &dyn HasLogicalId,
    check: &str,
) {
    if !cfg.kms_key.is_customer_managed() {
        skip(t, resource, &[(check, CMK_COST)]);
    }
}
