//! Dataset readers: JSON Lines and CSV files streamed record by record.
//!
//! Invariants: files are read lazily, one line (JSONL) or one row (CSV) at a time, so memory
//! does not grow with the dataset; fields keep their file order; every error names the file and
//! the 1-based line (and the field when one is involved). A bad line is an error item in the
//! stream, not the end of it, so one broken record fails alone. Values are turned into text the
//! way Python's `str()` prints them, because that is what fmeval and the original app did.
//!
//! Accepted input: UTF-8 with or without a byte-order mark, LF or CRLF line ends. JSONL: one
//! object per line; blank (whitespace-only) lines are skipped wherever they are, so a stray
//! empty line does not stop a long run (fmeval fails on one in the middle). CSV: the first row
//! holds the field names, every value is a string.
//!
//! Limits: a record (JSONL line, CSV row) larger than the dataset's record limit
//! (the record size limit, `--max-record-size` in the CLI) fails alone in JSONL (the rest of its line is skipped unread into
//! memory) and ends a CSV file, so memory stays bounded whatever the file holds. Only regular
//! files are accepted, because a dataset is read more than once (fields, count, records); and a
//! run checks with [`Dataset::fingerprint`] that the file did not change while it was read.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use serde_json::{Map, Value};

use fmeval_scoring::metrics::normalize::is_py_whitespace;
use fmeval_scoring::python::python_str;

use crate::limits::{ByteSize, DEFAULT_MAX_RECORD};

const BOM: &[u8] = b"\xef\xbb\xbf";

/// How many valid JSON Lines records [`Dataset::field_names`] looks at. Enough to see past
/// broken or sparse first lines, small enough to stay quick on a 100,000-record file.
pub const FIELD_SCAN_RECORDS: usize = 1000;

/// One record of a dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// 0-based position of the record in the dataset (blank lines and the CSV header do not
    /// count).
    pub index: usize,
    /// 1-based line in the file where the record starts.
    pub line: usize,
    /// The record's fields, in file order.
    pub fields: Map<String, Value>,
}

impl Record {
    /// A field as text, the way Python's `str()` prints it (e.g. for the `category` field);
    /// `None` when the record has no such field.
    pub fn text(&self, field: &str) -> Option<Cow<'_, str>> {
        self.fields.get(field).map(python_str)
    }
}

/// A dataset problem; every variant names the file and, where it applies, the line and field.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The file could not be opened or read.
    #[error("{}: cannot read the dataset", .path.display())]
    Io {
        /// The dataset file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// A line is not valid UTF-8.
    #[error("{}:{line}: not valid UTF-8 (byte {byte} of the line)", .path.display())]
    Utf8 {
        /// The dataset file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 0-based record position, when the line is a record.
        index: Option<usize>,
        /// 1-based byte offset of the first invalid byte within the line.
        byte: usize,
    },
    /// A JSONL line is not valid JSON.
    #[error("{}:{line}: invalid JSON at column {column}: {reason}", .path.display())]
    Json {
        /// The dataset file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 0-based record position.
        index: usize,
        /// 1-based column reported by the JSON parser.
        column: usize,
        /// What the parser expected, without its own position (it counts lines within the
        /// line, so it would always say `line 1`), e.g. `EOF while parsing a string`.
        reason: String,
    },
    /// A JSONL line holds valid JSON that is not an object.
    #[error("{}:{line}: expected a JSON object, found {found}", .path.display())]
    NotObject {
        /// The dataset file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 0-based record position.
        index: usize,
        /// What was found (`an array`, `a string`, ...).
        found: &'static str,
    },
    /// A CSV row could not be parsed.
    #[error("{}:{line}: invalid CSV", .path.display())]
    Csv {
        /// The dataset file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 0-based record position, when known.
        index: Option<usize>,
        /// The CSV parser's error.
        #[source]
        source: csv::Error,
    },
    /// A CSV row has more or fewer values than the header has names.
    #[error("{}:{line}: {found} values, the header has {expected}", .path.display())]
    FieldCount {
        /// The dataset file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 0-based record position.
        index: usize,
        /// Values in the row.
        found: usize,
        /// Names in the header.
        expected: usize,
    },
    /// Two CSV columns have the same name.
    #[error("{}:{line}: duplicate column `{field}`", .path.display())]
    DuplicateColumn {
        /// The dataset file.
        path: PathBuf,
        /// 1-based line of the header.
        line: usize,
        /// The repeated column name.
        field: String,
    },
    /// A field needed by the evaluation is missing from a record.
    #[error("{}:{line}: field `{field}` is missing", .path.display())]
    MissingField {
        /// The dataset file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 0-based record position.
        index: usize,
        /// The missing field.
        field: String,
    },
    /// The dataset is not a regular file (a FIFO, `/dev/stdin` on a terminal or pipe, a device).
    #[error("{}: is {kind}, not a regular file; a dataset is read more than once (to check its fields, count and stream its records), so save it to a file first (e.g. `cat > data.jsonl`) and pass that", .path.display())]
    NotRegular {
        /// The dataset path.
        path: PathBuf,
        /// What it is (`a FIFO`, `a character device`, ...).
        kind: &'static str,
    },
    /// A record is larger than the record limit.
    #[error("{}:{line}: the record is larger than {limit}, the largest record the evaluation reads (raise that limit if such records are expected)", .path.display())]
    RecordTooLarge {
        /// The dataset file.
        path: PathBuf,
        /// 1-based line where the record starts.
        line: usize,
        /// 0-based record position (JSONL: the record fails alone; CSV: `None`, the file ends).
        index: Option<usize>,
        /// The limit.
        limit: ByteSize,
    },
    /// A JSONL line starts with a byte-order mark, which only belongs at the start of a file.
    #[error("{}:{line}: a byte-order mark (U+FEFF) in the middle of the file, where files were probably joined (e.g. with `cat`); remove it", .path.display())]
    StrayBom {
        /// The dataset file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 0-based record position.
        index: usize,
    },
    /// The file changed (size, modification time or identity) while a run read it.
    #[error("{}: the dataset changed while the run read it (it was {was}, it is now {now}); the results do not match any one version of the file", .path.display())]
    Changed {
        /// The dataset file.
        path: PathBuf,
        /// What it was at the start.
        was: String,
        /// What it is now.
        now: String,
    },
    /// A field holds a value that cannot be used as a reference answer.
    #[error("{}:{line}: field `{field}` {problem}", .path.display())]
    InvalidReference {
        /// The dataset file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 0-based record position.
        index: usize,
        /// The reference field.
        field: String,
        /// What is wrong, e.g. `is null`.
        problem: String,
    },
}

