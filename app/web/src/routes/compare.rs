//! Compare two or more runs side by side: the configuration keys that differ, each model's
//! mean per score with its delta from the first run, and, against a baseline run chosen by
//! the user, per record and for one chosen score: improved, regressed or unchanged, counted
//! per run, with the records that changed (or only those that regressed, or improved) listed.
//!
//! Invariants: only the user's own runs can be compared (the store scopes every read); the
//! record comparison reads each run's score index of the chosen score (`Store::score_matrix`:
//! one small cell per record and column, never a record body) and then the rows of the listed
//! records alone, by key.

use std::collections::{BTreeMap, BTreeSet};

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::routing::get;

use crate::error::AppError;
use crate::page::{Html, Layout};
use crate::session::CurrentUser;
use crate::state::AppState;
use store::{RecordKey, RecordRow, RunRow};

/// The most runs one comparison shows.
pub const MAX_RUNS: usize = 6;
/// Differing records listed at most.
const MAX_LISTED: usize = 200;

/// Characters of a prompt shown per record.
const PROMPT_CHARS: usize = 160;
/// Characters of an output shown per record and run.
const OUTPUT_CHARS: usize = 120;

/// Per (variant, model, dataset index): the record's cell in each run (rows stored before
/// variants existed belong to the default variant).
type CellsByRecord = BTreeMap<(String, String, usize), Vec<Option<Cell>>>;

/// A listed record before its rows are read: its column title, dataset index, cell in each
/// run and change from the baseline in each run.
type ListedCells = (String, usize, Vec<Option<Cell>>, Vec<Change>);

/// One record of one run, as compared: the chosen score, and where its row is.
#[derive(Clone)]
struct Cell {
    value: Option<f64>,
    failed: bool,
    key: RecordKey,
}

/// How a record of a run compares with the same record of the baseline run, on the chosen
/// score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A higher score, or a success where the baseline failed.
    Improved,
    /// A lower score, or a failure where the baseline succeeded.
    Regressed,
    /// The same score (or both failed).
    Unchanged,
    /// Missing from one of the runs, or without the score: nothing to compare.
    NotComparable,
}

impl Change {
    fn of(baseline: Option<&Cell>, cell: Option<&Cell>) -> Change {
        match (baseline, cell) {
            (Some(base), Some(cell)) => match (base.failed, cell.failed, base.value, cell.value) {
                (true, true, ..) => Change::Unchanged,
                (true, false, ..) => Change::Improved,
                (false, true, ..) => Change::Regressed,
                (false, false, Some(base), Some(value)) if value > base + 1e-12 => Change::Improved,
                (false, false, Some(base), Some(value)) if value < base - 1e-12 => {
                    Change::Regressed
                }
                (false, false, Some(_), Some(_)) => Change::Unchanged,
                _ => Change::NotComparable,
            },
            _ => Change::NotComparable,
        }
    }

    fn class(self) -> &'static str {
        match self {
            Change::Improved => "delta-up",
            Change::Regressed => "delta-down",
            Change::Unchanged | Change::NotComparable => "",
        }
    }
}

/// How the records of one run compare with the baseline's.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChangeCounts {
    pub improved: usize,
    pub regressed: usize,
    pub unchanged: usize,
    pub not_comparable: usize,
}

impl ChangeCounts {
    fn add(&mut self, change: Change) {
        match change {
            Change::Improved => self.improved += 1,
            Change::Regressed => self.regressed += 1,
            Change::Unchanged => self.unchanged += 1,
            Change::NotComparable => self.not_comparable += 1,
        }
    }
}

/// Which records the list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Show {
    /// Records that changed in any run.
    Differ,
    /// Records that regressed in any run.
    Regressed,
    /// Records that improved in any run.
    Improved,
}

impl Show {
    pub fn as_str(self) -> &'static str {
        match self {
            Show::Differ => "differ",
            Show::Regressed => "regressed",
            Show::Improved => "improved",
        }
    }
}

/// The baseline, the score and the filter of a comparison (from the query; unknown values
/// fall back to the first run, the first score and "differ").
pub struct CompareView {
    /// The baseline run's position in the list.
    pub baseline: usize,
    /// The score records are compared on.
    pub metric: String,
    /// Which records are listed.
    pub show: Show,
}

