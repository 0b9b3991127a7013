//! The runner: evaluates the selected records of a dataset with one or more prompt variants
//! and one or more models (and judge models), concurrently, and records every outcome in the
//! [`Store`]. Each (variant, model) pair is a column of the run: the variant's template is
//! rendered for the record and sent to the model.
//!
//! Pipeline: a blocking reader thread streams the selected records into a bounded channel; up
//! to `2 × concurrency` records are evaluated at once, each by every model (each model's calls
//! are limited by its own adaptive window, see [`Caller`]); every finished (record, model) row
//! goes to a single writer that stores batches in one transaction each.
//!
//! Invariants:
//! - Every selected (record, column) pair is recorded exactly once, as a success or with its
//!   error; a failing record never stops the run. The store's primary key enforces "once".
//! - Memory is O(concurrency) for `--records`/all selections: records are read lazily and rows
//!   are written as they finish. A `--sample` keeps only the sampled records.
//! - Rows reach the store in completion order; exports read them back ordered by selection
//!   position (dataset order, or fmeval's shuffled sample order) then model order, so output
//!   files are deterministic whatever the completion order.
//! - Cancelling stops reading, abandons in-flight calls and keeps what finished; the run is
//!   marked `cancelled`.
//! - Nothing calls a model before the template fields, the reference field and the judges are
//!   checked ([`validate`]).

mod call;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

pub use call::{
    CallError, CallOutcome, Caller, DEFAULT_MAX_RETRY_WAIT, DEFAULT_RECORD_TIMEOUT, ModelClient,
    RunnerConfig, Slot, Stop, Window,
};

use crate::cache::ResponseCache;
use crate::dataset::{Dataset, DatasetError, Record, reference_text};
use crate::judge::{Rubric, judge_score, parse_verdict};
use crate::output::Column;
use crate::progress::ProgressEvent;
use crate::template::{PromptTemplate, TemplateError};
use fmeval_scoring::metrics::classification::ValidLabels;
use fmeval_scoring::metrics::robustness::delta_scores;
use fmeval_scoring::metrics::{MetricName, Score, ScoreValue, score_classification, score_record};
use fmeval_scoring::perturbation::Perturber;
use fmeval_scoring::sample::{Selection, selected_indices};
use store::{JudgeReply, PerturbedAnswer, RecordRow, RunStatus, SharedStore, StoreError, UserId};

/// Rows stored per transaction at most.
const WRITE_BATCH: usize = 512;

/// A run that cannot start or could not go on.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The dataset could not be read.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// A variant's template does not fit the dataset.
    #[error("{}: template {label}: {source}", .path.display())]
    Template {
        /// The dataset file.
        path: std::path::PathBuf,
        /// The variant's label.
        label: String,
        /// The cause.
        #[source]
        source: TemplateError,
    },
    /// The reference field is not a field of the dataset.
    #[error("{}: reference field `{field}` is not in the dataset; available fields: {}", .path.display(), .available.join(", "))]
    MissingReferenceField {
        /// The dataset file.
        path: std::path::PathBuf,
        /// The reference field asked for.
        field: String,
        /// The dataset's fields.
        available: Vec<String>,
    },
    /// `qa_accuracy_by_llm` was asked for without judges.
    #[error("metric `qa_accuracy_by_llm` needs at least one judge model")]
    JudgesRequired,
    /// No model to evaluate.
    #[error("no model to evaluate")]
    NoModels,
    /// Two models (or two judges) have the same label, so their rows would collide.
    #[error("model `{0}` is given twice")]
    DuplicateModel(String),
    /// No prompt template.
    #[error("no prompt template")]
    NoVariants,
    /// Two prompt variants have the same label.
    #[error("prompt variant `{0}` is given twice")]
    DuplicateVariant(String),
    /// No metric to compute.
    #[error("no metric to compute")]
    NoMetrics,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A background task of the run failed.
    #[error("run task failed")]
    Task(#[source] tokio::task::JoinError),
}

/// Everything that defines what a run evaluates.
#[derive(Debug, Clone)]
pub struct EvalPlan {
    /// The run's name (empty: none).
    pub name: String,
    /// The cost estimated before the run ([`crate::estimate`]), kept to show beside the
    /// measured cost.
    pub estimated_cost_usd: Option<f64>,
    /// The dataset.
    pub dataset: Dataset,
    /// The prompt variants, each evaluated with every model on the same records.
    pub variants: Vec<Variant>,
    /// The field holding the reference answer(s).
    pub reference_field: String,
    /// Which records.
    pub selection: Selection,
    /// Which metrics, in output order.
    pub metrics: Vec<MetricName>,
    /// The models evaluated side by side.
    pub models: Vec<ModelClient>,
    /// The judge models (`qa_accuracy_by_llm`).
    pub judges: Vec<ModelClient>,
    /// The judge rubric.
    pub rubric: Rubric,
    /// Concurrency, retries and timeouts.
    pub config: RunnerConfig,
    /// The inference parameters asked for over every model's catalog defaults (already
    /// merged into each client's; kept to store and clone the request).
    pub params: crate::providers::InferenceParams,
    /// The task type, its classification labels and the category field.
    pub task: crate::task::TaskPlan,
}

