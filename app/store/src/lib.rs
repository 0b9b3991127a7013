//! The store: runs and their per-record results, datasets, users' saved settings and web
//! sessions, behind one async trait so that a second backend (DynamoDB + S3, for several app
//! tasks) drops in without touching the runner or the pages.
//!
//! Invariants:
//! - Every query of runs, records, datasets and settings is scoped by the owner
//!   ([`UserId`]): one user's id never reaches another user's rows, whatever a page asks for.
//! - A (run, model, position) triple is stored at most once: a record is never evaluated twice
//!   in one run.
//! - Nothing here is SQLite-specific: the trait speaks in rows, queries and pages; the first
//!   implementation, [`sqlite::SqliteStore`], keeps its schema in versioned migrations.
//! - Progress and results are readable from the store alone (status, planned total, stored
//!   rows), so a page served by another process sees the same run.
//!
//! Also here, because every layer above writes user data through them: [`private_fs`] (files
//! and folders only their owner can read) and [`error_chain`] (an error and its causes as one
//! line for a message).
//!
//! **Architecture invariant:** the store depends on `fmeval-scoring` (the score types it keeps)
//! and on no other crate of the app: it knows nothing about datasets' formats, templates,
//! providers, the runner, HTTP or the login, because it must keep what any of them hands it and
//! a new backend must be writable from the trait and the shared test suite alone.

pub mod disk_cache;
pub mod dynamo;
pub mod private_fs;
pub mod scores;
pub mod sqlite;
#[cfg(test)]
mod suite;
pub mod teams;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use fmeval_scoring::metrics::Score;

pub use dynamo::DynamoStore;
pub use scores::{
    Cell, PageStart, RecordCursor, ScoreMatrix, SidePage, SideQuery, SideRecord, SideShow,
};
pub use sqlite::SqliteStore;
pub use teams::{
    AuditEntry, ChallengeRow, ChallengeSpec, Grantee, ItemKind, KnownUser, Refusal, SharedItem,
    Submission,
};

