//! Size limits of what comes in (dataset records, templates, rubrics, model replies): their
//! defaults (the sizes and capped reads themselves are the `capped` crate's, shared with the
//! deployer), and capped reads of text files.
//!
//! Every input and reply is read against one of these limits, so a hostile or mistaken
//! source (`/dev/zero`, an endpoint streaming an endless body) costs at most the limit in
//! memory, and fails with the limit and the flag named.

use std::path::{Path, PathBuf};

pub use capped::{ByteSize, parse_size};

/// Default `--max-response-size`: a model reply (the whole HTTP body). A 128,000-token answer
/// is about 0.5 MB of JSON.
pub const DEFAULT_MAX_RESPONSE: ByteSize = ByteSize(4 << 20);
/// Default `--max-record-size`: one dataset line (JSONL) or row (CSV).
pub const DEFAULT_MAX_RECORD: ByteSize = ByteSize(16 << 20);
/// Default `--max-prompt-size` (`LLM_EVAL_MAX_PROMPT_SIZE` for `serve`): one rendered prompt
/// or judge prompt, checked while it is filled (see [`crate::template`]).
pub const DEFAULT_MAX_PROMPT: ByteSize = ByteSize(1 << 20);
/// Default `--max-template-size`: a prompt template or judge rubric file.
pub const DEFAULT_MAX_TEMPLATE: ByteSize = ByteSize(1 << 20);

/// Why a capped text file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file cannot be read, or holds more than the limit.
    #[error(transparent)]
    Capped(#[from] capped::ReadError),
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
    let bytes = capped::read_capped(path, limit, flag)?;
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

    #[test]
    fn defaults_read_well() {
        assert_eq!(DEFAULT_MAX_RESPONSE.to_string(), "4 MiB");
        assert_eq!(DEFAULT_MAX_RECORD.to_string(), "16 MiB");
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
        assert!(
            matches!(error, ReadError::Capped(capped::ReadError::TooLarge { .. })),
            "{error}"
        );
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
        fn excerpts_are_short_single_lines(text in "\\PC{0,300}|(.|\n|\r){0,300}") {
            let shown = excerpt(&text, 80);
            proptest::prop_assert!(shown.chars().count() <= 80 * 10 + 1);
            proptest::prop_assert!(!shown.contains('\n') && !shown.contains('\r'));
        }
    }
}
