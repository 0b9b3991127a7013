//! The runs this process executes: each run is a task owned by the server, not by a browser
//! tab, with its progress channel and cancel token.
//!
//! Invariants: a run's status, planned total and rows live in the store, so any page (of this
//! process or another) can show its progress; the registry only adds what cannot be stored
//! (the cancel token, the live event channel). When the run ends, its summary is computed from
//! the stored rows (the CLI's [`engine::output::SummaryBuilder`]) and stored with the run. On
//! shutdown every run is stopped and marked `interrupted`, so it can be resumed.
//!
//! With leases (several tasks sharing a DynamoDB store, [`RunRegistry::with_leases`]), each run
//! this process executes holds its lease, renewed every third of its time to live; a run whose
//! lease is lost (another task took it after it expired) is stopped here. On shutdown the runs
//! are handed back instead (status left `running`, lease released) and [`RunRegistry::adopt`]
//! in another task resumes them from their stored rows. A cancel asked through another task
//! is recorded in the store and seen here at the next renewal.
//!
//! Batch runs ([`RunRegistry::start_batch`], Bedrock batch inference through
//! [`engine::batch`]) are tasks like the others, polling their jobs; a shutdown or a lost lease
//! leaves their jobs running in AWS (only a user's cancel stops them), and the task that adopts
//! the run polls the same jobs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use engine::batch::{BatchClients, BatchError, BatchRun, BatchSettings, JudgeMode, RetryOf};
use engine::cache::ResponseCache;
use engine::catalog::Catalog;
use engine::output::{Summary, SummaryBuilder};
use engine::progress::ProgressEvent;
use engine::runner::{self, EvalPlan, PriorResults, RunContext, RunOutcome};
use store::{RunStatus, SharedStore, StoreError, UserId, for_each_record};

/// How long [`RunRegistry::start`] waits for a run to be stored before giving up on it.
const START_TIMEOUT: Duration = Duration::from_secs(60);

struct ActiveRun {
    owner: UserId,
    cancel: CancellationToken,
    events: broadcast::Sender<ProgressEvent>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// A run of this process: its owner and id.
type RunKey = (UserId, String);

fn run_key(owner: &UserId, run_id: &str) -> RunKey {
    (owner.clone(), run_id.to_string())
}

/// The runs of this process (cheap to clone).
#[derive(Clone, Default)]
pub struct RunRegistry {
    /// Keyed by owner and run id: two users' runs never share an entry, whatever their ids.
    runs: Arc<Mutex<HashMap<RunKey, ActiveRun>>>,
    shutting_down: CancellationToken,
    leases: Option<Arc<Leases>>,
    /// The ceiling on model calls in flight, shared fairly by the runs (`None`: no ceiling).
    fair: Option<Arc<crate::fair::FairShare>>,
    batch: Option<Arc<BatchEnv>>,
}

/// What batch runs need: the AWS clients, where their objects go and which role Bedrock
/// assumes (`LLM_EVAL_BATCH_*`), and the catalog's batch prices.
#[derive(Debug, Clone)]
pub struct BatchEnv {
    /// Bedrock control plane and S3.
    pub clients: BatchClients,
    /// Bucket, role, prefix, poll interval.
    pub settings: BatchSettings,
    /// The catalog (batch prices).
    pub catalog: Arc<Catalog>,
}

/// How a new batch run starts: how its judges are asked, and the run whose failed records it
/// retries (a run picked up again reads both from its stored configuration).
#[derive(Debug, Clone, Default)]
pub struct BatchStart {
    /// Judges in a second batch phase, or online.
    pub judge_mode: JudgeMode,
    /// The run retried, numbered by [`engine::batch::start_retry`].
    pub retry: Option<RetryOf>,
}

/// How a launched run executes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Run,
    Resume,
    /// A batch run: submit its jobs first, or (adopted) poll the ones it has.
    Batch {
        submit: bool,
    },
}

