//! Response cache: successful generations kept in SQLite, keyed by what determines the answer.
//!
//! The key is the canonical JSON text of (provider scope, model id, inference parameters,
//! rendered messages, rendered prompt text), where the scope says where calls go (the OpenAI
//! base URL; the AWS region and endpoint override; a SageMaker container format), so a local
//! test server's answers never stand in for the real API's; serde_json writes struct fields in declaration order, so the
//! same request always gives the same text and SQLite compares it exactly (no hash collisions
//! to reason about). Only successful generations are stored; errors are never cached.
//! Invariant: the cache is an optimisation; a broken cache entry is a miss, never a failed run.
//!
//! Owners: the web app gives every run a cache scoped to its owner ([`ResponseCache::for_owner`]),
//! whose keys are prefixed with the owner's id, so user B running user A's prompt never gets A's
//! stored answer, and [`ResponseCache::purge_owner`] removes one user's answers. The CLI's cache
//! (one local user) is unscoped.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;

use crate::providers::{ChatMessage, GenerateRequest, Generation, InferenceParams};

/// A failed cache operation.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The cache directory could not be created.
    #[error("creating cache directory {}", .path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// SQLite failed.
    #[error("response cache {}", .path.display())]
    Sqlite {
        /// The cache file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: rusqlite::Error,
    },
    /// The blocking task running the query panicked or was cancelled.
    #[error("response cache task failed")]
    Join(#[source] tokio::task::JoinError),
}

/// The part of a request that determines the response.
#[derive(Serialize)]
struct CacheKey<'a> {
    provider: &'a str,
    model_id: &'a str,
    params: &'a InferenceParams,
    messages: &'a [ChatMessage],
    prompt_text: &'a str,
}

/// The cache key text of a request to `provider` (its [`crate::providers::ModelProvider::cache_scope`]).
pub fn cache_key(provider: &str, request: &GenerateRequest) -> String {
    let key = CacheKey {
        provider,
        model_id: &request.model_id,
        params: &request.params,
        messages: &request.messages,
        prompt_text: &request.prompt_text,
    };
    // Serializing plain strings, numbers and vectors of them cannot fail.
    serde_json::to_string(&key).unwrap_or_default()
}

/// A SQLite response cache shared by all calls of a process (cheap to clone).
#[derive(Clone)]
pub struct ResponseCache {
    path: PathBuf,
    conn: Arc<Mutex<Connection>>,
    /// The key prefix of the owner this handle is scoped to (empty: unscoped).
    scope: Arc<str>,
}

impl std::fmt::Debug for ResponseCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseCache")
            .field("path", &self.path)
            .field("scoped", &!self.scope.is_empty())
            .finish()
    }
}

impl ResponseCache {
    /// The cache file name inside a cache directory.
    pub const FILE_NAME: &'static str = "responses.sqlite";

