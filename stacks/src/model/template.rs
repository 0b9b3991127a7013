//! `Template`: one CloudFormation stack template being built, with typed resource handles.
//!
//! Invariants: sections and entries keep insertion order, so the same build calls give
//! byte-identical output; resource properties are converted to JSON when added, so the
//! template is cheap to inspect (by `validate` and the nag rules) and to serialize.
//! Problems found while building (a bad logical id, a duplicate) are recorded and reported by
//! [`Template::validate`] instead of panicking in the middle of a stack definition.

use std::marker::PhantomData;

use serde::Serialize;
use serde_json::{Map, Value as Json};

use crate::model::expr::{Expr, Target};
use crate::model::logical_id::LogicalId;
use crate::model::validate::{self, ValidateErrors};

/// A GetAtt attribute of a resource type.
pub trait Attribute: Copy + 'static {
    /// Every attribute name of the resource type, as CloudFormation spells it.
    const ALL: &'static [&'static str];
    /// This attribute's name, e.g. `CidrBlock`.
    fn name(self) -> &'static str;
}

/// The attribute type of resources that have no GetAtt attributes.
#[derive(Debug, Clone, Copy)]
pub enum NoAttr {}

impl Attribute for NoAttr {
    const ALL: &'static [&'static str] = &[];
    fn name(self) -> &'static str {
        match self {}
    }
}

/// A typed CloudFormation resource: its properties struct.
pub trait Resource: Serialize {
    /// The CloudFormation type, e.g. `AWS::EC2::VPC`.
    const TYPE: &'static str;
    /// The attributes `Fn::GetAtt` may read.
    type Attr: Attribute;
}

/// Something that names a resource of a template.
pub trait HasLogicalId {
    /// The resource's logical id.
    fn logical_id(&self) -> &LogicalId;
}

/// A reference to a resource added to a template; the only way to build `Ref`/`GetAtt` to it.
///
/// The attribute type is tied to the resource type, so a `GetAtt` of an attribute the resource
/// does not have does not compile:
///
/// ```compile_fail
/// use stacks::model::Template;
/// use stacks::resources::{ec2::Vpc, s3::BucketAttr};
/// let mut t = Template::new("d");
/// let vpc = t.add("Vpc", Vpc::default());
/// vpc.get_att(BucketAttr::Arn); // a bucket attribute on a VPC handle
/// ```
///
/// ```
/// use stacks::model::Template;
/// use stacks::resources::ec2::{Vpc, VpcAttr};
/// let mut t = Template::new("d");
/// let vpc = t.add("Vpc", Vpc::default());
/// assert_eq!(serde_json::to_string(&vpc.get_att(VpcAttr::CidrBlock)).unwrap(), r#"{"Fn::GetAtt":["Vpc","CidrBlock"]}"#);
/// ```
#[derive(Debug)]
pub struct Handle<T> {
    id: LogicalId,
    marker: PhantomData<fn() -> T>,
}

impl<T> Clone for Handle<T> {
    fn clone(&self) -> Self {
        Handle {
            id: self.id.clone(),
            marker: PhantomData,
        }
    }
}

impl<T: Resource> Handle<T> {
    /// The resource's logical id.
    pub fn id(&self) -> &LogicalId {
        &self.id
    }

    /// `{"Ref": id}`.
    pub fn r#ref(&self) -> Expr {
        Expr::Ref(Target::new(self.id.as_str()))
    }

    /// `{"Fn::GetAtt": [id, attr]}` of an attribute the type has.
    pub fn get_att(&self, attr: T::Attr) -> Expr {
        Expr::GetAtt(Target::new(self.id.as_str()), attr.name())
    }
}

impl<T> HasLogicalId for Handle<T> {
    fn logical_id(&self) -> &LogicalId {
        &self.id
    }
}

/// A reference to a template parameter.
#[derive(Debug, Clone)]
pub struct ParamHandle {
    id: LogicalId,
}

