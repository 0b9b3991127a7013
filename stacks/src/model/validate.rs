//! Synth-time checks of a [`Template`] for everything the type system cannot rule out.
//!
//! Typed handles make a `Ref`/`GetAtt` to a missing resource or attribute unwritable and
//! required properties are non-`Option` fields; this module catches the rest: string-based
//! references (`Ref`, `Fn::GetAtt`, `${X}` / `${X.Attr}` in `Fn::Sub`), conditions used but not
//! declared, invalid or duplicate ids, `DependsOn` targets, dependency cycles, a template
//! without resources, and secrets exposed as outputs. Every error names the stack, the
//! logical id and the property path.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value as Json;

use crate::model::template::{BuildProblem, Template};

/// CloudFormation's `TemplateBody` limit: a larger template must be uploaded to S3 and passed
/// as `TemplateURL` (the deployer does; see the toolkit stack).
pub const TEMPLATE_BODY_LIMIT: usize = 51_200;

/// Per-template quotas of CloudFormation ("Understand CloudFormation quotas"), checked at synth
/// so a template that breaks one fails here, not in the middle of a deployment.
pub mod quota {
    /// Resources per template.
    pub const RESOURCES: usize = 500;
    /// Parameters per template.
    pub const PARAMETERS: usize = 200;
    /// Outputs per template.
    pub const OUTPUTS: usize = 200;
    /// Mappings per template.
    pub const MAPPINGS: usize = 200;
    /// Bytes of the template's description.
    pub const DESCRIPTION_BYTES: usize = 1_024;
    /// Bytes of a template passed as an S3 object (`TemplateURL`).
    pub const TEMPLATE_BYTES: usize = 1_000_000;
}

/// Attributes whose value is a secret and must never be an output.
const SECRET_ATTRIBUTES: &[(&str, &str)] = &[
    ("AWS::Cognito::UserPoolClient", "ClientSecret"),
    ("AWS::IAM::AccessKey", "SecretAccessKey"),
];

/// Pseudo parameters `Ref` and `Fn::Sub` may name.
const PSEUDO_PARAMETERS: &[&str] = &[
    "AWS::AccountId",
    "AWS::NotificationARNs",
    "AWS::NoValue",
    "AWS::Partition",
    "AWS::Region",
    "AWS::StackId",
    "AWS::StackName",
    "AWS::URLSuffix",
];

