//! Suppressions in cdk-nag's own metadata format.
//!
//! A resource (or the whole template, through the template's `Metadata`) carries
//! `Metadata: {cdk_nag: {rules_to_suppress: [{id, reason, applies_to: [...]}]}}`.
//! `applies_to` narrows a suppression to granular findings (`Action::s3:*`); an entry may be a
//! plain string or `{regex: "/pattern/flags"}` as cdk-nag writes it.
//! Invariant: a suppression without a reason of at least [`MIN_REASON_CHARS`] characters, or a
//! malformed one, suppresses nothing and is itself reported as an error ([`Problem`]).
//! Invariant: looking a finding up costs the same however many suppressions there are (they are
//! indexed by id and exact `applies_to` entry), except for regex entries, of which one
//! `Metadata` block may hold at most [`MAX_PATTERNS`].

use std::collections::HashMap;

use regex_lite::Regex;

use crate::model::{HasLogicalId, Template};
use serde_json::{Map, Value, json};

/// The shortest accepted reason, in characters (cdk-nag's limit).
pub const MIN_REASON_CHARS: usize = 10;

/// At most this many `{regex: ...}` entries in one `rules_to_suppress` list: every finding of
/// the resource is matched against each, so more would make checking quadratic.
pub const MAX_PATTERNS: usize = 100;

/// cdk-nag's id for suppressing a rule that could not validate a resource.
pub const VALIDATION_FAILURE_ID: &str = "CdkNagValidationFailure";

/// A typed suppression, written into a resource's (or a template's) `Metadata`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NagSuppression {
    /// Rule id, e.g. `AwsSolutions-IAM5`.
    pub id: String,
    /// Why the finding is acceptable (at least [`MIN_REASON_CHARS`] characters).
    pub reason: String,
    /// Granular findings this applies to (`Action::s3:*`, or `regex:/^Resource::.*$/`).
    /// Empty means every finding of the rule.
    pub applies_to: Vec<String>,
}

impl NagSuppression {
    /// A suppression of every finding of `id`.
    pub fn new(id: &str, reason: &str) -> NagSuppression {
        NagSuppression {
            id: id.to_owned(),
            reason: reason.to_owned(),
            applies_to: Vec::new(),
        }
    }

    /// Narrows the suppression to granular findings; an entry `regex:/.../` becomes a regex.
    pub fn applies_to<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        findings: I,
    ) -> NagSuppression {
        self.applies_to.extend(findings.into_iter().map(Into::into));
        self
    }

    /// This suppression in cdk-nag's JSON form.
    pub fn to_json(&self) -> Value {
        let mut entry = Map::new();
        entry.insert("id".to_owned(), Value::String(self.id.clone()));
        entry.insert("reason".to_owned(), Value::String(self.reason.clone()));
        if !self.applies_to.is_empty() {
            let applies_to = self
                .applies_to
                .iter()
                .map(|item| match item.strip_prefix("regex:") {
                    Some(pattern) => json!({ "regex": pattern }),
                    None => Value::String(item.clone()),
                })
                .collect();
            entry.insert("applies_to".to_owned(), Value::Array(applies_to));
        }
        Value::Object(entry)
    }
}

/// Writes cdk-nag suppressions next to a resource of a typed [`Template`], so our stacks carry
/// each suppression (and its reason) where the finding is.
///
/// ```
/// use stacks::model::Template;
/// use stacks::nag::{NagSuppress, NagSuppression};
/// use stacks::resources::logs::LogGroup;
///
/// let mut template = Template::new("example");
/// let group = template.add("Logs", LogGroup::default());
/// template.nag_suppress(&group, &[NagSuppression::new("AwsSolutions-X1", "an example reason here")]);
/// let json = template.to_json_value();
/// assert_eq!(json["Resources"]["Logs"]["Metadata"]["cdk_nag"]["rules_to_suppress"][0]["id"], "AwsSolutions-X1");
/// ```
pub trait NagSuppress {
    /// Appends `suppressions` to the resource's `Metadata.cdk_nag.rules_to_suppress`.
    fn nag_suppress(&mut self, resource: &dyn HasLogicalId, suppressions: &[NagSuppression]);
}

impl NagSuppress for Template {
    fn nag_suppress(&mut self, resource: &dyn HasLogicalId, suppressions: &[NagSuppression]) {
        // A handle of another template has no entry here; `metadata_mut` records that as a
        // validation error, so synthesis fails instead of dropping the suppression silently.
        if let Some(metadata) = self.metadata_mut(resource) {
            write_metadata(metadata, suppressions);
        }
    }
}