impl ParamHandle {
    /// The parameter's logical id.
    pub fn id(&self) -> &LogicalId {
        &self.id
    }

    /// `{"Ref": id}`.
    pub fn r#ref(&self) -> Expr {
        Expr::Ref(Target::new(self.id.as_str()))
    }
}

/// A reference to a declared condition.
#[derive(Debug, Clone)]
pub struct CondHandle {
    name: LogicalId,
}

impl CondHandle {
    /// The condition's name.
    pub fn name(&self) -> &LogicalId {
        &self.name
    }

    /// `Fn::If` on this condition.
    pub fn if_(&self, then: Expr, otherwise: Expr) -> Expr {
        Expr::If(
            Target::new(self.name.as_str()),
            Box::new(then),
            Box::new(otherwise),
        )
    }

    /// `{"Condition": name}` for use inside condition functions.
    pub fn expr(&self) -> Expr {
        Expr::Condition(Target::new(self.name.as_str()))
    }
}

/// CloudFormation parameter types we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// `String`.
    String,
    /// `Number`.
    Number,
    /// `CommaDelimitedList`.
    CommaDelimitedList,
}

impl ParamType {
    /// The CloudFormation spelling.
    pub fn name(self) -> &'static str {
        match self {
            ParamType::String => "String",
            ParamType::Number => "Number",
            ParamType::CommaDelimitedList => "CommaDelimitedList",
        }
    }
}

/// A template parameter.
#[derive(Debug, Clone)]
pub struct Parameter {
    /// The parameter type.
    pub kind: ParamType,
    /// What the parameter is for.
    pub description: String,
    /// Default value, if any.
    pub default: Option<String>,
    /// The only values allowed (empty: any).
    pub allowed_values: Vec<String>,
    /// A regular expression the value must match.
    pub allowed_pattern: Option<String>,
    /// Shown when the pattern does not match.
    pub constraint_description: Option<String>,
    /// Mask the value in the console and API.
    pub no_echo: bool,
}

impl Parameter {
    /// A `String` parameter with a description and nothing else.
    pub fn string(description: impl Into<String>) -> Parameter {
        Parameter {
            kind: ParamType::String,
            description: description.into(),
            default: None,
            allowed_values: Vec::new(),
            allowed_pattern: None,
            constraint_description: None,
            no_echo: false,
        }
    }

    fn to_json(&self) -> Json {
        let mut map = Map::new();
        map.insert("Type".into(), self.kind.name().into());
        map.insert("Description".into(), self.description.clone().into());
        if let Some(default) = &self.default {
            map.insert("Default".into(), default.clone().into());
        }
        if !self.allowed_values.is_empty() {
            map.insert("AllowedValues".into(), self.allowed_values.clone().into());
        }
        if let Some(pattern) = &self.allowed_pattern {
            map.insert("AllowedPattern".into(), pattern.clone().into());
        }
        if let Some(text) = &self.constraint_description {
            map.insert("ConstraintDescription".into(), text.clone().into());
        }
        if self.no_echo {
            map.insert("NoEcho".into(), true.into());
        }
        Json::Object(map)
    }
}

/// A stack output, optionally exported for other stacks.
#[derive(Debug, Clone)]
pub struct Output {
    /// What the output is.
    pub description: String,
    /// Its value.
    pub value: Expr,
    /// Export name, if other stacks import it.
    pub export: Option<Expr>,
    /// Condition under which the output exists.
    pub condition: Option<CondHandle>,
}

impl Output {
    fn to_json(&self) -> Json {
        let mut map = Map::new();
        map.insert("Description".into(), self.description.clone().into());
        if let Some(condition) = &self.condition {
            map.insert("Condition".into(), condition.name.as_str().into());
        }
        map.insert("Value".into(), self.value.to_json());
        if let Some(export) = &self.export {
            let mut export_map = Map::new();
            export_map.insert("Name".into(), export.to_json());
            map.insert("Export".into(), Json::Object(export_map));
        }
        Json::Object(map)
    }
}