/// A failed store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A directory or file of the store could not be created, moved or removed.
    #[error("store {}: {what}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// SQLite failed.
    #[error("store {}: {what}", .path.display())]
    Sqlite {
        /// The store file.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The cause.
        #[source]
        source: rusqlite::Error,
    },
    /// A stored JSON column did not parse.
    #[error("store {}: `{key}`: column `{column}` holds invalid JSON", .path.display())]
    Json {
        /// The store file.
        path: PathBuf,
        /// The run, dataset or user the row belongs to.
        key: String,
        /// The column.
        column: &'static str,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// The store was written by a newer version of this program.
    #[error("store {}: schema version {found} is newer than this program knows ({known}); upgrade llm-eval", .path.display())]
    NewerSchema {
        /// The store file.
        path: PathBuf,
        /// The version found.
        found: i64,
        /// The newest version this program knows.
        known: i64,
    },
    /// No run of this owner has this id.
    #[error("no run `{run_id}`")]
    UnknownRun {
        /// The id asked for.
        run_id: String,
    },
    /// A DynamoDB or S3 call failed (after the SDK's retries).
    #[error("store {location}: {what}: {message}")]
    Aws {
        /// The table and bucket.
        location: String,
        /// What was being done.
        what: &'static str,
        /// The SDK's error with its causes.
        message: String,
    },
    /// A batch request still had unprocessed items, or a transaction was still throttled or
    /// in conflict, after every retry.
    #[error(
        "store {location}: {what}: {left} items still unprocessed after retries with backoff (throttled)"
    )]
    Unprocessed {
        /// The table and bucket.
        location: String,
        /// What was being done.
        what: &'static str,
        /// Items not written or read.
        left: usize,
    },
    /// A stored item lacks an attribute or holds a malformed one.
    #[error("store {location}: item `{key}`: {problem}")]
    BadItem {
        /// The table and bucket.
        location: String,
        /// The run, record or dataset the item belongs to.
        key: String,
        /// What is wrong.
        problem: String,
    },
    /// A record of this (run, model, position) is already stored.
    #[error(
        "run `{run_id}`: the record at position {position} of model `{model}` is already stored"
    )]
    DuplicateRecord {
        /// The run.
        run_id: String,
        /// The model's label.
        model: String,
        /// The record's selection position.
        position: usize,
    },
    /// The store's settings are wrong.
    #[error("{message}")]
    Config {
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A blocking store task failed.
    #[error("store task failed")]
    Task(#[source] tokio::task::JoinError),
}

/// Who owns a run, a dataset or saved settings: the local user, or a signed-in user's stable
/// id (Cognito's `sub`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    /// The one user of local mode (no login configured); the CLI's runs belong to it too.
    pub fn local() -> UserId {
        UserId("local".to_string())
    }

    /// A user id as the identity provider gives it.
    pub fn new(id: impl Into<String>) -> UserId {
        UserId(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Records are being evaluated.
    Running,
    /// Every planned record is recorded (some may have failed).
    Finished,
    /// Stopped by the user; finished records are kept.
    Cancelled,
    /// Stopped by an error before all records were evaluated.
    Failed,
    /// The process stopped (restart, crash, SIGTERM) while the run was going; finished records
    /// are kept and the run can be resumed.
    Interrupted,
}

impl RunStatus {
    /// The lowercase name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Finished => "finished",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }

    /// The status of a stored name (an unknown name reads as failed).
    pub fn parse(text: &str) -> RunStatus {
        match text {
            "running" => RunStatus::Running,
            "finished" => RunStatus::Finished,
            "cancelled" => RunStatus::Cancelled,
            "interrupted" => RunStatus::Interrupted,
            _ => RunStatus::Failed,
        }
    }
}

/// One run as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRow {
    /// The run's id.
    pub id: String,
    /// Who started it.
    pub owner: UserId,
    /// When it was created (RFC 3339, UTC).
    pub created: String,
    /// The run's configuration (dataset, template, models, metrics, ...).
    pub config: serde_json::Value,
    /// Where the run is.
    pub status: RunStatus,
    /// Planned (record, model) evaluations, once known.
    pub total: Option<usize>,
    /// The summary, once written.
    pub summary: Option<serde_json::Value>,
    /// The run's name: the one its request gave, or the one the user chose since (empty:
    /// none, pages show [`RunRow::display_name`]).
    pub name: String,
    /// Free-text notes, editable after the run.
    pub notes: String,
}

impl RunRow {
    /// What pages call the run: its name, or its id when it has none.
    pub fn display_name(&self) -> &str {
        if self.name.trim().is_empty() {
            &self.id
        } else {
            &self.name
        }
    }
}

/// The longest run name, in characters.
pub const MAX_RUN_NAME_CHARS: usize = 200;
/// The longest run notes, in characters.
pub const MAX_RUN_NOTES_CHARS: usize = 20_000;

/// Why a run name or notes cannot be kept: they are too long, or the name spans lines.
pub fn check_run_label(name: &str, notes: &str) -> Result<(), String> {
    if name.chars().count() > MAX_RUN_NAME_CHARS {
        return Err(format!(
            "the run name is longer than {MAX_RUN_NAME_CHARS} characters"
        ));
    }
    if name.contains(['\n', '\r']) {
        return Err("the run name must be one line".to_string());
    }
    if notes.chars().count() > MAX_RUN_NOTES_CHARS {
        return Err(format!(
            "the notes are longer than {MAX_RUN_NOTES_CHARS} characters"
        ));
    }
    Ok(())
}

/// The name a run's request gave (`name` in its configuration), trimmed; empty when none.
fn requested_name(config: &serde_json::Value) -> String {
    config
        .get("name")
        .and_then(serde_json::Value::as_str)
        .map(str::trim)
        .unwrap_or_default()
        .to_string()
}

/// One judge's raw reply for a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeReply {
    /// The judge model's label.
    pub judge: String,
    /// The reply exactly as returned.
    pub reply: String,
    /// The verdict drawn from it (1, 0 or 0.5).
    pub verdict: f64,
}

/// One perturbed prompt of a semantic-robustness metric and the model's answer to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerturbedAnswer {
    /// The perturbed prompt, as sent.
    pub prompt: String,
    /// The answer, exactly as returned.
    pub model_output: String,
    /// The answer's scores with the base metric.
    pub scores: Vec<Score>,
}

