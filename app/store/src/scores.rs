//! A run's score index as the pages read it: keyset cursors of sorted record pages
//! ([`RecordCursor`], [`PageStart`]), the per-record score matrix of one score
//! ([`ScoreMatrix`]: one cell per (record, column)), the side-by-side view's query over it
//! ([`SideQuery`] → [`SidePage`], filtered and sorted by the difference of two columns), and a
//! small bounded cache of matrices of runs that no longer change ([`MatrixCache`]).
//!
//! Every backend keeps the values the matrix is built from precomputed beside its rows when
//! the rows are stored (SQLite: the `record_scores` table, DynamoDB: score index items), so a
//! matrix is read without reading a single record body; a page then reads only its own rows by
//! key. Cursors carry the last (or first) row's sort value and key, so a page never skips rows
//! by counting them (no `OFFSET`).
//!
//! Must not depend on any backend (no SQLite, no AWS type): the functions here work on values
//! handed in, so both backends page and sort alike and the shared suite checks one meaning.

use std::cmp::Ordering;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::{RecordSort, UserId};

/// Where a sorted page's order passes a row: the row's sort value (the score or latency;
/// `None` for a row without one, which sorts last; ignored when sorting by position) and its
/// key (selection position, then column).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecordCursor {
    /// The row's sort value.
    pub value: Option<f64>,
    /// The row's selection position.
    pub position: usize,
    /// The row's column (`RecordRow::model_order`).
    pub model_order: usize,
}

/// The most characters of an encoded cursor (a float, two numbers and two separators).
pub const MAX_CURSOR_CHARS: usize = 80;

impl RecordCursor {
    /// The cursor as URL-safe text: `value~position~column` (an empty value for none); the
    /// value is the shortest round-tripping form of the float in exponent notation (a few
    /// dozen characters at most, whatever its size).
    pub fn encode(&self) -> String {
        let value = self
            .value
            .map(|value| format!("{value:e}"))
            .unwrap_or_default();
        format!("{value}~{}~{}", self.position, self.model_order)
    }

    /// The cursor of [`RecordCursor::encode`]'s text; `None` for anything else.
    pub fn decode(text: &str) -> Option<RecordCursor> {
        if text.len() > MAX_CURSOR_CHARS {
            return None;
        }
        let mut parts = text.split('~');
        let value = match parts.next()? {
            "" => None,
            value => Some(
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|value| value.is_finite())?,
            ),
        };
        let position = parts.next()?.parse().ok()?;
        let model_order = parts.next()?.parse().ok()?;
        if parts.next().is_some() {
            return None;
        }
        Some(RecordCursor {
            value,
            position,
            model_order,
        })
    }
}

/// Where a page starts: at the first row of the order, just after a row, or just before one
/// (the page before, read backwards and returned in order).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum PageStart {
    /// The first rows.
    #[default]
    First,
    /// The rows after this one.
    After(RecordCursor),
    /// The rows before this one.
    Before(RecordCursor),
}

/// The order of a sorted records page between two rows, given as cursors: by position (the
/// whole key reversed when descending), or by value (rows without one last, whatever the
/// direction; ties in export order).
pub fn compare_rows(
    sort: &RecordSort,
    descending: bool,
    a: &RecordCursor,
    b: &RecordCursor,
) -> Ordering {
    let export = (a.position, a.model_order).cmp(&(b.position, b.model_order));
    match sort {
        RecordSort::Position => {
            if descending {
                export.reverse()
            } else {
                export
            }
        }
        RecordSort::Score(_) | RecordSort::Latency => {
            let by_value = match (a.value, b.value) {
                (Some(x), Some(y)) => {
                    let order = x.total_cmp(&y);
                    if descending { order.reverse() } else { order }
                }
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            };
            by_value.then(export)
        }
    }
}

/// The window of `sorted` (in the order `compare` gives) that a page starting at `start`
/// shows, at most `limit` items.
pub fn window<T>(
    sorted: &[T],
    start: PageStart,
    limit: usize,
    compare: impl Fn(&T, &RecordCursor) -> Ordering,
) -> &[T] {
    match start {
        PageStart::First => &sorted[..limit.min(sorted.len())],
        PageStart::After(cursor) => {
            let from = sorted.partition_point(|item| compare(item, &cursor) != Ordering::Greater);
            &sorted[from..(from + limit).min(sorted.len())]
        }
        PageStart::Before(cursor) => {
            let to = sorted.partition_point(|item| compare(item, &cursor) == Ordering::Less);
            &sorted[to.saturating_sub(limit)..to]
        }
    }
}