/// `DeletionPolicy` / `UpdateReplacePolicy` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Delete the physical resource.
    Delete,
    /// Keep the physical resource.
    Retain,
    /// Keep it unless the stack's creation failed.
    RetainExceptOnCreate,
    /// Snapshot before deleting (databases, volumes).
    Snapshot,
}

impl Policy {
    /// The CloudFormation spelling.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Delete => "Delete",
            Policy::Retain => "Retain",
            Policy::RetainExceptOnCreate => "RetainExceptOnCreate",
            Policy::Snapshot => "Snapshot",
        }
    }
}

/// One resource of a template, with its properties already in JSON form.
#[derive(Debug, Clone)]
pub struct ResourceEntry {
    /// The CloudFormation type.
    pub resource_type: &'static str,
    /// The `Properties` object.
    pub properties: Map<String, Json>,
    /// Explicit `DependsOn`.
    pub depends_on: Vec<LogicalId>,
    /// Condition under which the resource exists.
    pub condition: Option<LogicalId>,
    /// `DeletionPolicy`.
    pub deletion_policy: Option<Policy>,
    /// `UpdateReplacePolicy`.
    pub update_replace_policy: Option<Policy>,
    /// `Metadata`: free-form, e.g. `cdk_nag.rules_to_suppress`.
    pub metadata: Map<String, Json>,
    /// The attribute names `Fn::GetAtt` may read.
    pub attributes: &'static [&'static str],
}

impl ResourceEntry {
    fn to_json(&self) -> Json {
        let mut map = Map::new();
        map.insert("Type".into(), self.resource_type.into());
        if let Some(condition) = &self.condition {
            map.insert("Condition".into(), condition.as_str().into());
        }
        if !self.depends_on.is_empty() {
            let ids = self
                .depends_on
                .iter()
                .map(|id| Json::from(id.as_str()))
                .collect();
            map.insert("DependsOn".into(), Json::Array(ids));
        }
        if let Some(policy) = self.deletion_policy {
            map.insert("DeletionPolicy".into(), policy.name().into());
        }
        if let Some(policy) = self.update_replace_policy {
            map.insert("UpdateReplacePolicy".into(), policy.name().into());
        }
        if !self.metadata.is_empty() {
            map.insert("Metadata".into(), Json::Object(self.metadata.clone()));
        }
        if !self.properties.is_empty() {
            map.insert("Properties".into(), Json::Object(self.properties.clone()));
        }
        Json::Object(map)
    }
}

/// A problem noticed while the template was being built; reported by `validate`.
#[derive(Debug, Clone)]
pub(crate) enum BuildProblem {
    /// The id is not a valid logical id.
    BadId(String, String),
    /// The id was used twice in the same namespace.
    Duplicate(String),
    /// Properties could not be converted to JSON.
    Serialize(String, String),
    /// A handle of another template was passed to this one.
    ForeignHandle(String),
}

/// True when one of `entries` (a namespace of the template) is named `id`.
fn holds<T>(entries: &[(LogicalId, T)], id: &str) -> bool {
    entries.iter().any(|(existing, _)| existing.as_str() == id)
}

/// A CloudFormation template under construction.
#[derive(Debug, Clone, Default)]
pub struct Template {
    description: String,
    metadata: Map<String, Json>,
    pub(crate) parameters: Vec<(LogicalId, Parameter)>,
    pub(crate) mappings: Vec<(LogicalId, Json)>,
    pub(crate) conditions: Vec<(LogicalId, Expr)>,
    pub(crate) resources: Vec<(LogicalId, ResourceEntry)>,
    pub(crate) outputs: Vec<(LogicalId, Output)>,
    pub(crate) problems: Vec<BuildProblem>,
}

impl Template {
    /// An empty template with a description.
    pub fn new(description: impl Into<String>) -> Template {
        Template {
            description: description.into(),
            ..Template::default()
        }
    }

