//! The run store: SQLite tables of runs and their per-record results, shared by the CLI and
//! (later) the web server.
//!
//! Invariants: the database runs in WAL mode, so any number of readers (other connections,
//! other processes) see consistent snapshots while one run writes; a (run, model, position)
//! triple is a primary key, so a record can never be stored twice for the same model in one run;
//! every call is blocking and is meant to run on a blocking thread (`spawn_blocking` or a
//! dedicated writer thread), never on the async runtime directly.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::metrics::Score;

/// A failed store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The directory of the store could not be created.
    #[error("creating store directory {}", .path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
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
    #[error("store {}: run `{run_id}`: column `{column}` holds invalid JSON", .path.display())]
    Json {
        /// The store file.
        path: PathBuf,
        /// The run.
        run_id: String,
        /// The column.
        column: &'static str,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// No run has this id.
    #[error("store {}: no run `{run_id}`", .path.display())]
    UnknownRun {
        /// The store file.
        path: PathBuf,
        /// The id asked for.
        run_id: String,
    },
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
}

impl RunStatus {
    /// The lowercase name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Finished => "finished",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Failed => "failed",
        }
    }

    fn parse(text: &str) -> RunStatus {
        match text {
            "running" => RunStatus::Running,
            "finished" => RunStatus::Finished,
            "cancelled" => RunStatus::Cancelled,
            _ => RunStatus::Failed,
        }
    }
}

/// One run as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRow {
    /// The run's id.
    pub id: String,
    /// When it was created (RFC 3339, UTC).
    pub created: String,
    /// The run's configuration (dataset, template, models, metrics, ...).
    pub config: serde_json::Value,
    /// Where the run is.
    pub status: RunStatus,
    /// The summary, once written.
    pub summary: Option<serde_json::Value>,
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

/// The result of evaluating one record with one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordRow {
    /// The model's label (what the user wrote).
    pub model: String,
    /// The model's position in the run's model list (for a stable export order).
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
}

impl RecordRow {
    /// Whether the record was evaluated without error.
    pub fn is_ok(&self) -> bool {
        self.error.is_none()
    }
}

/// A handle on the store (cheap to clone; one connection behind a mutex).
#[derive(Clone)]
pub struct Store {
    path: PathBuf,
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

const SCHEMA: &str = include_str!("schema.sql");

const RECORD_COLUMNS: &str = "model, model_order, position, idx, model_input, prompt, model_output, \
     target_output, category, scores, latency_ms, input_tokens, output_tokens, cost_usd, error, judge_replies";

impl Store {
    /// Opens (or creates) the store file, creating its directory when needed.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            crate::private_fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        // Private: the store holds every prompt and answer (SQLite gives its -wal and -shm
        // files the same mode).
        crate::private_fs::touch(path).map_err(|source| StoreError::CreateDir {
            path: path.to_path_buf(),
            source,
        })?;
        let sqlite = |what| {
            move |source| StoreError::Sqlite {
                path: path.to_path_buf(),
                what,
                source,
            }
        };
        let conn = Connection::open(path).map_err(sqlite("opening"))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(sqlite("setting busy timeout"))?;
        conn.query_row("PRAGMA journal_mode=WAL", [], |row| row.get::<_, String>(0))
            .map_err(sqlite("enabling WAL"))?;
        conn.execute_batch(SCHEMA)
            .map_err(sqlite("creating tables"))?;
        Ok(Store {
            path: path.to_path_buf(),
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sqlite(&self, what: &'static str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Sqlite {
            path: self.path.clone(),
            what,
            source,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records a new run with status `running`.
    pub fn create_run(&self, id: &str, config: &serde_json::Value) -> Result<(), StoreError> {
        self.lock()
            .execute(
                "INSERT INTO runs (id, created, config, status) VALUES (?1, strftime('%Y-%m-%dT%H:%M:%fZ','now'), ?2, 'running')",
                params![id, config.to_string()],
            )
            .map_err(self.sqlite("creating run"))?;
        Ok(())
    }

    /// Sets a run's status and summary.
    pub fn finish_run(
        &self,
        id: &str,
        status: RunStatus,
        summary: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let n = self
            .lock()
            .execute(
                "UPDATE runs SET status = ?2, summary = ?3 WHERE id = ?1",
                params![id, status.as_str(), summary.to_string()],
            )
            .map_err(self.sqlite("finishing run"))?;
        if n == 0 {
            return Err(StoreError::UnknownRun {
                path: self.path.clone(),
                run_id: id.to_string(),
            });
        }
        Ok(())
    }

    /// One run, if it exists.
    pub fn run(&self, id: &str) -> Result<Option<RunRow>, StoreError> {
        let row = self
            .lock()
            .query_row(
                "SELECT id, created, config, status, summary FROM runs WHERE id = ?1",
                [id],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, Option<String>>(4)?,
                    ))
                },
            )
            .optional()
            .map_err(self.sqlite("reading run"))?;
        row.map(|row| self.run_row(row)).transpose()
    }

