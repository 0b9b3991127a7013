//! A run's records side by side (`/runs/ID/side`): one record per row, each (variant, model)
//! column's output in full (wrapped, expandable) with its score, the reference beside them.
//! Filters: every record, the records where the columns disagree on the chosen score, the
//! records where one column is worse than another, failures; a text search over prompts,
//! outputs and references; sorted by position or by the difference between two columns.
//!
//! Invariants: only the owner's run is read (the store scopes every call). Without a search,
//! the filter and the order come from the store's score index (`store::side_page`: one small
//! cell per record and column, no record body) and pages follow keys (the last record's
//! difference and position), never a count of records skipped; a page then reads only its own
//! records' rows. A text search must read the texts: it scans the run's rows, keeping one
//! small entry per row, and stops at [`MAX_SCANNED_ROWS`] rows, saying so.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use serde::Deserialize;

use crate::error::AppError;
use crate::page::{Html, Layout};
use crate::session::CurrentUser;
use crate::state::AppState;
use store::scores::MatrixEntry;
use store::{
    Cell, PageStart, RecordCursor, RecordKey, RecordRow, RunRow, ScoreMatrix, SideQuery, SideShow,
    StoreError,
};

/// Records per page.
pub const RECORDS_PER_PAGE: usize = 10;
/// Rows of a run scanned for a text search at most.
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
    /// The page starts after this record ([`RecordCursor::encode`]).
    #[serde(default)]
    after: Option<String>,
    /// The page ends before this record.
    #[serde(default)]
    before: Option<String>,
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

    fn store(self) -> SideShow {
        match self {
            Show::All => SideShow::All,
            Show::Disagree => SideShow::Disagree,
            Show::Worse => SideShow::Worse,
            Show::Failed => SideShow::Failed,
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
    /// The cursors of the page's first and last records.
    first: String,
    last: String,
}

impl SidePage {
    /// The link to the page before or after this one: it ends before this page's first
    /// record or starts after its last.
    pub fn page_link(&self, page: usize) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("score", &self.score)
            .append_pair("show", self.show.as_str())
            .append_pair("a", &self.a.to_string())
            .append_pair("b", &self.b.to_string())
            .append_pair("q", &self.search);
        if self.by_difference {
            query.append_pair("sort", "difference");
        }
        if page < self.page {
            query.append_pair("before", &self.first);
        } else {
            query.append_pair("after", &self.last);
        }
        format!("/runs/{}/side?{}", self.run.id, query.finish())
    }
}

/// A run's (variant, model) columns in column order (a row's `model_order` is its place
/// here): from the summary, else (a run still going) as configured.
pub fn run_columns(
    run: &RunRow,
    summary: Option<&engine::output::Summary>,
) -> Vec<(String, String)> {
    if let Some(summary) = summary {
        return summary
            .models
            .iter()
            .map(|line| (line.variant.clone(), line.model.clone()))
            .collect();
    }
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

/// A row's cell of `score`.
fn cell_of(row: &RecordRow, score: &str) -> Cell {
    if !row.is_ok() {
        return Cell::Failed;
    }
    row.scores
        .iter()
        .find(|found| found.name == score)
        .map(|found| found.value.as_f64())
        .filter(|value| value.is_finite())
        .map_or(Cell::Unscored, Cell::Value)
}

/// Whether `text` contains `needle` (already lowercased), ignoring case.
fn contains(text: &str, needle: &str) -> bool {
    needle.is_empty() || text.to_lowercase().contains(needle)
}

/// The class of a cell beside the first column's: worse or better.
fn delta_class(first: Cell, cell: Cell) -> &'static str {
    match (first.compared(), cell.compared()) {
        (Some(first), Some(value)) if value - first < -1e-12 => "delta-down",
        (Some(first), Some(value)) if value - first > 1e-12 => "delta-up",
        _ => "",
    }
}

