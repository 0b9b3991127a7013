//! `Value<T>`: a property value that is either a literal of its CloudFormation type or an
//! intrinsic expression ([`Expr`]).
//!
//! Serializes untagged: a literal as itself, an expression as its intrinsic object.

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::model::expr::{Expr, Pseudo};
use crate::model::template::CondHandle;

/// A literal `T` or an intrinsic expression resolved by CloudFormation at deploy time.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<T> {
    /// A literal known at synth time.
    Lit(T),
    /// An intrinsic function or reference.
    Expr(Expr),
    /// `Fn::If` choosing between two typed values (either may be `AWS::NoValue`).
    If(String, Box<Value<T>>, Box<Value<T>>),
}

impl<T> Value<T> {
    /// `Fn::If` on a declared condition, typed on both branches.
    pub fn if_(
        condition: &CondHandle,
        then: impl Into<Value<T>>,
        otherwise: impl Into<Value<T>>,
    ) -> Value<T> {
        Value::If(
            condition.name().as_str().to_owned(),
            Box::new(then.into()),
            Box::new(otherwise.into()),
        )
    }

    /// `{"Ref": "AWS::NoValue"}`: removes the property where CloudFormation evaluates it.
    pub fn no_value() -> Value<T> {
        Value::Expr(Expr::Pseudo(Pseudo::NoValue))
    }
}

impl<T: Serialize> Serialize for Value<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Lit(literal) => literal.serialize(serializer),
            Value::Expr(expr) => expr.serialize(serializer),
            Value::If(condition, then, otherwise) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("Fn::If", &(condition, then, otherwise))?;
                map.end()
            }
        }
    }
}

impl<T> From<Expr> for Value<T> {
    fn from(expr: Expr) -> Value<T> {
        Value::Expr(expr)
    }
}

impl<T> From<Pseudo> for Value<T> {
    fn from(pseudo: Pseudo) -> Value<T> {
        Value::Expr(Expr::Pseudo(pseudo))
    }
}

impl From<&str> for Value<String> {
    fn from(s: &str) -> Value<String> {
        Value::Lit(s.to_owned())
    }
}

impl From<String> for Value<String> {
    fn from(s: String) -> Value<String> {
        Value::Lit(s)
    }
}

impl From<&String> for Value<String> {
    fn from(s: &String) -> Value<String> {
        Value::Lit(s.clone())
    }
}

impl From<bool> for Value<bool> {
    fn from(b: bool) -> Value<bool> {
        Value::Lit(b)
    }
}

impl From<i64> for Value<i64> {
    fn from(n: i64) -> Value<i64> {
        Value::Lit(n)
    }
}

/// Shorthand for a literal string value.
pub fn s(text: impl Into<String>) -> Value<String> {
    Value::Lit(text.into())
}

/// Shorthand for a list of literal string values.
pub fn strs(items: &[&str]) -> Vec<Value<String>> {
    items
        .iter()
        .map(|item| Value::Lit((*item).to_owned()))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn check<T: Serialize>(value: Value<T>, expected: &str) {
        assert_eq!(serde_json::to_string(&value).unwrap(), expected);
    }

    #[test]
    fn literal_string() {
        check(Value::from("x"), r#""x""#)
    }
    #[test]
    fn literal_bool() {
        check(Value::from(true), "true")
    }
    #[test]
    fn literal_int() {
        check(Value::<i64>::from(80), "80")
    }
    #[test]
    fn conditional() {
        let mut t = crate::model::Template::new("d");
        let c = t.add_condition("C", Expr::equals("a".into(), "b".into()));
        check(
            Value::<i64>::if_(&c, 1, Value::no_value()),
            r#"{"Fn::If":["C",1,{"Ref":"AWS::NoValue"}]}"#,
        )
    }
    #[test]
    fn expression() {
        check::<String>(Value::from(Pseudo::Region), r#"{"Ref":"AWS::Region"}"#)
    }
}