    /// The most recent runs first, at most `limit`.
    pub fn runs(&self, limit: usize) -> Result<Vec<RunRow>, StoreError> {
        let conn = self.lock();
        let mut statement = conn
            .prepare("SELECT id, created, config, status, summary FROM runs ORDER BY created DESC, id DESC LIMIT ?1")
            .map_err(self.sqlite("listing runs"))?;
        let rows = statement
            .query_map([limit as i64], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, Option<String>>(4)?,
                ))
            })
            .map_err(self.sqlite("listing runs"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.sqlite("listing runs"))?;
        rows.into_iter().map(|row| self.run_row(row)).collect()
    }

    fn run_row(
        &self,
        (id, created, config, status, summary): (String, String, String, String, Option<String>),
    ) -> Result<RunRow, StoreError> {
        let json = |column, text: &str| {
            serde_json::from_str(text).map_err(|source| StoreError::Json {
                path: self.path.clone(),
                run_id: id.clone(),
                column,
                source,
            })
        };
        Ok(RunRow {
            config: json("config", &config)?,
            summary: summary
                .as_deref()
                .map(|text| json("summary", text))
                .transpose()?,
            status: RunStatus::parse(&status),
            created,
            id,
        })
    }

    /// Inserts records of a run in one transaction. A record already stored for the same
    /// (run, model, position) is an error: a record is never evaluated twice.
    pub fn insert_records(&self, run_id: &str, records: &[RecordRow]) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction()
            .map_err(self.sqlite("starting transaction"))?;
        {
            let mut statement = tx
                .prepare_cached(&format!(
                    "INSERT INTO records (run_id, {RECORD_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
                ))
                .map_err(self.sqlite("inserting records"))?;
            for record in records {
                let scores = serde_json::to_string(&record.scores).unwrap_or_default();
                let judge_replies =
                    serde_json::to_string(&record.judge_replies).unwrap_or_default();
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
                    ])
                    .map_err(self.sqlite("inserting records"))?;
            }
        }
        tx.commit().map_err(self.sqlite("committing records"))?;
        Ok(())
    }

    /// Calls `visit` with each record of a run in export order (selection position, then model
    /// order), streaming: records are not collected in memory.
    pub fn for_each_record(
        &self,
        run_id: &str,
        mut visit: impl FnMut(RecordRow) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        // A separate read connection: the writer's connection stays free, and WAL gives this
        // reader a consistent snapshot.
        let conn = Connection::open(&self.path).map_err(self.sqlite("opening reader"))?;
        let mut statement = conn
            .prepare(&format!(
                "SELECT {RECORD_COLUMNS} FROM records WHERE run_id = ?1 ORDER BY position, model_order"
            ))
            .map_err(self.sqlite("reading records"))?;
        let mut rows = statement
            .query([run_id])
            .map_err(self.sqlite("reading records"))?;
        while let Some(row) = rows.next().map_err(self.sqlite("reading records"))? {
            let record = self.record_row(run_id, row)?;
            visit(record)?;
        }
        Ok(())
    }

    /// All records of a run in export order.
    pub fn records(&self, run_id: &str) -> Result<Vec<RecordRow>, StoreError> {
        let mut records = Vec::new();
        self.for_each_record(run_id, |record| {
            records.push(record);
            Ok(())
        })?;
        Ok(records)
    }

    /// Number of records stored for a run.
    pub fn count_records(&self, run_id: &str) -> Result<usize, StoreError> {
        self.lock()
            .query_row(
                "SELECT COUNT(*) FROM records WHERE run_id = ?1",
                [run_id],
                |row| row.get::<_, i64>(0),
            )
            .map(|n| n as usize)
            .map_err(self.sqlite("counting records"))
    }

    fn record_row(&self, run_id: &str, row: &rusqlite::Row<'_>) -> Result<RecordRow, StoreError> {
        let sqlite = self.sqlite("reading records");
        let text = |i| row.get::<_, String>(i).map_err(&sqlite);
        let json_error = |column| {
            move |source| StoreError::Json {
                path: self.path.clone(),
                run_id: run_id.to_string(),
                column,
                source,
            }
        };
        let scores = serde_json::from_str(&text(9)?).map_err(json_error("scores"))?;
        let judge_replies =
            serde_json::from_str(&text(15)?).map_err(json_error("judge_replies"))?;
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
            scores,
            latency_ms: row.get(10).map_err(&sqlite)?,
            input_tokens: row
                .get::<_, Option<i64>>(11)
                .map_err(&sqlite)?
                .map(|n| n as u64),
            output_tokens: row
                .get::<_, Option<i64>>(12)
                .map_err(&sqlite)?
                .map(|n| n as u64),
            cost_usd: row.get(13).map_err(&sqlite)?,
            error: row.get(14).map_err(&sqlite)?,
            judge_replies,
        })
    }
}

