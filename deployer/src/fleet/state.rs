//! The fleet's state file: for each command (`up`, `down`, `users`) and target (`account/region`)
//! how its last run ended. Written after every target, atomically (a temporary file renamed
//! over it), so an interrupted run keeps what it finished.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Largest state file read.
const MAX_BYTES: u64 = 16 * 1024 * 1024;

/// How one target's last run of a command ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// It succeeded.
    pub ok: bool,
    /// The app's URL, when the run showed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_url: Option<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_cause: Option<String>,
    /// When it ended (seconds since 1970).
    pub finished_at: u64,
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Command -> target -> record.
    #[serde(default)]
    pub commands: BTreeMap<String, BTreeMap<String, Record>>,
}

/// Why the state file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// It is not a state file.
    #[error(
        "{path}:{line}:{column}: not a fleet state file ({message}); delete it to start afresh"
    )]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Line of the error.
        line: usize,
        /// Column of the error.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// It is larger than any state file would be.
    #[error("{path}: larger than {MAX_BYTES} bytes; not a fleet state file")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
}

impl State {
    /// Reads `path`; a missing file is an empty state.
    pub fn load(path: &Path) -> Result<State, StateError> {
        let io = |source| StateError::Io {
            path: path.to_owned(),
            source,
        };
        let file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(State::default()),
            Err(err) => return Err(io(err)),
        };
        let mut bytes = Vec::new();
        file.take(MAX_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() as u64 > MAX_BYTES {
            return Err(StateError::TooLarge {
                path: path.to_owned(),
            });
        }
        serde_json::from_slice(&bytes).map_err(|err| StateError::Invalid {
            path: path.to_owned(),
            line: err.line(),
            column: err.column(),
            message: err.to_string(),
        })
    }

    /// Writes the state to `path` atomically.
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        let io = |source| StateError::Io {
            path: path.to_owned(),
            source,
        };
        let mut text = serde_json::to_vec_pretty(self).map_err(|err| io(err.into()))?;
        text.push(b'\n');
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "fleet-state".to_owned());
        let temporary = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
        let mut file = std::fs::File::create(&temporary).map_err(io)?;
        file.write_all(&text)
            .and_then(|()| file.sync_all())
            .map_err(io)?;
        std::fs::rename(&temporary, path).map_err(io)
    }

    /// The record of `target` for `command`.
    pub fn get(&self, command: &str, target: &str) -> Option<&Record> {
        self.commands.get(command)?.get(target)
    }

    /// Records how `command` ended on `target`. A successful `up` forgets the target's last
    /// `down` and the other way round, so the next `down` (or `up`) runs it again.
    pub fn set(&mut self, command: &str, target: &str, record: Record) {
        if record.ok {
            let opposite = match command {
                "up" => Some("down"),
                "down" => Some("up"),
                _ => None,
            };
            if let Some(opposite) = opposite
                && let Some(records) = self.commands.get_mut(opposite)
            {
                records.remove(target);
            }
        }
        self.commands
            .entry(command.to_owned())
            .or_default()
            .insert(target.to_owned(), record);
    }
}

/// Seconds since 1970.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn record(ok: bool) -> Record {
        Record {
            ok,
            app_url: None,
            root_cause: (!ok).then(|| "boom".to_owned()),
            finished_at: 1,
        }
    }

    #[test]
    fn round_trip_and_opposites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert_eq!(State::load(&path).unwrap(), State::default());
        let mut state = State::default();
        state.set("up", "1/us-east-1", record(true));
        state.set("down", "1/us-east-1", record(false));
        assert!(state.get("up", "1/us-east-1").is_some());
        state.set("down", "1/us-east-1", record(true));
        assert!(state.get("up", "1/us-east-1").is_none());
        state.save(&path).unwrap();
        assert_eq!(State::load(&path).unwrap(), state);
    }

    #[test]
    fn invalid_file_names_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, "{\n  \"commands\": 3\n}\n").unwrap();
        let err = State::load(&path).unwrap_err().to_string();
        assert!(err.contains("state.json:2:"), "{err}");
    }
}