/// The result of evaluating one record with one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordRow {
    /// The model's label (what the user wrote).
    pub model: String,
    /// The prompt variant's label (`A`, `B`, ... or the user's); empty in rows stored before
    /// runs had variants.
    #[serde(default)]
    pub variant: String,
    /// The row's column: the (variant, model) pair's position in the run (variant × models +
    /// model), for a stable export order; with one variant, the model's position.
    pub model_order: usize,
    /// The record's position in the selection (export order).
    pub position: usize,
    /// The record's 0-based index in the dataset.
    pub index: usize,
    /// The rendered prompt (fmeval's `model_input`).
    pub model_input: String,
    /// The prompt as sent (fmeval's `prompt`; the same text here).
    pub prompt: String,
    /// The model's output exactly as returned, if the call succeeded.
    pub model_output: Option<String>,
    /// The reference answer text, if the record has one.
    pub target_output: Option<String>,
    /// The record's `category` field, if any.
    pub category: Option<String>,
    /// Scores, in fmeval order.
    pub scores: Vec<Score>,
    /// Latency of the successful call in milliseconds (0 for a cache hit).
    pub latency_ms: Option<f64>,
    /// Input tokens reported by the API.
    pub input_tokens: Option<u64>,
    /// Output tokens reported by the API.
    pub output_tokens: Option<u64>,
    /// Cost in USD from the catalog prices.
    pub cost_usd: Option<f64>,
    /// Why the record failed, if it did.
    pub error: Option<String>,
    /// Raw judge replies (`qa_accuracy_by_llm`).
    pub judge_replies: Vec<JudgeReply>,
    /// The perturbed prompts of a semantic-robustness metric, their answers and scores.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub perturbations: Vec<PerturbedAnswer>,
    /// Whether the answer came from the response cache (tokens and cost were then not spent
    /// again: they are what the cache saved).
    #[serde(default)]
    pub cached: bool,
}

impl RecordRow {
    /// Whether the record was evaluated without error.
    pub fn is_ok(&self) -> bool {
        self.error.is_none()
    }
}

/// Counts of a run's stored rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RecordCounts {
    /// Rows evaluated without error.
    pub ok: usize,
    /// Rows stored with an error.
    pub failed: usize,
}

/// Where a page of records starts in export order (selection position, then model order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordKey {
    /// The record's selection position.
    pub position: usize,
    /// The model's position in the run's model list.
    pub model_order: usize,
}

/// Which records of a run a page shows.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordFilter {
    /// Every record.
    All,
    /// Records stored with an error.
    Failed,
    /// Successful records whose score `score` is below `below`.
    ScoreBelow {
        /// The score name (`f1_score`, ...).
        score: String,
        /// The bound (exclusive).
        below: f64,
    },
}

/// The order of a page of records.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordSort {
    /// Export order: selection position, then model order.
    Position,
    /// By the named score (records without it last).
    Score(String),
    /// By latency (records without it last).
    Latency,
}

/// A page of a run's records: filter, order and window.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordQuery {
    /// Only this model's rows.
    pub model: Option<String>,
    /// Only this prompt variant's rows.
    pub variant: Option<String>,
    /// Which rows.
    pub filter: RecordFilter,
    /// Their order.
    pub sort: RecordSort,
    /// Highest first.
    pub descending: bool,
    /// Where the page starts in that order: a key, never a count of rows skipped.
    pub start: PageStart,
    /// Rows returned at most (capped at [`MAX_PAGE`]).
    pub limit: usize,
}

impl RecordQuery {
    /// The value a row is sorted by in this query's order (a finite score or latency; `None`
    /// when it has none or the order is by position).
    pub fn sort_value(&self, row: &RecordRow) -> Option<f64> {
        match &self.sort {
            RecordSort::Position => None,
            RecordSort::Latency => row.latency_ms,
            RecordSort::Score(name) => row
                .scores
                .iter()
                .find(|score| score.name == *name)
                .map(|score| score.value.as_f64()),
        }
        .filter(|value| value.is_finite())
    }

