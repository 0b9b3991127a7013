//! A cdk-nag-style security rule pack for any CloudFormation template.
//!
//! The flow is [`parse::parse_template`] → [`pack::check_template`] → [`report`].
//! A [`Rule`] is data (id, level, texts) plus a pure check over one resource; the pack
//! ([`pack::RULES`]) gives each rule its AwsSolutions id and level, as cdk-nag's pack does.
//! Invariants: rules never panic and never do IO; a value a rule needs but cannot resolve
//! (an unresolvable intrinsic) becomes a finding of that rule, never a silent pass.
//! Suppressions use cdk-nag's own metadata format ([`suppress`]).

pub mod foreach;
pub mod pack;
pub mod parse;
pub mod report;
pub mod resolve;
pub mod rules;
pub mod strict_json;
pub mod suppress;
pub mod yaml_scan;

use std::borrow::Cow;
use std::fmt;

pub use pack::{RULES, check_template, find_rule};
pub use parse::{
    ByValue, ParseError, ParsedTemplate, Position, parse_template, parse_template_bytes,
};
pub use resolve::{Resource, Scalar, Unresolved};
pub use suppress::{NagSuppress, NagSuppression};

/// Template text made safe to print on a terminal or in a CI log: control characters (C0, DEL,
/// C1), Unicode line separators and bidirectional overrides are written as escapes (`\n`,
/// `\u{1b}`), so a logical id cannot clear the screen, forge a report line or reorder what is
/// shown. Backslashes are left alone: the escapes only need to be visible, not reversible.
pub fn printable(text: &str) -> Cow<'_, str> {
    fn hidden(c: char) -> bool {
        c.is_control()
            || matches!(
                c,
                '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
            )
    }
    if !text.chars().any(hidden) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if hidden(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// How serious a rule's finding is; only unsuppressed errors fail a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Worth a look; never fails a run.
    Warning,
    /// Fails a run unless suppressed with a reason.
    Error,
}

impl Level {
    /// Lowercase name as used on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad` so width flags (`{:<8}` in `--list-rules`) line columns up.
        f.pad(self.as_str())
    }
}

/// The outcome of one rule on one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compliance {
    /// The resource satisfies the rule.
    Compliant,
    /// The resource violates the rule.
    NonCompliant,
    /// The rule does not look at this kind of resource.
    NotApplicable,
    /// Granular findings (e.g. `Action::s3:*`), each reported as `RuleId[finding]` and
    /// suppressible one by one with `applies_to`. An empty list means compliant.
    Findings(Vec<String>),
}

/// What a rule's check returns: a compliance, or the value it could not resolve.
pub type CheckResult = Result<Compliance, Unresolved>;

/// The signature of a rule's check.
pub type CheckFn = fn(&Resource<'_>) -> CheckResult;

/// One rule of the pack.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// Stable id, cdk-nag's for AwsSolutions rules (`AwsSolutions-S10`).
    pub id: &'static str,
    /// cdk-nag's rule name (`S3BucketSSLRequestsOnly`), or ours for our own rules.
    pub name: &'static str,
    /// Error or warning, as cdk-nag's AwsSolutions pack has it.
    pub level: Level,
    /// One line: what triggered the finding.
    pub info: &'static str,
    /// Why it matters and how to fix it.
    pub explanation: &'static str,
    /// The check; `None` for the rules the engine enforces itself (suppression hygiene).
    pub check: Option<CheckFn>,
}

/// One reported problem (possibly suppressed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Full id as shown and as matched by suppressions: `AwsSolutions-IAM5[Action::s3:*]`.
    pub rule_id: String,
    /// The rule's id without the granular part.
    pub base_id: &'static str,
    /// The granular part (`Action::s3:*`), if any.
    pub finding: Option<String>,
    /// The rule's level.
    pub level: Level,
    /// The template file the finding is in.
    pub file: String,
    /// Logical id of the resource, or `(template)` for template-level problems.
    pub logical_id: String,
    /// CloudFormation type of the resource (empty for template-level problems).
    pub resource_type: String,
    /// The rule's info, or what could not be resolved.
    pub message: String,
    /// Where the resource starts in the file, when known.
    pub position: Option<Position>,
    /// The reason given by the suppression that silences this finding.
    pub suppressed: Option<String>,
}

