//! Workshops as teams (issue 22): sharing runs and datasets read only, "Shared with me", the
//! facilitator's view (every user's runs and datasets, their usage against their quotas, the
//! quotas a facilitator sets), and challenges with their leaderboard.
//!
//! Invariants: who may read another user's item is the store's grant check
//! ([`store::Store::can_read`]) or the facilitator role, and the role comes only from
//! [`CurrentUser::facilitator`] (the verified token's group claim), never from a form field, a
//! query or a header; nothing here changes or deletes another user's item (a facilitator's
//! cancel lives with the run's page and is audited); every list is bounded by the store's
//! limits (`store::teams`).
//!
//! Depends on the store, the engine's summaries and the run pages' helpers; it must not depend
//! on the login layer.

use std::collections::HashMap;
use std::time::Duration;

use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::error::AppError;
use crate::page::{Html, Layout};
use crate::safety::{Quotas, Usage, UserQuotas};
use crate::session::CurrentUser;
use crate::state::AppState;
use engine::output::{Summary, csv_text_cell};
use store::{
    ChallengeRow, ChallengeSpec, DatasetRow, Grantee, ItemKind, Refusal, RunRow, RunStatus, UserId,
};

/// Runs of each user the facilitator's view lists.
const TEAM_RUNS_PER_USER: usize = 20;
/// How often a challenge's event stream reads the store.
const BOARD_POLL: Duration = Duration::from_millis(1000);
/// The longest a challenge's event stream lasts (the page reconnects).
const BOARD_STREAM_LIMIT: Duration = Duration::from_secs(3600);
/// The longest user name typed into a share form.
const MAX_NAME_CHARS: usize = 256;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/shared", get(shared_list))
        .route("/runs/{id}/share", post(run_share))
        .route("/runs/{id}/unshare", post(run_unshare))
        .route("/datasets/{id}/share", post(dataset_share))
        .route("/datasets/{id}/unshare", post(dataset_unshare))
        .route("/team", get(team_page))
        .route("/team/users/{id}/quotas", post(team_quotas))
        .route("/challenges", get(challenges_list).post(challenges_create))
        .route("/challenges/{id}", get(challenge_show))
        .route("/challenges/{id}/events", get(challenge_events))
        .route("/challenges/{id}/submit", post(challenge_submit))
        .route("/challenges/{id}/close", post(challenge_close))
        .route("/challenges/{id}/leaderboard.csv", get(challenge_csv))
}

/// The names of the users of the directory, by id.
pub async fn user_names(state: &AppState) -> Result<HashMap<UserId, String>, AppError> {
    Ok(state
        .store
        .known_users(store::teams::MAX_USERS_LISTED)
        .await?
        .into_iter()
        .map(|user| (user.id, user.name))
        .collect())
}

/// What pages call a user: their name in the directory, else their id.
pub async fn user_name(state: &AppState, user: &UserId) -> Result<String, AppError> {
    Ok(user_names(state)
        .await?
        .remove(user)
        .unwrap_or_else(|| user.as_str().to_string()))
}

/// One grant of an item, for its owner's page.
#[derive(Debug, Clone)]
pub struct GrantView {
    /// Who (a user's name, or "everyone").
    pub label: String,
    /// The stored grantee, for the unshare form.
    pub grantee: String,
}

/// The grants of an item of `owner`, named.
pub async fn grant_views(
    state: &AppState,
    owner: &UserId,
    kind: ItemKind,
    item_id: &str,
) -> Result<Vec<GrantView>, AppError> {
    let grants = state.store.grants(owner, kind, item_id).await?;
    if grants.is_empty() {
        return Ok(Vec::new());
    }
    let names = user_names(state).await?;
    Ok(grants
        .into_iter()
        .map(|grantee| GrantView {
            label: match &grantee {
                Grantee::Everyone => "everyone in this deployment".to_string(),
                Grantee::User(user) => names
                    .get(user)
                    .cloned()
                    .unwrap_or_else(|| user.as_str().to_string()),
            },
            grantee: grantee.as_stored().to_string(),
        })
        .collect())
}

#[derive(Deserialize)]
struct ShareForm {
    /// A user name of the directory, or empty with `everyone`.
    #[serde(default)]
    user: String,
    #[serde(default)]
    everyone: Option<String>,
}

#[derive(Deserialize)]
struct UnshareForm {
    grantee: String,
}

