//! The CLI of batch runs: `llm-eval eval --mode batch` (its flags, flattened into `eval`'s,
//! `--judge-mode` included), the numbering of `--retry-failed RUN` of a batch run, and
//! `llm-eval runs watch RUN`, which picks up a batch run submitted with `--detach` (or whose
//! process died) and finishes it. A thin layer over [`engine::batch`]; it owns no AWS call.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use engine::batch::{
    BatchClients, BatchRun, BatchSettings, BatchState, JudgeMode, RetryOf, RetryStart, RunMode,
};
use engine::catalog::Catalog;
use engine::output;
use engine::plan::{self, EvalRequest};
use engine::progress::ProgressEvent;
use engine::providers::{ProviderSettings, Providers};
use engine::runner::{EvalPlan, RunContext, RunOutcome};
use store::{RunStatus, SharedStore, StoreSpec, UserId, default_store_path};

use crate::cli::Exit;

/// The batch flags of `llm-eval eval`.
#[derive(Debug, Args)]
pub struct BatchArgs {
    /// How the models are called: `online` (from this process) or `batch` (Amazon Bedrock
    /// batch inference jobs: about half the price, results in hours; Bedrock models with a
    /// batch price in the catalog only) [default: online; with --retry-failed: the earlier
    /// run's mode, so the failed records of a batch run go out as a new batch job when there
    /// are at least 100 of a model].
    #[arg(long, value_name = "online|batch")]
    pub mode: Option<RunMode>,
    /// Batch mode: how the qa_accuracy_by_llm judges are asked: `batch` (a second phase of
    /// batch jobs over the answers, at the judge's batch price) or `online` (from this
    /// process) [default: batch].
    #[arg(long, value_name = "batch|online")]
    pub judge_mode: Option<JudgeMode>,
    /// Batch mode: the S3 bucket of the jobs' inputs and outputs.
    #[arg(long, env = "LLM_EVAL_BATCH_BUCKET")]
    pub batch_bucket: Option<String>,
    /// Batch mode: the service role Bedrock assumes to read and write the bucket.
    #[arg(long, env = "LLM_EVAL_BATCH_ROLE_ARN")]
    pub batch_role_arn: Option<String>,
    /// Batch mode: the key prefix of the runs' objects.
    #[arg(long, env = "LLM_EVAL_BATCH_PREFIX", default_value = engine::batch::DEFAULT_PREFIX)]
    pub batch_prefix: String,
    /// Batch mode: seconds between two looks at the jobs' status (1 to 3600).
    #[arg(long, env = "LLM_EVAL_BATCH_POLL_SECS", default_value_t = 60.0, value_parser = poll_seconds)]
    pub batch_poll_secs: f64,
    /// Batch mode: return once the jobs are submitted; `llm-eval runs watch RUN` (or the web
    /// app) finishes the run later.
    #[arg(long)]
    pub detach: bool,
}

/// `llm-eval runs`.
#[derive(Debug, Args)]
pub struct RunsArgs {
    /// What to do with a run.
    #[command(subcommand)]
    pub command: RunsCommand,
}

/// The subcommands of `llm-eval runs`.
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// Wait for the jobs of a batch run (submitted with --detach, or whose process stopped),
    /// then score, store and write its results.
    Watch(WatchArgs),
}

/// Flags of `llm-eval runs watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The run's id.
    pub run: String,
    /// The run store (as `eval --store`).
    #[arg(long, env = "LLM_EVAL_STORE")]
    pub store: Option<String>,
    /// Output directory (default ./eval-results/<run-id>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Overwrite the results already in --out.
    #[arg(long)]
    pub replace: bool,
    /// A model catalog file (TOML) overriding or extending the built-in one.
    #[arg(long)]
    pub catalog: Option<PathBuf>,
    /// Seconds between two looks at the jobs' status (1 to 3600).
    #[arg(long, env = "LLM_EVAL_BATCH_POLL_SECS", default_value_t = 60.0, value_parser = poll_seconds)]
    pub batch_poll_secs: f64,
    /// Do not print progress.
    #[arg(long)]
    pub quiet: bool,
    /// Whose run it is: `local` (the CLI's runs and a local web app's), or the id of the web
    /// app's user who started it (their Cognito `sub`) for a deployed app's shared store.
    #[arg(long, default_value = "local", value_parser = owner_id)]
    pub owner: String,
}