    /// The cursor of a row in this query's order: a page [`PageStart::After`] it starts just
    /// after it.
    pub fn cursor_of(&self, row: &RecordRow) -> RecordCursor {
        RecordCursor {
            value: self.sort_value(row),
            position: row.position,
            model_order: row.model_order,
        }
    }
}

/// The most rows one call returns.
pub const MAX_PAGE: usize = 1000;

/// One page of records and how many match the query in all.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordPage {
    /// The rows of the page.
    pub rows: Vec<RecordRow>,
    /// Rows matching the filter.
    pub total: usize,
}

/// A dataset uploaded by a user, as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatasetRow {
    /// The dataset's id (random; it names the stored file, so it is never user text).
    pub id: String,
    /// Who uploaded it.
    pub owner: UserId,
    /// The file name as uploaded (for display only).
    pub name: String,
    /// `jsonl` or `csv`.
    pub format: String,
    /// Size of the stored file.
    pub size_bytes: u64,
    /// Records in the file (broken lines included).
    pub n_records: usize,
    /// The field names of its records.
    pub fields: Vec<String>,
    /// When it was uploaded (RFC 3339, UTC).
    pub created: String,
    /// Where the file is on this machine, for the engine's dataset reader.
    pub path: PathBuf,
}

/// What the store needs to keep a validated upload.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDataset {
    /// The file name as uploaded.
    pub name: String,
    /// `jsonl` or `csv`.
    pub format: String,
    /// Records in the file.
    pub n_records: usize,
    /// The field names of its records.
    pub fields: Vec<String>,
    /// The staged upload ([`Store::staging_path`]); the store moves it in place.
    pub staged: PathBuf,
}

/// A signed-in user as a session holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionUser {
    /// The stable user id (owner of the user's runs and datasets).
    pub id: UserId,
    /// What the pages show (user name or e-mail).
    pub name: String,
}

/// A browser session, kept server-side: the cookie carries only its random id.
#[derive(Clone, PartialEq, Eq)]
pub struct Session {
    /// The random session id (the cookie's value; stored only as a hash).
    pub id: String,
    /// The CSRF token every unsafe request of this session must carry.
    pub csrf_token: String,
    /// The signed-in user; `None` before login (and always in local mode).
    pub user: Option<SessionUser>,
    /// Opaque data of the authentication layer (tokens); never shown or logged.
    pub auth_data: Option<String>,
    /// When the session ends (Unix seconds).
    pub expires_unix: i64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The id, the CSRF token and the auth data are secrets.
        f.debug_struct("Session")
            .field("user", &self.user)
            .field("expires_unix", &self.expires_unix)
            .finish_non_exhaustive()
    }
}

