//! Rendering findings: human text, JSON, and SARIF 2.1.0 (for GitHub code scanning).
//!
//! Invariant: rendering is pure; the caller decides what to print and the exit code.
//! Suppressed findings appear in JSON and SARIF (SARIF marks them with an `inSource`
//! suppression) and in text only when `verbose` is set. Templates that could not be read or
//! parsed ([`Unchecked`]) are part of the JSON and SARIF reports (SARIF: a failed invocation
//! with one tool execution notification per file, at its position), so a code-scanning upload
//! shows them instead of a clean run; the text report leaves them to the caller's stderr.

use serde_json::{Value, json};

use super::{Finding, Level, ParseError, Position, RULES, Rule, find_rule, printable};

/// A template that could not be read or parsed, so none of its resources were checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unchecked {
    /// File name as given.
    pub file: String,
    /// Where in the file the problem is, when known.
    pub position: Option<Position>,
    /// What is wrong, without the file and position.
    pub message: String,
}

impl Unchecked {
    /// The report entry of a parse error.
    pub fn from_parse_error(error: &ParseError) -> Unchecked {
        let (file, line, column, message) = match error {
            ParseError::Json {
                file,
                line,
                column,
                source,
            } => (file, *line, *column, format!("invalid JSON: {source}")),
            ParseError::Yaml {
                file,
                line,
                column,
                source,
            } => (file, *line, *column, format!("invalid YAML: {source}")),
            ParseError::Structure {
                file,
                line,
                column,
                problem,
            } => (file, *line, *column, problem.clone()),
        };
        Unchecked {
            file: file.clone(),
            position: Some(Position { line, column }),
            message,
        }
    }
}

/// Which findings to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filter {
    /// Lowest level shown (`Warning` shows both).
    pub min_level: Level,
    /// Also show suppressed findings and rule explanations (text output).
    pub verbose: bool,
}

/// Counts over a set of findings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Unsuppressed errors (these fail a run).
    pub errors: usize,
    /// Unsuppressed warnings.
    pub warnings: usize,
    /// Suppressed findings of any level.
    pub suppressed: usize,
}

/// Counts findings by level and suppression.
pub fn summarize(findings: &[Finding]) -> Summary {
    let mut summary = Summary::default();
    for finding in findings {
        match (finding.suppressed.is_some(), finding.level) {
            (true, _) => summary.suppressed += 1,
            (false, Level::Error) => summary.errors += 1,
            (false, Level::Warning) => summary.warnings += 1,
        }
    }
    summary
}

fn shown(findings: &[Finding], filter: Filter) -> impl Iterator<Item = &Finding> {
    findings
        .iter()
        .filter(move |finding| finding.level >= filter.min_level)
}

/// Human-readable report: one line per finding, then a summary line. Everything that comes
/// from a template (file name, logical id, type, granular finding, message, reason) goes
/// through [`printable`], so control characters cannot clear a terminal or forge a line.
pub fn text(findings: &[Finding], filter: Filter) -> String {
    let mut out = String::new();
    for finding in shown(findings, filter) {
        if finding.suppressed.is_some() && !filter.verbose {
            continue;
        }
        let file = printable(&finding.file);
        let place = match finding.position {
            Some(position) => format!("{file}:{}:{}", position.line, position.column),
            None => file.into_owned(),
        };
        let kind = if finding.resource_type.is_empty() {
            String::new()
        } else {
            format!(" ({})", printable(&finding.resource_type))
        };
        out.push_str(&format!(
            "{place}: {}[{}] {}{kind}: {}\n",
            finding.level,
            printable(&finding.rule_id),
            printable(&finding.logical_id),
            printable(&finding.message)
        ));
        if let Some(reason) = &finding.suppressed {
            out.push_str(&format!("    suppressed: {}\n", printable(reason)));
        }
        if filter.verbose
            && let Some(rule) = find_rule(finding.base_id)
        {
            out.push_str(&format!("    why: {}\n", rule.explanation));
        }
    }
    let summary = summarize(findings);
    out.push_str(&format!(
        "{} error(s), {} warning(s), {} suppressed\n",
        summary.errors, summary.warnings, summary.suppressed
    ));
    out
}