    fn checked_id(&mut self, id: &str, taken: bool) -> LogicalId {
        if let Err(err) = LogicalId::new(id) {
            self.problems
                .push(BuildProblem::BadId(id.to_owned(), err.to_string()));
        }
        if taken {
            self.problems.push(BuildProblem::Duplicate(id.to_owned()));
        }
        LogicalId::unchecked(id)
    }

    /// True when `id` is already a parameter or resource (they share the `Ref` namespace).
    fn ref_target_taken(&self, id: &str) -> bool {
        holds(&self.parameters, id) || holds(&self.resources, id)
    }

    /// Adds a resource and returns its typed handle.
    pub fn add<T: Resource>(&mut self, id: &str, resource: T) -> Handle<T> {
        let taken = self.ref_target_taken(id);
        let logical_id = self.checked_id(id, taken);
        let properties = match serde_json::to_value(&resource) {
            Ok(Json::Object(map)) => map,
            Ok(other) => {
                let message = format!("properties serialized to {other}, not an object");
                self.problems
                    .push(BuildProblem::Serialize(id.to_owned(), message));
                Map::new()
            }
            Err(err) => {
                self.problems
                    .push(BuildProblem::Serialize(id.to_owned(), err.to_string()));
                Map::new()
            }
        };
        let entry = ResourceEntry {
            resource_type: T::TYPE,
            properties,
            depends_on: Vec::new(),
            condition: None,
            deletion_policy: None,
            update_replace_policy: None,
            metadata: Map::new(),
            attributes: T::Attr::ALL,
        };
        self.resources.push((logical_id.clone(), entry));
        Handle {
            id: logical_id,
            marker: PhantomData,
        }
    }

    /// Adds a parameter and returns its handle.
    pub fn add_parameter(&mut self, id: &str, parameter: Parameter) -> ParamHandle {
        let taken = self.ref_target_taken(id);
        let logical_id = self.checked_id(id, taken);
        self.parameters.push((logical_id.clone(), parameter));
        ParamHandle { id: logical_id }
    }

    /// Declares a condition and returns its handle.
    pub fn add_condition(&mut self, name: &str, condition: Expr) -> CondHandle {
        let taken = holds(&self.conditions, name);
        let logical_id = self.checked_id(name, taken);
        self.conditions.push((logical_id.clone(), condition));
        CondHandle { name: logical_id }
    }

    /// Declares a mapping (`{top key: {second key: value}}`).
    pub fn add_mapping(&mut self, name: &str, mapping: Json) {
        let taken = holds(&self.mappings, name);
        let logical_id = self.checked_id(name, taken);
        self.mappings.push((logical_id, mapping));
    }

    /// Adds an output.
    pub fn add_output(&mut self, id: &str, output: Output) {
        let taken = holds(&self.outputs, id);
        let logical_id = self.checked_id(id, taken);
        self.outputs.push((logical_id, output));
    }

    /// The template's description.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Sets a template-level `Metadata` entry.
    pub fn set_metadata(&mut self, key: &str, value: Json) {
        self.metadata.insert(key.to_owned(), value);
    }

    /// The resource entry of a logical id.
    pub fn resource(&self, id: &str) -> Option<&ResourceEntry> {
        self.resources
            .iter()
            .find(|(existing, _)| existing.as_str() == id)
            .map(|(_, entry)| entry)
    }

    /// The mutable resource entry of a logical id (e.g. to write suppressions into `Metadata`).
    pub fn resource_mut(&mut self, id: &str) -> Option<&mut ResourceEntry> {
        self.resources
            .iter_mut()
            .find(|(existing, _)| existing.as_str() == id)
            .map(|(_, entry)| entry)
    }

    /// The entry a handle names; a handle of another template is recorded as a problem.
    fn entry_of(&mut self, resource: &dyn HasLogicalId) -> Option<&mut ResourceEntry> {
        let id = resource.logical_id();
        match self
            .resources
            .iter()
            .position(|(existing, _)| existing == id)
        {
            Some(idx) => Some(&mut self.resources[idx].1),
            None => {
                self.problems
                    .push(BuildProblem::ForeignHandle(id.to_string()));
                None
            }
        }
    }