    /// Opens (or creates) `dir/responses.sqlite`.
    pub fn open_dir(dir: &Path) -> Result<ResponseCache, CacheError> {
        store::private_fs::create_dir_all(dir).map_err(|source| CacheError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        ResponseCache::open(&dir.join(Self::FILE_NAME))
    }

    /// Opens (or creates) the cache file `path`.
    pub fn open(path: &Path) -> Result<ResponseCache, CacheError> {
        let sqlite = |source| CacheError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        // Private: cached answers are as sensitive as the store (SQLite gives its -wal and -shm
        // files the same mode).
        store::private_fs::touch(path).map_err(|source| CacheError::CreateDir {
            path: path.to_path_buf(),
            source,
        })?;
        let conn = Connection::open(path).map_err(sqlite)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(sqlite)?;
        conn.query_row("PRAGMA journal_mode=WAL", [], |row| row.get::<_, String>(0))
            .map_err(sqlite)?;
        conn.execute_batch(
            "PRAGMA synchronous=NORMAL;
             CREATE TABLE IF NOT EXISTS responses (
                 key TEXT PRIMARY KEY,
                 generation TEXT NOT NULL,
                 created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
             );",
        )
        .map_err(sqlite)?;
        Ok(ResponseCache {
            path: path.to_path_buf(),
            conn: Arc::new(Mutex::new(conn)),
            scope: Arc::from(""),
        })
    }

    /// The same cache file, seen by `owner` only: its keys carry the owner, so entries of two
    /// owners never meet.
    pub fn for_owner(&self, owner: &str) -> ResponseCache {
        ResponseCache {
            path: self.path.clone(),
            conn: self.conn.clone(),
            scope: Arc::from(owner_prefix(owner)),
        }
    }

    fn scoped(&self, key: &str) -> String {
        format!("{}{key}", self.scope)
    }

    /// Removes every answer cached for `owner` (blocking); returns how many.
    pub fn purge_owner_blocking(&self, owner: &str) -> Result<usize, CacheError> {
        let prefix = owner_prefix(owner);
        let conn = self
            .conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        conn.execute(
            "DELETE FROM responses WHERE substr(key, 1, length(?1)) = ?1",
            [prefix.as_str()],
        )
        .map_err(|source| CacheError::Sqlite {
            path: self.path.clone(),
            source,
        })
    }

    /// The cache file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The cached generation for `key`, if any (blocking).
    pub fn get_blocking(&self, key: &str) -> Result<Option<Generation>, CacheError> {
        let conn = self
            .conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let text: Option<String> = conn
            .query_row(
                "SELECT generation FROM responses WHERE key = ?1",
                [self.scoped(key)],
                |row| row.get(0),
            )
            .optional()
            .map_err(|source| CacheError::Sqlite {
                path: self.path.clone(),
                source,
            })?;
        // An entry that no longer parses is treated as a miss and overwritten later.
        Ok(text.and_then(|text| serde_json::from_str(&text).ok()))
    }

    /// Stores a successful generation under `key` (blocking).
    pub fn put_blocking(&self, key: &str, generation: &Generation) -> Result<(), CacheError> {
        let text = serde_json::to_string(generation).unwrap_or_default();
        let conn = self
            .conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        conn.execute(
            "INSERT OR REPLACE INTO responses (key, generation) VALUES (?1, ?2)",
            [self.scoped(key).as_str(), text.as_str()],
        )
        .map_err(|source| CacheError::Sqlite {
            path: self.path.clone(),
            source,
        })?;
        Ok(())
    }

    /// The cached generation for `key`, if any.
    pub async fn get(&self, key: String) -> Result<Option<Generation>, CacheError> {
        let cache = self.clone();
        tokio::task::spawn_blocking(move || cache.get_blocking(&key))
            .await
            .map_err(CacheError::Join)?
    }

    /// Stores a successful generation under `key`.
    pub async fn put(&self, key: String, generation: Generation) -> Result<(), CacheError> {
        let cache = self.clone();
        tokio::task::spawn_blocking(move || cache.put_blocking(&key, &generation))
            .await
            .map_err(CacheError::Join)?
    }

    /// Number of cached responses.
    pub fn len_blocking(&self) -> Result<usize, CacheError> {
        let conn = self
            .conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        conn.query_row("SELECT COUNT(*) FROM responses", [], |row| {
            row.get::<_, i64>(0)
        })
        .map(|n| n as usize)
        .map_err(|source| CacheError::Sqlite {
            path: self.path.clone(),
            source,
        })
    }
}

/// The key prefix of `owner`'s entries: the owner as a JSON string (which holds no raw line
/// break) and a line break; unscoped keys start with `{`, so no prefix is another's.
fn owner_prefix(owner: &str) -> String {
    let mut prefix = serde_json::to_string(owner).unwrap_or_default();
    prefix.push('\n');
    prefix
}

/// The default cache directory: `$XDG_CACHE_HOME/llm-eval` or `~/.cache/llm-eval`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("llm-eval");
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(home) => PathBuf::from(home).join(".cache").join("llm-eval"),
        None => PathBuf::from(".cache").join("llm-eval"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::providers::Role;

    fn request(model_id: &str, prompt: &str, temperature: Option<f32>) -> GenerateRequest {
        GenerateRequest {
            model_id: model_id.to_string(),
            messages: vec![ChatMessage {
                role: Role::User,
                content: prompt.to_string(),
            }],
            prompt_text: prompt.to_string(),
            params: InferenceParams {
                temperature,
                ..InferenceParams::default()
            },
        }
    }

    #[test]
    fn key_depends_on_everything_that_determines_the_answer() {
        let base = cache_key("openai", &request("m", "hi", None));
        assert_eq!(base, cache_key("openai", &request("m", "hi", None)));
        assert_ne!(base, cache_key("bedrock", &request("m", "hi", None)));
        assert_ne!(base, cache_key("openai", &request("m2", "hi", None)));
        assert_ne!(base, cache_key("openai", &request("m", "hi ", None)));
        assert_ne!(base, cache_key("openai", &request("m", "hi", Some(0.5))));
    }

    #[test]
    fn round_trip_and_miss() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ResponseCache::open_dir(dir.path()).unwrap();
        let generation = Generation {
            text: " Paris \n".to_string(),
            input_tokens: Some(3),
            output_tokens: None,
        };
        assert_eq!(cache.get_blocking("k").unwrap(), None);
        cache.put_blocking("k", &generation).unwrap();
        assert_eq!(cache.get_blocking("k").unwrap(), Some(generation.clone()));
        assert_eq!(cache.len_blocking().unwrap(), 1);
        let reopened = ResponseCache::open_dir(dir.path()).unwrap();
        assert_eq!(reopened.get_blocking("k").unwrap(), Some(generation));
    }

    #[test]
    fn owners_never_see_each_others_answers_and_are_purged_alone() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ResponseCache::open_dir(dir.path()).unwrap();
        let alice = cache.for_owner("alice");
        let bob = cache.for_owner("bob");
        let answer = |text: &str| Generation {
            text: text.to_string(),
            input_tokens: None,
            output_tokens: None,
        };
        alice.put_blocking("k", &answer("alice's")).unwrap();
        assert_eq!(bob.get_blocking("k").unwrap(), None);
        assert_eq!(cache.get_blocking("k").unwrap(), None);
        bob.put_blocking("k", &answer("bob's")).unwrap();
        assert_eq!(alice.get_blocking("k").unwrap(), Some(answer("alice's")));
        assert_eq!(bob.get_blocking("k").unwrap(), Some(answer("bob's")));
        // An owner whose id starts like another's is still another owner.
        cache
            .for_owner("ali")
            .put_blocking("k", &answer("ali's"))
            .unwrap();
        assert_eq!(cache.purge_owner_blocking("alice").unwrap(), 1);
        assert_eq!(alice.get_blocking("k").unwrap(), None);
        assert_eq!(bob.get_blocking("k").unwrap(), Some(answer("bob's")));
        assert_eq!(
            cache.for_owner("ali").get_blocking("k").unwrap(),
            Some(answer("ali's"))
        );
    }
}
