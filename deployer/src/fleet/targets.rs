//! The targets file of `deployer fleet`: one row per account, `account_id,region[,role_name
//! [,email]]`, an optional header naming those columns, blank lines and `#` comments allowed.
//! Every error names the file, the line and the field.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The role assumed when a row names none (what AWS Organizations creates in new accounts).
pub const DEFAULT_ROLE: &str = "OrganizationAccountAccessRole";
/// Largest targets file read.
pub const MAX_BYTES: u64 = 1024 * 1024;
/// Most targets in one file.
pub const MAX_TARGETS: usize = 1000;

/// One account to deploy to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// 12-digit account id.
    pub account: String,
    /// Region of the deployment.
    pub region: String,
    /// Role assumed in the account.
    pub role: String,
    /// The participant's email (for `fleet users`).
    pub email: Option<String>,
    /// Line of the file it is on.
    pub line: u64,
}

impl Target {
    /// `account/region`, the target's name in progress lines, the table and the state file.
    pub fn key(&self) -> String {
        format!("{}/{}", self.account, self.region)
    }

    /// The role's ARN (the `aws` partition, as every region the deployer accepts).
    pub fn role_arn(&self) -> String {
        format!("arn:aws:iam::{}:role/{}", self.account, self.role)
    }
}

/// Why a targets file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TargetsError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// It is larger than [`MAX_BYTES`].
    #[error("{path}: larger than {MAX_BYTES} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// A row is not CSV.
    #[error("{path}:{line}: invalid CSV: {message}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// Its line.
        line: u64,
        /// The parser's message.
        message: String,
    },
    /// A field is invalid.
    #[error("{path}:{line}: {field}: {message}")]
    Field {
        /// The file.
        path: PathBuf,
        /// Its line.
        line: u64,
        /// `account_id`, `region`, `role_name`, `email`.
        field: &'static str,
        /// Why.
        message: String,
    },
    /// Two rows name the same account and region.
    #[error("{path}:{line}: {key} is already on line {first}")]
    Duplicate {
        /// The file.
        path: PathBuf,
        /// The second line.
        line: u64,
        /// `account/region`.
        key: String,
        /// The first line.
        first: u64,
    },
    /// More than [`MAX_TARGETS`] rows.
    #[error("{path}: more than {MAX_TARGETS} targets")]
    TooMany {
        /// The file.
        path: PathBuf,
    },
    /// No row.
    #[error("{path}: no targets (rows are account_id,region[,role_name[,email]])")]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

const COLUMNS: [&str; 4] = ["account_id", "region", "role_name", "email"];

/// Reads and checks the targets file at `path`.
pub fn read(path: &Path) -> Result<Vec<Target>, TargetsError> {
    let io = |source| TargetsError::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(TargetsError::TooLarge {
            path: path.to_owned(),
        });
    }
    parse(path, &bytes)
}

