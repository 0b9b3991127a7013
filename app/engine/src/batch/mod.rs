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
//! state says so); so do the records of a chunk left under 100 by the 1 GB limit. Failed,
//! Expired and Stopped jobs end the run with the reason; the records they processed are kept,
//! the others are stored as failed with the job's reason.
//!
//! Judges ([`JudgeMode::Batch`], the default): once the answers are in, each judge's prompts
//! over them go out as a second phase of jobs (of the judge model, same chunking and minimum,
//! names and keys tagged `j{judge}`), and the runner takes the verdicts from their outputs;
//! [`JudgeMode::Online`] asks the judges from this process as online runs do.
//!
//! A retry of a batch run's failed records ([`BatchRun::with_retry`], [`start_retry`]) is a
//! new batch run that copies every reusable answer of the earlier run and sends only the rest
//! as jobs named in the retry's scope (`{run}-r{attempt}`): the same attempt names the same
//! jobs (a retry created twice starts one set), the next attempt new ones.
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
use crate::runner::{self, EvalPlan, PriorAnswer, PriorResults, RunContext, RunError, RunOutcome};
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

/// How the judges of a batch run are asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JudgeMode {
    /// A second phase of batch jobs over the answers (the default for batch runs).
    #[default]
    Batch,
    /// From this process, as online runs do.
    Online,
}

impl JudgeMode {
    /// `batch` or `online`.
    pub fn as_str(self) -> &'static str {
        match self {
            JudgeMode::Batch => "batch",
            JudgeMode::Online => "online",
        }
    }
}

impl std::str::FromStr for JudgeMode {
    type Err = String;

    fn from_str(text: &str) -> Result<JudgeMode, String> {
        match text.trim() {
            "batch" => Ok(JudgeMode::Batch),
            "online" => Ok(JudgeMode::Online),
            other => Err(format!("unknown judge mode `{other}` (batch, online)")),
        }
    }
}

impl std::fmt::Display for JudgeMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A retry of an earlier batch run's failed records, as [`start_retry`] numbers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryOf {
    /// The run retried.
    pub run_id: String,
    /// Its retry number (1 for the first retry of that run).
    pub attempt: u32,
}

impl RetryOf {
    /// The scope the retry's jobs are named in.
    pub fn scope(&self) -> String {
        chunk::retry_scope(&self.run_id, self.attempt)
    }
}

/// What [`start_retry`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryStart {
    /// A retry of the run is still running: this run id (nothing new is started).
    InFlight(String),
    /// Start this retry.
    New(RetryOf),
}

/// The field of a run's summary that lists its batch retries (`[{"attempt", "run_id"}]`).
const RETRIES_FIELD: &str = "batch_retries";
/// The most retries a run's summary lists (the latest; the attempt numbers go on from the
/// highest kept).
const MAX_LISTED_RETRIES: usize = 100;

/// Numbers a batch retry of run `run_id`: the retry still running, if one is (a second click,
/// a command run twice), or the next attempt. Two retries numbered at the same moment get the
/// same attempt, so their jobs are the same jobs ([`chunk::retry_scope`]).
pub async fn start_retry(
    store: &store::SharedStore,
    owner: &store::UserId,
    run_id: &str,
) -> Result<RetryStart, BatchError> {
    let run = store
        .run(owner, run_id)
        .await?
        .ok_or_else(|| StoreError::UnknownRun {
            run_id: run_id.to_owned(),
        })?;
    if run.status == RunStatus::Running {
        return Err(BatchError::StillRunning(run_id.to_owned()));
    }
    let retries = retries_of(run.summary.as_ref());
    if let Some((_, last)) = retries.last()
        && let Some(retry) = store.run(owner, last).await?
        && retry.status == RunStatus::Running
    {
        return Ok(RetryStart::InFlight(last.clone()));
    }
    let attempt = retries
        .iter()
        .map(|(attempt, _)| *attempt)
        .max()
        .unwrap_or(0)
        + 1;
    Ok(RetryStart::New(RetryOf {
        run_id: run_id.to_owned(),
        attempt,
    }))
}

