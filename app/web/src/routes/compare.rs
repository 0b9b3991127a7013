//! Compare two or more runs side by side: the configuration keys that differ, each model's
//! mean per score with its delta from the first run, and the records whose scores differ.
//!
//! Invariants: only the user's own runs can be compared (the store scopes every read); the
//! record comparison keeps one small entry (scores only) per (model, record) of each run and
//! stops at [`MAX_COMPARED_ROWS`] rows a run, saying so.

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
use store::{RunRow, StoreError};

/// The most runs one comparison shows.
pub const MAX_RUNS: usize = 6;
/// Rows of a run read for the record comparison at most.
pub const MAX_COMPARED_ROWS: usize = 50_000;
/// Differing records listed at most.
const MAX_LISTED: usize = 200;

/// Per (model, dataset index): the record's prompt (shortened) and its scores in each run.
type ScoresByRecord = BTreeMap<(String, usize), (String, Vec<Option<String>>)>;

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

    /// The delta of run `run_idx` from the first run, as text, and its direction.
    pub fn delta(&self, run_idx: &usize) -> (String, &'static str) {
        match (
            self.means.first().copied().flatten(),
            self.means.get(*run_idx).copied().flatten(),
        ) {
            (Some(first), Some(mean)) if *run_idx > 0 => {
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

/// A record whose scores differ between runs.
pub struct RecordDiff {
    pub model: String,
    pub index: usize,
    pub prompt: String,
    pub scores: Vec<String>,
}

#[derive(Template)]
#[template(path = "compare.html")]
struct ComparePage {
    layout: Layout,
    runs: Vec<RunRow>,
    config: Vec<ConfigRow>,
    metrics: Vec<MetricRow>,
    records: Vec<RecordDiff>,
    n_differing: usize,
    truncated: bool,
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
    for (name, value) in form_urlencoded::parse(&query) {
        if name == "run" && !ids.contains(&value.to_string()) {
            ids.push(value.into_owned());
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
    let mut runs = Vec::with_capacity(ids.len());
    for id in &ids {
        runs.push(super::runs::find_run(&state, &user.id, id).await?);
    }

    // Configuration: every key of any run, those that differ first.
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
                .map(|run| value_text(run.config.get(&key)))
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
                let means = lines
                    .entry((model.model.clone(), mean.name.clone()))
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

    // Records: scores per (model, dataset index) in each run.
    let mut per_record: ScoresByRecord = BTreeMap::new();
    let mut truncated = false;
    for (run_idx, run) in runs.iter().enumerate() {
        let mut n_rows = 0;
        let res = store::for_each_record(state.store.as_ref(), &user.id, &run.id, |row| {
            n_rows += 1;
            if n_rows > MAX_COMPARED_ROWS {
                truncated = true;
                return Err(StoreError::UnknownRun {
                    run_id: String::new(),
                });
            }
            let scores = if row.is_ok() {
                row.scores
                    .iter()
                    .map(|score| format!("{} {:.3}", score.name, score.value.as_f64()))
                    .collect::<Vec<_>>()
                    .join(", ")
            } else {
                "failed".to_string()
            };
            let entry = per_record
                .entry((row.model.clone(), row.index))
                .or_insert_with(|| {
                    let prompt: String = row.model_input.chars().take(160).collect();
                    (prompt, vec![None; runs.len()])
                });
            entry.1[run_idx] = Some(scores);
            Ok(())
        })
        .await;
        match res {
            Ok(()) => {}
            Err(StoreError::UnknownRun { .. }) if truncated => {}
            Err(error) => return Err(error.into()),
        }
    }
    let differing: Vec<RecordDiff> = per_record
        .into_iter()
        .filter(|(_, (_, scores))| scores.iter().any(|score| *score != scores[0]))
        .map(|((model, index), (prompt, scores))| RecordDiff {
            model,
            index,
            prompt,
            scores: scores
                .into_iter()
                .map(|score| score.unwrap_or_else(|| "not in this run".to_string()))
                .collect(),
        })
        .collect();
    let n_differing = differing.len();
    Ok(Html(ComparePage {
        layout,
        runs,
        config,
        metrics,
        records: differing.into_iter().take(MAX_LISTED).collect(),
        n_differing,
        truncated,
    }))
}