/// What a store call returns: a boxed future, so the trait can be used as `dyn Store`.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// The store behind the runner, the CLI and the pages.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Where the store is, for messages (a file, or a table and bucket).
    fn location(&self) -> String;

    /// Records a new run of `owner` with status `running` and `total` planned evaluations.
    fn create_run(
        &self,
        owner: &UserId,
        run_id: &str,
        config: &serde_json::Value,
        total: usize,
    ) -> StoreFuture<'_, ()>;
    /// Sets a run's status and summary.
    fn finish_run(
        &self,
        owner: &UserId,
        run_id: &str,
        status: RunStatus,
        summary: &serde_json::Value,
    ) -> StoreFuture<'_, ()>;
    /// One run of `owner`, if it exists.
    fn run(&self, owner: &UserId, run_id: &str) -> StoreFuture<'_, Option<RunRow>>;
    /// The runs of `owner`, most recent first, at most `limit`.
    fn runs(&self, owner: &UserId, limit: usize) -> StoreFuture<'_, Vec<RunRow>>;
    /// Deletes a run of `owner` and its records; false when there was none.
    fn delete_run(&self, owner: &UserId, run_id: &str) -> StoreFuture<'_, bool>;
    /// Marks every run still `running` that no lease was ever taken for as `interrupted` (at
    /// start-up: no process runs them any more) and returns their (owner, id). Leased runs are
    /// left to [`Store::orphaned_runs`]: another process may hold them, or resume them.
    fn mark_interrupted(&self) -> StoreFuture<'_, Vec<(UserId, String)>>;

    /// Takes (or renews) the lease of a running run of `owner` for `holder` until `ttl_secs`
    /// from now: granted when nobody held it, its lease expired, or `holder` holds it already.
    /// False when another holder's lease is live, or the run is not running.
    fn acquire_lease(
        &self,
        owner: &UserId,
        run_id: &str,
        holder: &str,
        ttl_secs: u64,
    ) -> StoreFuture<'_, bool>;
    /// Gives a lease back (it expires now) if `holder` holds it, so another process may take
    /// the run at once.
    fn release_lease(&self, owner: &UserId, run_id: &str, holder: &str) -> StoreFuture<'_, ()>;
    /// Running runs whose lease expired: their process died or handed them back.
    fn orphaned_runs(&self) -> StoreFuture<'_, Vec<(UserId, String)>>;
    /// Records that the user asked to cancel a running run of `owner` (from any process: the
    /// process holding the run's lease sees it at its next renewal and cancels the run there).
    /// False when `owner` has no such run, or it is no longer running.
    fn request_cancel(&self, owner: &UserId, run_id: &str) -> StoreFuture<'_, bool>;
    /// Whether cancelling a run of `owner` was requested ([`Store::request_cancel`]); false for
    /// an unknown run.
    fn cancel_requested(&self, owner: &UserId, run_id: &str) -> StoreFuture<'_, bool>;

    /// Sets the name and notes of a run of `owner` (checked by [`check_run_label`] first);
    /// false when `owner` has no such run.
    fn annotate_run(
        &self,
        owner: &UserId,
        run_id: &str,
        name: &str,
        notes: &str,
    ) -> StoreFuture<'_, bool>;

    /// Stores finished rows of a run of `owner` in one transaction; a row already stored for
    /// the same (run, position, column) is an error.
    fn insert_records(
        &self,
        owner: &UserId,
        run_id: &str,
        rows: Vec<RecordRow>,
    ) -> StoreFuture<'_, ()>;
    /// Up to `limit` rows of a run in export order, after `after` (from the start when
    /// `None`): read a whole run page by page.
    fn records_after(
        &self,
        owner: &UserId,
        run_id: &str,
        after: Option<RecordKey>,
        limit: usize,
    ) -> StoreFuture<'_, Vec<RecordRow>>;
    /// The stored rows of a run at these keys (at most [`MAX_PAGE`] keys are read), in
    /// export order; keys without a row are left out.
    fn records_at(
        &self,
        owner: &UserId,
        run_id: &str,
        keys: &[RecordKey],
    ) -> StoreFuture<'_, Vec<RecordRow>>;
    /// A filtered, sorted page of a run's rows.
    fn query_records(
        &self,
        owner: &UserId,
        run_id: &str,
        query: &RecordQuery,
    ) -> StoreFuture<'_, RecordPage>;
    /// The run's cells of score `score` (one line per stored record, one cell per column),
    /// read from the score index the store keeps beside the rows, never from record bodies.
    fn score_matrix(
        &self,
        owner: &UserId,
        run_id: &str,
        score: &str,
    ) -> StoreFuture<'_, Arc<ScoreMatrix>>;
    /// How many rows of a run are stored, ok and failed.
    fn record_counts(&self, owner: &UserId, run_id: &str) -> StoreFuture<'_, RecordCounts>;
    /// Sets the counts [`Store::record_counts`] reports to `counts`, counted from the stored
    /// rows by a resumed run (a store that keeps counters beside the rows may have missed the
    /// last batch of a killed process); a store that counts its rows on every call keeps none.
    fn set_record_counts(
        &self,
        owner: &UserId,
        run_id: &str,
        counts: RecordCounts,
    ) -> StoreFuture<'_, ()>;

    /// A fresh path in the store's upload area where a new upload is staged before it is
    /// validated (never a temporary directory: the upload survives a restart until kept or
    /// discarded).
    fn staging_path(&self) -> PathBuf;
    /// Keeps a validated, staged upload as a dataset of `owner`.
    fn add_dataset(&self, owner: &UserId, dataset: NewDataset) -> StoreFuture<'_, DatasetRow>;
    /// The datasets of `owner`, most recent first.
    fn datasets(&self, owner: &UserId) -> StoreFuture<'_, Vec<DatasetRow>>;
    /// One dataset of `owner`, if it exists.
    fn dataset(&self, owner: &UserId, dataset_id: &str) -> StoreFuture<'_, Option<DatasetRow>>;
    /// Deletes a dataset of `owner` and its file; false when there was none.
    fn delete_dataset(&self, owner: &UserId, dataset_id: &str) -> StoreFuture<'_, bool>;

    /// The saved settings of `owner` (the last evaluation form), if any.
    fn settings(&self, owner: &UserId) -> StoreFuture<'_, Option<serde_json::Value>>;
    /// Saves the settings of `owner`, replacing earlier ones.
    fn save_settings(&self, owner: &UserId, settings: &serde_json::Value) -> StoreFuture<'_, ()>;

    /// The session with this id, unless it is unknown or expired.
    fn session(&self, session_id: &str) -> StoreFuture<'_, Option<Session>>;
    /// Creates or replaces a session.
    fn save_session(&self, session: &Session) -> StoreFuture<'_, ()>;
    /// Ends a session (logout).
    fn delete_session(&self, session_id: &str) -> StoreFuture<'_, ()>;
    /// Removes expired sessions; returns how many.
    fn purge_sessions(&self) -> StoreFuture<'_, usize>;

    /// Adds or refreshes a user in the directory (at sign-in): sharing names users, and a
    /// facilitator's view lists them.
    fn remember_user(&self, user: &KnownUser) -> StoreFuture<'_, ()>;
    /// The users of the directory, by name, at most `limit` (capped at
    /// [`teams::MAX_USERS_LISTED`]).
    fn known_users(&self, limit: usize) -> StoreFuture<'_, Vec<KnownUser>>;

    /// Lets `grantee` read an item of `owner` (read only; a second identical grant changes
    /// nothing). Refused when `owner` has no such item, or it carries
    /// [`teams::MAX_GRANTS_PER_ITEM`] grants.
    fn share(
        &self,
        owner: &UserId,
        kind: ItemKind,
        item_id: &str,
        grantee: &Grantee,
    ) -> StoreFuture<'_, Result<(), Refusal>>;
    /// Takes a grant of an item of `owner` back; false when there was none.
    fn unshare(
        &self,
        owner: &UserId,
        kind: ItemKind,
        item_id: &str,
        grantee: &Grantee,
    ) -> StoreFuture<'_, bool>;
    /// The grants of an item of `owner` (empty for an unknown item).
    fn grants(
        &self,
        owner: &UserId,
        kind: ItemKind,
        item_id: &str,
    ) -> StoreFuture<'_, Vec<Grantee>>;
    /// Whether `viewer` may read an item of `owner`: it exists and `viewer` owns it or a grant
    /// covers `viewer`.
    fn can_read(
        &self,
        viewer: &UserId,
        owner: &UserId,
        kind: ItemKind,
        item_id: &str,
    ) -> StoreFuture<'_, bool>;
    /// The items of other users shared with `viewer` (by name or with everyone), newest grant
    /// first, at most `limit` (capped at [`teams::MAX_SHARED_LISTED`]).
    fn shared_with(&self, viewer: &UserId, limit: usize) -> StoreFuture<'_, Vec<SharedItem>>;

    /// The quotas a facilitator set for `user`, if any (the web layer's JSON).
    fn user_quotas(&self, user: &UserId) -> StoreFuture<'_, Option<serde_json::Value>>;
    /// Sets the quotas of `user`, replacing earlier ones.
    fn set_user_quotas(&self, user: &UserId, quotas: &serde_json::Value) -> StoreFuture<'_, ()>;

    /// Records that `actor` did `action` to an item of `owner` (the store sets the time).
    fn add_audit(
        &self,
        owner: &UserId,
        kind: ItemKind,
        item_id: &str,
        actor: &KnownUser,
        action: &str,
    ) -> StoreFuture<'_, ()>;
    /// What was done to an item of `owner` by others, newest first, at most
    /// [`teams::MAX_AUDIT_SHOWN`] entries.
    fn audit(
        &self,
        owner: &UserId,
        kind: ItemKind,
        item_id: &str,
    ) -> StoreFuture<'_, Vec<AuditEntry>>;

    /// Publishes a challenge of `owner` (checked by [`ChallengeSpec::check`] first); refused
    /// ([`Refusal::Full`]) when [`teams::MAX_OPEN_CHALLENGES`] are open.
    fn create_challenge(
        &self,
        owner: &UserId,
        spec: &ChallengeSpec,
    ) -> StoreFuture<'_, Result<ChallengeRow, Refusal>>;
    /// The challenges, newest first, at most [`teams::MAX_CHALLENGES`].
    fn challenges(&self) -> StoreFuture<'_, Vec<ChallengeRow>>;
    /// One challenge.
    fn challenge(&self, challenge_id: &str) -> StoreFuture<'_, Option<ChallengeRow>>;
    /// Closes a challenge of `owner`; false when `owner` has no such open challenge.
    fn close_challenge(&self, owner: &UserId, challenge_id: &str) -> StoreFuture<'_, bool>;
    /// Submits a run of `participant` to an open challenge (again: no change). Refused when the
    /// challenge or the participant's run does not exist, the challenge is closed, or holds
    /// [`teams::MAX_SUBMISSIONS`] runs.
    fn submit_run(
        &self,
        challenge_id: &str,
        participant: &UserId,
        run_id: &str,
    ) -> StoreFuture<'_, Result<(), Refusal>>;
    /// The runs submitted to a challenge, in submission order, at most
    /// [`teams::MAX_SUBMISSIONS`].
    fn submissions(&self, challenge_id: &str) -> StoreFuture<'_, Vec<Submission>>;
}

