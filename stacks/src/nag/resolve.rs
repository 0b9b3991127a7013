//! Resolving intrinsic functions the way the rules need them.
//!
//! A value is expanded into its possible *variants*: `Fn::If` yields both branches, a `Ref` to a
//! parameter with a `Default` yields the default, `Ref: AWS::NoValue` yields "absent".
//! Rules then fail when any variant fails, so a conditional never hides a violation.
//! Anything else (a `Ref` to a resource or to a parameter without default, `Fn::GetAtt`,
//! `Fn::Sub`...) stays as is; where a rule needs a literal there, [`Resource::scalars`] returns
//! [`Unresolved`], which the pack reports as a finding of that rule.
//! Invariant: expansion is bounded (depth and count), so hostile input cannot blow up.

use serde_json::{Map, Value};

use super::parse::{ByValue, ParsedTemplate};

/// At most this many variants are produced for one value; beyond, the value stays unexpanded.
const MAX_VARIANTS: usize = 64;
/// At most this deep `Fn::If`/`Ref` chains are followed.
const MAX_DEPTH: usize = 16;

/// A value a rule needed as a literal but which is an intrinsic it cannot evaluate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{path}` {detail}")]
pub struct Unresolved {
    /// Property path, e.g. `SecurityGroupIngress[0].CidrIp`.
    pub path: String,
    /// What is wrong, e.g. `is not a literal value: {"Ref":"P"}`.
    pub detail: String,
}

impl Unresolved {
    /// An unresolvable value at `path` with a free-form explanation.
    pub fn new(path: &str, detail: String) -> Unresolved {
        Unresolved {
            path: path.to_owned(),
            detail,
        }
    }
}

/// A resolved literal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar<'a> {
    /// A string.
    Str(&'a str),
    /// A number.
    Num(f64),
    /// A boolean.
    Bool(bool),
}

impl<'a> Scalar<'a> {
    /// The boolean this literal means to CloudFormation (`true`, `"true"`, `"True"`).
    pub fn as_bool(self) -> Option<bool> {
        match self {
            Scalar::Bool(flag) => Some(flag),
            Scalar::Str(text) if text.eq_ignore_ascii_case("true") => Some(true),
            Scalar::Str(text) if text.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
    }

    /// The string form (numbers and booleans printed).
    pub fn text(self) -> String {
        match self {
            Scalar::Str(text) => text.to_owned(),
            Scalar::Num(number) => number.to_string(),
            Scalar::Bool(flag) => flag.to_string(),
        }
    }

    /// The number this literal means (numbers, or strings holding a number).
    pub fn as_f64(self) -> Option<f64> {
        match self {
            Scalar::Num(number) => Some(number),
            Scalar::Str(text) => text.trim().parse().ok(),
            Scalar::Bool(_) => None,
        }
    }
}

/// A resource as a rule sees it: its logical id, type, properties and template.
#[derive(Debug, Clone, Copy)]
pub struct Resource<'a> {
    /// The template it lives in.
    pub template: &'a ParsedTemplate,
    /// Logical id.
    pub logical_id: &'a str,
    /// CloudFormation type (`AWS::S3::Bucket`).
    pub resource_type: &'a str,
    /// The resource's whole body (`Type`, `Properties`, `Metadata`...).
    pub body: &'a Map<String, Value>,
}