impl EvalPlan {
    /// The plan as JSON, stored with the run.
    pub fn config_json(&self) -> serde_json::Value {
        let labels = |clients: &[ModelClient]| -> Vec<String> {
            clients.iter().map(|client| client.label.clone()).collect()
        };
        let selection = match self.selection {
            Selection::All => serde_json::json!({"all": true}),
            Selection::First(n) => serde_json::json!({"records": n}),
            Selection::Sample { n, seed } => serde_json::json!({"sample": n, "seed": seed}),
        };
        let mut config = serde_json::json!({
            "name": self.name,
            "estimated_cost_usd": self.estimated_cost_usd,
            "dataset": self.dataset.path().display().to_string(),
            "template": self.variants.first().map(|variant| variant.template.source()),
            "reference_field": self.reference_field,
            "selection": selection,
            "metrics": self.metrics.iter().map(|metric| metric.as_str()).collect::<Vec<_>>(),
            "models": labels(&self.models),
            "judges": labels(&self.judges),
            "rubric": self.rubric.source(),
            "params": self.params,
            "concurrency": self.config.concurrency,
            "max_attempts": self.config.max_attempts,
            "timeout_secs": self.config.timeout.as_secs_f64(),
            "max_retry_wait_secs": self.config.max_retry_wait.as_secs_f64(),
            "record_timeout_secs": self.config.record_timeout.as_secs_f64(),
            "max_record_bytes": self.dataset.max_record_size().0,
            "max_prompt_bytes": self.variants.first().map(|variant| variant.template.max_rendered().0),
        });
        // One template under the default label is stored as before variants existed.
        let single = self.variants.len() == 1 && self.variants[0].label == DEFAULT_VARIANT;
        if !single && let serde_json::Value::Object(object) = &mut config {
            object.remove("template");
            object.insert(
                "variants".into(),
                self.variants
                    .iter()
                    .map(|variant| {
                        serde_json::json!({
                            "label": variant.label,
                            "template": variant.template.source(),
                        })
                    })
                    .collect(),
            );
        }
        if let Some(object) = config.as_object_mut() {
            for (key, value) in self.task.config_entries() {
                object.insert(key.to_owned(), value);
            }
        }
        config
    }

    /// The run's columns in export order: every model under the first variant, then every
    /// model under the next (a row's `model_order` is its column's position here).
    pub fn columns(&self) -> Vec<Column> {
        self.variants
            .iter()
            .flat_map(|variant| {
                self.models.iter().map(|model| Column {
                    variant: variant.label.clone(),
                    model: model.label.clone(),
                })
            })
            .collect()
    }
}

/// The label of a run's only prompt template when it was given none.
pub const DEFAULT_VARIANT: &str = "A";

/// One prompt template of a run, under its label.
#[derive(Debug, Clone)]
pub struct Variant {
    /// The label (`A`, `B`, ... unless the user named it).
    pub label: String,
    /// The template.
    pub template: PromptTemplate,
}

/// What a run shares with the outside world.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// Where rows go.
    pub store: SharedStore,
    /// Who the run belongs to.
    pub owner: UserId,
    /// The response cache (`None`: `--no-cache`).
    pub cache: Option<ResponseCache>,
    /// Progress events.
    pub events: broadcast::Sender<ProgressEvent>,
    /// Cancels the run.
    pub cancel: CancellationToken,
}

/// Answers of an earlier run, by (variant label, model label, dataset index): a resumed run
/// (`--retry-failed`) reuses them instead of calling the model again when the prompt and the
/// reference are unchanged, and scores them with its own metrics (judges are asked again,
/// through the response cache).
pub type PriorResults = HashMap<(String, String, usize), PriorAnswer>;

/// The key of an earlier row in [`PriorResults`] (a row stored before variants existed
/// belongs to the default variant).
pub fn prior_key(row: &RecordRow) -> (String, String, usize) {
    let variant = if row.variant.is_empty() {
        DEFAULT_VARIANT
    } else {
        &row.variant
    };
    (variant.to_string(), row.model.clone(), row.index)
}

/// What a resumed run needs of an earlier successful row. The prompt is kept as a hash, not as
/// text: prompts hold whole documents, and a 100,000-record run must resume in bounded memory.
#[derive(Debug, Clone, PartialEq)]
pub struct PriorAnswer {
    /// [`prompt_hash`] of the row's `model_input`.
    pub prompt_hash: u64,
    /// The reference the answer was scored against.
    pub target_output: String,
    /// The model's answer.
    pub model_output: String,
    /// Latency of the call.
    pub latency_ms: Option<f64>,
    /// Input tokens.
    pub input_tokens: Option<u64>,
    /// Output tokens.
    pub output_tokens: Option<u64>,
    /// Cost of the call.
    pub cost_usd: Option<f64>,
    /// The judges' replies on the answer (reused only where the run says the judges and
    /// rubric are the earlier run's, see [`External::reuse_verdicts`]).
    pub judge_replies: Vec<JudgeReply>,
}

impl PriorAnswer {
    /// The reusable part of a successful row; `None` for a failed row or one without output.
    pub fn from_row(row: &RecordRow) -> Option<PriorAnswer> {
        if !row.is_ok() {
            return None;
        }
        Some(PriorAnswer {
            prompt_hash: prompt_hash(&row.model_input),
            target_output: row.target_output.clone()?,
            model_output: row.model_output.clone()?,
            latency_ms: row.latency_ms,
            input_tokens: row.input_tokens,
            output_tokens: row.output_tokens,
            cost_usd: row.cost_usd,
            judge_replies: row.judge_replies.clone(),
        })
    }
}