    /// Adds `DependsOn: on` to `resource`.
    pub fn depends_on(&mut self, resource: &dyn HasLogicalId, on: &dyn HasLogicalId) {
        let target = on.logical_id().clone();
        if let Some(entry) = self.entry_of(resource)
            && !entry.depends_on.contains(&target)
        {
            entry.depends_on.push(target);
        }
    }

    /// Makes `resource` exist only when `condition` holds.
    pub fn set_condition(&mut self, resource: &dyn HasLogicalId, condition: &CondHandle) {
        if let Some(entry) = self.entry_of(resource) {
            entry.condition = Some(condition.name.clone());
        }
    }

    /// Sets `DeletionPolicy` and `UpdateReplacePolicy` of `resource`.
    pub fn set_policies(&mut self, resource: &dyn HasLogicalId, deletion: Policy, replace: Policy) {
        if let Some(entry) = self.entry_of(resource) {
            entry.deletion_policy = Some(deletion);
            entry.update_replace_policy = Some(replace);
        }
    }

    /// The resource `Metadata` map of `resource` (e.g. for `cdk_nag.rules_to_suppress`);
    /// `None` (and a validation error) for a handle of another template.
    pub fn metadata_mut(&mut self, resource: &dyn HasLogicalId) -> Option<&mut Map<String, Json>> {
        self.entry_of(resource).map(|entry| &mut entry.metadata)
    }

    /// Resources in insertion order.
    pub fn resources(&self) -> impl Iterator<Item = (&LogicalId, &ResourceEntry)> {
        self.resources.iter().map(|(id, entry)| (id, entry))
    }

    /// Parameters in insertion order.
    pub fn parameters(&self) -> impl Iterator<Item = (&LogicalId, &Parameter)> {
        self.parameters
            .iter()
            .map(|(id, parameter)| (id, parameter))
    }

    /// Outputs in insertion order.
    pub fn outputs(&self) -> impl Iterator<Item = (&LogicalId, &Output)> {
        self.outputs.iter().map(|(id, output)| (id, output))
    }

    /// Checks references, conditions, ids, dependency cycles and secret outputs.
    pub fn validate(&self, stack: &str) -> Result<(), ValidateErrors> {
        validate::validate(self, stack)
    }

    /// The template as JSON.
    pub fn to_json_value(&self) -> Json {
        let mut map = Map::new();
        map.insert("AWSTemplateFormatVersion".into(), "2010-09-09".into());
        map.insert("Description".into(), self.description.clone().into());
        if !self.metadata.is_empty() {
            map.insert("Metadata".into(), Json::Object(self.metadata.clone()));
        }
        let mut section = |name: &str, entries: Vec<(String, Json)>| {
            if !entries.is_empty() {
                map.insert(name.into(), Json::Object(entries.into_iter().collect()));
            }
        };
        section(
            "Parameters",
            self.parameters
                .iter()
                .map(|(id, p)| (id.to_string(), p.to_json()))
                .collect(),
        );
        section(
            "Mappings",
            self.mappings
                .iter()
                .map(|(id, m)| (id.to_string(), m.clone()))
                .collect(),
        );
        section(
            "Conditions",
            self.conditions
                .iter()
                .map(|(id, c)| (id.to_string(), c.to_json()))
                .collect(),
        );
        section(
            "Resources",
            self.resources
                .iter()
                .map(|(id, r)| (id.to_string(), r.to_json()))
                .collect(),
        );
        section(
            "Outputs",
            self.outputs
                .iter()
                .map(|(id, o)| (id.to_string(), o.to_json()))
                .collect(),
        );
        Json::Object(map)
    }

