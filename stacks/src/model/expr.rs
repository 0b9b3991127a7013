//! CloudFormation intrinsic functions and pseudo parameters as a Rust expression tree.
//!
//! An [`Expr`] serializes to exactly the JSON form CloudFormation expects (`{"Ref": ..}`,
//! `{"Fn::GetAtt": [id, attr]}`, ...).
//!
//! Invariant: `Ref`, `Fn::GetAtt`, `Fn::If` and `Condition` name their target with a [`Target`],
//! which only the handles of [`crate::model::template`] can build (outside `model` there is no
//! constructor), so stack code cannot reference something it never added to a template, and a
//! `GetAtt` attribute is always one the resource type declares. The one string form left is
//! `Fn::Sub`'s `${Name}` / `${Name.Attr}`, which `validate` checks against the template.

use serde::{Serialize, Serializer};

/// AWS pseudo parameters (`Ref: AWS::Region`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pseudo {
    /// `AWS::AccountId`.
    AccountId,
    /// `AWS::NotificationARNs`.
    NotificationArns,
    /// `AWS::NoValue`: removes the property it is assigned to.
    NoValue,
    /// `AWS::Partition`.
    Partition,
    /// `AWS::Region`.
    Region,
    /// `AWS::StackId`.
    StackId,
    /// `AWS::StackName`.
    StackName,
    /// `AWS::URLSuffix`.
    UrlSuffix,
}

impl Pseudo {
    /// The name CloudFormation uses, e.g. `AWS::Region`.
    pub fn name(self) -> &'static str {
        match self {
            Pseudo::AccountId => "AWS::AccountId",
            Pseudo::NotificationArns => "AWS::NotificationARNs",
            Pseudo::NoValue => "AWS::NoValue",
            Pseudo::Partition => "AWS::Partition",
            Pseudo::Region => "AWS::Region",
            Pseudo::StackId => "AWS::StackId",
            Pseudo::StackName => "AWS::StackName",
            Pseudo::UrlSuffix => "AWS::URLSuffix",
        }
    }
}

/// The logical id a `Ref`, `Fn::GetAtt`, `Fn::If` or `Condition` names.
///
/// Only the model's handles build one (`Handle::r#ref`, `Handle::get_att`, `ParamHandle::r#ref`,
/// `CondHandle::if_`, `CondHandle::expr`), so a reference always names something added to a
/// template; `validate` still reports a handle used with another template.
///
/// ```compile_fail
/// use stacks::model::{Expr, Target};
/// let _ = Expr::Ref(Target::new("AnyString")); // no public constructor
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target(String);

impl Target {
    /// A target naming `id`; only the model may build one.
    pub(in crate::model) fn new(id: impl Into<String>) -> Target {
        Target(id.into())
    }

    /// The logical id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A CloudFormation value computed at deploy time, or a literal inside such a computation.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal string.
    Str(String),
    /// A literal integer (used by e.g. `Fn::Select` lists and `Fn::Cidr`).
    Int(i64),
    /// A literal list of expressions.
    List(Vec<Expr>),
    /// `Ref` to a parameter or resource (built by their handles).
    Ref(Target),
    /// `Ref` to a pseudo parameter.
    Pseudo(Pseudo),
    /// `Fn::GetAtt` of an attribute the resource's type declares (built by its handle).
    GetAtt(Target, &'static str),
    /// `Fn::Sub` with a template string and optional variables.
    Sub(String, Vec<(String, Expr)>),
    /// `Fn::Join` with a delimiter.
    Join(String, Vec<Expr>),
    /// `Fn::Select` of an index from a list.
    Select(u32, Box<Expr>),
    /// `Fn::GetAZs` of a region (`""` means the stack's region).
    GetAzs(Box<Expr>),
    /// `Fn::If` on a declared condition (built by its handle).
    If(Target, Box<Expr>, Box<Expr>),
    /// `Fn::Equals` (condition function).
    Equals(Box<Expr>, Box<Expr>),
    /// `Fn::Not` (condition function).
    Not(Box<Expr>),
    /// `Fn::And` (condition function).
    And(Vec<Expr>),
    /// `Fn::Or` (condition function).
    Or(Vec<Expr>),
    /// `{"Condition": name}`: a declared condition used inside a condition function.
    Condition(Target),
    /// `Fn::ImportValue` of an export name.
    ImportValue(Box<Expr>),
    /// `Fn::Split` of a string by a delimiter.
    Split(String, Box<Expr>),
    /// `Fn::FindInMap` (map name, top-level key, second-level key).
    FindInMap(String, Box<Expr>, Box<Expr>),
    /// `Fn::Base64` of a string.
    Base64(Box<Expr>),
    /// `Fn::Cidr` (ip block, count, cidr bits).
    Cidr(Box<Expr>, u32, u32),
}

impl Expr {
    /// A literal string.
    pub fn str(s: impl Into<String>) -> Expr {
        Expr::Str(s.into())
    }

