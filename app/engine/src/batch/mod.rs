//! Amazon Bedrock batch inference as a run mode: a run's Bedrock models answer through
//! `CreateModelInvocationJob` instead of online calls, and everything after the answer
//! (metrics, judges, store, exports) is the runner's, unchanged.
//!
//! A batch run goes: check the models (Bedrock, with a batch price in the catalog) → create the
//! run → write each model's Converse request bodies as JSONL (`recordId` = the selection
//! position) to `s3://BUCKET/PREFIX/RUN/m{model}/c{chunk}/input.jsonl`, in jobs of 100 to
//! 50,000 records and at most 1 GB ([`chunk`]) → create one job per chunk with a
//! `clientRequestToken` derived from (run, model, chunk) → keep the job ARNs in the run's
//! summary (`batch`, a [`BatchState`]; both store backends keep a running run's summary) →
//! poll `GetModelInvocationJob` (bounded waits; progress from its record counters) → read the
//! `.jsonl.out` files, joined by `recordId` → [`crate::runner::resume_with_answers`], which
//! scores and stores every pair exactly once and skips pairs already stored, so a process that
//! picks the run up again after a restart repeats nothing.
//!
//! A model with fewer than 100 selected records runs online in the same run (and the run's
//! state says so); so do the records of a chunk left under 100 by the 1 GB limit. Judges run
//! online. Failed, Expired and Stopped jobs end the run with the reason; the records they
//! processed are kept, the others are stored as failed with the job's reason.
//!
//! This module talks to AWS only through [`aws`]; it knows nothing about pages or the CLI.

mod aws;
pub mod chunk;
mod results;

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub use aws::BatchClients;

use crate::catalog::{BatchPrice, Catalog};
use crate::dataset::{DatasetError, reference_text};
use crate::progress::ProgressEvent;
use crate::runner::{self, EvalPlan, RunContext, RunError, RunOutcome};
use store::{RunStatus, StoreError};

/// How a run calls its models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunMode {
    /// Calls from this process, bounded by the runner's concurrency (the default).
    #[default]
    Online,
    /// Amazon Bedrock batch inference jobs.
    Batch,
}

impl RunMode {
    /// `online` or `batch`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunMode::Online => "online",
            RunMode::Batch => "batch",
        }
    }
}

impl std::str::FromStr for RunMode {
    type Err = String;

    fn from_str(text: &str) -> Result<RunMode, String> {
        match text.trim() {
            "online" => Ok(RunMode::Online),
            "batch" => Ok(RunMode::Batch),
            other => Err(format!("unknown mode `{other}` (online, batch)")),
        }
    }
}

impl std::fmt::Display for RunMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where batch objects go, which role Bedrock assumes, and how long to wait.
#[derive(Debug, Clone)]
pub struct BatchSettings {
    /// The bucket of inputs and outputs (`LLM_EVAL_BATCH_BUCKET`).
    pub bucket: String,
    /// The service role Bedrock assumes to read and write it (`LLM_EVAL_BATCH_ROLE_ARN`).
    pub role_arn: String,
    /// The key prefix of every run's objects (the stack's lifecycle rule expires it).
    pub prefix: String,
    /// Time between two rounds of `GetModelInvocationJob`.
    pub poll_interval: Duration,
    /// The longest a run waits for its jobs (Bedrock ends a job after at most 7 days).
    pub max_wait: Duration,
    /// Records per job at most (Bedrock: 50,000; lower only in tests).
    pub max_records_per_job: usize,
    /// The longest output line read (a record's request and answer); a longer one fails the
    /// run rather than being buffered.
    pub max_output_line: usize,
}

/// The default key prefix of batch objects.
pub const DEFAULT_PREFIX: &str = "llm-eval-batch";

impl BatchSettings {
    /// Settings with the defaults: prefix [`DEFAULT_PREFIX`], a poll a minute, at most 8 days.
    pub fn new(bucket: impl Into<String>, role_arn: impl Into<String>) -> BatchSettings {
        BatchSettings {
            bucket: bucket.into(),
            role_arn: role_arn.into(),
            prefix: DEFAULT_PREFIX.to_owned(),
            poll_interval: Duration::from_secs(60),
            max_wait: Duration::from_secs(8 * 24 * 3600),
            max_records_per_job: chunk::MAX_RECORDS_PER_JOB,
            max_output_line: 64 << 20,
        }
    }