impl DatasetError {
    /// The 0-based position of the record this error belongs to, when it belongs to one record
    /// (the runner records it as a failed record and goes on); `None` for file-level errors.
    pub fn record_index(&self) -> Option<usize> {
        match self {
            Self::Json { index, .. }
            | Self::NotObject { index, .. }
            | Self::MissingField { index, .. }
            | Self::FieldCount { index, .. }
            | Self::InvalidReference { index, .. }
            | Self::StrayBom { index, .. } => Some(*index),
            Self::Utf8 { index, .. }
            | Self::Csv { index, .. }
            | Self::RecordTooLarge { index, .. } => *index,
            Self::Io { .. }
            | Self::DuplicateColumn { .. }
            | Self::NotRegular { .. }
            | Self::Changed { .. } => None,
        }
    }

    /// The 1-based line this error points at, if any.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::Io { .. } | Self::NotRegular { .. } | Self::Changed { .. } => None,
            Self::RecordTooLarge { line, .. } | Self::StrayBom { line, .. } => Some(*line),
            Self::Utf8 { line, .. }
            | Self::Json { line, .. }
            | Self::NotObject { line, .. }
            | Self::Csv { line, .. }
            | Self::FieldCount { line, .. }
            | Self::DuplicateColumn { line, .. }
            | Self::MissingField { line, .. }
            | Self::InvalidReference { line, .. } => Some(*line),
        }
    }
}

/// The file formats we read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line.
    JsonLines,
    /// Comma-separated values with a header row.
    Csv,
}

/// A dataset file; cheap to keep, every call to [`Dataset::records`] reads it afresh.
#[derive(Debug, Clone)]
pub struct Dataset {
    path: PathBuf,
    format: Format,
    max_record: ByteSize,
}

/// What identifies one version of a dataset file: size, modification time, device and inode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    len: u64,
    modified: Option<SystemTime>,
    dev: u64,
    ino: u64,
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} bytes", self.len)?;
        if let Some(modified) = self.modified {
            write!(f, ", modified {}", httpdate::fmt_http_date(modified))?;
        }
        write!(f, ", inode {}", self.ino)
    }
}