    /// `Fn::Sub` without variables.
    pub fn sub(template: impl Into<String>) -> Expr {
        Expr::Sub(template.into(), Vec::new())
    }

    /// `Fn::Sub` with variables.
    pub fn sub_with(template: impl Into<String>, vars: Vec<(&str, Expr)>) -> Expr {
        let vars = vars
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect();
        Expr::Sub(template.into(), vars)
    }

    /// `Fn::Join`.
    pub fn join(delimiter: impl Into<String>, parts: Vec<Expr>) -> Expr {
        Expr::Join(delimiter.into(), parts)
    }

    /// `Fn::Select`.
    pub fn select(index: u32, list: Expr) -> Expr {
        Expr::Select(index, Box::new(list))
    }

    /// `Fn::GetAZs` of the stack's region.
    pub fn get_azs() -> Expr {
        Expr::GetAzs(Box::new(Expr::str("")))
    }

    /// `Fn::ImportValue`.
    pub fn import_value(name: Expr) -> Expr {
        Expr::ImportValue(Box::new(name))
    }

    /// `Fn::Equals`.
    pub fn equals(left: Expr, right: Expr) -> Expr {
        Expr::Equals(Box::new(left), Box::new(right))
    }

    /// `Fn::Not`.
    pub fn negate(inner: Expr) -> Expr {
        Expr::Not(Box::new(inner))
    }

    /// `Fn::Split`.
    pub fn split(delimiter: impl Into<String>, source: Expr) -> Expr {
        Expr::Split(delimiter.into(), Box::new(source))
    }

    /// `Fn::FindInMap`.
    pub fn find_in_map(map: impl Into<String>, top: Expr, second: Expr) -> Expr {
        Expr::FindInMap(map.into(), Box::new(top), Box::new(second))
    }

    /// `Fn::Base64`.
    pub fn base64(inner: Expr) -> Expr {
        Expr::Base64(Box::new(inner))
    }

    /// `Fn::Cidr`.
    pub fn cidr(ip_block: Expr, count: u32, cidr_bits: u32) -> Expr {
        Expr::Cidr(Box::new(ip_block), count, cidr_bits)
    }