/// The grantee a share form names: everyone, or a user of the directory by name (or id).
async fn grantee_of(state: &AppState, form: &ShareForm) -> Result<Grantee, AppError> {
    if form.everyone.as_deref() == Some("yes") {
        return Ok(Grantee::Everyone);
    }
    let name = form.user.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(AppError::BadRequest(
            "Name the user to share with (their user name or e-mail address), or tick \u{201c}everyone\u{201d}."
                .to_string(),
        ));
    }
    state
        .store
        .known_users(store::teams::MAX_USERS_LISTED)
        .await?
        .into_iter()
        .find(|user| user.name.eq_ignore_ascii_case(name) || user.id.as_str() == name)
        .map(|user| Grantee::User(user.id))
        .ok_or_else(|| {
            AppError::BadRequest(format!(
                "No user `{name}` has signed in to this deployment yet; they can be named once they have."
            ))
        })
}

async fn share(
    state: &AppState,
    user: &CurrentUser,
    kind: ItemKind,
    id: &str,
    form: &ShareForm,
) -> Result<(), AppError> {
    let grantee = grantee_of(state, form).await?;
    if grantee == Grantee::User(user.id.clone()) {
        return Err(AppError::BadRequest(
            "This is yours already: share it with someone else.".to_string(),
        ));
    }
    match state.store.share(&user.id, kind, id, &grantee).await? {
        Ok(()) => Ok(()),
        Err(Refusal::Full) => Err(AppError::Conflict(format!(
            "This is shared with {} users already, the most one item can be; unshare one first, or share it with everyone.",
            store::teams::MAX_GRANTS_PER_ITEM
        ))),
        Err(_) => Err(AppError::NotFound(format!("There is no `{id}` of yours."))),
    }
}

/// Removes a grant of an item of the user's; only the owner's key names the item, so anyone
/// else's unshare finds nothing (404).
async fn unshare(
    state: &AppState,
    user: &CurrentUser,
    kind: ItemKind,
    id: &str,
    form: &UnshareForm,
) -> Result<(), AppError> {
    let grantee = Grantee::from_stored(&form.grantee);
    if state.store.unshare(&user.id, kind, id, &grantee).await? {
        Ok(())
    } else {
        Err(AppError::NotFound(format!(
            "There is no such grant of `{id}`."
        )))
    }
}

/// Shares a run of the user's (only the owner's key can name it).
async fn run_share(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    Form(form): Form<ShareForm>,
) -> Result<Redirect, AppError> {
    share(&state, &user, ItemKind::Run, &id, &form).await?;
    Ok(Redirect::to(&format!("/runs/{id}#sharing")))
}

async fn run_unshare(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    Form(form): Form<UnshareForm>,
) -> Result<Redirect, AppError> {
    unshare(&state, &user, ItemKind::Run, &id, &form).await?;
    Ok(Redirect::to(&format!("/runs/{id}#sharing")))
}

async fn dataset_share(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    Form(form): Form<ShareForm>,
) -> Result<Redirect, AppError> {
    share(&state, &user, ItemKind::Dataset, &id, &form).await?;
    Ok(Redirect::to(&format!("/datasets/{id}#sharing")))
}

async fn dataset_unshare(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    Form(form): Form<UnshareForm>,
) -> Result<Redirect, AppError> {
    unshare(&state, &user, ItemKind::Dataset, &id, &form).await?;
    Ok(Redirect::to(&format!("/datasets/{id}#sharing")))
}

/// One run of another user on a list.
pub struct OtherRun {
    pub run: RunRow,
    pub owner_name: String,
    pub link: String,
}

/// One dataset of another user on a list.
pub struct OtherDataset {
    pub dataset: DatasetRow,
    pub owner_name: String,
    /// The value the evaluation form takes for it (`<owner>/<id>`).
    pub form_value: String,
}

/// The evaluation form's value of a dataset of another user: `<owner>/<id>` (dataset ids are
/// hex, so the last `/` separates them).
pub fn shared_dataset_value(owner: &UserId, dataset_id: &str) -> String {
    format!("{}/{dataset_id}", owner.as_str())
}

