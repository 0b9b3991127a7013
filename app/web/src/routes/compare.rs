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
/// Differing records listed per page (the next ones one link away).
const LISTED_PER_PAGE: usize = 100;

/// Characters of a prompt shown per record.
const PROMPT_CHARS: usize = 160;
/// Characters of an output shown per record and run.
const OUTPUT_CHARS: usize = 120;

/// A listed record before its rows are read: its column title, dataset index, cell in each
/// run and change from the baseline in each run.
type ListedCells = (String, usize, Vec<Option<Cell>>, Vec<Change>);

/// A compared run's (variant, model) columns in column order and its matrix of the score.
type ComparedRun = (Vec<(String, String)>, std::sync::Arc<store::ScoreMatrix>);

/// One record of one run, as compared: the chosen score, and where its row is.
#[derive(Debug, Clone, Copy, PartialEq)]
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
    /// How many matching records the list skips (its page).
    pub from: usize,
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
            from: params.from,
        }
    }

    /// This comparison's address with the list starting after `from` matching records.
    fn link(&self, runs: &[RunRow], run_values: &[String], from: usize) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for value in run_values {
            query.append_pair("run", value);
        }
        if let Some(baseline) = runs.get(self.baseline) {
            query.append_pair("baseline", &baseline.id);
        }
        query.append_pair("metric", &self.metric);
        query.append_pair("show", self.show.as_str());
        if from > 0 {
            query.append_pair("from", &from.to_string());
        }
        format!("/compare?{}", query.finish())
    }
}

/// What the query asks besides the runs.
#[derive(Default)]
struct CompareParams {
    baseline: Option<String>,
    metric: Option<String>,
    show: Option<String>,
    /// Matching records to skip (not a number: none).
    from: usize,
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
    /// The list's previous and next pages, and its first (when this page is past the end).
    previous_link: Option<String>,
    next_link: Option<String>,
    first_link: Option<String>,
}

/// The records of the compared runs joined by (variant, model, dataset index), from each
/// run's score matrix: one sorted list per run of (column key, dataset index, cell), walked
/// together. A few machine words per cell and no allocation per record (a map keyed by the
/// column's strings cost 70 ms a comparison of two 60,000-row runs).
struct Joined {
    /// The (variant, model) keys of every run's columns, sorted (rows stored before variants
    /// existed belong to the default variant).
    keys: Vec<(String, String)>,
    /// Per run: (key's place in `keys`, dataset index, cell), sorted by the first two; a
    /// record stored twice in one run keeps its later position's cell.
    lists: Vec<Vec<(usize, usize, Cell)>>,
}

impl Joined {
    fn of(runs: &[ComparedRun]) -> Joined {
        let key_of = |(variant, model): &(String, String)| {
            let variant = match variant.as_str() {
                "" => engine::runner::DEFAULT_VARIANT.to_string(),
                variant => variant.to_string(),
            };
            (variant, model.clone())
        };
        let mut keys: Vec<(String, String)> = runs
            .iter()
            .flat_map(|(columns, _)| columns.iter().map(key_of))
            .collect();
        keys.sort();
        keys.dedup();
        let lists = runs
            .iter()
            .map(|(columns, matrix)| {
                // The matrix's columns by their key's place, so the list comes out sorted
                // when the dataset indexes ascend with the positions (the sort below then
                // only checks it).
                let mut ranked: Vec<(usize, usize)> = (0..matrix.n_columns)
                    .filter_map(|column| {
                        let key = key_of(columns.get(column)?);
                        Some((keys.binary_search(&key).ok()?, column))
                    })
                    .collect();
                ranked.sort_unstable();
                let mut list = Vec::with_capacity(matrix.positions.len() * ranked.len());
                for &(rank, column) in &ranked {
                    for (line, (&position, &index)) in
                        matrix.positions.iter().zip(&matrix.indexes).enumerate()
                    {
                        let (value, failed) = match matrix.line(line)[column] {
                            store::Cell::Missing => continue,
                            store::Cell::Failed => (None, true),
                            store::Cell::Unscored => (None, false),
                            store::Cell::Value(value) => (Some(value), false),
                        };
                        list.push((
                            rank,
                            index,
                            Cell {
                                value,
                                failed,
                                key: RecordKey {
                                    position,
                                    model_order: column,
                                },
                            },
                        ));
                    }
                }
                // Stable: a record's later positions stay after its earlier ones.
                list.sort_by_key(|(rank, index, _)| (*rank, *index));
                list
            })
            .collect();
        Joined { keys, lists }
    }

    /// Whether any record with a cell is of a variant other than the default.
    fn several_variants(&self) -> bool {
        self.lists
            .iter()
            .flatten()
            .any(|(rank, ..)| self.keys[*rank].0 != engine::runner::DEFAULT_VARIANT)
    }

