//! Expands the `Fn::ForEach` loops of the `AWS::LanguageExtensions` transform in `Resources`.
//!
//! A loop `Fn::ForEach::Name: [Identifier, Collection, {OutputKey: Fragment}]` stands for one
//! copy of each fragment per collection item, with `${Identifier}` and `&{Identifier}` (the
//! item without non-alphanumeric characters) replaced in keys and strings, and
//! `Ref: Identifier` replaced by the item. Loops nest, and may also sit inside a resource's
//! `Properties` (any mapping there), where they produce property keys.
//! The collection is resolved when it is a literal list or a `Ref` to a parameter with a
//! `Default`; otherwise the fragment is kept once with the identifier left as written, so its
//! resources are still checked (a rule needing the identifier's value then reports it as
//! unresolvable) instead of silently passing.
//! Invariant: expansion is bounded (nesting depth, number of produced resources, and size of
//! what is produced, so a short loop over a large fragment cannot fill memory).

use std::collections::HashMap;

use serde_json::{Map, Value};

/// The key prefix of a loop.
const LOOP_PREFIX: &str = "Fn::ForEach::";
/// Loops nest at most this deep.
const MAX_DEPTH: usize = 8;
/// At most this many resources come out of the loops of one template.
const MAX_EXPANDED: usize = 10_000;
/// At most this much comes out of the loops of one template, counted as [`NODE_BYTES`] per
/// value plus the length of every string and key (roughly the memory it takes).
pub const MAX_EXPANDED_BYTES: usize = 64 << 20;
/// What one produced value counts for in [`MAX_EXPANDED_BYTES`].
const NODE_BYTES: usize = 48;

/// A loop that is not `[identifier, collection, {key: fragment}]`, or that expands too far.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{loop_key}` {problem}")]
pub struct LoopError {
    /// The top-level loop key in `Resources` (`Fn::ForEach::Buckets`).
    pub loop_key: String,
    /// What is wrong.
    pub problem: String,
}

/// Replaces every `Fn::ForEach::*` entry of `root.Resources` by the resources it produces.
/// Returns, for every produced logical id, the top-level loop key it came from (for positions).
pub fn expand_resources(root: &mut Value) -> Result<HashMap<String, String>, LoopError> {
    let mut origins = HashMap::new();
    let parameters = root.get("Parameters").cloned();
    let Some(Value::Object(resources)) = root.get_mut("Resources") else {
        return Ok(origins);
    };
    let mut n_produced = 0;
    let mut bytes_left = MAX_EXPANDED_BYTES;
    for body in resources.values_mut() {
        if let Some(properties) = body.get_mut("Properties") {
            let mut context = Context {
                loop_key: "",
                parameters: parameters.as_ref(),
                n_produced,
                bytes_left,
            };
            context.expand_nested(properties, 0)?;
            n_produced = context.n_produced;
            bytes_left = context.bytes_left;
        }
    }
    if !resources.keys().any(|key| key.starts_with(LOOP_PREFIX)) {
        return Ok(origins);
    }
    let mut expanded = Map::new();
    for (key, value) in std::mem::take(resources) {
        if !key.starts_with(LOOP_PREFIX) {
            expanded.insert(key, value);
            continue;
        }
        let mut produced = Map::new();
        let mut context = Context {
            loop_key: &key,
            parameters: parameters.as_ref(),
            n_produced,
            bytes_left,
        };
        context.expand(&value, 0, &mut produced)?;
        n_produced = context.n_produced;
        bytes_left = context.bytes_left;
        for (logical_id, body) in produced {
            origins.insert(logical_id.clone(), key.clone());
            expanded.insert(logical_id, body);
        }
    }
    *resources = expanded;
    Ok(origins)
}

struct Context<'a> {
    loop_key: &'a str,
    parameters: Option<&'a Value>,
    n_produced: usize,
    /// What is left of [`MAX_EXPANDED_BYTES`].
    bytes_left: usize,
}