/// The dataset an evaluation form names for `user`: their own (`<id>`), or another user's
/// shared with them (`<owner>/<id>`, checked by the store's grants; used in place: its bytes
/// are not copied).
pub async fn form_dataset(
    state: &AppState,
    user: &CurrentUser,
    value: &str,
) -> Result<Option<DatasetRow>, AppError> {
    match value.rsplit_once('/') {
        None if value.is_empty() => Ok(None),
        None => Ok(state.store.dataset(&user.id, value).await?),
        Some((owner, id)) if owner.chars().count() <= 128 => {
            Ok(
                store::readable_dataset(state.store.as_ref(), &user.id, &UserId::new(owner), id)
                    .await?,
            )
        }
        Some(_) => Ok(None),
    }
}

/// The datasets of other users shared with `user`, for the evaluation form.
pub async fn shared_datasets(
    state: &AppState,
    user: &UserId,
) -> Result<Vec<OtherDataset>, AppError> {
    let names = user_names(state).await?;
    let mut datasets = Vec::new();
    for item in state
        .store
        .shared_with(user, store::teams::MAX_SHARED_LISTED)
        .await?
    {
        if item.kind != ItemKind::Dataset {
            continue;
        }
        if let Some(dataset) =
            store::readable_dataset(state.store.as_ref(), user, &item.owner, &item.id).await?
        {
            datasets.push(OtherDataset {
                owner_name: name_of(&names, &item.owner),
                form_value: shared_dataset_value(&item.owner, &dataset.id),
                dataset,
            });
        }
    }
    Ok(datasets)
}

fn name_of(names: &HashMap<UserId, String>, user: &UserId) -> String {
    names
        .get(user)
        .cloned()
        .unwrap_or_else(|| user.as_str().to_string())
}

#[derive(Template)]
#[template(path = "shared.html")]
struct SharedPage {
    layout: Layout,
    runs: Vec<OtherRun>,
    datasets: Vec<OtherDataset>,
}

/// "Shared with me": other users' runs and datasets this user may read.
async fn shared_list(
    State(state): State<AppState>,
    user: CurrentUser,
    layout: Layout,
) -> Result<Html<SharedPage>, AppError> {
    let names = user_names(&state).await?;
    let mut runs = Vec::new();
    for item in state
        .store
        .shared_with(&user.id, store::teams::MAX_SHARED_LISTED)
        .await?
    {
        if item.kind != ItemKind::Run {
            continue;
        }
        if let Some(run) =
            store::readable_run(state.store.as_ref(), &user.id, &item.owner, &item.id).await?
        {
            runs.push(OtherRun {
                link: super::runs::run_link(&user.id, &item.owner, &run.id),
                owner_name: name_of(&names, &item.owner),
                run,
            });
        }
    }
    let datasets = shared_datasets(&state, &user.id).await?;
    Ok(Html(SharedPage {
        layout,
        runs,
        datasets,
    }))
}

/// Refuses anyone but a facilitator (the role of the verified token).
fn require_facilitator(user: &CurrentUser) -> Result<(), AppError> {
    if user.facilitator {
        Ok(())
    } else {
        Err(AppError::Forbidden(
            "This page is for facilitators: members of the deployment's facilitators group."
                .to_string(),
        ))
    }
}

/// One user on the facilitator's page.
pub struct TeamMember {
    pub id: String,
    pub name: String,
    pub usage: Usage,
    pub quotas: Quotas,
    /// The quotas were set for this user (not the server's defaults).
    pub custom: bool,
}

#[derive(Template)]
#[template(path = "team.html")]
struct TeamPage {
    layout: Layout,
    members: Vec<TeamMember>,
    runs: Vec<OtherRun>,
    datasets: Vec<OtherDataset>,
    ceilings: UserQuotas,
}

/// The facilitator's view: every user's usage against their quotas, their newest runs (read
/// only, cancel) and their datasets.
async fn team_page(
    State(state): State<AppState>,
    user: CurrentUser,
    layout: Layout,
) -> Result<Html<TeamPage>, AppError> {
    require_facilitator(&user)?;
    let users = state
        .store
        .known_users(store::teams::MAX_USERS_LISTED)
        .await?;
    let mut members = Vec::new();
    let mut runs = Vec::new();
    let mut datasets = Vec::new();
    for member in users {
        let usage = crate::safety::usage_of(&state, &member.id).await?;
        let quotas = crate::safety::quotas_for(&state, &member.id).await?;
        let custom = state.store.user_quotas(&member.id).await?.is_some();
        for run in state.store.runs(&member.id, TEAM_RUNS_PER_USER).await? {
            runs.push(OtherRun {
                link: super::runs::run_link(&user.id, &member.id, &run.id),
                owner_name: member.name.clone(),
                run,
            });
        }
        for dataset in state.store.datasets(&member.id).await? {
            datasets.push(OtherDataset {
                form_value: shared_dataset_value(&member.id, &dataset.id),
                owner_name: member.name.clone(),
                dataset,
            });
        }
        members.push(TeamMember {
            id: member.id.as_str().to_string(),
            name: member.name,
            usage,
            quotas,
            custom,
        });
    }
    runs.sort_by(|a, b| b.run.created.cmp(&a.run.created));
    Ok(Html(TeamPage {
        layout,
        members,
        runs,
        datasets,
        ceilings: crate::safety::QUOTA_CEILINGS,
    }))
}

