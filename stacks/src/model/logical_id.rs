//! `LogicalId`: a CloudFormation logical id (ASCII alphanumeric, 1 to 255 characters).
//!
//! Every id that enters a [`crate::model::Template`] goes through [`LogicalId::new`], so an
//! invalid id is reported by `validate` instead of being rejected by CloudFormation at deploy.

use std::fmt;

use serde::Serialize;

/// Why a string is not a valid logical id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogicalIdError {
    /// The id is empty.
    #[error("logical id is empty")]
    Empty,
    /// The id is longer than 255 characters.
    #[error("logical id `{0}` is longer than 255 characters")]
    TooLong(String),
    /// The id contains a character that is not ASCII alphanumeric.
    #[error("logical id `{id}` contains `{ch}`; only A-Z, a-z and 0-9 are allowed")]
    BadChar {
        /// The offending id.
        id: String,
        /// The first character that is not allowed.
        ch: char,
    },
}

/// A validated logical id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct LogicalId(String);

impl LogicalId {
    /// Validates `id`.
    pub fn new(id: &str) -> Result<LogicalId, LogicalIdError> {
        if id.is_empty() {
            return Err(LogicalIdError::Empty);
        }
        if id.len() > 255 {
            return Err(LogicalIdError::TooLong(id.to_owned()));
        }
        if let Some(ch) = id.chars().find(|ch| !ch.is_ascii_alphanumeric()) {
            return Err(LogicalIdError::BadChar {
                id: id.to_owned(),
                ch,
            });
        }
        Ok(LogicalId(id.to_owned()))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Builds an id without validation; callers record the validation error separately.
    pub(crate) fn unchecked(id: &str) -> LogicalId {
        LogicalId(id.to_owned())
    }
}

impl fmt::Display for LogicalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for LogicalId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<(), LogicalIdError>) {
        assert_eq!(LogicalId::new(input).map(|_| ()), expected);
    }

    #[test]
    fn plain() {
        check("Vpc", Ok(()))
    }
    #[test]
    fn digits() {
        check("Subnet1", Ok(()))
    }
    #[test]
    fn empty() {
        check("", Err(LogicalIdError::Empty))
    }
    #[test]
    fn dash() {
        check(
            "a-b",
            Err(LogicalIdError::BadChar {
                id: "a-b".into(),
                ch: '-',
            }),
        )
    }
    #[test]
    fn too_long() {
        check(
            &"a".repeat(256),
            Err(LogicalIdError::TooLong("a".repeat(256))),
        )
    }

    proptest::proptest! {
        #[test]
        fn never_panics(input in ".*") {
            let _ = LogicalId::new(&input);
        }
    }
}