/// What a non-regular file is, for [`DatasetError::NotRegular`].
fn file_kind(file_type: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO (a named pipe, or a process substitution such as `<(...)`)"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

impl Dataset {
    /// Opens a dataset. The format comes from the extension (`.jsonl`, `.json`, `.ndjson` → JSON
    /// Lines, `.csv` → CSV), otherwise from the content (a first non-blank character `{` means
    /// JSON Lines, anything else CSV).
    pub fn open(path: &Path) -> Result<Dataset, DatasetError> {
        let io_error = |source| DatasetError::Io {
            path: path.to_path_buf(),
            source,
        };
        // Checked before opening: opening a FIFO without a writer would block.
        let file_type = std::fs::metadata(path).map_err(io_error)?.file_type();
        if !file_type.is_file() {
            return Err(DatasetError::NotRegular {
                path: path.to_path_buf(),
                kind: file_kind(file_type),
            });
        }
        let mut file = File::open(path).map_err(io_error)?;
        let extension = path
            .extension()
            .and_then(|extension| extension.to_str())
            .map(str::to_ascii_lowercase);
        let format = match extension.as_deref() {
            Some("jsonl" | "json" | "ndjson") => Format::JsonLines,
            Some("csv") => Format::Csv,
            _ => {
                let mut head = Vec::with_capacity(4096);
                (&mut file)
                    .take(4096)
                    .read_to_end(&mut head)
                    .map_err(io_error)?;
                sniff_format(&head)
            }
        };
        Ok(Dataset {
            path: path.to_path_buf(),
            format,
            max_record: DEFAULT_MAX_RECORD,
        })
    }

    /// The largest record read.
    pub fn max_record_size(&self) -> ByteSize {
        self.max_record
    }

    /// The same dataset with records limited to `limit` bytes (default
    /// [`DEFAULT_MAX_RECORD`]).
    pub fn with_max_record_size(mut self, limit: ByteSize) -> Dataset {
        self.max_record = limit;
        self
    }

    /// The current version of the file, to compare with [`Dataset::check_unchanged`] after
    /// reading it.
    pub fn fingerprint(&self) -> Result<Fingerprint, DatasetError> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(&self.path).map_err(|source| DatasetError::Io {
            path: self.path.clone(),
            source,
        })?;
        Ok(Fingerprint {
            len: meta.len(),
            modified: meta.modified().ok(),
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }

    /// Fails with [`DatasetError::Changed`] when the file is no longer the version `was`
    /// (truncated, appended, rewritten or replaced).
    pub fn check_unchanged(&self, was: &Fingerprint) -> Result<(), DatasetError> {
        let now = self.fingerprint()?;
        if now == *was {
            return Ok(());
        }
        Err(DatasetError::Changed {
            path: self.path.clone(),
            was: was.to_string(),
            now: now.to_string(),
        })
    }

    /// The file's format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The dataset file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Streams the records. Bad lines come out as errors in the stream; reading goes on after
    /// them. Only opening the file fails the call itself.
    pub fn records(&self) -> Result<Records, DatasetError> {
        let file = File::open(&self.path).map_err(|source| DatasetError::Io {
            path: self.path.clone(),
            source,
        })?;
        Ok(Records::from_reader_limited(
            file,
            self.format,
            &self.path,
            self.max_record,
        ))
    }

    /// The field names: the CSV header, or, for JSON Lines, the keys of the first
    /// [`FIELD_SCAN_RECORDS`] valid records in order of first appearance. Lines that are not
    /// valid records are skipped: they fail alone in the run, and a broken first line or a
    /// first record that lacks a field must not hide the fields of the others.
    pub fn field_names(&self) -> Result<Vec<String>, DatasetError> {
        match self.format {
            Format::Csv => {
                let file = File::open(&self.path).map_err(|source| DatasetError::Io {
                    path: self.path.clone(),
                    source,
                })?;
                let mut rows = CsvRows::new(
                    Box::new(file),
                    Arc::from(self.path.as_path()),
                    self.max_record,
                );
                rows.headers().map(<[String]>::to_vec)
            }
            Format::JsonLines => {
                let mut names: Vec<String> = Vec::new();
                let mut n_valid = 0;
                for item in self.records()? {
                    let record = match item {
                        Ok(record) => record,
                        Err(error) if error.record_index().is_some() => continue,
                        Err(error) => return Err(error),
                    };
                    for name in record.fields.keys() {
                        if !names.contains(name) {
                            names.push(name.clone());
                        }
                    }
                    n_valid += 1;
                    if n_valid == FIELD_SCAN_RECORDS {
                        break;
                    }
                }
                Ok(names)
            }
        }
    }

    /// Counts the records without keeping them (JSONL lines are not parsed, so a broken line
    /// still counts as the record it would have been).
    pub fn count(&self) -> Result<usize, DatasetError> {
        match self.format {
            Format::Csv => {
                let mut n_records = 0;
                for record in self.records()? {
                    match record {
                        Ok(_) => n_records += 1,
                        Err(error) if error.record_index().is_some() => n_records += 1,
                        Err(error) => return Err(error),
                    }
                }
                Ok(n_records)
            }
            Format::JsonLines => {
                let file = File::open(&self.path).map_err(|source| DatasetError::Io {
                    path: self.path.clone(),
                    source,
                })?;
                let mut reader = BufReader::with_capacity(64 * 1024, file);
                let mut buffer = Vec::new();
                let mut n_records = 0;
                loop {
                    buffer.clear();
                    let line = read_line_capped(&mut reader, &mut buffer, self.max_record)
                        .map_err(|source| DatasetError::Io {
                            path: self.path.clone(),
                            source,
                        })?;
                    match line {
                        Line::End => return Ok(n_records),
                        // A line too large to keep is a record (that fails).
                        Line::TooLarge => n_records += 1,
                        Line::Read if !is_blank_line(&buffer) => n_records += 1,
                        Line::Read => {}
                    }
                }
            }
        }
    }
}

/// The record stream returned by [`Dataset::records`].
pub struct Records {
    inner: RecordsInner,
}

impl std::fmt::Debug for Records {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Records").finish_non_exhaustive()
    }
}

enum RecordsInner {
    JsonLines(JsonLines),
    Csv(CsvRows),
}

impl Records {
    /// Streams records from any reader (used for uploads and tests); `path` only names the
    /// source in errors.
    pub fn from_reader(reader: impl Read + Send + 'static, format: Format, path: &Path) -> Records {
        Records::from_reader_limited(reader, format, path, DEFAULT_MAX_RECORD)
    }

    /// [`Records::from_reader`] with records limited to `max_record` bytes.
    pub fn from_reader_limited(
        reader: impl Read + Send + 'static,
        format: Format,
        path: &Path,
        max_record: ByteSize,
    ) -> Records {
        let path: Arc<Path> = Arc::from(path);
        let inner = match format {
            Format::JsonLines => {
                RecordsInner::JsonLines(JsonLines::new(Box::new(reader), path, max_record))
            }
            Format::Csv => RecordsInner::Csv(CsvRows::new(Box::new(reader), path, max_record)),
        };
        Records { inner }
    }
}

impl Iterator for Records {
    type Item = Result<Record, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            RecordsInner::JsonLines(lines) => lines.next(),
            RecordsInner::Csv(rows) => rows.next(),
        }
    }
}

type BoxRead = Box<dyn Read + Send>;

/// What [`read_line_capped`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// A line (with its line end, if any) is in the buffer.
    Read,
    /// The line was longer than the limit; its start is in the buffer, the rest was skipped.
    TooLarge,
    /// The end of the input.
    End,
}