/// How this process holds run leases.
#[derive(Debug)]
pub struct Leases {
    /// This process's holder id (random).
    pub holder: String,
    /// A lease's time to live, in seconds (renewed every third of it).
    pub ttl_secs: u64,
}

impl std::fmt::Debug for RunRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunRegistry")
            .field("active", &self.lock().len())
            .finish()
    }
}

/// A run that could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The runner refused the plan or the store failed before the run was recorded.
    #[error(transparent)]
    Run(#[from] runner::RunError),
    /// The server is shutting down.
    #[error("the server is shutting down; start the run again in a moment")]
    ShuttingDown,
    /// The run was not recorded in time.
    #[error("the run did not start within {} s", START_TIMEOUT.as_secs())]
    Timeout,
    /// A batch run could not start (no batch settings, an unsupported model, AWS refused).
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// Batch mode is not set up on this server.
    #[error(
        "batch mode is not set up on this server (LLM_EVAL_BATCH_BUCKET and LLM_EVAL_BATCH_ROLE_ARN)"
    )]
    NoBatch,
}

impl RunRegistry {
    /// A registry whose runs hold leases of `ttl_secs` under a random holder id.
    pub fn with_leases(ttl_secs: u64) -> RunRegistry {
        RunRegistry {
            leases: Some(Arc::new(Leases {
                holder: store::sqlite::random_hex(8),
                ttl_secs: ttl_secs.max(1),
            })),
            ..RunRegistry::default()
        }
    }

    /// The lease settings, when this registry takes leases.
    pub fn leases(&self) -> Option<&Leases> {
        self.leases.as_deref()
    }

    /// The same registry with a ceiling of `calls` model calls in flight over all its runs,
    /// each running run entitled to an equal share ([`crate::fair`]).
    pub fn with_call_ceiling(mut self, calls: usize) -> RunRegistry {
        self.fair = Some(crate::fair::FairShare::new(calls));
        self
    }

    /// The model-call ceiling, if any.
    pub fn call_ceiling(&self) -> Option<&Arc<crate::fair::FairShare>> {
        self.fair.as_ref()
    }

    /// The same registry, able to run batch runs with `env`.
    pub fn with_batch(mut self, env: BatchEnv) -> RunRegistry {
        self.batch = Some(Arc::new(env));
        self
    }

    /// Whether batch runs can be started here.
    pub fn batch_enabled(&self) -> bool {
        self.batch.is_some()
    }

    /// Starts `plan` as a batch run `run_id` of `owner` (its jobs submitted by the run's
    /// task); returns once the run is stored, or with the reason it cannot run in batch mode.
    pub async fn start_batch(
        &self,
        store: SharedStore,
        owner: UserId,
        run_id: String,
        plan: Arc<EvalPlan>,
        start: BatchStart,
    ) -> Result<(), StartError> {
        if self.batch.is_none() {
            return Err(StartError::NoBatch);
        }
        self.launch(
            store,
            None,
            owner,
            run_id,
            plan,
            None,
            (Kind::Batch { submit: true }, start),
        )
        .await
    }