/// One validation failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidateError {
    /// An id that CloudFormation would reject.
    #[error("{stack}: invalid logical id `{logical_id}`: {reason}")]
    InvalidId {
        /// Stack name.
        stack: String,
        /// The id.
        logical_id: String,
        /// Why it is invalid.
        reason: String,
    },
    /// The same id declared twice.
    #[error("{stack}: logical id `{logical_id}` is declared twice")]
    DuplicateId {
        /// Stack name.
        stack: String,
        /// The id.
        logical_id: String,
    },
    /// Properties that could not be turned into JSON.
    #[error("{stack}: {logical_id}: properties cannot be serialized: {message}")]
    Serialize {
        /// Stack name.
        stack: String,
        /// The resource.
        logical_id: String,
        /// The serializer's message.
        message: String,
    },
    /// `Ref` (or `${X}`) to something that is neither a parameter, resource nor pseudo parameter.
    #[error("{stack}: {logical_id} at {path}: reference to unknown `{target}`")]
    UnknownRef {
        /// Stack name.
        stack: String,
        /// Where the reference is written.
        logical_id: String,
        /// Property path inside that entry.
        path: String,
        /// What it refers to.
        target: String,
    },
    /// `Fn::GetAtt` (or `${X.Attr}`) of a missing resource or an attribute its type lacks.
    #[error("{stack}: {logical_id} at {path}: `{target}.{attribute}` is not a resource attribute")]
    UnknownAttribute {
        /// Stack name.
        stack: String,
        /// Where the reference is written.
        logical_id: String,
        /// Property path inside that entry.
        path: String,
        /// The resource referred to.
        target: String,
        /// The attribute.
        attribute: String,
    },
    /// A condition used but not declared.
    #[error("{stack}: {logical_id} at {path}: condition `{condition}` is not declared")]
    UnknownCondition {
        /// Stack name.
        stack: String,
        /// Where the condition is used.
        logical_id: String,
        /// Property path inside that entry.
        path: String,
        /// The condition name.
        condition: String,
    },
    /// `Fn::FindInMap` of a mapping that is not declared.
    #[error("{stack}: {logical_id} at {path}: mapping `{mapping}` is not declared")]
    UnknownMapping {
        /// Stack name.
        stack: String,
        /// Where the lookup is written.
        logical_id: String,
        /// Property path inside that entry.
        path: String,
        /// The mapping name.
        mapping: String,
    },
    /// Two outputs export the same name.
    #[error("{stack}: output {logical_id}: export name `{export}` is used twice")]
    DuplicateExport {
        /// Stack name.
        stack: String,
        /// The second output with that export name.
        logical_id: String,
        /// The export name.
        export: String,
    },
    /// A `DependsOn` target that is not a resource.
    #[error("{stack}: {logical_id} at DependsOn: `{target}` is not a resource")]
    UnknownDependsOn {
        /// Stack name.
        stack: String,
        /// The dependent resource.
        logical_id: String,
        /// The missing target.
        target: String,
    },
    /// Resources that (through refs or `DependsOn`) depend on themselves.
    #[error("{stack}: {logical_id}: dependency cycle {cycle}")]
    Cycle {
        /// Stack name.
        stack: String,
        /// The first resource of the cycle.
        logical_id: String,
        /// The cycle, `A -> B -> A`.
        cycle: String,
    },
    /// A handle from another template was used with this one.
    #[error("{stack}: handle of resource `{logical_id}` belongs to another template")]
    ForeignHandle {
        /// Stack name.
        stack: String,
        /// The handle's logical id.
        logical_id: String,
    },
    /// A template over one of CloudFormation's per-template quotas.
    #[error("{stack}: template has {count} {what}; CloudFormation allows at most {limit}")]
    Quota {
        /// Stack name.
        stack: String,
        /// What is counted, e.g. `resources`.
        what: &'static str,
        /// How many the template has.
        count: usize,
        /// CloudFormation's quota.
        limit: usize,
    },
    /// A template without resources (CloudFormation rejects it).
    #[error("{stack}: template has no resources")]
    NoResources {
        /// Stack name.
        stack: String,
    },
    /// A secret exposed as a template output.
    #[error("{stack}: output {logical_id} at {path}: exposes secret `{secret}`")]
    SecretOutput {
        /// Stack name.
        stack: String,
        /// The output.
        logical_id: String,
        /// Path inside the output.
        path: String,
        /// What the secret is.
        secret: String,
    },
}

/// All validation failures of a template (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidateErrors(pub Vec<ValidateError>);

impl fmt::Display for ValidateErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (idx, err) in self.0.iter().enumerate() {
            if idx > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{err}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidateErrors {}

/// What a reference may point to.
struct Scope<'t> {
    stack: &'t str,
    parameters: BTreeMap<&'t str, bool>,
    resources: BTreeMap<&'t str, (&'t str, &'static [&'static str])>,
    conditions: BTreeSet<&'t str>,
    mappings: BTreeSet<&'t str>,
}

/// Where the walk currently is.
struct Site<'a> {
    logical_id: &'a str,
    is_output: bool,
}

struct Checker<'t> {
    scope: Scope<'t>,
    errors: Vec<ValidateError>,
    /// Resource-to-resource edges for cycle detection.
    edges: BTreeMap<String, BTreeSet<String>>,
}