/// One (record, column) cell of a score matrix.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell {
    /// No row of this column is stored for the record (not evaluated yet, or never).
    Missing,
    /// The row is stored with an error.
    Failed,
    /// The row succeeded but has no value of the score.
    Unscored,
    /// The row's value of the score.
    Value(f64),
}

impl Cell {
    /// The cell's value in a difference: a failure counts as -1, below any score; missing and
    /// unscored cells have none.
    pub fn compared(self) -> Option<f64> {
        match self {
            Cell::Failed => Some(-1.0),
            Cell::Value(value) => Some(value),
            Cell::Missing | Cell::Unscored => None,
        }
    }
}

/// A run's cells of one score: one line per stored record (position order), one cell per
/// column. 8 to 16 bytes a cell, never a record body.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScoreMatrix {
    /// Columns per line (the highest stored column + 1).
    pub n_columns: usize,
    /// The lines' selection positions, ascending.
    pub positions: Vec<usize>,
    /// The lines' records' 0-based indexes in the dataset.
    pub indexes: Vec<usize>,
    /// `positions.len() × n_columns` cells, line by line.
    pub cells: Vec<Cell>,
}

/// One stored row as a score matrix is built from it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MatrixEntry {
    /// The row's selection position.
    pub position: usize,
    /// The row's record's index in the dataset.
    pub index: usize,
    /// The row's column.
    pub model_order: usize,
    /// Its cell.
    pub cell: Cell,
}

impl ScoreMatrix {
    /// The matrix of these rows' cells (in any order); a later entry of the same (position,
    /// column) replaces an earlier one.
    pub fn build(mut entries: Vec<MatrixEntry>) -> ScoreMatrix {
        entries.sort_by_key(|entry| (entry.position, entry.model_order));
        let n_columns = entries
            .iter()
            .map(|entry| entry.model_order + 1)
            .max()
            .unwrap_or(0);
        let mut matrix = ScoreMatrix {
            n_columns,
            ..ScoreMatrix::default()
        };
        for entry in entries {
            if matrix.positions.last() != Some(&entry.position) {
                matrix.positions.push(entry.position);
                matrix.indexes.push(entry.index);
                matrix
                    .cells
                    .extend(std::iter::repeat_n(Cell::Missing, n_columns));
            }
            let line = matrix.positions.len() - 1;
            matrix.cells[line * n_columns + entry.model_order] = entry.cell;
        }
        matrix
    }

    /// The cells of line `line`.
    pub fn line(&self, line: usize) -> &[Cell] {
        &self.cells[line * self.n_columns..(line + 1) * self.n_columns]
    }

    /// Bytes the matrix holds (for the cache's bound).
    pub fn bytes(&self) -> usize {
        self.positions.len() * 2 * std::mem::size_of::<usize>()
            + self.cells.len() * std::mem::size_of::<Cell>()
    }
}

/// Which records the side-by-side view lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SideShow {
    /// Every record.
    #[default]
    All,
    /// Records whose columns do not all hold the same cell.
    Disagree,
    /// Records where column `b` is below column `a`.
    Worse,
    /// Records with a failed column.
    Failed,
}

/// A page of the side-by-side view: records of a run filtered and ordered on one score's
/// cells.
#[derive(Debug, Clone, PartialEq)]
pub struct SideQuery {
    /// The score compared.
    pub score: String,
    /// Which records.
    pub show: SideShow,
    /// The first column of the comparison.
    pub a: usize,
    /// The second column.
    pub b: usize,
    /// Ordered by `b − a`, lowest (most worse) first, records without both values last, ties
    /// by position; otherwise by position.
    pub by_difference: bool,
    /// Where the page starts: a cursor's `value` is the difference and `position` the
    /// record's (its `model_order` is unused).
    pub start: PageStart,
    /// Records at most (capped at [`crate::MAX_PAGE`]).
    pub limit: usize,
}

/// One listed record of the side-by-side view.
#[derive(Debug, Clone, PartialEq)]
pub struct SideRecord {
    /// Its selection position.
    pub position: usize,
    /// Its cells of the score, one per column.
    pub cells: Vec<Cell>,
    /// `b − a`, when both have a value.
    pub difference: Option<f64>,
}

impl SideRecord {
    /// The cursor of this record in a side page's order.
    pub fn cursor(&self) -> RecordCursor {
        RecordCursor {
            value: self.difference,
            position: self.position,
            model_order: 0,
        }
    }
}

