//! Shared helpers: synthesizing configs and looking into templates.

use serde_json::Value as Json;
use stacks::{StackConfig, SynthStack, synth_all};

/// Synthesizes `cfg`, panicking with the error text on failure.
pub fn synth(cfg: &StackConfig) -> Vec<SynthStack> {
    synth_all(cfg).unwrap_or_else(|err| panic!("{}: {err}", cfg.toggle_label()))
}

/// Every resource of every stack of every toggle combination, as `(stack, id, resource json)`.
pub fn all_resources() -> Vec<(String, String, Json)> {
    let mut out = Vec::new();
    for cfg in StackConfig::default().toggle_combinations() {
        for stack in synth(&cfg) {
            let json = stack.template.to_json_value();
            if let Some(resources) = json["Resources"].as_object() {
                for (id, resource) in resources {
                    out.push((
                        format!("{}[{}]", stack.name, cfg.toggle_label()),
                        id.clone(),
                        resource.clone(),
                    ));
                }
            }
        }
    }
    out
}

/// The stack of `kind` ("network", "app", "studio") under the default config.
pub fn default_stack(kind: &str) -> SynthStack {
    synth(&StackConfig::default())
        .into_iter()
        .find(|stack| stack.kind.short_name() == kind)
        .unwrap_or_else(|| panic!("no {kind} stack"))
}

/// The stack of `kind` among `stacks`.
pub fn of_kind<'s>(stacks: &'s [SynthStack], kind: &str) -> &'s SynthStack {
    stacks
        .iter()
        .find(|stack| stack.kind.short_name() == kind)
        .unwrap_or_else(|| panic!("no {kind} stack"))
}
