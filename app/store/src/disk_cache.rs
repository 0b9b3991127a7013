//! The bound on the datasets a DynamoDB-mode task keeps on its own disk. The data bucket holds
//! every dataset; a task keeps a local copy of the ones it used (uploaded through it, or fetched
//! once for a run or a preview), and without a bound those copies would grow with every user's
//! every dataset until the task's ephemeral storage (20 GiB on Fargate) is full.
//!
//! The bound is least recently used by bytes: reading a copy marks it used (its modification
//! time becomes now), and after a copy is added the oldest copies are removed until the total is
//! at most the limit. The copy just added is never removed (it is about to be read), and a copy
//! removed while a run reads it stays readable through the run's open file (Unix semantics); the
//! next read fetches it again.
//!
//! Synchronous file-system code only; no AWS, no async runtime (callers use
//! `spawn_blocking`).

use std::fs;
use std::io;
use std::path::Path;
use std::time::SystemTime;

/// The default bound: 4 GiB of the task's 20 GiB ephemeral storage (uploads being checked and
/// the response cache need the rest).
pub const DEFAULT_DATASET_CACHE_BYTES: u64 = 4 << 30;

/// The environment variable that sets the bound in bytes.
pub const DATASET_CACHE_ENV: &str = "LLM_EVAL_DATASET_CACHE_BYTES";

/// What one eviction pass found and removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Evicted {
    /// Files removed.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Bytes of the copies left.
    pub kept_bytes: u64,
}

/// Marks the copy at `path` as used now, so an eviction takes it last.
pub fn mark_used(path: &Path) -> io::Result<()> {
    fs::File::options()
        .write(true)
        .open(path)?
        .set_modified(SystemTime::now())
}

/// Removes the least recently used dataset copies (`*.jsonl`, `*.csv`) of `dir` until their total
/// is at most `limit` bytes, never `keep`. Files that vanish meanwhile (another task's pass, a
/// deleted dataset) are skipped.
pub fn evict(dir: &Path, limit: u64, keep: &Path) -> io::Result<Evicted> {
    let mut copies = Vec::new();
    let mut total = 0u64;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let is_copy = path
            .extension()
            .is_some_and(|extension| extension == "jsonl" || extension == "csv");
        let Ok(metadata) = entry.metadata() else {
            continue;
        };
        if !is_copy || !metadata.is_file() {
            continue;
        }
        total += metadata.len();
        if path != keep {
            let used = metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            copies.push((used, metadata.len(), path));
        }
    }
    copies.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.2.cmp(&b.2)));
    let mut evicted = Evicted::default();
    for (_, size, path) in copies {
        if total <= limit {
            break;
        }
        match fs::remove_file(&path) {
            Ok(()) => {
                evicted.files += 1;
                evicted.bytes += size;
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
        total -= size;
    }
    evicted.kept_bytes = total;
    Ok(evicted)
}

/// The bound from [`DATASET_CACHE_ENV`] (bytes, at least 1 MiB), or the default when unset.
pub fn limit_from_env() -> Result<u64, String> {
    match std::env::var(DATASET_CACHE_ENV) {
        Err(_) => Ok(DEFAULT_DATASET_CACHE_BYTES),
        Ok(text) => match text.trim().parse::<u64>() {
            Ok(bytes) if bytes >= 1 << 20 => Ok(bytes),
            _ => Err(format!(
                "{DATASET_CACHE_ENV}={text:?}: the bound on the datasets kept on the task's disk is a number of bytes, at least 1048576 (1 MiB)"
            )),
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn copy(dir: &Path, name: &str, bytes: usize, age_seconds: u64) -> std::path::PathBuf {
        let path = dir.join(name);
        fs::write(&path, vec![b'x'; bytes]).unwrap();
        let used = SystemTime::now() - Duration::from_secs(age_seconds);
        fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(used)
            .unwrap();
        path
    }

    #[test]
    fn removes_the_least_recently_used_copies_until_the_total_fits() {
        let dir = tempfile::tempdir().unwrap();
        let oldest = copy(dir.path(), "a.jsonl", 400, 300);
        let middle = copy(dir.path(), "b.csv", 400, 200);
        let newest = copy(dir.path(), "c.jsonl", 400, 100);
        let added = copy(dir.path(), "d.jsonl", 400, 0);
        let other = copy(dir.path(), "notes.txt", 10_000, 1_000);
        let evicted = evict(dir.path(), 1_000, &added).unwrap();
        assert_eq!(
            evicted,
            Evicted {
                files: 2,
                bytes: 800,
                kept_bytes: 800
            }
        );
        assert!(!oldest.exists() && !middle.exists());
        assert!(newest.exists() && added.exists() && other.exists());
    }

    #[test]
    fn a_copy_marked_used_is_taken_last() {
        let dir = tempfile::tempdir().unwrap();
        let read_again = copy(dir.path(), "a.jsonl", 400, 300);
        let idle = copy(dir.path(), "b.jsonl", 400, 200);
        mark_used(&read_again).unwrap();
        let added = copy(dir.path(), "c.jsonl", 400, 0);
        evict(dir.path(), 800, &added).unwrap();
        assert!(read_again.exists() && added.exists());
        assert!(!idle.exists());
    }

    #[test]
    fn the_copy_just_added_stays_even_alone_over_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let older = copy(dir.path(), "a.jsonl", 100, 10);
        let added = copy(dir.path(), "big.jsonl", 5_000, 0);
        let evicted = evict(dir.path(), 1_000, &added).unwrap();
        assert_eq!(evicted.files, 1);
        assert_eq!(evicted.kept_bytes, 5_000);
        assert!(added.exists() && !older.exists());
    }

    #[test]
    fn nothing_is_removed_under_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let a = copy(dir.path(), "a.jsonl", 100, 10);
        let b = copy(dir.path(), "b.jsonl", 100, 0);
        assert_eq!(evict(dir.path(), 1_000, &b).unwrap().files, 0);
        assert!(a.exists());
    }
}