/// A 64-bit hash of a rendered prompt (SipHash with fixed keys: the same within a process,
/// which is all a resumed run compares).
pub fn prompt_hash(prompt: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    prompt.hash(&mut hasher);
    hasher.finish()
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    /// The run's id.
    pub run_id: String,
    /// Finished or cancelled.
    pub status: RunStatus,
    /// Planned (record, model) evaluations.
    pub total: usize,
    /// Successful evaluations recorded.
    pub done: usize,
    /// Failed evaluations recorded.
    pub failed: usize,
    /// Rows copied from an earlier run.
    pub copied: usize,
    /// Wall-clock time of the run.
    pub elapsed: std::time::Duration,
}

/// Checks, before any model call, that the plan fits the dataset: every template field exists,
/// the reference field exists, judges are given when `qa_accuracy_by_llm` is asked for.
pub fn validate(plan: &EvalPlan) -> Result<(), RunError> {
    if plan.models.is_empty() {
        return Err(RunError::NoModels);
    }
    if plan.variants.is_empty() {
        return Err(RunError::NoVariants);
    }
    for (variant_idx, variant) in plan.variants.iter().enumerate() {
        if plan.variants[..variant_idx]
            .iter()
            .any(|earlier| earlier.label == variant.label)
        {
            return Err(RunError::DuplicateVariant(variant.label.clone()));
        }
    }
    if plan.metrics.is_empty() {
        return Err(RunError::NoMetrics);
    }
    for clients in [&plan.models, &plan.judges] {
        for (client_idx, client) in clients.iter().enumerate() {
            if clients[..client_idx]
                .iter()
                .any(|earlier| earlier.label == client.label)
            {
                return Err(RunError::DuplicateModel(client.label.clone()));
            }
        }
    }
    if plan.metrics.contains(&MetricName::QaAccuracyByLlm) && plan.judges.is_empty() {
        return Err(RunError::JudgesRequired);
    }
    let available = plan.dataset.field_names()?;
    for variant in &plan.variants {
        variant
            .template
            .check_fields(&available)
            .map_err(|source| RunError::Template {
                path: plan.dataset.path().to_path_buf(),
                label: variant.label.clone(),
                source,
            })?;
    }
    if !available.contains(&plan.reference_field) {
        return Err(RunError::MissingReferenceField {
            path: plan.dataset.path().to_path_buf(),
            field: plan.reference_field.clone(),
            available,
        });
    }
    Ok(())
}

/// One selected record on its way to the models.
pub(crate) struct Work {
    pub(crate) position: usize,
    pub(crate) index: usize,
    pub(crate) record: Result<Record, String>,
    /// The perturbed values of the perturbed field (semantic robustness), drawn in selection
    /// order by the reader.
    pub(crate) perturbed: Vec<String>,
}

/// The selected records, lazily, in evaluation order.
pub(crate) type WorkIter = Box<dyn Iterator<Item = Result<Work, DatasetError>> + Send>;

/// The selected records in evaluation order, and how many there are.
pub(crate) fn selected_work(
    dataset: &Dataset,
    selection: Selection,
) -> Result<(usize, WorkIter), DatasetError> {
    let count = dataset.count()?;
    let to_work =
        |position: usize, item: Result<Record, DatasetError>| -> Result<Work, DatasetError> {
            match item {
                Ok(record) => Ok(Work {
                    position,
                    index: record.index,
                    record: Ok(record),
                    perturbed: Vec::new(),
                }),
                Err(error) => match error.record_index() {
                    Some(index) => Ok(Work {
                        position,
                        index,
                        record: Err(store::error_chain(&error)),
                        perturbed: Vec::new(),
                    }),
                    None => Err(error),
                },
            }
        };
    match selected_indices(&selection, count) {
        None => {
            let records = dataset.records()?;
            Ok((
                count,
                Box::new(
                    records
                        .enumerate()
                        .map(move |(position, item)| to_work(position, item)),
                ),
            ))
        }
        Some(indices)
            if indices
                .iter()
                .enumerate()
                .all(|(position, index)| position == *index) =>
        {
            // A prefix in file order (`--records N`): stream it.
            let n = indices.len();
            let records = dataset.records()?;
            Ok((
                n,
                Box::new(
                    records
                        .take(n)
                        .enumerate()
                        .map(move |(position, item)| to_work(position, item)),
                ),
            ))
        }
        Some(indices) => {
            // A shuffled sample: keep only the sampled records, then hand them out in sample order.
            let positions: HashMap<usize, usize> = indices
                .iter()
                .enumerate()
                .map(|(position, index)| (*index, position))
                .collect();
            let max_index = indices.iter().copied().max().unwrap_or(0);
            let mut slots: Vec<Option<Work>> = (0..indices.len()).map(|_| None).collect();
            for (record_idx, item) in dataset.records()?.enumerate() {
                if record_idx > max_index {
                    break;
                }
                let index = match &item {
                    Ok(record) => record.index,
                    Err(error) => error.record_index().unwrap_or(record_idx),
                };
                if let Some(position) = positions.get(&index) {
                    slots[*position] = Some(to_work(*position, item)?);
                }
            }
            let n = indices.len();
            let works =
                slots
                    .into_iter()
                    .zip(indices)
                    .enumerate()
                    .map(|(position, (slot, index))| {
                        Ok(slot.unwrap_or_else(|| Work {
                            position,
                            index,
                            record: Err(format!("record {index} is missing from the dataset")),
                            perturbed: Vec::new(),
                        }))
                    });
            Ok((n, Box::new(works.collect::<Vec<_>>().into_iter())))
        }
    }
}

/// Runs a plan under `run_id`: creates the run in the store, evaluates, records every row and
/// marks the run finished or cancelled. `prior` holds successes of an earlier run to reuse.
pub async fn run(
    plan: Arc<EvalPlan>,
    run_id: &str,
    context: RunContext,
    prior: Option<Arc<PriorResults>>,
) -> Result<RunOutcome, RunError> {
    run_or_resume(plan, run_id, context, prior, false, RunSources::default()).await
}

