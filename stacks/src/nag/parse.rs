//! Parses any CloudFormation template, JSON or YAML, into one JSON tree.
//!
//! YAML short-form intrinsic tags (`!Ref`, `!GetAtt X.Y`, `!Sub`, `!If`, `!Condition`, ...) are
//! rewritten to exactly the long forms (`{"Ref": ..}`, `{"Fn::GetAtt": ["X", "Y"]}`,
//! `{"Condition": ..}`), so rules never see the difference. YAML merge keys (`<<: *anchor`,
//! resolved by `aws cloudformation package`) are applied and the non-specific tag `!` is ignored.
//! `Fn::ForEach` loops in `Resources` are expanded ([`foreach`]) before the checks below.
//! JSON is read strictly ([`strict_json`]: no trailing commas, no duplicate keys) and never
//! falls back to YAML's leniency; YAML passes [`yaml_scan`] first (depth, unsupported tags), so
//! parsing stays linear in the text and nesting deeper than [`MAX_DEPTH`] is refused.
//! Invariant: a [`ParsedTemplate`] has a `Resources` mapping whose every entry is a mapping with
//! a string `Type`; anything else is a [`ParseError`] that names the file, line and column.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::strict_json::{self, StrictError};
use super::{foreach, printable, yaml_scan};

/// Objects, arrays and YAML collections nest at most this deep (the template itself is level
/// 1; our deepest stack nests 11 levels). The JSON and YAML parsers stop at 128 on their own.
pub const MAX_DEPTH: usize = 64;

/// A line/column position in the template text, both 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

/// Why a file could not be read as a CloudFormation template.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The text is JSON (by its name or its first key) but not valid JSON.
    #[error("{}:{line}:{column}: invalid JSON", printable(.file))]
    Json {
        /// File name as given by the caller.
        file: String,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// The JSON parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// The text is not valid YAML.
    #[error("{}:{line}:{column}: invalid YAML", printable(.file))]
    Yaml {
        /// File name as given by the caller.
        file: String,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// The YAML parser's error.
        #[source]
        source: serde_yaml::Error,
    },
    /// The document is not an acceptable CloudFormation template: wrong structure, nested too
    /// deep, a duplicate JSON key, an unsupported YAML tag, invalid UTF-8 or a control character.
    #[error("{}:{line}:{column}: {}", printable(.file), printable(.problem))]
    Structure {
        /// File name as given by the caller.
        file: String,
        /// 1-based line of the problem (best effort for YAML/JSON trees without positions).
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// What is wrong, e.g. "resource `Bucket` has no `Type`".
        problem: String,
    },
}

/// A template that passed the structural checks, plus where its resources are in the text and
/// an index (resources by type, who references whom, and [`ByValue`] lookups) so relational
/// rules stay linear in the number of resources.
#[derive(Debug, Clone)]
pub struct ParsedTemplate {
    /// File name as given to [`parse_template`], used in reports.
    pub file: String,
    root: Value,
    positions: HashMap<String, Position>,
    by_type: HashMap<String, Vec<String>>,
    referrers: HashMap<String, Vec<String>>,
    by_value: HashMap<(ByValue, String), Vec<String>>,
    ordinals: HashMap<String, usize>,
}

/// The property values relational rules look other resources up by. Each is indexed once per
/// template by the property's flattened text ([`super::resolve::flatten`]), so "which policy
/// names this bucket" is one lookup instead of a scan of every policy per bucket (a scan made
/// 16,000 named buckets take a minute).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ByValue {
    /// `AWS::S3::Bucket` by `LoggingConfiguration.DestinationBucketName` (log destinations).
    BucketLogDestination,
    /// `AWS::S3::BucketPolicy` by `Bucket` (a bucket's policies, by name).
    BucketPolicyBucket,
    /// `AWS::EC2::LaunchTemplate` by `LaunchTemplateName`.
    LaunchTemplateName,
}

impl ByValue {
    const ALL: [ByValue; 3] = [
        ByValue::BucketLogDestination,
        ByValue::BucketPolicyBucket,
        ByValue::LaunchTemplateName,
    ];

    /// The resource type indexed.
    pub fn resource_type(self) -> &'static str {
        match self {
            ByValue::BucketLogDestination => "AWS::S3::Bucket",
            ByValue::BucketPolicyBucket => "AWS::S3::BucketPolicy",
            ByValue::LaunchTemplateName => "AWS::EC2::LaunchTemplate",
        }
    }

    /// The property path under `Properties`.
    fn path(self) -> &'static [&'static str] {
        match self {
            ByValue::BucketLogDestination => &["LoggingConfiguration", "DestinationBucketName"],
            ByValue::BucketPolicyBucket => &["Bucket"],
            ByValue::LaunchTemplateName => &["LaunchTemplateName"],
        }
    }
}

impl ParsedTemplate {
    /// Builds a template from an already parsed JSON tree (e.g. one we synthesized ourselves).
    pub fn from_value(file: &str, mut root: Value) -> Result<ParsedTemplate, ParseError> {
        check_tree_depth(file, "", &root)?;
        expand_loops(file, "", &mut root)?;
        validate(file, "", &root)?;
        Ok(ParsedTemplate::indexed(file, root, HashMap::new()))
    }

    fn indexed(file: &str, root: Value, positions: HashMap<String, Position>) -> ParsedTemplate {
        let mut by_type: HashMap<String, Vec<String>> = HashMap::new();
        let mut referrers: HashMap<String, Vec<String>> = HashMap::new();
        let mut by_value: HashMap<(ByValue, String), Vec<String>> = HashMap::new();
        let mut ordinals = HashMap::new();
        let resources = root.get("Resources").and_then(Value::as_object);
        for (ordinal, (logical_id, body)) in resources.into_iter().flatten().enumerate() {
            ordinals.insert(logical_id.clone(), ordinal);
            if let Some(resource_type) = body.get("Type").and_then(Value::as_str) {
                by_type
                    .entry(resource_type.to_owned())
                    .or_default()
                    .push(logical_id.clone());
                for index in ByValue::ALL {
                    if index.resource_type() != resource_type {
                        continue;
                    }
                    let mut value = body.get("Properties");
                    for key in index.path() {
                        value = value.and_then(|value| value.get(key));
                    }
                    if let Some(value) = value {
                        by_value
                            .entry((index, super::resolve::flatten(value)))
                            .or_default()
                            .push(logical_id.clone());
                    }
                }
            }
            let mut targets = Vec::new();
            if let Some(properties) = body.get("Properties") {
                collect_references(properties, 0, &mut targets);
            }
            targets.sort_unstable();
            targets.dedup();
            for target in targets {
                referrers
                    .entry(target)
                    .or_default()
                    .push(logical_id.clone());
            }
        }
        ParsedTemplate {
            file: file.to_owned(),
            root,
            positions,
            by_type,
            referrers,
            by_value,
            ordinals,
        }
    }

