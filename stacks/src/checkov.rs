//! checkov's skip metadata (`Metadata.checkov.skip: [{id, comment}]`): the checks of checkov
//! (a second opinion on our templates, run in CI over every synthesized template) that a
//! resource fails by design, each with the reason next to the resource. README.md, "Security
//! checks", lists them.

use serde_json::{Map, Value as Json, json};

use crate::model::Template;
use crate::model::template::HasLogicalId;

/// Writes checkov skips on a resource of this template.
pub trait CheckovSkip {
    /// Adds `(check id, why it stays)` pairs to the resource's `Metadata.checkov.skip`.
    fn checkov_skip(&mut self, resource: &dyn HasLogicalId, skips: &[(&str, &str)]);
}

impl CheckovSkip for Template {
    fn checkov_skip(&mut self, resource: &dyn HasLogicalId, skips: &[(&str, &str)]) {
        // A handle of another template has no entry here; `metadata_mut` records that as a
        // validation error, so synthesis fails instead of dropping the skip silently.
        let Some(metadata) = self.metadata_mut(resource) else {
            return;
        };
        let checkov = metadata
            .entry("checkov")
            .or_insert_with(|| Json::Object(Map::new()));
        if let Json::Object(checkov) = checkov {
            let list = checkov.entry("skip").or_insert_with(|| json!([]));
            if let Json::Array(list) = list {
                for (id, comment) in skips {
                    list.push(json!({"id": id, "comment": comment}));
                }
            }
        }
    }
}