/// Resumes run `run_id`, already stored and still `running` (its process died or handed it
/// back): evaluates only the (record, model) pairs that have no stored row, so no record is
/// lost and none is stored twice, and ends the run as [`run`] does.
pub async fn resume(
    plan: Arc<EvalPlan>,
    run_id: &str,
    context: RunContext,
) -> Result<RunOutcome, RunError> {
    run_or_resume(plan, run_id, context, None, true, RunSources::default()).await
}

/// Answers and judge replies obtained outside the runner, for [`resume_with_answers`].
#[derive(Clone)]
pub struct External {
    /// The models' answers (Bedrock batch jobs' outputs).
    pub answers: Arc<dyn AnswerSource>,
    /// The judges' replies (a batch run's judge phase), if any.
    pub verdicts: Option<Arc<dyn VerdictSource>>,
    /// Successes of an earlier run to reuse (a retried run).
    pub prior: Option<Arc<PriorResults>>,
    /// Whether a reused answer keeps its judges' replies (the earlier run had the same judges
    /// and rubric): nothing the earlier run computed is asked again.
    pub reuse_verdicts: bool,
}

/// Like [`resume`] (only the pairs without a stored row), with the models' answers taken from
/// `external.answers` where it has them (Bedrock batch jobs' outputs, see [`crate::batch`]),
/// earlier successes from `external.prior`, and judge replies from `external.verdicts`; the
/// other models and judges are called as usual. The run must be stored already.
pub async fn resume_with_answers(
    plan: Arc<EvalPlan>,
    run_id: &str,
    context: RunContext,
    external: External,
) -> Result<RunOutcome, RunError> {
    let External {
        answers,
        verdicts,
        prior,
        reuse_verdicts,
    } = external;
    let sources = RunSources {
        answers: Some(answers),
        verdicts,
        reuse_verdicts,
    };
    run_or_resume(plan, run_id, context, prior, true, sources).await
}

/// Where a run's answers and verdicts come from besides its own calls.
#[derive(Default)]
struct RunSources {
    answers: Option<Arc<dyn AnswerSource>>,
    verdicts: Option<Arc<dyn VerdictSource>>,
    reuse_verdicts: bool,
}