impl CompareView {
    fn of(params: &CompareParams, runs: &[RunRow], score_names: &[String]) -> CompareView {
        CompareView {
            baseline: params
                .baseline
                .as_ref()
                .and_then(|id| runs.iter().position(|run| run.id == *id))
                .unwrap_or(0),
            metric: params
                .metric
                .clone()
                .filter(|metric| score_names.contains(metric))
                .or_else(|| score_names.first().cloned())
                .unwrap_or_default(),
            show: match params.show.as_deref() {
                Some("regressed") => Show::Regressed,
                Some("improved") => Show::Improved,
                _ => Show::Differ,
            },
        }
    }
}

/// What the query asks besides the runs.
#[derive(Default)]
struct CompareParams {
    baseline: Option<String>,
    metric: Option<String>,
    show: Option<String>,
}

use crate::chart::shorten;

pub fn routes() -> Router<AppState> {
    Router::new().route("/compare", get(compare_show))
}

/// A configuration key and its value in each run.
pub struct ConfigRow {
    pub key: String,
    pub values: Vec<String>,
    pub differs: bool,
}

/// A model × score line: the mean in each run and the delta from the first run.
pub struct MetricRow {
    pub model: String,
    pub score: String,
    pub means: Vec<Option<f64>>,
}

impl MetricRow {
    /// The mean in run `run_idx` as text.
    pub fn mean_text(&self, run_idx: &usize) -> String {
        self.means
            .get(*run_idx)
            .copied()
            .flatten()
            .map_or_else(|| "-".to_string(), |mean| format!("{mean:.4}"))
    }

    /// The delta of run `run_idx` from the baseline run, as text, and its direction.
    pub fn delta(&self, run_idx: &usize, baseline: &usize) -> (String, &'static str) {
        match (
            self.means.get(*baseline).copied().flatten(),
            self.means.get(*run_idx).copied().flatten(),
        ) {
            (Some(first), Some(mean)) if run_idx != baseline => {
                let delta = mean - first;
                let class = if delta > 1e-12 {
                    "delta-up"
                } else if delta < -1e-12 {
                    "delta-down"
                } else {
                    ""
                };
                (format!("{delta:+.4}"), class)
            }
            _ => (String::new(), ""),
        }
    }
}

/// A listed record: its prompt and its cell in each run.
pub struct RecordDiff {
    pub model: String,
    pub index: usize,
    pub prompt: String,
    pub cells: Vec<CellView>,
}

/// A record's chosen score and output in one run, and how it compares with the baseline.
pub struct CellView {
    pub value: String,
    pub output: String,
    pub class: &'static str,
}

#[derive(Template)]
#[template(path = "compare.html")]
struct ComparePage {
    layout: Layout,
    runs: Vec<RunRow>,
    /// Each run's value in the form (`<id>`, or `<owner>/<id>` for a run shared with the user)
    /// and its page.
    run_values: Vec<String>,
    run_links: Vec<String>,
    config: Vec<ConfigRow>,
    metrics: Vec<MetricRow>,
    score_names: Vec<String>,
    view: CompareView,
    counts: Vec<ChangeCounts>,
    records: Vec<RecordDiff>,
    n_matching: usize,
}

fn value_text(value: Option<&serde_json::Value>) -> String {
    match value {
        None | Some(serde_json::Value::Null) => "-".to_string(),
        Some(serde_json::Value::String(text)) => text.clone(),
        Some(serde_json::Value::Array(values)) => values
            .iter()
            .map(|value| value_text(Some(value)))
            .collect::<Vec<_>>()
            .join(", "),
        Some(other) => other.to_string(),
    }
}