fn owner_id(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() || text.len() > 128 || text.chars().any(char::is_control) {
        return Err("an owner is 1 to 128 printable characters".to_owned());
    }
    Ok(text.to_owned())
}

/// How long `runs watch` holds a shared store's run lease between two renewals (a third of
/// it): a watch that dies leaves the run to a web task within this time.
const WATCH_LEASE_SECS: u64 = 30;

fn poll_seconds(text: &str) -> Result<f64, String> {
    let seconds: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if !(0.01..=3600.0).contains(&seconds) {
        return Err(format!("{seconds} s is out of range (0.01 to 3600)"));
    }
    Ok(seconds)
}

/// The batch settings of the flags; the bucket and role are required.
fn settings(args: &BatchArgs) -> anyhow::Result<BatchSettings> {
    let Some(bucket) = args.batch_bucket.clone().filter(|b| !b.is_empty()) else {
        bail!(
            "--mode batch needs --batch-bucket (or LLM_EVAL_BATCH_BUCKET): where the jobs' inputs and outputs go"
        );
    };
    let Some(role) = args.batch_role_arn.clone().filter(|r| !r.is_empty()) else {
        bail!(
            "--mode batch needs --batch-role-arn (or LLM_EVAL_BATCH_ROLE_ARN): the service role Bedrock assumes"
        );
    };
    let mut settings = BatchSettings::new(bucket, role);
    settings.prefix = args.batch_prefix.clone();
    settings.poll_interval = Duration::from_secs_f64(args.batch_poll_secs);
    Ok(settings)
}

/// Checks the batch flags and the plan's models before anything is written.
pub async fn prepare(
    args: &BatchArgs,
    judge_mode: JudgeMode,
    plan: Arc<EvalPlan>,
    catalog: &Catalog,
    run_id: &str,
    context: RunContext,
) -> anyhow::Result<BatchRun> {
    let settings = settings(args)?;
    let clients = BatchClients::from_env().await;
    Ok(
        BatchRun::new(plan, catalog, run_id, context, clients, settings)?
            .with_judge_mode(judge_mode)?,
    )
}

/// Numbers `--retry-failed RUN --mode batch`: the next retry of the stored batch run `run`, or
/// an error naming the retry of it that is still running (a second one would pay for the same
/// records twice).
pub async fn number_retry(run: &str, store: &SharedStore) -> anyhow::Result<RetryOf> {
    if std::path::Path::new(run).is_dir() {
        bail!(
            "--retry-failed {run} --mode batch: name the earlier run by its id (a batch retry reads the earlier run from the store)"
        );
    }
    match engine::batch::start_retry(store, &UserId::local(), run).await? {
        RetryStart::New(retry) => Ok(retry),
        RetryStart::InFlight(retry) => bail!(
            "--retry-failed {run}: its retry `{retry}` is still running; `llm-eval runs watch {retry}` follows it"
        ),
    }
}