async fn run_or_resume(
    plan: Arc<EvalPlan>,
    run_id: &str,
    context: RunContext,
    prior: Option<Arc<PriorResults>>,
    resume: bool,
    RunSources {
        answers,
        verdicts,
        reuse_verdicts,
    }: RunSources,
) -> Result<RunOutcome, RunError> {
    validate(&plan)?;
    let started = Instant::now();
    // The file's version before the first read: a dataset truncated, appended or replaced
    // while it is read would give results of no one version, reported as a finished run.
    let (fingerprint, n_selected, works) = {
        let plan = plan.clone();
        tokio::task::spawn_blocking(move || {
            let fingerprint = plan.dataset.fingerprint()?;
            let (n_selected, works) = selected_work(&plan.dataset, plan.selection)?;
            Ok::<_, DatasetError>((fingerprint, n_selected, works))
        })
        .await
        .map_err(RunError::Task)??
    };
    let n_columns = plan.variants.len() * plan.models.len();
    let total = n_selected * n_columns;
    // What a resumed run has already stored: (position, model order) of each row.
    let mut stored = std::collections::HashSet::new();
    let (mut done, mut failed, mut copied) = (0, 0, 0);
    if resume {
        store::for_each_record(context.store.as_ref(), &context.owner, run_id, |row| {
            stored.insert((row.position, row.model_order));
            if row.is_ok() {
                done += 1;
            } else {
                failed += 1;
            }
            Ok::<(), store::StoreError>(())
        })
        .await?;
        // Counters kept beside the rows may have missed the dead process's last batch.
        context
            .store
            .set_record_counts(
                &context.owner,
                run_id,
                store::RecordCounts { ok: done, failed },
            )
            .await?;
        tracing::info!(run_id, total, stored = stored.len(), "run resumed");
    } else {
        context
            .store
            .create_run(&context.owner, run_id, &plan.config_json(), total)
            .await?;
        tracing::info!(
            run_id,
            total,
            models = plan.models.len(),
            variants = plan.variants.len(),
            "run started"
        );
    }
    let stored = Arc::new(stored);
    let _ = context.events.send(ProgressEvent::Started {
        run_id: run_id.to_string(),
        total,
    });

    let callers: Arc<Vec<Caller>> = Arc::new(
        plan.models
            .iter()
            .map(|client| {
                Caller::new(
                    client.clone(),
                    plan.config.clone(),
                    context.cache.clone(),
                    Some(context.events.clone()),
                )
            })
            .collect(),
    );
    let judges: Arc<Vec<Caller>> = Arc::new(
        plan.judges
            .iter()
            .map(|client| {
                Caller::new(
                    client.clone(),
                    plan.config.clone(),
                    context.cache.clone(),
                    Some(context.events.clone()),
                )
            })
            .collect(),
    );

    let in_flight = plan.config.concurrency.max(1) * 2;
    let (work_tx, mut work_rx) = mpsc::channel::<Result<Work, DatasetError>>(in_flight);
    let reader_cancel = context.cancel.clone();
    let reader_stored = stored.clone();
    // One perturbation stream per run, drawn in selection order here (not where answers come
    // back), so the same run perturbs alike whatever the concurrency; a resumed run draws for
    // the records it skips too.
    let mut perturber = plan
        .task
        .robustness
        .clone()
        .map(|(kind, field)| (Perturber::new(kind), field));
    let reader = tokio::task::spawn_blocking(move || {
        for mut work in works {
            if let (Some((perturber, field)), Ok(work)) = (&mut perturber, &mut work)
                && let Ok(record) = &work.record
                && let Some(value) = record.fields.get(field.as_str())
            {
                let text = fmeval_scoring::python::python_str(value);
                // Five copies of a longer input per record in flight would cost gigabytes;
                // such a record fails alone (and draws nothing from the stream).
                if text.chars().count() <= crate::task::MAX_PERTURBED_CHARS {
                    work.perturbed = perturber.perturb(&text);
                }
            }
            // A resumed run skips the records stored for every column.
            let complete = work.as_ref().is_ok_and(|work| {
                !reader_stored.is_empty()
                    && (0..n_columns).all(|order| reader_stored.contains(&(work.position, order)))
            });
            if complete {
                continue;
            }
            if reader_cancel.is_cancelled() || work_tx.blocking_send(work).is_err() {
                break;
            }
        }
    });

    let (row_tx, row_rx) = mpsc::channel::<RecordRow>(WRITE_BATCH * 2);
    let writer = tokio::spawn(write_rows(
        context.store.clone(),
        context.owner.clone(),
        run_id.to_string(),
        row_rx,
    ));

    let works = futures::stream::poll_fn(move |cx| work_rx.poll_recv(cx));
    // Boxed (not stack-pinned) so that dropping it below really drops the stream and the
    // work receiver, which unblocks the reader thread.
    let mut evaluations = Box::pin(
        works
            .map(|work| {
                let plan = plan.clone();
                let callers = callers.clone();
                let judges = judges.clone();
                let prior = prior.clone();
                let answers = answers.clone();
                let verdicts = verdicts.clone();
                let cancel = context.cancel.clone();
                async move {
                    match work {
                        Ok(work) => {
                            let sources = Sources {
                                prior: prior.as_deref(),
                                answers: answers.as_deref(),
                                verdicts: verdicts.as_deref(),
                                reuse_verdicts,
                            };
                            Ok(evaluate(&plan, &callers, &judges, sources, work, &cancel).await)
                        }
                        Err(error) => Err(error),
                    }
                }
            })
            .buffer_unordered(in_flight),
    );

    let mut fatal = None;
    loop {
        let next = tokio::select! {
            _ = context.cancel.cancelled() => break,
            next = evaluations.next() => next,
        };
        let rows = match next {
            None => break,
            Some(Ok(rows)) => rows,
            Some(Err(error)) => {
                fatal = Some(error);
                break;
            }
        };
        for (row, was_copied) in rows {
            if stored.contains(&(row.position, row.model_order)) {
                // Stored before the resume (the record's other models were not).
                continue;
            }
            let ok = row.is_ok();
            if was_copied {
                copied += 1;
            }
            if ok {
                done += 1;
            } else {
                failed += 1;
            }
            let _ = context.events.send(ProgressEvent::RecordDone {
                index: row.index,
                model: row.model.clone(),
                ok,
            });
            if row_tx.send(row).await.is_err() {
                break;
            }
        }
    }
    // Dropping the stream abandons in-flight evaluations (cancel) and closes the reader.
    drop(evaluations);
    drop(row_tx);
    let written = writer.await.map_err(RunError::Task)?;
    reader.await.map_err(RunError::Task)?;
    written?;
    let fatal = fatal.or_else(|| plan.dataset.check_unchanged(&fingerprint).err());
    if let Some(error) = fatal {
        let summary = serde_json::json!({"error": error.to_string()});
        let _ = context
            .store
            .finish_run(&context.owner, run_id, RunStatus::Failed, &summary)
            .await;
        return Err(RunError::Dataset(error));
    }
    let status = if context.cancel.is_cancelled() && done + failed < total {
        RunStatus::Cancelled
    } else {
        RunStatus::Finished
    };
    let summary = serde_json::json!({"total": total, "done": done, "failed": failed});
    context
        .store
        .finish_run(&context.owner, run_id, status, &summary)
        .await?;
    tracing::info!(run_id, ?status, done, failed, copied, "run ended");
    let event = match status {
        RunStatus::Cancelled => ProgressEvent::Cancelled { done, failed },
        _ => ProgressEvent::Finished { done, failed },
    };
    let _ = context.events.send(event);
    Ok(RunOutcome {
        run_id: run_id.to_string(),
        status,
        total,
        done,
        failed,
        copied,
        elapsed: started.elapsed(),
    })
}

/// Stores rows in batches until the channel closes.
async fn write_rows(
    store: SharedStore,
    owner: UserId,
    run_id: String,
    mut rows: mpsc::Receiver<RecordRow>,
) -> Result<(), RunError> {
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    while let Some(row) = rows.recv().await {
        batch.push(row);
        while batch.len() < WRITE_BATCH {
            match rows.try_recv() {
                Ok(row) => batch.push(row),
                Err(_) => break,
            }
        }
        store
            .insert_records(&owner, &run_id, std::mem::take(&mut batch))
            .await?;
    }
    Ok(())
}