    fn check(&self) -> Result<(), BatchError> {
        let bucket_ok = (3..=63).contains(&self.bucket.len())
            && self.bucket.bytes().all(|byte| {
                byte.is_ascii_lowercase() || byte.is_ascii_digit() || b".-".contains(&byte)
            });
        if !bucket_ok {
            return Err(BatchError::Setting {
                name: "batch bucket",
                problem: format!("`{}` is not an S3 bucket name", self.bucket),
            });
        }
        if !(self.role_arn.starts_with("arn:") && self.role_arn.contains(":role/")) {
            return Err(BatchError::Setting {
                name: "batch role ARN",
                problem: format!("`{}` is not an IAM role ARN", self.role_arn),
            });
        }
        Ok(())
    }
}

/// Why a batch run could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// A model cannot run in batch mode.
    #[error("model `{model}` cannot run in batch mode: {reason}")]
    Unsupported {
        /// The model's label.
        model: String,
        /// Why.
        reason: String,
    },
    /// A setting is missing or malformed.
    #[error("{name}: {problem}")]
    Setting {
        /// The setting.
        name: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// An AWS call failed (after the SDK's bounded retries).
    #[error("{operation}: {message}")]
    Aws {
        /// The operation and its object.
        operation: String,
        /// The service's message.
        message: String,
    },
    /// An output file is not what Bedrock writes.
    #[error("{uri}: line {line}: {problem}")]
    Output {
        /// The object.
        uri: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        problem: String,
    },
    /// The jobs did not end within [`BatchSettings::max_wait`].
    #[error("the batch jobs did not end within {0:?}; `llm-eval runs watch` picks them up again")]
    Timeout(Duration),
    /// The dataset changed since the jobs' inputs were written from it.
    #[error("{}: the dataset changed since the batch inputs were written from it; its answers cannot be joined to its records", .0.display())]
    DatasetChanged(PathBuf),
    /// The run is not a batch run of this store.
    #[error("run `{0}` is not a batch run (no batch state is stored with it)")]
    NotBatch(String),
    /// A local file of the inputs could not be written.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The dataset could not be read.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The runner failed.
    #[error(transparent)]
    Run(#[from] RunError),
}

/// A model that runs online in a batch run, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OnlinePart {
    /// The model's position in the run.
    pub model_order: usize,
    /// First and last selection position concerned (inclusive).
    pub first: usize,
    /// Last selection position concerned.
    pub last: usize,
    /// Why (shown on the run).
    pub reason: String,
}

/// One job of a run, as stored with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobState {
    /// The model's position in the run.
    pub model_order: usize,
    /// The model's label.
    pub model: String,
    /// The chunk number.
    pub chunk: usize,
    /// First selection position in the job.
    pub first: usize,
    /// Last selection position in the job (inclusive).
    pub last: usize,
    /// Records written.
    pub records: usize,
    /// The job's ARN.
    pub job_arn: String,
    /// The last status seen.
    pub status: String,
    /// The job's message, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `processedRecordCount`.
    #[serde(default)]
    pub processed: u64,
    /// `errorRecordCount`.
    #[serde(default)]
    pub errors: u64,
    /// The output prefix (`s3://...`).
    pub output_uri: String,
}

impl JobState {
    /// Whether the job has ended.
    pub fn ended(&self) -> bool {
        is_ended(&self.status)
    }

    /// Why a record of the job has no output, when the job ended without one for it.
    fn reason(&self) -> String {
        match &self.message {
            Some(message) => format!(
                "batch job {} ended {}: {message}",
                self.job_arn, self.status
            ),
            None => format!(
                "batch job {} ended {} without an output for this record",
                self.job_arn, self.status
            ),
        }
    }
}

fn is_ended(status: &str) -> bool {
    matches!(
        status,
        "Completed" | "PartiallyCompleted" | "Failed" | "Stopped" | "Expired"
    )
}