#[derive(Deserialize)]
struct QuotaForm {
    runs_per_user: String,
    models_per_run: String,
    concurrency_per_run: String,
    datasets_per_user: String,
    dataset_mib_per_user: String,
}

/// Sets a user's quotas (stored: they hold across restarts and tasks).
async fn team_quotas(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    Form(form): Form<QuotaForm>,
) -> Result<Redirect, AppError> {
    require_facilitator(&user)?;
    let member = UserId::new(id);
    if !state
        .store
        .known_users(store::teams::MAX_USERS_LISTED)
        .await?
        .iter()
        .any(|known| known.id == member)
    {
        return Err(AppError::NotFound("There is no such user.".to_string()));
    }
    let whole = |name: &str, text: &str| -> Result<u64, AppError> {
        text.trim()
            .parse::<u64>()
            .map_err(|_| AppError::BadRequest(format!("{name}: `{text}` is not a whole number")))
    };
    let quotas = UserQuotas {
        runs_per_user: whole("runs at a time", &form.runs_per_user)? as usize,
        models_per_run: whole("models per run", &form.models_per_run)? as usize,
        concurrency_per_run: whole("concurrency per model", &form.concurrency_per_run)? as usize,
        datasets_per_user: whole("datasets", &form.datasets_per_user)? as usize,
        dataset_bytes_per_user: whole("dataset MiB", &form.dataset_mib_per_user)?
            .saturating_mul(1 << 20),
    };
    quotas
        .check()
        .map_err(|why| AppError::BadRequest(format!("The quotas were not set: {why}.")))?;
    state
        .store
        .set_user_quotas(&member, &serde_json::to_value(quotas).unwrap_or_default())
        .await?;
    Ok(Redirect::to("/team#users"))
}

/// One line of a challenge's leaderboard.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BoardRow {
    /// 1-based rank; `None` while the participant's runs are all still going.
    pub rank: Option<usize>,
    pub participant: String,
    pub run_id: String,
    pub run_name: String,
    /// The link to the run, when the viewer may read it (their own; a facilitator: any).
    pub link: Option<String>,
    pub status: &'static str,
    pub score: Option<f64>,
    pub cost_usd: Option<f64>,
    pub elapsed_secs: Option<f64>,
    /// The winning column: prompt variant label and template, model.
    pub variant: String,
    pub template: String,
    pub model: String,
}

/// The best column of a run on `score`: (mean, variant, model).
fn best_column(summary: &Summary, score: &str) -> Option<(f64, String, String)> {
    summary
        .models
        .iter()
        .filter_map(|line| line.mean(score).map(|mean| (mean, line)))
        .filter(|(mean, _)| mean.is_finite())
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(mean, line)| (mean, line.variant.clone(), line.model.clone()))
}

/// The template text of a run's variant (the stored request's), empty when unknown.
fn variant_template(run: &RunRow, variant: &str) -> String {
    engine::plan::EvalRequest::from_config(&run.config)
        .ok()
        .and_then(|request| {
            let several = request.templates.len() > 1;
            request
                .templates
                .iter()
                .enumerate()
                .find(|(i, template)| {
                    template.label == variant
                        || (!several && variant.is_empty() && *i == 0)
                        || (template.label.is_empty() && engine::plan::default_label(*i) == variant)
                })
                .map(|(_, template)| template.text.clone())
        })
        .unwrap_or_default()
}

