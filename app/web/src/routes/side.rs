//! A run's records side by side (`/runs/ID/side`): one record per row, each (variant, model)
//! column's output in full (wrapped, expandable) with its score, the reference beside them.
//! Filters: every record, the records where the columns disagree on the chosen score, the
//! records where one column is worse than another, failures; a text search over prompts,
//! outputs and references; sorted by position or by the difference between two columns.
//!
//! Invariants: only the owner's run is read (the store scopes every call). The filter scan
//! keeps one small entry per record (the chosen score and a failure flag per column, whether
//! the text matched) and stops at [`MAX_SCANNED_ROWS`] rows, saying so; a page reads only its
//! own records' rows.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use serde::Deserialize;

use crate::error::AppError;
use crate::page::{Html, Layout};
use crate::session::CurrentUser;
use crate::state::AppState;
use store::{RecordKey, RecordRow, RunRow, StoreError};

/// Records per page.
pub const RECORDS_PER_PAGE: usize = 10;
/// Rows of a run scanned for the filters at most.
pub const MAX_SCANNED_ROWS: usize = 200_000;
/// The longest search text.
const MAX_SEARCH_CHARS: usize = 200;

pub fn routes() -> Router<AppState> {
    Router::new().route("/runs/{id}/side", get(side_show))
}

/// The query of the page.
#[derive(Debug, Default, Deserialize)]
pub struct SideParams {
    #[serde(default)]
    page: Option<usize>,
    #[serde(default)]
    score: Option<String>,
    #[serde(default)]
    show: Option<String>,
    #[serde(default)]
    a: Option<usize>,
    #[serde(default)]
    b: Option<usize>,
    #[serde(default)]
    sort: Option<String>,
    #[serde(default)]
    q: Option<String>,
}

/// Which records are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Show {
    All,
    Disagree,
    Worse,
    Failed,
}

impl Show {
    fn parse(text: Option<&str>) -> Show {
        match text {
            Some("disagree") => Show::Disagree,
            Some("worse") => Show::Worse,
            Some("failed") => Show::Failed,
            _ => Show::All,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Show::All => "all",
            Show::Disagree => "disagree",
            Show::Worse => "worse",
            Show::Failed => "failed",
        }
    }
}

/// One column's cell of a record.
pub struct SideCell {
    pub output: String,
    pub score: String,
    pub error: Option<String>,
    /// Worse (`delta-down`) or better (`delta-up`) than column A of the comparison.
    pub class: &'static str,
}

/// One record: its position, dataset index, reference, the prompt of each variant, and its
/// cells in column order.
pub struct SideRow {
    pub index: usize,
    pub reference: String,
    pub prompts: Vec<(String, String)>,
    pub cells: Vec<Option<SideCell>>,
}

#[derive(Template)]
#[template(path = "side.html")]
struct SidePage {
    layout: Layout,
    run: RunRow,
    /// Column titles (`variant · model`, or the model alone with one variant).
    columns: Vec<String>,
    score_names: Vec<&'static str>,
    score: String,
    show: Show,
    a: usize,
    b: usize,
    by_difference: bool,
    search: String,
    rows: Vec<SideRow>,
    n_matching: usize,
    page: usize,
    n_pages: usize,
    truncated: bool,
}

impl SidePage {
    /// The link to another page of the same view.
    pub fn page_link(&self, page: usize) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("page", &page.to_string())
            .append_pair("score", &self.score)
            .append_pair("show", self.show.as_str())
            .append_pair("a", &self.a.to_string())
            .append_pair("b", &self.b.to_string())
            .append_pair("q", &self.search);
        if self.by_difference {
            query.append_pair("sort", "difference");
        }
        format!("/runs/{}/side?{}", self.run.id, query.finish())
    }
}

/// What the filter scan keeps of one record.
struct Scanned {
    position: usize,
    /// Per column: the chosen score (`None`: failed or not scored), and whether it failed.
    cells: Vec<Option<(Option<f64>, bool)>>,
    matched: bool,
}

fn cell_value(row: &RecordRow, score: &str) -> (Option<f64>, bool) {
    if !row.is_ok() {
        return (None, true);
    }
    let value = row
        .scores
        .iter()
        .find(|found| found.name == score)
        .map(|found| found.value.as_f64());
    (value, false)
}