/// The retries a run's summary lists: (attempt, run id).
fn retries_of(summary: Option<&Value>) -> Vec<(u32, String)> {
    summary
        .and_then(|summary| summary.get(RETRIES_FIELD))
        .and_then(Value::as_array)
        .map(|retries| {
            retries
                .iter()
                .filter_map(|retry| {
                    let attempt = u32::try_from(retry.get("attempt")?.as_u64()?).ok()?;
                    Some((attempt, retry.get("run_id")?.as_str()?.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default()
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
    /// A retry was asked of a run that is still running.
    #[error("run `{0}` is still going; retry its failed records once it ends")]
    StillRunning(String),
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
    /// The answers, or a judge's verdicts on them.
    #[serde(default)]
    pub phase: chunk::Phase,
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
    /// The column's position in the run (the answers judged, in the judge phase).
    pub model_order: usize,
    /// The answers, or a judge's verdicts on them.
    #[serde(default)]
    pub phase: chunk::Phase,
    /// The label of the model the job runs (the judge's, in the judge phase).
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
    /// Whether the judges' verdicts go through a second phase of jobs.
    #[serde(default)]
    pub judge_phase: bool,
    /// Whether every job of the judge phase was created.
    #[serde(default)]
    pub judges_submitted: bool,
}

impl BatchState {
    /// The phase the run is in: the judges' once their jobs are created.
    pub fn phase(&self) -> &'static str {
        if self.judges_submitted {
            "judges"
        } else {
            "answers"
        }
    }

    fn in_phase(&self, job: &JobState) -> bool {
        (job.phase != chunk::Phase::Answers) == self.judges_submitted
    }

    /// Records processed and records in jobs, over the jobs of the current phase.
    pub fn counts(&self) -> (u64, u64) {
        self.jobs
            .iter()
            .filter(|job| self.in_phase(job))
            .fold((0, 0), |(processed, total), job| {
                (processed + job.processed, total + job.records as u64)
            })
    }

    /// The state stored with a run (`summary.batch`), if it is a batch run.
    pub fn of_summary(summary: Option<&Value>) -> Option<BatchState> {
        summary
            .and_then(|summary| summary.get("batch"))
            .and_then(|state| serde_json::from_value(state.clone()).ok())
    }

    /// A one-line account of the current phase's jobs for progress lines: `2 jobs: 1
    /// InProgress, 1 Completed`, after the phase (`answers: `, `judges: `) when the judges
    /// have a phase of their own.
    pub fn status_line(&self) -> String {
        let mut statuses: Vec<(&str, usize)> = Vec::new();
        let jobs: Vec<&JobState> = self.jobs.iter().filter(|job| self.in_phase(job)).collect();
        for job in &jobs {
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
        let phase = if self.judge_phase {
            format!("{}: ", self.phase())
        } else {
            String::new()
        };
        format!("{phase}{} jobs: {}", jobs.len(), parts.join(", "))
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
    /// Each judge's batch price, or why it has none.
    judge_prices: Vec<Result<BatchPrice, String>>,
    judge_mode: JudgeMode,
    retry: Option<RetryOf>,
    leave: Option<Arc<dyn Fn() -> bool + Send + Sync>>,
}

impl std::fmt::Debug for BatchRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchRun")
            .field("run_id", &self.run_id)
            .field("settings", &self.settings)
            .field("judge_mode", &self.judge_mode)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// A model's batch price, or why it cannot run in batch mode.
fn batch_price(model: &runner::ModelClient, catalog: &Catalog) -> Result<BatchPrice, String> {
    if model.provider.name() != "bedrock" {
        return Err(format!(
            "batch inference is Amazon Bedrock's; this is a {} model",
            model.provider.name()
        ));
    }
    if model.params.has_bedrock_options() {
        return Err(
            "a service tier or latency is set: they are options of online calls (a batch job has its own price and queue); drop them for batch mode"
                .to_owned(),
        );
    }
    let spec = catalog
        .resolve(&model.label)
        .map_err(|error| error.to_string())?;
    spec.batch_price.ok_or_else(|| {
        "the catalog gives it no batch price (batch_price_per_1k_input/output): Bedrock batch inference does not support it, or its price is not known"
            .to_owned()
    })
}

/// How a stored run is run: read from its configuration, so whoever picks it up (another
/// task, `runs watch`) runs it as it was started.
struct Setup {
    /// The scope its jobs are named in (the run id, or a retry's scope).
    scope: String,
    judge_mode: JudgeMode,
    /// The earlier run's reusable answers, for a retry.
    prior: Option<Arc<PriorResults>>,
    /// Whether the earlier run had the same judges and rubric: its answers keep their
    /// verdicts (not judged again).
    reuse_verdicts: bool,
}

/// The requests of one input stream: a column's answers, or a judge's verdicts on a column.
#[derive(Debug, Clone, Copy)]
struct Stream {
    phase: chunk::Phase,
    model_order: usize,
    per_job: usize,
}

/// Which requests a pass over the records writes.
#[derive(Clone)]
enum Requests {
    /// The models' requests of the columns with a stream (`streams[column]`), except the pairs
    /// with a reusable earlier answer.
    Answers {
        streams: Vec<Option<usize>>,
        prior: Option<Arc<PriorResults>>,
    },
    /// The judges' requests on the answers (`answers` by (column, position), or an earlier
    /// run's): `streams[judge][column]`.
    Judges {
        streams: Vec<Vec<Option<usize>>>,
        answers: Arc<HashMap<(usize, usize), String>>,
        prior: Option<Arc<PriorResults>>,
        reuse_verdicts: bool,
    },
}

impl BatchRun {
    /// Checks that every model of `plan` can run in batch mode (a Bedrock model with a batch
    /// price in `catalog`) and that the settings are usable. Judges are asked in batch
    /// ([`JudgeMode::Batch`]) unless [`BatchRun::with_judge_mode`] says otherwise.
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
                batch_price(model, catalog).map_err(|reason| BatchError::Unsupported {
                    model: model.label.clone(),
                    reason,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let judge_prices = plan
            .judges
            .iter()
            .map(|judge| batch_price(judge, catalog))
            .collect();
        Ok(BatchRun {
            plan,
            run_id: run_id.to_owned(),
            context,
            clients,
            settings,
            prices,
            judge_prices,
            judge_mode: JudgeMode::Batch,
            retry: None,
            leave: None,
        })
    }

    /// How the judges are asked; a judge that cannot run in batch mode refuses
    /// [`JudgeMode::Batch`] with the reason.
    pub fn with_judge_mode(mut self, mode: JudgeMode) -> Result<BatchRun, BatchError> {
        self.judge_mode = mode;
        self.check_judges(mode)?;
        Ok(self)
    }

    /// The run retries the failed records of `retry.run_id` (numbered by [`start_retry`]): it
    /// copies every reusable answer of that run and sends only the others.
    pub fn with_retry(mut self, retry: RetryOf) -> BatchRun {
        self.retry = Some(retry);
        self
    }

    /// Whether the judges' verdicts go through batch jobs under `mode`.
    fn judges_in_batch(&self, mode: JudgeMode) -> bool {
        mode == JudgeMode::Batch
            && !self.plan.judges.is_empty()
            && self
                .plan
                .metrics
                .contains(&fmeval_scoring::metrics::MetricName::QaAccuracyByLlm)
    }

    fn check_judges(&self, mode: JudgeMode) -> Result<(), BatchError> {
        if !self.judges_in_batch(mode) {
            return Ok(());
        }
        for (judge, price) in self.plan.judges.iter().zip(&self.judge_prices) {
            if let Err(reason) = price {
                return Err(BatchError::Unsupported {
                    model: judge.label.clone(),
                    reason: format!(
                        "{reason}; as a judge it can be asked online instead (judge mode online)"
                    ),
                });
            }
        }
        Ok(())
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

    async fn n_selected(&self) -> Result<usize, BatchError> {
        let plan = self.plan.clone();
        Ok(tokio::task::spawn_blocking(move || {
            runner::selected_work(&plan.dataset, plan.selection).map(|(n, _)| n)
        })
        .await
        .map_err(|error| BatchError::Run(RunError::Task(error)))??)
    }

    /// Creates the run, writes the inputs and creates the jobs; returns the stored state.
    pub async fn submit(&self) -> Result<BatchState, BatchError> {
        runner::validate(&self.plan)?;
        self.check_judges(self.judge_mode)?;
        let n_selected = self.n_selected().await?;
        let total = n_selected * self.plan.columns().len();
        let mut config = self.plan.config_json();
        if let Some(object) = config.as_object_mut() {
            object.insert("mode".into(), RunMode::Batch.as_str().into());
            object.insert("judge_mode".into(), self.judge_mode.as_str().into());
            if let Some(retry) = &self.retry {
                object.insert("retry_of".into(), retry.run_id.clone().into());
                object.insert("batch_attempt".into(), retry.attempt.into());
                object.insert("batch_scope".into(), retry.scope().into());
            }
        }
        self.context
            .store
            .create_run(&self.context.owner, &self.run_id, &config, total)
            .await?;
        if let Some(retry) = &self.retry {
            self.record_retry(retry).await?;
        }
        let setup = self.setup(&config).await?;
        let state = BatchState {
            bucket: self.settings.bucket.clone(),
            role_arn: self.settings.role_arn.clone(),
            prefix: chunk::run_prefix(&self.settings.prefix, &setup.scope),
            ..BatchState::default()
        };
        self.save(&state).await?;
        let _ = self.context.events.send(ProgressEvent::Started {
            run_id: self.run_id.clone(),
            total,
        });
        self.submit_jobs(state, n_selected, &setup).await
    }

    /// Adds this run to the retries listed with the run it retries (the next retry of that run
    /// gets the next attempt; one asked while this one runs is sent to this one).
    async fn record_retry(&self, retry: &RetryOf) -> Result<(), BatchError> {
        let store = &self.context.store;
        let Some(earlier) = store.run(&self.context.owner, &retry.run_id).await? else {
            return Err(BatchError::NotBatch(retry.run_id.clone()));
        };
        let mut summary = earlier.summary.unwrap_or_else(|| json!({}));
        let mut retries: Vec<Value> = summary
            .get(RETRIES_FIELD)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if !retries
            .iter()
            .any(|entry| entry.get("run_id").and_then(Value::as_str) == Some(&self.run_id))
        {
            retries.push(json!({"attempt": retry.attempt, "run_id": self.run_id}));
        }
        let excess = retries.len().saturating_sub(MAX_LISTED_RETRIES);
        retries.drain(..excess);
        if let Some(object) = summary.as_object_mut() {
            object.insert(RETRIES_FIELD.into(), retries.into());
        }
        store
            .finish_run(&self.context.owner, &retry.run_id, earlier.status, &summary)
            .await?;
        Ok(())
    }

    /// How the stored run with `config` runs.
    async fn setup(&self, config: &Value) -> Result<Setup, BatchError> {
        let scope = config
            .get("batch_scope")
            .and_then(Value::as_str)
            .map_or_else(|| self.run_id.clone(), str::to_owned);
        // Runs stored before judges had a batch phase asked them online.
        let judge_mode = config
            .get("judge_mode")
            .and_then(Value::as_str)
            .and_then(|mode| mode.parse().ok())
            .unwrap_or(JudgeMode::Online);
        let mut reuse_verdicts = false;
        let prior = match config.get("retry_of").and_then(Value::as_str) {
            Some(earlier) => {
                if let Some(run) = self.context.store.run(&self.context.owner, earlier).await? {
                    let judges: Vec<&str> = self
                        .plan
                        .judges
                        .iter()
                        .map(|judge| judge.label.as_str())
                        .collect();
                    reuse_verdicts = run.config.get("rubric").and_then(Value::as_str)
                        == Some(self.plan.rubric.source())
                        && run.config.get("judges") == Some(&json!(judges));
                }
                let mut prior = PriorResults::new();
                store::for_each_record(
                    self.context.store.as_ref(),
                    &self.context.owner,
                    earlier,
                    |row| {
                        if let Some(answer) = PriorAnswer::from_row(&row) {
                            prior.insert(runner::prior_key(&row), answer);
                        }
                        Ok::<(), StoreError>(())
                    },
                )
                .await?;
                Some(Arc::new(prior))
            }
            None => None,
        };
        Ok(Setup {
            scope,
            judge_mode,
            prior,
            reuse_verdicts,
        })
    }

    /// Writes the inputs and creates the answer jobs of a stored run whose jobs are not all
    /// created.
    async fn submit_jobs(
        &self,
        mut state: BatchState,
        n_selected: usize,
        setup: &Setup,
    ) -> Result<BatchState, BatchError> {
        state.jobs.clear();
        state.online.clear();
        state.judges_submitted = false;
        state.judge_phase = self.judges_in_batch(setup.judge_mode);
        // One job input per column (prompt variant × model): a column's order is its
        // `model_order` in the rows and in the job names.
        let n_models = self.plan.models.len().max(1);
        let n_columns = self.plan.variants.len() * self.plan.models.len();
        // A retry sends only the pairs without a reusable earlier answer: count them first.
        let counts = match &setup.prior {
            None => vec![n_selected; n_columns],
            Some(prior) => {
                let requests = Requests::Answers {
                    streams: (0..n_columns).map(Some).collect(),
                    prior: Some(prior.clone()),
                };
                self.count(requests, n_columns).await?
            }
        };
        let mut streams = Vec::new();
        let mut stream_of = vec![None; n_columns];
        for (column, &n) in counts.iter().enumerate() {
            let model = &self.plan.models[column % n_models];
            if n == 0 && setup.prior.is_some() {
                continue;
            }
            if n < chunk::MIN_RECORDS_PER_JOB {
                let what = if setup.prior.is_some() {
                    "failed records to retry"
                } else {
                    "selected records"
                };
                state.online.push(OnlinePart {
                    model_order: column,
                    phase: chunk::Phase::Answers,
                    first: 0,
                    last: n_selected.saturating_sub(1),
                    reason: format!(
                        "`{}` runs online: {n} {what}, and a batch job takes at least {}",
                        model.label,
                        chunk::MIN_RECORDS_PER_JOB
                    ),
                });
            } else {
                stream_of[column] = Some(streams.len());
                streams.push(Stream {
                    phase: chunk::Phase::Answers,
                    model_order: column,
                    per_job: chunk::records_per_job(n, self.settings.max_records_per_job),
                });
            }
        }
        let requests = Requests::Answers {
            streams: stream_of,
            prior: setup.prior.clone(),
        };
        let (chunks, fingerprint) = self.write_inputs(&state.prefix, streams, requests).await?;
        state.dataset_version = fingerprint;
        self.create_jobs(&mut state, chunks, &setup.scope).await?;
        state.submitted = true;
        self.save(&state).await?;
        Ok(state)
    }

    /// The judge phase: writes each judge's prompts over the answers the jobs gave (and a
    /// retry's copied answers) and creates their jobs; a judge with fewer than 100 answers of
    /// a column to judge judges them online, and the run says so.
    async fn submit_judges(
        &self,
        mut state: BatchState,
        setup: &Setup,
    ) -> Result<BatchState, BatchError> {
        // Jobs of a judge phase whose process died before it ended are found again by name.
        state.jobs.retain(|job| job.phase == chunk::Phase::Answers);
        state
            .online
            .retain(|part| part.phase == chunk::Phase::Answers);
        let answers = Arc::new(
            results::read(&self.clients, &state, &self.prices, &self.settings)
                .await?
                .into_texts(),
        );
        let n_models = self.plan.models.len().max(1);
        let n_columns = self.plan.variants.len() * self.plan.models.len();
        let n_judges = self.plan.judges.len();
        let all = (0..n_judges)
            .map(|judge| {
                (0..n_columns)
                    .map(|column| Some(judge * n_columns + column))
                    .collect()
            })
            .collect();
        let requests = Requests::Judges {
            streams: all,
            answers: answers.clone(),
            prior: setup.prior.clone(),
            reuse_verdicts: setup.reuse_verdicts,
        };
        let counts = self.count(requests, n_judges * n_columns).await?;
        let mut streams = Vec::new();
        let mut stream_of = vec![vec![None; n_columns]; n_judges];
        for (judge_idx, judge) in self.plan.judges.iter().enumerate() {
            for column in 0..n_columns {
                let n = counts[judge_idx * n_columns + column];
                let phase = chunk::Phase::Judge { judge: judge_idx };
                if n == 0 {
                    continue;
                }
                if n < chunk::MIN_RECORDS_PER_JOB {
                    state.online.push(OnlinePart {
                        model_order: column,
                        phase,
                        first: 0,
                        last: 0,
                        reason: format!(
                            "judge `{}` judges the answers of `{}` online: {n} answers to judge, and a batch job takes at least {}",
                            judge.label,
                            self.plan.models[column % n_models].label,
                            chunk::MIN_RECORDS_PER_JOB
                        ),
                    });
                } else {
                    stream_of[judge_idx][column] = Some(streams.len());
                    streams.push(Stream {
                        phase,
                        model_order: column,
                        per_job: chunk::records_per_job(n, self.settings.max_records_per_job),
                    });
                }
            }
        }
        let requests = Requests::Judges {
            streams: stream_of,
            answers,
            prior: setup.prior.clone(),
            reuse_verdicts: setup.reuse_verdicts,
        };
        let (chunks, _) = self.write_inputs(&state.prefix, streams, requests).await?;
        self.create_jobs(&mut state, chunks, &setup.scope).await?;
        state.judges_submitted = true;
        self.save(&state).await?;
        Ok(state)
    }

    /// Creates one job per written chunk (a chunk left under the minimum by the 1 GB limit
    /// runs online), storing the state after each.
    async fn create_jobs(
        &self,
        state: &mut BatchState,
        chunks: Vec<ChunkFile>,
        scope: &str,
    ) -> Result<(), BatchError> {
        let n_models = self.plan.models.len().max(1);
        for file in chunks {
            let model = match file.phase {
                chunk::Phase::Answers => &self.plan.models[file.model_order % n_models],
                chunk::Phase::Judge { judge } => &self.plan.judges[judge],
            };
            if file.records < chunk::MIN_RECORDS_PER_JOB {
                if file.records > 0 {
                    state.online.push(OnlinePart {
                        model_order: file.model_order,
                        phase: file.phase,
                        first: file.first,
                        last: file.last,
                        reason: format!(
                            "{} {} of `{}` run online: their chunk is under {} records",
                            file.records,
                            match file.phase {
                                chunk::Phase::Answers => "records",
                                chunk::Phase::Judge { .. } => "verdicts",
                            },
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
                chunk::output_prefix(&state.prefix, file.phase, file.model_order, file.chunk)
            );
            let request = aws::CreateJob {
                name: chunk::job_name(scope, file.phase, file.model_order, file.chunk),
                token: chunk::client_request_token(
                    scope,
                    file.phase,
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
            tracing::info!(run_id = %self.run_id, job = %job_arn, model = %model.label, phase = file.phase.label(), records = file.records, "batch job created");
            state.jobs.push(JobState {
                model_order: file.model_order,
                phase: file.phase,
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
            self.save(state).await?;
        }
        Ok(())
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

    /// Counts the requests of each of `n_streams` streams in one pass over the records.
    async fn count(&self, requests: Requests, n_streams: usize) -> Result<Vec<usize>, BatchError> {
        let plan = self.plan.clone();
        let cancel = self.context.cancel.clone();
        tokio::task::spawn_blocking(move || {
            let (_, works) = runner::selected_work(&plan.dataset, plan.selection)?;
            let mut counts = vec![0; n_streams];
            let mut lines = Vec::new();
            for work in works {
                if cancel.is_cancelled() {
                    break;
                }
                let work = work?;
                let Ok(record) = &work.record else { continue };
                lines.clear();
                requests_of(&plan, &requests, &work, record, &mut lines);
                for (stream, _) in &lines {
                    counts[*stream] += 1;
                }
            }
            Ok(counts)
        })
        .await
        .map_err(|error| BatchError::Run(RunError::Task(error)))?
    }

    /// Streams the selected records once, writing each stream's request lines into chunk
    /// files of its `per_job` records (and under 1 GB), uploaded as they fill.
    async fn write_inputs(
        &self,
        run_prefix: &str,
        streams: Vec<Stream>,
        requests: Requests,
    ) -> Result<(Vec<ChunkFile>, String), BatchError> {
        if streams.is_empty() {
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
        let dir_path = dir.path().to_path_buf();
        let prefix = run_prefix.to_owned();
        let cancel = self.context.cancel.clone();
        let writer = tokio::task::spawn_blocking(move || {
            write_chunks(&plan, &streams, &requests, &dir_path, &prefix, &tx, &cancel)
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

    /// The outcome of a run left to whoever picks it up next (nothing more stored).
    fn left(&self, total: usize, started: Instant) -> RunOutcome {
        RunOutcome {
            run_id: self.run_id.clone(),
            status: RunStatus::Cancelled,
            total,
            done: 0,
            failed: 0,
            copied: 0,
            elapsed: started.elapsed(),
        }
    }

    /// Waits for the jobs of the stored run (submitting them first if the process that created
    /// the run died before), then for its judge phase's jobs, reads their outputs, scores and
    /// stores every pair, and ends the run. The context's cancel stops the jobs
    /// (StopModelInvocationJob); what they processed is kept.
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
        let setup = self.setup(&run.config).await?;
        self.check_judges(setup.judge_mode)?;
        // A summary written over (a task that handed the run back) lost the state: the jobs
        // are found again by their names and tokens, which the run determines.
        let mut state =
            BatchState::of_summary(run.summary.as_ref()).unwrap_or_else(|| BatchState {
                bucket: self.settings.bucket.clone(),
                role_arn: self.settings.role_arn.clone(),
                prefix: chunk::run_prefix(&self.settings.prefix, &setup.scope),
                ..BatchState::default()
            });
        if run.status != RunStatus::Running {
            // Picked up again (`runs watch` of an interrupted run): running once more.
            self.save(&state).await?;
        }
        if !state.submitted {
            let n_selected = self.n_selected().await?;
            state = self.submit_jobs(state, n_selected, &setup).await?;
        }
        let total_records = state.counts().1 as usize;
        let total = run.total.unwrap_or(total_records);
        let _ = self.context.events.send(ProgressEvent::Started {
            run_id: self.run_id.clone(),
            total,
        });
        self.wait(&mut state, started).await?;
        if self.leaving() {
            return Ok(self.left(total, started));
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
        let mut judges_not_asked = None;
        if state.judge_phase && !state.judges_submitted {
            let ended_badly = state
                .jobs
                .iter()
                .any(|job| matches!(job.status.as_str(), "Failed" | "Expired"));
            if state.stop_requested || ended_badly {
                judges_not_asked = Some(
                    "the judges were not asked: the run's answer jobs did not all complete"
                        .to_owned(),
                );
            } else {
                state = self.submit_judges(state, &setup).await?;
                self.wait(&mut state, started).await?;
                if self.leaving() {
                    return Ok(self.left(total, started));
                }
            }
        }
        let answers = results::read(&self.clients, &state, &self.prices, &self.settings).await?;
        let verdicts: Option<Arc<dyn runner::VerdictSource>> = if state.judges_submitted {
            let prices: Vec<Option<BatchPrice>> = self
                .judge_prices
                .iter()
                .map(|price| price.as_ref().ok().copied())
                .collect();
            Some(Arc::new(
                results::read_verdicts(&self.clients, &state, &prices, &self.settings).await?,
            ))
        } else {
            judges_not_asked.map(|reason| {
                Arc::new(results::NoVerdicts(reason)) as Arc<dyn runner::VerdictSource>
            })
        };
        // The runner scores and stores what the jobs answered; a cancel has already stopped
        // the jobs, and their answers must still be stored, so the runner gets its own token.
        let context = RunContext {
            cancel: CancellationToken::new(),
            ..self.context.clone()
        };
        let external = runner::External {
            answers: Arc::new(answers),
            verdicts,
            prior: setup.prior.clone(),
            reuse_verdicts: setup.reuse_verdicts,
        };
        let mut outcome =
            runner::resume_with_answers(self.plan.clone(), &self.run_id, context, external).await?;
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
    phase: chunk::Phase,
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

/// The request bodies (`modelInput`) of one record, with their stream, as `requests` asks.
/// Records the runner fails before any call (template or reference problems) give none: the
/// runner stores them with their error; so do judge prompts over the rubric's size limit.
fn requests_of(
    plan: &EvalPlan,
    requests: &Requests,
    work: &runner::Work,
    record: &crate::dataset::Record,
    out: &mut Vec<(usize, Value)>,
) {
    let Ok(target) = reference_text(record, &plan.reference_field, plan.dataset.path()) else {
        return;
    };
    let rendered: Vec<_> = plan
        .variants
        .iter()
        .map(|variant| variant.template.render(record).ok())
        .collect();
    let n_models = plan.models.len().max(1);
    let n_columns = plan.variants.len() * plan.models.len();
    let prior = match requests {
        Requests::Answers { prior, .. } | Requests::Judges { prior, .. } => prior.as_deref(),
    };
    for column in 0..n_columns {
        let Some(Some(rendered)) = rendered.get(column / n_models) else {
            continue;
        };
        let model = &plan.models[column % n_models];
        let variant = &plan.variants[column / n_models];
        // As the runner reuses an earlier answer: same prompt, same reference.
        let reused = prior
            .and_then(|prior| prior.get(&(variant.label.clone(), model.label.clone(), work.index)))
            .filter(|previous| {
                previous.prompt_hash == runner::prompt_hash(&rendered.text)
                    && previous.target_output == target
            });
        match requests {
            Requests::Answers { streams, .. } => {
                let Some(stream) = streams[column] else {
                    continue;
                };
                if reused.is_some() {
                    continue;
                }
                let request = crate::providers::GenerateRequest {
                    model_id: model.model_id.clone(),
                    messages: rendered.messages.clone(),
                    prompt_text: rendered.text.clone(),
                    params: model.params.clone(),
                };
                out.push((stream, crate::providers::bedrock::converse_body(&request)));
            }
            Requests::Judges {
                streams,
                answers,
                reuse_verdicts,
                ..
            } => {
                let answer = match reused {
                    // Judged already, by the same judges with the same rubric: kept as it is.
                    Some(previous)
                        if *reuse_verdicts
                            && previous.judge_replies.len() == plan.judges.len()
                            && previous
                                .judge_replies
                                .iter()
                                .zip(&plan.judges)
                                .all(|(reply, judge)| reply.judge == judge.label) =>
                    {
                        continue;
                    }
                    Some(previous) => Some(previous.model_output.clone()),
                    None => answers.get(&(column, work.position)).cloned(),
                };
                let Some(answer) = answer else {
                    continue;
                };
                let Ok((text, messages)) =
                    plan.rubric.render_text(&rendered.text, &answer, &target)
                else {
                    continue;
                };
                for (judge_idx, judge) in plan.judges.iter().enumerate() {
                    let Some(stream) = streams[judge_idx][column] else {
                        continue;
                    };
                    let request = crate::providers::GenerateRequest {
                        model_id: judge.model_id.clone(),
                        messages: messages.clone(),
                        prompt_text: text.clone(),
                        params: judge.params.clone(),
                    };
                    out.push((stream, crate::providers::bedrock::converse_body(&request)));
                }
            }
        }
    }
}

/// The blocking half of [`BatchRun::write_inputs`]: one pass over the selected records.
fn write_chunks(
    plan: &EvalPlan,
    streams: &[Stream],
    requests: &Requests,
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
    let mut lines = Vec::new();
    for work in works {
        if cancel.is_cancelled() {
            break;
        }
        let work = work?;
        let Ok(record) = &work.record else { continue };
        lines.clear();
        requests_of(plan, requests, &work, record, &mut lines);
        for (stream_idx, body) in lines.drain(..) {
            let stream = streams[stream_idx];
            let mut line = json!({
                "recordId": chunk::record_id(work.position),
                "modelInput": body,
            })
            .to_string();
            line.push('\n');
            let full = open.get(&stream_idx).is_some_and(|current| {
                current.chunk.records >= stream.per_job
                    || current.bytes + line.len() as u64 > chunk::MAX_FILE_BYTES
            });
            if full && let Some(done) = open.remove(&stream_idx) {
                send(done)?;
            }
            let current = match open.entry(stream_idx) {
                std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::hash_map::Entry::Vacant(entry) => {
                    let chunk_idx = next_chunk.entry(stream_idx).or_insert(0);
                    let path = dir.join(format!("s{stream_idx}-c{chunk_idx}.jsonl"));
                    let file = std::fs::File::create(&path).map_err(io(&path))?;
                    let opened = entry.insert(OpenChunk {
                        file: std::io::BufWriter::new(file),
                        chunk: ChunkFile {
                            phase: stream.phase,
                            model_order: stream.model_order,
                            chunk: *chunk_idx,
                            first: work.position,
                            last: work.position,
                            records: 0,
                            key: chunk::input_key(
                                run_prefix,
                                stream.phase,
                                stream.model_order,
                                *chunk_idx,
                            ),
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
    remaining.sort_by(|a, b| a.chunk.key.cmp(&b.chunk.key));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_with_phases_and_reads_states_stored_before_them() {
        let mut state = BatchState {
            judge_phase: true,
            ..BatchState::default()
        };
        state.online.push(OnlinePart {
            model_order: 0,
            phase: chunk::Phase::Answers,
            first: 0,
            last: 9,
            reason: "r".into(),
        });
        for (phase, status) in [
            (chunk::Phase::Answers, "Completed"),
            (chunk::Phase::Judge { judge: 0 }, "InProgress"),
        ] {
            state.jobs.push(JobState {
                model_order: 0,
                phase,
                model: "m".into(),
                chunk: 0,
                first: 0,
                last: 199,
                records: 200,
                job_arn: "arn".into(),
                status: status.into(),
                message: None,
                processed: 50,
                errors: 0,
                output_uri: "s3://b/p/".into(),
            });
        }
        let summary = json!({"batch": state});
        assert_eq!(BatchState::of_summary(Some(&summary)), Some(state.clone()));
        assert_eq!(state.status_line(), "answers: 1 jobs: 1 Completed");
        state.judges_submitted = true;
        assert_eq!(state.status_line(), "judges: 1 jobs: 1 InProgress");
        assert_eq!(state.counts(), (50, 200));
        // A state stored before phases existed: every job and part is of the answers.
        let old = json!({"batch": {
            "bucket": "b", "role_arn": "r", "prefix": "p", "submitted": true,
            "jobs": [{"model_order": 0, "model": "m", "chunk": 0, "first": 0, "last": 1,
                      "records": 2, "job_arn": "a", "status": "Completed", "output_uri": "s3://b/o/"}],
            "online": [{"model_order": 1, "first": 0, "last": 1, "reason": "r"}],
        }});
        let old = BatchState::of_summary(Some(&old)).expect("an old state reads");
        assert_eq!(old.jobs[0].phase, chunk::Phase::Answers);
        assert_eq!(old.status_line(), "1 jobs: 1 Completed");
    }

    #[test]
    fn retries_are_read_from_the_summary() {
        let summary = json!({"batch_retries": [
            {"attempt": 1, "run_id": "a"}, {"attempt": 2, "run_id": "b"}, {"bad": true}
        ]});
        assert_eq!(
            retries_of(Some(&summary)),
            vec![(1, "a".to_owned()), (2, "b".to_owned())]
        );
        assert!(retries_of(None).is_empty());
        assert_eq!(
            RetryOf {
                run_id: "r".into(),
                attempt: 3
            }
            .scope(),
            "r-r3"
        );
        assert_eq!("online".parse(), Ok(JudgeMode::Online));
        assert!("later".parse::<JudgeMode>().is_err());
    }
}