/// The leaderboard of `challenge`: per participant their best ended run by score (highest),
/// then cost (lowest), then time (shortest); participants whose runs are all still going come
/// last, unranked.
pub async fn leaderboard(
    state: &AppState,
    viewer: &CurrentUser,
    challenge: &ChallengeRow,
) -> Result<Vec<BoardRow>, AppError> {
    let names = user_names(state).await?;
    let mut best: HashMap<UserId, BoardRow> = HashMap::new();
    let mut pending: HashMap<UserId, BoardRow> = HashMap::new();
    for submission in state.store.submissions(&challenge.id).await? {
        let Some(run) = state
            .store
            .run(&submission.participant, &submission.run_id)
            .await?
        else {
            continue;
        };
        let link = (submission.participant == viewer.id || viewer.facilitator)
            .then(|| super::runs::run_link(&viewer.id, &submission.participant, &run.id));
        let mut row = BoardRow {
            rank: None,
            participant: name_of(&names, &submission.participant),
            run_id: run.id.clone(),
            run_name: run.display_name().to_string(),
            link,
            status: run.status.as_str(),
            score: None,
            cost_usd: None,
            elapsed_secs: None,
            variant: String::new(),
            template: String::new(),
            model: String::new(),
        };
        let summary =
            super::runs::stored_summary(&run).filter(|_| run.status != RunStatus::Running);
        let Some((summary, (score, variant, model))) = summary.as_ref().and_then(|summary| {
            best_column(summary, &challenge.spec.metric).map(|best| (summary, best))
        }) else {
            pending.entry(submission.participant).or_insert(row);
            continue;
        };
        row.score = Some(score);
        row.cost_usd = summary.total_cost_usd();
        row.elapsed_secs = Some(summary.elapsed_secs);
        row.template = variant_template(&run, &variant);
        row.variant = variant;
        row.model = model;
        let better = match best.get(&submission.participant) {
            None => true,
            Some(current) => ranks_before(&row, current),
        };
        if better {
            best.insert(submission.participant, row);
        }
    }
    let mut rows: Vec<BoardRow> = best.into_values().collect();
    rows.sort_by(|a, b| {
        if ranks_before(a, b) {
            std::cmp::Ordering::Less
        } else if ranks_before(b, a) {
            std::cmp::Ordering::Greater
        } else {
            a.participant.cmp(&b.participant)
        }
    });
    for (i, row) in rows.iter_mut().enumerate() {
        row.rank = Some(i + 1);
    }
    let ranked: std::collections::HashSet<String> =
        rows.iter().map(|row| row.participant.clone()).collect();
    let mut waiting: Vec<BoardRow> = pending
        .into_values()
        .filter(|row| !ranked.contains(&row.participant))
        .collect();
    waiting.sort_by(|a, b| a.participant.cmp(&b.participant));
    rows.extend(waiting);
    Ok(rows)
}

/// Whether `a` ranks before `b`: higher score, then lower cost (unknown cost last), then
/// shorter time.
fn ranks_before(a: &BoardRow, b: &BoardRow) -> bool {
    let score = |row: &BoardRow| row.score.unwrap_or(f64::NEG_INFINITY);
    let cost = |row: &BoardRow| row.cost_usd.unwrap_or(f64::INFINITY);
    let secs = |row: &BoardRow| row.elapsed_secs.unwrap_or(f64::INFINITY);
    score(b)
        .total_cmp(&score(a))
        .then_with(|| cost(a).total_cmp(&cost(b)))
        .then_with(|| secs(a).total_cmp(&secs(b)))
        .is_lt()
}

/// The score names a challenge of `task` may rank by.
fn task_scores(task: &str) -> Vec<&'static str> {
    fmeval_scoring::metrics::Task::ALL
        .iter()
        .find(|candidate| candidate.as_str() == task)
        .map(|task| {
            task.metrics()
                .iter()
                .flat_map(|metric| metric.score_names().iter().copied())
                .collect()
        })
        .unwrap_or_default()
}

#[derive(Template)]
#[template(path = "challenges.html")]
struct ChallengesPage {
    layout: Layout,
    challenges: Vec<ChallengeRow>,
    /// The facilitator's own datasets, for a new challenge.
    datasets: Vec<DatasetRow>,
    tasks: Vec<&'static str>,
    scores: Vec<&'static str>,
}

