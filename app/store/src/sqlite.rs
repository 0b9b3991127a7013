//! The SQLite store: one file in WAL mode (`store.sqlite`), with uploaded datasets beside it
//! in `datasets/` and uploads being checked in `uploads/`.
//!
//! Invariants: one writer connection behind a mutex takes every write; reads (pages, exports)
//! go through their own read-only connections, so a page never waits behind a run's write
//! transaction (WAL gives each reader a consistent snapshot). The schema is the numbered
//! migrations of `migrations/`, applied in order at open inside an immediate transaction
//! (`PRAGMA user_version` holds the version), so two processes opening the same file at once
//! migrate it once. Every call runs on a blocking thread, never on the async runtime.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params, params_from_iter};
use sha2::Digest;

use super::scores::{MatrixCache, MatrixEntry};
use super::teams::{
    MAX_AUDIT_SHOWN, MAX_CHALLENGES, MAX_GRANTS_PER_ITEM, MAX_OPEN_CHALLENGES, MAX_SHARED_LISTED,
    MAX_SUBMISSIONS, MAX_USERS_LISTED,
};
use super::{
    AuditEntry, ChallengeRow, ChallengeSpec, Grantee, ItemKind, KnownUser, Refusal, SharedItem,
    Submission,
};
use super::{
    Cell, DatasetRow, MAX_PAGE, NewDataset, PageStart, RecordCounts, RecordCursor, RecordFilter,
    RecordKey, RecordPage, RecordQuery, RecordRow, RecordSort, RunRow, RunStatus, ScoreMatrix,
    Session, SessionUser, Store, StoreError, StoreFuture, UserId,
};

/// The schema, one migration per version (version = position + 1).
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_runs_records.sql"),
    include_str!("migrations/0002_owners_datasets_settings_sessions.sql"),
    include_str!("migrations/0003_run_leases.sql"),
    include_str!("migrations/0004_cancel_requests.sql"),
    include_str!("migrations/0005_run_names.sql"),
    include_str!("migrations/0006_prompt_variants.sql"),
    include_str!("migrations/0007_record_perturbations.sql"),
    include_str!("migrations/0008_record_scores.sql"),
    include_str!("migrations/0009_teams.sql"),
    include_str!("migrations/0010_run_counts.sql"),
];

/// Read connections kept open for reuse (each keeps its prepared statements and page cache;
/// a read finding none idle opens one). 8 rather than 4 served 2–7 % more pages with 50
/// users going round the pages of a 60,000-row run (`cargo bench -p web --bench pages`).
const MAX_IDLE_READERS: usize = 8;

const RECORD_COLUMNS: &str = "model, model_order, position, idx, model_input, prompt, model_output, \
     target_output, category, scores, latency_ms, input_tokens, output_tokens, cost_usd, error, judge_replies, cached, \
     variant, perturbations";

const RUN_COLUMNS: &str = "id, owner, created, config, status, total, summary, name, notes";

const DATASET_COLUMNS: &str = "id, owner, name, format, size_bytes, n_records, fields, created";

/// Now as stored: RFC 3339 UTC with milliseconds.
const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ','now')";

/// The SQLite store (cheap to clone).
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    datasets_dir: PathBuf,
    uploads_dir: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    /// Score matrices of runs that are not running.
    matrices: MatrixCache,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish()
    }
}

fn sqlite_error<'a>(
    path: &'a Path,
    what: &'static str,
) -> impl Fn(rusqlite::Error) -> StoreError + 'a {
    move |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        what,
        source,
    }
}

fn io_error<'a>(path: &'a Path, what: &'static str) -> impl Fn(std::io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        what,
        source,
    }
}

/// A random token of `n_bytes` bytes as lowercase hex (session ids, CSRF tokens, dataset ids).
pub fn random_hex(n_bytes: usize) -> String {
    let mut bytes = vec![0u8; n_bytes];
    getrandom::fill(&mut bytes)
        .expect("the operating system's random source is available (getrandom never fails on supported platforms)");
    hex(&bytes)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// The stored key of a session id: its SHA-256, so the database never holds a usable cookie.
fn session_key(session_id: &str) -> String {
    hex(&sha2::Sha256::digest(session_id.as_bytes()))
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |now| now.as_secs() as i64)
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let sqlite = |what| sqlite_error(path, what);
    let conn = Connection::open(path).map_err(sqlite("opening"))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(sqlite("setting busy timeout"))?;
    conn.query_row("PRAGMA journal_mode=WAL", [], |row| row.get::<_, String>(0))
        .map_err(sqlite("enabling WAL"))?;
    conn.execute_batch("PRAGMA synchronous = NORMAL")
        .map_err(sqlite("setting synchronous"))?;
    Ok(conn)
}

/// Applies the migrations newer than the file's version.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let sqlite = |what| sqlite_error(path, what);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite("starting migration"))?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(sqlite("reading schema version"))?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found: version,
            known,
        });
    }
    for (migration_idx, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.execute_batch(sql).map_err(sqlite("migrating schema"))?;
        tx.pragma_update(None, "user_version", migration_idx as i64 + 1)
            .map_err(sqlite("writing schema version"))?;
    }
    tx.commit().map_err(sqlite("committing migration"))
}

/// A per-user JSON document's table: its name, its user column, and what reading and saving
/// it are called.
#[derive(Clone, Copy)]
struct UserDocument {
    table: &'static str,
    user_column: &'static str,
    reading: &'static str,
    saving: &'static str,
}

/// The user's saved form settings.
const SETTINGS: UserDocument = UserDocument {
    table: "settings",
    user_column: "owner",
    reading: "reading settings",
    saving: "saving settings",
};

/// The user's own quotas, set by a facilitator.
const QUOTAS: UserDocument = UserDocument {
    table: "user_quotas",
    user_column: "user_id",
    reading: "reading quotas",
    saving: "saving quotas",
};

impl SqliteStore {
    /// Opens (or creates) the store file, creating its directory and migrating its schema.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let dir = path
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        crate::private_fs::create_dir_all(dir)
            .map_err(io_error(dir, "creating the store directory"))?;
        // Private: the store holds every prompt and answer (SQLite gives its -wal and -shm
        // files the same mode).
        crate::private_fs::touch(path).map_err(io_error(path, "creating the store file"))?;
        let mut conn = open_connection(path)?;
        migrate(&mut conn, path)?;
        let datasets_dir = dir.join("datasets");
        let uploads_dir = dir.join("uploads");
        for sub in [&datasets_dir, &uploads_dir] {
            crate::private_fs::create_dir_all(sub)
                .map_err(io_error(sub, "creating a directory"))?;
        }
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                datasets_dir,
                uploads_dir,
                writer: Mutex::new(conn),
                readers: Mutex::new(Vec::new()),
                matrices: MatrixCache::default(),
            }),
        })
    }

    /// Opens the store and wraps it for sharing.
    pub fn open_shared(path: &Path) -> Result<Arc<dyn Store>, StoreError> {
        Ok(Arc::new(SqliteStore::open(path)?))
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// A user's JSON document, if saved.
    fn user_document(
        &self,
        user: UserId,
        document: UserDocument,
    ) -> StoreFuture<'static, Option<serde_json::Value>> {
        self.blocking(move |inner| {
            let text: Option<String> = inner.read(|conn| {
                conn.query_row(
                    &format!(
                        "SELECT value FROM {} WHERE {} = ?1",
                        document.table, document.user_column
                    ),
                    [user.as_str()],
                    |row| row.get(0),
                )
                .optional()
                .map_err(inner.sqlite(document.reading))
            })?;
            text.map(|text| inner.json(user.as_str(), "value", &text))
                .transpose()
        })
    }

    /// Saves a user's JSON document (`value`, serialized), replacing the earlier one.
    fn save_user_document(
        &self,
        user: UserId,
        document: UserDocument,
        value: String,
    ) -> StoreFuture<'static, ()> {
        self.blocking(move |inner| {
            inner.write(|conn| {
                conn.execute(
                    &format!(
                        "INSERT INTO {table} ({user}, value, updated) VALUES (?1, ?2, {NOW}) \
                         ON CONFLICT ({user}) DO UPDATE SET value = excluded.value, updated = excluded.updated",
                        table = document.table,
                        user = document.user_column,
                    ),
                    params![user.as_str(), value],
                )
                .map_err(inner.sqlite(document.saving))?;
                Ok(())
            })
        })
    }

    /// Runs `work` on a blocking thread.
    fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<'static, T> {
        let inner = self.inner.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || work(&inner))
                .await
                .map_err(StoreError::Task)?
        })
    }
}

impl Inner {
    fn sqlite(&self, what: &'static str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        sqlite_error(&self.path, what)
    }