    /// The whole template tree.
    pub fn root(&self) -> &Value {
        &self.root
    }

    /// Where the resource's logical id appears in the text, when it could be found.
    pub fn position_of(&self, logical_id: &str) -> Option<Position> {
        self.positions.get(logical_id).copied()
    }

    /// The `Resources` mapping (guaranteed present by construction).
    pub fn resources(&self) -> impl Iterator<Item = (&str, &Map<String, Value>)> {
        self.root
            .get("Resources")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|resources| resources.iter())
            .filter_map(|(logical_id, body)| Some((logical_id.as_str(), body.as_object()?)))
    }

    /// One resource's body by logical id.
    pub fn resource(&self, logical_id: &str) -> Option<(&str, &Map<String, Value>)> {
        let (key, body) = self
            .root
            .get("Resources")?
            .as_object()?
            .get_key_value(logical_id)?;
        Some((key.as_str(), body.as_object()?))
    }

    /// Logical ids of the resources of one type, in template order.
    pub fn ids_of_type(&self, resource_type: &str) -> &[String] {
        self.by_type.get(resource_type).map_or(&[], Vec::as_slice)
    }

    /// Logical ids of the resources of `index`'s type whose indexed property flattens to the
    /// same text as `value`, in template order (a superset of those equal to `value`).
    pub fn ids_with_value(&self, index: ByValue, value: &Value) -> &[String] {
        self.by_value
            .get(&(index, super::resolve::flatten(value)))
            .map_or(&[], Vec::as_slice)
    }

    /// The position of a resource in `Resources` (0 for the first), for putting ids gathered
    /// from several lookups back in template order.
    pub fn ordinal(&self, logical_id: &str) -> usize {
        self.ordinals.get(logical_id).copied().unwrap_or(usize::MAX)
    }

    /// Logical ids of the resources whose properties reference `logical_id` (through `Ref`,
    /// `Fn::GetAtt` or a `${...}` in `Fn::Sub`), in template order.
    pub fn referrers_of(&self, logical_id: &str) -> &[String] {
        self.referrers.get(logical_id).map_or(&[], Vec::as_slice)
    }
}

/// Collects the logical ids a value references; bounded depth (the parsers bound it too).
fn collect_references(value: &Value, depth: usize, out: &mut Vec<String>) {
    if depth > 64 {
        return;
    }
    match value {
        Value::Array(items) => items
            .iter()
            .for_each(|item| collect_references(item, depth + 1, out)),
        Value::Object(object) => {
            for (key, inner) in object {
                match (key.as_str(), inner) {
                    ("Ref", Value::String(target)) => out.push(target.clone()),
                    ("Fn::GetAtt", Value::Array(parts)) => {
                        if let Some(Value::String(target)) = parts.first() {
                            out.push(target.clone());
                        }
                    }
                    ("Fn::GetAtt", Value::String(dotted)) => {
                        out.extend(dotted.split('.').next().map(str::to_owned));
                    }
                    ("Fn::Sub", sub) => {
                        let text = match sub {
                            Value::Array(parts) => parts.first().and_then(Value::as_str),
                            other => other.as_str(),
                        };
                        for variable in text.into_iter().flat_map(|text| text.split("${").skip(1)) {
                            if let Some((name, _)) = variable.split_once('}') {
                                out.extend(name.split('.').next().map(str::to_owned));
                            }
                        }
                    }
                    _ => {}
                }
                collect_references(inner, depth + 1, out);
            }
        }
        _ => {}
    }
}

/// Parses the bytes of a file (JSON or YAML) named `file` into a checked template; text that is
/// not UTF-8 is refused at the line and column of the first invalid byte.
pub fn parse_template_bytes(file: &str, bytes: &[u8]) -> Result<ParsedTemplate, ParseError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse_template(file, text),
        Err(error) => {
            let valid = &bytes[..error.valid_up_to()];
            let line_start = valid
                .iter()
                .rposition(|byte| *byte == b'\n')
                .map_or(0, |idx| idx + 1);
            let line = valid.iter().filter(|byte| **byte == b'\n').count() + 1;
            // The prefix is valid UTF-8, so this counts characters.
            let column = String::from_utf8_lossy(&valid[line_start..])
                .chars()
                .count()
                + 1;
            let byte = bytes.get(error.valid_up_to()).copied().unwrap_or(0);
            Err(structure_error(
                file,
                Position { line, column },
                format!("invalid UTF-8 (byte 0x{byte:02X}); templates must be UTF-8 text"),
            ))
        }
    }
}

/// A [`ParseError::Structure`]; its fields keep the template's text as is (JSON reports escape
/// it their own way), and its message escapes control characters ([`printable`]).
fn structure_error(file: &str, position: Position, problem: String) -> ParseError {
    ParseError::Structure {
        file: file.to_owned(),
        line: position.line,
        column: position.column,
        problem,
    }
}