/// Reads one line into `buffer` (cleared first), keeping at most `limit` bytes of content
/// plus a CRLF; a longer line is skipped to its end without being kept, so memory stays at the
/// limit whatever the input (`/dev/zero` is one endless line).
fn read_line_capped(
    reader: &mut impl BufRead,
    buffer: &mut Vec<u8>,
    limit: ByteSize,
) -> std::io::Result<Line> {
    buffer.clear();
    let keep = limit.0.saturating_add(2);
    let n_read = reader.by_ref().take(keep).read_until(b'\n', buffer)?;
    if n_read == 0 {
        return Ok(Line::End);
    }
    let content = buffer.strip_suffix(b"\n").unwrap_or(buffer);
    let content = content.strip_suffix(b"\r").unwrap_or(content);
    if (content.len() as u64) <= limit.0 {
        return Ok(Line::Read);
    }
    if !buffer.ends_with(b"\n") {
        // Skip the rest of the line without keeping it.
        loop {
            let available = reader.fill_buf()?;
            if available.is_empty() {
                break;
            }
            match available.iter().position(|byte| *byte == b'\n') {
                Some(at) => {
                    reader.consume(at + 1);
                    break;
                }
                None => {
                    let n = available.len();
                    reader.consume(n);
                }
            }
        }
    }
    buffer.truncate(0);
    Ok(Line::TooLarge)
}

struct JsonLines {
    reader: BufReader<BoxRead>,
    path: Arc<Path>,
    max_record: ByteSize,
    buffer: Vec<u8>,
    /// 1-based number of the last line read.
    line: usize,
    n_records: usize,
    done: bool,
}

impl JsonLines {
    fn new(reader: BoxRead, path: Arc<Path>, max_record: ByteSize) -> JsonLines {
        JsonLines {
            reader: BufReader::with_capacity(64 * 1024, reader),
            path,
            max_record,
            buffer: Vec::new(),
            line: 0,
            n_records: 0,
            done: false,
        }
    }

    fn next(&mut self) -> Option<Result<Record, DatasetError>> {
        if self.done {
            return None;
        }
        loop {
            let line = match read_line_capped(&mut self.reader, &mut self.buffer, self.max_record) {
                Ok(line) => line,
                Err(source) => {
                    self.done = true;
                    return Some(Err(DatasetError::Io {
                        path: self.path.to_path_buf(),
                        source,
                    }));
                }
            };
            if line == Line::End {
                // Blank lines at the end of the file are fine.
                self.done = true;
                return None;
            }
            self.line += 1;
            if line == Line::TooLarge {
                let index = self.n_records;
                self.n_records += 1;
                return Some(Err(DatasetError::RecordTooLarge {
                    path: self.path.to_path_buf(),
                    line: self.line,
                    index: Some(index),
                    limit: self.max_record,
                }));
            }
            if is_blank_line(self.content()) {
                continue;
            }
            return Some(self.parse_line());
        }
    }

    /// The current line without its BOM (first line) and line end.
    fn content(&self) -> &[u8] {
        let mut bytes = self.buffer.as_slice();
        if self.line == 1 {
            bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
        }
        bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        bytes.strip_suffix(b"\r").unwrap_or(bytes)
    }

    fn parse_line(&mut self) -> Result<Record, DatasetError> {
        let index = self.n_records;
        self.n_records += 1;
        let line = self.line;
        if line > 1 && self.content().starts_with(BOM) {
            return Err(DatasetError::StrayBom {
                path: self.path.to_path_buf(),
                line,
                index,
            });
        }
        let text = std::str::from_utf8(self.content()).map_err(|error| DatasetError::Utf8 {
            path: self.path.to_path_buf(),
            line,
            index: Some(index),
            byte: error.valid_up_to() + 1,
        })?;
        let value: Value = serde_json::from_str(text).map_err(|source| DatasetError::Json {
            path: self.path.to_path_buf(),
            line,
            index,
            column: source.column(),
            reason: json_reason(&source),
        })?;
        match value {
            Value::Object(fields) => Ok(Record {
                index,
                line,
                fields,
            }),
            other => Err(DatasetError::NotObject {
                path: self.path.to_path_buf(),
                line,
                index,
                found: json_kind(&other),
            }),
        }
    }
}

/// A JSON parser error without the ` at line L column C` suffix of its message.
fn json_reason(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let position = format!(" at line {} column {}", error.line(), error.column());
    match message.strip_suffix(&position) {
        Some(reason) => reason.to_owned(),
        None => message,
    }
}

/// Counts the newlines that pass through, so a CSV record's line can be computed from where it
/// ends (the csv crate's own record-start lines lag after a CRLF record end or a skipped blank
/// line). Only the offsets read ahead of the current record are kept, so memory stays bounded
/// by the read buffer.
struct LineCounter {
    inner: BoxRead,
    offset: u64,
    newline_offsets: std::collections::VecDeque<u64>,
    n_newlines_before: usize,
    /// Where the record being read starts, and how far past it reading may go (the record
    /// limit plus the CSV reader's buffer) before the record is too large.
    record_start: u64,
    max_ahead: u64,
}

/// The IO error [`LineCounter`] returns for a record over the limit.
#[derive(Debug, thiserror::Error)]
#[error("the record is larger than the record limit")]
struct CsvRecordTooLarge;

impl LineCounter {
    /// The 1-based line of the byte at offset `byte` (offsets must not decrease between calls).
    fn line_of_byte(&mut self, byte: u64) -> usize {
        while self
            .newline_offsets
            .front()
            .is_some_and(|newline| *newline < byte)
        {
            self.newline_offsets.pop_front();
            self.n_newlines_before += 1;
        }
        self.n_newlines_before + 1
    }
}

impl Read for LineCounter {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        if self.offset.saturating_sub(self.record_start) > self.max_ahead {
            return Err(std::io::Error::other(CsvRecordTooLarge));
        }
        let n_read = self.inner.read(buffer)?;
        for (position, byte) in buffer[..n_read].iter().enumerate() {
            if *byte == b'\n' {
                self.newline_offsets
                    .push_back(self.offset + position as u64);
            }
        }
        self.offset += n_read as u64;
        Ok(n_read)
    }
}

/// The CSV reader's buffer.
const CSV_BUFFER: usize = 64 * 1024;