async fn compare_show(
    State(state): State<AppState>,
    user: CurrentUser,
    layout: Layout,
    RawQuery(query): RawQuery,
) -> Result<Html<ComparePage>, AppError> {
    let query = Bytes::from(query.unwrap_or_default());
    let mut ids: Vec<String> = Vec::new();
    let mut params = CompareParams::default();
    for (name, value) in form_urlencoded::parse(&query) {
        match name.as_ref() {
            "run" if !ids.contains(&value.to_string()) => ids.push(value.into_owned()),
            "baseline" => params.baseline = Some(value.into_owned()),
            "metric" => params.metric = Some(value.into_owned()),
            "show" => params.show = Some(value.into_owned()),
            _ => {}
        }
    }
    if ids.len() < 2 {
        return Err(AppError::BadRequest(
            "Choose at least two runs to compare (tick them in the history).".to_string(),
        ));
    }
    if ids.len() > MAX_RUNS {
        return Err(AppError::BadRequest(format!(
            "At most {MAX_RUNS} runs can be compared at once."
        )));
    }
    // A run of the user's (`<id>`), or another user's they may read (`<owner>/<id>`: shared
    // with them, or any for a facilitator): compared with their own, never changed.
    let mut runs = Vec::with_capacity(ids.len());
    let mut run_values = Vec::with_capacity(ids.len());
    let mut run_links = Vec::with_capacity(ids.len());
    for value in &ids {
        let (owner, id) = match value.rsplit_once('/') {
            Some((owner, id)) => (super::runs::owner_of(&user, Some(owner))?, id),
            None => (user.id.clone(), value.as_str()),
        };
        let (run, _) = super::runs::read_run(&state, &user, &owner, id).await?;
        run_links.push(super::runs::run_link(&user.id, &owner, &run.id));
        run_values.push(value.clone());
        runs.push(run);
    }

    // Configuration: every key of any run, those that differ first; datasets by the names they
    // were uploaded with.
    let names = super::runs::dataset_names(&state, &user.id).await?;
    let keys: BTreeSet<String> = runs
        .iter()
        .filter_map(|run| run.config.as_object())
        .flat_map(|object| object.keys().cloned())
        .collect();
    let mut config: Vec<ConfigRow> = keys
        .into_iter()
        .map(|key| {
            let values: Vec<String> = runs
                .iter()
                .map(|run| match run.config.get(&key) {
                    Some(serde_json::Value::String(path)) if key == "dataset" => {
                        names.display(path)
                    }
                    value => value_text(value),
                })
                .collect();
            let differs = values.iter().any(|value| *value != values[0]);
            ConfigRow {
                key,
                values,
                differs,
            }
        })
        .collect();
    config.sort_by_key(|row| !row.differs);

    // Metric means per model and score.
    let summaries: Vec<Option<engine::output::Summary>> =
        runs.iter().map(super::runs::stored_summary).collect();
    let mut lines: BTreeMap<(String, String), Vec<Option<f64>>> = BTreeMap::new();
    for (run_idx, summary) in summaries.iter().enumerate() {
        let Some(summary) = summary else { continue };
        for model in &summary.models {
            for mean in &model.scores {
                // A variant other than the default is named with its model.
                let column = match model.variant.as_str() {
                    "" | engine::runner::DEFAULT_VARIANT => model.model.clone(),
                    variant => format!("{variant} · {}", model.model),
                };
                let means = lines
                    .entry((column, mean.name.clone()))
                    .or_insert_with(|| vec![None; runs.len()]);
                means[run_idx] = Some(mean.value);
            }
        }
    }
    let metrics = lines
        .into_iter()
        .map(|((model, score), means)| MetricRow {
            model,
            score,
            means,
        })
        .collect();

    // Records: the chosen score per (model, dataset index) in each run, against the baseline.
    let score_names: Vec<String> = {
        let mut names: Vec<String> = Vec::new();
        for summary in summaries.iter().flatten() {
            for model in &summary.models {
                for mean in &model.scores {
                    if !names.contains(&mean.name) {
                        names.push(mean.name.clone());
                    }
                }
            }
        }
        names
    };
    let view = CompareView::of(&params, &runs, &score_names);
    let mut per_record: CellsByRecord = BTreeMap::new();
    for (run_idx, (run, summary)) in runs.iter().zip(&summaries).enumerate() {
        let columns = super::side::run_columns(run, summary.as_ref());
        let matrix = state
            .store
            .score_matrix(&run.owner, &run.id, &view.metric)
            .await?;
        for (line, (&position, &index)) in matrix.positions.iter().zip(&matrix.indexes).enumerate()
        {
            for (column, cell) in matrix.line(line).iter().enumerate() {
                let (value, failed) = match *cell {
                    store::Cell::Missing => continue,
                    store::Cell::Failed => (None, true),
                    store::Cell::Unscored => (None, false),
                    store::Cell::Value(value) => (Some(value), false),
                };
                let Some((variant, model)) = columns.get(column) else {
                    continue;
                };
                let variant = match variant.as_str() {
                    "" => engine::runner::DEFAULT_VARIANT.to_string(),
                    variant => variant.to_string(),
                };
                per_record
                    .entry((variant, model.clone(), index))
                    .or_insert_with(|| vec![None; runs.len()])[run_idx] = Some(Cell {
                    value,
                    failed,
                    key: RecordKey {
                        position,
                        model_order: column,
                    },
                });
            }
        }
    }
    let several_variants = per_record
        .keys()
        .any(|(variant, ..)| variant != engine::runner::DEFAULT_VARIANT);
    let mut counts = vec![ChangeCounts::default(); runs.len()];
    let mut listed: Vec<RecordDiff> = Vec::new();
    let mut n_matching = 0;
    // The listed records' cells, then their rows (prompt and outputs), read by key.
    let mut listed_cells: Vec<ListedCells> = Vec::new();
    for ((variant, model, index), cells) in per_record {
        let changes: Vec<Change> = cells
            .iter()
            .map(|cell| Change::of(cells[view.baseline].as_ref(), cell.as_ref()))
            .collect();
        for (run_idx, change) in changes.iter().enumerate() {
            if run_idx != view.baseline {
                counts[run_idx].add(*change);
            }
        }
        let others = || {
            changes
                .iter()
                .enumerate()
                .filter(|(run_idx, _)| *run_idx != view.baseline)
                .map(|(_, change)| *change)
        };
        let shown = match view.show {
            Show::Differ => others().any(|change| change != Change::Unchanged),
            Show::Regressed => others().any(|change| change == Change::Regressed),
            Show::Improved => others().any(|change| change == Change::Improved),
        };
        if !shown {
            continue;
        }
        n_matching += 1;
        if listed_cells.len() < MAX_LISTED {
            listed_cells.push((
                engine::output::column_title(&variant, &model, several_variants),
                index,
                cells,
                changes,
            ));
        }
    }
    let mut stored: Vec<Vec<RecordRow>> = Vec::with_capacity(runs.len());
    for (run_idx, run) in runs.iter().enumerate() {
        let keys: Vec<RecordKey> = listed_cells
            .iter()
            .filter_map(|(_, _, cells, _)| cells[run_idx].as_ref().map(|cell| cell.key))
            .collect();
        stored.push(state.store.records_at(&run.owner, &run.id, &keys).await?);
    }
    let row_of = |run_idx: usize, key: RecordKey| -> Option<&RecordRow> {
        let rows = &stored[run_idx];
        rows.binary_search_by_key(&(key.position, key.model_order), |row| {
            (row.position, row.model_order)
        })
        .ok()
        .map(|found| &rows[found])
    };
    for (model, index, cells, changes) in listed_cells {
        let prompt = cells
            .iter()
            .enumerate()
            .find_map(|(run_idx, cell)| row_of(run_idx, cell.as_ref()?.key))
            .map(|row| shorten(&row.model_input, PROMPT_CHARS))
            .unwrap_or_default();
        listed.push(RecordDiff {
            model,
            index,
            prompt,
            cells: cells
                .into_iter()
                .zip(changes)
                .enumerate()
                .map(|(run_idx, (cell, change))| CellView {
                    value: match &cell {
                        None => "not in this run".to_string(),
                        Some(Cell { failed: true, .. }) => "failed".to_string(),
                        Some(Cell {
                            value: Some(value), ..
                        }) => format!("{value:.4}"),
                        Some(Cell { value: None, .. }) => "-".to_string(),
                    },
                    output: cell
                        .as_ref()
                        .and_then(|cell| row_of(run_idx, cell.key))
                        .map(|row| {
                            shorten(
                                row.model_output
                                    .as_deref()
                                    .or(row.error.as_deref())
                                    .unwrap_or(""),
                                OUTPUT_CHARS,
                            )
                        })
                        .unwrap_or_default(),
                    class: change.class(),
                })
                .collect(),
        });
    }
    Ok(Html(ComparePage {
        layout,
        runs,
        run_values,
        run_links,
        config,
        metrics,
        score_names,
        view,
        counts,
        records: listed,
        n_matching,
    }))
}