    /// Picks up a stored batch run of `owner` whose lease this process has just taken: polls
    /// its jobs (submitting those its earlier task did not), then scores and stores.
    pub async fn adopt_batch(
        &self,
        store: SharedStore,
        owner: UserId,
        run_id: String,
        plan: Arc<EvalPlan>,
    ) -> Result<(), StartError> {
        if self.batch.is_none() {
            return Err(StartError::NoBatch);
        }
        self.launch(
            store,
            None,
            owner,
            run_id,
            plan,
            None,
            (Kind::Batch { submit: false }, BatchStart::default()),
        )
        .await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RunKey, ActiveRun>> {
        self.runs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts `plan` as run `run_id` of `owner` and returns once the run is stored (so its
    /// page can be shown at once), or with the runner's error when it could not start.
    pub async fn start(
        &self,
        store: SharedStore,
        cache: Option<ResponseCache>,
        owner: UserId,
        run_id: String,
        plan: Arc<EvalPlan>,
        prior: Option<Arc<PriorResults>>,
    ) -> Result<(), StartError> {
        self.launch(
            store,
            cache,
            owner,
            run_id,
            plan,
            prior,
            (Kind::Run, BatchStart::default()),
        )
        .await
    }

    /// Resumes a stored, still running run of `owner` whose lease this process has just taken
    /// (see [`store::Store::orphaned_runs`]): only its missing rows are evaluated.
    pub async fn adopt(
        &self,
        store: SharedStore,
        cache: Option<ResponseCache>,
        owner: UserId,
        run_id: String,
        plan: Arc<EvalPlan>,
    ) -> Result<(), StartError> {
        self.launch(
            store,
            cache,
            owner,
            run_id,
            plan,
            None,
            (Kind::Resume, BatchStart::default()),
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn launch(
        &self,
        store: SharedStore,
        cache: Option<ResponseCache>,
        owner: UserId,
        run_id: String,
        plan: Arc<EvalPlan>,
        prior: Option<Arc<PriorResults>>,
        (kind, batch_start): (Kind, BatchStart),
    ) -> Result<(), StartError> {
        if self.shutting_down.is_cancelled() {
            return Err(StartError::ShuttingDown);
        }
        // The run's calls share the task's ceiling with the other users' runs (an equal share
        // per user, split between the user's runs) for as long as it runs.
        let plan = match &self.fair {
            Some(pool) => Arc::new(crate::fair::shared_plan(&plan, pool, owner.as_str())),
            None => plan,
        };
        let (events, mut started) = broadcast::channel(1024);
        let renewal_events = events.subscribe();
        let cancel = CancellationToken::new();
        let context = RunContext {
            store: store.clone(),
            owner: owner.clone(),
            // Each user's answers are cached apart: one user never gets another's reply.
            cache: cache.map(|cache| cache.for_owner(owner.as_str())),
            events: events.clone(),
            cancel: cancel.clone(),
        };
        let (result_tx, result_rx) = tokio::sync::oneshot::channel::<Result<(), StartError>>();
        self.lock().insert(
            run_key(&owner, &run_id),
            ActiveRun {
                owner: owner.clone(),
                cancel: cancel.clone(),
                events,
                task: None,
            },
        );
        let registry = self.clone();
        let task_run_id = run_id.clone();
        let task_key = run_key(&owner, &run_id);
        let entry_key = task_key.clone();
        let lease_lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let renewal = self.leases.clone().map(|leases| {
            tokio::spawn(renew_lease(
                store.clone(),
                owner.clone(),
                run_id.clone(),
                leases,
                renewal_events,
                cancel.clone(),
                lease_lost.clone(),
            ))
        });
        let batch_env = registry.batch.clone();
        let batch_lost = lease_lost.clone();
        let task = tokio::spawn(async move {
            let outcome: Result<RunOutcome, StartError> = match kind {
                Kind::Resume => runner::resume(plan.clone(), &task_run_id, context)
                    .await
                    .map_err(StartError::from),
                Kind::Run => runner::run(plan.clone(), &task_run_id, context, prior)
                    .await
                    .map_err(StartError::from),
                Kind::Batch { submit } => {
                    let shutting_down = registry.shutting_down.clone();
                    run_batch(
                        batch_env,
                        plan.clone(),
                        &task_run_id,
                        context,
                        submit.then_some(batch_start),
                        move || {
                            shutting_down.is_cancelled()
                                || batch_lost.load(std::sync::atomic::Ordering::SeqCst)
                        },
                    )
                    .await
                }
            };
            if let Some(renewal) = renewal {
                renewal.abort();
            }
            let outcome = match outcome {
                Ok(outcome) => outcome,
                Err(error) => {
                    tracing::warn!(run_id = %task_run_id, error = %store::error_chain(&error), "run failed");
                    let _ = result_tx.send(Err(error));
                    registry.lock().remove(&task_key);
                    return;
                }
            };
            let interrupted = registry.shutting_down.is_cancelled();
            let stopped_early = outcome.status == RunStatus::Cancelled;
            match &registry.leases {
                // Another task holds the run now: put back the status this task's stop wrote.
                Some(_) if lease_lost.load(std::sync::atomic::Ordering::SeqCst) => {
                    let summary = keeping_batch_state(
                        &store,
                        &owner,
                        &task_run_id,
                        kind,
                        serde_json::json!({"lease_lost": true}),
                    )
                    .await;
                    let _ = store
                        .finish_run(&owner, &task_run_id, RunStatus::Running, &summary)
                        .await;
                }
                // Handed back: still running, its lease released, for another task to resume.
                Some(leases) if interrupted && stopped_early => {
                    let handed_back = async {
                        let summary = keeping_batch_state(
                            &store,
                            &owner,
                            &task_run_id,
                            kind,
                            serde_json::json!({"handed_back": true}),
                        )
                        .await;
                        store
                            .finish_run(&owner, &task_run_id, RunStatus::Running, &summary)
                            .await?;
                        store
                            .release_lease(&owner, &task_run_id, &leases.holder)
                            .await
                    };
                    match handed_back.await {
                        Ok(()) => {
                            tracing::info!(run_id = %task_run_id, "run handed back: its lease is released for another task")
                        }
                        Err(error) => {
                            tracing::error!(run_id = %task_run_id, error = %store::error_chain(&error), "handing the run back failed")
                        }
                    }
                }
                _ => {
                    // A batch run's reason (a failed or expired job) and its jobs stay with its
                    // summary: an interrupted one is picked up by `runs watch` from them.
                    let kept = match kind {
                        Kind::Batch { .. } => store
                            .run(&owner, &task_run_id)
                            .await
                            .ok()
                            .flatten()
                            .and_then(|run| run.summary)
                            .map(|stored| batch_fields(&stored, &["error", "batch"]))
                            .unwrap_or_default(),
                        _ => serde_json::Map::new(),
                    };
                    if let Err(error) =
                        store_summary(&store, &owner, &plan, &outcome, interrupted, kept).await
                    {
                        tracing::error!(run_id = %task_run_id, error = %store::error_chain(&error), "storing the run's summary failed");
                    }
                }
            }
            registry.lock().remove(&task_key);
        });
        if let Some(active) = self.lock().get_mut(&entry_key) {
            active.task = Some(task);
        }
        // The first event is `Started`, sent right after the run is stored; an error before
        // that comes back through the task's result.
        // Biased: a failed start sends its error before the registry entry (and with it the
        // event sender) goes, so the error is seen first.
        tokio::select! {
            biased;
            result = result_rx => match result {
                Ok(Err(error)) => Err(error),
                _ => Ok(()),
            },
            _ = started.recv() => Ok(()),
            () = tokio::time::sleep(START_TIMEOUT) => Err(StartError::Timeout),
        }
    }

    /// Cancels a running run of `owner`; false when this process does not run it.
    pub fn cancel(&self, owner: &UserId, run_id: &str) -> bool {
        match self.lock().get(&run_key(owner, run_id)) {
            Some(active) if active.owner == *owner => {
                active.cancel.cancel();
                true
            }
            _ => false,
        }
    }

    /// How many runs of `owner` this process runs now.
    pub fn active_runs_of(&self, owner: &UserId) -> usize {
        self.lock().keys().filter(|(who, _)| who == owner).count()
    }

    /// Whether this process runs `run_id` of `owner`.
    pub fn is_active(&self, owner: &UserId, run_id: &str) -> bool {
        self.lock()
            .get(&run_key(owner, run_id))
            .is_some_and(|active| active.owner == *owner)
    }

    /// The live events of a run of `owner`, while this process runs it.
    pub fn subscribe(
        &self,
        owner: &UserId,
        run_id: &str,
    ) -> Option<broadcast::Receiver<ProgressEvent>> {
        self.lock()
            .get(&run_key(owner, run_id))
            .filter(|active| active.owner == *owner)
            .map(|active| active.events.subscribe())
    }

    /// Cancelled when the server starts shutting down (event streams end with it).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutting_down.clone()
    }

    /// Stops every run (they are stored as `interrupted`) and waits up to `grace` for their
    /// last rows and summaries to be written.
    pub async fn shutdown(&self, grace: Duration) {
        self.shutting_down.cancel();
        let tasks: Vec<tokio::task::JoinHandle<()>> = {
            let mut runs = self.lock();
            runs.values_mut()
                .filter_map(|active| {
                    active.cancel.cancel();
                    active.task.take()
                })
                .collect()
        };
        if tasks.is_empty() {
            return;
        }
        tracing::info!(
            runs = tasks.len(),
            "stopping runs: they will be marked interrupted"
        );
        let all = futures::future::join_all(tasks);
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!("runs did not stop within {} s", grace.as_secs());
        }
    }
}

/// Holds a run's lease while it runs: taken once the run is stored, then renewed every third of
/// its time to live. A lease that cannot be renewed (another task took it after it expired)
/// stops the run here, so two tasks never write the same run; a store error is retried at the
/// next renewal (the lease is still live until it expires). At each renewal the run's cancel
/// request ([`store::Store::request_cancel`], made by a page another task served) is
/// read: a requested cancel stops the run like a local one, within one renewal period.
async fn renew_lease(
    store: SharedStore,
    owner: UserId,
    run_id: String,
    leases: Arc<Leases>,
    mut events: broadcast::Receiver<ProgressEvent>,
    cancel: CancellationToken,
    lost: Arc<std::sync::atomic::AtomicBool>,
) {
    // The run exists once it has started.
    loop {
        match events.recv().await {
            Ok(ProgressEvent::Started { .. }) => break,
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
    drop(events);
    let period = Duration::from_millis(leases.ttl_secs * 1000 / 3).max(Duration::from_millis(300));
    loop {
        match store
            .acquire_lease(&owner, &run_id, &leases.holder, leases.ttl_secs)
            .await
        {
            Ok(true) => {
                // A cancel asked through another task's page: stop the run as a local cancel
                // does (it ends `cancelled`), seen within one renewal period.
                match store.cancel_requested(&owner, &run_id).await {
                    Ok(true) => {
                        tracing::info!(run_id = %run_id, "cancelling was requested through another task; cancelling the run");
                        cancel.cancel();
                        return;
                    }
                    Ok(false) => {}
                    Err(error) => {
                        tracing::warn!(run_id = %run_id, error = %store::error_chain(&error), "reading the run's cancel request failed; trying again")
                    }
                }
            }
            Ok(false) => {
                tracing::warn!(run_id = %run_id, "the run's lease was taken by another task; stopping it here");
                lost.store(true, std::sync::atomic::Ordering::SeqCst);
                cancel.cancel();
                return;
            }
            Err(error) => {
                tracing::warn!(run_id = %run_id, error = %store::error_chain(&error), "renewing the run's lease failed; trying again")
            }
        }
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            () = cancel.cancelled() => return,
        }
    }
}

/// Computes a finished run's summary from its stored rows and stores it with the run's final
/// status (`interrupted` when the server stopped it).
async fn store_summary(
    store: &SharedStore,
    owner: &UserId,
    plan: &EvalPlan,
    outcome: &RunOutcome,
    interrupted: bool,
    kept: serde_json::Map<String, serde_json::Value>,
) -> Result<(), StoreError> {
    let mut builder = SummaryBuilder::new(&plan.columns()).with_config(&plan.config_json());
    for_each_record(store.as_ref(), owner, &outcome.run_id, |row| {
        builder.add(&row);
        Ok::<(), StoreError>(())
    })
    .await?;
    let status = if interrupted && outcome.status == RunStatus::Cancelled {
        RunStatus::Interrupted
    } else {
        outcome.status
    };
    let summary = Summary {
        run_id: outcome.run_id.clone(),
        status,
        total: outcome.total,
        done: outcome.done,
        failed: outcome.failed,
        elapsed_secs: outcome.elapsed.as_secs_f64(),
        config: plan.config_json(),
        models: builder.finish(),
    };
    let mut value = serde_json::to_value(&summary).unwrap_or(serde_json::Value::Null);
    if let Some(object) = value.as_object_mut() {
        object.extend(kept);
    }
    store
        .finish_run(owner, &outcome.run_id, status, &value)
        .await
}

/// The fields of a stored summary named in `names` that it has.
fn batch_fields(
    stored: &serde_json::Value,
    names: &[&str],
) -> serde_json::Map<String, serde_json::Value> {
    names
        .iter()
        .filter_map(|name| Some(((*name).to_owned(), stored.get(*name)?.clone())))
        .collect()
}

/// What a batch run hands on when its summary is written over while it still runs (handed
/// back, lease lost, adopted): its jobs (`batch`) and their progress (`batch_progress`).
pub(crate) const BATCH_STATE_FIELDS: [&str; 2] = ["batch", "batch_progress"];

/// `summary` with the batch state of `stored` (the run's summary as stored), so whoever picks
/// the run up next (a task adopting it, `llm-eval runs watch`) polls the same jobs instead of
/// looking for them by name. `summary` unchanged when `stored` has none.
pub(crate) fn with_batch_state(
    stored: Option<&serde_json::Value>,
    mut summary: serde_json::Value,
) -> serde_json::Value {
    if let (Some(stored), Some(object)) = (stored, summary.as_object_mut()) {
        object.extend(batch_fields(stored, &BATCH_STATE_FIELDS));
    }
    summary
}

/// [`with_batch_state`] of the run's stored summary, for a batch run (`summary` unchanged for
/// the others, or when the run cannot be read: the next task then finds its jobs by name).
async fn keeping_batch_state(
    store: &SharedStore,
    owner: &UserId,
    run_id: &str,
    kind: Kind,
    summary: serde_json::Value,
) -> serde_json::Value {
    if !matches!(kind, Kind::Batch { .. }) {
        return summary;
    }
    match store.run(owner, run_id).await {
        Ok(Some(run)) => with_batch_state(run.summary.as_ref(), summary),
        _ => summary,
    }
}

/// A batch run's task: submits its jobs (`submit`: how it starts) or picks up the ones it
/// has, waits, scores and stores. `leave` says when a cancel means "leave the jobs to another
/// task" rather than "stop them".
async fn run_batch(
    env: Option<Arc<BatchEnv>>,
    plan: Arc<EvalPlan>,
    run_id: &str,
    context: RunContext,
    submit: Option<BatchStart>,
    leave: impl Fn() -> bool + Send + Sync + 'static,
) -> Result<RunOutcome, StartError> {
    let env = env.ok_or(StartError::NoBatch)?;
    let (store, owner) = (context.store.clone(), context.owner.clone());
    let mut batch = BatchRun::new(
        plan,
        &env.catalog,
        run_id,
        context,
        env.clients.clone(),
        env.settings.clone(),
    )?
    .leave_when(leave);
    let outcome = match submit {
        Some(start) => {
            batch = batch.with_judge_mode(start.judge_mode)?;
            if let Some(retry) = start.retry {
                batch = batch.with_retry(retry);
            }
            batch.run().await
        }
        None => batch.finish().await,
    };
    match outcome {
        Ok(outcome) => Ok(outcome),
        Err(error) => {
            // Not adopted again and again: the run stops as interrupted with the reason (its
            // jobs and state kept), and `llm-eval runs watch` or a new run picks it up.
            if let Ok(Some(run)) = store.run(&owner, run_id).await {
                let mut summary = run.summary.unwrap_or_else(|| serde_json::json!({}));
                if let Some(object) = summary.as_object_mut() {
                    object.insert("error".into(), store::error_chain(&error).into());
                }
                let _ = store
                    .finish_run(&owner, run_id, RunStatus::Interrupted, &summary)
                    .await;
            }
            Err(error.into())
        }
    }
}