async fn challenges_list(
    State(state): State<AppState>,
    user: CurrentUser,
    layout: Layout,
) -> Result<Html<ChallengesPage>, AppError> {
    let datasets = if user.facilitator {
        state.store.datasets(&user.id).await?
    } else {
        Vec::new()
    };
    let mut scores: Vec<&'static str> = Vec::new();
    for task in fmeval_scoring::metrics::Task::ALL {
        for score in task_scores(task.as_str()) {
            if !scores.contains(&score) {
                scores.push(score);
            }
        }
    }
    Ok(Html(ChallengesPage {
        layout,
        challenges: state.store.challenges().await?,
        datasets,
        tasks: fmeval_scoring::metrics::Task::ALL
            .iter()
            .map(|task| task.as_str())
            .collect(),
        scores,
    }))
}

#[derive(Deserialize)]
struct ChallengeForm {
    title: String,
    dataset: String,
    task: String,
    metric: String,
    #[serde(default)]
    models: String,
}

/// Publishes a challenge (facilitators only) on one of the facilitator's datasets, which is
/// shared with everyone so that participants can evaluate it.
async fn challenges_create(
    State(state): State<AppState>,
    user: CurrentUser,
    Form(form): Form<ChallengeForm>,
) -> Result<Redirect, AppError> {
    require_facilitator(&user)?;
    if state
        .store
        .dataset(&user.id, &form.dataset)
        .await?
        .is_none()
    {
        return Err(AppError::BadRequest(
            "Choose one of your datasets for the challenge.".to_string(),
        ));
    }
    if !task_scores(&form.task).contains(&form.metric.as_str()) {
        return Err(AppError::BadRequest(format!(
            "`{}` is not a score of the task type `{}`.",
            form.metric, form.task
        )));
    }
    let spec = ChallengeSpec {
        title: form.title.trim().to_string(),
        dataset_owner: user.id.clone(),
        dataset_id: form.dataset.clone(),
        task: form.task.clone(),
        metric: form.metric.clone(),
        models: form
            .models
            .split(',')
            .map(str::trim)
            .filter(|model| !model.is_empty())
            .map(str::to_string)
            .collect(),
    };
    spec.check()
        .map_err(|why| AppError::BadRequest(format!("The challenge was not published: {why}.")))?;
    match state
        .store
        .share(
            &user.id,
            ItemKind::Dataset,
            &form.dataset,
            &Grantee::Everyone,
        )
        .await?
    {
        Ok(()) | Err(Refusal::Full) => {}
        Err(_) => {
            return Err(AppError::BadRequest(
                "Choose one of your datasets for the challenge.".to_string(),
            ));
        }
    }
    let challenge = state
        .store
        .create_challenge(&user.id, &spec)
        .await?
        .map_err(|_| {
            AppError::Conflict(format!(
                "{} challenges are open, the most at once; close one first.",
                store::teams::MAX_OPEN_CHALLENGES
            ))
        })?;
    Ok(Redirect::to(&format!("/challenges/{}", challenge.id)))
}

async fn find_challenge(state: &AppState, id: &str) -> Result<ChallengeRow, AppError> {
    state
        .store
        .challenge(id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("There is no challenge `{id}`.")))
}

#[derive(Template)]
#[template(path = "challenge.html")]
struct ChallengePage {
    layout: Layout,
    challenge: ChallengeRow,
    dataset_name: String,
    /// The value of the dataset in the evaluation form (to start a run for the challenge).
    dataset_value: String,
    board: Vec<BoardRow>,
    /// The user's own ended runs that fit the challenge, to submit.
    candidates: Vec<RunRow>,
    /// The user published it (closes it).
    is_owner: bool,
}

/// Whether `run` fits `challenge`: the challenge's dataset and task type, and its models when
/// it names some.
fn fits(run: &RunRow, challenge: &ChallengeRow) -> bool {
    let config = &run.config;
    let dataset_matches = config
        .get("dataset")
        .and_then(serde_json::Value::as_str)
        .and_then(|path| {
            std::path::Path::new(path)
                .file_stem()?
                .to_str()
                .map(str::to_string)
        })
        .is_some_and(|stem| stem == challenge.spec.dataset_id);
    let task_matches = config
        .get("task")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("qa")
        == challenge.spec.task;
    let models_match = challenge.spec.models.is_empty() || {
        let mut models: Vec<&str> = config
            .get("models")
            .and_then(serde_json::Value::as_array)
            .map(|models| {
                models
                    .iter()
                    .filter_map(serde_json::Value::as_str)
                    .collect()
            })
            .unwrap_or_default();
        let mut wanted: Vec<&str> = challenge.spec.models.iter().map(String::as_str).collect();
        models.sort_unstable();
        wanted.sort_unstable();
        models == wanted
    };
    dataset_matches && task_matches && models_match
}