/// Evaluates one record in every column (variant × model); returns (row, copied from an
/// earlier run) per column that finished (a model call abandoned by cancellation gives no row).
async fn evaluate(
    plan: &EvalPlan,
    callers: &[Caller],
    judges: &[Caller],
    sources: Sources<'_>,
    work: Work,
    cancel: &CancellationToken,
) -> Vec<(RecordRow, bool)> {
    let prior = sources.prior;
    let n_models = callers.len();
    let columns = plan
        .variants
        .iter()
        .enumerate()
        .flat_map(|(variant_idx, variant)| {
            callers.iter().enumerate().map(move |(model_idx, caller)| {
                (
                    variant_idx,
                    variant,
                    variant_idx * n_models + model_idx,
                    caller,
                )
            })
        });
    let base = |model_order: usize, variant: &Variant, label: &str| RecordRow {
        model: label.to_string(),
        variant: variant.label.clone(),
        model_order,
        position: work.position,
        index: work.index,
        model_input: String::new(),
        prompt: String::new(),
        model_output: None,
        target_output: None,
        category: None,
        scores: Vec::new(),
        latency_ms: None,
        input_tokens: None,
        output_tokens: None,
        cost_usd: None,
        error: None,
        judge_replies: Vec::new(),
        perturbations: Vec::new(),
        cached: false,
    };
    let record = match &work.record {
        Ok(record) => record,
        Err(message) => {
            return columns
                .map(|(_, variant, model_order, caller)| {
                    let mut row = base(model_order, variant, &caller.client().label);
                    row.error = Some(message.clone());
                    (row, false)
                })
                .collect();
        }
    };
    // As fmeval groups it: the value as Python's `str()` prints it (`True`, `3`), and a null
    // category is no category (pandas' groupby drops missing keys).
    let category = plan.task.category_of(&record.fields);
    let rendered: Vec<_> = plan
        .variants
        .iter()
        .map(|variant| variant.template.render(record))
        .collect();
    let target = reference_text(record, &plan.reference_field, plan.dataset.path());
    let perturbed = work.perturbed.as_slice();
    let per_column = columns.map(|(variant_idx, variant, model_order, caller)| {
        let mut row = base(model_order, variant, &caller.client().label);
        row.category = category.clone();
        let rendered = &rendered[variant_idx];
        let target = &target;
        async move {
            let rendered = match rendered {
                Ok(rendered) => rendered,
                Err(error) => {
                    // Named like the dataset's own record errors: file, line, field.
                    row.error = Some(match error {
                        TemplateError::MissingField { field, line, .. } => format!(
                            "{}:{line}: field `{field}` used by the template is missing",
                            plan.dataset.path().display()
                        ),
                        other => other.to_string(),
                    });
                    return Some((row, false));
                }
            };
            row.model_input = rendered.text.clone();
            row.prompt = rendered.text.clone();
            let target = match target {
                Ok(target) => target,
                Err(error) => {
                    row.error = Some(error.to_string());
                    return Some((row, false));
                }
            };
            row.target_output = Some(target.clone());
            // A resumed run reuses an earlier answer only for the same prompt and reference
            // (the template, dataset or reference field may have changed since), and scores it
            // again with this run's metrics, so the result is what a fresh run would give.
            let reused = prior
                .and_then(|prior| prior.get(&prior_key(&row)))
                .filter(|previous| {
                    previous.prompt_hash == prompt_hash(&rendered.text)
                        && previous.target_output == *target
                });
            let copied = reused.is_some();
            let external = match (reused, sources.answers) {
                (None, Some(answers)) => answers.answer(model_order, row.position),
                _ => None,
            };
            let output = match (reused, external) {
                (Some(previous), _) => {
                    row.latency_ms = previous.latency_ms;
                    row.input_tokens = previous.input_tokens;
                    row.output_tokens = previous.output_tokens;
                    row.cost_usd = previous.cost_usd;
                    // Paid for by the earlier run, not by this one.
                    row.cached = true;
                    previous.model_output.clone()
                }
                (None, Some(Ok(answer))) => {
                    row.input_tokens = answer.input_tokens;
                    row.output_tokens = answer.output_tokens;
                    row.cost_usd = answer.cost_usd;
                    answer.text
                }
                (None, Some(Err(message))) => {
                    row.error = Some(message);
                    return Some((row, false));
                }
                (None, None) => {
                    let request = caller.request(rendered.messages.clone(), rendered.text.clone());
                    let outcome = match caller.call(&request, cancel).await {
                        Ok(outcome) => outcome,
                        Err(CallError::Cancelled) => return None,
                        Err(error) => {
                            row.error = Some(error.to_string());
                            return Some((row, false));
                        }
                    };
                    row.latency_ms = Some(outcome.latency.as_secs_f64() * 1000.0);
                    row.input_tokens = outcome.generation.input_tokens;
                    row.output_tokens = outcome.generation.output_tokens;
                    row.cost_usd = caller.client().cost(&outcome.generation);
                    row.cached = outcome.cached;
                    outcome.generation.text
                }
            };
            for metric in &plan.metrics {
                match metric {
                    metric if metric.is_robustness() => {
                        let base = metric.base();
                        let original = base_scores(plan, base, &output, target);
                        let answers = perturbed_answers(
                            plan,
                            &variant.template,
                            caller,
                            record,
                            perturbed,
                            cancel,
                        );
                        match answers.await {
                            Ok(answers) => {
                                let mut perturbed_scores = Vec::with_capacity(answers.len());
                                for (prompt, answer) in answers {
                                    let scores = base_scores(plan, base, &answer.text, target);
                                    // The extra calls are the run's cost too.
                                    add_usage(&mut row, &answer);
                                    perturbed_scores.push(scores.clone());
                                    row.perturbations.push(PerturbedAnswer {
                                        prompt,
                                        model_output: answer.text,
                                        scores,
                                    });
                                }
                                let deltas = delta_scores(&original, &perturbed_scores);
                                for score in original.into_iter().chain(deltas) {
                                    if !row.scores.iter().any(|seen| seen.name == score.name) {
                                        row.scores.push(score);
                                    }
                                }
                            }
                            Err(None) => return None,
                            Err(Some(error)) => row.error = Some(error),
                        }
                    }
                    MetricName::QaAccuracyByLlm
                        if sources.reuse_verdicts
                            && let Some(previous) = reused
                            && same_judges(&previous.judge_replies, judges) =>
                    {
                        let verdicts: Vec<f64> = previous
                            .judge_replies
                            .iter()
                            .map(|reply| reply.verdict)
                            .collect();
                        row.judge_replies = previous.judge_replies.clone();
                        row.scores.push(Score {
                            name: MetricName::QaAccuracyByLlm.as_str().to_string(),
                            value: ScoreValue::Float(judge_score(&verdicts)),
                        });
                    }
                    MetricName::QaAccuracyByLlm => {
                        let pair = (model_order, row.position);
                        let asked = judge(
                            plan,
                            judges,
                            (sources.verdicts, pair),
                            (&rendered.text, &output, target),
                            cancel,
                        );
                        match asked.await {
                            Ok((replies, score, cost)) => {
                                row.judge_replies = replies;
                                row.scores.push(score);
                                if let Some(cost) = cost {
                                    *row.cost_usd.get_or_insert(0.0) += cost;
                                }
                            }
                            Err(None) => return None,
                            Err(Some(error)) => row.error = Some(format!("judge {error}")),
                        }
                    }
                    metric => {
                        for score in base_scores(plan, *metric, &output, target) {
                            if !row.scores.iter().any(|seen| seen.name == score.name) {
                                row.scores.push(score);
                            }
                        }
                    }
                }
            }
            row.model_output = Some(output);
            Some((row, copied))
        }
    });
    futures::future::join_all(per_column)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// One answer's scores with a metric that needs no model call (classification with the
/// plan's labels).
fn base_scores(plan: &EvalPlan, metric: MetricName, output: &str, target: &str) -> Vec<Score> {
    if metric.is_classification() {
        let no_labels = ValidLabels::default();
        let labels = plan.task.labels.as_ref().unwrap_or(&no_labels);
        vec![score_classification(labels, output, target).1]
    } else {
        score_record(metric, output, target)
    }
}

/// An answer to a perturbed prompt.
struct PerturbedCall {
    text: String,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cost_usd: Option<f64>,
}

/// Adds a perturbed call's tokens and cost to the row's.
fn add_usage(row: &mut RecordRow, answer: &PerturbedCall) {
    if let Some(tokens) = answer.input_tokens {
        *row.input_tokens.get_or_insert(0) += tokens;
    }
    if let Some(tokens) = answer.output_tokens {
        *row.output_tokens.get_or_insert(0) += tokens;
    }
    if let Some(cost) = answer.cost_usd {
        *row.cost_usd.get_or_insert(0.0) += cost;
    }
}

/// Fills the template with each perturbed value of the perturbed field and asks the model, one
/// prompt after the other (fmeval's order); returns (prompt, answer) per perturbation, or why
/// the record fails (`None`: cancelled).
async fn perturbed_answers(
    plan: &EvalPlan,
    template: &PromptTemplate,
    caller: &Caller,
    record: &Record,
    perturbed: &[String],
    cancel: &CancellationToken,
) -> Result<Vec<(String, PerturbedCall)>, Option<String>> {
    let Some((_, field)) = &plan.task.robustness else {
        return Ok(Vec::new());
    };
    if perturbed.is_empty() {
        return Err(Some(format!(
            "field `{field}` is missing or longer than {} characters, the most a semantic robustness metric perturbs",
            crate::task::MAX_PERTURBED_CHARS
        )));
    }
    let mut answers = Vec::with_capacity(perturbed.len());
    for value in perturbed {
        let rendered = template
            .render_with(|name| {
                if name == field {
                    Some(std::borrow::Cow::Borrowed(value.as_str()))
                } else {
                    record
                        .fields
                        .get(name)
                        .map(fmeval_scoring::python::python_str)
                }
            })
            .map_err(|stop| {
                Some(match stop {
                    crate::template::RenderStop::Missing(missing) => format!(
                        "perturbed prompt: field `{missing}` used by the template is missing"
                    ),
                    crate::template::RenderStop::TooLarge => {
                        format!("perturbed prompt: {}", template.too_large(String::new()))
                    }
                })
            })?;
        let request = caller.request(rendered.messages, rendered.text.clone());
        let outcome = match caller.call(&request, cancel).await {
            Ok(outcome) => outcome,
            Err(CallError::Cancelled) => return Err(None),
            Err(error) => {
                return Err(Some(format!(
                    "perturbed prompt {}: {error}",
                    answers.len() + 1
                )));
            }
        };
        let cost_usd = caller.client().cost(&outcome.generation);
        answers.push((
            rendered.text,
            PerturbedCall {
                text: outcome.generation.text,
                input_tokens: outcome.generation.input_tokens,
                output_tokens: outcome.generation.output_tokens,
                cost_usd,
            },
        ));
    }
    Ok(answers)
}

/// Where answers come from besides the model calls.
#[derive(Clone, Copy)]
struct Sources<'a> {
    prior: Option<&'a PriorResults>,
    answers: Option<&'a dyn AnswerSource>,
    verdicts: Option<&'a dyn VerdictSource>,
    reuse_verdicts: bool,
}