/// Adds suppressions to a `Metadata` mapping (creating `cdk_nag.rules_to_suppress` as needed),
/// keeping any suppressions already there.
pub fn write_metadata(metadata: &mut Map<String, Value>, suppressions: &[NagSuppression]) {
    let cdk_nag = metadata.entry("cdk_nag").or_insert_with(|| json!({}));
    if !cdk_nag.is_object() {
        *cdk_nag = json!({});
    }
    let Some(cdk_nag) = cdk_nag.as_object_mut() else {
        return;
    };
    let rules = cdk_nag
        .entry("rules_to_suppress")
        .or_insert_with(|| json!([]));
    if !rules.is_array() {
        *rules = json!([]);
    }
    if let Some(rules) = rules.as_array_mut() {
        rules.extend(suppressions.iter().map(NagSuppression::to_json));
    }
}

/// One `applies_to` entry.
#[derive(Debug, Clone)]
pub enum AppliesTo {
    /// Matches a finding exactly.
    Exact(String),
    /// Matches findings by regex (`{regex: "/^Action::s3:.*$/g"}`).
    Pattern(Regex),
}

impl AppliesTo {
    fn matches(&self, text: &str) -> bool {
        match self {
            AppliesTo::Exact(exact) => exact == text,
            AppliesTo::Pattern(regex) => regex.is_match(text),
        }
    }
}

/// A well-formed suppression read from metadata.
#[derive(Debug, Clone)]
pub struct Suppression {
    /// Rule id (possibly with a granular part, `AwsSolutions-IAM5[Action::s3:*]`).
    pub id: String,
    /// The reason.
    pub reason: String,
    /// Empty means every finding of the rule.
    pub applies_to: Vec<AppliesTo>,
}

/// A suppression that was rejected, with the rule id reported for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `Nag-SUP1` (no or too short reason) or `Nag-SUP2` (malformed entry).
    pub rule_id: &'static str,
    /// What is wrong with it.
    pub message: String,
}

/// Id of the finding for a suppression without a long enough reason.
pub const NO_REASON_ID: &str = "Nag-SUP1";
/// Id of the finding for a malformed suppression entry.
pub const MALFORMED_ID: &str = "Nag-SUP2";

/// The well-formed suppressions of one `Metadata` mapping, in order, indexed by id.
#[derive(Debug, Clone, Default)]
pub struct Suppressions {
    entries: Vec<Suppression>,
    by_id: HashMap<String, IdIndex>,
}

/// Where the entries of one id are, by what they apply to (indexes into `entries`).
#[derive(Debug, Clone, Default)]
struct IdIndex {
    /// The first entry of this id.
    first: usize,
    /// The first entry of this id without `applies_to` (it covers every finding).
    everything: Option<usize>,
    /// The first entry naming each granular finding exactly.
    exact: HashMap<String, usize>,
    /// Entries with at least one regex, in order.
    patterns: Vec<usize>,
}

impl Suppressions {
    fn push(&mut self, suppression: Suppression) {
        let idx = self.entries.len();
        let index = self
            .by_id
            .entry(suppression.id.clone())
            .or_insert_with(|| IdIndex {
                first: idx,
                ..IdIndex::default()
            });
        if suppression.applies_to.is_empty() {
            index.everything.get_or_insert(idx);
        }
        for item in &suppression.applies_to {
            match item {
                AppliesTo::Exact(text) => {
                    index.exact.entry(text.clone()).or_insert(idx);
                }
                AppliesTo::Pattern(_) => {
                    if index.patterns.last() != Some(&idx) {
                        index.patterns.push(idx);
                    }
                }
            }
        }
        self.entries.push(suppression);
    }

    /// How many well-formed suppressions there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The first entry of `id` whose `applies_to` names `text` (exactly or by regex), with
    /// `everything` entries counting when `all_count` is set.
    fn first_applying(&self, id: &str, text: &str, all_count: bool) -> Option<usize> {
        let index = self.by_id.get(id)?;
        let mut best = index.exact.get(text).copied();
        if all_count {
            best = min_some(best, index.everything);
        }
        let pattern = index
            .patterns
            .iter()
            .copied()
            .take_while(|idx| best.is_none_or(|best| *idx < best))
            .find(|idx| {
                self.entries[*idx]
                    .applies_to
                    .iter()
                    .any(|item| item.matches(text))
            });
        min_some(best, pattern)
    }
}