/// Parses the targets in `bytes` (named `path` in errors).
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Vec<Target>, TargetsError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let mut targets: Vec<Target> = Vec::new();
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    let mut first_row = true;
    for record in reader.records() {
        let record = record.map_err(|err| TargetsError::Csv {
            path: path.to_owned(),
            line: err
                .position()
                .map_or(0, |position| line_at(bytes, position)),
            message: err.to_string(),
        })?;
        let line = record
            .position()
            .map_or(0, |position| line_at(bytes, position));
        // Comments are skipped here rather than by the reader, whose line numbers would then
        // not count them.
        if record.iter().all(str::is_empty)
            || record.get(0).is_some_and(|cell| cell.starts_with('#'))
        {
            continue;
        }
        let field_error = |field: &'static str, message: String| TargetsError::Field {
            path: path.to_owned(),
            line,
            field,
            message,
        };
        if std::mem::take(&mut first_row)
            && record
                .get(0)
                .is_some_and(|cell| cell.eq_ignore_ascii_case(COLUMNS[0]))
        {
            for (index, cell) in record.iter().enumerate() {
                if COLUMNS
                    .get(index)
                    .is_none_or(|name| !cell.eq_ignore_ascii_case(name))
                {
                    return Err(field_error(
                        "header",
                        format!(
                            "column {} is `{cell}`; the columns are {}",
                            index + 1,
                            COLUMNS.join(",")
                        ),
                    ));
                }
            }
            continue;
        }
        if record.len() > COLUMNS.len() {
            return Err(field_error(
                "row",
                format!("{} fields; a row is {}", record.len(), COLUMNS.join(",")),
            ));
        }
        let account = record.get(0).unwrap_or_default();
        if account.len() != 12 || !account.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(field_error(
                "account_id",
                format!("`{}` is not a 12-digit account id", shown(account)),
            ));
        }
        let region = record.get(1).unwrap_or_default();
        if region.is_empty() {
            return Err(field_error("region", "missing".to_owned()));
        }
        stacks::config::check_region(region)
            .map_err(|err| field_error("region", err.to_string()))?;
        let role = match record.get(2).unwrap_or_default() {
            "" => DEFAULT_ROLE,
            role => role,
        };
        // IAM role names: 1-64 of letters, digits and +=,.@_- (paths are not supported).
        if role.len() > 64
            || !role
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || b"+=,.@_-".contains(&byte))
        {
            return Err(field_error(
                "role_name",
                format!(
                    "`{}` is not an IAM role name (1-64 letters, digits and +=,.@_-)",
                    shown(role)
                ),
            ));
        }
        let email = match record.get(3).unwrap_or_default() {
            "" => None,
            email => Some(
                crate::cognito::Email::parse(email)
                    .map_err(|why| field_error("email", why))?
                    .as_str()
                    .to_owned(),
            ),
        };
        let target = Target {
            account: account.to_owned(),
            region: region.to_owned(),
            role: role.to_owned(),
            email,
            line,
        };
        if let Some(first) = seen.insert(target.key(), line) {
            return Err(TargetsError::Duplicate {
                path: path.to_owned(),
                line,
                key: target.key(),
                first,
            });
        }
        targets.push(target);
        if targets.len() > MAX_TARGETS {
            return Err(TargetsError::TooMany {
                path: path.to_owned(),
            });
        }
    }
    if targets.is_empty() {
        return Err(TargetsError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(targets)
}

/// The 1-based line of the record at `position` (counted from its byte offset: the reader's own
/// line count leaves out blank lines, and its offset is where the blank lines before it start).
fn line_at(bytes: &[u8], position: &csv::Position) -> u64 {
    let mut end = usize::try_from(position.byte()).map_or(bytes.len(), |at| at.min(bytes.len()));
    while bytes
        .get(end)
        .is_some_and(|byte| matches!(byte, b'\n' | b'\r'))
    {
        end += 1;
    }
    bytes[..end].iter().filter(|&&byte| byte == b'\n').count() as u64 + 1
}

/// A field as shown in an error: at most 40 characters.
fn shown(value: &str) -> String {
    let mut text: String = value.chars().take(40).collect();
    if value.chars().count() > 40 {
        text.push_str("...");
    }
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Result<Vec<Target>, String> {
        parse(Path::new("targets.csv"), text.as_bytes()).map_err(|err| err.to_string())
    }

    #[test]
    fn rows_with_header_comments_and_defaults() {
        let targets = parsed(
            "account_id,region,role_name,email\n# workshop 1\n111111111111,us-east-1\n\n222222222222, eu-west-1 ,Admin,p2@example.com\n",
        )
        .unwrap();
        assert_eq!(targets.len(), 2);
        assert_eq!(targets[0].role, DEFAULT_ROLE);
        assert_eq!(targets[0].line, 3);
        assert_eq!(targets[0].key(), "111111111111/us-east-1");
        assert_eq!(
            targets[1].role_arn(),
            "arn:aws:iam::222222222222:role/Admin"
        );
        assert_eq!(targets[1].email.as_deref(), Some("p2@example.com"));
        assert_eq!(targets[1].line, 5);
    }

    #[test]
    fn errors_name_file_line_and_field() {
        for (text, expected) in [
            (
                "111111111111,us-east-1\n12345,us-east-1\n",
                "targets.csv:2: account_id: `12345` is not a 12-digit account id",
            ),
            ("111111111111\n", "targets.csv:1: region: missing"),
            (
                "111111111111,us-east-1,bad role\n",
                "targets.csv:1: role_name: `bad role` is not an IAM role name (1-64 letters, digits and +=,.@_-)",
            ),
            (
                "111111111111,us-east-1\n111111111111,us-east-1\n",
                "targets.csv:2: 111111111111/us-east-1 is already on line 1",
            ),
            (
                "account_id,zone\n",
                "targets.csv:1: header: column 2 is `zone`; the columns are account_id,region,role_name,email",
            ),
            (
                "111111111111,us-east-1,R,a@example.com,extra\n",
                "targets.csv:1: row: 5 fields; a row is account_id,region,role_name,email",
            ),
            (
                "\n# nothing\n",
                "targets.csv: no targets (rows are account_id,region[,role_name[,email]])",
            ),
        ] {
            assert_eq!(parsed(text).unwrap_err(), expected, "{text:?}");
        }
        let region = parsed("111111111111,xx-fake-1\n").unwrap_err();
        assert!(region.starts_with("targets.csv:1: region: "), "{region}");
        let email = parsed("111111111111,us-east-1,,not-an-email\n").unwrap_err();
        assert!(email.starts_with("targets.csv:1: email: "), "{email}");
    }
}