/// A model's answer obtained outside the runner (a Bedrock batch job's output record).
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalAnswer {
    /// The answer text exactly as returned.
    pub text: String,
    /// Input tokens reported.
    pub input_tokens: Option<u64>,
    /// Output tokens reported.
    pub output_tokens: Option<u64>,
    /// Cost at the price of the way it was obtained (the batch price).
    pub cost_usd: Option<f64>,
}

/// Answers obtained outside the runner, by (column order, selection position): `None` means
/// "call the model as usual", `Some(Err(message))` stores the pair as failed with `message`.
pub trait AnswerSource: Send + Sync {
    /// The answer of model `model_order` for the record at `position`, taken out of the
    /// source (each pair is asked for once).
    fn answer(&self, model_order: usize, position: usize)
    -> Option<Result<ExternalAnswer, String>>;
}

/// Whether `replies` are one reply of each of `judges`, in order.
fn same_judges(replies: &[JudgeReply], judges: &[Caller]) -> bool {
    replies.len() == judges.len()
        && replies
            .iter()
            .zip(judges)
            .all(|(reply, judge)| reply.judge == judge.client().label)
}

/// Judges' replies obtained outside the runner (the judge phase of a Bedrock batch run), by
/// (judge position, column order, selection position): `None` means "ask the judge as usual",
/// `Some(Err(message))` fails the record's judging with `message`.
pub trait VerdictSource: Send + Sync {
    /// The reply of judge `judge` on the answer of column `model_order` for the record at
    /// `position`, taken out of the source (each is asked for once).
    fn reply(
        &self,
        judge: usize,
        model_order: usize,
        position: usize,
    ) -> Option<Result<ExternalAnswer, String>>;
}