/// Prints a line on stderr each time the jobs' status changes (for logs and non-terminals;
/// the progress bar shows the same on a terminal).
pub fn spawn_status_lines(
    mut events: broadcast::Receiver<ProgressEvent>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = String::new();
        loop {
            match events.recv().await {
                Ok(ProgressEvent::BatchJobs {
                    status,
                    processed,
                    records,
                }) => {
                    let line = format!("batch: {status} ({processed}/{records} records processed)");
                    if line != last {
                        eprintln!("{line}");
                        last = line;
                    }
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    })
}

/// What `eval --mode batch --detach` prints once the jobs are submitted.
pub fn print_detached(run_id: &str, state: &BatchState) {
    for part in &state.online {
        eprintln!("note: {}", part.reason);
    }
    eprintln!(
        "submitted {} batch job(s) for run {run_id}; `llm-eval runs watch {run_id}` finishes it",
        state.jobs.len()
    );
    println!("{run_id}");
}

/// The run's stored end, for the CLI: the reason of failed jobs, and what ran online.
pub async fn report(
    store: &SharedStore,
    owner: &UserId,
    run_id: &str,
) -> anyhow::Result<Option<String>> {
    let run = store.run(owner, run_id).await?;
    let summary = run.as_ref().and_then(|run| run.summary.as_ref());
    if let Some(state) = BatchState::of_summary(summary) {
        for part in &state.online {
            eprintln!("note: {}", part.reason);
        }
    }
    Ok(summary
        .and_then(|summary| summary.get("error"))
        .and_then(|error| error.as_str())
        .map(str::to_owned))
}

/// `llm-eval runs watch RUN`.
pub async fn watch(args: &WatchArgs) -> anyhow::Result<Exit> {
    let catalog = match &args.catalog {
        Some(path) => Catalog::load(path)?,
        None => Catalog::embedded(),
    };
    let spec = match &args.store {
        Some(text) => StoreSpec::parse(text),
        None => StoreSpec::Sqlite(default_store_path()),
    };
    let bucket = std::env::var("DATA_BUCKET").ok();
    let store = spec
        .open(&store::default_data_dir(), bucket.as_deref())
        .await?;
    let owner = UserId::new(args.owner.clone());
    let Some(run) = store.run(&owner, &args.run).await? else {
        bail!("no run `{}` of `{owner}` in {}", args.run, store.location());
    };
    if !matches!(run.status, RunStatus::Running | RunStatus::Interrupted) {
        bail!(
            "run `{}` is {} already: nothing to watch",
            args.run,
            run.status.as_str()
        );
    }
    let Some(state) = BatchState::of_summary(run.summary.as_ref()) else {
        bail!("run `{}` is not a batch run", args.run);
    };
    let mut request = EvalRequest::from_config(&run.config)
        .map_err(|error| anyhow::anyhow!("run `{}`: {error}", args.run))?;
    // A run started in the web app names the dataset it uploaded: where the app keeps it on
    // this machine, or (a deployed app's shared store) the store's copy, fetched here.
    let uploaded = match request.dataset.file_stem().and_then(|stem| stem.to_str()) {
        Some(id) => store.dataset(&owner, id).await?,
        None => None,
    };
    if !request.dataset.exists()
        && let Some(dataset) = &uploaded
    {
        request.dataset = dataset.path.clone();
    }
    let providers = Providers::from_env(ProviderSettings::default())
        .await
        .context("setting up model providers")?;
    let plan = Arc::new(
        plan::build_plan(&request, &catalog, &providers)
            .await
            .map_err(|error| anyhow::anyhow!("run `{}`: {error}", args.run))?,
    );
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("eval-results").join(&args.run));
    output::prepare_out_dir(&out_dir, &[request.dataset.as_path()], args.replace)?;
    let cancel = CancellationToken::new();
    crate::cli::spawn_signal_handler(cancel.clone());
    let (events, _) = broadcast::channel(1024);
    let lines = (!args.quiet).then(|| spawn_status_lines(events.subscribe()));
    // A shared store's web tasks adopt runs whose lease expired: this process holds the lease
    // of a run the web app can adopt (its dataset is in the store) while it watches, and a
    // lease another task holds means a task polls the run now. A run of the CLI's own dataset
    // takes none: no task could adopt it if this watch died.
    let lease = match (&spec, &uploaded) {
        (StoreSpec::Dynamo { .. }, Some(_)) => Some(
            WatchLease::take(&store, &owner, &args.run, run.status, run.summary.as_ref()).await?,
        ),
        _ => None,
    };
    let context = RunContext {
        store: store.clone(),
        owner: owner.clone(),
        cache: None,
        events: events.clone(),
        cancel: cancel.clone(),
    };
    let mut settings = BatchSettings::new(state.bucket.clone(), state.role_arn.clone());
    settings.poll_interval = Duration::from_secs_f64(args.batch_poll_secs);
    let mut batch = BatchRun::new(
        plan.clone(),
        &catalog,
        &args.run,
        context,
        BatchClients::from_env().await,
        settings,
    )?;
    let renewal = lease.as_ref().map(|lease| lease.keep(&store, cancel));
    if let Some(lease) = &lease {
        // A lost lease leaves the jobs to the task that took it (no StopModelInvocationJob).
        let lost = lease.lost.clone();
        batch = batch.leave_when(move || lost.load(std::sync::atomic::Ordering::SeqCst));
    }
    let outcome = batch.finish().await;
    if let Some(renewal) = renewal {
        renewal.abort();
    }
    if let Some(lease) = &lease {
        lease.release(&store).await;
        if lease.lost.load(std::sync::atomic::Ordering::SeqCst) {
            bail!(
                "run `{}`: a web app task took the run's lease while this watch could not renew it; that task finishes the run",
                args.run
            );
        }
    }
    let outcome = outcome?;
    // The run holds a sender of the events: the status lines end once both are gone.
    drop(batch);
    drop(events);
    if let Some(lines) = lines {
        let _ = lines.await;
    }
    finish_cli(&store, &owner, &plan, &outcome, &out_dir).await
}