/// Parses `text` (JSON or YAML) named `file` into a checked template.
pub fn parse_template(file: &str, text: &str) -> Result<ParsedTemplate, ParseError> {
    let text = without_bom(text);
    let mut root = parse_tree(file, text)?;
    let origins = expand_loops(file, text, &mut root)?;
    validate(file, text, &root)?;
    let keys = key_index(text);
    // JSON keys are located exactly (minified JSON has every key on one line).
    let json_keys = if text.trim_start().starts_with('{') {
        json_resource_keys(text)
    } else {
        HashMap::new()
    };
    let lookup = |key: &str| {
        json_keys
            .get(key)
            .copied()
            .or_else(|| keys.get(key).copied())
    };
    // A resource made by a `Fn::ForEach` loop is located at the loop's key.
    let mut loop_positions: HashMap<&str, Option<Position>> = HashMap::new();
    let positions = root
        .get("Resources")
        .and_then(Value::as_object)
        .map(|resources| {
            resources
                .keys()
                .filter_map(|logical_id| {
                    let position = match origins.get(logical_id) {
                        Some(loop_key) => *loop_positions
                            .entry(loop_key.as_str())
                            .or_insert_with(|| lookup(loop_key)),
                        None => lookup(logical_id),
                    };
                    Some((logical_id.clone(), position?))
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(ParsedTemplate::indexed(file, root, positions))
}

/// Expands `Fn::ForEach` loops in `Resources` (see [`foreach`]); a malformed loop is an error
/// at the loop's key.
fn expand_loops(
    file: &str,
    text: &str,
    root: &mut Value,
) -> Result<HashMap<String, String>, ParseError> {
    foreach::expand_resources(root).map_err(|error| {
        let position = locate_key(text, &error.loop_key).unwrap_or(Position { line: 1, column: 1 });
        structure_error(file, position, error.to_string())
    })
}

/// One pass over JSON text: the exact position (of the opening quote) of every key of the
/// root's `Resources` object. Strings and escapes are skipped properly, so a property named like
/// a resource, or a whole template on one line, cannot mislead it.
fn json_resource_keys(text: &str) -> HashMap<String, Position> {
    let mut found = HashMap::new();
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut in_resources = false;
    let mut line = 1;
    let mut line_start = 0;
    let mut columns = Columns::default();
    let mut idx = 0;
    while idx < bytes.len() {
        match bytes[idx] {
            b'\n' => {
                line += 1;
                line_start = idx + 1;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth < 2 {
                    in_resources = false;
                }
            }
            b'"' => {
                let start = idx;
                idx += 1;
                while idx < bytes.len() && bytes[idx] != b'"' {
                    if bytes[idx] == b'\\' {
                        idx += 1;
                    }
                    // Flow-style YAML strings may span lines.
                    if bytes.get(idx) == Some(&b'\n') {
                        line += 1;
                        line_start = idx + 1;
                    }
                    idx += 1;
                }
                let end = idx.min(bytes.len() - 1);
                let is_key = text[end + 1..].trim_start().starts_with(':');
                if is_key && (depth == 1 || (depth == 2 && in_resources)) {
                    let key: Option<String> = text
                        .get(start..=end)
                        .and_then(|quoted| serde_json::from_str(quoted).ok());
                    if let Some(key) = key {
                        if depth == 1 {
                            in_resources = key == "Resources";
                        } else {
                            let column = columns.at(text, line_start, start);
                            found.entry(key).or_insert(Position { line, column });
                        }
                    }
                }
            }
            _ => {}
        }
        idx += 1;
    }
    found
}

/// 1-based character columns of byte offsets within one line, counted from the previous
/// offset asked for rather than from the line start, so a scanner asking for the column of
/// every key of a long line (minified JSON is one line) stays linear, not quadratic.
#[derive(Debug, Default)]
struct Columns {
    /// The line start the counts are relative to.
    line_start: usize,
    /// The byte offset of the last answer.
    byte: usize,
    /// Characters between `line_start` and `byte`.
    chars: usize,
}

impl Columns {
    /// The column of byte offset `at` (a char boundary of `text`, at or after `line_start`).
    fn at(&mut self, text: &str, line_start: usize, at: usize) -> usize {
        if line_start != self.line_start || self.byte < line_start {
            *self = Columns {
                line_start,
                byte: line_start,
                chars: 0,
            };
        }
        let count = |from: usize, to: usize| text.get(from..to).map_or(0, |s| s.chars().count());
        if at >= self.byte {
            self.chars += count(self.byte, at);
        } else {
            self.chars = self.chars.saturating_sub(count(at, self.byte));
        }
        self.byte = at;
        self.chars + 1
    }
}

/// One pass over the text: the leftmost (then first) position of every mapping key (`key:`,
/// `"key":`, `'key':`) after the `Resources` key, so resource positions cost linear time.
fn key_index(text: &str) -> HashMap<&str, Position> {
    let mut keys = HashMap::new();
    let mut in_resources = false;
    for (line_idx, line) in text.lines().enumerate() {
        let mut columns = Columns::default();
        let mut rest_start = 0;
        while let Some(colon) = line[rest_start..].find(':') {
            let colon = rest_start + colon;
            rest_start = colon + 1;
            let before = line[..colon].trim_end();
            let (key, key_start) = match before.chars().next_back() {
                Some(quote @ ('"' | '\'')) => {
                    let inner = &before[..before.len() - 1];
                    match inner.rfind(quote) {
                        Some(open) => (&inner[open + 1..], open),
                        None => continue,
                    }
                }
                // A plain key ends at a colon followed by a space or the line end; other colons
                // belong to it (`Fn::ForEach::Buckets:`) or to a value (`arn:aws:s3:::x`).
                Some(_)
                    if !line[colon + 1..]
                        .chars()
                        .next()
                        .is_none_or(char::is_whitespace) =>
                {
                    continue;
                }
                Some(_) => {
                    let start = before
                        .char_indices()
                        .rev()
                        .take_while(|(_, c)| {
                            c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')
                        })
                        .last()
                        .map_or(before.len(), |(idx, _)| idx);
                    (&before[start..], start)
                }
                None => continue,
            };
            if key.is_empty() {
                continue;
            }
            if !in_resources {
                in_resources = key == "Resources";
                continue;
            }
            let column = columns.at(line, 0, key_start);
            // Resource ids sit shallower than property keys of the same name (`Bucket:` in a
            // bucket policy), so the leftmost occurrence wins, then the first.
            let position = Position {
                line: line_idx + 1,
                column,
            };
            keys.entry(key)
                .and_modify(|known: &mut Position| {
                    if column < known.column {
                        *known = position;
                    }
                })
                .or_insert(position);
        }
    }
    keys
}

/// Parses JSON or YAML text into a JSON tree with long-form intrinsics, without structural checks.
/// A file named `*.json`, or text starting with `{"`, is JSON and only JSON.
pub fn parse_tree(file: &str, text: &str) -> Result<Value, ParseError> {
    let text = without_bom(text);
    let json = is_json(file, text);
    check_characters(file, text, json)?;
    let value = if json {
        strict_json::parse(text, MAX_DEPTH).map_err(|error| match error {
            StrictError::Syntax(source) => ParseError::Json {
                file: file.to_owned(),
                line: source.line().max(1),
                column: source.column().max(1),
                source,
            },
            StrictError::DuplicateKey { key, line, column } => structure_error(
                file,
                Position { line, column },
                format!("duplicate key `{key}` (JSON keeps only the last one)"),
            ),
            StrictError::TooDeep { line, column } => structure_error(
                file,
                Position { line, column },
                format!("nesting deeper than {MAX_DEPTH} levels"),
            ),
        })?
    } else {
        yaml_scan::check(text, MAX_DEPTH).map_err(|problem| {
            structure_error(
                file,
                Position {
                    line: problem.line,
                    column: problem.column,
                },
                problem.message,
            )
        })?;
        parse_yaml(file, text)?
    };
    check_tree_depth(file, text, &value)?;
    Ok(value)
}

/// JSON by name, or by its first key: flow-style YAML (`{a: !Ref B}`) also starts with `{`, but
/// not with a quoted key.
fn is_json(file: &str, text: &str) -> bool {
    if file.to_ascii_lowercase().ends_with(".json") {
        return true;
    }
    text.trim_start()
        .strip_prefix('{')
        .map(str::trim_start)
        .is_some_and(|inside| inside.starts_with('"') || inside.starts_with('}'))
}

/// Refuses NUL anywhere, and in YAML every character YAML does not allow in a stream (C0 and
/// C1 controls other than tab and line breaks, DEL, U+FFFE/U+FFFF), at its line and column;
/// the YAML parser would report them at 1:1.
fn check_characters(file: &str, text: &str, json: bool) -> Result<(), ParseError> {
    let allowed = |c: char| {
        if json {
            c != '\0'
        } else {
            matches!(c, '\t' | '\n' | '\r' | '\u{85}' | ' '..='~' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
        }
    };
    let Some(offset) = text.find(|c: char| !allowed(c)) else {
        return Ok(());
    };
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |idx| idx + 1);
    let position = Position {
        line: before.matches('\n').count() + 1,
        column: before[line_start..].chars().count() + 1,
    };
    let found = text[offset..].chars().next().unwrap_or('\0');
    let name = if found == '\0' {
        "NUL byte (U+0000)".to_owned()
    } else {
        format!("control character U+{:04X}", u32::from(found))
    };
    Err(structure_error(
        file,
        position,
        format!("{name} is not allowed in a template"),
    ))
}

/// Refuses a tree nested deeper than [`MAX_DEPTH`] (YAML block sequences that share their
/// parent's indentation are not seen by [`yaml_scan`], and trees can come from elsewhere).
fn check_tree_depth(file: &str, text: &str, root: &Value) -> Result<(), ParseError> {
    fn too_deep(value: &Value, depth: usize, path: &mut Vec<String>) -> bool {
        let children: Box<dyn Iterator<Item = (String, &Value)>> = match value {
            Value::Array(items) => Box::new(
                items
                    .iter()
                    .enumerate()
                    .map(|(idx, item)| (format!("[{idx}]"), item)),
            ),
            Value::Object(object) => Box::new(object.iter().map(|(key, item)| (key.clone(), item))),
            _ => return false,
        };
        if depth > MAX_DEPTH {
            return true;
        }
        for (segment, child) in children {
            path.push(segment);
            if too_deep(child, depth + 1, path) {
                return true;
            }
            path.pop();
        }
        false
    }
    let mut path = Vec::new();
    if !too_deep(root, 1, &mut path) {
        return Ok(());
    }
    let position = match path.as_slice() {
        [section, logical_id, ..] if section == "Resources" => {
            key_index(text).get(logical_id.as_str()).copied()
        }
        _ => None,
    }
    .unwrap_or(Position { line: 1, column: 1 });
    let shown: Vec<&str> = path.iter().take(4).map(String::as_str).collect();
    Err(structure_error(
        file,
        position,
        format!(
            "nesting deeper than {MAX_DEPTH} levels (at `{}...`)",
            shown.join(".")
        ),
    ))
}

/// Drops a UTF-8 byte order mark (editors on Windows write one), which JSON forbids and which
/// would otherwise shift every column of the first line.
fn without_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

fn parse_yaml(file: &str, text: &str) -> Result<Value, ParseError> {
    let yaml_error = |source: serde_yaml::Error| {
        let (line, column) = source
            .location()
            .map_or((1, 1), |loc| (loc.line(), loc.column()));
        ParseError::Yaml {
            file: file.to_owned(),
            line,
            column,
            source,
        }
    };
    let mut yaml: serde_yaml::Value = serde_yaml::from_str(text).map_err(yaml_error)?;
    yaml.apply_merge().map_err(yaml_error)?;
    yaml_to_json(yaml).map_err(|problem| {
        let position = problem
            .tag
            .as_deref()
            .and_then(|tag| locate_text(text, tag))
            .unwrap_or(Position { line: 1, column: 1 });
        structure_error(file, position, problem.message)
    })
}

struct ConvertProblem {
    message: String,
    tag: Option<String>,
}

/// Maps a YAML short-form tag (without `!`) to its long-form key.
fn long_form(tag: &str) -> Option<&'static str> {
    Some(match tag {
        "Ref" => "Ref",
        "Condition" => "Condition",
        "GetAtt" => "Fn::GetAtt",
        "Sub" => "Fn::Sub",
        "If" => "Fn::If",
        "Join" => "Fn::Join",
        "Select" => "Fn::Select",
        "Equals" => "Fn::Equals",
        "ImportValue" => "Fn::ImportValue",
        "FindInMap" => "Fn::FindInMap",
        "Base64" => "Fn::Base64",
        "Cidr" => "Fn::Cidr",
        "GetAZs" => "Fn::GetAZs",
        "Split" => "Fn::Split",
        "And" => "Fn::And",
        "Or" => "Fn::Or",
        "Not" => "Fn::Not",
        "Transform" => "Fn::Transform",
        "Length" => "Fn::Length",
        "ToJsonString" => "Fn::ToJsonString",
        "ForEach" => "Fn::ForEach",
        "Contains" => "Fn::Contains",
        "EachMemberEquals" => "Fn::EachMemberEquals",
        "EachMemberIn" => "Fn::EachMemberIn",
        "RefAll" => "Fn::RefAll",
        "ValueOf" => "Fn::ValueOf",
        "ValueOfAll" => "Fn::ValueOfAll",
        _ => return None,
    })
}

fn yaml_to_json(yaml: serde_yaml::Value) -> Result<Value, ConvertProblem> {
    Ok(match yaml {
        serde_yaml::Value::Null => Value::Null,
        serde_yaml::Value::Bool(flag) => Value::Bool(flag),
        serde_yaml::Value::Number(number) => yaml_number(&number),
        serde_yaml::Value::String(text) => Value::String(text),
        serde_yaml::Value::Sequence(items) => Value::Array(
            items
                .into_iter()
                .map(yaml_to_json)
                .collect::<Result<_, _>>()?,
        ),
        serde_yaml::Value::Mapping(mapping) => {
            let mut object = Map::new();
            for (key, value) in mapping {
                object.insert(yaml_key(key)?, yaml_to_json(value)?);
            }
            Value::Object(object)
        }
        // The non-specific tag `!` only says "a plain string/sequence/mapping".
        serde_yaml::Value::Tagged(tagged) if is_non_specific(&tagged.tag) => {
            yaml_to_json(tagged.value)?
        }
        serde_yaml::Value::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let Some(key) = long_form(name) else {
                return Err(ConvertProblem {
                    message: format!("unknown intrinsic function tag `{tag}`"),
                    tag: Some(tag),
                });
            };
            let inner = yaml_to_json(tagged.value)?;
            let inner = match (key, inner) {
                // `!GetAtt Resource.Attribute` splits at the first dot; the attribute may hold dots.
                ("Fn::GetAtt", Value::String(dotted)) => match dotted.split_once('.') {
                    Some((resource, attribute)) => Value::Array(vec![
                        Value::String(resource.to_owned()),
                        Value::String(attribute.to_owned()),
                    ]),
                    None => Value::String(dotted),
                },
                (_, other) => other,
            };
            let mut object = Map::new();
            object.insert(key.to_owned(), inner);
            Value::Object(object)
        }
    })
}

fn yaml_number(number: &serde_yaml::Number) -> Value {
    if let Some(int) = number.as_i64() {
        Value::from(int)
    } else if let Some(uint) = number.as_u64() {
        Value::from(uint)
    } else {
        // NaN and infinities have no JSON number; keep their text so nothing is lost.
        number
            .as_f64()
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| Value::String(number.to_string()), Value::Number)
    }
}

/// True for the non-specific tag `!` (a tag with an empty name).
fn is_non_specific(tag: &serde_yaml::value::Tag) -> bool {
    tag.to_string().trim_start_matches('!').is_empty()
}

fn yaml_key(key: serde_yaml::Value) -> Result<String, ConvertProblem> {
    Ok(match key {
        serde_yaml::Value::Tagged(tagged) if is_non_specific(&tagged.tag) => {
            return yaml_key(tagged.value);
        }
        serde_yaml::Value::String(text) => text,
        serde_yaml::Value::Null => "null".to_owned(),
        serde_yaml::Value::Bool(flag) => flag.to_string(),
        serde_yaml::Value::Number(number) => number.to_string(),
        other => {
            return Err(ConvertProblem {
                message: "mapping key is not a scalar".to_owned(),
                tag: match other {
                    serde_yaml::Value::Tagged(tagged) => Some(tagged.tag.to_string()),
                    _ => None,
                },
            });
        }
    })
}

fn validate(file: &str, text: &str, root: &Value) -> Result<(), ParseError> {
    let structure = |key: Option<&str>, problem: String| {
        let position = key
            .and_then(|key| locate_leftmost_key(text, key))
            .unwrap_or(Position { line: 1, column: 1 });
        structure_error(file, position, problem)
    };
    // A resource id is located among the keys after `Resources` (a parameter may share it).
    let resource_structure = |logical_id: &str, problem: String| {
        let position = key_index(text)
            .get(logical_id)
            .copied()
            .unwrap_or(Position { line: 1, column: 1 });
        structure_error(file, position, problem)
    };
    let Some(root) = root.as_object() else {
        if root.is_null() {
            // An empty file, or one of only comments and blank lines.
            return Err(structure(None, "template is empty".to_owned()));
        }
        return Err(structure(None, "template is not a mapping".to_owned()));
    };
    let Some(resources) = root.get("Resources") else {
        return Err(structure(
            None,
            "template has no `Resources` section".to_owned(),
        ));
    };
    let Some(resources) = resources.as_object() else {
        return Err(structure(
            Some("Resources"),
            "`Resources` is not a mapping".to_owned(),
        ));
    };
    for section in [
        "Parameters",
        "Metadata",
        "Conditions",
        "Outputs",
        "Mappings",
    ] {
        if root.get(section).is_some_and(|value| !value.is_object()) {
            return Err(structure(
                Some(section),
                format!("`{section}` is not a mapping"),
            ));
        }
    }
    for (logical_id, body) in resources {
        let Some(body) = body.as_object() else {
            return Err(resource_structure(
                logical_id,
                format!("resource `{logical_id}` is not a mapping"),
            ));
        };
        match body.get("Type") {
            Some(Value::String(_)) => {}
            Some(_) => {
                return Err(resource_structure(
                    logical_id,
                    format!("resource `{logical_id}` has a non-string `Type`"),
                ));
            }
            None => {
                return Err(resource_structure(
                    logical_id,
                    format!("resource `{logical_id}` has no `Type`"),
                ));
            }
        }
        for section in ["Properties", "Metadata"] {
            if body.get(section).is_some_and(|value| !value.is_object()) {
                return Err(resource_structure(
                    logical_id,
                    format!("`{section}` of resource `{logical_id}` is not a mapping"),
                ));
            }
        }
    }
    Ok(())
}

/// Finds the line where `key` is used as a mapping key (`key:`, `"key":`), best effort.
pub fn locate_key(text: &str, key: &str) -> Option<Position> {
    key_occurrences(text, key).next()
}

/// The leftmost (then first) use of `key` as a mapping key: a top-level section or a resource
/// id sits shallower than a nested property of the same name (`Parameters` in the
/// `AWS::CloudFormation::Interface` metadata, `Bucket` in a bucket policy).
fn locate_leftmost_key(text: &str, key: &str) -> Option<Position> {
    key_occurrences(text, key).min_by_key(|position| position.column)
}

fn key_occurrences<'t>(text: &'t str, key: &str) -> impl Iterator<Item = Position> + 't {
    let candidates = [format!("\"{key}\""), format!("'{key}'"), key.to_owned()];
    text.lines().enumerate().flat_map(move |(line_idx, line)| {
        let mut found_here = Vec::new();
        for candidate in &candidates {
            let mut search_from = 0;
            while let Some(found) = line[search_from..].find(candidate.as_str()) {
                let start = search_from + found;
                let after = line[start + candidate.len()..].trim_start();
                let before = line[..start].chars().next_back();
                let boundary = before
                    .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '"' || c == '\''));
                if boundary && after.starts_with(':') {
                    found_here.push(Position {
                        line: line_idx + 1,
                        column: line[..start].chars().count() + 1,
                    });
                }
                search_from = start + candidate.len();
            }
        }
        found_here.sort_by_key(|position| position.column);
        found_here
    })
}