/// Asks every judge (or takes its reply from `verdicts`, for the pair `(column order,
/// position)`); returns the raw replies, the record's `qa_accuracy_by_llm` score and the cost of
/// the replies that came from `verdicts` (priced where they were obtained). The error is why
/// judging failed (`None`: cancelled).
async fn judge(
    plan: &EvalPlan,
    judges: &[Caller],
    (verdicts, (model_order, position)): (Option<&dyn VerdictSource>, (usize, usize)),
    (question, model_answer, reference): (&str, &str, &str),
    cancel: &CancellationToken,
) -> Result<(Vec<JudgeReply>, Score, Option<f64>), Option<String>> {
    let (text, messages) = plan
        .rubric
        .render_text(question, model_answer, reference)
        .map_err(|error| Some(CallError::from(error).to_string()))?;
    let calls = judges.iter().enumerate().map(|(judge_idx, judge)| {
        let external =
            verdicts.and_then(|verdicts| verdicts.reply(judge_idx, model_order, position));
        let request = judge.request(messages.clone(), text.clone());
        async move {
            let (reply, cost) = match external {
                Some(Ok(answer)) => (answer.text, answer.cost_usd),
                Some(Err(message)) => return Err(Some(message)),
                None => match judge.call(&request, cancel).await {
                    Ok(outcome) => (outcome.generation.text, None),
                    Err(CallError::Cancelled) => return Err(None),
                    Err(error) => return Err(Some(error.to_string())),
                },
            };
            Ok::<_, Option<String>>((
                JudgeReply {
                    judge: judge.client().label.clone(),
                    verdict: parse_verdict(&reply),
                    reply,
                },
                cost,
            ))
        }
    });
    let answered = futures::future::try_join_all(calls).await?;
    let cost = answered
        .iter()
        .filter_map(|(_, cost)| *cost)
        .reduce(|a, b| a + b);
    let replies: Vec<JudgeReply> = answered.into_iter().map(|(reply, _)| reply).collect();
    let verdicts: Vec<f64> = replies.iter().map(|reply| reply.verdict).collect();
    let score = Score {
        name: MetricName::QaAccuracyByLlm.as_str().to_string(),
        value: ScoreValue::Float(judge_score(&verdicts)),
    };
    Ok((replies, score, cost))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(model_input: &str, model_output: Option<&str>, error: Option<&str>) -> RecordRow {
        RecordRow {
            model: "openai:m".into(),
            model_order: 0,
            variant: String::new(),
            position: 0,
            index: 0,
            model_input: model_input.into(),
            prompt: model_input.into(),
            model_output: model_output.map(str::to_owned),
            target_output: Some("France".into()),
            category: None,
            scores: Vec::new(),
            latency_ms: Some(5.0),
            input_tokens: Some(3),
            output_tokens: Some(1),
            cost_usd: None,
            error: error.map(str::to_owned),
            judge_replies: Vec::new(),
            perturbations: Vec::new(),
            cached: false,
        }
    }

    fn check(row: &RecordRow, expected: Option<(&str, &str)>) {
        let got = PriorAnswer::from_row(row);
        assert_eq!(
            got.as_ref()
                .map(|answer| (answer.prompt_hash, answer.model_output.as_str())),
            expected.map(|(prompt, output)| (prompt_hash(prompt), output))
        );
    }

    #[test]
    fn regression_resume_keeps_answers_not_whole_prompts() {
        // A resumed 100,000-record run held every earlier row, both prompt copies included.
        let document = "a long document ".repeat(10_000);
        check(
            &row(&document, Some("Paris"), None),
            Some((&document, "Paris")),
        );
        check(&row("Q?", None, Some("HTTP 500")), None);
        check(&row("Q?", Some("x"), Some("judge failed")), None);
        assert_ne!(prompt_hash("Q: a"), prompt_hash("Q: b"));
        assert_eq!(prompt_hash(&document), prompt_hash(&document.clone()));
    }
}