impl Checker<'_> {
    fn check_ref(&mut self, site: &Site<'_>, path: &str, target: &str) {
        if PSEUDO_PARAMETERS.contains(&target) {
            return;
        }
        if let Some(no_echo) = self.scope.parameters.get(target) {
            if *no_echo && site.is_output {
                self.errors.push(ValidateError::SecretOutput {
                    stack: self.scope.stack.to_owned(),
                    logical_id: site.logical_id.to_owned(),
                    path: path.to_owned(),
                    secret: format!("NoEcho parameter {target}"),
                });
            }
            return;
        }
        if self.scope.resources.contains_key(target) {
            self.edge(site, target);
            return;
        }
        self.errors.push(ValidateError::UnknownRef {
            stack: self.scope.stack.to_owned(),
            logical_id: site.logical_id.to_owned(),
            path: path.to_owned(),
            target: target.to_owned(),
        });
    }

    fn check_get_att(&mut self, site: &Site<'_>, path: &str, target: &str, attribute: &str) {
        let known = self.scope.resources.get(target).copied();
        match known {
            Some((resource_type, attributes)) if attributes.contains(&attribute) => {
                if site.is_output && SECRET_ATTRIBUTES.contains(&(resource_type, attribute)) {
                    self.errors.push(ValidateError::SecretOutput {
                        stack: self.scope.stack.to_owned(),
                        logical_id: site.logical_id.to_owned(),
                        path: path.to_owned(),
                        secret: format!("{resource_type} {attribute}"),
                    });
                }
                self.edge(site, target);
            }
            _ => self.errors.push(ValidateError::UnknownAttribute {
                stack: self.scope.stack.to_owned(),
                logical_id: site.logical_id.to_owned(),
                path: path.to_owned(),
                target: target.to_owned(),
                attribute: attribute.to_owned(),
            }),
        }
    }

    fn check_condition(&mut self, site: &Site<'_>, path: &str, condition: &str) {
        if !self.scope.conditions.contains(condition) {
            self.errors.push(ValidateError::UnknownCondition {
                stack: self.scope.stack.to_owned(),
                logical_id: site.logical_id.to_owned(),
                path: path.to_owned(),
                condition: condition.to_owned(),
            });
        }
    }

    fn edge(&mut self, site: &Site<'_>, target: &str) {
        if !site.is_output && self.scope.resources.contains_key(site.logical_id) {
            self.edges
                .entry(site.logical_id.to_owned())
                .or_default()
                .insert(target.to_owned());
        }
    }

    fn check_sub(&mut self, site: &Site<'_>, path: &str, template: &str, vars: &[&str]) {
        for name in sub_variables(template) {
            if vars.contains(&name) {
                continue;
            }
            match name.split_once('.') {
                Some((target, attribute)) if !name.starts_with("AWS::") => {
                    self.check_get_att(site, path, target, attribute)
                }
                _ => self.check_ref(site, path, name),
            }
        }
    }

    /// Walks a JSON value, checking every intrinsic it contains.
    fn walk(&mut self, site: &Site<'_>, path: &str, value: &Json) {
        match value {
            Json::Array(items) => {
                for (idx, item) in items.iter().enumerate() {
                    self.walk(site, &format!("{path}[{idx}]"), item);
                }
            }
            Json::Object(map) => {
                if map.len() == 1
                    && let Some((key, arg)) = map.iter().next()
                {
                    self.intrinsic(site, path, key, arg);
                }
                for (key, item) in map {
                    self.walk(site, &format!("{path}.{key}"), item);
                }
            }
            _ => {}
        }
    }

    fn intrinsic(&mut self, site: &Site<'_>, path: &str, key: &str, arg: &Json) {
        match (key, arg) {
            ("Ref", Json::String(target)) => self.check_ref(site, path, target),
            ("Fn::GetAtt", Json::Array(parts)) => {
                if let [Json::String(target), Json::String(attribute)] = parts.as_slice() {
                    self.check_get_att(site, path, target, attribute);
                }
            }
            ("Fn::GetAtt", Json::String(dotted)) => {
                let (target, attribute) = dotted.split_once('.').unwrap_or((dotted, ""));
                self.check_get_att(site, path, target, attribute);
            }
            ("Fn::Sub", Json::String(template)) => self.check_sub(site, path, template, &[]),
            ("Fn::Sub", Json::Array(parts)) => {
                if let [Json::String(template), Json::Object(vars)] = parts.as_slice() {
                    let names: Vec<&str> = vars.keys().map(String::as_str).collect();
                    self.check_sub(site, path, template, &names);
                }
            }
            ("Fn::If", Json::Array(parts)) => {
                if let Some(Json::String(condition)) = parts.first() {
                    self.check_condition(site, path, condition);
                }
            }
            ("Condition", Json::String(condition)) => self.check_condition(site, path, condition),
            ("Fn::FindInMap", Json::Array(parts)) => {
                if let Some(Json::String(mapping)) = parts.first()
                    && !self.scope.mappings.contains(mapping.as_str())
                {
                    self.errors.push(ValidateError::UnknownMapping {
                        stack: self.scope.stack.to_owned(),
                        logical_id: site.logical_id.to_owned(),
                        path: path.to_owned(),
                        mapping: mapping.clone(),
                    });
                }
            }
            _ => {}
        }
    }
}

