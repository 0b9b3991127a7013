//! Runs: history (re-open, clone, delete, clear all), a run's page (live progress while it
//! runs, results once it ended), its event stream, cancel, "retry failed records" / resume,
//! and the downloads (summary JSON, records JSONL with the CLI's fields, CSV).
//!
//! Invariants: everything shown is read from the store (status, planned total, stored rows,
//! stored summary), so the page of a run is the same whichever process or tab asks; the live
//! channel of the registry only makes updates come sooner. Downloads stream page by page
//! (memory bounded by one page of rows) and use the CLI's own writers (`output::record_json`,
//! `output::csv_fields`, which escapes formula-like cells).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use askama::Template;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Form, Path, Query, State};
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::chart;
use crate::error::AppError;
use crate::page::{Html, Layout};
use crate::session::CurrentUser;
use crate::state::AppState;
use engine::output::{self, ModelSummary, Summary};
use engine::plan::{EvalRequest, build_plan};
use engine::runner::{PriorAnswer, PriorResults};
use store::{
    PageStart, RecordCounts, RecordCursor, RecordFilter, RecordKey, RecordQuery, RecordRow,
    RecordSort, RunRow, RunStatus, StoreError, UserId,
};

/// Runs listed in the history.
const HISTORY_LIMIT: usize = 500;
/// Rows of the per-record table per page.
pub const PAGE_SIZE: usize = 50;
/// How often an event stream reads the store when no live event wakes it.
const POLL: Duration = Duration::from_millis(1000);

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/runs", get(runs_list))
        .route("/runs/clear", post(runs_clear))
        .route("/runs/{id}", get(runs_show))
        .route("/runs/{id}/events", get(runs_events))
        .route("/runs/{id}/progress", get(runs_progress))
        .route("/runs/{id}/cancel", post(runs_cancel))
        .route("/runs/{id}/retry", post(runs_retry))
        .route("/runs/{id}/delete", post(runs_delete))
        .route("/runs/{id}/notes", post(runs_annotate))
        .route("/runs/{id}/summary.json", get(runs_summary_json))
        .route("/runs/{id}/records.jsonl", get(runs_records_jsonl))
        .route("/runs/{id}/records.csv", get(runs_records_csv))
}

/// The `owner` query parameter of a page of another user's run (the facilitator's view, a
/// shared run); absent for the user's own.
#[derive(Debug, Default, Deserialize)]
pub struct OwnerParam {
    #[serde(default)]
    pub owner: Option<String>,
}

/// The longest owner id looked up (Cognito's `sub` is 36 characters).
const MAX_OWNER_CHARS: usize = 128;

/// How the user reads a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The user's own run: every action.
    Own,
    /// Another user's run shared with the user (a grant the store checked): read only.
    Shared,
    /// Another user's run, read by a facilitator: read only, and cancel.
    Facilitator,
}

/// The owner a request names: `owner` when given, else the user.
pub fn owner_of(user: &CurrentUser, owner: Option<&str>) -> Result<UserId, AppError> {
    match owner.map(str::trim).filter(|owner| !owner.is_empty()) {
        None => Ok(user.id.clone()),
        Some(owner) if owner.chars().count() <= MAX_OWNER_CHARS => Ok(UserId::new(owner)),
        Some(_) => Err(AppError::NotFound("There is no such run.".to_string())),
    }
}

/// A run of `owner` the user may read, and how: their own, one shared with them (checked by
/// the store's grants), or any run when the user is a facilitator (from the verified token's
/// group claim). Anything else is 404, exactly like a run that does not exist.
pub async fn read_run(
    state: &AppState,
    user: &CurrentUser,
    owner: &UserId,
    run_id: &str,
) -> Result<(RunRow, Access), AppError> {
    if *owner == user.id {
        return Ok((find_run(state, owner, run_id).await?, Access::Own));
    }
    if let Some(run) = store::readable_run(state.store.as_ref(), &user.id, owner, run_id).await? {
        return Ok((run, Access::Shared));
    }
    if user.facilitator
        && let Some(run) = state.store.run(owner, run_id).await?
    {
        return Ok((run, Access::Facilitator));
    }
    Err(AppError::NotFound(format!("There is no run `{run_id}`.")))
}

/// The link to a run's page: with `?owner=` when it is not the user's own.
pub fn run_link(user: &UserId, owner: &UserId, run_id: &str) -> String {
    if owner == user {
        format!("/runs/{run_id}")
    } else {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("owner", owner.as_str());
        format!("/runs/{run_id}?{}", query.finish())
    }
}

/// A run of the user, or 404.
pub async fn find_run(state: &AppState, owner: &UserId, run_id: &str) -> Result<RunRow, AppError> {
    state
        .store
        .run(owner, run_id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("There is no run `{run_id}`.")))
}