    /// `Ref` of a pseudo parameter.
    pub fn pseudo(p: Pseudo) -> Expr {
        Expr::Pseudo(p)
    }
}

impl From<&str> for Expr {
    fn from(s: &str) -> Expr {
        Expr::Str(s.to_owned())
    }
}

impl From<String> for Expr {
    fn from(s: String) -> Expr {
        Expr::Str(s)
    }
}

impl From<Pseudo> for Expr {
    fn from(p: Pseudo) -> Expr {
        Expr::Pseudo(p)
    }
}

/// `{key: value}` as JSON.
fn single(key: &str, value: serde_json::Value) -> serde_json::Value {
    let mut map = serde_json::Map::with_capacity(1);
    map.insert(key.to_owned(), value);
    serde_json::Value::Object(map)
}

fn array(items: Vec<serde_json::Value>) -> serde_json::Value {
    serde_json::Value::Array(items)
}

fn string(s: &str) -> serde_json::Value {
    serde_json::Value::String(s.to_owned())
}

impl Expr {
    /// The exact JSON CloudFormation expects for this expression.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Expr::Str(s) => string(s),
            Expr::Int(n) => serde_json::Value::from(*n),
            Expr::List(items) => array(items.iter().map(Expr::to_json).collect()),
            Expr::Ref(id) => single("Ref", string(id.as_str())),
            Expr::Pseudo(p) => single("Ref", string(p.name())),
            Expr::GetAtt(id, attr) => {
                single("Fn::GetAtt", array(vec![string(id.as_str()), string(attr)]))
            }
            Expr::Sub(template, vars) if vars.is_empty() => single("Fn::Sub", string(template)),
            Expr::Sub(template, vars) => {
                let mut map = serde_json::Map::with_capacity(vars.len());
                for (name, value) in vars {
                    map.insert(name.clone(), value.to_json());
                }
                single(
                    "Fn::Sub",
                    array(vec![string(template), serde_json::Value::Object(map)]),
                )
            }
            Expr::Join(delimiter, parts) => single(
                "Fn::Join",
                array(vec![
                    string(delimiter),
                    array(parts.iter().map(Expr::to_json).collect()),
                ]),
            ),
            Expr::Select(index, list) => single(
                "Fn::Select",
                array(vec![string(&index.to_string()), list.to_json()]),
            ),
            Expr::GetAzs(region) => single("Fn::GetAZs", region.to_json()),
            Expr::If(condition, then, otherwise) => single(
                "Fn::If",
                array(vec![
                    string(condition.as_str()),
                    then.to_json(),
                    otherwise.to_json(),
                ]),
            ),
            Expr::Equals(left, right) => {
                single("Fn::Equals", array(vec![left.to_json(), right.to_json()]))
            }
            Expr::Not(inner) => single("Fn::Not", array(vec![inner.to_json()])),
            Expr::And(items) => single("Fn::And", array(items.iter().map(Expr::to_json).collect())),
            Expr::Or(items) => single("Fn::Or", array(items.iter().map(Expr::to_json).collect())),
            Expr::Condition(name) => single("Condition", string(name.as_str())),
            Expr::ImportValue(name) => single("Fn::ImportValue", name.to_json()),
            Expr::Split(delimiter, source) => single(
                "Fn::Split",
                array(vec![string(delimiter), source.to_json()]),
            ),
            Expr::FindInMap(map, top, second) => single(
                "Fn::FindInMap",
                array(vec![string(map), top.to_json(), second.to_json()]),
            ),
            Expr::Base64(inner) => single("Fn::Base64", inner.to_json()),
            Expr::Cidr(block, count, bits) => single(
                "Fn::Cidr",
                array(vec![
                    block.to_json(),
                    string(&count.to_string()),
                    string(&bits.to_string()),
                ]),
            ),
        }
    }
}