/// The default store file: `$XDG_DATA_HOME/llm-eval/store.sqlite` or
/// `~/.local/share/llm-eval/store.sqlite`.
pub fn default_store_path() -> PathBuf {
    let base = match std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
            Some(home) => PathBuf::from(home).join(".local").join("share"),
            None => PathBuf::from("."),
        },
    };
    base.join("llm-eval").join("store.sqlite")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn record(model: &str, position: usize, error: Option<&str>) -> RecordRow {
        RecordRow {
            model: model.to_string(),
            model_order: 0,
            position,
            index: position * 2,
            model_input: format!("prompt {position}"),
            prompt: format!("prompt {position}"),
            model_output: error.is_none().then(|| " out\n".to_string()),
            target_output: Some("t".to_string()),
            category: None,
            scores: vec![Score {
                name: "exact_match_score".to_string(),
                value: crate::metrics::ScoreValue::Int(1),
            }],
            latency_ms: Some(12.5),
            input_tokens: Some(3),
            output_tokens: Some(4),
            cost_usd: Some(0.001),
            error: error.map(str::to_string),
            judge_replies: vec![JudgeReply {
                judge: "j".to_string(),
                reply: "Y".to_string(),
                verdict: 1.0,
            }],
        }
    }

    #[test]
    fn runs_and_records_round_trip_in_export_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("sub/store.sqlite")).unwrap();
        store
            .create_run("r1", &serde_json::json!({"a": 1}))
            .unwrap();
        let records = vec![
            record("m", 2, None),
            record("m", 0, Some("boom")),
            record("m", 1, None),
        ];
        store.insert_records("r1", &records).unwrap();
        let got = store.records("r1").unwrap();
        assert_eq!(
            got.iter().map(|r| r.position).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        assert_eq!(got[1], records[2]);
        assert_eq!(store.count_records("r1").unwrap(), 3);

        let run = store.run("r1").unwrap().unwrap();
        assert_eq!((run.status, run.summary), (RunStatus::Running, None));
        store
            .finish_run("r1", RunStatus::Cancelled, &serde_json::json!({"done": 2}))
            .unwrap();
        let run = store.run("r1").unwrap().unwrap();
        assert_eq!(run.status, RunStatus::Cancelled);
        assert_eq!(run.summary, Some(serde_json::json!({"done": 2})));
        assert_eq!(store.runs(10).unwrap().len(), 1);
        assert!(store.run("nope").unwrap().is_none());
        assert!(
            store
                .finish_run("nope", RunStatus::Finished, &serde_json::json!({}))
                .is_err()
        );
    }

    #[test]
    fn a_record_cannot_be_stored_twice() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store.sqlite")).unwrap();
        store.create_run("r", &serde_json::json!({})).unwrap();
        store.insert_records("r", &[record("m", 0, None)]).unwrap();
        assert!(store.insert_records("r", &[record("m", 0, None)]).is_err());
        store
            .insert_records("r", &[record("other", 0, None)])
            .unwrap();
        assert_eq!(store.count_records("r").unwrap(), 2);
    }
}