/// A run `viewer` may read: their own, or another user's shared with them (checked by
/// [`Store::can_read`]); `None` otherwise, exactly as for a run that does not exist.
pub async fn readable_run(
    store: &dyn Store,
    viewer: &UserId,
    owner: &UserId,
    run_id: &str,
) -> Result<Option<RunRow>, StoreError> {
    if !store.can_read(viewer, owner, ItemKind::Run, run_id).await? {
        return Ok(None);
    }
    store.run(owner, run_id).await
}

/// A dataset `viewer` may read: their own, or another user's shared with them.
pub async fn readable_dataset(
    store: &dyn Store,
    viewer: &UserId,
    owner: &UserId,
    dataset_id: &str,
) -> Result<Option<DatasetRow>, StoreError> {
    if !store
        .can_read(viewer, owner, ItemKind::Dataset, dataset_id)
        .await?
    {
        return Ok(None);
    }
    store.dataset(owner, dataset_id).await
}

/// A shared store handle.
pub type SharedStore = Arc<dyn Store>;

/// Which store to open: the value of `--store` / `LLM_EVAL_STORE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// A SQLite file (local mode; the default).
    Sqlite(PathBuf),
    /// A DynamoDB table (`dynamodb:TABLE`), with the data bucket from `DATA_BUCKET`.
    Dynamo {
        /// The table's name.
        table: String,
    },
}