/// The run lease `runs watch` holds in a shared store.
struct WatchLease {
    owner: UserId,
    run_id: String,
    holder: String,
    lost: Arc<std::sync::atomic::AtomicBool>,
}

impl WatchLease {
    /// Takes the lease of `run_id` (an interrupted run is made running again first, so it can
    /// hold one); fails when a web task holds it.
    async fn take(
        store: &SharedStore,
        owner: &UserId,
        run_id: &str,
        status: RunStatus,
        summary: Option<&serde_json::Value>,
    ) -> anyhow::Result<WatchLease> {
        let holder = format!("cli-{}", store::sqlite::random_hex(8));
        if status == RunStatus::Interrupted {
            let summary = summary.cloned().unwrap_or_else(|| serde_json::json!({}));
            store
                .finish_run(owner, run_id, RunStatus::Running, &summary)
                .await?;
        }
        if !store
            .acquire_lease(owner, run_id, &holder, WATCH_LEASE_SECS)
            .await?
        {
            bail!(
                "run `{run_id}` is being polled by a web app task (it holds the run's lease); its page shows the progress"
            );
        }
        Ok(WatchLease {
            owner: owner.clone(),
            run_id: run_id.to_owned(),
            holder,
            lost: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        })
    }

    /// Renews the lease every third of its time to live until aborted; a lease that cannot
    /// be renewed (another task took it) marks it lost and fires `cancel`.
    fn keep(&self, store: &SharedStore, cancel: CancellationToken) -> tokio::task::JoinHandle<()> {
        let (store, owner, run_id, holder, lost) = (
            store.clone(),
            self.owner.clone(),
            self.run_id.clone(),
            self.holder.clone(),
            self.lost.clone(),
        );
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(WATCH_LEASE_SECS / 3)).await;
                match store
                    .acquire_lease(&owner, &run_id, &holder, WATCH_LEASE_SECS)
                    .await
                {
                    Ok(true) => {}
                    // Ended meanwhile (the lease is only held while the run is running).
                    Ok(false) if cancel.is_cancelled() => return,
                    Ok(false) => {
                        if let Ok(Some(run)) = store.run(&owner, &run_id).await
                            && run.status != RunStatus::Running
                        {
                            return;
                        }
                        lost.store(true, std::sync::atomic::Ordering::SeqCst);
                        cancel.cancel();
                        return;
                    }
                    Err(error) => {
                        tracing::warn!(run_id = %run_id, error = %store::error_chain(&error), "renewing the run's lease failed; trying again");
                    }
                }
            }
        })
    }

    /// Releases the lease (nothing when another holder has it).
    async fn release(&self, store: &SharedStore) {
        if let Err(error) = store
            .release_lease(&self.owner, &self.run_id, &self.holder)
            .await
        {
            tracing::warn!(run_id = %self.run_id, error = %store::error_chain(&error), "releasing the run's lease failed; it expires");
        }
    }
}

/// Exports a finished batch run and picks the exit code.
pub async fn finish_cli(
    store: &SharedStore,
    owner: &UserId,
    plan: &EvalPlan,
    outcome: &RunOutcome,
    out_dir: &std::path::Path,
) -> anyhow::Result<Exit> {
    let columns = plan.columns();
    let score_names: Vec<&str> = plan
        .metrics
        .iter()
        .flat_map(|metric| metric.score_names().iter().copied())
        .collect();
    let summary = output::export(
        store.as_ref(),
        owner,
        outcome,
        plan.config_json(),
        &columns,
        &score_names,
        out_dir,
    )
    .await
    .with_context(|| format!("writing results to {}", out_dir.display()))?;
    print!("{}", output::render_table(&summary));
    eprintln!("results: {}", out_dir.display());
    let error = report(store, owner, &outcome.run_id).await?;
    match outcome.status {
        RunStatus::Cancelled => {
            eprintln!("cancelled: the batch jobs were stopped; what they processed was written");
            Ok(Exit::Cancelled)
        }
        RunStatus::Failed => {
            eprintln!(
                "error: {}",
                error.unwrap_or_else(|| "a batch job failed".to_owned())
            );
            Ok(Exit::BelowThreshold)
        }
        _ => Ok(Exit::Success),
    }
}