/// The score matrix of the records whose texts contain `needle`: a scan of the run's rows,
/// one small entry per row, at most [`MAX_SCANNED_ROWS`] rows (then `true`).
async fn searched_matrix(
    state: &AppState,
    user: &CurrentUser,
    run_id: &str,
    score: &str,
    needle: &str,
) -> Result<(ScoreMatrix, bool), AppError> {
    let mut entries: Vec<MatrixEntry> = Vec::new();
    let mut matched: std::collections::BTreeSet<usize> = std::collections::BTreeSet::new();
    let mut n_rows = 0;
    let mut truncated = false;
    let scan = store::for_each_record(state.store.as_ref(), &user.id, run_id, |row| {
        n_rows += 1;
        if n_rows > MAX_SCANNED_ROWS {
            truncated = true;
            return Err(StoreError::UnknownRun {
                run_id: String::new(),
            });
        }
        entries.push(MatrixEntry {
            position: row.position,
            index: row.index,
            model_order: row.model_order,
            cell: cell_of(&row, score),
        });
        if !matched.contains(&row.position)
            && (contains(&row.model_input, needle)
                || row
                    .model_output
                    .as_deref()
                    .is_some_and(|output| contains(output, needle))
                || row
                    .target_output
                    .as_deref()
                    .is_some_and(|target| contains(target, needle)))
        {
            matched.insert(row.position);
        }
        Ok(())
    })
    .await;
    match scan {
        Ok(()) => {}
        Err(StoreError::UnknownRun { .. }) if truncated => {}
        Err(error) => return Err(error.into()),
    }
    entries.retain(|entry| matched.contains(&entry.position));
    Ok((ScoreMatrix::build(entries), truncated))
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
    let column_keys = run_columns(&run, summary.as_ref());
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
    let cursor = |text: &Option<String>| text.as_deref().and_then(RecordCursor::decode);
    let start = match (cursor(&params.after), cursor(&params.before)) {
        (Some(after), _) => PageStart::After(after),
        (None, Some(before)) => PageStart::Before(before),
        (None, None) => PageStart::First,
    };
    let query = SideQuery {
        score: score.clone(),
        show: show.store(),
        a,
        b,
        by_difference,
        start,
        limit: RECORDS_PER_PAGE,
    };
    // The records of the page, from the score index (or, for a search, from a scan).
    let (listed, truncated) = if needle.is_empty() {
        (
            store::side_page(state.store.as_ref(), &user.id, &id, &query).await?,
            false,
        )
    } else {
        let (matrix, truncated) = searched_matrix(&state, &user, &id, &score, &needle).await?;
        (store::scores::side_page(&matrix, &query), truncated)
    };
    let n_matching = listed.total;
    let n_pages = n_matching.div_ceil(RECORDS_PER_PAGE).max(1);
    let page = (listed.n_before / RECORDS_PER_PAGE + 1).min(n_pages);
    let first = listed
        .records
        .first()
        .map(|record| record.cursor().encode())
        .unwrap_or_default();
    let last = listed
        .records
        .last()
        .map(|record| record.cursor().encode())
        .unwrap_or_default();

    // The page: its records' rows, read by key.
    let keys: Vec<RecordKey> = listed
        .records
        .iter()
        .flat_map(|record| {
            (0..n_columns.max(1)).map(|column| RecordKey {
                position: record.position,
                model_order: column,
            })
        })
        .collect();
    let mut stored = state.store.records_at(&user.id, &id, &keys).await?;
    let mut rows = Vec::with_capacity(listed.records.len());
    for listed_record in &listed.records {
        let position = listed_record.position;
        let mut row = SideRow {
            index: 0,
            reference: String::new(),
            prompts: Vec::new(),
            cells: (0..n_columns).map(|_| None).collect(),
        };
        let first_cell = listed_record.cells.get(a).copied().unwrap_or(Cell::Missing);
        let (own, rest): (Vec<RecordRow>, Vec<RecordRow>) = std::mem::take(&mut stored)
            .into_iter()
            .partition(|record| record.position == position);
        stored = rest;
        for record in own {
            row.index = record.index;
            if let Some(target) = &record.target_output {
                row.reference.clone_from(target);
            }
            let variant = record.variant.clone();
            if !row.prompts.iter().any(|(label, _)| *label == variant) {
                row.prompts.push((variant, record.model_input.clone()));
            }
            let column = record.model_order;
            let cell = cell_of(&record, &score);
            let class = if column == a || n_columns < 2 {
                ""
            } else {
                delta_class(first_cell, cell)
            };
            if let Some(slot) = row.cells.get_mut(column) {
                *slot = Some(SideCell {
                    output: record.model_output.clone().unwrap_or_default(),
                    score: match cell {
                        Cell::Value(value) => format!("{value:.3}"),
                        Cell::Failed => "failed".to_string(),
                        Cell::Unscored | Cell::Missing => "-".to_string(),
                    },
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
        first,
        last,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_worse_than_any_score() {
        assert_eq!(delta_class(Cell::Value(0.0), Cell::Failed), "delta-down");
        assert_eq!(delta_class(Cell::Value(0.5), Cell::Value(1.0)), "delta-up");
        assert_eq!(delta_class(Cell::Value(0.5), Cell::Value(0.5)), "");
        assert_eq!(delta_class(Cell::Value(0.5), Cell::Unscored), "");
        assert_eq!(delta_class(Cell::Missing, Cell::Value(0.5)), "");
    }
}