/// The records of a side-by-side page and how many match in all.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SidePage {
    /// The page's records, in order.
    pub records: Vec<SideRecord>,
    /// Records matching the filter.
    pub total: usize,
    /// Records in the order before this page's first.
    pub n_before: usize,
}

fn difference(cells: &[Cell], a: usize, b: usize) -> Option<f64> {
    Some(cells.get(b)?.compared()? - cells.get(a)?.compared()?)
}

/// The side page `query` asks for, from the run's matrix of `query.score`: the filter over
/// every line, the order, then the window after (or before) the cursor. Each matching line
/// costs its (difference, position, line) while sorting; only the page's records copy their
/// cells.
pub fn side_page(matrix: &ScoreMatrix, query: &SideQuery) -> SidePage {
    /// A matching line: its cursor in the order, and where its cells are.
    struct Match {
        cursor: RecordCursor,
        line: usize,
    }
    let mut matching: Vec<Match> = Vec::new();
    for (line, &position) in matrix.positions.iter().enumerate() {
        let cells = matrix.line(line);
        let delta = difference(cells, query.a, query.b);
        let keep = match query.show {
            SideShow::All => true,
            SideShow::Failed => cells.contains(&Cell::Failed),
            SideShow::Disagree => cells.iter().any(|cell| *cell != cells[0]),
            SideShow::Worse => delta.is_some_and(|delta| delta < -1e-12),
        };
        if keep {
            matching.push(Match {
                cursor: RecordCursor {
                    value: delta,
                    position,
                    model_order: 0,
                },
                line,
            });
        }
    }
    let sort = if query.by_difference {
        RecordSort::Score(query.score.clone())
    } else {
        RecordSort::Position
    };
    let compare =
        |found: &Match, cursor: &RecordCursor| compare_rows(&sort, false, &found.cursor, cursor);
    if query.by_difference {
        // Already in position order: a stable sort keeps ties there.
        matching.sort_by(|x, y| compare_rows(&sort, false, &x.cursor, &y.cursor));
    }
    let total = matching.len();
    let page = window(
        &matching,
        query.start,
        query.limit.min(crate::MAX_PAGE),
        compare,
    );
    let n_before = page.first().map_or(0, |first| {
        matching.partition_point(|found| compare(found, &first.cursor) == Ordering::Less)
    });
    SidePage {
        records: page
            .iter()
            .map(|found| SideRecord {
                position: found.cursor.position,
                cells: matrix.line(found.line).to_vec(),
                difference: found.cursor.value,
            })
            .collect(),
        total,
        n_before,
    }
}

/// Matrices of runs kept in memory: at most [`MatrixCache::MAX_BYTES`] in all, oldest out
/// first. An entry is used only while its run's stored row count is the one it was built
/// with, so a run that gets more rows (a resumed run) is read again.
#[derive(Debug, Default)]
pub struct MatrixCache {
    entries: Mutex<VecDeque<CacheEntry>>,
}

type CacheKey = (UserId, String, String);

#[derive(Debug)]
struct CacheEntry {
    key: CacheKey,
    n_rows: usize,
    matrix: Arc<ScoreMatrix>,
}

impl MatrixCache {
    /// The bytes of matrices kept at most.
    pub const MAX_BYTES: usize = 64 * 1024 * 1024;

