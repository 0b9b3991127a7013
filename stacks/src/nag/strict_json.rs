//! Strict JSON for templates: serde_json's grammar (no trailing commas, no comments), plus the
//! two things `serde_json::Value` lets through: a duplicate key (the last one silently wins, so
//! a checked resource is not the deployed one) and unbounded nesting.
//!
//! Invariant: parsing is one pass, linear in the text; the first duplicate key or the first
//! collection deeper than the limit stops it with the position serde_json reports there.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Why strict parsing failed.
#[derive(Debug)]
pub enum StrictError {
    /// Not JSON at all (serde_json's own error, with its position).
    Syntax(serde_json::Error),
    /// A key appears twice in one object.
    DuplicateKey {
        /// The repeated key.
        key: String,
        /// 1-based line of the end of the repeated key.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// Objects and arrays nest deeper than the limit.
    TooDeep {
        /// 1-based line of the collection that opened too deep.
        line: usize,
        /// 1-based column.
        column: usize,
    },
}

/// What the visitor refused; the error serde_json returns carries only its position.
#[derive(Debug, Clone)]
enum Refusal {
    DuplicateKey(String),
    TooDeep,
}

/// Parses `text` as one JSON value whose collections nest at most `max_depth` levels (the
/// outermost object is level 1).
pub fn parse(text: &str, max_depth: usize) -> Result<Value, StrictError> {
    let refusal = RefCell::new(None);
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let seed = Node {
        depth: 1,
        max_depth,
        refusal: &refusal,
    };
    let res = seed
        .deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value));
    res.map_err(|error| {
        let (line, column) = (error.line().max(1), error.column().max(1));
        match refusal.into_inner() {
            Some(Refusal::DuplicateKey(key)) => StrictError::DuplicateKey { key, line, column },
            Some(Refusal::TooDeep) => StrictError::TooDeep { line, column },
            None => StrictError::Syntax(error),
        }
    })
}

/// Builds one value at `depth`.
#[derive(Clone, Copy)]
struct Node<'r> {
    depth: usize,
    max_depth: usize,
    refusal: &'r RefCell<Option<Refusal>>,
}

impl Node<'_> {
    fn child(self) -> Self {
        Node {
            depth: self.depth + 1,
            ..self
        }
    }

    fn refuse<E: de::Error>(self, refusal: Refusal) -> E {
        let message = match &refusal {
            Refusal::DuplicateKey(key) => format!("duplicate key `{key}`"),
            Refusal::TooDeep => format!("nesting deeper than {} levels", self.max_depth),
        };
        *self.refusal.borrow_mut() = Some(refusal);
        E::custom(message)
    }

    fn enter<E: de::Error>(self) -> Result<(), E> {
        if self.depth > self.max_depth {
            return Err(self.refuse(Refusal::TooDeep));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.enter()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self.child())? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.enter()?;
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(self.refuse(Refusal::DuplicateKey(key)));
            }
            let value = map.next_value_seed(self.child())?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> String {
        match parse(text, 3) {
            Ok(value) => value.to_string(),
            Err(StrictError::Syntax(error)) => format!("syntax: {error}"),
            Err(StrictError::DuplicateKey { key, line, column }) => {
                format!("{line}:{column}: duplicate `{key}`")
            }
            Err(StrictError::TooDeep { line, column }) => format!("{line}:{column}: too deep"),
        }
    }

    #[test]
    fn values_are_what_serde_json_reads() {
        assert_eq!(
            check(r#"{"a": [1, -2, 1.5, "x", true, null], "b": {}}"#),
            r#"{"a":[1,-2,1.5,"x",true,null],"b":{}}"#
        );
        assert_eq!(check("18446744073709551615"), "18446744073709551615");
        assert_eq!(check(r#""\u00e9\n""#), r#""é\n""#);
    }

    #[test]
    fn trailing_commas_and_comments_are_syntax_errors() {
        assert_eq!(
            check("{\"a\": 1,}"),
            "syntax: trailing comma at line 1 column 9"
        );
        assert_eq!(check("[1,]"), "syntax: trailing comma at line 1 column 4");
        assert!(check("{\"a\": 1} // x").starts_with("syntax: trailing characters"));
        assert!(check("{\"a\": 1} {}").starts_with("syntax: trailing characters"));
    }

    #[test]
    fn duplicate_keys_are_refused_where_they_are() {
        assert_eq!(
            check("{\"a\": 1,\n \"b\": {\"c\": 1, \"c\": 2}}"),
            "2:18: duplicate `c`"
        );
        assert_eq!(
            check(r#"{"a": {"c": 1}, "b": {"c": 2}}"#),
            r#"{"a":{"c":1},"b":{"c":2}}"#
        );
    }

    #[test]
    fn nesting_is_bounded() {
        assert_eq!(check("[[[1]]]"), "[[[1]]]");
        assert_eq!(check("[[[[1]]]]"), "1:4: too deep");
        assert_eq!(check("{\"a\": {\"b\": [{}]}}"), "1:15: too deep");
        let deep = format!("{}{}", "[".repeat(1_000_000), "]".repeat(1_000_000));
        assert_eq!(check(&deep), "1:4: too deep");
    }

    proptest::proptest! {
        /// Whatever serde_json reads without duplicates or depth, this reads the same.
        #[test]
        fn agrees_with_serde_json(text in "(\\{|\\}|\\[|\\]|\"a\"|\"b\"|: |, |1|-2\\.5e3|null|true|\"\\\\u00e9\"| |\n){0,40}") {
            let ours = parse(&text, 128);
            let theirs = serde_json::from_str::<Value>(&text);
            match (ours, theirs) {
                (Ok(ours), Ok(theirs)) => proptest::prop_assert_eq!(ours, theirs),
                (Err(StrictError::Syntax(_)), Err(_)) => {}
                (Err(StrictError::DuplicateKey { .. }), Ok(_)) => {}
                (ours, theirs) => proptest::prop_assert!(false, "{text:?}: {ours:?} vs {theirs:?}"),
            }
        }
    }
}