/// JSON report: `{"findings": [...], "unchecked": [...], "summary": {...}}`.
pub fn json(findings: &[Finding], unchecked: &[Unchecked], filter: Filter) -> Value {
    let summary = summarize(findings);
    let items: Vec<Value> = shown(findings, filter)
        .map(|finding| {
            json!({
                "rule_id": finding.rule_id,
                "base_id": finding.base_id,
                "finding": finding.finding,
                "level": finding.level.as_str(),
                "file": finding.file,
                "line": finding.position.map(|position| position.line),
                "column": finding.position.map(|position| position.column),
                "logical_id": finding.logical_id,
                "resource_type": finding.resource_type,
                "message": finding.message,
                "suppressed": finding.suppressed.is_some(),
                "suppression_reason": finding.suppressed,
            })
        })
        .collect();
    let unchecked_items: Vec<Value> = unchecked
        .iter()
        .map(|entry| {
            json!({
                "file": entry.file,
                "line": entry.position.map(|position| position.line),
                "column": entry.position.map(|position| position.column),
                "message": entry.message,
            })
        })
        .collect();
    json!({
        "findings": items,
        "unchecked": unchecked_items,
        "summary": {
            "errors": summary.errors,
            "warnings": summary.warnings,
            "suppressed": summary.suppressed,
            "unchecked": unchecked.len(),
        },
    })
}

fn sarif_level(level: Level) -> &'static str {
    match level {
        Level::Error => "error",
        Level::Warning => "warning",
    }
}

fn sarif_rule(rule: &Rule) -> Value {
    json!({
        "id": rule.id,
        "name": rule.name,
        "shortDescription": {"text": rule.info},
        "fullDescription": {"text": rule.explanation},
        "help": {"text": rule.explanation},
        "defaultConfiguration": {"level": sarif_level(rule.level)},
    })
}

/// A file path as the URI reference SARIF requires: bytes outside RFC 3986's
/// unreserved and path characters percent-encoded (a space or `#` would otherwise break the
/// reference), absolute paths as `file://` URIs; relative paths stay relative, which is what
/// GitHub code scanning resolves against the repository root.
fn sarif_uri(path: &str) -> String {
    let mut uri = String::with_capacity(path.len() + 8);
    if path.starts_with('/') {
        uri.push_str("file://");
    }
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@".contains(&byte) {
            uri.push(char::from(byte));
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            uri.push('%');
            uri.push(char::from(HEX[usize::from(byte >> 4)]));
            uri.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
    }
    uri
}

/// A SARIF physical location: the file and, when known, the line and column.
fn sarif_location(file: &str, position: Option<Position>) -> Value {
    let mut physical = json!({"artifactLocation": {"uri": sarif_uri(file)}});
    if let Some(position) = position {
        physical["region"] = json!({"startLine": position.line, "startColumn": position.column});
    }
    physical
}