impl<'a> Context<'a> {
    /// Expands the loops found as keys of any mapping inside `value` (resource properties).
    fn expand_nested(&mut self, value: &mut Value, depth: usize) -> Result<(), LoopError> {
        if depth > 64 {
            return Ok(());
        }
        match value {
            Value::Array(items) => {
                for item in items {
                    self.expand_nested(item, depth + 1)?;
                }
            }
            Value::Object(object) => {
                if object.keys().any(|key| key.starts_with(LOOP_PREFIX)) {
                    let mut expanded = Map::new();
                    for (key, inner) in std::mem::take(object) {
                        if key.starts_with(LOOP_PREFIX) {
                            let mut nested = Context {
                                loop_key: &key,
                                parameters: self.parameters,
                                n_produced: self.n_produced,
                                bytes_left: self.bytes_left,
                            };
                            nested.expand(&inner, 0, &mut expanded)?;
                            self.n_produced = nested.n_produced;
                            self.bytes_left = nested.bytes_left;
                        } else {
                            expanded.insert(key, inner);
                        }
                    }
                    *object = expanded;
                }
                for inner in object.values_mut() {
                    self.expand_nested(inner, depth + 1)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn error(&self, problem: &str) -> LoopError {
        LoopError {
            loop_key: self.loop_key.to_owned(),
            problem: problem.to_owned(),
        }
    }

    /// Expands one loop value (`[identifier, collection, fragments]`) into `out`.
    fn expand(
        &mut self,
        value: &Value,
        depth: usize,
        out: &mut Map<String, Value>,
    ) -> Result<(), LoopError> {
        if depth >= MAX_DEPTH {
            return Err(self.error(&format!("nests loops deeper than {MAX_DEPTH} levels")));
        }
        let Some([identifier, collection, fragments]) = value.as_array().map(Vec::as_slice) else {
            return Err(self.error("is not a list of identifier, collection and fragment"));
        };
        let Some(identifier) = identifier.as_str().filter(|name| !name.is_empty()) else {
            return Err(self.error("has an identifier that is not a string"));
        };
        let Some(fragments) = fragments.as_object() else {
            return Err(self.error("has a fragment that is not a mapping"));
        };
        // An unresolvable collection keeps the fragment once, identifier left as written.
        let items = self
            .collection(collection)
            .map_or(vec![None], |items| items.into_iter().map(Some).collect());
        for item in &items {
            for (key, fragment) in fragments {
                let too_big = || {
                    self.error(&format!(
                        "expands to more than {} MiB of template",
                        MAX_EXPANDED_BYTES >> 20
                    ))
                };
                let mut budget = self.bytes_left;
                let key = substitute_text(key, identifier, item.as_deref(), &mut budget)
                    .ok_or_else(too_big)?;
                let fragment = substitute(fragment, identifier, item.as_deref(), &mut budget)
                    .ok_or_else(too_big)?;
                self.bytes_left = budget;
                if key.starts_with(LOOP_PREFIX) {
                    self.expand(&fragment, depth + 1, out)?;
                    continue;
                }
                self.n_produced += 1;
                if self.n_produced > MAX_EXPANDED {
                    return Err(
                        self.error(&format!("expands to more than {MAX_EXPANDED} resources"))
                    );
                }
                out.insert(key, fragment);
            }
        }
        Ok(())
    }

    /// The collection's items, when they are known without deploying.
    fn collection(&self, collection: &Value) -> Option<Vec<String>> {
        match collection {
            Value::Array(items) => items.iter().map(item_text).collect(),
            Value::Object(object) if object.len() == 1 => {
                let parameter = object.get("Ref")?.as_str()?;
                match self.parameters?.get(parameter)?.get("Default")? {
                    Value::String(text) => {
                        Some(text.split(',').map(|item| item.trim().to_owned()).collect())
                    }
                    Value::Array(items) => items.iter().map(item_text).collect(),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

fn item_text(item: &Value) -> Option<String> {
    match item {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// Takes `bytes` from `budget`, or `None` when it does not hold that much.
fn spend(budget: &mut usize, bytes: usize) -> Option<()> {
    *budget = budget.checked_sub(bytes)?;
    Some(())
}

/// Replaces `${identifier}` by `item` and `&{identifier}` by its alphanumeric characters,
/// spending the result's length from `budget` before building it (a long item times many
/// occurrences would otherwise be built first and counted after).
fn substitute_text(
    text: &str,
    identifier: &str,
    item: Option<&str>,
    budget: &mut usize,
) -> Option<String> {
    let Some(item) = item else {
        spend(budget, text.len())?;
        return Some(text.to_owned());
    };
    let alphanumeric: String = item.chars().filter(char::is_ascii_alphanumeric).collect();
    let plain = format!("${{{identifier}}}");
    let stripped = format!("&{{{identifier}}}");
    let n_plain = text.matches(plain.as_str()).count();
    let n_stripped = text.matches(stripped.as_str()).count();
    let length = n_plain
        .checked_mul(item.len())?
        .checked_add(n_stripped.checked_mul(alphanumeric.len())?)?
        .checked_add(text.len())?;
    spend(budget, length)?;
    Some(text.replace(&plain, item).replace(&stripped, &alphanumeric))
}

/// A copy of `value` with the loop item substituted, spending its size from `budget`.
fn substitute(
    value: &Value,
    identifier: &str,
    item: Option<&str>,
    budget: &mut usize,
) -> Option<Value> {
    spend(budget, NODE_BYTES)?;
    Some(match value {
        Value::String(text) => Value::String(substitute_text(text, identifier, item, budget)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|inner| substitute(inner, identifier, item, budget))
                .collect::<Option<_>>()?,
        ),
        Value::Object(object) => {
            if let Some(item_text) = item
                && object.len() == 1
                && object.get("Ref").and_then(Value::as_str) == Some(identifier)
            {
                spend(budget, item_text.len())?;
                return Some(Value::String(item_text.to_owned()));
            }
            let mut out = Map::new();
            for (key, inner) in object {
                out.insert(
                    substitute_text(key, identifier, item, budget)?,
                    substitute(inner, identifier, item, budget)?,
                );
            }
            Value::Object(out)
        }
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expands the loops of a YAML template and renders its `Resources` as compact JSON.
    fn check(template: &str, expected: &str) {
        let mut root = crate::nag::parse::parse_tree("t.yaml", template).expect("valid YAML");
        let rendered = match expand_resources(&mut root) {
            Ok(_) => root["Resources"].to_string(),
            Err(error) => error.to_string(),
        };
        assert_eq!(rendered, expected, "{template}");
    }

    #[test]
    fn loops_expand_literal_lists() {
        check(
            "Resources:\n  Fn::ForEach::B:\n    - N\n    - [a-1, b]\n    - 'Bucket&{N}': {Type: T, Properties: {Name: !Sub '${N}-x', R: !Ref N}}",
            r#"{"Bucketa1":{"Type":"T","Properties":{"Name":{"Fn::Sub":"a-1-x"},"R":"a-1"}},"Bucketb":{"Type":"T","Properties":{"Name":{"Fn::Sub":"b-x"},"R":"b"}}}"#,
        );
    }

    #[test]
    fn loops_expand_parameter_defaults() {
        check(
            "Parameters: {P: {Type: CommaDelimitedList, Default: 'x, y'}}\nResources:\n  Fn::ForEach::L: [N, !Ref P, {'Q${N}': {Type: T}}]",
            r#"{"Qx":{"Type":"T"},"Qy":{"Type":"T"}}"#,
        );
    }

    #[test]
    fn loops_nest_and_keep_plain_resources() {
        check(
            "Resources:\n  A: {Type: T}\n  Fn::ForEach::O: [X, [a, b], {Fn::ForEach::I: [Y, ['1'], {'${X}${Y}': {Type: T}}]}]",
            r#"{"A":{"Type":"T"},"a1":{"Type":"T"},"b1":{"Type":"T"}}"#,
        );
    }

    #[test]
    fn regression_foreach_inside_properties_is_expanded() {
        check(
            "Resources:\n  R:\n    Type: T\n    Properties:\n      Tags: {Fn::ForEach::T: [K, [a, b], {'${K}': !Ref K}], Other: 1}",
            r#"{"R":{"Type":"T","Properties":{"Tags":{"a":"a","b":"b","Other":1}}}}"#,
        );
    }

    #[test]
    fn unresolvable_collections_keep_the_fragment_once() {
        check(
            "Resources:\n  Fn::ForEach::L: [N, !GetAZs '', {'S${N}': {Type: T, Properties: {Az: !Ref N}}}]",
            r#"{"S${N}":{"Type":"T","Properties":{"Az":{"Ref":"N"}}}}"#,
        );
    }

    #[test]
    fn malformed_loops_are_errors() {
        check(
            "Resources:\n  Fn::ForEach::L: [N, [a]]",
            "`Fn::ForEach::L` is not a list of identifier, collection and fragment",
        );
        check(
            "Resources:\n  Fn::ForEach::L: [1, [a], {}]",
            "`Fn::ForEach::L` has an identifier that is not a string",
        );
        check(
            "Resources:\n  Fn::ForEach::L: [N, [a], []]",
            "`Fn::ForEach::L` has a fragment that is not a mapping",
        );
    }

    #[test]
    fn expansion_is_bounded() {
        let mut nested = "{'R${A}': {Type: T}}".to_owned();
        for depth in 0..9 {
            nested = format!("{{Fn::ForEach::L{depth}: [A, [a], {nested}]}}");
        }
        check(
            &format!("Resources:\n  Fn::ForEach::Top: [A, [a], {nested}]"),
            "`Fn::ForEach::Top` nests loops deeper than 8 levels",
        );
        let items = (0..200)
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(",");
        check(
            &format!(
                "Resources:\n  Fn::ForEach::Top: [A, [{items}], {{Fn::ForEach::I: [B, [{items}], {{'R${{A}}x${{B}}': {{Type: T}}}}]}}]"
            ),
            "`Fn::ForEach::Top` expands to more than 10000 resources",
        );
    }

    #[test]
    fn regression_expansion_size_is_bounded() {
        // 100 copies of a 1 MiB string: 100 MiB from a 1 MiB template.
        let big = "x".repeat(1 << 20);
        let items = (0..100)
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(",");
        check(
            &format!(
                "Resources:\n  Fn::ForEach::Top: [A, [{items}], {{'R${{A}}': {{Type: T, Properties: {{Big: {big}}}}}}}]"
            ),
            "`Fn::ForEach::Top` expands to more than 64 MiB of template",
        );
        // A long item substituted many times is refused before it is built.
        let long_item = "y".repeat(1 << 20);
        let many = "${A}".repeat(100_000);
        check(
            &format!(
                "Resources:\n  Fn::ForEach::Top: [A, ['{long_item}'], {{'R': {{Type: T, Properties: {{S: '{many}'}}}}}}]"
            ),
            "`Fn::ForEach::Top` expands to more than 64 MiB of template",
        );
    }
}