struct CsvRows {
    reader: csv::Reader<LineCounter>,
    path: Arc<Path>,
    max_record: ByteSize,
    headers: Option<Result<Vec<String>, ()>>,
    row: csv::StringRecord,
    n_records: usize,
    done: bool,
}

impl CsvRows {
    fn new(reader: BoxRead, path: Arc<Path>, max_record: ByteSize) -> CsvRows {
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(CSV_BUFFER)
            .from_reader(LineCounter {
                inner: reader,
                offset: 0,
                newline_offsets: std::collections::VecDeque::new(),
                n_newlines_before: 0,
                record_start: 0,
                max_ahead: max_record.0.saturating_add(CSV_BUFFER as u64),
            });
        CsvRows {
            reader,
            path,
            max_record,
            headers: None,
            row: csv::StringRecord::new(),
            n_records: 0,
            done: false,
        }
    }

    /// Reads the header row on first use.
    fn headers(&mut self) -> Result<&[String], DatasetError> {
        if self.headers.is_none() {
            let mut header = csv::StringRecord::new();
            let headers = match self.reader.read_record(&mut header) {
                Ok(false) => Vec::new(),
                Ok(true) => {
                    let line = self.start_line(&header);
                    self.reader.get_mut().record_start = self.reader.position().byte();
                    let mut names: Vec<String> = Vec::with_capacity(header.len());
                    for name in header.iter() {
                        if names.iter().any(|seen| seen == name) {
                            self.headers = Some(Err(()));
                            self.done = true;
                            return Err(DatasetError::DuplicateColumn {
                                path: self.path.to_path_buf(),
                                line,
                                field: name.to_owned(),
                            });
                        }
                        names.push(name.to_owned());
                    }
                    names
                }
                Err(source) => {
                    self.headers = Some(Err(()));
                    self.done = true;
                    return Err(self.csv_error(source, None));
                }
            };
            self.headers = Some(Ok(headers));
        }
        match &self.headers {
            Some(Ok(headers)) => Ok(headers),
            _ => Err(DatasetError::Io {
                path: self.path.to_path_buf(),
                source: std::io::Error::other("the header row could not be read"),
            }),
        }
    }

    /// The line where the record just read starts: the line of its last byte (the one before
    /// the reader's position, which is just past the record's terminator or the end of the file)
    /// minus the newlines inside its quoted fields.
    fn start_line(&mut self, record: &csv::StringRecord) -> usize {
        let end = self.reader.position().byte();
        let n_inner_newlines: usize = record
            .iter()
            .map(|field| field.bytes().filter(|byte| *byte == b'\n').count())
            .sum();
        let end_line = self.reader.get_mut().line_of_byte(end.saturating_sub(1));
        end_line.saturating_sub(n_inner_newlines).max(1)
    }

    fn csv_error(&mut self, source: csv::Error, index: Option<usize>) -> DatasetError {
        let byte = source
            .position()
            .map_or(self.reader.position().byte(), csv::Position::byte);
        if let csv::ErrorKind::Io(io) = source.kind()
            && io
                .get_ref()
                .is_some_and(|inner| inner.is::<CsvRecordTooLarge>())
        {
            let start = self.reader.get_ref().record_start;
            return DatasetError::RecordTooLarge {
                path: self.path.to_path_buf(),
                line: self.reader.get_mut().line_of_byte(start),
                index: None,
                limit: self.max_record,
            };
        }
        let line = self.reader.get_mut().line_of_byte(byte + 1);
        if source.is_io_error() {
            return DatasetError::Io {
                path: self.path.to_path_buf(),
                source: std::io::Error::other(source),
            };
        }
        DatasetError::Csv {
            path: self.path.to_path_buf(),
            line,
            index,
            source,
        }
    }

    fn next(&mut self) -> Option<Result<Record, DatasetError>> {
        if self.done {
            return None;
        }
        if let Err(error) = self.headers() {
            self.done = true;
            return Some(Err(error));
        }
        let index = self.n_records;
        match self.reader.read_record(&mut self.row) {
            Ok(false) => {
                self.done = true;
                None
            }
            Ok(true) => {
                self.n_records += 1;
                let row = std::mem::take(&mut self.row);
                let line = self.start_line(&row);
                self.reader.get_mut().record_start = self.reader.position().byte();
                self.row = row;
                let Some(Ok(headers)) = &self.headers else {
                    return None;
                };
                if self.row.len() != headers.len() {
                    return Some(Err(DatasetError::FieldCount {
                        path: self.path.to_path_buf(),
                        line,
                        index,
                        found: self.row.len(),
                        expected: headers.len(),
                    }));
                }
                let fields = headers
                    .iter()
                    .zip(self.row.iter())
                    .map(|(name, value)| (name.clone(), Value::String(value.to_owned())))
                    .collect();
                Some(Ok(Record {
                    index,
                    line,
                    fields,
                }))
            }
            Err(source) => {
                // A row that is not valid UTF-8 is one bad record; other errors end the file.
                let is_record_error = matches!(source.kind(), csv::ErrorKind::Utf8 { .. });
                if is_record_error {
                    self.n_records += 1;
                    self.reader.get_mut().record_start = self.reader.position().byte();
                    Some(Err(self.csv_error(source, Some(index))))
                } else {
                    self.done = true;
                    Some(Err(self.csv_error(source, None)))
                }
            }
        }
    }
}

/// Whether a line holds only (Python) whitespace, which fmeval's `strip()` would drop.
fn is_blank_line(bytes: &[u8]) -> bool {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.chars().all(is_py_whitespace),
        Err(_) => false,
    }
}