/// SARIF 2.1.0 log with one run; every pack rule is listed in `tool.driver.rules`, and the
/// run's invocation lists each unchecked template as an error notification (then
/// `executionSuccessful` is false: the results are known to be incomplete).
pub fn sarif(findings: &[Finding], unchecked: &[Unchecked], filter: Filter) -> Value {
    let results: Vec<Value> = shown(findings, filter)
        .map(|finding| {
            let rule_index = RULES.iter().position(|rule| rule.id == finding.base_id);
            let physical = sarif_location(&finding.file, finding.position);
            let mut result = json!({
                "ruleId": finding.base_id,
                "level": sarif_level(finding.level),
                "message": {"text": format!("{} {}: {}", finding.rule_id, finding.logical_id, finding.message)},
                "locations": [{
                    "physicalLocation": physical,
                    "logicalLocations": [{"name": finding.logical_id, "kind": "resource"}],
                }],
                "partialFingerprints": {"nagFinding/v1": format!("{}|{}|{}", finding.file, finding.logical_id, finding.rule_id)},
            });
            if let Some(index) = rule_index {
                result["ruleIndex"] = json!(index);
            }
            if let Some(reason) = &finding.suppressed {
                result["suppressions"] = json!([{"kind": "inSource", "justification": reason}]);
            }
            result
        })
        .collect();
    let notifications: Vec<Value> = unchecked
        .iter()
        .map(|entry| {
            json!({
                "level": "error",
                "message": {"text": format!("{}: template not checked: {}", entry.file, entry.message)},
                "locations": [{"physicalLocation": sarif_location(&entry.file, entry.position)}],
                "descriptor": {"id": "nag/unreadable-template"},
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "deployer-nag",
                "informationUri": "https://github.com/cdklabs/cdk-nag",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": RULES.iter().map(sarif_rule).collect::<Vec<_>>(),
            }},
            "invocations": [{
                "executionSuccessful": unchecked.is_empty(),
                "toolExecutionNotifications": notifications,
            }],
            "results": results,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nag::{check_template, parse_template};

    const TEMPLATE: &str = "Resources:\n  Acl: {Type: AWS::EC2::NetworkAcl}\n  Sg:\n    Type: AWS::EC2::SecurityGroup\n    Metadata: {cdk_nag: {rules_to_suppress: [{id: AwsSolutions-EC27, reason: legacy group kept for the migration}]}}\n    Properties: {GroupDescription: x, SecurityGroupIngress: [{CidrIp: 0.0.0.0/0}]}\n";

    fn findings() -> Vec<Finding> {
        check_template(&parse_template("t.yaml", TEMPLATE).expect("valid"))
    }

    #[test]
    fn text_report() {
        let quiet = text(
            &findings(),
            Filter {
                min_level: Level::Warning,
                verbose: false,
            },
        );
        assert_eq!(
            quiet,
            "t.yaml:2:3: warning[AwsSolutions-VPC3] Acl (AWS::EC2::NetworkAcl): This template uses a network ACL (or ACL entry).\n\
t.yaml:3:3: error[AwsSolutions-EC23] Sg (AWS::EC2::SecurityGroup): The security group allows inbound traffic from 0.0.0.0/0 or ::/0.\n\
1 error(s), 1 warning(s), 1 suppressed\n"
        );
        let errors_only = text(
            &findings(),
            Filter {
                min_level: Level::Error,
                verbose: true,
            },
        );
        assert!(!errors_only.contains("VPC3"));
        assert!(errors_only.contains("suppressed: legacy group kept for the migration"));
        assert!(errors_only.contains("why: "));
    }

    #[test]
    fn json_report() {
        let report = json(
            &findings(),
            &[],
            Filter {
                min_level: Level::Warning,
                verbose: false,
            },
        );
        assert_eq!(
            report["summary"],
            serde_json::json!({"errors": 1, "warnings": 1, "suppressed": 1, "unchecked": 0})
        );
        assert_eq!(report["findings"].as_array().map(Vec::len), Some(3));
        assert_eq!(
            report["findings"][2]["suppression_reason"],
            "legacy group kept for the migration"
        );
    }

    #[test]
    fn regression_control_characters_are_escaped_in_text() {
        // A logical id that would clear the terminal and forge a passing summary line.
        let template = "{\"Resources\": {\"Acl\\u001b[2J\\r\\n0 error(s), 0 warning(s), 0 suppressed\\u202e\": {\"Type\": \"AWS::EC2::NetworkAcl\"}}}";
        let parsed = parse_template("t\u{7}.json", template).expect("valid");
        let report = text(
            &check_template(&parsed),
            Filter {
                min_level: Level::Warning,
                verbose: false,
            },
        );
        assert_eq!(
            report,
            "t\\u{7}.json:1:16: warning[AwsSolutions-VPC3] Acl\\u{1b}[2J\\r\\n0 error(s), 0 warning(s), 0 suppressed\\u{202e} (AWS::EC2::NetworkAcl): This template uses a network ACL (or ACL entry).\n\
0 error(s), 1 warning(s), 0 suppressed\n"
        );
        assert_eq!(report.lines().count(), 2);
        assert!(!report.chars().any(|c| c.is_control() && c != '\n'));
    }

    fn check_uri(path: &str, expected: &str) {
        assert_eq!(sarif_uri(path), expected, "{path}");
    }

    #[test]
    fn uri_relative() {
        check_uri("cdk.out/app.template.json", "cdk.out/app.template.json")
    }
    #[test]
    fn uri_space_and_hash() {
        check_uri("my file#1.yaml", "my%20file%231.yaml")
    }
    #[test]
    fn uri_percent_and_query() {
        check_uri("a%b?.yaml", "a%25b%3F.yaml")
    }
    #[test]
    fn uri_absolute() {
        check_uri("/tmp/t.yaml", "file:///tmp/t.yaml")
    }
    #[test]
    fn uri_backslash() {
        check_uri("dir\\t.yaml", "dir%5Ct.yaml")
    }
    #[test]
    fn uri_non_ascii() {
        check_uri("é.yaml", "%C3%A9.yaml")
    }

    #[test]
    fn sarif_shape() {
        let log = sarif(
            &findings(),
            &[],
            Filter {
                min_level: Level::Warning,
                verbose: false,
            },
        );
        assert_eq!(log["version"], "2.1.0");
        assert!(
            log["$schema"]
                .as_str()
                .is_some_and(|schema| schema.contains("sarif-2.1.0"))
        );
        let run = &log["runs"][0];
        assert_eq!(run["tool"]["driver"]["name"], "deployer-nag");
        assert_eq!(
            run["tool"]["driver"]["rules"].as_array().map(Vec::len),
            Some(RULES.len())
        );
        let results = run["results"].as_array().expect("results");
        assert_eq!(results.len(), 3);
        for result in results {
            let index = result["ruleIndex"].as_u64().expect("rule index") as usize;
            assert_eq!(
                run["tool"]["driver"]["rules"][index]["id"],
                result["ruleId"]
            );
            assert!(result["message"]["text"].is_string());
            assert!(
                result["locations"][0]["physicalLocation"]["region"]["startLine"]
                    .as_u64()
                    .is_some()
            );
        }
        assert_eq!(results[2]["suppressions"][0]["kind"], "inSource");
        assert_eq!(run["invocations"][0]["executionSuccessful"], true);
    }

    fn broken() -> Vec<Unchecked> {
        let error =
            parse_template("bad.yaml", "Resources:\n  A: [unclosed\n").expect_err("broken YAML");
        vec![Unchecked::from_parse_error(&error)]
    }

    #[test]
    fn unchecked_in_json() {
        let report = json(
            &findings(),
            &broken(),
            Filter {
                min_level: Level::Warning,
                verbose: false,
            },
        );
        assert_eq!(report["summary"]["unchecked"], 1);
        let entry = &report["unchecked"][0];
        assert_eq!(entry["file"], "bad.yaml");
        assert!(
            entry["line"].as_u64().is_some_and(|line| line >= 2),
            "{entry}"
        );
        assert!(
            entry["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("invalid YAML")),
            "{entry}"
        );
    }

    #[test]
    fn unchecked_in_sarif() {
        let log = sarif(
            &[],
            &broken(),
            Filter {
                min_level: Level::Warning,
                verbose: false,
            },
        );
        let invocation = &log["runs"][0]["invocations"][0];
        assert_eq!(invocation["executionSuccessful"], false);
        let notification = &invocation["toolExecutionNotifications"][0];
        assert_eq!(notification["level"], "error");
        let location = &notification["locations"][0]["physicalLocation"];
        assert_eq!(location["artifactLocation"]["uri"], "bad.yaml");
        assert!(
            location["region"]["startLine"].as_u64().is_some(),
            "{location}"
        );
        assert!(
            notification["message"]["text"]
                .as_str()
                .is_some_and(|m| m.contains("bad.yaml"))
        );
    }
}