/// The prefix of a DynamoDB store's `LLM_EVAL_STORE` value.
pub const DYNAMO_PREFIX: &str = "dynamodb:";

impl StoreSpec {
    /// `dynamodb:TABLE`, or else a SQLite path.
    pub fn parse(text: &str) -> StoreSpec {
        match text.strip_prefix(DYNAMO_PREFIX) {
            Some(table) => StoreSpec::Dynamo {
                table: table.to_string(),
            },
            None => StoreSpec::Sqlite(PathBuf::from(text)),
        }
    }

    /// Opens the store; `local_dir` keeps a DynamoDB store's uploads being checked and its
    /// downloaded datasets, and `bucket` is `DATA_BUCKET`.
    pub async fn open(
        &self,
        local_dir: &std::path::Path,
        bucket: Option<&str>,
    ) -> Result<SharedStore, StoreError> {
        match self {
            StoreSpec::Sqlite(path) => SqliteStore::open_shared(path),
            StoreSpec::Dynamo { table } => {
                let valid_table = (3..=255).contains(&table.len())
                    && table
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
                if !valid_table {
                    return Err(StoreError::Config {
                        message: format!(
                            "LLM_EVAL_STORE={DYNAMO_PREFIX}{table}: a table name is 3 to 255 letters, digits, `_`, `-` or `.`"
                        ),
                    });
                }
                let Some(bucket) = bucket.filter(|bucket| !bucket.is_empty()) else {
                    return Err(StoreError::Config {
                        message: format!(
                            "LLM_EVAL_STORE={DYNAMO_PREFIX}{table} needs DATA_BUCKET: the S3 bucket for datasets and large records"
                        ),
                    });
                };
                let cache_limit = disk_cache::limit_from_env()
                    .map_err(|message| StoreError::Config { message })?;
                let config = dynamo::sdk_config().await;
                Ok(Arc::new(
                    DynamoStore::new(
                        &config,
                        dynamo::DynamoConfig {
                            table: table.clone(),
                            bucket: bucket.to_string(),
                            local_dir: local_dir.to_path_buf(),
                        },
                    )?
                    .with_dataset_cache_limit(cache_limit),
                ))
            }
        }
    }
}