async fn challenge_show(
    State(state): State<AppState>,
    user: CurrentUser,
    layout: Layout,
    Path(id): Path<String>,
) -> Result<Html<ChallengePage>, AppError> {
    let challenge = find_challenge(&state, &id).await?;
    let dataset_name = state
        .store
        .dataset(&challenge.spec.dataset_owner, &challenge.spec.dataset_id)
        .await?
        .map_or_else(|| challenge.spec.dataset_id.clone(), |dataset| dataset.name);
    let dataset_value = if challenge.spec.dataset_owner == user.id {
        challenge.spec.dataset_id.clone()
    } else {
        shared_dataset_value(&challenge.spec.dataset_owner, &challenge.spec.dataset_id)
    };
    let board = leaderboard(&state, &user, &challenge).await?;
    let candidates = if challenge.open {
        state
            .store
            .runs(&user.id, 100)
            .await?
            .into_iter()
            .filter(|run| fits(run, &challenge))
            .collect()
    } else {
        Vec::new()
    };
    Ok(Html(ChallengePage {
        is_owner: challenge.owner == user.id,
        layout,
        dataset_name,
        dataset_value,
        board,
        candidates,
        challenge,
    }))
}

#[derive(Deserialize)]
struct SubmitForm {
    run: String,
}

/// Submits one of the user's runs (on the challenge's dataset and task, and its models).
async fn challenge_submit(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    Form(form): Form<SubmitForm>,
) -> Result<Redirect, AppError> {
    let challenge = find_challenge(&state, &id).await?;
    let run = super::runs::find_run(&state, &user.id, &form.run).await?;
    if !fits(&run, &challenge) {
        return Err(AppError::BadRequest(
            "This run does not fit the challenge: it must evaluate the challenge's dataset with its task type (and its models, when it names some)."
                .to_string(),
        ));
    }
    match state.store.submit_run(&id, &user.id, &run.id).await? {
        Ok(()) => Ok(Redirect::to(&format!("/challenges/{id}"))),
        Err(Refusal::Closed) => Err(AppError::Conflict("This challenge is closed.".to_string())),
        Err(Refusal::Full) => Err(AppError::Conflict(format!(
            "This challenge holds {} runs, the most it takes.",
            store::teams::MAX_SUBMISSIONS
        ))),
        Err(Refusal::NotFound) => Err(AppError::NotFound(format!("There is no run `{}`.", run.id))),
    }
}