fn min_some(a: Option<usize>, b: Option<usize>) -> Option<usize> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Reads the suppressions of one `Metadata` mapping; rejected ones come back as problems.
pub fn read(metadata: Option<&Value>) -> (Suppressions, Vec<Problem>) {
    let mut suppressions = Suppressions::default();
    let mut problems = Vec::new();
    let Some(cdk_nag) = metadata.and_then(|metadata| metadata.get("cdk_nag")) else {
        return (suppressions, problems);
    };
    let malformed = |message: String| Problem {
        rule_id: MALFORMED_ID,
        message,
    };
    let Some(entries) = cdk_nag.get("rules_to_suppress") else {
        problems.push(malformed(
            "`cdk_nag` metadata has no `rules_to_suppress` list".to_owned(),
        ));
        return (suppressions, problems);
    };
    let Some(entries) = entries.as_array() else {
        problems.push(malformed(
            "`cdk_nag.rules_to_suppress` is not a list".to_owned(),
        ));
        return (suppressions, problems);
    };
    let mut n_patterns = 0;
    for (entry_idx, entry) in entries.iter().enumerate() {
        let Some(id) = entry.get("id").and_then(Value::as_str) else {
            problems.push(malformed(format!(
                "suppression #{entry_idx} has no string `id`"
            )));
            continue;
        };
        let reason = entry
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim();
        if reason.chars().count() < MIN_REASON_CHARS {
            problems.push(Problem {
                rule_id: NO_REASON_ID,
                message: format!(
                    "suppression of `{id}` needs a reason of at least {MIN_REASON_CHARS} characters, so it is ignored"
                ),
            });
            continue;
        }
        match read_applies_to(entry.get("applies_to"), &mut n_patterns) {
            Ok(applies_to) => suppressions.push(Suppression {
                id: id.to_owned(),
                reason: reason.to_owned(),
                applies_to,
            }),
            Err(message) => problems.push(malformed(format!("suppression of `{id}`: {message}"))),
        }
    }
    (suppressions, problems)
}

fn read_applies_to(
    value: Option<&Value>,
    n_patterns: &mut usize,
) -> Result<Vec<AppliesTo>, String> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let Some(items) = value.as_array() else {
        return Err("`applies_to` is not a list".to_owned());
    };
    items
        .iter()
        .map(|item| match item {
            Value::String(text) => Ok(AppliesTo::Exact(text.clone())),
            Value::Object(object) => match object.get("regex").and_then(Value::as_str) {
                Some(_) if *n_patterns >= MAX_PATTERNS => Err(format!(
                    "more than {MAX_PATTERNS} `{{regex: ...}}` entries in one `rules_to_suppress` list"
                )),
                Some(pattern) => {
                    *n_patterns += 1;
                    compile(pattern).map(AppliesTo::Pattern)
                }
                None => {
                    Err("an `applies_to` entry is neither a string nor `{regex: ...}`".to_owned())
                }
            },
            _ => Err("an `applies_to` entry is neither a string nor `{regex: ...}`".to_owned()),
        })
        .collect()
}

/// Compiles a JavaScript-style `/pattern/flags` (or a bare pattern) into a regex.
fn compile(pattern: &str) -> Result<Regex, String> {
    let (body, flags) = match pattern
        .strip_prefix('/')
        .and_then(|rest| rest.rsplit_once('/'))
    {
        Some((body, flags)) => (body, flags),
        None => (pattern, ""),
    };
    let mut inline = String::new();
    for flag in flags.chars() {
        match flag {
            'i' | 'm' | 's' => inline.push(flag),
            // `g`, `u`, `y` change iteration or encoding in JavaScript, not what matches.
            'g' | 'u' | 'y' => {}
            other => return Err(format!("unknown regex flag `{other}` in `{pattern}`")),
        }
    }
    let full = if inline.is_empty() {
        body.to_owned()
    } else {
        format!("(?{inline}){body}")
    };
    Regex::new(&full).map_err(|error| format!("invalid regex `{pattern}`: {error}"))
}

