//! Size limits of what comes in (dataset records, templates, rubrics, model replies): their
//! defaults, and the parser of the `--max-*-size` flags that raise or lower them.
//!
//! Every input and reply is read against one of these limits, so a hostile or mistaken
//! source (`/dev/zero`, an endpoint streaming an endless body) costs at most the limit in
//! memory, and fails with the limit and the flag named.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A size in bytes, as given to a `--max-*-size` flag (`4MiB`, `500K`, `1048576`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

/// Default `--max-response-size`: a model reply (the whole HTTP body). A 128,000-token answer
/// is about 0.5 MB of JSON.
pub const DEFAULT_MAX_RESPONSE: ByteSize = ByteSize(4 << 20);
/// Default `--max-record-size`: one dataset line (JSONL) or row (CSV).
pub const DEFAULT_MAX_RECORD: ByteSize = ByteSize(16 << 20);
/// Default `--max-template-size`: a prompt template or judge rubric file.
pub const DEFAULT_MAX_TEMPLATE: ByteSize = ByteSize(1 << 20);

impl ByteSize {
    /// The limit as a `usize` (saturating on 32-bit targets).
    pub fn as_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.0;
        for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
            if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
                return write!(f, "{} {unit}", bytes >> shift);
            }
        }
        write!(f, "{bytes} bytes")
    }
}

/// Parses a size: a number of bytes with an optional unit, `K`/`KiB`, `M`/`MiB`, `G`/`GiB`
/// (powers of 1024) or `KB`, `MB`, `GB` (powers of 1000), case-insensitive; 0 is refused.
pub fn parse_size(text: &str) -> Result<ByteSize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size (e.g. 4MiB, 500K, 1048576)"))?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        other => {
            return Err(format!(
                "unknown size unit `{other}` (use K, M, G, KB, MB or GB)"
            ));
        }
    };
    match number.checked_mul(multiplier) {
        Some(0) => Err("a size limit must be at least 1 byte".to_owned()),
        Some(bytes) => Ok(ByteSize(bytes)),
        None => Err(format!("`{text}` is too large")),
    }
}

/// Why a capped file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file cannot be opened or read.
    #[error("{}: cannot be read", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file holds more than the limit (only the limit and one byte were read).
    #[error("{} is larger than {limit}, the limit of {flag}; raise it with {flag} if the file is meant to be this big", .path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        limit: ByteSize,
        /// The flag that raises it.
        flag: &'static str,
    },
    /// The file is not UTF-8 text.
    #[error("{}:{line}:{column}: not valid UTF-8", .path.display())]
    Utf8 {
        /// The file.
        path: PathBuf,
        /// 1-based line of the first invalid byte.
        line: usize,
        /// 1-based column (in characters) of the first invalid byte.
        column: usize,
    },
}

/// Reads the text file `path`, at most `limit` bytes of it (a bigger file, or an endless one
/// such as `/dev/zero`, fails after reading one byte more); `flag` names the flag that raises
/// the limit.
pub fn read_text_capped(
    path: &Path,
    limit: ByteSize,
    flag: &'static str,
) -> Result<String, ReadError> {
    let io_error = |source| ReadError::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io_error)?;
    let mut bytes = Vec::new();
    file.take(limit.0.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io_error)?;
    if bytes.len() as u64 > limit.0 {
        return Err(ReadError::TooLarge {
            path: path.to_owned(),
            limit,
            flag,
        });
    }
    String::from_utf8(bytes).map_err(|error| {
        let valid = &error.as_bytes()[..error.utf8_error().valid_up_to()];
        let line_start = valid
            .iter()
            .rposition(|byte| *byte == b'\n')
            .map_or(0, |at| at + 1);
        ReadError::Utf8 {
            path: path.to_owned(),
            line: valid.iter().filter(|byte| **byte == b'\n').count() + 1,
            column: String::from_utf8_lossy(&valid[line_start..])
                .chars()
                .count()
                + 1,
        }
    })
}

/// At most `max_chars` characters of `text` for an error message, on one line: line breaks and
/// other control characters are escaped and a cut is marked with `…`, so a 1 GB line never
/// reaches a terminal.
pub fn excerpt(text: &str, max_chars: usize) -> String {
    let mut out = String::new();
    for (char_idx, c) in text.chars().enumerate() {
        if char_idx == max_chars {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn check(text: &str, expected: Result<u64, &str>) {
        assert_eq!(
            parse_size(text).map(|size| size.0),
            expected.map_err(str::to_owned),
            "{text}"
        );
    }

    #[test]
    fn sizes() {
        check("1048576", Ok(1 << 20));
        check("4MiB", Ok(4 << 20));
        check("4 mib", Ok(4 << 20));
        check("500K", Ok(500 << 10));
        check("2GB", Ok(2_000_000_000));
        check("0", Err("a size limit must be at least 1 byte"));
        check("x", Err("`x` is not a size (e.g. 4MiB, 500K, 1048576)"));
        check(
            "3 parsecs",
            Err("unknown size unit `parsecs` (use K, M, G, KB, MB or GB)"),
        );
        check("999999999999G", Err("`999999999999G` is too large"));
    }

    #[test]
    fn display() {
        assert_eq!(DEFAULT_MAX_RESPONSE.to_string(), "4 MiB");
        assert_eq!(ByteSize(1500).to_string(), "1500 bytes");
    }

    #[test]
    fn capped_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rubric.txt");
        std::fs::write(&path, "0123456789").unwrap();
        assert_eq!(
            read_text_capped(&path, ByteSize(10), "--max").unwrap(),
            "0123456789"
        );
        let error = read_text_capped(&path, ByteSize(9), "--max").unwrap_err();
        assert!(
            error.to_string().ends_with(
                "rubric.txt is larger than 9 bytes, the limit of --max; raise it with --max if the file is meant to be this big"
            ),
            "{error}"
        );
        // An endless device stops at the limit.
        let error =
            read_text_capped(Path::new("/dev/zero"), ByteSize(1 << 20), "--max").unwrap_err();
        assert!(matches!(error, ReadError::TooLarge { .. }), "{error}");
        std::fs::write(&path, b"ok\nab\xffc").unwrap();
        let error = read_text_capped(&path, ByteSize(100), "--max").unwrap_err();
        assert!(
            error
                .to_string()
                .ends_with("rubric.txt:2:3: not valid UTF-8"),
            "{error}"
        );
    }

    #[test]
    fn excerpts() {
        assert_eq!(excerpt("short", 10), "short");
        assert_eq!(excerpt("abcdef", 3), "abc…");
        assert_eq!(excerpt("a\nb\u{1b}c", 10), "a\\nb\\u{1b}c");
        assert_eq!(excerpt(&"é".repeat(1000), 2), "éé…");
    }

    proptest::proptest! {
        #[test]
        fn parse_size_never_panics(text in "\\PC{0,24}") {
            let _ = parse_size(&text);
        }

        #[test]
        fn excerpts_are_short_single_lines(text in "\\PC{0,300}|(.|\n|\r){0,300}") {
            let shown = excerpt(&text, 80);
            proptest::prop_assert!(shown.chars().count() <= 80 * 10 + 1);
            proptest::prop_assert!(!shown.contains('\n') && !shown.contains('\r'));
        }
    }
}