/// One line of the history.
pub struct HistoryRow {
    pub run: RunRow,
    /// The prompt variants' labels (empty: one template).
    pub variants: String,
    pub models: String,
    pub metrics: String,
    pub dataset: String,
    pub headline: String,
}

/// The names the user's datasets were uploaded with, by where each is stored: a run's
/// configuration names the stored file (`<random id>.jsonl`), and pages show the uploaded name.
pub async fn dataset_names(state: &AppState, owner: &UserId) -> Result<DatasetNames, AppError> {
    Ok(DatasetNames(
        state
            .store
            .datasets(owner)
            .await?
            .into_iter()
            .map(|row| (row.path.display().to_string(), row.name))
            .collect(),
    ))
}

/// Uploaded dataset names by stored path ([`dataset_names`]).
pub struct DatasetNames(std::collections::HashMap<String, String>);

impl DatasetNames {
    /// What a page shows for a run's `dataset` path: the uploaded name; for a file that is not
    /// an upload of this user's (a CLI run, a deleted dataset), its file name.
    pub fn display(&self, path: &str) -> String {
        self.0.get(path).cloned().unwrap_or_else(|| {
            std::path::Path::new(path)
                .file_name()
                .map_or(path.to_string(), |name| name.to_string_lossy().into_owned())
        })
    }
}