/// Rows read per call when a whole run is read.
pub const READ_PAGE: usize = 500;

/// Calls `visit` with every row of a run in export order, a page at a time: memory stays
/// bounded by one page, whatever the run's size.
pub async fn for_each_record<E: From<StoreError>>(
    store: &dyn Store,
    owner: &UserId,
    run_id: &str,
    mut visit: impl FnMut(RecordRow) -> Result<(), E>,
) -> Result<(), E> {
    let mut after = None;
    loop {
        let rows = store.records_after(owner, run_id, after, READ_PAGE).await?;
        let n_rows = rows.len();
        for row in rows {
            after = Some(RecordKey {
                position: row.position,
                model_order: row.model_order,
            });
            visit(row)?;
        }
        if n_rows < READ_PAGE {
            return Ok(());
        }
    }
}

/// Every row of a run in export order (tests and small runs; large runs use
/// [`for_each_record`]).
pub async fn all_records(
    store: &dyn Store,
    owner: &UserId,
    run_id: &str,
) -> Result<Vec<RecordRow>, StoreError> {
    let mut rows = Vec::new();
    for_each_record(store, owner, run_id, |row| {
        rows.push(row);
        Ok::<(), StoreError>(())
    })
    .await?;
    Ok(rows)
}

/// A page of the side-by-side view of a run of `owner` ([`SideQuery`]): filtered and sorted
/// over the run's [`Store::score_matrix`]; the page's rows are then read by key
/// ([`Store::records_after`]).
pub async fn side_page(
    store: &dyn Store,
    owner: &UserId,
    run_id: &str,
    query: &SideQuery,
) -> Result<SidePage, StoreError> {
    let matrix = store.score_matrix(owner, run_id, &query.score).await?;
    Ok(scores::side_page(&matrix, query))
}

/// The default data directory: `$XDG_DATA_HOME/llm-eval` or `~/.local/share/llm-eval`.
pub fn default_data_dir() -> PathBuf {
    let base = match std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
            Some(home) => PathBuf::from(home).join(".local").join("share"),
            None => PathBuf::from("."),
        },
    };
    base.join("llm-eval")
}

/// The default store file: `store.sqlite` in [`default_data_dir`].
pub fn default_store_path() -> PathBuf {
    default_data_dir().join("store.sqlite")
}

/// An error and its sources, `outer: inner: innermost`, for messages (no `Debug` output).
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        // Some errors repeat their source in their own message.
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// A new run id: UTC time plus 64 random bits from the operating system, e.g.
/// `20260101T120000Z-3fa2c09e5b7d1e44`; ids of runs started in the same second by any number of
/// users or tasks do not collide (and cannot be guessed from one another).
pub fn new_run_id() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let suffix = sqlite::random_hex(8);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z-{suffix}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