/// The `${...}` variable names of a `Fn::Sub` template (`${!X}` is a literal and skipped).
pub fn sub_variables(template: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                let name = after[..end].trim();
                if !name.starts_with('!') {
                    names.push(name);
                }
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    names
}

/// Finds a cycle in the dependency graph, as `A -> B -> A`.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        marks: &mut BTreeMap<String, Mark>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Visiting) => {
                let start = stack.iter().position(|n| n == node).unwrap_or(0);
                let mut cycle = stack[start..].to_vec();
                cycle.push(node.to_owned());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node.to_owned(), Mark::Visiting);
        stack.push(node.to_owned());
        if let Some(next) = edges.get(node) {
            for target in next {
                if let Some(cycle) = visit(target, edges, marks, stack) {
                    return Some(cycle);
                }
            }
        }
        stack.pop();
        marks.insert(node.to_owned(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in edges.keys() {
        let mut stack = Vec::new();
        if let Some(cycle) = visit(node, edges, &mut marks, &mut stack) {
            return Some(cycle);
        }
    }
    None
}

/// Validates `template` as the stack named `stack`.
pub fn validate(template: &Template, stack: &str) -> Result<(), ValidateErrors> {
    let scope = Scope {
        stack,
        parameters: template
            .parameters
            .iter()
            .map(|(id, p)| (id.as_str(), p.no_echo))
            .collect(),
        resources: template
            .resources
            .iter()
            .map(|(id, r)| (id.as_str(), (r.resource_type, r.attributes)))
            .collect(),
        conditions: template
            .conditions
            .iter()
            .map(|(id, _)| id.as_str())
            .collect(),
        mappings: template
            .mappings
            .iter()
            .map(|(id, _)| id.as_str())
            .collect(),
    };
    let mut checker = Checker {
        scope,
        errors: Vec::new(),
        edges: BTreeMap::new(),
    };

    for problem in &template.problems {
        checker.errors.push(match problem {
            BuildProblem::BadId(id, reason) => ValidateError::InvalidId {
                stack: stack.to_owned(),
                logical_id: id.clone(),
                reason: reason.clone(),
            },
            BuildProblem::Duplicate(id) => ValidateError::DuplicateId {
                stack: stack.to_owned(),
                logical_id: id.clone(),
            },
            BuildProblem::ForeignHandle(id) => ValidateError::ForeignHandle {
                stack: stack.to_owned(),
                logical_id: id.clone(),
            },
            BuildProblem::Serialize(id, message) => ValidateError::Serialize {
                stack: stack.to_owned(),
                logical_id: id.clone(),
                message: message.clone(),
            },
        });
    }
    if template.resources.is_empty() {
        checker.errors.push(ValidateError::NoResources {
            stack: stack.to_owned(),
        });
    }
    let counts = [
        ("resources", template.resources.len(), quota::RESOURCES),
        ("parameters", template.parameters.len(), quota::PARAMETERS),
        ("outputs", template.outputs.len(), quota::OUTPUTS),
        ("mappings", template.mappings.len(), quota::MAPPINGS),
        (
            "bytes of description",
            template.description().len(),
            quota::DESCRIPTION_BYTES,
        ),
        (
            "bytes as JSON",
            template.to_json_bytes().len(),
            quota::TEMPLATE_BYTES,
        ),
    ];
    for (what, count, limit) in counts {
        if count > limit {
            checker.errors.push(ValidateError::Quota {
                stack: stack.to_owned(),
                what,
                count,
                limit,
            });
        }
    }
    for (id, condition) in &template.conditions {
        let site = Site {
            logical_id: id.as_str(),
            is_output: false,
        };
        checker.walk(&site, "Conditions", &condition.to_json());
    }
    for (id, entry) in &template.resources {
        let site = Site {
            logical_id: id.as_str(),
            is_output: false,
        };
        if let Some(condition) = &entry.condition {
            checker.check_condition(&site, "Condition", condition.as_str());
        }
        for target in &entry.depends_on {
            if checker.scope.resources.contains_key(target.as_str()) {
                checker.edge(&site, target.as_str());
            } else {
                checker.errors.push(ValidateError::UnknownDependsOn {
                    stack: stack.to_owned(),
                    logical_id: id.to_string(),
                    target: target.to_string(),
                });
            }
        }
        for (key, value) in &entry.properties {
            checker.walk(&site, &format!("Properties.{key}"), value);
        }
    }
    let mut export_names = BTreeSet::new();
    for (id, output) in &template.outputs {
        let site = Site {
            logical_id: id.as_str(),
            is_output: true,
        };
        if let Some(export) = &output.export {
            let name = export.to_json().to_string();
            if !export_names.insert(name.clone()) {
                checker.errors.push(ValidateError::DuplicateExport {
                    stack: stack.to_owned(),
                    logical_id: id.to_string(),
                    export: name.trim_matches('"').to_owned(),
                });
            }
        }
        if let Some(condition) = &output.condition {
            checker.check_condition(&site, "Condition", condition.name().as_str());
        }
        checker.walk(&site, "Value", &output.value.to_json());
        if let Some(export) = &output.export {
            checker.walk(&site, "Export.Name", &export.to_json());
        }
    }
    if let Some(cycle) = find_cycle(&checker.edges) {
        checker.errors.push(ValidateError::Cycle {
            stack: stack.to_owned(),
            logical_id: cycle.first().cloned().unwrap_or_default(),
            cycle: cycle.join(" -> "),
        });
    }
    if checker.errors.is_empty() {
        Ok(())
    } else {
        Err(ValidateErrors(checker.errors))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde::Serialize;

    use super::*;
    use crate::model::expr::{Expr, Target};
    use crate::model::template::{Attribute, Output, Parameter, Resource};

    #[derive(Serialize)]
    struct Thing {
        #[serde(rename = "Value", skip_serializing_if = "Option::is_none")]
        value: Option<Expr>,
    }

    // Only the attribute list matters here; references are written as strings on purpose.
    #[allow(dead_code)]
    #[derive(Clone, Copy)]
    enum ThingAttr {
        Arn,
    }

    impl Attribute for ThingAttr {
        const ALL: &'static [&'static str] = &["Arn"];
        fn name(self) -> &'static str {
            match self {
                ThingAttr::Arn => "Arn",
            }
        }
    }

    impl Resource for Thing {
        const TYPE: &'static str = "Test::Thing";
        type Attr = ThingAttr;
    }

    struct Secret;
    impl Serialize for Secret {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_unit_struct("Secret")
        }
    }

    /// Builds a template with resource `A` (value `a_value`) and checks the error messages.
    fn check(a_value: Option<Expr>, expected: &[&str]) {
        let mut t = Template::new("d");
        t.add_parameter("P", Parameter::string("p"));
        t.add("A", Thing { value: a_value });
        let actual: Vec<String> = match t.validate("s") {
            Ok(()) => Vec::new(),
            Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
        };
        assert_eq!(actual, expected);
    }

    #[test]
    fn clean() {
        check(Some(Expr::Ref(Target::new("P"))), &[])
    }
    #[test]
    fn pseudo_ok() {
        check(Some(Expr::sub("${AWS::Region}${P}${!Literal}")), &[])
    }
    #[test]
    fn unknown_ref() {
        check(
            Some(Expr::Ref(Target::new("Nope"))),
            &["s: A at Properties.Value: reference to unknown `Nope`"],
        )
    }
    #[test]
    fn unknown_get_att() {
        check(
            Some(Expr::GetAtt(Target::new("Nope"), "Arn")),
            &["s: A at Properties.Value: `Nope.Arn` is not a resource attribute"],
        )
    }
    #[test]
    fn self_ref_is_cycle() {
        check(
            Some(Expr::GetAtt(Target::new("A"), "Arn")),
            &["s: A: dependency cycle A -> A"],
        )
    }
    #[test]
    fn unknown_attribute_in_sub() {
        check(
            Some(Expr::sub("${A.Nope}")),
            &["s: A at Properties.Value: `A.Nope` is not a resource attribute"],
        )
    }
    #[test]
    fn sub_var_declared() {
        check(Some(Expr::sub_with("${X}", vec![("X", "x".into())])), &[])
    }
    #[test]
    fn sub_var_undeclared() {
        check(
            Some(Expr::sub("${X}")),
            &["s: A at Properties.Value: reference to unknown `X`"],
        )
    }
    #[test]
    fn too_many_outputs() {
        let mut t = Template::new("d");
        t.add("A", Thing { value: None });
        for n in 0..=quota::OUTPUTS {
            t.add_output(
                &format!("O{n}"),
                Output {
                    description: "o".into(),
                    value: Expr::str("x"),
                    export: None,
                    condition: None,
                },
            );
        }
        assert_eq!(
            t.validate("s").unwrap_err().to_string(),
            "s: template has 201 outputs; CloudFormation allows at most 200"
        );
    }
    #[test]
    fn undeclared_condition() {
        check(
            Some(Expr::If(
                Target::new("C"),
                Box::new("a".into()),
                Box::new("b".into()),
            )),
            &["s: A at Properties.Value: condition `C` is not declared"],
        )
    }
    #[test]
    fn undeclared_mapping() {
        check(
            Some(Expr::find_in_map("M", "a".into(), "b".into())),
            &["s: A at Properties.Value: mapping `M` is not declared"],
        )
    }

    #[test]
    fn declared_mapping_and_duplicate_export() {
        let mut t = Template::new("d");
        t.add_mapping("M", serde_json::json!({"a": {"b": "c"}}));
        t.add(
            "A",
            Thing {
                value: Some(Expr::find_in_map("M", "a".into(), "b".into())),
            },
        );
        for id in ["O1", "O2"] {
            let export = Some(Expr::str("same"));
            t.add_output(
                id,
                Output {
                    description: "o".into(),
                    value: Expr::str("v"),
                    export,
                    condition: None,
                },
            );
        }
        assert_eq!(
            t.validate("s").unwrap_err().to_string(),
            "s: output O2: export name `same` is used twice"
        );
    }

    #[test]
    fn nested_path() {
        check(
            Some(Expr::join(",", vec![Expr::Ref(Target::new("Q"))])),
            &["s: A at Properties.Value.Fn::Join[1][0]: reference to unknown `Q`"],
        )
    }

    #[test]
    fn duplicate_and_bad_ids_and_cycle() {
        let mut t = Template::new("d");
        let a = t.add(
            "A",
            Thing {
                value: Some(Expr::Ref(Target::new("B"))),
            },
        );
        let b = t.add("B", Thing { value: None });
        t.depends_on(&b, &a);
        t.add("A", Thing { value: None });
        t.add("bad-id", Thing { value: None });
        let errors: Vec<String> = t
            .validate("s")
            .unwrap_err()
            .0
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errors,
            [
                "s: logical id `A` is declared twice",
                "s: invalid logical id `bad-id`: logical id `bad-id` contains `-`; only A-Z, a-z and 0-9 are allowed",
                "s: A: dependency cycle A -> B -> A",
            ]
        );
    }

    #[test]
    fn secret_outputs_rejected() {
        let mut t = Template::new("d");
        let mut p = Parameter::string("p");
        p.no_echo = true;
        t.add_parameter("Pw", p);
        t.add("A", Thing { value: None });
        t.add_output(
            "O",
            Output {
                description: "o".into(),
                value: Expr::sub("${Pw}"),
                export: None,
                condition: None,
            },
        );
        let errors = t.validate("s").unwrap_err().to_string();
        assert_eq!(
            errors,
            "s: output O at Value: exposes secret `NoEcho parameter Pw`"
        );
    }

    #[test]
    fn no_resources() {
        let t = Template::new("d");
        assert_eq!(
            t.validate("s").unwrap_err().to_string(),
            "s: template has no resources"
        );
    }

    #[test]
    fn serialize_failure_reported() {
        #[derive(Serialize)]
        struct Bad(Secret);
        impl Resource for Bad {
            const TYPE: &'static str = "Test::Bad";
            type Attr = crate::model::template::NoAttr;
        }
        let mut t = Template::new("d");
        t.add("A", Bad(Secret));
        assert!(
            t.validate("s")
                .unwrap_err()
                .to_string()
                .starts_with("s: A: properties cannot be serialized")
        );
    }

    #[test]
    fn sub_variable_names() {
        assert_eq!(
            sub_variables("a${X}b${ Y.Z }${!Q}${unterminated"),
            vec!["X", "Y.Z"]
        );
    }
}