async fn challenge_close(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Redirect, AppError> {
    require_facilitator(&user)?;
    if !state.store.close_challenge(&user.id, &id).await? {
        return Err(AppError::NotFound(format!(
            "You have no open challenge `{id}`."
        )));
    }
    Ok(Redirect::to(&format!("/challenges/{id}")))
}

/// The leaderboard as CSV (the facilitator's export): rank, participant, run, score, cost,
/// seconds, variant, model; cells are escaped like the records' CSV.
async fn challenge_csv(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    require_facilitator(&user)?;
    let challenge = find_challenge(&state, &id).await?;
    let board = leaderboard(&state, &user, &challenge).await?;
    let mut writer = csv::Writer::from_writer(Vec::new());
    let number = |value: Option<f64>| value.map(|value| value.to_string()).unwrap_or_default();
    let _ = writer.write_record([
        "rank",
        "participant",
        "run_id",
        "run_name",
        "status",
        challenge.spec.metric.as_str(),
        "cost_usd",
        "elapsed_secs",
        "variant",
        "model",
    ]);
    for row in &board {
        let fields = [
            row.rank.map(|rank| rank.to_string()).unwrap_or_default(),
            csv_text_cell(&row.participant),
            row.run_id.clone(),
            csv_text_cell(&row.run_name),
            row.status.to_string(),
            number(row.score),
            number(row.cost_usd),
            number(row.elapsed_secs),
            csv_text_cell(&row.variant),
            csv_text_cell(&row.model),
        ];
        let _ = writer.write_record(fields);
    }
    let body = writer.into_inner().unwrap_or_default();
    let safe: String = id.chars().filter(char::is_ascii_alphanumeric).collect();
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"challenge-{safe}.csv\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// Server-sent events of a challenge's leaderboard: a `board` event (the rows as JSON) at
/// once and whenever it changes, read from the store every second, like a run's progress.
async fn challenge_events(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let challenge = find_challenge(&state, &id).await?;
    let shutdown = state.runs.shutdown_token();
    let started = std::time::Instant::now();
    let stream = (state, user, challenge, None::<String>, shutdown, false);
    let events = futures::stream::unfold(
        stream,
        move |(state, user, challenge, last, shutdown, started_once)| async move {
            let mut last = last;
            loop {
                if started_once || last.is_some() {
                    let stop = tokio::select! {
                        () = tokio::time::sleep(BOARD_POLL) => false,
                        () = shutdown.cancelled() => true,
                    };
                    if stop || started.elapsed() > BOARD_STREAM_LIMIT {
                        return None;
                    }
                }
                let board = match leaderboard(&state, &user, &challenge).await {
                    Ok(board) => board,
                    Err(_) => return None,
                };
                let data = serde_json::to_string(&board).unwrap_or_default();
                if last.as_deref() != Some(data.as_str()) {
                    last = Some(data.clone());
                    let event = Event::default().event("board").data(data);
                    return Some((
                        Ok::<Event, std::convert::Infallible>(event),
                        (state, user, challenge, last, shutdown, true),
                    ));
                }
            }
        },
    );
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(participant: &str, score: Option<f64>, cost: Option<f64>, secs: f64) -> BoardRow {
        BoardRow {
            rank: None,
            participant: participant.to_string(),
            run_id: format!("run-{participant}"),
            run_name: String::new(),
            link: None,
            status: "finished",
            score,
            cost_usd: cost,
            elapsed_secs: Some(secs),
            variant: String::new(),
            template: String::new(),
            model: String::new(),
        }
    }

    #[test]
    fn ranks_by_score_then_cost_then_time() {
        let best = row("a", Some(0.9), Some(2.0), 50.0);
        let cheaper = row("b", Some(0.8), Some(0.1), 1.0);
        let same_cost_faster = row("c", Some(0.8), Some(0.1), 0.5);
        let unknown_cost = row("d", Some(0.8), None, 0.1);
        assert!(ranks_before(&best, &cheaper));
        assert!(!ranks_before(&cheaper, &best));
        assert!(ranks_before(&same_cost_faster, &cheaper));
        assert!(ranks_before(&cheaper, &unknown_cost));
        assert!(!ranks_before(&cheaper, &cheaper));
        // No score ranks after any score.
        assert!(ranks_before(&unknown_cost, &row("e", None, Some(0.0), 0.0)));
    }

    #[test]
    fn challenge_scores_are_the_task_types_own() {
        assert!(task_scores("qa").contains(&"f1_score"));
        assert!(task_scores("summarization").contains(&"rouge1"));
        assert!(!task_scores("qa").contains(&"rouge1"));
        assert!(task_scores("nonsense").is_empty());
    }

    fn challenge(models: &[&str]) -> ChallengeRow {
        ChallengeRow {
            id: "c".into(),
            owner: UserId::new("f"),
            created: String::new(),
            open: true,
            spec: ChallengeSpec {
                title: "t".into(),
                dataset_owner: UserId::new("f"),
                dataset_id: "abc123".into(),
                task: "qa".into(),
                metric: "f1_score".into(),
                models: models.iter().map(|m| m.to_string()).collect(),
            },
        }
    }

    fn run(config: serde_json::Value) -> RunRow {
        RunRow {
            id: "r".into(),
            owner: UserId::new("p"),
            created: String::new(),
            config,
            status: RunStatus::Finished,
            total: None,
            summary: None,
            name: String::new(),
            notes: String::new(),
        }
    }

    #[test]
    fn a_run_fits_a_challenge_by_dataset_task_and_fixed_models() {
        let fitting = serde_json::json!({
            "dataset": "/data/datasets/abc123.jsonl", "task": "qa", "models": ["m2", "m1"]});
        assert!(fits(&run(fitting.clone()), &challenge(&[])));
        assert!(fits(&run(fitting.clone()), &challenge(&["m1", "m2"])));
        assert!(!fits(&run(fitting), &challenge(&["m1"])));
        assert!(!fits(
            &run(serde_json::json!({"dataset": "/data/datasets/other.jsonl", "task": "qa"})),
            &challenge(&[])
        ));
        assert!(!fits(
            &run(
                serde_json::json!({"dataset": "/data/datasets/abc123.jsonl", "task": "summarization"})
            ),
            &challenge(&[])
        ));
    }
}