fn history_row(run: RunRow, names: &DatasetNames) -> HistoryRow {
    let list = |key: &str| {
        run.config
            .get(key)
            .and_then(serde_json::Value::as_array)
            .map(|values| {
                values
                    .iter()
                    .filter_map(serde_json::Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    let dataset = run
        .config
        .get("dataset")
        .and_then(serde_json::Value::as_str)
        .map(|path| names.display(path))
        .unwrap_or_default();
    // The best column on the run's first score (the matrix's starred cell).
    let headline = stored_summary(&run)
        .and_then(|summary| {
            let several = summary.variants().len() > 1;
            let matrix = engine::output::matrices(&summary).into_iter().next()?;
            let (variant, model) = matrix.best?;
            let mean = matrix.means[variant][model]?;
            let column = engine::output::column_title(
                &matrix.variants[variant],
                &matrix.models[model],
                several,
            );
            Some(format!("{column} {} {mean:.3}", matrix.score))
        })
        .unwrap_or_default();
    let variants = match run
        .config
        .get("variants")
        .and_then(serde_json::Value::as_array)
    {
        Some(variants) => variants
            .iter()
            .filter_map(|variant| variant.get("label").and_then(serde_json::Value::as_str))
            .collect::<Vec<_>>()
            .join(", "),
        None => String::new(),
    };
    HistoryRow {
        variants,
        models: list("models"),
        metrics: list("metrics"),
        dataset,
        headline,
        run,
    }
}

/// The full summary stored with a finished run (the runner's own short summary of a failed
/// run does not parse as one).
pub fn stored_summary(run: &RunRow) -> Option<Summary> {
    serde_json::from_value(run.summary.clone()?).ok()
}

#[derive(Template)]
#[template(path = "runs.html")]
struct RunsPage {
    layout: Layout,
    runs: Vec<HistoryRow>,
}

async fn runs_list(
    State(state): State<AppState>,
    user: CurrentUser,
    layout: Layout,
) -> Result<Html<RunsPage>, AppError> {
    let runs = state.store.runs(&user.id, HISTORY_LIMIT).await?;
    let names = dataset_names(&state, &user.id).await?;
    Ok(Html(RunsPage {
        layout,
        runs: runs
            .into_iter()
            .map(|run| history_row(run, &names))
            .collect(),
    }))
}

#[derive(Deserialize)]
struct ClearForm {
    #[serde(default)]
    confirm: Option<String>,
}

async fn runs_clear(
    State(state): State<AppState>,
    user: CurrentUser,
    Form(form): Form<ClearForm>,
) -> Result<Redirect, AppError> {
    if form.confirm.as_deref() != Some("yes") {
        return Err(AppError::BadRequest(
            "Tick the box to confirm that every run of yours is to be deleted.".to_string(),
        ));
    }
    // Running runs stay: they are still writing (cancel them first).
    let mut running = false;
    for run in state.store.runs(&user.id, usize::MAX).await? {
        if run.status == RunStatus::Running {
            running = true;
        } else {
            state.store.delete_run(&user.id, &run.id).await?;
        }
    }
    // The user's cached answers go with their results (a running run may still reuse them,
    // so they stay while one runs).
    if let (Some(cache), false) = (state.cache.clone(), running) {
        let owner = user.id.as_str().to_string();
        tokio::task::spawn_blocking(move || cache.purge_owner_blocking(&owner))
            .await
            .map_err(|error| AppError::Internal(anyhow::anyhow!("purging the cache: {error}")))?
            .map_err(|error| AppError::Internal(anyhow::Error::new(error)))?;
    }
    Ok(Redirect::to("/runs"))
}

#[derive(Deserialize)]
struct NotesForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    notes: String,
}

/// Renames a run and keeps its notes (any time: while it runs too).
async fn runs_annotate(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    Form(form): Form<NotesForm>,
) -> Result<Redirect, AppError> {
    find_run(&state, &user.id, &id).await?;
    // A browser's textarea sends CRLF line ends; keep what the user sees.
    let notes = form.notes.replace("\r\n", "\n");
    let name = form.name.trim();
    store::check_run_label(name, &notes).map_err(|why| {
        AppError::BadRequest(format!("The name and notes were not saved: {why}."))
    })?;
    if !state
        .store
        .annotate_run(&user.id, &id, name, &notes)
        .await?
    {
        return Err(AppError::NotFound(format!("There is no run `{id}`.")));
    }
    Ok(Redirect::to(&format!("/runs/{id}#notes")))
}

async fn runs_delete(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Redirect, AppError> {
    let run = find_run(&state, &user.id, &id).await?;
    if run.status == RunStatus::Running {
        return Err(AppError::Conflict(
            "This run is still going: cancel it before deleting it.".to_string(),
        ));
    }
    state.store.delete_run(&user.id, &id).await?;
    Ok(Redirect::to("/runs"))
}

#[derive(Deserialize)]
struct CancelForm {
    #[serde(default)]
    owner: Option<String>,
}

/// Cancels a run: the user's own, or (a facilitator only, from the verified token's group)
/// any user's, recorded in that run's audit. A form naming another owner from anyone else
/// gets 404, as for a run that does not exist.
async fn runs_cancel(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    Form(form): Form<CancelForm>,
) -> Result<Redirect, AppError> {
    let owner = owner_of(&user, form.owner.as_deref())?;
    let run = if owner == user.id {
        find_run(&state, &owner, &id).await?
    } else {
        match read_run(&state, &user, &owner, &id).await? {
            (run, Access::Facilitator) => run,
            _ => return Err(AppError::NotFound(format!("There is no run `{id}`."))),
        }
    };
    let link = run_link(&user.id, &owner, &id);
    if run.status == RunStatus::Running && owner != user.id {
        if !state.runs.cancel(&owner, &id) {
            if state.runs.leases().is_none() {
                return Err(AppError::Conflict(
                    "This run is not executed by this server process, so it cannot be cancelled here."
                        .to_string(),
                ));
            }
            state.store.request_cancel(&owner, &id).await?;
        }
        state
            .store
            .add_audit(
                &owner,
                store::ItemKind::Run,
                &id,
                &user.known(),
                "cancelled the run",
            )
            .await?;
        return Ok(Redirect::to(&link));
    }
    if run.status == RunStatus::Running && !state.runs.cancel(&user.id, &id) {
        if state.runs.leases().is_none() {
            return Err(AppError::Conflict(
                "This run is not executed by this server process, so it cannot be cancelled here."
                    .to_string(),
            ));
        }
        // Another task runs it: record the request; the task holding the run's lease sees it
        // at its next renewal and cancels the run (the page says so meanwhile).
        state.store.request_cancel(&user.id, &id).await?;
    }
    Ok(Redirect::to(&link))
}

/// "Retry failed records" and "resume": the CLI's `--retry-failed` operation. A new run with
/// the stored request, reusing every earlier success with the same prompt and reference. A
/// batch run's retry is a batch run (when this server has batch mode): the failed records go
/// out as new jobs (online below Bedrock's minimum of 100 a model), and a retry asked while
/// the last one still runs shows that one instead of paying for the same records twice.
async fn runs_retry(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Redirect, AppError> {
    let run = find_run(&state, &user.id, &id).await?;
    if run.status == RunStatus::Running {
        return Err(AppError::Conflict(
            "This run is still going; retry its failed records once it ends.".to_string(),
        ));
    }
    let mut request = EvalRequest::from_config(&run.config)
        .map_err(|error| AppError::BadRequest(format!("This run cannot be repeated: {error}")))?;
    // The retry continues the run as it is named now.
    request.name = run.name.clone();
    let request = crate::safety::within_server_limits(&state, request);
    if let Err((_, message)) = crate::safety::check_run_quota(&state, &user.id, &request).await? {
        return Err(AppError::Conflict(format!(
            "This run cannot be repeated now: {message}."
        )));
    }
    let plan = build_plan(&request, &state.catalog, &state.providers)
        .await
        .map_err(|error| {
            AppError::BadRequest(format!(
                "This run cannot be repeated: {}: {error}",
                error.field.as_str()
            ))
        })?;
    if run.config.get("mode").and_then(serde_json::Value::as_str) == Some("batch")
        && state.runs.batch_enabled()
    {
        let retry = match engine::batch::start_retry(&state.store, &user.id, &id).await {
            Ok(engine::batch::RetryStart::New(retry)) => retry,
            Ok(engine::batch::RetryStart::InFlight(running)) => {
                return Ok(Redirect::to(&format!("/runs/{running}")));
            }
            Err(error) => {
                return Err(AppError::BadRequest(format!(
                    "This run cannot be repeated: {error}"
                )));
            }
        };
        // Judged as the run was (runs from before judges had a batch phase: online).
        let judge_mode = run
            .config
            .get("judge_mode")
            .and_then(serde_json::Value::as_str)
            .and_then(|mode| mode.parse().ok())
            .unwrap_or(engine::batch::JudgeMode::Online);
        let new_id = store::new_run_id();
        state
            .runs
            .start_batch(
                state.store.clone(),
                user.id.clone(),
                new_id.clone(),
                Arc::new(plan),
                crate::registry::BatchStart {
                    judge_mode,
                    retry: Some(retry),
                },
            )
            .await
            .map_err(|error| AppError::BadRequest(format!("The run could not start: {error}")))?;
        return Ok(Redirect::to(&format!("/runs/{new_id}")));
    }
    let mut prior = PriorResults::new();
    store::for_each_record(state.store.as_ref(), &user.id, &id, |row| {
        if let Some(answer) = PriorAnswer::from_row(&row) {
            prior.insert(engine::runner::prior_key(&row), answer);
        }
        Ok::<(), StoreError>(())
    })
    .await?;
    let new_id = store::new_run_id();
    state
        .runs
        .start(
            state.store.clone(),
            state.cache.clone(),
            user.id.clone(),
            new_id.clone(),
            Arc::new(plan),
            Some(Arc::new(prior)),
        )
        .await
        .map_err(|error| AppError::BadRequest(format!("The run could not start: {error}")))?;
    Ok(Redirect::to(&format!("/runs/{new_id}")))
}

/// Progress figures of a run, from the store.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProgressView {
    pub status: &'static str,
    pub done: usize,
    pub failed: usize,
    pub total: usize,
    pub percent: u32,
    pub rate: Option<f64>,
    pub eta_secs: Option<u64>,
}

impl ProgressView {
    fn new(run: &RunRow, counts: RecordCounts, rate: Option<f64>) -> ProgressView {
        let total = run.total.unwrap_or(0);
        let finished = counts.ok + counts.failed;
        let remaining = total.saturating_sub(finished);
        ProgressView {
            status: run.status.as_str(),
            done: counts.ok,
            failed: counts.failed,
            total,
            percent: (finished * 100)
                .checked_div(total)
                .map_or(0, |percent| percent.min(100) as u32),
            rate,
            eta_secs: rate
                .filter(|rate| *rate > 0.0)
                .map(|rate| (remaining as f64 / rate).ceil() as u64),
        }
    }

    /// The rate as text.
    pub fn rate_text(&self) -> String {
        self.rate
            .map_or_else(|| "-".to_string(), |rate| format!("{rate:.1}/s"))
    }

    /// The ETA as text.
    pub fn eta_text(&self) -> String {
        self.eta_secs
            .map_or_else(|| "-".to_string(), |secs| format!("{secs} s"))
    }
}

/// The per-record table's query string.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RecordParams {
    #[serde(default)]
    pub page: Option<usize>,
    #[serde(default)]
    pub sort: Option<String>,
    #[serde(default)]
    pub dir: Option<String>,
    #[serde(default)]
    pub filter: Option<String>,
    #[serde(default)]
    pub score: Option<String>,
    #[serde(default)]
    pub below: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub variant: Option<String>,
    /// The page starts after this row ([`RecordCursor::encode`]).
    #[serde(default)]
    pub after: Option<String>,
    /// The page ends before this row.
    #[serde(default)]
    pub before: Option<String>,
}

/// A query string link of the records table.
#[derive(Debug, Clone)]
pub struct TableState {
    pub page: usize,
    pub n_pages: usize,
    pub sort: String,
    pub descending: bool,
    pub filter: String,
    pub score: String,
    pub below: String,
    pub model: String,
    pub variant: String,
    /// The run's owner when it is not the user's own (kept in every link).
    pub owner: String,
    /// The cursors of the page's first and last rows (empty without rows).
    pub first: String,
    pub last: String,
}

impl TableState {
    fn query(&self, page: usize, sort: &str, descending: bool) -> String {
        self.query_from(page, sort, descending, None)
    }

    /// A link to page `page` of the order, starting after (or ending before) a row.
    fn query_from(
        &self,
        page: usize,
        sort: &str,
        descending: bool,
        start: Option<(&str, &str)>,
    ) -> String {
        let (start_name, start_value) = start.unwrap_or_default();
        let pairs = [
            ("page", page.to_string()),
            (start_name, start_value.to_string()),
            ("sort", sort.to_string()),
            ("dir", if descending { "desc" } else { "asc" }.to_string()),
            ("filter", self.filter.clone()),
            ("score", self.score.clone()),
            ("below", self.below.clone()),
            ("model", self.model.clone()),
            ("variant", self.variant.clone()),
            ("owner", self.owner.clone()),
        ];
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in pairs
            .iter()
            .filter(|(name, value)| !name.is_empty() && !value.is_empty())
        {
            query.append_pair(name, value);
        }
        format!("?{}#records", query.finish())
    }

    /// The link to the page before or after this one: it starts after this page's last row,
    /// or ends before its first (keyset paging: the store never counts rows to skip).
    pub fn page_link(&self, page: usize) -> String {
        let start = if page < self.page {
            ("before", self.first.as_str())
        } else {
            ("after", self.last.as_str())
        };
        self.query_from(page, &self.sort, self.descending, Some(start))
    }

    /// The link that sorts by `column` (toggling the direction when it is the current one).
    pub fn sort_link(&self, column: &str) -> String {
        let descending = if self.sort == column {
            !self.descending
        } else {
            column != "position"
        };
        self.query(1, column, descending)
    }

    /// `aria-sort` of a column.
    pub fn aria_sort(&self, column: &str) -> &'static str {
        match (self.sort == column, self.descending) {
            (false, _) => "none",
            (true, true) => "descending",
            (true, false) => "ascending",
        }
    }
}

/// One row of the records table, formatted.
pub struct RecordView {
    pub row: RecordRow,
    pub scores: Vec<String>,
}

#[derive(Template)]
#[template(path = "run.html")]
struct RunPage {
    layout: Layout,
    run: RunRow,
    history: HistoryRow,
    progress: ProgressView,
    /// The Cancel button is shown: this process runs the run, or runs hold leases (another
    /// task holding the lease cancels it on request).
    can_cancel: bool,
    /// Cancelling the (still running) run was requested through a page.
    cancel_requested: bool,
    summary: Option<Summary>,
    /// The run has several prompt variants: results are a matrix of variants × models.
    several_variants: bool,
    /// One matrix (variants × models) per score, when the run has several variants.
    matrices: Vec<engine::output::Matrix>,
    score_names: Vec<&'static str>,
    records: Vec<RecordView>,
    n_matching: usize,
    table: TableState,
    charts: Vec<chart::Chart>,
    error: Option<String>,
    /// A batch run's jobs, from their last `GetModelInvocationJob` counters.
    batch: Option<String>,
    /// Another user's run (shared, or the facilitator's view): no edit, delete or retry.
    read_only: bool,
    /// Read by a facilitator: marked so, with the owner.
    facilitator_view: bool,
    /// The owner's id and name (when not the user's own run).
    owner_id: String,
    owner_name: String,
    /// `?owner=...` for the run's links when it is another user's, else empty.
    owner_query: String,
    /// What facilitators did to the run, newest first.
    audit: Vec<store::AuditEntry>,
    /// Who the run is shared with (the owner's page only).
    grants: Vec<super::teams::GrantView>,
}

fn parse_query(params: &RecordParams, score_names: &[&'static str]) -> (RecordQuery, TableState) {
    let known_score = |name: &str| score_names.contains(&name);
    let sort_name = params
        .sort
        .clone()
        .unwrap_or_else(|| "position".to_string());
    let sort = match sort_name.as_str() {
        "latency" => RecordSort::Latency,
        name if known_score(name) => RecordSort::Score(name.to_string()),
        _ => RecordSort::Position,
    };
    let sort_name = match &sort {
        RecordSort::Position => "position".to_string(),
        RecordSort::Latency => "latency".to_string(),
        RecordSort::Score(name) => name.clone(),
    };
    let descending = params.dir.as_deref() == Some("desc");
    let score = params
        .score
        .clone()
        .filter(|name| known_score(name))
        .or_else(|| score_names.first().map(|name| name.to_string()))
        .unwrap_or_default();
    let below_text = params.below.clone().unwrap_or_else(|| "0.5".to_string());
    let below = below_text
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|value| value.is_finite());
    let filter_name = params.filter.clone().unwrap_or_else(|| "all".to_string());
    let filter = match (filter_name.as_str(), below) {
        ("failed", _) => RecordFilter::Failed,
        ("low", Some(below)) if !score.is_empty() => RecordFilter::ScoreBelow {
            score: score.clone(),
            below,
        },
        _ => RecordFilter::All,
    };
    let filter_name = match filter {
        RecordFilter::Failed => "failed",
        RecordFilter::ScoreBelow { .. } => "low",
        RecordFilter::All => "all",
    }
    .to_string();
    let cursor = |text: &Option<String>| text.as_deref().and_then(RecordCursor::decode);
    let start = match (cursor(&params.after), cursor(&params.before)) {
        (Some(after), _) => PageStart::After(after),
        (None, Some(before)) => PageStart::Before(before),
        (None, None) => PageStart::First,
    };
    // The page number is only shown; without a cursor the page is the first.
    let page = match start {
        PageStart::First => 1,
        _ => params.page.unwrap_or(1).max(1),
    };
    let model = params.model.clone().unwrap_or_default();
    let variant = params.variant.clone().unwrap_or_default();
    let query = RecordQuery {
        model: (!model.is_empty()).then(|| model.clone()),
        variant: (!variant.is_empty()).then(|| variant.clone()),
        filter,
        sort,
        descending,
        start,
        limit: PAGE_SIZE,
    };
    let table = TableState {
        page,
        n_pages: 1,
        sort: sort_name,
        descending,
        filter: filter_name,
        score,
        below: below_text,
        model,
        variant,
        owner: String::new(),
        first: String::new(),
        last: String::new(),
    };
    (query, table)
}

/// The score names of a run, from its configuration.
fn score_names(run: &RunRow) -> Vec<&'static str> {
    output::score_names_of_config(&run.config)
}

fn format_score(row: &RecordRow, name: &str) -> String {
    row.scores
        .iter()
        .find(|score| score.name == name)
        .map(|score| format!("{:.3}", score.value.as_f64()))
        .unwrap_or_default()
}

async fn runs_show(
    State(state): State<AppState>,
    user: CurrentUser,
    layout: Layout,
    Path(id): Path<String>,
    Query(params): Query<RecordParams>,
    Query(owner): Query<OwnerParam>,
) -> Result<Html<RunPage>, AppError> {
    let owner = owner_of(&user, owner.owner.as_deref())?;
    let (run, access) = read_run(&state, &user, &owner, &id).await?;
    let counts = state.store.record_counts(&owner, &id).await?;
    let progress = ProgressView::new(&run, counts, None);
    let names = score_names(&run);
    let (query, mut table) = parse_query(&params, &names);
    if access != Access::Own {
        table.owner = owner.as_str().to_string();
    }
    let page = state.store.query_records(&owner, &id, &query).await?;
    table.n_pages = page.total.div_ceil(PAGE_SIZE).max(1);
    table.page = table.page.min(table.n_pages);
    if matches!(query.start, PageStart::Before(_)) && page.rows.len() < PAGE_SIZE {
        // Fewer rows before the cursor than a page: this is the first page.
        table.page = 1;
    }
    if let (Some(first), Some(last)) = (page.rows.first(), page.rows.last()) {
        table.first = query.cursor_of(first).encode();
        table.last = query.cursor_of(last).encode();
    }
    let records = page
        .rows
        .into_iter()
        .map(|mut row| {
            // What AWS said, without the account id and role names (the stored row and the
            // downloads keep the whole text).
            row.error = row
                .error
                .map(|error| crate::safety::redact_aws_details(&error));
            RecordView {
                scores: names.iter().map(|name| format_score(&row, name)).collect(),
                row,
            }
        })
        .collect();
    let summary = stored_summary(&run);
    let several_variants = summary
        .as_ref()
        .is_some_and(|summary| summary.variants().len() > 1);
    let matrices = match &summary {
        Some(summary) if several_variants => engine::output::matrices(summary),
        _ => Vec::new(),
    };
    let charts = match &summary {
        Some(summary) if run.status != RunStatus::Running => {
            chart::run_charts(state.store.as_ref(), &owner, &id, summary, &names).await?
        }
        _ => Vec::new(),
    };
    let error = run
        .summary
        .as_ref()
        .and_then(|summary| summary.get("error"))
        .and_then(serde_json::Value::as_str)
        .map(crate::safety::redact_aws_details);
    let batch = (run.status == RunStatus::Running)
        .then(|| engine::batch::BatchState::of_summary(run.summary.as_ref()))
        .flatten()
        .map(|state| {
            let (processed, records) = state.counts();
            let mut line = format!(
                "Bedrock batch inference: {}; {processed} of {records} records processed. Batch results take hours; AWS gives no completion time.",
                state.status_line()
            );
            // What runs online instead (fewer than 100 records of a model, or of a judge).
            for part in &state.online {
                line.push_str(&format!(" Note: {}.", part.reason));
            }
            line
        });
    let active = state.runs.is_active(&owner, &id);
    let cancel_requested = run.status == RunStatus::Running
        && state.runs.leases().is_some()
        && state.store.cancel_requested(&owner, &id).await?;
    // What facilitators did to this run: shown to its owner (and to facilitators).
    let audit = if access == Access::Shared {
        Vec::new()
    } else {
        state.store.audit(&owner, store::ItemKind::Run, &id).await?
    };
    let grants = if access == Access::Own {
        super::teams::grant_views(&state, &owner, store::ItemKind::Run, &id).await?
    } else {
        Vec::new()
    };
    let owner_name = if access == Access::Own {
        String::new()
    } else {
        super::teams::user_name(&state, &owner).await?
    };
    let owner_query = if access == Access::Own {
        String::new()
    } else {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("owner", owner.as_str());
        format!("?{}", query.finish())
    };
    Ok(Html(RunPage {
        layout,
        can_cancel: (active || state.runs.leases().is_some()) && access != Access::Shared,
        cancel_requested,
        history: history_row(run.clone(), &dataset_names(&state, &owner).await?),
        read_only: access != Access::Own,
        facilitator_view: access == Access::Facilitator,
        owner_id: owner.as_str().to_string(),
        owner_name,
        owner_query,
        audit,
        grants,
        run,
        progress,
        summary,
        several_variants,
        matrices,
        score_names: names,
        records,
        n_matching: page.total,
        table,
        charts,
        error,
        batch,
    }))
}

/// The run's progress as JSON (for scripts, and for pages without event streams).
async fn runs_progress(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    Query(owner): Query<OwnerParam>,
) -> Result<axum::Json<ProgressView>, crate::error::JsonError> {
    let owner = owner_of(&user, owner.owner.as_deref())?;
    let (run, _) = read_run(&state, &user, &owner, &id).await?;
    let counts = state.store.record_counts(&owner, &id).await?;
    Ok(axum::Json(ProgressView::new(&run, counts, None)))
}

/// Server-sent events of a run's progress: one `progress` event per second (sooner when the
/// run reports), then `end` once the run is no longer running.
async fn runs_events(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    Query(owner): Query<OwnerParam>,
) -> Result<Response, AppError> {
    let owner = owner_of(&user, owner.owner.as_deref())?;
    read_run(&state, &user, &owner, &id).await?;
    let live = state.runs.subscribe(&owner, &id);
    let shutdown = state.runs.shutdown_token();
    struct Stream {
        state: AppState,
        owner: UserId,
        run_id: String,
        live: Option<tokio::sync::broadcast::Receiver<engine::progress::ProgressEvent>>,
        started: Instant,
        finished_at_start: Option<usize>,
        ended: bool,
        first: bool,
        shutdown: tokio_util::sync::CancellationToken,
    }
    let stream = Stream {
        state,
        owner,
        run_id: id,
        live,
        started: Instant::now(),
        finished_at_start: None,
        ended: false,
        first: true,
        shutdown,
    };
    let events = futures::stream::unfold(stream, |mut stream| async move {
        if stream.ended {
            return None;
        }
        if !stream.first {
            // Wait for the next tick, a live event (at most every 250 ms) or shutdown.
            let shutdown = stream.shutdown.clone();
            let live = stream.live.as_mut();
            let wait = async move {
                match live {
                    Some(live) => {
                        let _ = tokio::time::timeout(POLL, live.recv()).await;
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                    None => tokio::time::sleep(POLL).await,
                }
            };
            let shutting_down = tokio::select! {
                () = wait => false,
                () = shutdown.cancelled() => true,
            };
            if shutting_down {
                stream.ended = true;
                let event = Event::default()
                    .event("end")
                    .data("{\"status\":\"interrupted\"}");
                return Some((Ok::<Event, std::convert::Infallible>(event), stream));
            }
        }
        stream.first = false;
        let run = stream.state.store.run(&stream.owner, &stream.run_id).await;
        let counts = stream
            .state
            .store
            .record_counts(&stream.owner, &stream.run_id)
            .await;
        let (Ok(Some(run)), Ok(counts)) = (run, counts) else {
            stream.ended = true;
            return Some((
                Ok(Event::default().event("end").data("{\"status\":\"gone\"}")),
                stream,
            ));
        };
        let finished = counts.ok + counts.failed;
        let at_start = *stream.finished_at_start.get_or_insert(finished);
        let elapsed = stream.started.elapsed().as_secs_f64();
        let rate =
            (elapsed > 0.5 && finished > at_start).then(|| (finished - at_start) as f64 / elapsed);
        let view = ProgressView::new(&run, counts, rate);
        let data = serde_json::to_string(&view).unwrap_or_default();
        let event = if run.status == RunStatus::Running {
            Event::default().event("progress").data(data)
        } else {
            stream.ended = true;
            Event::default().event("end").data(data)
        };
        Some((Ok(event), stream))
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}

async fn runs_summary_json(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    Query(owner): Query<OwnerParam>,
) -> Result<Response, AppError> {
    let owner = owner_of(&user, owner.owner.as_deref())?;
    let (run, _) = read_run(&state, &user, &owner, &id).await?;
    let Some(summary) = run.summary.filter(|_| run.status != RunStatus::Running) else {
        return Err(AppError::Conflict(
            "This run has no summary yet: it is still going.".to_string(),
        ));
    };
    // The summary's AWS texts (a failed run's reason, batch job messages) without the account
    // id and role names, as on the pages.
    let text = serde_json::to_string_pretty(&redact_strings(summary)).unwrap_or_default() + "\n";
    Ok(download(
        &format!("{id}-summary.json"),
        "application/json",
        Body::from(text),
    ))
}

/// `value` with every string's AWS details redacted (numbers untouched).
fn redact_strings(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(text) => Value::String(crate::safety::redact_aws_details(&text)),
        Value::Array(items) => Value::Array(items.into_iter().map(redact_strings).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(key, value)| (key, redact_strings(value)))
                .collect(),
        ),
        other => other,
    }
}

fn download(file_name: &str, content_type: &'static str, body: Body) -> Response {
    // Run ids are our own (timestamp and hex), safe in a header; anything else is dropped.
    let safe: String = file_name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{safe}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// The rows of a run as a stream of encoded pages.
fn record_stream(
    state: AppState,
    owner: UserId,
    run_id: String,
    header: Option<Vec<u8>>,
    encode: impl Fn(&RecordRow) -> Vec<u8> + Send + Sync + 'static,
) -> Body {
    struct Cursor {
        after: Option<RecordKey>,
        done: bool,
        header: Option<Vec<u8>>,
    }
    let encode = Arc::new(encode);
    let stream = futures::stream::unfold(
        Cursor {
            after: None,
            done: false,
            header,
        },
        move |mut cursor| {
            let (state, owner, run_id, encode) =
                (state.clone(), owner.clone(), run_id.clone(), encode.clone());
            async move {
                if let Some(header) = cursor.header.take() {
                    return Some((Ok(Bytes::from(header)), cursor));
                }
                if cursor.done {
                    return None;
                }
                let rows = match state
                    .store
                    .records_after(&owner, &run_id, cursor.after, store::READ_PAGE)
                    .await
                {
                    Ok(rows) => rows,
                    Err(error) => {
                        tracing::error!(error = %store::error_chain(&error), "download stopped");
                        cursor.done = true;
                        return Some((Err(std::io::Error::other("the store failed")), cursor));
                    }
                };
                cursor.done = rows.len() < store::READ_PAGE;
                if let Some(last) = rows.last() {
                    cursor.after = Some(RecordKey {
                        position: last.position,
                        model_order: last.model_order,
                    });
                }
                let mut bytes = Vec::new();
                for mut row in rows {
                    // As on the pages: what AWS said without the account id and role names
                    // (the whole text is in the store and the server log).
                    row.error = row
                        .error
                        .map(|error| crate::safety::redact_aws_details(&error));
                    bytes.extend(encode(&row));
                }
                Some((Ok(Bytes::from(bytes)), cursor))
            }
        },
    );
    Body::from_stream(stream)
}

async fn runs_records_jsonl(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    Query(owner): Query<OwnerParam>,
) -> Result<Response, AppError> {
    let owner = owner_of(&user, owner.owner.as_deref())?;
    read_run(&state, &user, &owner, &id).await?;
    let body = record_stream(state, owner, id.clone(), None, |row| {
        let mut line = serde_json::to_vec(&output::record_json(row)).unwrap_or_default();
        line.push(b'\n');
        line
    });
    Ok(download(
        &format!("{id}-records.jsonl"),
        "application/x-ndjson",
        body,
    ))
}

fn csv_line(fields: &[String]) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let _ = writer.write_record(fields);
    writer.into_inner().unwrap_or_default()
}

async fn runs_records_csv(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    Query(owner): Query<OwnerParam>,
) -> Result<Response, AppError> {
    let owner = owner_of(&user, owner.owner.as_deref())?;
    let (run, _) = read_run(&state, &user, &owner, &id).await?;
    let names = score_names(&run);
    let header = csv_line(&output::csv_header(&names));
    let body = record_stream(state, owner, id.clone(), Some(header), move |row| {
        csv_line(&output::csv_fields(row, &names))
    });
    Ok(download(
        &format!("{id}-records.csv"),
        "text/csv; charset=utf-8",
        body,
    ))
}

/// Per-model figures of a summary as rows for the template.
pub fn summary_rows(summary: &Summary) -> Vec<(&ModelSummary, BTreeMap<String, String>)> {
    summary
        .models
        .iter()
        .map(|model| {
            let means = model
                .scores
                .iter()
                .map(|mean| (mean.name.clone(), format!("{:.4}", mean.value)))
                .collect();
            (model, means)
        })
        .collect()
}

/// Milliseconds as text.
pub fn ms(value: &Option<f64>) -> String {
    value.map_or_else(|| "-".to_string(), |ms| format!("{ms:.0} ms"))
}

/// US dollars as text.
pub fn usd(value: &Option<f64>) -> String {
    value.map_or_else(|| "-".to_string(), |usd| format!("${usd:.4}"))
}

/// An amount of US dollars as text.
pub fn usd_amount(value: &f64) -> String {
    format!("${value:.4}")
}