/// What a batch run keeps with it (in its summary, under `batch`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BatchState {
    /// The bucket.
    pub bucket: String,
    /// The role Bedrock assumes.
    pub role_arn: String,
    /// The run's key prefix.
    pub prefix: String,
    /// Whether every job was created.
    pub submitted: bool,
    /// Whether the user asked to stop the jobs.
    #[serde(default)]
    pub stop_requested: bool,
    /// The jobs.
    pub jobs: Vec<JobState>,
    /// What runs online instead.
    pub online: Vec<OnlinePart>,
    /// The version of the dataset the inputs were written from (size and digest).
    #[serde(default)]
    pub dataset_version: String,
}

impl BatchState {
    /// Records processed and records in jobs, over every job.
    pub fn counts(&self) -> (u64, u64) {
        self.jobs.iter().fold((0, 0), |(processed, total), job| {
            (processed + job.processed, total + job.records as u64)
        })
    }

    /// The state stored with a run (`summary.batch`), if it is a batch run.
    pub fn of_summary(summary: Option<&Value>) -> Option<BatchState> {
        summary
            .and_then(|summary| summary.get("batch"))
            .and_then(|state| serde_json::from_value(state.clone()).ok())
    }

    /// A one-line account of the jobs for progress lines: `2 jobs: 1 InProgress, 1 Completed`.
    pub fn status_line(&self) -> String {
        let mut statuses: Vec<(&str, usize)> = Vec::new();
        for job in &self.jobs {
            match statuses
                .iter_mut()
                .find(|(status, _)| *status == job.status)
            {
                Some((_, count)) => *count += 1,
                None => statuses.push((&job.status, 1)),
            }
        }
        let parts: Vec<String> = statuses
            .iter()
            .map(|(status, count)| format!("{count} {status}"))
            .collect();
        format!("{} jobs: {}", self.jobs.len(), parts.join(", "))
    }
}

/// A batch run: the plan, where it is stored, and the clients and settings it uses.
pub struct BatchRun {
    plan: Arc<EvalPlan>,
    run_id: String,
    context: RunContext,
    clients: BatchClients,
    settings: BatchSettings,
    prices: Vec<BatchPrice>,
    leave: Option<Arc<dyn Fn() -> bool + Send + Sync>>,
}