    /// Pretty JSON with a trailing newline.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        let mut text = format!("{:#}", self.to_json_value());
        text.push('\n');
        text.into_bytes()
    }

    /// YAML (long-form intrinsics, `Fn::Sub:` etc.).
    pub fn to_yaml_bytes(&self) -> Result<Vec<u8>, serde_yaml::Error> {
        serde_yaml::to_string(&self.to_json_value()).map(String::into_bytes)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Thing {
        #[serde(rename = "Name")]
        name: String,
    }

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

    fn check(template: &Template, expected: &str) {
        assert_eq!(template.to_json_value().to_string(), expected);
    }

    #[test]
    fn resource_with_ref_and_get_att() {
        let mut t = Template::new("d");
        let a = t.add("A", Thing { name: "a".into() });
        t.add_output(
            "Out",
            Output {
                description: "o".into(),
                value: a.get_att(ThingAttr::Arn),
                export: Some(a.r#ref()),
                condition: None,
            },
        );
        check(
            &t,
            r#"{"AWSTemplateFormatVersion":"2010-09-09","Description":"d","Resources":{"A":{"Type":"Test::Thing","Properties":{"Name":"a"}}},"Outputs":{"Out":{"Description":"o","Value":{"Fn::GetAtt":["A","Arn"]},"Export":{"Name":{"Ref":"A"}}}}}"#,
        );
    }

    #[test]
    fn resource_attributes() {
        let mut t = Template::new("d");
        let cond = t.add_condition("C", Expr::equals("a".into(), "b".into()));
        let a = t.add("A", Thing { name: "a".into() });
        let b = t.add("B", Thing { name: "b".into() });
        t.depends_on(&b, &a);
        t.set_condition(&b, &cond);
        t.set_policies(&b, Policy::Retain, Policy::Snapshot);
        t.metadata_mut(&b).unwrap().insert("k".into(), "v".into());
        check(
            &t,
            r#"{"AWSTemplateFormatVersion":"2010-09-09","Description":"d","Conditions":{"C":{"Fn::Equals":["a","b"]}},"Resources":{"A":{"Type":"Test::Thing","Properties":{"Name":"a"}},"B":{"Type":"Test::Thing","Condition":"C","DependsOn":["A"],"DeletionPolicy":"Retain","UpdateReplacePolicy":"Snapshot","Metadata":{"k":"v"},"Properties":{"Name":"b"}}}}"#,
        );
    }

    #[test]
    fn foreign_handle_is_reported_not_panicking() {
        let mut other = Template::new("o");
        let foreign = other.add("Foreign", Thing { name: "f".into() });
        let mut t = Template::new("d");
        let a = t.add("A", Thing { name: "a".into() });
        t.depends_on(&foreign, &a);
        assert!(t.metadata_mut(&foreign).is_none());
        let errors = t.validate("s").unwrap_err().to_string();
        assert_eq!(
            errors,
            "s: handle of resource `Foreign` belongs to another template\ns: handle of resource `Foreign` belongs to another template"
        );
    }

    #[test]
    fn parameter_fields() {
        let mut t = Template::new("d");
        let mut p = Parameter::string("img");
        p.default = Some("x".into());
        p.allowed_values = vec!["x".into()];
        p.allowed_pattern = Some(".+".into());
        p.constraint_description = Some("c".into());
        p.no_echo = true;
        t.add_parameter("Image", p);
        check(
            &t,
            r#"{"AWSTemplateFormatVersion":"2010-09-09","Description":"d","Parameters":{"Image":{"Type":"String","Description":"img","Default":"x","AllowedValues":["x"],"AllowedPattern":".+","ConstraintDescription":"c","NoEcho":true}}}"#,
        );
    }

    #[test]
    fn yaml_uses_long_form_intrinsics() {
        let mut t = Template::new("d");
        t.add("A", Thing { name: "a".into() });
        t.add_output(
            "O",
            Output {
                description: "o".into(),
                value: Expr::sub("${A}"),
                export: None,
                condition: None,
            },
        );
        let yaml = String::from_utf8(t.to_yaml_bytes().unwrap()).unwrap();
        assert!(yaml.contains("Value:\n      Fn::Sub: ${A}"), "{yaml}");
    }
}