/// Whether `text` contains `needle` (already lowercased), ignoring case.
fn contains(text: &str, needle: &str) -> bool {
    needle.is_empty() || text.to_lowercase().contains(needle)
}

/// How column `b` compares with column `a` of a record: positive when `b` is better. A failure
/// counts as below any score.
fn difference(cells: &[Option<(Option<f64>, bool)>], a: usize, b: usize) -> Option<f64> {
    let value = |column: usize| -> Option<f64> {
        match cells.get(column)?.as_ref()? {
            (_, true) => Some(-1.0),
            (value, false) => *value,
        }
    };
    Some(value(b)? - value(a)?)
}

async fn side_show(
    State(state): State<AppState>,
    user: CurrentUser,
    layout: Layout,
    Path(id): Path<String>,
    Query(params): Query<SideParams>,
) -> Result<Html<SidePage>, AppError> {
    let run = super::runs::find_run(&state, &user.id, &id).await?;
    let summary = super::runs::stored_summary(&run);
    let score_names = engine::output::score_names_of_config(&run.config);
    let score = params
        .score
        .clone()
        .filter(|name| score_names.contains(&name.as_str()))
        .or_else(|| score_names.first().map(|name| name.to_string()))
        .unwrap_or_default();
    // Columns from the summary (in column order), else from the configuration.
    let column_keys: Vec<(String, String)> = match &summary {
        Some(summary) => summary
            .models
            .iter()
            .map(|line| (line.variant.clone(), line.model.clone()))
            .collect(),
        // A run still going: its columns as configured.
        None => {
            let strings = |key: &str, field: Option<&str>| -> Vec<String> {
                run.config
                    .get(key)
                    .and_then(serde_json::Value::as_array)
                    .map(|values| {
                        values
                            .iter()
                            .filter_map(|value| match field {
                                Some(field) => value.get(field)?.as_str(),
                                None => value.as_str(),
                            })
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let mut variants = strings("variants", Some("label"));
            if variants.is_empty() {
                variants.push(engine::runner::DEFAULT_VARIANT.to_string());
            }
            let models = strings("models", None);
            variants
                .iter()
                .flat_map(|variant| models.iter().map(|model| (variant.clone(), model.clone())))
                .collect()
        }
    };
    let several_variants = {
        let mut variants: Vec<&str> = column_keys.iter().map(|(v, _)| v.as_str()).collect();
        variants.dedup();
        variants.len() > 1
    };
    let columns: Vec<String> = column_keys
        .iter()
        .map(|(variant, model)| engine::output::column_title(variant, model, several_variants))
        .collect();
    let n_columns = columns.len();
    let column_of = |row: &RecordRow| {
        column_keys
            .iter()
            .position(|(variant, model)| *variant == row.variant && *model == row.model)
            .unwrap_or(row.model_order)
    };
    let show = Show::parse(params.show.as_deref());
    let a = params.a.unwrap_or(0).min(n_columns.saturating_sub(1));
    let b = params.b.unwrap_or(1).min(n_columns.saturating_sub(1));
    let search: String = params
        .q
        .clone()
        .unwrap_or_default()
        .trim()
        .chars()
        .take(MAX_SEARCH_CHARS)
        .collect();
    let needle = search.to_lowercase();
    let by_difference = params.sort.as_deref() == Some("difference");

    // The scan: one entry per record, in position order.
    let mut scanned: Vec<Scanned> = Vec::new();
    let mut n_rows = 0;
    let mut truncated = false;
    let scan = store::for_each_record(state.store.as_ref(), &user.id, &id, |row| {
        n_rows += 1;
        if n_rows > MAX_SCANNED_ROWS {
            truncated = true;
            return Err(StoreError::UnknownRun {
                run_id: String::new(),
            });
        }
        if scanned
            .last()
            .is_none_or(|last| last.position != row.position)
        {
            scanned.push(Scanned {
                position: row.position,
                cells: vec![None; n_columns.max(1)],
                matched: needle.is_empty(),
            });
        }
        let Some(entry) = scanned.last_mut() else {
            return Ok(());
        };
        let column = column_of(&row);
        if let Some(cell) = entry.cells.get_mut(column) {
            *cell = Some(cell_value(&row, &score));
        }
        if !entry.matched {
            entry.matched = contains(&row.model_input, &needle)
                || row
                    .model_output
                    .as_deref()
                    .is_some_and(|output| contains(output, &needle))
                || row
                    .target_output
                    .as_deref()
                    .is_some_and(|target| contains(target, &needle));
        }
        Ok(())
    })
    .await;
    match scan {
        Ok(()) => {}
        Err(StoreError::UnknownRun { .. }) if truncated => {}
        Err(error) => return Err(error.into()),
    }
    let mut matching: Vec<&Scanned> = scanned
        .iter()
        .filter(|entry| entry.matched)
        .filter(|entry| match show {
            Show::All => true,
            Show::Failed => entry
                .cells
                .iter()
                .any(|cell| cell.is_some_and(|(_, failed)| failed)),
            Show::Disagree => {
                let values: Vec<Option<(Option<f64>, bool)>> = entry.cells.clone();
                values.iter().any(|cell| *cell != values[0])
            }
            Show::Worse => difference(&entry.cells, a, b).is_some_and(|delta| delta < -1e-12),
        })
        .collect();
    if by_difference {
        // Most worse first (b − a ascending); records without both cells last.
        matching.sort_by(|x, y| {
            let key = |entry: &Scanned| difference(&entry.cells, a, b).unwrap_or(f64::INFINITY);
            key(x).total_cmp(&key(y)).then(x.position.cmp(&y.position))
        });
    }
    let n_matching = matching.len();
    let n_pages = n_matching.div_ceil(RECORDS_PER_PAGE).max(1);
    let page = params.page.unwrap_or(1).clamp(1, n_pages);
    let positions: Vec<usize> = matching
        .iter()
        .skip((page - 1) * RECORDS_PER_PAGE)
        .take(RECORDS_PER_PAGE)
        .map(|entry| entry.position)
        .collect();

    // The page: each record's own rows.
    let mut rows = Vec::with_capacity(positions.len());
    for position in positions {
        let after = position.checked_sub(1).map(|previous| RecordKey {
            position: previous,
            model_order: usize::MAX,
        });
        let stored = state
            .store
            .records_after(&user.id, &id, after, n_columns.max(1))
            .await?;
        let mut row = SideRow {
            index: 0,
            reference: String::new(),
            prompts: Vec::new(),
            cells: (0..n_columns).map(|_| None).collect(),
        };
        for record in stored
            .into_iter()
            .filter(|record| record.position == position)
        {
            row.index = record.index;
            if let Some(target) = &record.target_output {
                row.reference.clone_from(target);
            }
            let variant = record.variant.clone();
            if !row.prompts.iter().any(|(label, _)| *label == variant) {
                row.prompts.push((variant, record.model_input.clone()));
            }
            let column = column_of(&record);
            let (value, failed) = cell_value(&record, &score);
            let class = if column == a || n_columns < 2 {
                ""
            } else {
                let mut cells = vec![None; n_columns];
                cells[column] = Some((value, failed));
                cells[a] = Some(
                    scanned
                        .iter()
                        .find(|entry| entry.position == position)
                        .and_then(|entry| entry.cells.get(a).copied().flatten())
                        .unwrap_or((None, false)),
                );
                match difference(&cells, a, column) {
                    Some(delta) if delta < -1e-12 => "delta-down",
                    Some(delta) if delta > 1e-12 => "delta-up",
                    _ => "",
                }
            };
            if let Some(cell) = row.cells.get_mut(column) {
                *cell = Some(SideCell {
                    output: record.model_output.clone().unwrap_or_default(),
                    score: value.map_or_else(
                        || {
                            if failed {
                                "failed".to_string()
                            } else {
                                "-".to_string()
                            }
                        },
                        |value| format!("{value:.3}"),
                    ),
                    error: record.error.clone(),
                    class,
                });
            }
        }
        rows.push(row);
    }
    Ok(Html(SidePage {
        layout,
        run,
        columns,
        score_names,
        score,
        show,
        a,
        b,
        by_difference,
        search,
        rows,
        n_matching,
        page,
        n_pages,
        truncated,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_worse_than_any_score() {
        let cells = vec![Some((Some(0.0), false)), Some((None, true))];
        assert_eq!(difference(&cells, 0, 1), Some(-1.0));
        let cells = vec![Some((Some(0.5), false)), Some((Some(1.0), false))];
        assert_eq!(difference(&cells, 0, 1), Some(0.5));
        assert_eq!(difference(&cells, 0, 5), None);
        let missing = vec![Some((Some(0.5), false)), None];
        assert_eq!(difference(&missing, 0, 1), None);
    }
}