impl<'a> Resource<'a> {
    /// Views one entry of the template's `Resources`.
    pub fn new(
        template: &'a ParsedTemplate,
        logical_id: &'a str,
        body: &'a Map<String, Value>,
    ) -> Resource<'a> {
        let resource_type = body.get("Type").and_then(Value::as_str).unwrap_or("");
        Resource {
            template,
            logical_id,
            resource_type,
            body,
        }
    }

    /// A top-level property, unexpanded.
    pub fn prop(&self, name: &str) -> Option<&'a Value> {
        self.body.get("Properties")?.get(name)
    }

    /// All variants of a value (see the module docs); `None` means absent.
    pub fn variants(&self, value: Option<&'a Value>) -> Vec<Option<&'a Value>> {
        let mut out = Vec::new();
        self.expand(value, 0, &mut out);
        out
    }

    /// True when some variant of a value is absent (see [`Resource::variants`]).
    pub fn may_be_absent(&self, value: Option<&'a Value>) -> bool {
        self.variants(value).iter().any(Option::is_none)
    }

    fn expand(&self, value: Option<&'a Value>, depth: usize, out: &mut Vec<Option<&'a Value>>) {
        let Some(value) = value else {
            out.push(None);
            return;
        };
        if depth >= MAX_DEPTH || out.len() >= MAX_VARIANTS {
            out.push(Some(value));
            return;
        }
        if let Some(object) = value.as_object().filter(|object| object.len() == 1) {
            if let Some(Value::Array(branches)) = object.get("Fn::If")
                && branches.len() == 3
            {
                self.expand(branches.get(1), depth + 1, out);
                self.expand(branches.get(2), depth + 1, out);
                return;
            }
            if let Some(Value::String(target)) = object.get("Ref") {
                if target == "AWS::NoValue" {
                    out.push(None);
                    return;
                }
                if let Some(default) = self.parameter_default(target) {
                    self.expand(Some(default), depth + 1, out);
                    return;
                }
            }
        }
        out.push(Some(value));
    }

    fn parameter_default(&self, name: &str) -> Option<&'a Value> {
        self.template
            .root()
            .get("Parameters")?
            .get(name)?
            .get("Default")
    }

    /// All literal variants of a value a rule needs as a literal; `None` means absent
    /// (or JSON `null`). A variant that is still an intrinsic (or an object/list) is an error.
    pub fn scalars(
        &self,
        value: Option<&'a Value>,
        path: &str,
    ) -> Result<Vec<Option<Scalar<'a>>>, Unresolved> {
        self.variants(value)
            .into_iter()
            .map(|variant| match variant {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(text)) => Ok(Some(Scalar::Str(text))),
                Some(Value::Bool(flag)) => Ok(Some(Scalar::Bool(*flag))),
                Some(Value::Number(number)) => Ok(number.as_f64().map(Scalar::Num)),
                Some(other) => Err(unresolved(path, other)),
            })
            .collect()
    }

    /// [`Resource::scalars`] of a top-level property, reported at the property's name.
    pub fn prop_scalars(&self, name: &str) -> Result<Vec<Option<Scalar<'a>>>, Unresolved> {
        self.scalars(self.prop(name), name)
    }

    /// The variants of a value that should be a list, each as its items; an absent variant
    /// is `None`. A variant that is an unresolvable intrinsic is an error.
    pub fn lists(
        &self,
        value: Option<&'a Value>,
        path: &str,
    ) -> Result<Vec<Option<&'a Vec<Value>>>, Unresolved> {
        self.variants(value)
            .into_iter()
            .map(|variant| match variant {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Array(items)) => Ok(Some(items)),
                Some(other) => Err(unresolved(path, other)),
            })
            .collect()
    }

    /// The variants of a value that should be a mapping (property type), each as a map.
    pub fn objects(
        &self,
        value: Option<&'a Value>,
        path: &str,
    ) -> Result<Vec<Option<&'a Map<String, Value>>>, Unresolved> {
        self.variants(value)
            .into_iter()
            .map(|variant| match variant {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Object(object)) if !is_intrinsic(object) => Ok(Some(object)),
                Some(other) => Err(unresolved(path, other)),
            })
            .collect()
    }

    /// The resources of `index`'s type whose indexed property flattens like `value`, in
    /// template order; the rule still compares the values it cares about.
    pub fn others_with_value(
        &self,
        index: ByValue,
        value: &Value,
    ) -> impl Iterator<Item = Resource<'a>> + use<'a> {
        let template = self.template;
        template
            .ids_with_value(index, value)
            .iter()
            .filter_map(move |logical_id| template.resource(logical_id))
            .map(move |(logical_id, body)| Resource::new(template, logical_id, body))
    }

    /// The resources of one of the given types whose properties reference this resource.
    pub fn referrers(&self, types: &'a [&'a str]) -> impl Iterator<Item = Resource<'a>> + use<'a> {
        let template = self.template;
        let logical_id: &'a str = self.logical_id;
        template
            .referrers_of(logical_id)
            .iter()
            .filter_map(move |logical_id| template.resource(logical_id))
            .map(move |(logical_id, body)| Resource::new(template, logical_id, body))
            .filter(move |resource| types.contains(&resource.resource_type))
    }

    /// Another resource of the template by logical id.
    pub fn lookup(&self, logical_id: &str) -> Option<Resource<'a>> {
        let (logical_id, body) = self.template.resource(logical_id)?;
        Some(Resource::new(self.template, logical_id, body))
    }
}