    fn write<T>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        work(&mut conn)
    }

    /// Runs `work` on a read connection of the pool (opened when none is idle).
    fn read<T>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let idle = self
            .readers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop();
        let conn = match idle {
            Some(conn) => conn,
            None => {
                let conn = open_connection(&self.path)?;
                conn.execute_batch("PRAGMA query_only = ON")
                    .map_err(self.sqlite("opening reader"))?;
                conn
            }
        };
        let res = work(&conn);
        let mut readers = self
            .readers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if readers.len() < MAX_IDLE_READERS {
            readers.push(conn);
        }
        res
    }

    fn json<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
        column: &'static str,
        text: &str,
    ) -> Result<T, StoreError> {
        serde_json::from_str(text).map_err(|source| StoreError::Json {
            path: self.path.clone(),
            key: key.to_string(),
            column,
            source,
        })
    }

    fn run_row(&self, row: &rusqlite::Row<'_>) -> Result<RunRow, StoreError> {
        let sqlite = self.sqlite("reading run");
        let id: String = row.get(0).map_err(&sqlite)?;
        let config: String = row.get(3).map_err(&sqlite)?;
        let status: String = row.get(4).map_err(&sqlite)?;
        let summary: Option<String> = row.get(6).map_err(&sqlite)?;
        Ok(RunRow {
            owner: UserId::new(row.get::<_, String>(1).map_err(&sqlite)?),
            created: row.get(2).map_err(&sqlite)?,
            config: self.json(&id, "config", &config)?,
            status: RunStatus::parse(&status),
            total: row
                .get::<_, Option<i64>>(5)
                .map_err(&sqlite)?
                .map(|n| n as usize),
            summary: summary
                .as_deref()
                .map(|text| self.json(&id, "summary", text))
                .transpose()?,
            name: row.get(7).map_err(&sqlite)?,
            notes: row.get(8).map_err(&sqlite)?,
            id,
        })
    }

    fn record_row(&self, run_id: &str, row: &rusqlite::Row<'_>) -> Result<RecordRow, StoreError> {
        let sqlite = self.sqlite("reading records");
        let text = |i| row.get::<_, String>(i).map_err(&sqlite);
        let count = |i| {
            row.get::<_, Option<i64>>(i)
                .map(|n| n.map(|n| n as u64))
                .map_err(&sqlite)
        };
        Ok(RecordRow {
            model: text(0)?,
            model_order: row.get::<_, i64>(1).map_err(&sqlite)? as usize,
            position: row.get::<_, i64>(2).map_err(&sqlite)? as usize,
            index: row.get::<_, i64>(3).map_err(&sqlite)? as usize,
            model_input: text(4)?,
            prompt: text(5)?,
            model_output: row.get(6).map_err(&sqlite)?,
            target_output: row.get(7).map_err(&sqlite)?,
            category: row.get(8).map_err(&sqlite)?,
            scores: self.json(run_id, "scores", &text(9)?)?,
            latency_ms: row.get(10).map_err(&sqlite)?,
            input_tokens: count(11)?,
            output_tokens: count(12)?,
            cost_usd: row.get(13).map_err(&sqlite)?,
            error: row.get(14).map_err(&sqlite)?,
            judge_replies: self.json(run_id, "judge_replies", &text(15)?)?,
            cached: row.get::<_, i64>(16).map_err(&sqlite)? != 0,
            variant: text(17)?,
            perturbations: self.json(run_id, "perturbations", &text(18)?)?,
        })
    }

    fn dataset_row(&self, row: &rusqlite::Row<'_>) -> Result<DatasetRow, StoreError> {
        let sqlite = self.sqlite("reading dataset");
        let id: String = row.get(0).map_err(&sqlite)?;
        let format: String = row.get(3).map_err(&sqlite)?;
        let fields: String = row.get(6).map_err(&sqlite)?;
        Ok(DatasetRow {
            owner: UserId::new(row.get::<_, String>(1).map_err(&sqlite)?),
            name: row.get(2).map_err(&sqlite)?,
            size_bytes: row.get::<_, i64>(4).map_err(&sqlite)? as u64,
            n_records: row.get::<_, i64>(5).map_err(&sqlite)? as usize,
            fields: self.json(&id, "fields", &fields)?,
            created: row.get(7).map_err(&sqlite)?,
            path: self.dataset_file(&id, &format),
            format,
            id,
        })
    }

    /// The stored file of a dataset. Ids are our own random hex and formats one of two words,
    /// so the name can never leave the datasets directory.
    fn dataset_file(&self, dataset_id: &str, format: &str) -> PathBuf {
        let safe_id: String = dataset_id
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        let extension = if format == "csv" { "csv" } else { "jsonl" };
        self.datasets_dir.join(format!("{safe_id}.{extension}"))
    }

    /// The stored row counts of a run of `owner` (kept beside the run by `insert_records`)
    /// and whether it is running; `None` when `owner` has no such run.
    fn run_counts(
        &self,
        conn: &Connection,
        owner: &UserId,
        run_id: &str,
    ) -> Result<Option<(RecordCounts, bool)>, StoreError> {
        conn.prepare_cached(
            "SELECT n_ok, n_failed, status = 'running' FROM runs WHERE id = ?1 AND owner = ?2",
        )
        .and_then(|mut statement| {
            statement
                .query_row(params![run_id, owner.as_str()], |row| {
                    Ok((
                        RecordCounts {
                            ok: row.get::<_, i64>(0)? as usize,
                            failed: row.get::<_, i64>(1)? as usize,
                        },
                        row.get::<_, bool>(2)?,
                    ))
                })
                .optional()
        })
        .map_err(self.sqlite("counting records"))
    }

    fn owns_run(
        &self,
        conn: &Connection,
        owner: &UserId,
        run_id: &str,
    ) -> Result<bool, StoreError> {
        conn.query_row(
            "SELECT 1 FROM runs WHERE id = ?1 AND owner = ?2",
            params![run_id, owner.as_str()],
            |_| Ok(()),
        )
        .optional()
        .map(|found| found.is_some())
        .map_err(self.sqlite("reading run"))
    }
}

/// Deletes the grants and audit entries of an item (with the item, in its transaction).
fn delete_item_rows(conn: &Connection, kind: ItemKind, item_id: &str) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM grants WHERE kind = ?1 AND item_id = ?2",
        params![kind.as_str(), item_id],
    )?;
    conn.execute(
        "DELETE FROM audit WHERE kind = ?1 AND item_id = ?2",
        params![kind.as_str(), item_id],
    )?;
    Ok(())
}

/// Whether `owner` has the item.
fn owns_item(
    conn: &Connection,
    owner: &UserId,
    kind: ItemKind,
    item_id: &str,
) -> rusqlite::Result<bool> {
    let sql = match kind {
        ItemKind::Run => "SELECT 1 FROM runs WHERE id = ?1 AND owner = ?2",
        ItemKind::Dataset => "SELECT 1 FROM datasets WHERE id = ?1 AND owner = ?2",
    };
    conn.query_row(sql, params![item_id, owner.as_str()], |_| Ok(()))
        .optional()
        .map(|found| found.is_some())
}

impl Inner {
    fn challenge_row(&self, row: &rusqlite::Row<'_>) -> Result<ChallengeRow, StoreError> {
        let sqlite = self.sqlite("reading challenge");
        let id: String = row.get(0).map_err(&sqlite)?;
        let spec: String = row.get(4).map_err(&sqlite)?;
        Ok(ChallengeRow {
            owner: UserId::new(row.get::<_, String>(1).map_err(&sqlite)?),
            created: row.get(2).map_err(&sqlite)?,
            open: row.get::<_, i64>(3).map_err(&sqlite)? != 0,
            spec: self.json(&id, "spec", &spec)?,
            id,
        })
    }
}

const CHALLENGE_COLUMNS: &str = "id, owner, created, open, spec";

/// One part of a records page's order: the rows with a sort value (ordered by it, then by
/// key), or the rows without one (by key), or, sorted by position, every row.
struct OrderPart {
    /// The tables read (`r` is the records table).
    from: &'static str,
    /// Conditions added to the filter, with their values.
    condition: String,
    values: Vec<rusqlite::types::Value>,
    /// The value ordered by (when the part is the valued one).
    value: Option<&'static str>,
    value_ascending: bool,
    /// The key columns, ordered after the value.
    key: &'static str,
    key_ascending: bool,
}

/// The parts of a query's order, first to last. A score's valued rows are read through the
/// `record_scores_by_value` index from the cursor's key on; the rows without that score after.
fn order_parts(query: &RecordQuery, run_id: &str) -> Vec<OrderPart> {
    use rusqlite::types::Value;
    let ascending = !query.descending;
    match &query.sort {
        RecordSort::Position => vec![OrderPart {
            from: "records r",
            condition: String::new(),
            values: Vec::new(),
            value: None,
            value_ascending: true,
            key: "r.position, r.model_order",
            key_ascending: ascending,
        }],
        RecordSort::Latency => vec![
            OrderPart {
                from: "records r",
                condition: " AND r.latency_ms IS NOT NULL".to_string(),
                values: Vec::new(),
                value: Some("r.latency_ms"),
                value_ascending: ascending,
                key: "r.position, r.model_order",
                key_ascending: true,
            },
            OrderPart {
                from: "records r",
                condition: " AND r.latency_ms IS NULL".to_string(),
                values: Vec::new(),
                value: None,
                value_ascending: true,
                key: "r.position, r.model_order",
                key_ascending: true,
            },
        ],
        RecordSort::Score(score) => vec![
            OrderPart {
                // CROSS JOIN: the index of values drives the join, so its order is the page's.
                from: "record_scores s CROSS JOIN records r ON r.run_id = s.run_id \
                       AND r.position = s.position AND r.model_order = s.model_order",
                // The empty name holds failure flags, never a score.
                condition: " AND s.run_id = ? AND s.score = ? AND s.score <> ''".to_string(),
                values: vec![Value::Text(run_id.to_string()), Value::Text(score.clone())],
                value: Some("s.value"),
                value_ascending: ascending,
                key: "s.position, s.model_order",
                key_ascending: true,
            },
            OrderPart {
                // Every row has a line under the empty name: the rows whose key has no line of
                // the score are found in the index, and only they are read.
                from: "record_scores z CROSS JOIN records r ON r.run_id = z.run_id \
                       AND r.position = z.position AND r.model_order = z.model_order",
                condition: " AND z.run_id = ? AND z.score = '' AND NOT EXISTS (SELECT 1 FROM record_scores s \
                            WHERE s.run_id = z.run_id AND s.score = ? AND s.score <> '' \
                            AND s.position = z.position AND s.model_order = z.model_order)"
                    .to_string(),
                values: vec![Value::Text(run_id.to_string()), Value::Text(score.clone())],
                value: None,
                value_ascending: true,
                key: "z.position, z.model_order",
                key_ascending: true,
            },
        ],
    }
}