impl Finding {
    /// True when the finding is an error that no suppression silences.
    pub fn is_blocking(&self) -> bool {
        self.level == Level::Error && self.suppressed.is_none()
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Test helpers shared by every rule's tests.

    use super::*;

    /// Runs the whole pack over a YAML/JSON template and returns the unsuppressed findings of
    /// one rule (by base id).
    pub(crate) fn check(template: &str, rule_id: &str) -> Vec<Finding> {
        let parsed = parse_template("test.yaml", template).expect("test template parses");
        check_template(&parsed)
            .into_iter()
            .filter(|finding| finding.base_id == rule_id && finding.suppressed.is_none())
            .collect()
    }

    /// [`check`] as sorted `LogicalId:RuleId` strings, for one-line assertions.
    pub(crate) fn open(template: &str, rule_id: &str) -> Vec<String> {
        let mut found: Vec<String> = check(template, rule_id)
            .into_iter()
            .map(|finding| format!("{}:{}", finding.logical_id, finding.rule_id))
            .collect();
        found.sort();
        found
    }

    /// Runs one rule directly on the resource `R` of a template and names the outcome:
    /// `compliant`, `non-compliant`, `n/a`, `findings: a, b` or `unresolved: path`.
    pub(crate) fn status(template: &str, rule: &Rule) -> String {
        let parsed = parse_template("test.yaml", template).expect("test template parses");
        let Some((logical_id, body)) = parsed.resources().find(|(id, _)| *id == "R") else {
            return "no resource R".to_owned();
        };
        let resource = Resource::new(&parsed, logical_id, body);
        let check = rule.check.expect("rule has a check");
        match check(&resource) {
            Ok(Compliance::Compliant) => "compliant".to_owned(),
            Ok(Compliance::NonCompliant) => "non-compliant".to_owned(),
            Ok(Compliance::NotApplicable) => "n/a".to_owned(),
            Ok(Compliance::Findings(findings)) if findings.is_empty() => "compliant".to_owned(),
            Ok(Compliance::Findings(findings)) => format!("findings: {}", findings.join(", ")),
            Err(unresolved) => format!("unresolved: {}", unresolved.path),
        }
    }

    /// Asserts that the template yields unsuppressed findings of `rule_id` on resource `R`, and
    /// none once a cdk_nag suppression of that rule is added to `R`'s metadata.
    pub(crate) fn assert_suppressible(template: &str, rule_id: &str) {
        assert!(
            check(template, rule_id)
                .iter()
                .any(|found| found.logical_id == "R"),
            "{rule_id} should fire on R before suppression"
        );
        let mut root = parse::parse_tree("test.yaml", template).expect("test template parses");
        let metadata = root
            .get_mut("Resources")
            .and_then(|resources| resources.get_mut("R"))
            .and_then(serde_json::Value::as_object_mut)
            .expect("resource R")
            .entry("Metadata")
            .or_insert_with(|| serde_json::json!({}));
        let metadata = metadata.as_object_mut().expect("metadata is a mapping");
        suppress::write_metadata(
            metadata,
            &[NagSuppression::new(
                rule_id,
                "accepted for this test fixture",
            )],
        );
        let parsed = ParsedTemplate::from_value("test.yaml", root).expect("still a template");
        let open: Vec<String> = check_template(&parsed)
            .into_iter()
            .filter(|finding| {
                finding.base_id == rule_id
                    && finding.logical_id == "R"
                    && finding.suppressed.is_none()
            })
            .map(|finding| finding.rule_id)
            .collect();
        assert!(
            open.is_empty(),
            "{rule_id} still open after suppression: {open:?}"
        );
    }
}