/// True when the mapping is an intrinsic function call (`Ref`, `Fn::*`, `Condition`).
pub fn is_intrinsic(object: &Map<String, Value>) -> bool {
    object.len() == 1
        && object
            .keys()
            .all(|key| key == "Ref" || key == "Condition" || key.starts_with("Fn::"))
}

fn unresolved(path: &str, value: &Value) -> Unresolved {
    let mut text = value.to_string();
    if text.len() > 120 {
        let cut = (0..=117)
            .rev()
            .find(|idx| text.is_char_boundary(*idx))
            .unwrap_or(0);
        text.truncate(cut);
        text.push_str("...");
    }
    Unresolved {
        path: path.to_owned(),
        detail: format!("is not a literal value: {text}"),
    }
}

/// The logical id a value points at (`Ref: X` → `X`, `Fn::GetAtt: [X, Y]` → `X`), as cdk-nag's
/// `resolveResourceFromIntrinsic` does; `None` for anything else.
pub fn referenced_id(value: &Value) -> Option<&str> {
    let object = value.as_object().filter(|object| object.len() == 1)?;
    if let Some(Value::String(target)) = object.get("Ref") {
        return Some(target);
    }
    match object.get("Fn::GetAtt")? {
        Value::Array(parts) => parts.first()?.as_str(),
        Value::String(dotted) => dotted.split('.').next(),
        _ => None,
    }
}

/// Flattens a value into one string for granular findings, as cdk-nag does: `Ref: X` → `<X>`,
/// `Fn::GetAtt: [X, Arn]` → `<X.Arn>`, `Fn::Join` joins, `Fn::Sub` turns `${X}` into `<X>`.
pub fn flatten(value: &Value) -> String {
    flatten_depth(value, 0)
}

fn flatten_depth(value: &Value, depth: usize) -> String {
    if depth > MAX_DEPTH {
        return value.to_string();
    }
    if let Value::String(text) = value {
        return text.replace("${", "<").replace('}', ">");
    }
    if let Some(object) = value.as_object().filter(|object| object.len() == 1) {
        if let Some(Value::Array(parts)) = object.get("Fn::Join")
            && let [Value::String(delimiter), Value::Array(items)] = parts.as_slice()
        {
            return items
                .iter()
                .map(|item| flatten_depth(item, depth + 1))
                .collect::<Vec<_>>()
                .join(delimiter);
        }
        if let Some(inner) = object.get("Fn::Sub") {
            // The list form's first element is the string; its variables stay as placeholders.
            let inner = match inner {
                Value::Array(parts) => parts.first().unwrap_or(inner),
                other => other,
            };
            return flatten_depth(inner, depth + 1);
        }
        if let Some(Value::Array(parts)) = object.get("Fn::GetAtt")
            && let [resource, attribute] = parts.as_slice()
        {
            return format!(
                "<{}.{}>",
                flatten_depth(resource, depth + 1),
                flatten_depth(attribute, depth + 1)
            );
        }
        if let Some(inner) = object.get("Fn::ImportValue") {
            return flatten_depth(inner, depth + 1);
        }
        if let Some(inner) = object.get("Ref") {
            return format!("<{}>", flatten_depth(inner, depth + 1));
        }
    }
    value.to_string()
}