fn locate_text(text: &str, needle: &str) -> Option<Position> {
    text.lines().enumerate().find_map(|(line_idx, line)| {
        line.find(needle).map(|start| Position {
            line: line_idx + 1,
            column: line[..start].chars().count() + 1,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses a YAML/JSON fragment (no structural checks) and renders it as compact JSON.
    fn tree(text: &str) -> String {
        match parse_tree("t.yaml", text) {
            Ok(value) => value.to_string(),
            Err(error) => error.to_string(),
        }
    }

    fn check(short: &str, long: &str) {
        assert_eq!(tree(short), tree(long), "{short} should equal {long}");
    }

    fn error(text: &str) -> String {
        match parse_template("t.yaml", text) {
            Ok(_) => "ok".to_owned(),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn short_forms_equal_long_forms() {
        check("a: !Ref X", r#"{"a": {"Ref": "X"}}"#);
        check("a: !GetAtt X.Arn", r#"{"a": {"Fn::GetAtt": ["X", "Arn"]}}"#);
        check(
            "a: !GetAtt X.Endpoint.Address",
            r#"{"a": {"Fn::GetAtt": ["X", "Endpoint.Address"]}}"#,
        );
        check(
            "a: !GetAtt [X, Arn]",
            r#"{"a": {"Fn::GetAtt": ["X", "Arn"]}}"#,
        );
        check(
            "a: !Sub 'x-${AWS::Region}'",
            r#"{"a": {"Fn::Sub": "x-${AWS::Region}"}}"#,
        );
        check(
            "a: !Sub ['${A}', {A: !Ref B}]",
            r#"{"a": {"Fn::Sub": ["${A}", {"A": {"Ref": "B"}}]}}"#,
        );
        check(
            "a: !If [C, 1, !Ref AWS::NoValue]",
            r#"{"a": {"Fn::If": ["C", 1, {"Ref": "AWS::NoValue"}]}}"#,
        );
        check(
            "a: !Join ['', [a, !Ref B]]",
            r#"{"a": {"Fn::Join": ["", ["a", {"Ref": "B"}]]}}"#,
        );
        check(
            "a: !Select [0, !GetAZs '']",
            r#"{"a": {"Fn::Select": [0, {"Fn::GetAZs": ""}]}}"#,
        );
        check(
            "a: !Equals [!Ref A, x]",
            r#"{"a": {"Fn::Equals": [{"Ref": "A"}, "x"]}}"#,
        );
        check(
            "a: !ImportValue Shared",
            r#"{"a": {"Fn::ImportValue": "Shared"}}"#,
        );
        check(
            "a: !FindInMap [M, K, V]",
            r#"{"a": {"Fn::FindInMap": ["M", "K", "V"]}}"#,
        );
        check("a: !Base64 hi", r#"{"a": {"Fn::Base64": "hi"}}"#);
        check(
            "a: !Cidr [10.0.0.0/16, 4, 8]",
            r#"{"a": {"Fn::Cidr": ["10.0.0.0/16", 4, 8]}}"#,
        );
        check("a: !Split [',', a]", r#"{"a": {"Fn::Split": [",", "a"]}}"#);
        check(
            "a: !And [!Condition A, !Not [!Condition B]]",
            r#"{"a": {"Fn::And": [{"Condition": "A"}, {"Fn::Not": [{"Condition": "B"}]}]}}"#,
        );
        check(
            "a: !Or [!Condition A, !Condition B]",
            r#"{"a": {"Fn::Or": [{"Condition": "A"}, {"Condition": "B"}]}}"#,
        );
        check(
            "a: !Transform {Name: M}",
            r#"{"a": {"Fn::Transform": {"Name": "M"}}}"#,
        );
    }

    #[test]
    fn yaml_scalars_become_json_scalars() {
        assert_eq!(
            tree("a: 1\nb: true\nc: 1.5\nd: ~\n1: x"),
            r#"{"a":1,"b":true,"c":1.5,"d":null,"1":"x"}"#
        );
        assert_eq!(tree("a: .nan"), r#"{"a":".nan"}"#);
    }

    #[test]
    fn flow_yaml_starting_with_brace_is_accepted() {
        assert_eq!(tree("{a: !Ref B}"), r#"{"a":{"Ref":"B"}}"#);
    }

    #[test]
    fn errors_name_file_and_position() {
        assert_eq!(
            error("{\"Resources\": {\n  \"A\": }"),
            "t.yaml:2:8: invalid JSON"
        );
        assert_eq!(error("a: [1,\nb"), "t.yaml:3:1: invalid YAML");
        assert_eq!(
            error("Outputs: {}"),
            "t.yaml:1:1: template has no `Resources` section"
        );
        assert_eq!(error("- 1"), "t.yaml:1:1: template is not a mapping");
        assert_eq!(error(""), "t.yaml:1:1: template is empty");
        assert_eq!(error("# nothing\n\n"), "t.yaml:1:1: template is empty");
        assert_eq!(
            error("Resources: []"),
            "t.yaml:1:1: `Resources` is not a mapping"
        );
        assert_eq!(
            error("Resources:\n  Bucket:\n    Properties: {}"),
            "t.yaml:2:3: resource `Bucket` has no `Type`"
        );
        assert_eq!(
            error("Resources:\n  B:\n    Type: [1]"),
            "t.yaml:2:3: resource `B` has a non-string `Type`"
        );
        assert_eq!(
            error("Resources:\n  B: 1"),
            "t.yaml:2:3: resource `B` is not a mapping"
        );
        assert_eq!(
            error("Resources:\n  B: {Type: X, Properties: 1}"),
            "t.yaml:2:3: `Properties` of resource `B` is not a mapping"
        );
        assert_eq!(
            error("Resources:\n  B:\n    Type: !Bogus x"),
            "t.yaml:3:11: unknown intrinsic function tag `!Bogus`"
        );
        assert_eq!(error("Resources:\n  B: {Type: X}"), "ok");
    }

    #[test]
    fn resource_positions_are_found() {
        let tpl = parse_template(
            "t.json",
            "{\n \"Resources\": {\n  \"Bucket\": {\"Type\": \"AWS::S3::Bucket\"}\n }\n}",
        )
        .expect("valid template");
        assert_eq!(
            tpl.position_of("Bucket"),
            Some(Position { line: 3, column: 3 })
        );
        let tpl = parse_template(
            "t.yaml",
            "Resources:\n  BucketPolicy: {Type: X}\n  Bucket: {Type: Y}",
        )
        .expect("valid");
        assert_eq!(
            tpl.position_of("Bucket"),
            Some(Position { line: 3, column: 3 })
        );
        let tpl = parse_template(
            "t.yaml",
            "Parameters:\n  Bucket: {Type: String}\nResources:\n  Bucket: {Type: AWS::S3::Bucket}",
        )
        .expect("valid");
        assert_eq!(
            tpl.position_of("Bucket"),
            Some(Position { line: 4, column: 3 })
        );
        let tpl =
            parse_template("t.yaml", "Resources: {A: {Type: X}, 'B': {Type: Y}}").expect("valid");
        assert_eq!(
            tpl.position_of("B"),
            Some(Position {
                line: 1,
                column: 27
            })
        );
    }

    #[test]
    fn resource_ids_win_over_property_keys_of_the_same_name() {
        let text = "Resources:\n  Policy:\n    Type: AWS::S3::BucketPolicy\n    Properties:\n      Bucket: !Ref Bucket\n  Bucket:\n    Type: AWS::S3::Bucket\n";
        let tpl = parse_template("t.yaml", text).expect("valid");
        assert_eq!(
            tpl.position_of("Bucket"),
            Some(Position { line: 6, column: 3 })
        );
    }

    #[test]
    fn index_finds_types_and_references() {
        let tpl = parse_template(
            "t.yaml",
            "Resources:\n  B: {Type: AWS::S3::Bucket}\n  P: {Type: AWS::S3::BucketPolicy, Properties: {Bucket: !Ref B}}\n  F: {Type: X, Properties: {A: !GetAtt B.Arn, S: !Sub '${B.Arn}/${P}'}}",
        )
        .expect("valid");
        assert_eq!(tpl.ids_of_type("AWS::S3::Bucket"), ["B"]);
        assert_eq!(tpl.referrers_of("B"), ["P", "F"]);
        assert_eq!(tpl.referrers_of("P"), ["F"]);
        assert!(tpl.referrers_of("F").is_empty());
    }

    #[test]
    fn regression_non_specific_tag_is_ignored() {
        check(r#"a: {! "Ref": X}"#, r#"{"a": {"Ref": "X"}}"#);
        check("a: ! x", r#"{"a": "x"}"#);
        check("a: ! [x]", r#"{"a": ["x"]}"#);
    }

    #[test]
    fn regression_merge_keys_are_applied() {
        check(
            "b: &b {Type: T, P: 1}\nc: {<<: *b, P: 2}",
            r#"{"b": {"Type": "T", "P": 1}, "c": {"P": 2, "Type": "T"}}"#,
        );
        check("b: &b [x]\nc: *b", r#"{"b": ["x"], "c": ["x"]}"#);
        assert_eq!(error("a: {<<: 1}"), "t.yaml:1:1: invalid YAML");
    }

    #[test]
    fn regression_yaml_dates_and_versions_stay_strings() {
        assert_eq!(
            tree(
                "AWSTemplateFormatVersion: 2010-09-09\nVersion: 2012-10-17\nA: 2010-09-09T10:00:00Z"
            ),
            r#"{"AWSTemplateFormatVersion":"2010-09-09","Version":"2012-10-17","A":"2010-09-09T10:00:00Z"}"#
        );
    }

    #[test]
    fn regression_foreach_resources_are_expanded_and_located() {
        let text = "Transform: AWS::LanguageExtensions\nResources:\n  Other: {Type: X}\n  Fn::ForEach::Buckets:\n    - Name\n    - [a, b]\n    - 'Bucket${Name}': {Type: AWS::S3::Bucket}\n";
        let tpl = parse_template("t.yaml", text).expect("valid");
        assert_eq!(tpl.ids_of_type("AWS::S3::Bucket"), ["Bucketa", "Bucketb"]);
        assert_eq!(
            tpl.position_of("Bucketb"),
            Some(Position { line: 4, column: 3 })
        );
        assert_eq!(
            error("Resources:\n  A: {Type: X}\n  Fn::ForEach::L: [N, [a]]"),
            "t.yaml:3:3: `Fn::ForEach::L` is not a list of identifier, collection and fragment"
        );
    }

    #[test]
    fn regression_byte_order_mark_is_ignored() {
        let tpl = parse_template(
            "t.json",
            "\u{feff}{\"Resources\": {\"B\": {\"Type\": \"X\"}}}",
        )
        .expect("valid");
        assert_eq!(
            tpl.position_of("B"),
            Some(Position {
                line: 1,
                column: 16
            })
        );
        assert_eq!(
            error("\u{feff}{\"Resources\": {\n  \"A\": }"),
            "t.yaml:2:8: invalid JSON"
        );
    }

    #[test]
    fn regression_structure_errors_point_at_the_section_or_resource_not_a_property() {
        assert_eq!(
            error(
                "Metadata:\n  AWS::CloudFormation::Interface:\n    ParameterGroups:\n      - Parameters: [A]\nParameters: 1\nResources: {}"
            ),
            "t.yaml:5:1: `Parameters` is not a mapping"
        );
        assert_eq!(
            error(
                "Resources:\n  P:\n    Type: X\n    Properties:\n      Bucket: !Ref Bucket\n  Bucket:\n    Type: Y\n    Properties: 1"
            ),
            "t.yaml:6:3: `Properties` of resource `Bucket` is not a mapping"
        );
        assert_eq!(
            error("Parameters:\n  B: {Type: String}\nResources:\n  B: 1"),
            "t.yaml:4:3: resource `B` is not a mapping"
        );
    }

    fn error_in(file: &str, text: &str) -> String {
        match parse_template(file, text) {
            Ok(_) => "ok".to_owned(),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn regression_json_is_strict() {
        // A trailing comma was accepted through the YAML fallback.
        assert_eq!(
            error("{\"Resources\": {\"B\": {\"Type\": \"X\",}}}"),
            "t.yaml:1:34: invalid JSON"
        );
        assert_eq!(
            error("{\"Resources\": {\"B\": {\"Type\": \"X\"}},\n}"),
            "t.yaml:2:1: invalid JSON"
        );
        // Duplicate keys silently kept the last one.
        assert_eq!(
            error(
                "{\"Resources\": {\n \"B\": {\"Type\": \"AWS::S3::Bucket\"},\n \"B\": {\"Type\": \"X\"}}}"
            ),
            "t.yaml:3:4: duplicate key `B` (JSON keeps only the last one)"
        );
        // A `.json` file is JSON even when it does not start like JSON.
        assert_eq!(
            error_in("t.json", "Resources: {B: {Type: X}}"),
            "t.json:1:1: invalid JSON"
        );
        assert_eq!(
            error_in("T.JSON", "{Resources: {B: {Type: X}}}"),
            "T.JSON:1:2: invalid JSON"
        );
        // Flow-style YAML is still YAML.
        assert_eq!(error_in("t.yaml", "{Resources: {B: {Type: X}}}"), "ok");
        // YAML keeps refusing duplicates.
        assert!(error("Resources:\n  B: {Type: X}\n  B: {Type: Y}").contains("invalid YAML"));
    }

    #[test]
    fn regression_nesting_is_bounded_with_a_position() {
        let deep_json = format!(
            "{{\"Resources\": {{\"B\": {{\"Type\": \"X\", \"Properties\": {{\"P\": {}1{}}}}}}}}}",
            "[".repeat(80_000),
            "]".repeat(80_000)
        );
        assert_eq!(
            error_in("t.json", &deep_json),
            "t.json:1:115: nesting deeper than 64 levels"
        );
        let deep_yaml = format!(
            "Resources:\n  B:\n    Type: X\n    Properties:\n      P: {}1{}\n",
            "[".repeat(80_000),
            "]".repeat(80_000)
        );
        assert_eq!(
            error_in("t.yaml", &deep_yaml),
            "t.yaml:5:70: nesting deeper than 64 levels"
        );
        // Indentless block sequences are not seen by the pre-scan; the tree check finds them.
        let mut indentless = "Resources:\n  B:\n    Type: X\n    Properties:\n".to_owned();
        for level in 0..35 {
            indentless.push_str(&format!(
                "{}k{level}:\n{}- ",
                " ".repeat(6 + 2 * level),
                " ".repeat(6 + 2 * level)
            ));
            indentless.push('\n');
        }
        let message = error_in("t.yaml", &indentless);
        assert_eq!(
            message,
            "t.yaml:2:3: nesting deeper than 64 levels (at `Resources.B.Properties.k0...`)"
        );
        // Our own trees are held to the same limit.
        let mut value = serde_json::json!(1);
        for _ in 0..70 {
            value = serde_json::json!([value]);
        }
        let root =
            serde_json::json!({"Resources": {"B": {"Type": "X", "Properties": {"P": value}}}});
        assert_eq!(
            ParsedTemplate::from_value("t.json", root)
                .map(|_| ())
                .map_err(|error| error.to_string()),
            Err(
                "t.json:1:1: nesting deeper than 64 levels (at `Resources.B.Properties.P...`)"
                    .to_owned()
            )
        );
    }

    #[test]
    fn regression_bytes_and_characters_are_named_with_a_position() {
        let bytes_error = |bytes: &[u8]| match parse_template_bytes("t.yaml", bytes) {
            Ok(_) => "ok".to_owned(),
            Err(error) => error.to_string(),
        };
        assert_eq!(
            bytes_error(b"Resources:\n  B: {Type: \xff\xfeX}"),
            "t.yaml:2:13: invalid UTF-8 (byte 0xFF); templates must be UTF-8 text"
        );
        assert_eq!(
            bytes_error(
                "Resources:\n  é: {Type: X"
                    .as_bytes()
                    .iter()
                    .chain(b"\xc3}")
                    .copied()
                    .collect::<Vec<u8>>()
                    .as_slice()
            ),
            "t.yaml:2:14: invalid UTF-8 (byte 0xC3); templates must be UTF-8 text"
        );
        assert_eq!(
            bytes_error(b"Resources:\n  B: {Type: X\xc3}"),
            "t.yaml:2:14: invalid UTF-8 (byte 0xC3); templates must be UTF-8 text"
        );
        assert_eq!(
            error("Resources:\n  B:\n    Type: AWS::S3::Bu\0cket\n"),
            "t.yaml:3:22: NUL byte (U+0000) is not allowed in a template"
        );
        assert_eq!(
            error_in("t.json", "{\"Resources\": {\"B\": {\"Type\": \"X\0\"}}}"),
            "t.json:1:32: NUL byte (U+0000) is not allowed in a template"
        );
        assert_eq!(
            error("Resources:\n  B: {Type: \"X\u{1b}[2J\"}"),
            "t.yaml:2:15: control character U+001B is not allowed in a template"
        );
    }

    #[test]
    fn regression_core_schema_tags_are_refused() {
        assert_eq!(
            error("Resources:\n  B:\n    Type: !!binary QVdTOjpTMzo6QnVja2V0\n"),
            "t.yaml:3:11: YAML tag `!!binary` is not supported in CloudFormation templates"
        );
        assert_eq!(
            error("Resources:\n  B:\n    Type: !!str AWS::S3::Bucket\n"),
            "ok"
        );
    }

    #[test]
    fn regression_hostile_ids_are_escaped_in_errors() {
        assert_eq!(
            error_in(
                "t.json",
                "{\"Resources\": {\"B\\u001b[2J\\r\\n0 error(s)\": 1}}"
            ),
            "t.json:1:1: resource `B\\u{1b}[2J\\r\\n0 error(s)` is not a mapping"
        );
    }

    #[test]
    fn regression_minified_json_positions_are_exact() {
        let text = r#"{"Description":"a \"Bucket\": {","Resources":{"P":{"Type":"AWS::S3::BucketPolicy","Properties":{"Bucket":{"Ref":"Bucket"}}},"Bucket":{"Type":"AWS::S3::Bucket"}},"Outputs":{"P":{"Value":1}}}"#;
        let tpl = parse_template("t.json", text).expect("valid");
        let column_of = |needle: &str| text.find(needle).map(|idx| idx + 1);
        assert_eq!(
            tpl.position_of("Bucket").map(|position| position.column),
            column_of(r#""Bucket":{"Type""#)
        );
        assert_eq!(
            tpl.position_of("P").map(|position| position.column),
            column_of(r#""P":{"Type""#)
        );
    }

    #[test]
    fn columns_count_characters_from_the_last_offset() {
        fn check(text: &str, line_start: usize, offsets: &[usize]) {
            let mut columns = Columns::default();
            for &at in offsets {
                let expected = text[line_start..at].chars().count() + 1;
                assert_eq!(
                    columns.at(text, line_start, at),
                    expected,
                    "{text:?} at {at}"
                );
            }
        }
        check("abc", 0, &[0, 1, 3]);
        check("é:ü:x", 0, &[5, 3, 0, 6]);
        check("a\n«b»:c", 2, &[2, 7, 4, 9]);
        check("x\ny\n", 0, &[1]);
        // A new line start resets the count.
        let mut columns = Columns::default();
        assert_eq!(columns.at("ééé\néé", 0, 6), 4);
        assert_eq!(columns.at("ééé\néé", 7, 9), 2);
    }

    #[test]
    fn minified_json_columns_count_characters() {
        let text = r#"{"Description":"été ✓","Resources":{"Ünïcode":{"Type":"AWS::S3::Bucket"},"B":{"Type":"AWS::S3::Bucket"}}}"#;
        let tpl = parse_template("t.json", text).expect("valid");
        let column_of = |needle: &str| text.find(needle).map(|idx| text[..idx].chars().count() + 1);
        assert_eq!(
            tpl.position_of("B").map(|position| position.column),
            column_of(r#""B":{"#)
        );
        assert_eq!(
            tpl.position_of("Ünïcode").map(|position| position.column),
            column_of(r#""Ünïcode""#)
        );
    }

    proptest::proptest! {
        #[test]
        fn json_key_scanner_never_panics(text in "(\\{|\\}|\\[|\\]|\"|\\\\|Resources|R|: |\n|é|, ){0,80}") {
            let _ = json_resource_keys(&text);
        }
    }
}
