//! Reading the files a user names (templates, config files) with a size cap.
//!
//! `deployer nag --template /dev/zero` used to read until memory ran out; every read here stops
//! one byte past its limit and fails with the file, the limit and the flag that raises it.
//! Files are opened once and read to the end, so a FIFO or a process substitution
//! (`--template <(curl ...)`) works like a regular file.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Default `--max-template-size`: eight times the 1 MB CloudFormation accepts from S3.
pub const DEFAULT_MAX_TEMPLATE_SIZE: ByteSize = ByteSize(8 << 20);

/// A size in bytes, as given to a `--max-*-size` flag (`8MiB`, `500K`, `1048576`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

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
        .map_err(|_| format!("`{text}` is not a size (e.g. 8MiB, 500K, 1048576)"))?;
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

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The file cannot be opened or read.
    #[error("reading {}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file holds more than the limit.
    #[error("{} is larger than {limit}, the limit of {flag}; raise it with {flag} if the file is meant to be this big", .path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit it exceeds.
        limit: ByteSize,
        /// The flag that raises the limit.
        flag: &'static str,
    },
}

impl InputError {
    /// What is wrong, without the file name (for reports that name the file themselves).
    pub fn reason(&self) -> String {
        match self {
            InputError::Io { source, .. } => format!("cannot be read: {source}"),
            InputError::TooLarge { limit, flag, .. } => {
                format!("is larger than {limit}, the limit of {flag}")
            }
        }
    }
}

/// Reads all of `path`, failing once it holds more than `limit` bytes; `flag` names the flag
/// that raises the limit.
pub fn read_capped(
    path: &Path,
    limit: ByteSize,
    flag: &'static str,
) -> Result<Vec<u8>, InputError> {
    let io_error = |source| InputError::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io_error)?;
    let mut bytes = Vec::new();
    file.take(limit.0.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io_error)?;
    if bytes.len() as u64 > limit.0 {
        return Err(InputError::TooLarge {
            path: path.to_owned(),
            limit,
            flag,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
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
        check("8MiB", Ok(8 << 20));
        check("8 mib", Ok(8 << 20));
        check("500K", Ok(500 << 10));
        check("2GB", Ok(2_000_000_000));
        check("1b", Ok(1));
        check("0", Err("a size limit must be at least 1 byte"));
        check("x", Err("`x` is not a size (e.g. 8MiB, 500K, 1048576)"));
        check("-1", Err("`-1` is not a size (e.g. 8MiB, 500K, 1048576)"));
        check(
            "3 parsecs",
            Err("unknown size unit `parsecs` (use K, M, G, KB, MB or GB)"),
        );
        check(
            "99999999999999999999G",
            Err("`99999999999999999999G` is not a size (e.g. 8MiB, 500K, 1048576)"),
        );
        check("999999999999G", Err("`999999999999G` is too large"));
    }

    #[test]
    fn display() {
        assert_eq!(ByteSize(8 << 20).to_string(), "8 MiB");
        assert_eq!(ByteSize(1500).to_string(), "1500 bytes");
        assert_eq!(ByteSize(3 << 30).to_string(), "3 GiB");
    }

    #[test]
    fn reads_stop_past_the_limit() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("t.yaml");
        std::fs::write(&path, "x".repeat(11)).expect("write");
        assert_eq!(
            read_capped(&path, ByteSize(11), "--max")
                .map(|bytes| bytes.len())
                .ok(),
            Some(11)
        );
        let error = read_capped(&path, ByteSize(10), "--max").expect_err("too big");
        assert!(error.to_string().ends_with("t.yaml is larger than 10 bytes, the limit of --max; raise it with --max if the file is meant to be this big"), "{error}");
        // An endless device is cut at the limit, not read until memory runs out.
        let error =
            read_capped(Path::new("/dev/zero"), ByteSize(1 << 20), "--max").expect_err("endless");
        assert!(
            error
                .to_string()
                .starts_with("/dev/zero is larger than 1 MiB"),
            "{error}"
        );
    }

    proptest::proptest! {
        #[test]
        fn parse_size_never_panics(text in "\\PC{0,24}") {
            let _ = parse_size(&text);
        }
    }
}