/// Treats a string-or-list value as a list of values (IAM `Action`, `Resource`...).
pub fn one_or_many(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nag::parse::parse_template;

    const TEMPLATE: &str = "
Parameters:
  WithDefault: {Type: String, Default: '0.0.0.0/0'}
  NoDefault: {Type: String}
Resources:
  R:
    Type: X
    Properties:
      Lit: 'a'
      Param: !Ref WithDefault
      Bare: !Ref NoDefault
      Cond: !If [C, true, !Ref AWS::NoValue]
      Nested: !If [C, !If [D, 1, 2], !Ref WithDefault]
      Att: !GetAtt Other.Arn
      Obj: {K: v}
";

    fn check(property: &str) -> String {
        let parsed = parse_template("t.yaml", TEMPLATE).expect("valid");
        let (id, body) = parsed.resources().next().expect("one resource");
        let resource = Resource::new(&parsed, id, body);
        match resource.prop_scalars(property) {
            Ok(values) => values
                .iter()
                .map(|value| value.map_or("absent".to_owned(), Scalar::text))
                .collect::<Vec<_>>()
                .join("|"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn scalars_expand_intrinsics() {
        assert_eq!(check("Lit"), "a");
        assert_eq!(check("Missing"), "absent");
        assert_eq!(check("Param"), "0.0.0.0/0");
        assert_eq!(
            check("Bare"),
            r#"`Bare` is not a literal value: {"Ref":"NoDefault"}"#
        );
        assert_eq!(check("Cond"), "true|absent");
        assert_eq!(check("Nested"), "1|2|0.0.0.0/0");
        assert_eq!(
            check("Att"),
            r#"`Att` is not a literal value: {"Fn::GetAtt":["Other","Arn"]}"#
        );
        assert_eq!(check("Obj"), r#"`Obj` is not a literal value: {"K":"v"}"#);
    }

    #[test]
    fn may_be_absent_sees_every_variant() {
        let parsed = parse_template("t.yaml", TEMPLATE).expect("valid");
        let (id, body) = parsed.resources().next().expect("one resource");
        let resource = Resource::new(&parsed, id, body);
        let absent = |property| resource.may_be_absent(resource.prop(property));
        assert_eq!(
            ["Lit", "Missing", "Param", "Cond", "Nested"].map(absent),
            [false, true, false, true, false]
        );
    }

    fn flat(json: &str) -> String {
        flatten(&serde_json::from_str(json).expect("valid json"))
    }

    #[test]
    fn flatten_matches_cdk_nag() {
        assert_eq!(flat(r#""arn:aws:s3:::b/*""#), "arn:aws:s3:::b/*");
        assert_eq!(flat(r#"{"Ref": "B"}"#), "<B>");
        assert_eq!(flat(r#"{"Fn::GetAtt": ["B", "Arn"]}"#), "<B.Arn>");
        assert_eq!(
            flat(r#"{"Fn::Join": ["", [{"Fn::GetAtt": ["B", "Arn"]}, "/*"]]}"#),
            "<B.Arn>/*"
        );
        assert_eq!(
            flat(r#"{"Fn::Sub": "arn:${AWS::Partition}:s3:::x/*"}"#),
            "arn:<AWS::Partition>:s3:::x/*"
        );
        assert_eq!(flat(r#"{"Fn::ImportValue": "Shared"}"#), "Shared");
        assert_eq!(
            flat(r#"{"Fn::Select": [0, ["a"]]}"#),
            r#"{"Fn::Select":[0,["a"]]}"#
        );
    }

    #[test]
    fn referenced_ids() {
        let id = |json: &str| {
            referenced_id(&serde_json::from_str(json).expect("valid json")).map(str::to_owned)
        };
        assert_eq!(id(r#"{"Ref": "Vpc"}"#).as_deref(), Some("Vpc"));
        assert_eq!(
            id(r#"{"Fn::GetAtt": ["Vpc", "VpcId"]}"#).as_deref(),
            Some("Vpc")
        );
        assert_eq!(id(r#""vpc-123""#), None);
    }
}