    /// Calls `visit` with each record's (variant, model), dataset index and its cell in each
    /// run, in (variant, model, dataset index) order.
    fn for_each(&self, mut visit: impl FnMut(&(String, String), usize, &[Option<Cell>])) {
        let mut at = vec![0; self.lists.len()];
        let mut cells: Vec<Option<Cell>> = vec![None; self.lists.len()];
        loop {
            let next = self
                .lists
                .iter()
                .zip(&at)
                .filter_map(|(list, &at)| list.get(at).map(|(rank, index, _)| (*rank, *index)))
                .min();
            let Some((rank, index)) = next else {
                return;
            };
            for ((list, at), slot) in self.lists.iter().zip(at.iter_mut()).zip(cells.iter_mut()) {
                *slot = None;
                while let Some((found_rank, found_index, cell)) = list.get(*at)
                    && (*found_rank, *found_index) == (rank, index)
                {
                    *slot = Some(*cell);
                    *at += 1;
                }
            }
            visit(&self.keys[rank], index, &cells);
        }
    }
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
            "from" => params.from = value.parse().unwrap_or(0),
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
    let mut compared: Vec<ComparedRun> = Vec::with_capacity(runs.len());
    for (run, summary) in runs.iter().zip(&summaries) {
        let columns = super::side::run_columns(run, summary.as_ref());
        let matrix = state
            .store
            .score_matrix(&run.owner, &run.id, &view.metric)
            .await?;
        compared.push((columns, matrix));
    }
    let joined = Joined::of(&compared);
    let several_variants = joined.several_variants();
    let mut counts = vec![ChangeCounts::default(); runs.len()];
    let mut n_matching = 0;
    // The listed records' cells, then their rows (prompt and outputs), read by key.
    let mut listed_cells: Vec<ListedCells> = Vec::new();
    joined.for_each(|(variant, model), index, cells| {
        let baseline = cells[view.baseline].as_ref();
        let mut shown = false;
        for (run_idx, cell) in cells.iter().enumerate() {
            if run_idx == view.baseline {
                continue;
            }
            let change = Change::of(baseline, cell.as_ref());
            counts[run_idx].add(change);
            shown |= match view.show {
                Show::Differ => change != Change::Unchanged,
                Show::Regressed => change == Change::Regressed,
                Show::Improved => change == Change::Improved,
            };
        }
        if !shown {
            return;
        }
        n_matching += 1;
        if n_matching > view.from && listed_cells.len() < LISTED_PER_PAGE {
            listed_cells.push((
                engine::output::column_title(variant, model, several_variants),
                index,
                cells.to_vec(),
                cells
                    .iter()
                    .map(|cell| Change::of(baseline, cell.as_ref()))
                    .collect(),
            ));
        }
    });
    let mut listed: Vec<RecordDiff> = Vec::with_capacity(listed_cells.len());
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
    let past_listed = view.from + listed.len();
    let previous_link = (view.from > 0 && !listed.is_empty()).then(|| {
        view.link(
            &runs,
            &run_values,
            view.from.saturating_sub(LISTED_PER_PAGE),
        )
    });
    let next_link = (n_matching > past_listed).then(|| view.link(&runs, &run_values, past_listed));
    let first_link =
        (listed.is_empty() && n_matching > 0).then(|| view.link(&runs, &run_values, 0));
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
        previous_link,
        next_link,
        first_link,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use store::scores::MatrixEntry;

    /// The join as a map keyed by the columns' strings (what the page did before): the
    /// reference the sorted lists must agree with.
    type JoinedRecord = ((String, String), usize, Vec<Option<Cell>>);

    fn joined_by_map(runs: &[ComparedRun]) -> Vec<JoinedRecord> {
        let mut map: BTreeMap<(String, String, usize), Vec<Option<Cell>>> = BTreeMap::new();
        for (run_idx, (columns, matrix)) in runs.iter().enumerate() {
            for (line, (&position, &index)) in
                matrix.positions.iter().zip(&matrix.indexes).enumerate()
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
                    map.entry((variant, model.clone(), index))
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
        map.into_iter()
            .map(|((variant, model, index), cells)| ((variant, model), index, cells))
            .collect()
    }

    fn matrix(seed: u64, n_records: usize, n_columns: usize, shuffled: bool) -> store::ScoreMatrix {
        let mut state = seed;
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            state >> 33
        };
        let mut entries = Vec::new();
        for position in 0..n_records {
            // Shuffled: dataset indexes that do not ascend with the positions (a sample),
            // and now and then one index at two positions.
            let index = if shuffled {
                (position * 7 + 3) % n_records / 2 * 2
            } else {
                position
            };
            for model_order in 0..n_columns {
                let cell = match next() % 6 {
                    0 => continue,
                    1 => store::Cell::Failed,
                    2 => store::Cell::Unscored,
                    value => store::Cell::Value(value as f64 / 5.0),
                };
                entries.push(MatrixEntry {
                    position,
                    index,
                    model_order,
                    cell,
                });
            }
        }
        store::ScoreMatrix::build(entries)
    }

    fn columns(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(variant, model)| (variant.to_string(), model.to_string()))
            .collect()
    }

    #[test]
    fn the_sorted_join_gives_what_the_map_of_strings_gave() {
        let runs = vec![
            (
                columns(&[("A", "m2"), ("A", "m1"), ("B", "m2"), ("B", "m1")]),
                Arc::new(matrix(1, 300, 4, false)),
            ),
            // Rows of the default variant stored before variants existed, another model, and
            // a column the run's list does not name.
            (
                columns(&[("", "m1"), ("C", "m3")]),
                Arc::new(matrix(2, 280, 3, true)),
            ),
            (
                columns(&[("B", "m1"), ("A", "m1")]),
                Arc::new(matrix(3, 310, 2, true)),
            ),
        ];
        let expected = joined_by_map(&runs);
        let mut seen = Vec::new();
        let joined = Joined::of(&runs);
        joined.for_each(|key, index, cells| seen.push((key.clone(), index, cells.to_vec())));
        assert!(expected.len() > 500, "{}", expected.len());
        assert_eq!(seen.len(), expected.len());
        assert_eq!(seen, expected);
        assert!(joined.several_variants());
        let single = [(columns(&[("", "m1")]), Arc::new(matrix(4, 20, 1, false)))];
        assert!(!Joined::of(&single).several_variants());
    }
}