impl Serialize for Expr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn check(expr: Expr, expected: &str) {
        let actual = serde_json::to_string(&expr).unwrap();
        assert_eq!(actual, expected);
    }

    #[test]
    fn literal_string() {
        check(Expr::str("a"), r#""a""#)
    }
    #[test]
    fn literal_list() {
        check(Expr::List(vec!["a".into(), Expr::Int(2)]), r#"["a",2]"#)
    }
    #[test]
    fn reference() {
        check(Expr::Ref(Target::new("Vpc")), r#"{"Ref":"Vpc"}"#)
    }
    #[test]
    fn pseudo_region() {
        check(Expr::pseudo(Pseudo::Region), r#"{"Ref":"AWS::Region"}"#)
    }
    #[test]
    fn pseudo_account() {
        check(Pseudo::AccountId.into(), r#"{"Ref":"AWS::AccountId"}"#)
    }
    #[test]
    fn pseudo_partition() {
        check(Pseudo::Partition.into(), r#"{"Ref":"AWS::Partition"}"#)
    }
    #[test]
    fn pseudo_stack_name() {
        check(Pseudo::StackName.into(), r#"{"Ref":"AWS::StackName"}"#)
    }
    #[test]
    fn pseudo_stack_id() {
        check(Pseudo::StackId.into(), r#"{"Ref":"AWS::StackId"}"#)
    }
    #[test]
    fn pseudo_url_suffix() {
        check(Pseudo::UrlSuffix.into(), r#"{"Ref":"AWS::URLSuffix"}"#)
    }
    #[test]
    fn pseudo_no_value() {
        check(Pseudo::NoValue.into(), r#"{"Ref":"AWS::NoValue"}"#)
    }
    #[test]
    fn pseudo_notification_arns() {
        check(
            Pseudo::NotificationArns.into(),
            r#"{"Ref":"AWS::NotificationARNs"}"#,
        )
    }
    #[test]
    fn get_att() {
        check(
            Expr::GetAtt(Target::new("Vpc"), "CidrBlock"),
            r#"{"Fn::GetAtt":["Vpc","CidrBlock"]}"#,
        )
    }
    #[test]
    fn sub_plain() {
        check(
            Expr::sub("${AWS::Region}-x"),
            r#"{"Fn::Sub":"${AWS::Region}-x"}"#,
        )
    }
    #[test]
    fn sub_with_vars() {
        check(
            Expr::sub_with(
                "${A}/${B}",
                vec![("A", Expr::Ref(Target::new("X"))), ("B", "b".into())],
            ),
            r#"{"Fn::Sub":["${A}/${B}",{"A":{"Ref":"X"},"B":"b"}]}"#,
        )
    }
    #[test]
    fn join() {
        check(
            Expr::join(",", vec!["a".into(), "b".into()]),
            r#"{"Fn::Join":[",",["a","b"]]}"#,
        )
    }
    #[test]
    fn select() {
        check(
            Expr::select(1, Expr::get_azs()),
            r#"{"Fn::Select":["1",{"Fn::GetAZs":""}]}"#,
        )
    }
    #[test]
    fn get_azs_region() {
        check(
            Expr::GetAzs(Box::new(Pseudo::Region.into())),
            r#"{"Fn::GetAZs":{"Ref":"AWS::Region"}}"#,
        )
    }
    #[test]
    fn if_() {
        check(
            Expr::If(
                Target::new("C"),
                Box::new("a".into()),
                Box::new(Pseudo::NoValue.into()),
            ),
            r#"{"Fn::If":["C","a",{"Ref":"AWS::NoValue"}]}"#,
        )
    }
    #[test]
    fn equals() {
        check(
            Expr::equals("a".into(), "b".into()),
            r#"{"Fn::Equals":["a","b"]}"#,
        )
    }
    #[test]
    fn not() {
        check(
            Expr::negate(Expr::Condition(Target::new("C"))),
            r#"{"Fn::Not":[{"Condition":"C"}]}"#,
        )
    }
    #[test]
    fn and() {
        check(
            Expr::And(vec![
                Expr::Condition(Target::new("A")),
                Expr::Condition(Target::new("B")),
            ]),
            r#"{"Fn::And":[{"Condition":"A"},{"Condition":"B"}]}"#,
        )
    }
    #[test]
    fn or() {
        check(
            Expr::Or(vec![Expr::Condition(Target::new("A"))]),
            r#"{"Fn::Or":[{"Condition":"A"}]}"#,
        )
    }
    #[test]
    fn import_value() {
        check(
            Expr::import_value("net-VpcId".into()),
            r#"{"Fn::ImportValue":"net-VpcId"}"#,
        )
    }
    #[test]
    fn split() {
        check(
            Expr::split(",", "a,b".into()),
            r#"{"Fn::Split":[",","a,b"]}"#,
        )
    }
    #[test]
    fn find_in_map() {
        check(
            Expr::find_in_map("M", Pseudo::Region.into(), "k".into()),
            r#"{"Fn::FindInMap":["M",{"Ref":"AWS::Region"},"k"]}"#,
        )
    }
    #[test]
    fn base64() {
        check(Expr::base64("x".into()), r#"{"Fn::Base64":"x"}"#)
    }
    #[test]
    fn cidr() {
        check(
            Expr::cidr("10.0.0.0/16".into(), 4, 8),
            r#"{"Fn::Cidr":["10.0.0.0/16","4","8"]}"#,
        )
    }
}
