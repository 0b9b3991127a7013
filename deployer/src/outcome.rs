//! How a command ended. Commands return an [`Outcome`] (or an error) and never pick exit codes
//! themselves; `main` is the one place that maps them: 0 done, 1 a failed check or any other
//! error, 2 usage errors (clap's, and [`UsageError`]) and unusable inputs.

use std::fmt;

/// A command that ran to its end.
#[derive(Debug)]
pub enum Outcome {
    /// Everything asked for was done (exit 0).
    Done,
    /// It ran, and what it checked failed: unsuppressed nag errors, changes under
    /// `diff --fail` (exit 1).
    CheckFailed,
    /// Some inputs could not be used; the others were handled and reported first. `main`
    /// prints each error (exit 2).
    BadInput(Vec<anyhow::Error>),
}

/// An error in how the command was invoked: an invalid setting, config file, `--stack` or rule
/// id. Exit code 2, like clap's own usage errors.
#[derive(Debug)]
pub struct UsageError(anyhow::Error);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The whole chain of the wrapped error; `source` stays empty so it is not repeated.
        write!(f, "{:#}", self.0)
    }
}

impl std::error::Error for UsageError {}

/// Marks `err` as a usage error.
pub fn usage(err: impl Into<anyhow::Error>) -> anyhow::Error {
    anyhow::Error::new(UsageError(err.into()))
}

/// True when `err` (or an error it wraps) is a usage error.
pub fn is_usage(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| cause.is::<UsageError>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_survives_context_and_prints_once() {
        let err = usage(anyhow::anyhow!("inner").context("outer")).context("top");
        assert!(is_usage(&err));
        assert_eq!(format!("{err:#}"), "top: outer: inner");
        assert!(!is_usage(&anyhow::anyhow!("plain")));
    }
}