/// [`RECORD_COLUMNS`] of the records table named `r`.
fn prefixed_record_columns() -> String {
    RECORD_COLUMNS
        .split(',')
        .map(|column| format!("r.{}", column.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The score index's lines of a stored row: its failure flag under the empty name, and each
/// finite score.
fn score_lines(row: &RecordRow) -> impl Iterator<Item = (&str, f64)> {
    std::iter::once(("", if row.error.is_some() { 1.0 } else { 0.0 })).chain(
        row.scores
            .iter()
            .filter(|score| !score.name.is_empty())
            .map(|score| (score.name.as_str(), score.value.as_f64()))
            .filter(|(_, value)| value.is_finite()),
    )
}

impl Store for SqliteStore {
    fn location(&self) -> String {
        self.inner.path.display().to_string()
    }

    fn create_run(
        &self,
        owner: &UserId,
        run_id: &str,
        config: &serde_json::Value,
        total: usize,
    ) -> StoreFuture<'_, ()> {
        let name = crate::requested_name(config);
        let (owner, run_id, config) = (owner.clone(), run_id.to_string(), config.to_string());
        self.blocking(move |inner| {
            inner.write(|conn| {
                conn.execute(
                    &format!("INSERT INTO runs (id, owner, created, config, status, total, name) VALUES (?1, ?2, {NOW}, ?3, 'running', ?4, ?5)"),
                    params![run_id, owner.as_str(), config, total as i64, name],
                )
                .map_err(inner.sqlite("creating run"))?;
                Ok(())
            })
        })
    }

    fn finish_run(
        &self,
        owner: &UserId,
        run_id: &str,
        status: RunStatus,
        summary: &serde_json::Value,
    ) -> StoreFuture<'_, ()> {
        let (owner, run_id, summary) = (owner.clone(), run_id.to_string(), summary.to_string());
        self.blocking(move |inner| {
            let n_rows = inner.write(|conn| {
                conn.execute(
                    "UPDATE runs SET status = ?3, summary = ?4 WHERE id = ?1 AND owner = ?2",
                    params![run_id, owner.as_str(), status.as_str(), summary],
                )
                .map_err(inner.sqlite("finishing run"))
            })?;
            if n_rows == 0 {
                return Err(StoreError::UnknownRun { run_id });
            }
            Ok(())
        })
    }

    fn run(&self, owner: &UserId, run_id: &str) -> StoreFuture<'_, Option<RunRow>> {
        let (owner, run_id) = (owner.clone(), run_id.to_string());
        self.blocking(move |inner| {
            inner.read(|conn| {
                let mut statement = conn
                    .prepare_cached(&format!(
                        "SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1 AND owner = ?2"
                    ))
                    .map_err(inner.sqlite("reading run"))?;
                let mut rows = statement
                    .query(params![run_id, owner.as_str()])
                    .map_err(inner.sqlite("reading run"))?;
                match rows.next().map_err(inner.sqlite("reading run"))? {
                    Some(row) => inner.run_row(row).map(Some),
                    None => Ok(None),
                }
            })
        })
    }

    fn runs(&self, owner: &UserId, limit: usize) -> StoreFuture<'_, Vec<RunRow>> {
        let owner = owner.clone();
        self.blocking(move |inner| {
            inner.read(|conn| {
                let mut statement = conn
                    .prepare_cached(&format!(
                        "SELECT {RUN_COLUMNS} FROM runs WHERE owner = ?1 ORDER BY created DESC, id DESC LIMIT ?2"
                    ))
                    .map_err(inner.sqlite("listing runs"))?;
                let mut rows = statement
                    .query(params![owner.as_str(), limit.min(i64::MAX as usize) as i64])
                    .map_err(inner.sqlite("listing runs"))?;
                let mut runs = Vec::new();
                while let Some(row) = rows.next().map_err(inner.sqlite("listing runs"))? {
                    runs.push(inner.run_row(row)?);
                }
                Ok(runs)
            })
        })
    }

    fn delete_run(&self, owner: &UserId, run_id: &str) -> StoreFuture<'_, bool> {
        let (owner, run_id) = (owner.clone(), run_id.to_string());
        self.blocking(move |inner| {
            inner.write(|conn| {
                if !inner.owns_run(conn, &owner, &run_id)? {
                    return Ok(false);
                }
                // Records first: they reference the run.
                let tx = conn.transaction().map_err(inner.sqlite("deleting run"))?;
                tx.execute("DELETE FROM records WHERE run_id = ?1", [&run_id])
                    .map_err(inner.sqlite("deleting records"))?;
                delete_item_rows(&tx, ItemKind::Run, &run_id)
                    .map_err(inner.sqlite("deleting run"))?;
                tx.execute("DELETE FROM record_scores WHERE run_id = ?1", [&run_id])
                    .map_err(inner.sqlite("deleting the score index"))?;
                tx.execute(
                    "DELETE FROM runs WHERE id = ?1 AND owner = ?2",
                    params![run_id, owner.as_str()],
                )
                .map_err(inner.sqlite("deleting run"))?;
                tx.commit().map_err(inner.sqlite("deleting run"))?;
                inner.matrices.forget(&owner, &run_id);
                Ok(true)
            })
        })
    }

    fn mark_interrupted(&self) -> StoreFuture<'_, Vec<(UserId, String)>> {
        self.blocking(move |inner| {
            inner.write(|conn| {
                let mut statement = conn
                    .prepare("UPDATE runs SET status = 'interrupted' WHERE status = 'running' AND lease_until IS NULL RETURNING owner, id")
                    .map_err(inner.sqlite("marking interrupted runs"))?;
                let rows = statement
                    .query_map([], |row| {
                        Ok((UserId::new(row.get::<_, String>(0)?), row.get::<_, String>(1)?))
                    })
                    .map_err(inner.sqlite("marking interrupted runs"))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(inner.sqlite("marking interrupted runs"))?;
                Ok(rows)
            })
        })
    }

    fn acquire_lease(
        &self,
        owner: &UserId,
        run_id: &str,
        holder: &str,
        ttl_secs: u64,
    ) -> StoreFuture<'_, bool> {
        let (owner, run_id, holder) = (owner.clone(), run_id.to_string(), holder.to_string());
        self.blocking(move |inner| {
            let now = unix_now();
            let until = now.saturating_add(ttl_secs.min(i64::MAX as u64) as i64);
            let n_rows = inner.write(|conn| {
                conn.execute(
                    "UPDATE runs SET lease_holder = ?3, lease_until = ?4 WHERE id = ?1 AND owner = ?2 \
                     AND status = 'running' AND (lease_until IS NULL OR lease_holder = ?3 OR lease_until < ?5)",
                    params![run_id, owner.as_str(), holder, until, now],
                )
                .map_err(inner.sqlite("taking a run lease"))
            })?;
            Ok(n_rows == 1)
        })
    }

    fn release_lease(&self, owner: &UserId, run_id: &str, holder: &str) -> StoreFuture<'_, ()> {
        let (owner, run_id, holder) = (owner.clone(), run_id.to_string(), holder.to_string());
        self.blocking(move |inner| {
            inner.write(|conn| {
                conn.execute(
                    "UPDATE runs SET lease_until = 0 WHERE id = ?1 AND owner = ?2 AND lease_holder = ?3",
                    params![run_id, owner.as_str(), holder],
                )
                .map_err(inner.sqlite("releasing a run lease"))?;
                Ok(())
            })
        })
    }

    fn request_cancel(&self, owner: &UserId, run_id: &str) -> StoreFuture<'_, bool> {
        let (owner, run_id) = (owner.clone(), run_id.to_string());
        self.blocking(move |inner| {
            let n_rows = inner.write(|conn| {
                conn.execute(
                    "UPDATE runs SET cancel_requested = 1 WHERE id = ?1 AND owner = ?2 AND status = 'running'",
                    params![run_id, owner.as_str()],
                )
                .map_err(inner.sqlite("requesting a run's cancellation"))
            })?;
            Ok(n_rows == 1)
        })
    }

    fn cancel_requested(&self, owner: &UserId, run_id: &str) -> StoreFuture<'_, bool> {
        let (owner, run_id) = (owner.clone(), run_id.to_string());
        self.blocking(move |inner| {
            inner.read(|conn| {
                let mut statement = conn
                    .prepare_cached(
                        "SELECT cancel_requested FROM runs WHERE id = ?1 AND owner = ?2",
                    )
                    .map_err(inner.sqlite("reading a run's cancellation request"))?;
                let mut rows = statement
                    .query(params![run_id, owner.as_str()])
                    .map_err(inner.sqlite("reading a run's cancellation request"))?;
                match rows
                    .next()
                    .map_err(inner.sqlite("reading a run's cancellation request"))?
                {
                    Some(row) => Ok(row
                        .get::<_, i64>(0)
                        .map_err(inner.sqlite("reading a run's cancellation request"))?
                        != 0),
                    None => Ok(false),
                }
            })
        })
    }

    fn orphaned_runs(&self) -> StoreFuture<'_, Vec<(UserId, String)>> {
        self.blocking(move |inner| {
            inner.read(|conn| {
                let mut statement = conn
                    .prepare_cached(
                        "SELECT owner, id FROM runs WHERE status = 'running' AND lease_until < ?1 ORDER BY owner, id",
                    )
                    .map_err(inner.sqlite("finding orphaned runs"))?;
                let rows = statement
                    .query_map([unix_now()], |row| {
                        Ok((UserId::new(row.get::<_, String>(0)?), row.get::<_, String>(1)?))
                    })
                    .map_err(inner.sqlite("finding orphaned runs"))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(inner.sqlite("finding orphaned runs"))?;
                Ok(rows)
            })
        })
    }

    fn annotate_run(
        &self,
        owner: &UserId,
        run_id: &str,
        name: &str,
        notes: &str,
    ) -> StoreFuture<'_, bool> {
        let (owner, run_id, name, notes) = (
            owner.clone(),
            run_id.to_string(),
            name.to_string(),
            notes.to_string(),
        );
        self.blocking(move |inner| {
            let n_rows = inner.write(|conn| {
                conn.execute(
                    "UPDATE runs SET name = ?3, notes = ?4 WHERE id = ?1 AND owner = ?2",
                    params![run_id, owner.as_str(), name, notes],
                )
                .map_err(inner.sqlite("naming a run"))
            })?;
            Ok(n_rows == 1)
        })
    }

    fn insert_records(
        &self,
        owner: &UserId,
        run_id: &str,
        rows: Vec<RecordRow>,
    ) -> StoreFuture<'_, ()> {
        let (owner, run_id) = (owner.clone(), run_id.to_string());
        self.blocking(move |inner| {
            inner.write(|conn| {
                if !inner.owns_run(conn, &owner, &run_id)? {
                    return Err(StoreError::UnknownRun { run_id });
                }
                let tx = conn
                    .transaction()
                    .map_err(inner.sqlite("starting transaction"))?;
                {
                    let mut statement = tx
                        .prepare_cached(&format!(
                            "INSERT INTO records (run_id, {RECORD_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)"
                        ))
                        .map_err(inner.sqlite("inserting records"))?;
                    for record in &rows {
                        let scores = serde_json::to_string(&record.scores).unwrap_or_default();
                        let judge_replies =
                            serde_json::to_string(&record.judge_replies).unwrap_or_default();
                        let perturbations =
                            serde_json::to_string(&record.perturbations).unwrap_or_default();
                        statement
                            .execute(params![
                                run_id,
                                record.model,
                                record.model_order as i64,
                                record.position as i64,
                                record.index as i64,
                                record.model_input,
                                record.prompt,
                                record.model_output,
                                record.target_output,
                                record.category,
                                scores,
                                record.latency_ms,
                                record.input_tokens.map(|n| n as i64),
                                record.output_tokens.map(|n| n as i64),
                                record.cost_usd,
                                record.error,
                                judge_replies,
                                i64::from(record.cached),
                                record.variant,
                                perturbations,
                            ])
                            .map_err(inner.sqlite("inserting records"))?;
                    }
                    let mut index = tx
                        .prepare_cached(
                            "INSERT OR IGNORE INTO record_scores (run_id, score, position, model_order, idx, value) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        )
                        .map_err(inner.sqlite("indexing scores"))?;
                    let failed = rows.iter().filter(|record| record.error.is_some()).count();
                    tx.prepare_cached(
                        "UPDATE runs SET n_ok = n_ok + ?3, n_failed = n_failed + ?4 WHERE id = ?1 AND owner = ?2",
                    )
                    .and_then(|mut statement| {
                        statement.execute(params![
                            run_id,
                            owner.as_str(),
                            (rows.len() - failed) as i64,
                            failed as i64
                        ])
                    })
                    .map_err(inner.sqlite("counting records"))?;
                    for record in &rows {
                        for (score, value) in score_lines(record) {
                            index
                                .execute(params![
                                    run_id,
                                    score,
                                    record.position as i64,
                                    record.model_order as i64,
                                    record.index as i64,
                                    value
                                ])
                                .map_err(inner.sqlite("indexing scores"))?;
                        }
                    }
                }
                tx.commit().map_err(inner.sqlite("committing records"))
            })
        })
    }

    fn records_after(
        &self,
        owner: &UserId,
        run_id: &str,
        after: Option<RecordKey>,
        limit: usize,
    ) -> StoreFuture<'_, Vec<RecordRow>> {
        let (owner, run_id) = (owner.clone(), run_id.to_string());
        self.blocking(move |inner| {
            inner.read(|conn| {
                if !inner.owns_run(conn, &owner, &run_id)? {
                    return Ok(Vec::new());
                }
                let (position, model_order) =
                    after.map_or((-1, -1), |key| (key.position as i64, key.model_order as i64));
                let mut statement = conn
                    .prepare_cached(&format!(
                        "SELECT {RECORD_COLUMNS} FROM records WHERE run_id = ?1 AND (position, model_order) > (?2, ?3) \
                         ORDER BY position, model_order LIMIT ?4"
                    ))
                    .map_err(inner.sqlite("reading records"))?;
                let mut rows = statement
                    .query(params![run_id, position, model_order, limit.min(MAX_PAGE) as i64])
                    .map_err(inner.sqlite("reading records"))?;
                let mut records = Vec::new();
                while let Some(row) = rows.next().map_err(inner.sqlite("reading records"))? {
                    records.push(inner.record_row(&run_id, row)?);
                }
                Ok(records)
            })
        })
    }

    fn records_at(
        &self,
        owner: &UserId,
        run_id: &str,
        keys: &[RecordKey],
    ) -> StoreFuture<'_, Vec<RecordRow>> {
        let (owner, run_id) = (owner.clone(), run_id.to_string());
        let mut keys: Vec<RecordKey> = keys.iter().take(MAX_PAGE).copied().collect();
        keys.sort_by_key(|key| (key.position, key.model_order));
        keys.dedup();
        self.blocking(move |inner| {
            inner.read(|conn| {
                if !inner.owns_run(conn, &owner, &run_id)? {
                    return Ok(Vec::new());
                }
                let mut statement = conn
                    .prepare_cached(&format!(
                        "SELECT {RECORD_COLUMNS} FROM records WHERE run_id = ?1 AND position = ?2 AND model_order = ?3"
                    ))
                    .map_err(inner.sqlite("reading records"))?;
                let mut records = Vec::with_capacity(keys.len());
                for key in keys {
                    let mut rows = statement
                        .query(params![run_id, key.position as i64, key.model_order as i64])
                        .map_err(inner.sqlite("reading records"))?;
                    if let Some(row) = rows.next().map_err(inner.sqlite("reading records"))? {
                        records.push(inner.record_row(&run_id, row)?);
                    }
                }
                Ok(records)
            })
        })
    }

    fn query_records(
        &self,
        owner: &UserId,
        run_id: &str,
        query: &RecordQuery,
    ) -> StoreFuture<'_, RecordPage> {
        let (owner, run_id, query) = (owner.clone(), run_id.to_string(), query.clone());
        self.blocking(move |inner| {
            use rusqlite::types::Value;
            inner.read(|conn| {
                let Some((counts, _)) = inner.run_counts(conn, &owner, &run_id)? else {
                    return Ok(RecordPage { rows: Vec::new(), total: 0 });
                };
                let mut filter = String::from("r.run_id = ?");
                let mut filter_values = vec![Value::Text(run_id.clone())];
                if let Some(model) = &query.model {
                    filter.push_str(" AND r.model = ?");
                    filter_values.push(Value::Text(model.clone()));
                }
                if let Some(variant) = &query.variant {
                    filter.push_str(" AND r.variant = ?");
                    filter_values.push(Value::Text(variant.clone()));
                }
                match &query.filter {
                    RecordFilter::All => {}
                    RecordFilter::Failed => filter.push_str(" AND r.error IS NOT NULL"),
                    RecordFilter::ScoreBelow { score, below } => {
                        filter.push_str(
                            " AND r.error IS NULL AND EXISTS (SELECT 1 FROM record_scores f WHERE f.run_id = r.run_id \
                             AND f.score = ? AND f.score <> '' AND f.position = r.position AND f.model_order = r.model_order AND f.value < ?)",
                        );
                        filter_values.push(Value::Text(score.clone()));
                        filter_values.push(Value::Real(*below));
                    }
                }
                // Every row, or every failed row, of the run: its counters; a filter by column or
                // score is counted.
                let total = match (&query.model, &query.variant, &query.filter) {
                    (None, None, RecordFilter::All) => (counts.ok + counts.failed) as i64,
                    (None, None, RecordFilter::Failed) => counts.failed as i64,
                    _ => conn
                        .prepare_cached(&format!("SELECT COUNT(*) FROM records r WHERE {filter}"))
                        .and_then(|mut statement| {
                            statement.query_row(params_from_iter(filter_values.iter()), |row| row.get(0))
                        })
                        .map_err(inner.sqlite("counting records"))?,
                };
                let parts = order_parts(&query, &run_id);
                let limit = query.limit.min(MAX_PAGE);
                let (forward, cursor) = match query.start {
                    PageStart::First => (true, None),
                    PageStart::After(cursor) => (true, Some(cursor)),
                    PageStart::Before(cursor) => (false, Some(cursor)),
                };
                let cursor = cursor.map(|cursor| match query.sort {
                    // By position the whole order is one part: no value section.
                    RecordSort::Position => RecordCursor { value: None, ..cursor },
                    _ => cursor,
                });
                let mut records = Vec::new();
                let parts: Vec<&OrderPart> = if forward {
                    parts.iter().collect()
                } else {
                    parts.iter().rev().collect()
                };
                for part in parts {
                    if records.len() >= limit {
                        break;
                    }
                    let mut sql = format!(
                        "SELECT {} FROM {} WHERE {filter}{}",
                        prefixed_record_columns(),
                        part.from,
                        part.condition
                    );
                    let mut values = filter_values.clone();
                    values.extend(part.values.iter().cloned());
                    let (after, before) = if part.key_ascending { (">", "<") } else { ("<", ">") };
                    let key_op = if forward { after } else { before };
                    let value_op = match (part.value_ascending, forward) {
                        (true, true) | (false, false) => ">",
                        _ => "<",
                    };
                    match (part.value, cursor) {
                        (_, None) => {}
                        // The cursor is in the value section: the part of rows without a
                        // value lies wholly after it.
                        (None, Some(RecordCursor { value: Some(_), .. })) => {
                            if !forward {
                                continue;
                            }
                        }
                        (None, Some(cursor)) => {
                            sql.push_str(&format!(" AND ({}) {key_op} (?, ?)", part.key));
                            values.push(Value::Integer(cursor.position as i64));
                            values.push(Value::Integer(cursor.model_order as i64));
                        }
                        // The cursor is among the rows without a value: every valued row is
                        // before it.
                        (Some(_), Some(RecordCursor { value: None, .. })) => {
                            if forward {
                                continue;
                            }
                        }
                        (Some(expr), Some(cursor)) => {
                            // The first term seeks the index to the cursor's value; the second
                            // passes the cursor's ties.
                            let value = cursor.value.unwrap_or_default();
                            sql.push_str(&format!(
                                " AND {expr} {value_op}= ? AND ({expr} {value_op} ? OR ({}) {key_op} (?, ?))",
                                part.key
                            ));
                            values.push(Value::Real(value));
                            values.push(Value::Real(value));
                            values.push(Value::Integer(cursor.position as i64));
                            values.push(Value::Integer(cursor.model_order as i64));
                        }
                    }
                    let direction = |ascending: bool| {
                        if ascending == forward { "ASC" } else { "DESC" }
                    };
                    let key_direction = direction(part.key_ascending);
                    let key_order = part
                        .key
                        .split(", ")
                        .map(|column| format!("{column} {key_direction}"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    match part.value {
                        Some(expr) => sql.push_str(&format!(
                            " ORDER BY {expr} {}, {key_order}",
                            direction(part.value_ascending)
                        )),
                        None => sql.push_str(&format!(" ORDER BY {key_order}")),
                    }
                    sql.push_str(" LIMIT ?");
                    values.push(Value::Integer((limit - records.len()) as i64));
                    let mut statement = conn
                        .prepare_cached(&sql)
                        .map_err(inner.sqlite("reading records"))?;
                    let mut rows = statement
                        .query(params_from_iter(values.iter()))
                        .map_err(inner.sqlite("reading records"))?;
                    while let Some(row) = rows.next().map_err(inner.sqlite("reading records"))? {
                        records.push(inner.record_row(&run_id, row)?);
                    }
                }
                if !forward {
                    records.reverse();
                }
                Ok(RecordPage { rows: records, total: total as usize })
            })
        })
    }

    fn score_matrix(
        &self,
        owner: &UserId,
        run_id: &str,
        score: &str,
    ) -> StoreFuture<'_, Arc<ScoreMatrix>> {
        let (owner, run_id, score) = (owner.clone(), run_id.to_string(), score.to_string());
        self.blocking(move |inner| {
            inner.read(|conn| {
                let Some((counts, running)) = inner.run_counts(conn, &owner, &run_id)? else {
                    return Ok(Arc::new(ScoreMatrix::default()));
                };
                let n_rows = counts.ok + counts.failed;
                if let Some(matrix) = inner.matrices.get(&owner, &run_id, &score, n_rows) {
                    return Ok(matrix);
                }
                // Two ranges of the primary key, both in position order: every row's failure
                // flag, then the score's values.
                let mut entries: Vec<MatrixEntry> = Vec::with_capacity(n_rows);
                let mut statement = conn
                    .prepare_cached(
                        "SELECT position, model_order, value, idx FROM record_scores WHERE run_id = ?1 AND score = ?2 \
                         ORDER BY position, model_order",
                    )
                    .map_err(inner.sqlite("reading the score index"))?;
                let mut rows = statement
                    .query(params![run_id, ""])
                    .map_err(inner.sqlite("reading the score index"))?;
                while let Some(row) = rows.next().map_err(inner.sqlite("reading the score index"))? {
                    let failed: f64 = row.get(2).map_err(inner.sqlite("reading the score index"))?;
                    entries.push(MatrixEntry {
                        index: row.get::<_, i64>(3).map_err(inner.sqlite("reading the score index"))? as usize,
                        position: row.get::<_, i64>(0).map_err(inner.sqlite("reading the score index"))? as usize,
                        model_order: row.get::<_, i64>(1).map_err(inner.sqlite("reading the score index"))? as usize,
                        cell: if failed != 0.0 { Cell::Failed } else { Cell::Unscored },
                    });
                }
                drop(rows);
                // The empty name holds the failure flags just read, never a score.
                if !score.is_empty() {
                    let mut rows = statement
                        .query(params![run_id, score])
                        .map_err(inner.sqlite("reading the score index"))?;
                    let mut at = 0;
                    while let Some(row) = rows.next().map_err(inner.sqlite("reading the score index"))? {
                        let key = (
                            row.get::<_, i64>(0).map_err(inner.sqlite("reading the score index"))? as usize,
                            row.get::<_, i64>(1).map_err(inner.sqlite("reading the score index"))? as usize,
                        );
                        let value: f64 = row.get(2).map_err(inner.sqlite("reading the score index"))?;
                        // Both ranges are in (position, column) order: walk them together.
                        while at < entries.len()
                            && (entries[at].position, entries[at].model_order) < key
                        {
                            at += 1;
                        }
                        if let Some(entry) = entries.get_mut(at)
                            && (entry.position, entry.model_order) == key
                            && entry.cell == Cell::Unscored
                        {
                            entry.cell = Cell::Value(value);
                        }
                    }
                }
                let matrix = Arc::new(ScoreMatrix::build(entries));
                if !running {
                    inner.matrices.put(&owner, &run_id, &score, n_rows, matrix.clone());
                }
                Ok(matrix)
            })
        })
    }

    fn record_counts(&self, owner: &UserId, run_id: &str) -> StoreFuture<'_, RecordCounts> {
        let (owner, run_id) = (owner.clone(), run_id.to_string());
        self.blocking(move |inner| {
            inner.read(|conn| {
                Ok(inner
                    .run_counts(conn, &owner, &run_id)?
                    .map(|(counts, _)| counts)
                    .unwrap_or_default())
            })
        })
    }

    fn set_record_counts(
        &self,
        _owner: &UserId,
        _run_id: &str,
        _counts: RecordCounts,
    ) -> StoreFuture<'_, ()> {
        // Counted in the transaction that stores the rows: never short, nothing to set.
        Box::pin(async { Ok(()) })
    }

    fn staging_path(&self) -> PathBuf {
        self.inner
            .uploads_dir
            .join(format!("{}.part", random_hex(16)))
    }

    fn add_dataset(&self, owner: &UserId, dataset: NewDataset) -> StoreFuture<'_, DatasetRow> {
        let owner = owner.clone();
        self.blocking(move |inner| {
            let id = random_hex(12);
            let format = if dataset.format == "csv" { "csv" } else { "jsonl" };
            let file = inner.dataset_file(&id, format);
            let size_bytes = std::fs::metadata(&dataset.staged)
                .map_err(io_error(&dataset.staged, "reading the upload"))?
                .len();
            std::fs::rename(&dataset.staged, &file)
                .map_err(io_error(&file, "keeping the upload"))?;
            let fields = serde_json::to_string(&dataset.fields).unwrap_or_default();
            let inserted = inner.write(|conn| {
                conn.execute(
                    &format!("INSERT INTO datasets ({DATASET_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, {NOW})"),
                    params![id, owner.as_str(), dataset.name, format, size_bytes as i64, dataset.n_records as i64, fields],
                )
                .map_err(inner.sqlite("adding dataset"))?;
                conn.query_row(
                    &format!("SELECT {DATASET_COLUMNS} FROM datasets WHERE id = ?1"),
                    [&id],
                    |row| Ok(inner.dataset_row(row)),
                )
                .map_err(inner.sqlite("adding dataset"))?
            });
            if inserted.is_err() {
                let _ = std::fs::remove_file(&file);
            }
            inserted
        })
    }

    fn datasets(&self, owner: &UserId) -> StoreFuture<'_, Vec<DatasetRow>> {
        let owner = owner.clone();
        self.blocking(move |inner| {
            inner.read(|conn| {
                let mut statement = conn
                    .prepare_cached(&format!(
                        "SELECT {DATASET_COLUMNS} FROM datasets WHERE owner = ?1 ORDER BY created DESC, id"
                    ))
                    .map_err(inner.sqlite("listing datasets"))?;
                let mut rows = statement
                    .query([owner.as_str()])
                    .map_err(inner.sqlite("listing datasets"))?;
                let mut datasets = Vec::new();
                while let Some(row) = rows.next().map_err(inner.sqlite("listing datasets"))? {
                    datasets.push(inner.dataset_row(row)?);
                }
                Ok(datasets)
            })
        })
    }

    fn dataset(&self, owner: &UserId, dataset_id: &str) -> StoreFuture<'_, Option<DatasetRow>> {
        let (owner, dataset_id) = (owner.clone(), dataset_id.to_string());
        self.blocking(move |inner| {
            inner.read(|conn| {
                conn.query_row(
                    &format!("SELECT {DATASET_COLUMNS} FROM datasets WHERE id = ?1 AND owner = ?2"),
                    params![dataset_id, owner.as_str()],
                    |row| Ok(inner.dataset_row(row)),
                )
                .optional()
                .map_err(inner.sqlite("reading dataset"))?
                .transpose()
            })
        })
    }

    fn delete_dataset(&self, owner: &UserId, dataset_id: &str) -> StoreFuture<'_, bool> {
        let (owner, dataset_id) = (owner.clone(), dataset_id.to_string());
        self.blocking(move |inner| {
            let format: Option<String> = inner.write(|conn| {
                let tx = conn
                    .transaction()
                    .map_err(inner.sqlite("deleting dataset"))?;
                let format = tx
                    .query_row(
                        "DELETE FROM datasets WHERE id = ?1 AND owner = ?2 RETURNING format",
                        params![dataset_id, owner.as_str()],
                        |row| row.get(0),
                    )
                    .optional()
                    .map_err(inner.sqlite("deleting dataset"))?;
                if format.is_some() {
                    delete_item_rows(&tx, ItemKind::Dataset, &dataset_id)
                        .map_err(inner.sqlite("deleting dataset"))?;
                }
                tx.commit().map_err(inner.sqlite("deleting dataset"))?;
                Ok(format)
            })?;
            let Some(format) = format else {
                return Ok(false);
            };
            let file = inner.dataset_file(&dataset_id, &format);
            match std::fs::remove_file(&file) {
                Ok(()) => Ok(true),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(true),
                Err(error) => Err(io_error(&file, "deleting the dataset file")(error)),
            }
        })
    }

    fn settings(&self, owner: &UserId) -> StoreFuture<'_, Option<serde_json::Value>> {
        self.user_document(owner.clone(), SETTINGS)
    }

    fn save_settings(&self, owner: &UserId, settings: &serde_json::Value) -> StoreFuture<'_, ()> {
        self.save_user_document(owner.clone(), SETTINGS, settings.to_string())
    }

    fn session(&self, session_id: &str) -> StoreFuture<'_, Option<Session>> {
        let session_id = session_id.to_string();
        self.blocking(move |inner| {
            inner.read(|conn| {
                conn.query_row(
                    "SELECT csrf_token, user_id, user_name, auth_data, expires FROM sessions WHERE id_hash = ?1 AND expires > ?2",
                    params![session_key(&session_id), unix_now()],
                    |row| {
                        let user_id: Option<String> = row.get(1)?;
                        let user_name: Option<String> = row.get(2)?;
                        Ok(Session {
                            id: session_id.clone(),
                            csrf_token: row.get(0)?,
                            user: user_id.map(|id| SessionUser {
                                name: user_name.unwrap_or_else(|| id.clone()),
                                id: UserId::new(id),
                            }),
                            auth_data: row.get(3)?,
                            expires_unix: row.get(4)?,
                        })
                    },
                )
                .optional()
                .map_err(inner.sqlite("reading session"))
            })
        })
    }

    fn save_session(&self, session: &Session) -> StoreFuture<'_, ()> {
        let session = session.clone();
        self.blocking(move |inner| {
            inner.write(|conn| {
                let (user_id, user_name) = match &session.user {
                    Some(user) => (Some(user.id.as_str()), Some(user.name.as_str())),
                    None => (None, None),
                };
                conn.execute(
                    "INSERT INTO sessions (id_hash, csrf_token, user_id, user_name, auth_data, expires) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                     ON CONFLICT (id_hash) DO UPDATE SET csrf_token = excluded.csrf_token, user_id = excluded.user_id, \
                     user_name = excluded.user_name, auth_data = excluded.auth_data, expires = excluded.expires",
                    params![
                        session_key(&session.id),
                        session.csrf_token,
                        user_id,
                        user_name,
                        session.auth_data,
                        session.expires_unix
                    ],
                )
                .map_err(inner.sqlite("saving session"))?;
                Ok(())
            })
        })
    }

    fn delete_session(&self, session_id: &str) -> StoreFuture<'_, ()> {
        let key = session_key(session_id);
        self.blocking(move |inner| {
            inner.write(|conn| {
                conn.execute("DELETE FROM sessions WHERE id_hash = ?1", [key])
                    .map_err(inner.sqlite("deleting session"))?;
                Ok(())
            })
        })
    }

    fn purge_sessions(&self) -> StoreFuture<'_, usize> {
        self.blocking(move |inner| {
            inner.write(|conn| {
                conn.execute("DELETE FROM sessions WHERE expires <= ?1", [unix_now()])
                    .map_err(inner.sqlite("purging sessions"))
            })
        })
    }

    fn remember_user(&self, user: &KnownUser) -> StoreFuture<'_, ()> {
        let user = user.clone();
        self.blocking(move |inner| {
            inner.write(|conn| {
                conn.execute(
                    &format!(
                        "INSERT INTO users (id, name, seen) VALUES (?1, ?2, {NOW}) \
                     ON CONFLICT (id) DO UPDATE SET name = excluded.name, seen = excluded.seen"
                    ),
                    params![user.id.as_str(), user.name],
                )
                .map_err(inner.sqlite("remembering a user"))?;
                Ok(())
            })
        })
    }

    fn known_users(&self, limit: usize) -> StoreFuture<'_, Vec<KnownUser>> {
        let limit = limit.min(MAX_USERS_LISTED) as i64;
        self.blocking(move |inner| {
            inner.read(|conn| {
                let sqlite = inner.sqlite("listing users");
                let mut statement = conn
                    .prepare_cached("SELECT id, name FROM users ORDER BY name, id LIMIT ?1")
                    .map_err(&sqlite)?;
                let rows = statement
                    .query_map([limit], |row| {
                        Ok(KnownUser {
                            id: UserId::new(row.get::<_, String>(0)?),
                            name: row.get(1)?,
                        })
                    })
                    .map_err(&sqlite)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(&sqlite)
            })
        })
    }

    fn share(
        &self,
        owner: &UserId,
        kind: ItemKind,
        item_id: &str,
        grantee: &Grantee,
    ) -> StoreFuture<'_, Result<(), Refusal>> {
        let (owner, item_id, grantee) = (
            owner.clone(),
            item_id.to_string(),
            grantee.as_stored().to_string(),
        );
        self.blocking(move |inner| {
            inner.write(|conn| {
                let sqlite = inner.sqlite("sharing");
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(&sqlite)?;
                if !owns_item(&tx, &owner, kind, &item_id).map_err(&sqlite)? {
                    return Ok(Err(Refusal::NotFound));
                }
                let (n_grants, exists): (i64, i64) = tx
                    .query_row(
                        "SELECT count(*), coalesce(sum(grantee = ?3), 0) FROM grants WHERE kind = ?1 AND item_id = ?2",
                        params![kind.as_str(), item_id, grantee],
                        |row| Ok((row.get(0)?, row.get(1)?)),
                    )
                    .map_err(&sqlite)?;
                if exists > 0 {
                    return Ok(Ok(()));
                }
                if n_grants as usize >= MAX_GRANTS_PER_ITEM {
                    return Ok(Err(Refusal::Full));
                }
                tx.execute(
                    &format!("INSERT INTO grants (kind, item_id, owner, grantee, created) VALUES (?1, ?2, ?3, ?4, {NOW})"),
                    params![kind.as_str(), item_id, owner.as_str(), grantee],
                )
                .map_err(&sqlite)?;
                tx.commit().map_err(&sqlite)?;
                Ok(Ok(()))
            })
        })
    }

    fn unshare(
        &self,
        owner: &UserId,
        kind: ItemKind,
        item_id: &str,
        grantee: &Grantee,
    ) -> StoreFuture<'_, bool> {
        let (owner, item_id, grantee) = (
            owner.clone(),
            item_id.to_string(),
            grantee.as_stored().to_string(),
        );
        self.blocking(move |inner| {
            inner.write(|conn| {
                let n_rows = conn
                    .execute(
                        "DELETE FROM grants WHERE kind = ?1 AND item_id = ?2 AND owner = ?3 AND grantee = ?4",
                        params![kind.as_str(), item_id, owner.as_str(), grantee],
                    )
                    .map_err(inner.sqlite("unsharing"))?;
                Ok(n_rows > 0)
            })
        })
    }

    fn grants(
        &self,
        owner: &UserId,
        kind: ItemKind,
        item_id: &str,
    ) -> StoreFuture<'_, Vec<Grantee>> {
        let (owner, item_id) = (owner.clone(), item_id.to_string());
        self.blocking(move |inner| {
            inner.read(|conn| {
                let sqlite = inner.sqlite("reading grants");
                let mut statement = conn
                    .prepare_cached(
                        "SELECT grantee FROM grants WHERE kind = ?1 AND item_id = ?2 AND owner = ?3 ORDER BY created, grantee LIMIT ?4",
                    )
                    .map_err(&sqlite)?;
                let rows = statement
                    .query_map(
                        params![kind.as_str(), item_id, owner.as_str(), MAX_GRANTS_PER_ITEM as i64],
                        |row| row.get::<_, String>(0),
                    )
                    .map_err(&sqlite)?;
                rows.map(|row| row.map(|text| Grantee::from_stored(&text)))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(&sqlite)
            })
        })
    }

    fn can_read(
        &self,
        viewer: &UserId,
        owner: &UserId,
        kind: ItemKind,
        item_id: &str,
    ) -> StoreFuture<'_, bool> {
        let (viewer, owner, item_id) = (viewer.clone(), owner.clone(), item_id.to_string());
        self.blocking(move |inner| {
            inner.read(|conn| {
                let sqlite = inner.sqlite("checking a grant");
                if !owns_item(conn, &owner, kind, &item_id).map_err(&sqlite)? {
                    return Ok(false);
                }
                if viewer == owner {
                    return Ok(true);
                }
                conn.query_row(
                    "SELECT 1 FROM grants WHERE kind = ?1 AND item_id = ?2 AND owner = ?3 AND grantee IN (?4, ?5)",
                    params![kind.as_str(), item_id, owner.as_str(), viewer.as_str(), crate::teams::EVERYONE],
                    |_| Ok(()),
                )
                .optional()
                .map(|found| found.is_some())
                .map_err(&sqlite)
            })
        })
    }

    fn shared_with(&self, viewer: &UserId, limit: usize) -> StoreFuture<'_, Vec<SharedItem>> {
        let viewer = viewer.clone();
        let limit = limit.min(MAX_SHARED_LISTED) as i64;
        self.blocking(move |inner| {
            inner.read(|conn| {
                let sqlite = inner.sqlite("listing shared items");
                let mut statement = conn
                    .prepare_cached(
                        "SELECT kind, owner, item_id, grantee FROM grants WHERE grantee IN (?1, ?2) AND owner != ?1 \
                         ORDER BY created DESC, item_id LIMIT ?3",
                    )
                    .map_err(&sqlite)?;
                let rows = statement
                    .query_map(params![viewer.as_str(), crate::teams::EVERYONE, limit], |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, String>(2)?,
                            row.get::<_, String>(3)?,
                        ))
                    })
                    .map_err(&sqlite)?;
                let mut items: Vec<SharedItem> = Vec::new();
                for row in rows {
                    let (kind, owner, id, grantee) = row.map_err(&sqlite)?;
                    let Some(kind) = ItemKind::parse(&kind) else {
                        continue;
                    };
                    // Shared by name and with everyone: listed once.
                    if items.iter().any(|item| item.kind == kind && item.id == id) {
                        continue;
                    }
                    items.push(SharedItem {
                        kind,
                        owner: UserId::new(owner),
                        id,
                        grantee: Grantee::from_stored(&grantee),
                    });
                }
                Ok(items)
            })
        })
    }

    fn user_quotas(&self, user: &UserId) -> StoreFuture<'_, Option<serde_json::Value>> {
        self.user_document(user.clone(), QUOTAS)
    }

    fn set_user_quotas(&self, user: &UserId, quotas: &serde_json::Value) -> StoreFuture<'_, ()> {
        self.save_user_document(user.clone(), QUOTAS, quotas.to_string())
    }

    fn add_audit(
        &self,
        owner: &UserId,
        kind: ItemKind,
        item_id: &str,
        actor: &KnownUser,
        action: &str,
    ) -> StoreFuture<'_, ()> {
        let (owner, item_id, actor, action) = (
            owner.clone(),
            item_id.to_string(),
            actor.clone(),
            action.to_string(),
        );
        self.blocking(move |inner| {
            inner.write(|conn| {
                conn.execute(
                    &format!("INSERT INTO audit (owner, kind, item_id, at, actor, actor_name, action) VALUES (?1, ?2, ?3, {NOW}, ?4, ?5, ?6)"),
                    params![owner.as_str(), kind.as_str(), item_id, actor.id.as_str(), actor.name, action],
                )
                .map_err(inner.sqlite("recording an audit entry"))?;
                Ok(())
            })
        })
    }

    fn audit(
        &self,
        owner: &UserId,
        kind: ItemKind,
        item_id: &str,
    ) -> StoreFuture<'_, Vec<AuditEntry>> {
        let (owner, item_id) = (owner.clone(), item_id.to_string());
        self.blocking(move |inner| {
            inner.read(|conn| {
                let sqlite = inner.sqlite("reading the audit");
                let mut statement = conn
                    .prepare_cached(
                        "SELECT actor, actor_name, action, at FROM audit WHERE kind = ?1 AND item_id = ?2 AND owner = ?3 \
                         ORDER BY at DESC, rowid DESC LIMIT ?4",
                    )
                    .map_err(&sqlite)?;
                let rows = statement
                    .query_map(
                        params![kind.as_str(), item_id, owner.as_str(), MAX_AUDIT_SHOWN as i64],
                        |row| {
                            Ok(AuditEntry {
                                actor: UserId::new(row.get::<_, String>(0)?),
                                actor_name: row.get(1)?,
                                action: row.get(2)?,
                                at: row.get(3)?,
                            })
                        },
                    )
                    .map_err(&sqlite)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(&sqlite)
            })
        })
    }

    fn create_challenge(
        &self,
        owner: &UserId,
        spec: &ChallengeSpec,
    ) -> StoreFuture<'_, Result<ChallengeRow, Refusal>> {
        let (owner, spec) = (owner.clone(), spec.clone());
        self.blocking(move |inner| {
            if let Err(message) = spec.check() {
                return Err(StoreError::Config { message });
            }
            let id = random_hex(8);
            let spec_text = serde_json::to_string(&spec).unwrap_or_default();
            let created = inner.write(|conn| {
                let sqlite = inner.sqlite("publishing a challenge");
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(&sqlite)?;
                let n_open: i64 = tx
                    .query_row("SELECT count(*) FROM challenges WHERE open = 1", [], |row| {
                        row.get(0)
                    })
                    .map_err(&sqlite)?;
                if n_open as usize >= MAX_OPEN_CHALLENGES {
                    return Ok(None);
                }
                let created: String = tx
                    .query_row(
                        &format!("INSERT INTO challenges (id, owner, created, open, spec) VALUES (?1, ?2, {NOW}, 1, ?3) RETURNING created"),
                        params![id, owner.as_str(), spec_text],
                        |row| row.get(0),
                    )
                    .map_err(&sqlite)?;
                tx.commit().map_err(&sqlite)?;
                Ok(Some(created))
            })?;
            Ok(match created {
                Some(created) => Ok(ChallengeRow {
                    id,
                    owner,
                    created,
                    open: true,
                    spec,
                }),
                None => Err(Refusal::Full),
            })
        })
    }

    fn challenges(&self) -> StoreFuture<'_, Vec<ChallengeRow>> {
        self.blocking(move |inner| {
            inner.read(|conn| {
                let sqlite = inner.sqlite("listing challenges");
                let mut statement = conn
                    .prepare_cached(&format!(
                        "SELECT {CHALLENGE_COLUMNS} FROM challenges ORDER BY created DESC, id LIMIT ?1"
                    ))
                    .map_err(&sqlite)?;
                let mut rows = statement
                    .query([MAX_CHALLENGES as i64])
                    .map_err(&sqlite)?;
                let mut challenges = Vec::new();
                while let Some(row) = rows.next().map_err(&sqlite)? {
                    challenges.push(inner.challenge_row(row)?);
                }
                Ok(challenges)
            })
        })
    }

    fn challenge(&self, challenge_id: &str) -> StoreFuture<'_, Option<ChallengeRow>> {
        let challenge_id = challenge_id.to_string();
        self.blocking(move |inner| {
            inner.read(|conn| {
                conn.query_row(
                    &format!("SELECT {CHALLENGE_COLUMNS} FROM challenges WHERE id = ?1"),
                    [&challenge_id],
                    |row| Ok(inner.challenge_row(row)),
                )
                .optional()
                .map_err(inner.sqlite("reading challenge"))?
                .transpose()
            })
        })
    }

    fn close_challenge(&self, owner: &UserId, challenge_id: &str) -> StoreFuture<'_, bool> {
        let (owner, challenge_id) = (owner.clone(), challenge_id.to_string());
        self.blocking(move |inner| {
            inner.write(|conn| {
                let n_rows = conn
                    .execute(
                        "UPDATE challenges SET open = 0 WHERE id = ?1 AND owner = ?2 AND open = 1",
                        params![challenge_id, owner.as_str()],
                    )
                    .map_err(inner.sqlite("closing a challenge"))?;
                Ok(n_rows == 1)
            })
        })
    }

    fn submit_run(
        &self,
        challenge_id: &str,
        participant: &UserId,
        run_id: &str,
    ) -> StoreFuture<'_, Result<(), Refusal>> {
        let (challenge_id, participant, run_id) = (
            challenge_id.to_string(),
            participant.clone(),
            run_id.to_string(),
        );
        self.blocking(move |inner| {
            inner.write(|conn| {
                let sqlite = inner.sqlite("submitting a run");
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(&sqlite)?;
                let open: Option<i64> = tx
                    .query_row(
                        "SELECT open FROM challenges WHERE id = ?1",
                        [&challenge_id],
                        |row| row.get(0),
                    )
                    .optional()
                    .map_err(&sqlite)?;
                match open {
                    None => return Ok(Err(Refusal::NotFound)),
                    Some(0) => return Ok(Err(Refusal::Closed)),
                    Some(_) => {}
                }
                if !owns_item(&tx, &participant, ItemKind::Run, &run_id).map_err(&sqlite)? {
                    return Ok(Err(Refusal::NotFound));
                }
                let (n_runs, exists): (i64, i64) = tx
                    .query_row(
                        "SELECT count(*), coalesce(sum(run_id = ?2), 0) FROM challenge_runs WHERE challenge_id = ?1",
                        params![challenge_id, run_id],
                        |row| Ok((row.get(0)?, row.get(1)?)),
                    )
                    .map_err(&sqlite)?;
                if exists > 0 {
                    return Ok(Ok(()));
                }
                if n_runs as usize >= MAX_SUBMISSIONS {
                    return Ok(Err(Refusal::Full));
                }
                tx.execute(
                    &format!("INSERT INTO challenge_runs (challenge_id, run_id, participant, submitted) VALUES (?1, ?2, ?3, {NOW})"),
                    params![challenge_id, run_id, participant.as_str()],
                )
                .map_err(&sqlite)?;
                tx.commit().map_err(&sqlite)?;
                Ok(Ok(()))
            })
        })
    }

    fn submissions(&self, challenge_id: &str) -> StoreFuture<'_, Vec<Submission>> {
        let challenge_id = challenge_id.to_string();
        self.blocking(move |inner| {
            inner.read(|conn| {
                let sqlite = inner.sqlite("listing submissions");
                let mut statement = conn
                    .prepare_cached(
                        "SELECT participant, run_id, submitted FROM challenge_runs WHERE challenge_id = ?1 \
                         ORDER BY submitted, rowid LIMIT ?2",
                    )
                    .map_err(&sqlite)?;
                let rows = statement
                    .query_map(params![challenge_id, MAX_SUBMISSIONS as i64], |row| {
                        Ok(Submission {
                            participant: UserId::new(row.get::<_, String>(0)?),
                            run_id: row.get(1)?,
                            submitted: row.get(2)?,
                        })
                    })
                    .map_err(&sqlite)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(&sqlite)
            })
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::suite;

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("sub/store.sqlite")).unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn runs_and_records_round_trip_in_export_order() {
        suite::runs_and_records_round_trip_in_export_order(&store().1).await;
    }

    #[tokio::test]
    async fn a_record_cannot_be_stored_twice() {
        suite::a_record_cannot_be_stored_twice(&store().1).await;
    }

    #[tokio::test]
    async fn one_owner_never_sees_or_changes_another_owners_rows() {
        let (dir, store) = store();
        let path = suite::one_owner_never_sees_or_changes_another_owners_rows(&store).await;
        assert!(
            path.starts_with(dir.path().join("sub/datasets")),
            "{path:?}"
        );
    }

    #[tokio::test]
    async fn record_queries_filter_sort_and_page() {
        suite::record_queries_filter_sort_and_page(&store().1).await;
    }

    #[tokio::test]
    async fn sorted_pages_follow_their_keys_forwards_and_backwards() {
        suite::sorted_pages_follow_their_keys_forwards_and_backwards(&store().1).await;
    }

    #[tokio::test]
    async fn the_side_view_filters_and_sorts_records_by_a_score_difference() {
        suite::the_side_view_filters_and_sorts_records_by_a_score_difference(&store().1).await;
    }

    #[tokio::test]
    async fn running_runs_are_marked_interrupted() {
        suite::running_runs_are_marked_interrupted(&store().1).await;
    }

    #[tokio::test]
    async fn runs_are_listed_newest_first_and_large_inserts_chunk() {
        suite::runs_are_listed_newest_first_and_large_inserts_chunk(&store().1).await;
    }

    #[tokio::test]
    async fn run_leases_are_exclusive_renewable_and_expire() {
        suite::run_leases_are_exclusive_renewable_and_expire(&store().1).await;
    }

    #[tokio::test]
    async fn cancel_requests_are_recorded_for_running_runs_of_their_owner() {
        suite::cancel_requests_are_recorded_for_running_runs_of_their_owner(&store().1).await;
    }

    #[tokio::test]
    async fn runs_are_named_and_annotated_by_their_owner() {
        suite::runs_are_named_and_annotated_by_their_owner(&store().1).await;
    }

    #[tokio::test]
    async fn grants_let_their_grantees_read_and_only_the_owner_change() {
        suite::grants_let_their_grantees_read_and_only_the_owner_change(&store().1).await;
    }

    #[tokio::test]
    async fn users_quotas_and_audit_are_stored() {
        suite::users_quotas_and_audit_are_stored(&store().1).await;
    }

    #[tokio::test]
    async fn challenges_take_participants_runs_until_closed() {
        suite::challenges_take_participants_runs_until_closed(&store().1).await;
    }

    #[tokio::test]
    async fn quotas_survive_reopening_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite");
        let user = UserId::new("u");
        SqliteStore::open(&path)
            .unwrap()
            .set_user_quotas(&user, &serde_json::json!({"max_runs": 2}))
            .await
            .unwrap();
        assert_eq!(
            SqliteStore::open(&path)
                .unwrap()
                .user_quotas(&user)
                .await
                .unwrap(),
            Some(serde_json::json!({"max_runs": 2}))
        );
    }

    #[tokio::test]
    async fn sessions_are_stored_by_hash_and_expire() {
        let (dir, store) = store();
        let session = suite::sessions_round_trip_and_expire(&store).await;
        let bytes = std::fs::read(dir.path().join("sub/store.sqlite")).unwrap();
        let wal = std::fs::read(dir.path().join("sub/store.sqlite-wal")).unwrap_or_default();
        for file in [&bytes, &wal] {
            assert!(
                !file
                    .windows(session.id.len())
                    .any(|w| w == session.id.as_bytes())
            );
        }
    }

    fn all_rows() -> RecordQuery {
        RecordQuery {
            model: None,
            variant: None,
            filter: RecordFilter::All,
            sort: RecordSort::Position,
            descending: false,
            start: PageStart::First,
            limit: 10,
        }
    }

    #[tokio::test]
    async fn rows_stored_before_the_run_counters_are_counted_by_the_migration() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite");
        let counted = MIGRATIONS
            .iter()
            .position(|sql| sql.contains("ADD COLUMN n_ok"))
            .unwrap();
        {
            let mut conn = Connection::open(&path).unwrap();
            let tx = conn.transaction().unwrap();
            for (version, sql) in MIGRATIONS[..counted].iter().enumerate() {
                tx.execute_batch(sql).unwrap();
                tx.pragma_update(None, "user_version", version as i64 + 1)
                    .unwrap();
            }
            tx.execute(
                "INSERT INTO runs (id, owner, created, config, status, total) VALUES ('old', 'local', '2026-01-01T00:00:00Z', '{}', 'finished', 3)",
                [],
            )
            .unwrap();
            for (position, error) in [(0, None), (1, Some("HTTP 500")), (2, None)] {
                tx.execute(
                    "INSERT INTO records (run_id, model, model_order, position, idx, model_input, prompt, scores, error, judge_replies, variant, perturbations) \
                     VALUES ('old', 'm', 0, ?1, ?1, 'q', 'q', '[]', ?2, '[]', 'A', '[]')",
                    params![position, error],
                )
                .unwrap();
            }
            tx.commit().unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let owner = UserId::local();
        assert_eq!(
            store.record_counts(&owner, "old").await.unwrap(),
            RecordCounts { ok: 2, failed: 1 }
        );
        // The counters go on from there, and a page's total is theirs.
        store
            .insert_records(&owner, "old", vec![crate::suite::record("m", 3, 0.5, None)])
            .await
            .unwrap();
        assert_eq!(
            store.record_counts(&owner, "old").await.unwrap(),
            RecordCounts { ok: 3, failed: 1 }
        );
        let page = store
            .query_records(&owner, "old", &all_rows())
            .await
            .unwrap();
        assert_eq!((page.total, page.rows.len()), (4, 4));
        let failed = store
            .query_records(
                &owner,
                "old",
                &RecordQuery {
                    filter: RecordFilter::Failed,
                    ..all_rows()
                },
            )
            .await
            .unwrap();
        assert_eq!((failed.total, failed.rows[0].position), (1, 1));
    }

    #[tokio::test]
    async fn regression_store_of_the_unnumbered_schema_is_migrated_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.execute(
                "INSERT INTO runs (id, created, config, status) VALUES ('old', '2026-01-01T00:00:00Z', '{}', 'finished')",
                [],
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let run = store.run(&UserId::local(), "old").await.unwrap().unwrap();
        assert_eq!((run.status, run.total), (RunStatus::Finished, None));
        drop(store);
        // Opening again is a no-op; a newer schema is refused.
        drop(SqliteStore::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        let error = SqliteStore::open(&path).unwrap_err().to_string();
        assert!(error.contains("schema version 99 is newer"), "{error}");
    }
}