fn sniff_format(head: &[u8]) -> Format {
    let head = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    match head.iter().find(|byte| !byte.is_ascii_whitespace()) {
        Some(b'{') | None => Format::JsonLines,
        Some(_) => Format::Csv,
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The reference answer of a record as fmeval's target: a list is joined with `<OR>` (its items
/// as Python `str()` prints them), a string is used as is, a number or boolean as Python prints
/// it. Null, a missing field, an empty list, a null item and an object are per-record errors.
pub fn reference_text(record: &Record, field: &str, path: &Path) -> Result<String, DatasetError> {
    let invalid = |problem: &str| DatasetError::InvalidReference {
        path: path.to_path_buf(),
        line: record.line,
        index: record.index,
        field: field.to_owned(),
        problem: problem.to_owned(),
    };
    let Some(value) = record.fields.get(field) else {
        return Err(DatasetError::MissingField {
            path: path.to_path_buf(),
            line: record.line,
            index: record.index,
            field: field.to_owned(),
        });
    };
    match value {
        Value::Null => Err(invalid("is null")),
        Value::Object(_) => Err(invalid("is an object, expected a string or a list")),
        Value::Array(items) => {
            if items.is_empty() {
                return Err(invalid("is an empty list"));
            }
            let mut joined = String::new();
            for (item_idx, item) in items.iter().enumerate() {
                if item.is_null() {
                    return Err(invalid(&format!("has null at position {item_idx}")));
                }
                if item_idx > 0 {
                    joined.push_str("<OR>");
                }
                joined.push_str(&python_str(item));
            }
            Ok(joined)
        }
        other => Ok(python_str(other).into_owned()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn read(format: Format, content: &str) -> Vec<Result<Record, DatasetError>> {
        Records::from_reader(
            std::io::Cursor::new(content.as_bytes().to_vec()),
            format,
            Path::new("data.x"),
        )
        .collect()
    }

    /// Renders a stream as one line per item: `index@line {json}` or the error message.
    fn check(format: Format, content: &str, expected: &[&str]) {
        let got: Vec<String> = read(format, content)
            .into_iter()
            .map(|item| match item {
                Ok(record) => format!(
                    "{}@{} {}",
                    record.index,
                    record.line,
                    Value::Object(record.fields)
                ),
                Err(error) => format!("error: {error}"),
            })
            .collect();
        assert_eq!(got, expected, "input: {content:?}");
    }

    fn check_jsonl(content: &str, expected: &[&str]) {
        check(Format::JsonLines, content, expected)
    }

    fn check_csv(content: &str, expected: &[&str]) {
        check(Format::Csv, content, expected)
    }

    #[test]
    fn jsonl_basic() {
        check_jsonl(
            "{\"b\":1,\"a\":2}\n{\"a\":3}\n",
            &["0@1 {\"b\":1,\"a\":2}", "1@2 {\"a\":3}"],
        );
    }

    #[test]
    fn jsonl_no_final_newline() {
        check_jsonl("{\"a\":1}", &["0@1 {\"a\":1}"]);
    }

    #[test]
    fn jsonl_bom_and_crlf() {
        check_jsonl(
            "\u{feff}{\"a\":\"x\"}\r\n{\"a\":\"y\"}\r\n",
            &["0@1 {\"a\":\"x\"}", "1@2 {\"a\":\"y\"}"],
        );
    }

    #[test]
    fn jsonl_trailing_blank_lines_are_fine() {
        check_jsonl("{\"a\":1}\n\n  \r\n\n", &["0@1 {\"a\":1}"]);
    }

    #[test]
    fn jsonl_empty_file() {
        check_jsonl("", &[]);
        check_jsonl("\n\n", &[]);
    }

    #[test]
    fn jsonl_blank_lines_in_the_middle_are_skipped() {
        check_jsonl(
            "{\"a\":1}\n\n \t\r\n{\"a\":2}\n",
            &["0@1 {\"a\":1}", "1@4 {\"a\":2}"],
        );
    }

    #[test]
    fn jsonl_leading_blank_line_is_skipped() {
        check_jsonl("\n{\"a\":1}\n", &["0@2 {\"a\":1}"]);
    }

    #[test]
    fn jsonl_invalid_json_names_line_and_column() {
        check_jsonl(
            "{\"a\":1}\n{\"a\": tru}\n{\"a\":3}\n",
            &[
                "0@1 {\"a\":1}",
                "error: data.x:2: invalid JSON at column 10: expected ident",
                "2@3 {\"a\":3}",
            ],
        );
    }

    #[test]
    fn jsonl_not_an_object() {
        check_jsonl(
            "[1,2]\n\"x\"\n",
            &[
                "error: data.x:1: expected a JSON object, found an array",
                "error: data.x:2: expected a JSON object, found a string",
            ],
        );
    }

    #[test]
    fn jsonl_invalid_utf8() {
        let items: Vec<_> = Records::from_reader(
            std::io::Cursor::new(b"{\"a\":\"\xff\"}\n{\"a\":1}\n".to_vec()),
            Format::JsonLines,
            Path::new("d.jsonl"),
        )
        .collect();
        assert_eq!(items.len(), 2);
        let error = items[0].as_ref().expect_err("invalid UTF-8 is an error");
        assert_eq!(
            error.to_string(),
            "d.jsonl:1: not valid UTF-8 (byte 7 of the line)"
        );
        assert_eq!(error.record_index(), Some(0));
        assert_eq!(items[1].as_ref().map(|record| record.index).ok(), Some(1));
    }

    fn limited(format: Format, content: Vec<u8>, limit: u64) -> Vec<String> {
        Records::from_reader_limited(
            std::io::Cursor::new(content),
            format,
            Path::new("d.x"),
            ByteSize(limit),
        )
        .map(|item| match item {
            Ok(record) => format!(
                "{}@{} {}",
                record.index,
                record.line,
                Value::Object(record.fields)
            ),
            Err(error) => format!("error: {error}"),
        })
        .collect()
    }

    #[test]
    fn regression_a_record_over_the_limit_fails_alone() {
        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(100));
        let content = format!("{{\"a\":1}}\n{big}\n{{\"a\":2}}\r\n");
        assert_eq!(
            limited(Format::JsonLines, content.clone().into_bytes(), 50),
            [
                "0@1 {\"a\":1}",
                "error: d.x:2: the record is larger than 50 bytes, the largest record the evaluation reads (raise that limit if such records are expected)",
                "2@3 {\"a\":2}",
            ]
        );
        // Exactly at the limit is fine (the line end does not count).
        assert_eq!(
            limited(Format::JsonLines, content.into_bytes(), 108).len(),
            3
        );
        assert!(
            !limited(Format::JsonLines, format!("{big}\r\n").into_bytes(), 108)[0]
                .starts_with("error")
        );
        // An endless line without a newline: stops at the limit, memory stays bounded.
        let endless = std::io::Read::take(std::io::repeat(b'x'), 64 << 20);
        let items: Vec<_> = Records::from_reader_limited(
            endless,
            Format::JsonLines,
            Path::new("z"),
            ByteSize(1 << 20),
        )
        .collect();
        assert_eq!(items.len(), 1);
        assert!(matches!(
            items[0],
            Err(DatasetError::RecordTooLarge {
                line: 1,
                index: Some(0),
                ..
            })
        ));
        // CSV: the row over the limit ends the file with its line.
        let csv = format!("a,b\n1,2\n\"{}\",3\n4,5\n", "y\n".repeat(100_000));
        let got = limited(Format::Csv, csv.into_bytes(), 1000);
        assert_eq!(
            got,
            [
                "0@2 {\"a\":\"1\",\"b\":\"2\"}",
                "error: d.x:3: the record is larger than 1000 bytes, the largest record the evaluation reads (raise that limit if such records are expected)",
            ]
        );
    }

    #[test]
    fn regression_a_bom_in_the_middle_is_named() {
        check_jsonl(
            "\u{feff}{\"a\":1}\n\u{feff}{\"a\":2}\n",
            &[
                "0@1 {\"a\":1}",
                "error: data.x:2: a byte-order mark (U+FEFF) in the middle of the file, where files were probably joined (e.g. with `cat`); remove it",
            ],
        );
    }

    #[test]
    fn regression_non_regular_files_are_refused_with_the_reason() {
        let error = Dataset::open(Path::new("/dev/zero")).unwrap_err();
        assert!(
            error.to_string().starts_with("/dev/zero: is a character device, not a regular file; a dataset is read more than once"),
            "{error}"
        );
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.jsonl");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        // Refused without opening it (which would block until a writer comes).
        let error = Dataset::open(&fifo).unwrap_err();
        assert!(error.to_string().contains("is a FIFO"), "{error}");
        let error = Dataset::open(dir.path()).unwrap_err();
        assert!(error.to_string().contains("is a directory"), "{error}");
    }

    #[test]
    fn regression_a_changed_file_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.jsonl");
        std::fs::write(&path, "{\"a\":1}\n").unwrap();
        let dataset = Dataset::open(&path).unwrap();
        let was = dataset.fingerprint().unwrap();
        dataset.check_unchanged(&was).unwrap();
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut file, b"{\"a\":2}\n").unwrap();
        let error = dataset.check_unchanged(&was).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("the dataset changed while the run read it (it was 8 bytes"),
            "{error}"
        );
    }

    #[test]
    fn csv_basic_with_quotes() {
        check_csv(
            "q,Reference Answer(s)\n\"a, b\",\"x \"\"y\"\"\"\nc,d\n",
            &[
                "0@2 {\"q\":\"a, b\",\"Reference Answer(s)\":\"x \\\"y\\\"\"}",
                "1@3 {\"q\":\"c\",\"Reference Answer(s)\":\"d\"}",
            ],
        );
    }

    #[test]
    fn csv_bom_and_crlf() {
        check_csv("\u{feff}a,b\r\n1,2\r\n", &["0@2 {\"a\":\"1\",\"b\":\"2\"}"]);
    }

    #[test]
    fn csv_multiline_value_keeps_start_line() {
        check_csv(
            "a,b\n\"x\ny\",2\n3,4\n",
            &[
                "0@2 {\"a\":\"x\\ny\",\"b\":\"2\"}",
                "1@4 {\"a\":\"3\",\"b\":\"4\"}",
            ],
        );
    }

    #[test]
    fn csv_lines_after_blank_lines_crlf_and_no_final_newline() {
        check_csv(
            "a,b\n\n1,2\n\n\n3,4",
            &[
                "0@3 {\"a\":\"1\",\"b\":\"2\"}",
                "1@6 {\"a\":\"3\",\"b\":\"4\"}",
            ],
        );
        check_csv("a,b\r\n1,2", &["0@2 {\"a\":\"1\",\"b\":\"2\"}"]);
        check_csv(
            "\r\na,b\r\n\"x\r\ny\",2\r\n3,4\r\n",
            &[
                "0@3 {\"a\":\"x\\r\\ny\",\"b\":\"2\"}",
                "1@5 {\"a\":\"3\",\"b\":\"4\"}",
            ],
        );
    }

    #[test]
    fn csv_wrong_field_count_is_a_record_error() {
        check_csv(
            "a,b\n1\n3,4\n",
            &[
                "error: data.x:2: 1 values, the header has 2",
                "1@3 {\"a\":\"3\",\"b\":\"4\"}",
            ],
        );
    }

    #[test]
    fn csv_duplicate_column() {
        check_csv("a,a\n1,2\n", &["error: data.x:1: duplicate column `a`"]);
    }

    #[test]
    fn csv_empty() {
        check_csv("", &[]);
        check_csv("a,b\n", &[]);
    }

    fn check_reference(json: &str, expected: &str) {
        let Value::Object(fields) = serde_json::from_str(json).expect("test JSON is valid") else {
            panic!("test JSON is an object")
        };
        let record = Record {
            index: 4,
            line: 7,
            fields,
        };
        let got = match reference_text(&record, "answers", Path::new("qa.jsonl")) {
            Ok(text) => text,
            Err(error) => format!("error: {error}"),
        };
        assert_eq!(got, expected, "json: {json}");
    }

    #[test]
    fn reference_text_cases() {
        check_reference(r#"{"answers": ["France"]}"#, "France");
        check_reference(
            r#"{"answers": ["October 1973", "October", "1973"]}"#,
            "October 1973<OR>October<OR>1973",
        );
        check_reference(r#"{"answers": "a<OR>b"}"#, "a<OR>b");
        check_reference(r#"{"answers": ""}"#, "");
        check_reference(r#"{"answers": 8}"#, "8");
        check_reference(r#"{"answers": 1.5}"#, "1.5");
        check_reference(r#"{"answers": true}"#, "True");
        check_reference(r#"{"answers": [8, "eight"]}"#, "8<OR>eight");
        check_reference(
            r#"{"answers": null}"#,
            "error: qa.jsonl:7: field `answers` is null",
        );
        check_reference(
            r#"{"other": 1}"#,
            "error: qa.jsonl:7: field `answers` is missing",
        );
        check_reference(
            r#"{"answers": []}"#,
            "error: qa.jsonl:7: field `answers` is an empty list",
        );
        check_reference(
            r#"{"answers": ["a", null]}"#,
            "error: qa.jsonl:7: field `answers` has null at position 1",
        );
        check_reference(
            r#"{"answers": {"a": 1}}"#,
            "error: qa.jsonl:7: field `answers` is an object, expected a string or a list",
        );
    }

    #[test]
    fn record_stream_can_move_to_another_thread() {
        fn assert_send_static<T: Send + 'static>(_: &T) {}
        let records = Records::from_reader(std::io::empty(), Format::Csv, Path::new("x"));
        assert_send_static(&records);
        let handle = std::thread::spawn(move || records.count());
        assert_eq!(handle.join().ok(), Some(0));
    }

    #[test]
    fn field_text() {
        let Value::Object(fields) = serde_json::json!({"category": "geo", "n": 2}) else {
            unreachable!("a JSON object literal")
        };
        let record = Record {
            index: 0,
            line: 1,
            fields,
        };
        assert_eq!(record.text("category").as_deref(), Some("geo"));
        assert_eq!(record.text("n").as_deref(), Some("2"));
        assert_eq!(record.text("missing"), None);
    }

    #[test]
    fn sniffs_format_from_content() {
        assert_eq!(sniff_format(b"\xef\xbb\xbf  {\"a\":1}"), Format::JsonLines);
        assert_eq!(sniff_format(b""), Format::JsonLines);
        assert_eq!(sniff_format(b"a,b\n"), Format::Csv);
    }

    use proptest::strategy::Strategy;

    proptest::proptest! {
        #[test]
        fn never_panics_on_random_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            for format in [Format::JsonLines, Format::Csv] {
                let items: Vec<_> = Records::from_reader(std::io::Cursor::new(bytes.clone()), format, Path::new("x")).collect();
                for item in items.iter().flatten() {
                    proptest::prop_assert!(item.line >= 1);
                }
            }
        }

        #[test]
        fn objects_written_as_lines_read_back_equal(
            objects in proptest::collection::vec(
                proptest::collection::btree_map("\\PC{0,8}", proptest::prop_oneof![
                    "\\PC{0,12}".prop_map(Value::from),
                    proptest::num::i64::ANY.prop_map(Value::from),
                    proptest::bool::ANY.prop_map(Value::from),
                ], 0..5),
                0..8,
            ),
            crlf in proptest::bool::ANY,
        ) {
            let line_end = if crlf { "\r\n" } else { "\n" };
            let content: String = objects
                .iter()
                .map(|object| format!("{}{line_end}", Value::Object(object.clone().into_iter().collect())))
                .collect();
            let records: Vec<Record> = Records::from_reader(std::io::Cursor::new(content.into_bytes()), Format::JsonLines, Path::new("x"))
                .collect::<Result<_, _>>()
                .map_err(|error| proptest::test_runner::TestCaseError::fail(error.to_string()))?;
            proptest::prop_assert_eq!(records.len(), objects.len());
            for (position, (record, object)) in records.iter().zip(&objects).enumerate() {
                proptest::prop_assert_eq!((record.index, record.line), (position, position + 1));
                let expected: Map<String, Value> = object.clone().into_iter().collect();
                proptest::prop_assert_eq!(&record.fields, &expected);
            }
        }

        #[test]
        fn never_panics_on_json_like_lines(lines in proptest::collection::vec("[{}\\[\\]\":,a-z0-9 \\r\u{feff}]{0,20}", 0..20)) {
            let content = lines.join("\n");
            let items: Vec<_> = Records::from_reader(std::io::Cursor::new(content.into_bytes()), Format::JsonLines, Path::new("x")).collect();
            let mut last_index = None;
            for item in items.iter().flatten() {
                proptest::prop_assert!(last_index.is_none_or(|last| item.index > last));
                last_index = Some(item.index);
            }
        }
    }
}