    /// The cached matrix of (owner, run, score) built over `n_rows` stored rows.
    pub fn get(
        &self,
        owner: &UserId,
        run_id: &str,
        score: &str,
        n_rows: usize,
    ) -> Option<Arc<ScoreMatrix>> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        entries
            .iter()
            .find(|entry| {
                entry.n_rows == n_rows
                    && entry.key.0 == *owner
                    && entry.key.1 == run_id
                    && entry.key.2 == score
            })
            .map(|entry| entry.matrix.clone())
    }

    /// Keeps a matrix (replacing the run's older one of the same score).
    pub fn put(
        &self,
        owner: &UserId,
        run_id: &str,
        score: &str,
        n_rows: usize,
        matrix: Arc<ScoreMatrix>,
    ) {
        if matrix.bytes() > Self::MAX_BYTES {
            return;
        }
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.retain(|entry| {
            !(entry.key.0 == *owner && entry.key.1 == run_id && entry.key.2 == score)
        });
        entries.push_back(CacheEntry {
            key: (owner.clone(), run_id.to_string(), score.to_string()),
            n_rows,
            matrix,
        });
        let mut bytes: usize = entries.iter().map(|entry| entry.matrix.bytes()).sum();
        while bytes > Self::MAX_BYTES {
            let Some(oldest) = entries.pop_front() else {
                break;
            };
            bytes -= oldest.matrix.bytes();
        }
    }

    /// Forgets every matrix of a run (deleted).
    pub fn forget(&self, owner: &UserId, run_id: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .retain(|entry| !(entry.key.0 == *owner && entry.key.1 == run_id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor(value: Option<f64>, position: usize) -> RecordCursor {
        RecordCursor {
            value,
            position,
            model_order: 1,
        }
    }

    #[test]
    fn cursors_round_trip_and_refuse_anything_else() {
        for value in [None, Some(0.1 + 0.2), Some(-1.0), Some(1e-300)] {
            let original = cursor(value, 7);
            assert_eq!(RecordCursor::decode(&original.encode()), Some(original));
        }
        for bad in [
            "", "1~2", "1~2~3~4", "x~1~2", "NaN~1~2", "inf~1~2", "1~-2~3",
        ] {
            assert_eq!(RecordCursor::decode(bad), None, "{bad}");
        }
        assert_eq!(RecordCursor::decode(&"9".repeat(100)), None);
    }

    #[test]
    fn values_sort_with_missing_last_in_both_directions_and_ties_in_export_order() {
        let score = RecordSort::Score("f1".into());
        let (low, high, none) = (cursor(Some(0.1), 5), cursor(Some(0.9), 1), cursor(None, 0));
        assert_eq!(compare_rows(&score, false, &low, &high), Ordering::Less);
        assert_eq!(compare_rows(&score, true, &low, &high), Ordering::Greater);
        for descending in [false, true] {
            assert_eq!(
                compare_rows(&score, descending, &high, &none),
                Ordering::Less
            );
        }
        let tie = cursor(Some(0.1), 6);
        assert_eq!(compare_rows(&score, true, &low, &tie), Ordering::Less);
        assert_eq!(
            compare_rows(&RecordSort::Position, true, &low, &tie),
            Ordering::Greater
        );
    }

    #[test]
    fn windows_page_forwards_and_backwards_by_key() {
        let sorted: Vec<usize> = (0..10).collect();
        let compare = |item: &usize, cursor: &RecordCursor| item.cmp(&cursor.position);
        assert_eq!(window(&sorted, PageStart::First, 3, compare), [0, 1, 2]);
        assert_eq!(
            window(&sorted, PageStart::After(cursor(None, 2)), 3, compare),
            [3, 4, 5]
        );
        assert_eq!(
            window(&sorted, PageStart::After(cursor(None, 8)), 3, compare),
            [9]
        );
        assert_eq!(
            window(&sorted, PageStart::Before(cursor(None, 3)), 3, compare),
            [0, 1, 2]
        );
        assert_eq!(
            window(&sorted, PageStart::Before(cursor(None, 2)), 3, compare),
            [0, 1]
        );
    }

    #[test]
    fn a_failure_is_worse_than_any_score_and_missing_cells_compare_to_nothing() {
        let matrix = ScoreMatrix::build(vec![
            MatrixEntry {
                position: 0,
                index: 4,
                model_order: 0,
                cell: Cell::Value(0.0),
            },
            MatrixEntry {
                position: 0,
                index: 4,
                model_order: 1,
                cell: Cell::Failed,
            },
            MatrixEntry {
                position: 3,
                index: 1,
                model_order: 0,
                cell: Cell::Value(0.5),
            },
            MatrixEntry {
                position: 3,
                index: 1,
                model_order: 1,
                cell: Cell::Value(1.0),
            },
            MatrixEntry {
                position: 5,
                index: 0,
                model_order: 0,
                cell: Cell::Value(0.5),
            },
        ]);
        assert_eq!(
            (matrix.n_columns, matrix.positions.clone()),
            (2, vec![0, 3, 5])
        );
        assert_eq!(matrix.indexes, [4, 1, 0]);
        let query = SideQuery {
            score: "f1".into(),
            show: SideShow::All,
            a: 0,
            b: 1,
            by_difference: true,
            start: PageStart::First,
            limit: 10,
        };
        let page = side_page(&matrix, &query);
        let order: Vec<(usize, Option<f64>)> = page
            .records
            .iter()
            .map(|record| (record.position, record.difference))
            .collect();
        assert_eq!(order, [(0, Some(-1.0)), (3, Some(0.5)), (5, None)]);
        assert_eq!(page.records[2].cells, [Cell::Value(0.5), Cell::Missing]);
        let worse = side_page(
            &matrix,
            &SideQuery {
                show: SideShow::Worse,
                ..query.clone()
            },
        );
        assert_eq!((worse.total, worse.records[0].position), (1, 0));
    }
}
