//! Byte sizes as the `--max-*-size` flags of `llm-eval` and `deployer` take them, and reading a
//! user's file with such a cap.
//!
//! A read stops one byte past its limit, so a hostile or mistaken source (`/dev/zero`, a FIFO
//! that never ends) costs at most the limit in memory and fails with the file, the limit and
//! the flag that raises it. Files are opened once and read to the end, so a FIFO or a process
//! substitution (`--template <(curl ...)`) works like a regular file.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A size in bytes, as given to a `--max-*-size` flag (`4MiB`, `500K`, `1048576`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// The limit as a `usize` (saturating on 32-bit targets).
    pub fn as_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

impl fmt::Display for ByteSize {
    /// The largest binary unit that divides the size (`8 MiB`), else bytes (`1500 bytes`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.0;
        for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
            if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
                return write!(f, "{} {unit}", bytes >> shift);
            }
        }
        if bytes == 1 {
            return f.write_str("1 byte");
        }
        write!(f, "{bytes} bytes")
    }
}

/// Parses a size: a number of bytes with an optional unit, `K`/`KiB`, `M`/`MiB`, `G`/`GiB`
/// (powers of 1024) or `KB`, `MB`, `GB` (powers of 1000), case-insensitive, blanks allowed
/// before the unit (so [`ByteSize`]'s own `Display` parses back); 0 is refused.
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
        "" | "b" | "byte" | "bytes" => 1,
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
}

impl ReadError {
    /// What is wrong, without the file name (for reports that name the file themselves).
    pub fn reason(&self) -> String {
        match self {
            ReadError::Io { source, .. } => format!("cannot be read: {source}"),
            ReadError::TooLarge { limit, flag, .. } => {
                format!("is larger than {limit}, the limit of {flag}")
            }
        }
    }
}

/// Reads all of `path`, failing once it holds more than `limit` bytes (after reading one byte
/// more); `flag` names the flag that raises the limit.
pub fn read_capped(path: &Path, limit: ByteSize, flag: &'static str) -> Result<Vec<u8>, ReadError> {
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
    Ok(bytes)
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
        check("8MiB", Ok(8 << 20));
        check("8 mib", Ok(8 << 20));
        check("500K", Ok(500 << 10));
        check("2GB", Ok(2_000_000_000));
        check("1b", Ok(1));
        check("0", Err("a size limit must be at least 1 byte"));
        check("x", Err("`x` is not a size (e.g. 4MiB, 500K, 1048576)"));
        check("-1", Err("`-1` is not a size (e.g. 4MiB, 500K, 1048576)"));
        check(
            "3 parsecs",
            Err("unknown size unit `parsecs` (use K, M, G, KB, MB or GB)"),
        );
        check(
            "99999999999999999999G",
            Err("`99999999999999999999G` is not a size (e.g. 4MiB, 500K, 1048576)"),
        );
        check("999999999999G", Err("`999999999999G` is too large"));
    }

    #[test]
    fn display_parses_back() {
        for (size, shown) in [
            (8 << 20, "8 MiB"),
            (1500, "1500 bytes"),
            (3 << 30, "3 GiB"),
            (1, "1 byte"),
        ] {
            assert_eq!(ByteSize(size).to_string(), shown);
            assert_eq!(parse_size(shown), Ok(ByteSize(size)));
        }
    }

    #[test]
    fn reads_stop_past_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.yaml");
        std::fs::write(&path, "x".repeat(11)).unwrap();
        assert_eq!(
            read_capped(&path, ByteSize(11), "--max")
                .map(|bytes| bytes.len())
                .ok(),
            Some(11)
        );
        let error = read_capped(&path, ByteSize(10), "--max").unwrap_err();
        assert!(error.to_string().ends_with("t.yaml is larger than 10 bytes, the limit of --max; raise it with --max if the file is meant to be this big"), "{error}");
        assert_eq!(
            error.reason(),
            "is larger than 10 bytes, the limit of --max"
        );
        // An endless device is cut at the limit, not read until memory runs out.
        let error = read_capped(Path::new("/dev/zero"), ByteSize(1 << 20), "--max").unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("/dev/zero is larger than 1 MiB"),
            "{error}"
        );
        let missing = read_capped(&dir.path().join("nope"), ByteSize(10), "--max").unwrap_err();
        assert!(
            missing.reason().starts_with("cannot be read: "),
            "{missing}"
        );
    }

    proptest::proptest! {
        #[test]
        fn parse_size_never_panics(text in "\\PC{0,24}") {
            let _ = parse_size(&text);
        }
    }
}