/// Finds the suppression (if any) that silences a finding of `rule_id` with granular part
/// `finding`; `unresolved` marks a finding about a value the rule could not resolve. When
/// several apply, the first in the list wins (its reason is the one reported).
pub fn find<'s>(
    suppressions: &'s Suppressions,
    rule_id: &str,
    finding: Option<&str>,
    unresolved: bool,
) -> Option<&'s Suppression> {
    let mut best = match finding {
        // A finding without a granular part: only entries that cover every finding.
        None => suppressions
            .by_id
            .get(rule_id)
            .and_then(|index| index.everything),
        Some(finding) => min_some(
            suppressions.first_applying(rule_id, finding, true),
            suppressions
                .by_id
                .get(&format!("{rule_id}[{finding}]"))
                .map(|index| index.first),
        ),
    };
    if unresolved {
        best = min_some(
            best,
            suppressions.first_applying(VALIDATION_FAILURE_ID, rule_id, false),
        );
    }
    best.map(|idx| &suppressions.entries[idx])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads suppressions from a YAML `Metadata` value and asks whether `rule[finding]` is
    /// suppressed; returns `suppressed`, `open`, or the problems.
    fn check(metadata: &str, rule_id: &str, finding: Option<&str>) -> String {
        let metadata = crate::nag::parse::parse_tree("m.yaml", metadata).expect("valid yaml");
        let (suppressions, problems) = read(Some(&metadata));
        if !problems.is_empty() {
            return problems
                .iter()
                .map(|problem| format!("{}: {}", problem.rule_id, problem.message))
                .collect::<Vec<_>>()
                .join("; ");
        }
        match find(&suppressions, rule_id, finding, false) {
            Some(_) => "suppressed".to_owned(),
            None => "open".to_owned(),
        }
    }

    const REASON: &str = "reason: a real reason here";

    #[test]
    fn plain_ids() {
        assert_eq!(
            check(
                &format!("cdk_nag: {{rules_to_suppress: [{{id: AwsSolutions-S1, {REASON}}}]}}"),
                "AwsSolutions-S1",
                None
            ),
            "suppressed"
        );
        assert_eq!(
            check(
                &format!("cdk_nag: {{rules_to_suppress: [{{id: AwsSolutions-S1, {REASON}}}]}}"),
                "AwsSolutions-S2",
                None
            ),
            "open"
        );
        assert_eq!(
            check(
                &format!("cdk_nag: {{rules_to_suppress: [{{id: AwsSolutions-IAM5, {REASON}}}]}}"),
                "AwsSolutions-IAM5",
                Some("Action::s3:*")
            ),
            "suppressed"
        );
    }

    #[test]
    fn applies_to() {
        let meta = format!(
            "cdk_nag: {{rules_to_suppress: [{{id: AwsSolutions-IAM5, {REASON}, applies_to: ['Action::s3:*', {{regex: '/^Resource::<Bucket.Arn>\\/.*$/g'}}]}}]}}"
        );
        assert_eq!(
            check(&meta, "AwsSolutions-IAM5", Some("Action::s3:*")),
            "suppressed"
        );
        assert_eq!(
            check(&meta, "AwsSolutions-IAM5", Some("Action::ec2:*")),
            "open"
        );
        assert_eq!(
            check(&meta, "AwsSolutions-IAM5", Some("Resource::<Bucket.Arn>/*")),
            "suppressed"
        );
        assert_eq!(check(&meta, "AwsSolutions-IAM5", None), "open");
        assert_eq!(
            check(
                &format!(
                    "cdk_nag: {{rules_to_suppress: [{{id: 'AwsSolutions-IAM5[Action::s3:*]', {REASON}}}]}}"
                ),
                "AwsSolutions-IAM5",
                Some("Action::s3:*")
            ),
            "suppressed"
        );
        assert_eq!(
            check(
                &format!(
                    "cdk_nag: {{rules_to_suppress: [{{id: X, {REASON}, applies_to: [{{regex: '/^action::S3:.*$/i'}}]}}]}}"
                ),
                "X",
                Some("Action::s3:Get")
            ),
            "suppressed"
        );
    }

    #[test]
    fn rejected_suppressions() {
        assert_eq!(
            check("cdk_nag: {rules_to_suppress: [{id: X}]}", "X", None),
            "Nag-SUP1: suppression of `X` needs a reason of at least 10 characters, so it is ignored"
        );
        assert_eq!(
            check(
                "cdk_nag: {rules_to_suppress: [{id: X, reason: '  short    '}]}",
                "X",
                None
            ),
            "Nag-SUP1: suppression of `X` needs a reason of at least 10 characters, so it is ignored"
        );
        assert_eq!(
            check(
                &format!("cdk_nag: {{rules_to_suppress: [{{{REASON}}}]}}"),
                "X",
                None
            ),
            "Nag-SUP2: suppression #0 has no string `id`"
        );
        assert_eq!(
            check("cdk_nag: {rules_to_suppress: 1}", "X", None),
            "Nag-SUP2: `cdk_nag.rules_to_suppress` is not a list"
        );
        assert_eq!(check(&format!("cdk_nag: {{rules_to_suppress: [{{id: X, {REASON}, applies_to: [{{regex: '/(/'}}]}}]}}"), "X", None).split(':').next(), Some("Nag-SUP2"));
        assert_eq!(
            check(
                &format!("cdk_nag: {{rules_to_suppress: [{{id: X, {REASON}, applies_to: [1]}}]}}"),
                "X",
                None
            ),
            "Nag-SUP2: suppression of `X`: an `applies_to` entry is neither a string nor `{regex: ...}`"
        );
        assert_eq!(check("other: 1", "X", None), "open");
    }

    #[test]
    fn the_first_applicable_suppression_wins() {
        let metadata = json!({"cdk_nag": {"rules_to_suppress": [
            {"id": "X", "reason": "the first reason", "applies_to": [{"regex": "/^A.*$/"}]},
            {"id": "X[A1]", "reason": "the second reason"},
            {"id": "X", "reason": "the third reason"},
            {"id": "X", "reason": "the fourth reason", "applies_to": ["B1"]},
        ]}});
        let (suppressions, _) = read(Some(&metadata));
        let reason = |finding: Option<&str>| {
            find(&suppressions, "X", finding, false).map(|found| found.reason.as_str())
        };
        assert_eq!(reason(Some("A1")), Some("the first reason"));
        assert_eq!(reason(Some("B1")), Some("the third reason"));
        assert_eq!(reason(None), Some("the third reason"));
    }

    #[test]
    fn regression_regex_entries_are_bounded() {
        let patterns: Vec<Value> = (0..=MAX_PATTERNS)
            .map(|n| json!({"regex": format!("/^Action::s{n}:.*$/")}))
            .collect();
        let metadata = json!({"cdk_nag": {"rules_to_suppress": [
            {"id": "AwsSolutions-IAM5", "reason": "many patterns here", "applies_to": patterns},
        ]}});
        let (suppressions, problems) = read(Some(&metadata));
        assert!(suppressions.is_empty());
        assert_eq!(
            problems[0].message,
            format!(
                "suppression of `AwsSolutions-IAM5`: more than {MAX_PATTERNS} `{{regex: ...}}` entries in one `rules_to_suppress` list"
            )
        );
    }

    #[test]
    fn validation_failures_use_cdk_nag_id() {
        let metadata = crate::nag::parse::parse_tree("m.yaml", &format!("cdk_nag: {{rules_to_suppress: [{{id: CdkNagValidationFailure, {REASON}, applies_to: [AwsSolutions-EC23]}}]}}")).expect("valid");
        let (suppressions, _) = read(Some(&metadata));
        assert!(find(&suppressions, "AwsSolutions-EC23", None, true).is_some());
        assert!(find(&suppressions, "AwsSolutions-EC23", None, false).is_none());
    }

    #[test]
    fn typed_suppressions_round_trip() {
        let mut metadata = Map::new();
        write_metadata(
            &mut metadata,
            &[
                NagSuppression::new("AwsSolutions-IAM5", "needs every object of the bucket")
                    .applies_to(["Action::s3:*", "regex:/^Resource::.*$/"]),
            ],
        );
        assert_eq!(
            Value::Object(metadata.clone()).to_string(),
            r#"{"cdk_nag":{"rules_to_suppress":[{"id":"AwsSolutions-IAM5","reason":"needs every object of the bucket","applies_to":["Action::s3:*",{"regex":"/^Resource::.*$/"}]}]}}"#
        );
        let (suppressions, problems) = read(Some(&Value::Object(metadata)));
        assert!(problems.is_empty());
        assert!(
            find(
                &suppressions,
                "AwsSolutions-IAM5",
                Some("Resource::*"),
                false
            )
            .is_some()
        );
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_metadata_never_panics(id in "\\PC{0,12}", reason in "\\PC{0,20}", pattern in "\\PC{0,16}", finding in "\\PC{0,16}") {
            let metadata = json!({"cdk_nag": {"rules_to_suppress": [
                {"id": id, "reason": reason, "applies_to": [pattern.clone(), {"regex": pattern}]}
            ]}});
            let (suppressions, problems) = read(Some(&metadata));
            proptest::prop_assert_eq!(suppressions.len() + problems.len(), 1);
            let _ = find(&suppressions, &id, Some(&finding), true);
        }
    }
}