impl std::fmt::Debug for BatchRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchRun")
            .field("run_id", &self.run_id)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl BatchRun {
    /// Checks that every model of `plan` can run in batch mode (a Bedrock model with a batch
    /// price in `catalog`) and that the settings are usable.
    pub fn new(
        plan: Arc<EvalPlan>,
        catalog: &Catalog,
        run_id: &str,
        context: RunContext,
        clients: BatchClients,
        settings: BatchSettings,
    ) -> Result<BatchRun, BatchError> {
        settings.check()?;
        let prices = plan
            .models
            .iter()
            .map(|model| {
                let unsupported = |reason: String| BatchError::Unsupported {
                    model: model.label.clone(),
                    reason,
                };
                if model.provider.name() != "bedrock" {
                    return Err(unsupported(format!(
                        "batch inference is Amazon Bedrock's; this is a {} model",
                        model.provider.name()
                    )));
                }
                if model.params.has_bedrock_options() {
                    return Err(unsupported(
                        "a service tier or latency is set: they are options of online calls (a batch job has its own price and queue); drop them for batch mode"
                            .to_owned(),
                    ));
                }
                let spec = catalog
                    .resolve(&model.label)
                    .map_err(|error| unsupported(error.to_string()))?;
                spec.batch_price.ok_or_else(|| {
                    unsupported(
                        "the catalog gives it no batch price (batch_price_per_1k_input/output): Bedrock batch inference does not support it, or its price is not known"
                            .to_owned(),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(BatchRun {
            plan,
            run_id: run_id.to_owned(),
            context,
            clients,
            settings,
            prices,
            leave: None,
        })
    }

    /// When `leave()` is true as the context's cancel fires (a server shutting down, a lease
    /// taken by another task), the run is left to whoever picks it up next: its jobs go on
    /// (no StopModelInvocationJob) and [`BatchRun::finish`] returns at once with status
    /// `Cancelled`, having stored nothing more.
    pub fn leave_when(mut self, leave: impl Fn() -> bool + Send + Sync + 'static) -> BatchRun {
        self.leave = Some(Arc::new(leave));
        self
    }

    fn leaving(&self) -> bool {
        self.context.cancel.is_cancelled() && self.leave.as_ref().is_some_and(|leave| leave())
    }

    /// The run's id.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// S3 requests this run made so far.
    pub fn s3_requests(&self) -> u64 {
        self.clients.s3_requests()
    }

    /// Creates the run, writes the inputs and creates the jobs; returns the stored state.
    pub async fn submit(&self) -> Result<BatchState, BatchError> {
        runner::validate(&self.plan)?;
        let plan = self.plan.clone();
        let n_selected = tokio::task::spawn_blocking(move || {
            runner::selected_work(&plan.dataset, plan.selection).map(|(n, _)| n)
        })
        .await
        .map_err(|error| BatchError::Run(RunError::Task(error)))??;
        let total = n_selected * self.plan.columns().len();
        let mut config = self.plan.config_json();
        if let Some(object) = config.as_object_mut() {
            object.insert("mode".into(), RunMode::Batch.as_str().into());
        }
        self.context
            .store
            .create_run(&self.context.owner, &self.run_id, &config, total)
            .await?;
        let state = BatchState {
            bucket: self.settings.bucket.clone(),
            role_arn: self.settings.role_arn.clone(),
            prefix: chunk::run_prefix(&self.settings.prefix, &self.run_id),
            ..BatchState::default()
        };
        self.save(&state).await?;
        let _ = self.context.events.send(ProgressEvent::Started {
            run_id: self.run_id.clone(),
            total,
        });
        self.submit_jobs(state, n_selected).await
    }

    /// Writes the inputs and creates the jobs of a stored run whose jobs are not all created.
    async fn submit_jobs(
        &self,
        mut state: BatchState,
        n_selected: usize,
    ) -> Result<BatchState, BatchError> {
        state.jobs.clear();
        state.online.clear();
        let per_job = chunk::records_per_job(n_selected, self.settings.max_records_per_job);
        let mut batch_models = Vec::new();
        // One job input per column (prompt variant × model): a column's order is its
        // `model_order` in the rows and in the job names.
        let n_models = self.plan.models.len().max(1);
        for model_order in 0..self.plan.variants.len() * self.plan.models.len() {
            let model = &self.plan.models[model_order % n_models];
            if n_selected < chunk::MIN_RECORDS_PER_JOB {
                state.online.push(OnlinePart {
                    model_order,
                    first: 0,
                    last: n_selected.saturating_sub(1),
                    reason: format!(
                        "`{}` runs online: {n_selected} selected records, and a batch job takes at least {}",
                        model.label,
                        chunk::MIN_RECORDS_PER_JOB
                    ),
                });
            } else {
                batch_models.push(model_order);
            }
        }
        let (chunks, fingerprint) = self
            .write_inputs(&state.prefix, &batch_models, per_job)
            .await?;
        state.dataset_version = fingerprint;
        for file in chunks {
            let model = &self.plan.models[file.model_order % n_models];
            if file.records < chunk::MIN_RECORDS_PER_JOB {
                if file.records > 0 {
                    state.online.push(OnlinePart {
                        model_order: file.model_order,
                        first: file.first,
                        last: file.last,
                        reason: format!(
                            "{} records of `{}` run online: their chunk is under {} records",
                            file.records,
                            model.label,
                            chunk::MIN_RECORDS_PER_JOB
                        ),
                    });
                }
                continue;
            }
            let output_uri = format!(
                "s3://{}/{}",
                state.bucket,
                chunk::output_prefix(&state.prefix, file.model_order, file.chunk)
            );
            let request = aws::CreateJob {
                name: chunk::job_name(&self.run_id, file.model_order, file.chunk),
                token: chunk::client_request_token(
                    &self.run_id,
                    file.model_order,
                    &model.model_id,
                    file.chunk,
                ),
                model_id: model.model_id.clone(),
                role_arn: state.role_arn.clone(),
                input_uri: format!("s3://{}/{}", state.bucket, file.key),
                output_uri: output_uri.clone(),
            };
            // A job created by an earlier process (its state lost) is found by its name.
            let found = self
                .clients
                .find_job(&request.name)
                .await
                .map_err(|message| BatchError::Aws {
                    operation: format!("ListModelInvocationJobs {}", request.name),
                    message,
                })?;
            let job_arn = match found {
                Some(arn) => arn,
                None => self.create_job(&request).await?,
            };
            tracing::info!(run_id = %self.run_id, job = %job_arn, model = %model.label, records = file.records, "batch job created");
            state.jobs.push(JobState {
                model_order: file.model_order,
                model: model.label.clone(),
                chunk: file.chunk,
                first: file.first,
                last: file.last,
                records: file.records,
                job_arn,
                status: "Submitted".to_owned(),
                message: None,
                processed: 0,
                errors: 0,
                output_uri,
            });
            self.save(&state).await?;
        }
        state.submitted = true;
        self.save(&state).await?;
        Ok(state)
    }

    /// `CreateModelInvocationJob`, waiting while the account's job quota is full (bounded by
    /// [`BatchSettings::max_wait`]); the idempotency token makes every retry safe.
    async fn create_job(&self, request: &aws::CreateJob) -> Result<String, BatchError> {
        let started = Instant::now();
        loop {
            match self.clients.create_job(request).await {
                Ok(arn) => return Ok(arn),
                Err(aws::CreateError::QuotaFull(message))
                    if started.elapsed() < self.settings.max_wait =>
                {
                    tracing::warn!(run_id = %self.run_id, %message, "batch job quota full; waiting");
                    tokio::select! {
                        _ = self.context.cancel.cancelled() => {
                            return Err(BatchError::Aws {
                                operation: format!("CreateModelInvocationJob {}", request.name),
                                message: format!("cancelled while the job quota was full: {message}"),
                            });
                        }
                        _ = tokio::time::sleep(self.settings.poll_interval) => {}
                    }
                }
                Err(error) => {
                    return Err(BatchError::Aws {
                        operation: format!("CreateModelInvocationJob {}", request.name),
                        message: error.to_string(),
                    });
                }
            }
        }
    }

    /// Streams the selected records once, writing each batch model's request lines into chunk
    /// files of `per_job` records (and under 1 GB), uploaded as they fill.
    async fn write_inputs(
        &self,
        run_prefix: &str,
        batch_models: &[usize],
        per_job: usize,
    ) -> Result<(Vec<ChunkFile>, String), BatchError> {
        if batch_models.is_empty() {
            let path = self.plan.dataset.path().to_path_buf();
            let version = tokio::task::spawn_blocking(move || dataset_version(&path))
                .await
                .map_err(|error| BatchError::Run(RunError::Task(error)))??;
            return Ok((Vec::new(), version));
        }
        let dir = tempfile::Builder::new()
            .prefix("llm-eval-batch-")
            .tempdir()
            .map_err(|source| BatchError::Io {
                path: std::env::temp_dir(),
                source,
            })?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<ChunkFile>(2);
        let plan = self.plan.clone();
        let models = batch_models.to_vec();
        let dir_path = dir.path().to_path_buf();
        let prefix = run_prefix.to_owned();
        let cancel = self.context.cancel.clone();
        let writer = tokio::task::spawn_blocking(move || {
            write_chunks(&plan, &models, per_job, &dir_path, &prefix, &tx, &cancel)
        });
        let mut written = Vec::new();
        while let Some(file) = rx.recv().await {
            self.clients
                .put_file(&self.settings.bucket, &file.key, &file.path)
                .await
                .map_err(|message| BatchError::Aws {
                    operation: format!("PutObject s3://{}/{}", self.settings.bucket, file.key),
                    message,
                })?;
            let _ = std::fs::remove_file(&file.path);
            written.push(file);
        }
        let fingerprint = writer
            .await
            .map_err(|error| BatchError::Run(RunError::Task(error)))??;
        drop(dir);
        Ok((written, fingerprint))
    }

    async fn save(&self, state: &BatchState) -> Result<(), StoreError> {
        let (processed, records) = state.counts();
        let summary = json!({
            "batch": state,
            "batch_progress": {"processed": processed, "records": records},
        });
        self.context
            .store
            .finish_run(
                &self.context.owner,
                &self.run_id,
                RunStatus::Running,
                &summary,
            )
            .await
    }

    /// Waits for the jobs of the stored run (submitting them first if the process that created
    /// the run died before), reads their outputs, scores and stores every pair, and ends the
    /// run. The context's cancel stops the jobs (StopModelInvocationJob); what they processed
    /// is kept.
    pub async fn finish(&self) -> Result<RunOutcome, BatchError> {
        let started = Instant::now();
        let run = self
            .context
            .store
            .run(&self.context.owner, &self.run_id)
            .await?
            .ok_or_else(|| BatchError::NotBatch(self.run_id.clone()))?;
        if run.config.get("mode").and_then(Value::as_str) != Some(RunMode::Batch.as_str()) {
            return Err(BatchError::NotBatch(self.run_id.clone()));
        }
        // A summary written over (a task that handed the run back) lost the state: the jobs
        // are found again by their names and tokens, which the run determines.
        let mut state =
            BatchState::of_summary(run.summary.as_ref()).unwrap_or_else(|| BatchState {
                bucket: self.settings.bucket.clone(),
                role_arn: self.settings.role_arn.clone(),
                prefix: chunk::run_prefix(&self.settings.prefix, &self.run_id),
                ..BatchState::default()
            });
        if run.status != RunStatus::Running {
            // Picked up again (`runs watch` of an interrupted run): running once more.
            self.save(&state).await?;
        }
        if !state.submitted {
            let plan = self.plan.clone();
            let n_selected = tokio::task::spawn_blocking(move || {
                runner::selected_work(&plan.dataset, plan.selection).map(|(n, _)| n)
            })
            .await
            .map_err(|error| BatchError::Run(RunError::Task(error)))??;
            state = self.submit_jobs(state, n_selected).await?;
        }
        let total_records = state.counts().1 as usize;
        let _ = self.context.events.send(ProgressEvent::Started {
            run_id: self.run_id.clone(),
            total: run.total.unwrap_or(total_records),
        });
        self.wait(&mut state, started).await?;
        if self.leaving() {
            return Ok(RunOutcome {
                run_id: self.run_id.clone(),
                status: RunStatus::Cancelled,
                total: run.total.unwrap_or(total_records),
                done: 0,
                failed: 0,
                copied: 0,
                elapsed: started.elapsed(),
            });
        }
        // Answers are joined to records by position: they must be the records sent.
        let path = self.plan.dataset.path().to_path_buf();
        let version = tokio::task::spawn_blocking(move || dataset_version(&path))
            .await
            .map_err(|error| BatchError::Run(RunError::Task(error)))??;
        if version != state.dataset_version {
            return Err(BatchError::DatasetChanged(
                self.plan.dataset.path().to_path_buf(),
            ));
        }
        let answers = results::read(&self.clients, &state, &self.prices, &self.settings).await?;
        // The runner scores and stores what the jobs answered; a cancel has already stopped
        // the jobs, and their answers must still be stored, so the runner gets its own token.
        let context = RunContext {
            cancel: CancellationToken::new(),
            ..self.context.clone()
        };
        let mut outcome = runner::resume_with_answers(
            self.plan.clone(),
            &self.run_id,
            context,
            Arc::new(answers),
        )
        .await?;
        let ended_badly: Vec<String> = state
            .jobs
            .iter()
            .filter(|job| matches!(job.status.as_str(), "Failed" | "Expired"))
            .map(JobState::reason)
            .collect();
        let status = if !ended_badly.is_empty() {
            RunStatus::Failed
        } else if state.stop_requested {
            RunStatus::Cancelled
        } else {
            outcome.status
        };
        let mut summary = json!({
            "total": outcome.total,
            "done": outcome.done,
            "failed": outcome.failed,
            "batch": state,
        });
        if let (Some(first), Some(object)) = (ended_badly.first(), summary.as_object_mut()) {
            object.insert("error".into(), first.clone().into());
        }
        self.context
            .store
            .finish_run(&self.context.owner, &self.run_id, status, &summary)
            .await?;
        outcome.status = status;
        outcome.elapsed = started.elapsed();
        Ok(outcome)
    }

    /// Polls until every job has ended; a cancel stops the jobs that have not.
    async fn wait(&self, state: &mut BatchState, started: Instant) -> Result<(), BatchError> {
        let cancel = self.context.cancel.clone();
        loop {
            let mut changed = false;
            for job in state.jobs.iter_mut().filter(|job| !job.ended()) {
                let seen = self
                    .clients
                    .get_job(&job.job_arn)
                    .await
                    .map_err(|message| BatchError::Aws {
                        operation: format!("GetModelInvocationJob {}", job.job_arn),
                        message,
                    })?;
                if seen.status != job.status
                    || seen.processed != job.processed
                    || seen.message != job.message
                {
                    changed = true;
                }
                job.status = seen.status;
                job.processed = seen.processed;
                job.errors = seen.errors;
                job.message = seen.message;
            }
            if !state.jobs.is_empty() {
                let (processed, records) = state.counts();
                let _ = self.context.events.send(ProgressEvent::BatchJobs {
                    status: state.status_line(),
                    processed: processed as usize,
                    records: records as usize,
                });
            }
            if changed {
                self.save(state).await?;
            }
            if state.jobs.iter().all(JobState::ended) {
                return Ok(());
            }
            if started.elapsed() > self.settings.max_wait {
                let _ = self
                    .context
                    .store
                    .finish_run(
                        &self.context.owner,
                        &self.run_id,
                        RunStatus::Interrupted,
                        &json!({"batch": state}),
                    )
                    .await;
                return Err(BatchError::Timeout(self.settings.max_wait));
            }
            if self.leaving() {
                return Ok(());
            }
            if !state.stop_requested && cancel.is_cancelled() {
                self.stop(state).await?;
                continue;
            }
            tokio::select! {
                _ = cancel.cancelled(), if !state.stop_requested => {}
                _ = tokio::time::sleep(self.settings.poll_interval) => {}
            }
        }
    }

    /// `StopModelInvocationJob` for every job not yet ended.
    async fn stop(&self, state: &mut BatchState) -> Result<(), BatchError> {
        state.stop_requested = true;
        for job in state.jobs.iter_mut().filter(|job| !job.ended()) {
            self.clients
                .stop_job(&job.job_arn)
                .await
                .map_err(|message| BatchError::Aws {
                    operation: format!("StopModelInvocationJob {}", job.job_arn),
                    message,
                })?;
            tracing::info!(run_id = %self.run_id, job = %job.job_arn, "batch job stopped");
        }
        self.save(state).await?;
        Ok(())
    }

    /// [`BatchRun::submit`] then [`BatchRun::finish`].
    pub async fn run(&self) -> Result<RunOutcome, BatchError> {
        self.submit().await?;
        self.finish().await
    }
}

/// One finished input file.
#[derive(Debug)]
struct ChunkFile {
    model_order: usize,
    chunk: usize,
    first: usize,
    last: usize,
    records: usize,
    key: String,
    path: PathBuf,
}

/// A chunk being written.
struct OpenChunk {
    file: std::io::BufWriter<std::fs::File>,
    chunk: ChunkFile,
    bytes: u64,
}

/// The blocking half of [`BatchRun::write_inputs`]: one pass over the selected records.
fn write_chunks(
    plan: &EvalPlan,
    models: &[usize],
    per_job: usize,
    dir: &std::path::Path,
    run_prefix: &str,
    tx: &tokio::sync::mpsc::Sender<ChunkFile>,
    cancel: &CancellationToken,
) -> Result<String, BatchError> {
    let fingerprint = plan.dataset.fingerprint()?;
    let (_, works) = runner::selected_work(&plan.dataset, plan.selection)?;
    let mut open: HashMap<usize, OpenChunk> = HashMap::new();
    let mut next_chunk: HashMap<usize, usize> = HashMap::new();
    let io = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| BatchError::Io { path, source }
    };
    let send = |open: OpenChunk| -> Result<(), BatchError> {
        let path = open.chunk.path.clone();
        open.file
            .into_inner()
            .map_err(|error| error.into_error())
            .and_then(|file| file.sync_all())
            .map_err(io(&path))?;
        // A closed receiver means the uploads failed; their error is reported there.
        let _ = tx.blocking_send(open.chunk);
        Ok(())
    };
    for work in works {
        if cancel.is_cancelled() {
            break;
        }
        let work = work?;
        let Ok(record) = &work.record else { continue };
        // Records the runner fails before any call (template or reference problems) are not
        // sent: the runner stores them with their error.
        if reference_text(record, &plan.reference_field, plan.dataset.path()).is_err() {
            continue;
        }
        let rendered: Vec<_> = plan
            .variants
            .iter()
            .map(|variant| variant.template.render(record).ok())
            .collect();
        let n_models = plan.models.len().max(1);
        for &model_order in models {
            let Some(Some(rendered)) = rendered.get(model_order / n_models) else {
                continue;
            };
            let model = &plan.models[model_order % n_models];
            let request = crate::providers::GenerateRequest {
                model_id: model.model_id.clone(),
                messages: rendered.messages.clone(),
                prompt_text: rendered.text.clone(),
                params: model.params.clone(),
            };
            let mut line = json!({
                "recordId": chunk::record_id(work.position),
                "modelInput": crate::providers::bedrock::converse_body(&request),
            })
            .to_string();
            line.push('\n');
            let full = open.get(&model_order).is_some_and(|current| {
                current.chunk.records >= per_job
                    || current.bytes + line.len() as u64 > chunk::MAX_FILE_BYTES
            });
            if full && let Some(done) = open.remove(&model_order) {
                send(done)?;
            }
            let current = match open.entry(model_order) {
                std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::hash_map::Entry::Vacant(entry) => {
                    let chunk_idx = next_chunk.entry(model_order).or_insert(0);
                    let path = dir.join(format!("m{model_order}-c{chunk_idx}.jsonl"));
                    let file = std::fs::File::create(&path).map_err(io(&path))?;
                    let opened = entry.insert(OpenChunk {
                        file: std::io::BufWriter::new(file),
                        chunk: ChunkFile {
                            model_order,
                            chunk: *chunk_idx,
                            first: work.position,
                            last: work.position,
                            records: 0,
                            key: chunk::input_key(run_prefix, model_order, *chunk_idx),
                            path,
                        },
                        bytes: 0,
                    });
                    *chunk_idx += 1;
                    opened
                }
            };
            current
                .file
                .write_all(line.as_bytes())
                .map_err(io(&current.chunk.path))?;
            current.bytes += line.len() as u64;
            current.chunk.records += 1;
            current.chunk.last = work.position;
        }
    }
    plan.dataset.check_unchanged(&fingerprint)?;
    let mut remaining: Vec<OpenChunk> = open.into_values().collect();
    remaining.sort_by_key(|open| (open.chunk.model_order, open.chunk.chunk));
    for open in remaining {
        send(open)?;
    }
    dataset_version(plan.dataset.path())
}

/// The dataset's size and a 64-bit FNV-1a digest of its bytes: the same file content gives
/// the same version on any machine (a copy downloaded again after a restart included).
fn dataset_version(path: &std::path::Path) -> Result<String, BatchError> {
    use std::io::Read;
    let io = |source| BatchError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut buffer = vec![0u8; 1 << 16];
    let (mut len, mut hash) = (0u64, 0xcbf2_9ce4_8422_2325_u64);
    loop {
        let n = file.read(&mut buffer).map_err(io)?;
        if n == 0 {
            break;
        }
        len += n as u64;
        for byte in &buffer[..n] {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    Ok(format!("{len}:{hash:016x}"))
}
