//! The store test suite, run against every backend: SQLite (in `sqlite.rs`) and DynamoDB + S3
//! on a moto server (in `dynamo.rs`).

#![allow(clippy::unwrap_used)]

use super::*;
use fmeval_scoring::metrics::{Score, ScoreValue};

pub fn alice() -> UserId {
    UserId::new("alice")
}

pub fn record(model: &str, position: usize, f1: f64, error: Option<&str>) -> RecordRow {
    RecordRow {
        model: model.to_string(),
        model_order: usize::from(model != "m"),
        variant: String::new(),
        position,
        index: position * 2,
        model_input: format!("prompt {position}"),
        prompt: format!("prompt {position}"),
        model_output: error.is_none().then(|| " out\n".to_string()),
        target_output: Some("t".to_string()),
        category: None,
        scores: vec![Score {
            name: "f1_score".to_string(),
            value: ScoreValue::Float(f1),
        }],
        latency_ms: Some(10.0 + position as f64),
        input_tokens: Some(3),
        output_tokens: Some(4),
        cost_usd: Some(0.001),
        error: error.map(str::to_string),
        judge_replies: vec![JudgeReply {
            judge: "j".to_string(),
            reply: "Y".to_string(),
            verdict: 1.0,
        }],
        cached: position == 1,
        perturbations: if position == 2 {
            vec![crate::PerturbedAnswer {
                prompt: "pRompt 2".to_string(),
                model_output: "out".to_string(),
                scores: vec![Score {
                    name: "f1_score".to_string(),
                    value: ScoreValue::Float(0.25),
                }],
            }]
        } else {
            Vec::new()
        },
    }
}

pub async fn runs_and_records_round_trip_in_export_order(store: &dyn Store) {
    store
        .create_run(&alice(), "r1", &serde_json::json!({"a": 1}), 3)
        .await
        .unwrap();
    let records = vec![
        record("m", 2, 0.5, None),
        record("m", 0, 0.0, Some("boom")),
        record("m", 1, 1.0, None),
    ];
    store
        .insert_records(&alice(), "r1", records.clone())
        .await
        .unwrap();
    let got = all_records(store, &alice(), "r1").await.unwrap();
    assert_eq!(
        got.iter().map(|r| r.position).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    assert_eq!(got[1], records[2]);
    assert_eq!(
        store.record_counts(&alice(), "r1").await.unwrap(),
        RecordCounts { ok: 2, failed: 1 }
    );
    let run = store.run(&alice(), "r1").await.unwrap().unwrap();
    assert_eq!(
        (run.status, run.total, run.summary),
        (RunStatus::Running, Some(3), None)
    );
    store
        .finish_run(
            &alice(),
            "r1",
            RunStatus::Cancelled,
            &serde_json::json!({"done": 2}),
        )
        .await
        .unwrap();
    let run = store.run(&alice(), "r1").await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Cancelled);
    assert_eq!(run.summary, Some(serde_json::json!({"done": 2})));
    assert!(store.run(&alice(), "nope").await.unwrap().is_none());
    assert!(
        store
            .finish_run(
                &alice(),
                "nope",
                RunStatus::Finished,
                &serde_json::json!({})
            )
            .await
            .is_err()
    );
}

pub async fn a_record_cannot_be_stored_twice(store: &dyn Store) {
    store
        .create_run(&alice(), "r", &serde_json::json!({}), 2)
        .await
        .unwrap();
    store
        .insert_records(&alice(), "r", vec![record("m", 0, 1.0, None)])
        .await
        .unwrap();
    assert!(
        store
            .insert_records(&alice(), "r", vec![record("m", 0, 1.0, None)])
            .await
            .is_err()
    );
    store
        .insert_records(&alice(), "r", vec![record("other", 0, 1.0, None)])
        .await
        .unwrap();
    assert_eq!(store.record_counts(&alice(), "r").await.unwrap().ok, 2);
}

/// Returns where the (deleted) dataset was kept, for the backend's own checks.
pub async fn one_owner_never_sees_or_changes_another_owners_rows(store: &dyn Store) -> PathBuf {
    let bob = UserId::new("bob");
    store
        .create_run(&alice(), "r", &serde_json::json!({}), 1)
        .await
        .unwrap();
    store
        .insert_records(&alice(), "r", vec![record("m", 0, 1.0, None)])
        .await
        .unwrap();
    assert!(store.run(&bob, "r").await.unwrap().is_none());
    assert!(store.runs(&bob, 10).await.unwrap().is_empty());
    assert!(all_records(store, &bob, "r").await.unwrap().is_empty());
    let query = RecordQuery {
        model: None,
        variant: None,
        filter: RecordFilter::All,
        sort: RecordSort::Position,
        descending: false,
        start: PageStart::First,
        limit: 10,
    };
    assert_eq!(
        store.query_records(&bob, "r", &query).await.unwrap().total,
        0
    );
    assert_eq!(
        store.record_counts(&bob, "r").await.unwrap(),
        RecordCounts::default()
    );
    assert!(
        store
            .insert_records(&bob, "r", vec![record("m", 1, 1.0, None)])
            .await
            .is_err()
    );
    assert!(
        store
            .finish_run(&bob, "r", RunStatus::Finished, &serde_json::json!({}))
            .await
            .is_err()
    );
    assert!(!store.delete_run(&bob, "r").await.unwrap());
    assert_eq!(store.runs(&alice(), 10).await.unwrap().len(), 1);

    let staged = store.staging_path();
    std::fs::write(&staged, "{\"q\": 1}\n").unwrap();
    let dataset = store
        .add_dataset(
            &alice(),
            NewDataset {
                name: "../../etc/passwd".into(),
                format: "jsonl".into(),
                n_records: 1,
                fields: vec!["q".into()],
                staged: staged.clone(),
            },
        )
        .await
        .unwrap();
    assert!(!staged.exists());
    assert_eq!(
        std::fs::read_to_string(&dataset.path).unwrap(),
        "{\"q\": 1}\n"
    );
    assert!(store.dataset(&bob, &dataset.id).await.unwrap().is_none());
    assert!(store.datasets(&bob).await.unwrap().is_empty());
    assert!(!store.delete_dataset(&bob, &dataset.id).await.unwrap());
    assert_eq!(
        store.datasets(&alice()).await.unwrap(),
        vec![dataset.clone()]
    );
    assert!(store.delete_dataset(&alice(), &dataset.id).await.unwrap());
    assert!(!dataset.path.exists());

    store
        .save_settings(&alice(), &serde_json::json!({"t": 1}))
        .await
        .unwrap();
    assert!(store.settings(&bob).await.unwrap().is_none());
    store
        .save_settings(&alice(), &serde_json::json!({"t": 2}))
        .await
        .unwrap();
    assert_eq!(
        store.settings(&alice()).await.unwrap(),
        Some(serde_json::json!({"t": 2}))
    );

    assert!(store.delete_run(&alice(), "r").await.unwrap());
    assert!(store.run(&alice(), "r").await.unwrap().is_none());
    dataset.path
}

pub async fn running_runs_are_marked_interrupted(store: &dyn Store) {
    store
        .create_run(&alice(), "a", &serde_json::json!({}), 1)
        .await
        .unwrap();
    store
        .create_run(&alice(), "b", &serde_json::json!({}), 1)
        .await
        .unwrap();
    store
        .finish_run(&alice(), "b", RunStatus::Finished, &serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!(
        store.mark_interrupted().await.unwrap(),
        vec![(alice(), "a".to_string())]
    );
    assert_eq!(
        store.run(&alice(), "a").await.unwrap().unwrap().status,
        RunStatus::Interrupted
    );
    assert!(store.mark_interrupted().await.unwrap().is_empty());
}

async fn check_query(store: &dyn Store, query: RecordQuery, expected: (&[usize], usize)) {
    let page = store.query_records(&alice(), "q", &query).await.unwrap();
    let positions: Vec<usize> = page.rows.iter().map(|row| row.position).collect();
    assert_eq!((positions.as_slice(), page.total), expected, "{query:?}");
}

pub async fn record_queries_filter_sort_and_page(store: &dyn Store) {
    {
        store
            .create_run(&alice(), "q", &serde_json::json!({}), 5)
            .await
            .unwrap();
        let rows = vec![
            record("m", 0, 0.2, None),
            record("m", 1, 0.9, None),
            record("m", 2, 0.0, Some("boom")),
            record("m", 3, 0.5, None),
            record("n", 0, 0.1, None),
        ];
        store.insert_records(&alice(), "q", rows).await.unwrap();
    }
    let query = |filter, sort, descending, start, limit| RecordQuery {
        model: Some("m".to_string()),
        variant: None,
        filter,
        sort,
        descending,
        start,
        limit,
    };
    let first = PageStart::First;
    let after_first = PageStart::After(RecordCursor {
        value: None,
        position: 0,
        model_order: 0,
    });
    let f1 = || RecordSort::Score("f1_score".to_string());
    check_query(
        store,
        query(RecordFilter::All, RecordSort::Position, false, first, 10),
        (&[0, 1, 2, 3], 4),
    )
    .await;
    check_query(
        store,
        query(
            RecordFilter::All,
            RecordSort::Position,
            false,
            after_first,
            2,
        ),
        (&[1, 2], 4),
    )
    .await;
    check_query(
        store,
        query(RecordFilter::Failed, RecordSort::Position, false, first, 10),
        (&[2], 1),
    )
    .await;
    check_query(
        store,
        query(
            RecordFilter::ScoreBelow {
                score: "f1_score".into(),
                below: 0.6,
            },
            f1(),
            false,
            first,
            10,
        ),
        (&[0, 3], 2),
    )
    .await;
    check_query(
        store,
        query(RecordFilter::All, f1(), true, first, 10),
        (&[1, 3, 0, 2], 4),
    )
    .await;
    check_query(
        store,
        query(RecordFilter::All, RecordSort::Latency, true, first, 2),
        (&[3, 2], 4),
    )
    .await;
    let all_models = RecordQuery {
        model: None,
        variant: None,
        ..query(RecordFilter::All, RecordSort::Position, false, first, 10)
    };
    check_query(store, all_models, (&[0, 0, 1, 2, 3], 5)).await;
}

/// A run of 3 columns (variants A and B of model `m`, and model `n`) over 23 records, with
/// tied, failed, unscored and missing cells.
async fn store_grid(store: &dyn Store, run_id: &str) -> Vec<RecordRow> {
    store
        .create_run(&alice(), run_id, &serde_json::json!({}), 69)
        .await
        .unwrap();
    let mut rows = Vec::new();
    for position in 0..23 {
        for (model_order, (model, variant)) in
            [("m", "A"), ("m", "B"), ("n", "A")].iter().enumerate()
        {
            // Column 2 has no row for every 5th record.
            if model_order == 2 && position % 5 == 0 {
                continue;
            }
            let failed = (position + model_order) % 7 == 3;
            let mut row = record(
                model,
                position,
                ((position * 3 + model_order * 5) % 4) as f64 / 4.0,
                failed.then_some("boom"),
            );
            row.model_order = model_order;
            row.variant = variant.to_string();
            if failed {
                row.scores.clear();
            }
            if position == 8 && model_order == 1 {
                // Succeeded, but without the score.
                row.scores.clear();
            }
            row.latency_ms = (position % 4 != 1).then(|| ((position * 7) % 5) as f64);
            rows.push(row);
        }
    }
    // Stored in two batches, out of order.
    let (late, early): (Vec<RecordRow>, Vec<RecordRow>) =
        rows.iter().cloned().partition(|row| row.position % 2 == 1);
    store.insert_records(&alice(), run_id, early).await.unwrap();
    store.insert_records(&alice(), run_id, late).await.unwrap();
    rows
}

/// Sorted pages start after (or end before) a row's key, never at a count of rows, and
/// walking them forwards or backwards gives every matching row once, in the query's order.
pub async fn sorted_pages_follow_their_keys_forwards_and_backwards(store: &dyn Store) {
    let rows = store_grid(store, "k").await;
    let f1 = || RecordSort::Score("f1_score".to_string());
    for finished in [false, true] {
        if finished {
            // A run that no longer changes is read through its cached index alike.
            store
                .finish_run(&alice(), "k", RunStatus::Finished, &serde_json::json!({}))
                .await
                .unwrap();
        }
        for sort in [f1(), RecordSort::Latency, RecordSort::Position] {
            for descending in [false, true] {
                for (model, variant, filter) in [
                    (None, None, RecordFilter::All),
                    (Some("m"), None, RecordFilter::All),
                    (None, Some("A"), RecordFilter::Failed),
                    (
                        None,
                        None,
                        RecordFilter::ScoreBelow {
                            score: "f1_score".into(),
                            below: 0.5,
                        },
                    ),
                ] {
                    let query = RecordQuery {
                        model: model.map(str::to_string),
                        variant: variant.map(str::to_string),
                        filter: filter.clone(),
                        sort: sort.clone(),
                        descending,
                        start: PageStart::First,
                        limit: 4,
                    };
                    let mut expected: Vec<&RecordRow> = rows
                        .iter()
                        .filter(|row| model.is_none_or(|model| row.model == model))
                        .filter(|row| variant.is_none_or(|variant| row.variant == variant))
                        .filter(|row| match &filter {
                            RecordFilter::All => true,
                            RecordFilter::Failed => !row.is_ok(),
                            RecordFilter::ScoreBelow { below, .. } => {
                                row.is_ok()
                                    && row
                                        .scores
                                        .first()
                                        .is_some_and(|score| score.value.as_f64() < *below)
                            }
                        })
                        .collect();
                    expected.sort_by(|a, b| {
                        scores::compare_rows(
                            &sort,
                            descending,
                            &query.cursor_of(a),
                            &query.cursor_of(b),
                        )
                    });
                    let expected: Vec<(usize, usize)> = expected
                        .iter()
                        .map(|row| (row.position, row.model_order))
                        .collect();
                    let mut seen = Vec::new();
                    let mut page = store.query_records(&alice(), "k", &query).await.unwrap();
                    assert_eq!(page.total, expected.len(), "{query:?}");
                    let mut last_first = None;
                    while !page.rows.is_empty() {
                        assert!(page.rows.len() <= 4);
                        seen.extend(page.rows.iter().map(|row| (row.position, row.model_order)));
                        last_first = page.rows.first().map(|row| query.cursor_of(row));
                        let after = query.cursor_of(page.rows.last().unwrap());
                        page = store
                            .query_records(
                                &alice(),
                                "k",
                                &RecordQuery {
                                    start: PageStart::After(after),
                                    ..query.clone()
                                },
                            )
                            .await
                            .unwrap();
                    }
                    assert_eq!(seen, expected, "forwards: {query:?}");
                    // Backwards from the last page's first row.
                    let mut back = Vec::new();
                    let mut before = last_first;
                    while let Some(at) = before {
                        let page = store
                            .query_records(
                                &alice(),
                                "k",
                                &RecordQuery {
                                    start: PageStart::Before(at),
                                    ..query.clone()
                                },
                            )
                            .await
                            .unwrap();
                        assert!(page.rows.len() <= 4);
                        back.splice(
                            0..0,
                            page.rows.iter().map(|row| (row.position, row.model_order)),
                        );
                        before = page.rows.first().map(|row| query.cursor_of(row));
                    }
                    let n_last = expected.len().checked_sub(1).map_or(0, |n| n % 4 + 1);
                    assert_eq!(
                        back,
                        expected[..expected.len().saturating_sub(n_last)],
                        "backwards: {query:?}"
                    );
                }
            }
        }
    }
}

/// The side-by-side view reads a score's cells of a run as a matrix and lists its records
/// filtered and ordered by the difference of two columns, page by page by key.
pub async fn the_side_view_filters_and_sorts_records_by_a_score_difference(store: &dyn Store) {
    let rows = store_grid(store, "s").await;
    let matrix = store.score_matrix(&alice(), "s", "f1_score").await.unwrap();
    assert_eq!(matrix.n_columns, 3);
    assert_eq!(matrix.positions, (0..23).collect::<Vec<_>>());
    let cell = |position: usize, column: usize| -> Cell {
        match rows
            .iter()
            .find(|row| row.position == position && row.model_order == column)
        {
            None => Cell::Missing,
            Some(row) if !row.is_ok() => Cell::Failed,
            Some(row) => row
                .scores
                .first()
                .map_or(Cell::Unscored, |score| Cell::Value(score.value.as_f64())),
        }
    };
    for position in 0..23 {
        assert_eq!(
            matrix.line(position),
            [cell(position, 0), cell(position, 1), cell(position, 2)],
            "record {position}"
        );
    }
    assert_eq!(matrix.line(8)[1], Cell::Unscored);
    // Rows by key: in export order, keys without a row left out, only the owner's.
    let keys = [
        RecordKey {
            position: 7,
            model_order: 2,
        },
        RecordKey {
            position: 0,
            model_order: 2,
        },
        RecordKey {
            position: 1,
            model_order: 0,
        },
        RecordKey {
            position: 7,
            model_order: 2,
        },
    ];
    let found = store.records_at(&alice(), "s", &keys).await.unwrap();
    assert_eq!(
        found
            .iter()
            .map(|row| (row.position, row.model_order))
            .collect::<Vec<_>>(),
        [(1, 0), (7, 2)]
    );
    assert_eq!(
        found[1],
        rows.iter()
            .find(|row| (row.position, row.model_order) == (7, 2))
            .unwrap()
            .clone()
    );
    assert!(
        store
            .records_at(&UserId::new("bob"), "s", &keys)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(matrix.line(0)[2], Cell::Missing);
    // Another owner's run reads as empty.
    assert!(
        store
            .score_matrix(&UserId::new("bob"), "s", "f1_score")
            .await
            .unwrap()
            .positions
            .is_empty()
    );
    for show in [
        SideShow::All,
        SideShow::Disagree,
        SideShow::Worse,
        SideShow::Failed,
    ] {
        for (a, b) in [(0, 1), (2, 0)] {
            let query = SideQuery {
                score: "f1_score".to_string(),
                show,
                a,
                b,
                by_difference: true,
                start: PageStart::First,
                limit: 3,
            };
            let difference = |position: usize| -> Option<f64> {
                Some(cell(position, b).compared()? - cell(position, a).compared()?)
            };
            let mut expected: Vec<(usize, Option<f64>)> = (0..23)
                .filter(|position| {
                    let cells = [cell(*position, 0), cell(*position, 1), cell(*position, 2)];
                    match show {
                        SideShow::All => true,
                        SideShow::Failed => cells.contains(&Cell::Failed),
                        SideShow::Disagree => cells.iter().any(|cell| *cell != cells[0]),
                        SideShow::Worse => difference(*position).is_some_and(|delta| delta < 0.0),
                    }
                })
                .map(|position| (position, difference(position)))
                .collect();
            expected.sort_by(|x, y| {
                x.1.unwrap_or(f64::INFINITY)
                    .total_cmp(&y.1.unwrap_or(f64::INFINITY))
                    .then(x.0.cmp(&y.0))
            });
            let mut seen = Vec::new();
            let mut page = side_page(store, &alice(), "s", &query).await.unwrap();
            assert_eq!(page.total, expected.len(), "{query:?}");
            let mut pages = Vec::new();
            while !page.records.is_empty() {
                assert_eq!(page.n_before, seen.len());
                seen.extend(
                    page.records
                        .iter()
                        .map(|record| (record.position, record.difference)),
                );
                pages.push(page.records.first().unwrap().cursor());
                let after = page.records.last().unwrap().cursor();
                page = side_page(
                    store,
                    &alice(),
                    "s",
                    &SideQuery {
                        start: PageStart::After(after),
                        ..query.clone()
                    },
                )
                .await
                .unwrap();
            }
            assert_eq!(seen, expected, "{query:?}");
            // The page before the last one, read backwards, is the one read forwards.
            if pages.len() >= 2 {
                let before = side_page(
                    store,
                    &alice(),
                    "s",
                    &SideQuery {
                        start: PageStart::Before(pages[pages.len() - 1]),
                        ..query.clone()
                    },
                )
                .await
                .unwrap();
                assert_eq!(
                    before.records.first().unwrap().cursor(),
                    pages[pages.len() - 2]
                );
                assert_eq!(before.n_before, (pages.len() - 2) * 3);
            }
        }
    }
    // In position order, every record once.
    let page = side_page(
        store,
        &alice(),
        "s",
        &SideQuery {
            score: "f1_score".to_string(),
            show: SideShow::All,
            a: 0,
            b: 1,
            by_difference: false,
            start: PageStart::First,
            limit: 100,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        page.records
            .iter()
            .map(|record| record.position)
            .collect::<Vec<_>>(),
        (0..23).collect::<Vec<_>>()
    );
    // A deleted run's cells are gone with it.
    assert!(store.delete_run(&alice(), "s").await.unwrap());
    assert!(
        store
            .score_matrix(&alice(), "s", "f1_score")
            .await
            .unwrap()
            .positions
            .is_empty()
    );
}

/// Sessions round-trip, expire and are purged; returns the saved session for the backend's
/// own checks (its id must never be stored in clear).
pub async fn sessions_round_trip_and_expire(store: &dyn Store) -> Session {
    let session = Session {
        id: super::sqlite::random_hex(32),
        csrf_token: super::sqlite::random_hex(32),
        user: Some(SessionUser {
            id: alice(),
            name: "Alice".into(),
        }),
        auth_data: Some("{\"refresh\":\"secret\"}".into()),
        expires_unix: unix_now() + 60,
    };
    store.save_session(&session).await.unwrap();
    assert_eq!(
        store.session(&session.id).await.unwrap(),
        Some(session.clone())
    );
    assert!(store.session("other").await.unwrap().is_none());
    assert!(!format!("{session:?}").contains(&session.csrf_token));
    let expired = Session {
        id: super::sqlite::random_hex(32),
        expires_unix: unix_now() - 1,
        ..session.clone()
    };
    store.save_session(&expired).await.unwrap();
    assert!(store.session(&expired.id).await.unwrap().is_none());
    assert_eq!(store.purge_sessions().await.unwrap(), 1);
    let anonymous = Session {
        id: super::sqlite::random_hex(32),
        user: None,
        auth_data: None,
        ..session.clone()
    };
    store.save_session(&anonymous).await.unwrap();
    assert_eq!(store.session(&anonymous.id).await.unwrap(), Some(anonymous));
    let kept = store.session(&session.id).await.unwrap();
    store.delete_session(&session.id).await.unwrap();
    assert!(store.session(&session.id).await.unwrap().is_none());
    store.save_session(&session).await.unwrap();
    assert_eq!(kept, Some(session.clone()));
    session
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |now| now.as_secs() as i64)
}

/// Runs are listed newest first, at most `limit`, and a run survives being read back while
/// its records are written in several chunks (more than one transaction's worth).
pub async fn runs_are_listed_newest_first_and_large_inserts_chunk(store: &dyn Store) {
    for id in ["a", "b", "c"] {
        store
            .create_run(&alice(), id, &serde_json::json!({"id": id}), 250)
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let ids: Vec<String> = store
        .runs(&alice(), 2)
        .await
        .unwrap()
        .into_iter()
        .map(|run| run.id)
        .collect();
    assert_eq!(ids, ["c", "b"]);
    let rows: Vec<RecordRow> = (0..250)
        .map(|position| record("m", position, 0.5, (position % 10 == 0).then_some("x")))
        .collect();
    store
        .insert_records(&alice(), "b", rows.clone())
        .await
        .unwrap();
    assert_eq!(
        store.record_counts(&alice(), "b").await.unwrap(),
        RecordCounts {
            ok: 225,
            failed: 25
        }
    );
    assert_eq!(all_records(store, &alice(), "b").await.unwrap(), rows);
    let page = store
        .records_after(
            &alice(),
            "b",
            Some(RecordKey {
                position: 99,
                model_order: 0,
            }),
            3,
        )
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|row| row.position).collect::<Vec<_>>(),
        [100, 101, 102]
    );
    assert!(store.delete_run(&alice(), "b").await.unwrap());
    assert!(all_records(store, &alice(), "b").await.unwrap().is_empty());
    assert_eq!(store.runs(&alice(), 10).await.unwrap().len(), 2);
}

/// A lease is held by one holder at a time, renewed by it, taken over once expired or given
/// back, and never granted on a run that is not running; `mark_interrupted` leaves leased runs
/// alone.
pub async fn run_leases_are_exclusive_renewable_and_expire(store: &dyn Store) {
    let bob = UserId::new("bob");
    store
        .create_run(&alice(), "l", &serde_json::json!({}), 1)
        .await
        .unwrap();
    assert!(
        store.orphaned_runs().await.unwrap().is_empty(),
        "no lease yet"
    );
    assert!(!store.acquire_lease(&bob, "l", "b", 60).await.unwrap());
    assert!(store.acquire_lease(&alice(), "l", "one", 60).await.unwrap());
    assert!(!store.acquire_lease(&alice(), "l", "two", 60).await.unwrap());
    assert!(
        store.acquire_lease(&alice(), "l", "one", 60).await.unwrap(),
        "renewal"
    );
    assert!(store.orphaned_runs().await.unwrap().is_empty());
    assert!(store.mark_interrupted().await.unwrap().is_empty());
    // Another holder's release does nothing; the holder's own hands the run back.
    store.release_lease(&alice(), "l", "two").await.unwrap();
    assert!(!store.acquire_lease(&alice(), "l", "two", 60).await.unwrap());
    store.release_lease(&alice(), "l", "one").await.unwrap();
    assert_eq!(
        store.orphaned_runs().await.unwrap(),
        vec![(alice(), "l".to_string())]
    );
    assert!(store.acquire_lease(&alice(), "l", "two", 1).await.unwrap());
    assert!(!store.acquire_lease(&alice(), "l", "one", 60).await.unwrap());
    // An expired lease is taken over.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(store.orphaned_runs().await.unwrap().len(), 1);
    assert!(store.acquire_lease(&alice(), "l", "one", 60).await.unwrap());
    store
        .finish_run(&alice(), "l", RunStatus::Finished, &serde_json::json!({}))
        .await
        .unwrap();
    assert!(!store.acquire_lease(&alice(), "l", "one", 60).await.unwrap());
    assert!(store.orphaned_runs().await.unwrap().is_empty());
}

/// A cancel request is recorded on a running run of its owner only, and read back by the
/// owner alone; a run that is not running cannot be asked to cancel.
pub async fn cancel_requests_are_recorded_for_running_runs_of_their_owner(store: &dyn Store) {
    let bob = UserId::new("bob");
    store
        .create_run(&alice(), "c", &serde_json::json!({}), 1)
        .await
        .unwrap();
    store
        .create_run(&alice(), "done", &serde_json::json!({}), 1)
        .await
        .unwrap();
    store
        .finish_run(
            &alice(),
            "done",
            RunStatus::Finished,
            &serde_json::json!({}),
        )
        .await
        .unwrap();
    assert!(!store.cancel_requested(&alice(), "c").await.unwrap());
    assert!(!store.cancel_requested(&alice(), "nope").await.unwrap());
    // Another owner, an unknown run and an ended run are refused.
    assert!(!store.request_cancel(&bob, "c").await.unwrap());
    assert!(!store.request_cancel(&alice(), "nope").await.unwrap());
    assert!(!store.request_cancel(&alice(), "done").await.unwrap());
    assert!(!store.cancel_requested(&alice(), "c").await.unwrap());
    assert!(!store.cancel_requested(&alice(), "done").await.unwrap());
    assert!(
        store.run(&alice(), "nope").await.unwrap().is_none(),
        "no run created"
    );
    assert!(store.run(&bob, "c").await.unwrap().is_none());
    // The owner's request is recorded (twice is fine) and seen only by the owner.
    assert!(store.request_cancel(&alice(), "c").await.unwrap());
    assert!(store.request_cancel(&alice(), "c").await.unwrap());
    assert!(store.cancel_requested(&alice(), "c").await.unwrap());
    assert!(!store.cancel_requested(&bob, "c").await.unwrap());
    // The run itself is unchanged until its process cancels it.
    let run = store.run(&alice(), "c").await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Running);
    store
        .finish_run(&alice(), "c", RunStatus::Cancelled, &serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!(
        store.run(&alice(), "c").await.unwrap().unwrap().status,
        RunStatus::Cancelled
    );
}

/// A run starts with the name its request gave, and its owner alone renames it and writes its
/// notes.
pub async fn runs_are_named_and_annotated_by_their_owner(store: &dyn Store) {
    let bob = UserId::new("bob");
    store
        .create_run(
            &alice(),
            "named",
            &serde_json::json!({"name": "  Baseline prompt  "}),
            1,
        )
        .await
        .unwrap();
    store
        .create_run(&alice(), "unnamed", &serde_json::json!({}), 1)
        .await
        .unwrap();
    let named = store.run(&alice(), "named").await.unwrap().unwrap();
    assert_eq!(
        (named.name.as_str(), named.notes.as_str()),
        ("Baseline prompt", "")
    );
    assert_eq!(named.display_name(), "Baseline prompt");
    let unnamed = store.run(&alice(), "unnamed").await.unwrap().unwrap();
    assert_eq!(unnamed.display_name(), "unnamed", "the id stands in");
    // Another owner and an unknown run are refused and change nothing.
    assert!(!store.annotate_run(&bob, "named", "mine", "").await.unwrap());
    assert!(!store.annotate_run(&alice(), "nope", "x", "").await.unwrap());
    assert!(store.run(&alice(), "nope").await.unwrap().is_none());
    assert!(
        store
            .annotate_run(
                &alice(),
                "named",
                "Variant B wins",
                "B is shorter.\nTry C next."
            )
            .await
            .unwrap()
    );
    let listed = store.runs(&alice(), 10).await.unwrap();
    let named = listed.iter().find(|run| run.id == "named").unwrap();
    assert_eq!(named.name, "Variant B wins");
    assert_eq!(named.notes, "B is shorter.\nTry C next.");
    assert_eq!(
        named.config["name"], "  Baseline prompt  ",
        "the request is kept as it was"
    );
}

fn dataset_upload(store: &dyn Store) -> NewDataset {
    let staged = store.staging_path();
    std::fs::write(&staged, "{\"q\": 1}\n").unwrap();
    NewDataset {
        name: "d.jsonl".into(),
        format: "jsonl".into(),
        n_records: 1,
        fields: vec!["q".into()],
        staged,
    }
}

/// Grants (issue 22): only the owner shares, unshares or changes; a grant lets its grantee
/// read and nothing else; sharing with everyone reaches every user; deleting the item ends it.
pub async fn grants_let_their_grantees_read_and_only_the_owner_change(store: &dyn Store) {
    let (bob, carol) = (UserId::new("bob"), UserId::new("carol"));
    store
        .create_run(&alice(), "r", &serde_json::json!({}), 1)
        .await
        .unwrap();
    store
        .insert_records(&alice(), "r", vec![record("m", 0, 1.0, None)])
        .await
        .unwrap();
    let dataset = store
        .add_dataset(&alice(), dataset_upload(store))
        .await
        .unwrap();

    // Nothing is shared yet.
    assert!(
        !store
            .can_read(&bob, &alice(), ItemKind::Run, "r")
            .await
            .unwrap()
    );
    assert!(
        crate::readable_run(store, &bob, &alice(), "r")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        crate::readable_run(store, &alice(), &alice(), "r")
            .await
            .unwrap()
            .is_some()
    );
    assert!(store.shared_with(&bob, 10).await.unwrap().is_empty());

    // Only the owner can share: bob cannot share alice's run (his key names no such run).
    assert_eq!(
        store
            .share(&bob, ItemKind::Run, "r", &Grantee::User(bob.clone()))
            .await
            .unwrap(),
        Err(Refusal::NotFound)
    );
    assert!(
        !store
            .can_read(&bob, &alice(), ItemKind::Run, "r")
            .await
            .unwrap()
    );

    // Alice shares the run with bob, twice (no change).
    for _ in 0..2 {
        store
            .share(&alice(), ItemKind::Run, "r", &Grantee::User(bob.clone()))
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(
        store.grants(&alice(), ItemKind::Run, "r").await.unwrap(),
        vec![Grantee::User(bob.clone())]
    );
    assert!(
        store
            .can_read(&bob, &alice(), ItemKind::Run, "r")
            .await
            .unwrap()
    );
    assert!(
        !store
            .can_read(&carol, &alice(), ItemKind::Run, "r")
            .await
            .unwrap()
    );
    let shared = crate::readable_run(store, &bob, &alice(), "r")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(shared.owner, alice());
    assert_eq!(
        store.shared_with(&bob, 10).await.unwrap(),
        vec![SharedItem {
            kind: ItemKind::Run,
            owner: alice(),
            id: "r".into(),
            grantee: Grantee::User(bob.clone()),
        }]
    );
    assert!(store.shared_with(&carol, 10).await.unwrap().is_empty());
    // The grant is read only: bob's calls name his own (missing) run and change nothing.
    assert!(!store.annotate_run(&bob, "r", "mine", "").await.unwrap());
    assert!(!store.delete_run(&bob, "r").await.unwrap());
    assert!(!store.request_cancel(&bob, "r").await.unwrap());
    assert!(
        !store
            .unshare(&bob, ItemKind::Run, "r", &Grantee::User(bob.clone()))
            .await
            .unwrap()
    );
    assert!(
        store
            .run(&alice(), "r")
            .await
            .unwrap()
            .unwrap()
            .name
            .is_empty()
    );
    // Sharing a run shares nothing else: the dataset is still alice's alone.
    assert!(
        crate::readable_dataset(store, &bob, &alice(), &dataset.id)
            .await
            .unwrap()
            .is_none()
    );

    // With everyone: carol reads the dataset too, listed once for bob although shared twice.
    store
        .share(&alice(), ItemKind::Dataset, &dataset.id, &Grantee::Everyone)
        .await
        .unwrap()
        .unwrap();
    store
        .share(
            &alice(),
            ItemKind::Dataset,
            &dataset.id,
            &Grantee::User(bob.clone()),
        )
        .await
        .unwrap()
        .unwrap();
    let read = crate::readable_dataset(store, &carol, &alice(), &dataset.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.id, dataset.id);
    assert_eq!(
        store
            .shared_with(&carol, 10)
            .await
            .unwrap()
            .iter()
            .map(|item| (item.kind, item.id.clone()))
            .collect::<Vec<_>>(),
        vec![(ItemKind::Dataset, dataset.id.clone())]
    );
    assert_eq!(store.shared_with(&bob, 10).await.unwrap().len(), 2);
    // The owner's own items are not "shared with" her.
    assert!(store.shared_with(&alice(), 10).await.unwrap().is_empty());

    // Unsharing ends the grant.
    assert!(
        store
            .unshare(&alice(), ItemKind::Run, "r", &Grantee::User(bob.clone()))
            .await
            .unwrap()
    );
    assert!(
        !store
            .can_read(&bob, &alice(), ItemKind::Run, "r")
            .await
            .unwrap()
    );
    assert!(
        !store
            .unshare(&alice(), ItemKind::Run, "r", &Grantee::User(bob.clone()))
            .await
            .unwrap()
    );

    // Grants per item are bounded.
    for i in 0..crate::teams::MAX_GRANTS_PER_ITEM {
        store
            .share(
                &alice(),
                ItemKind::Run,
                "r",
                &Grantee::User(UserId::new(format!("u{i}"))),
            )
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(
        store
            .share(&alice(), ItemKind::Run, "r", &Grantee::User(carol.clone()))
            .await
            .unwrap(),
        Err(Refusal::Full)
    );
    assert_eq!(
        store
            .grants(&alice(), ItemKind::Run, "r")
            .await
            .unwrap()
            .len(),
        crate::teams::MAX_GRANTS_PER_ITEM
    );

    // Deleting the item ends its grants: nothing is listed or readable any more.
    assert!(store.delete_dataset(&alice(), &dataset.id).await.unwrap());
    assert!(store.shared_with(&carol, 10).await.unwrap().is_empty());
    assert!(
        !store
            .can_read(&carol, &alice(), ItemKind::Dataset, &dataset.id)
            .await
            .unwrap()
    );
    assert!(store.delete_run(&alice(), "r").await.unwrap());
    assert!(
        !store
            .can_read(&UserId::new("u0"), &alice(), ItemKind::Run, "r")
            .await
            .unwrap()
    );
}

/// The facilitator's records (issue 22): the user directory, quota overrides that survive a
/// reopen (they are stored), and the audit of another user's item, newest first and bounded.
pub async fn users_quotas_and_audit_are_stored(store: &dyn Store) {
    let fac = KnownUser {
        id: UserId::new("f"),
        name: "fran".into(),
    };
    for user in [
        KnownUser {
            id: alice(),
            name: "alice".into(),
        },
        fac.clone(),
        KnownUser {
            id: alice(),
            name: "alice2".into(),
        },
    ] {
        store.remember_user(&user).await.unwrap();
    }
    assert_eq!(
        store.known_users(10).await.unwrap(),
        vec![
            KnownUser {
                id: alice(),
                name: "alice2".into()
            },
            fac.clone()
        ]
    );
    assert_eq!(store.known_users(1).await.unwrap().len(), 1);

    assert!(store.user_quotas(&alice()).await.unwrap().is_none());
    store
        .set_user_quotas(&alice(), &serde_json::json!({"max_runs": 3}))
        .await
        .unwrap();
    store
        .set_user_quotas(&alice(), &serde_json::json!({"max_runs": 4}))
        .await
        .unwrap();
    assert_eq!(
        store.user_quotas(&alice()).await.unwrap(),
        Some(serde_json::json!({"max_runs": 4}))
    );
    assert!(store.user_quotas(&fac.id).await.unwrap().is_none());

    store
        .create_run(&alice(), "r", &serde_json::json!({}), 1)
        .await
        .unwrap();
    assert!(
        store
            .audit(&alice(), ItemKind::Run, "r")
            .await
            .unwrap()
            .is_empty()
    );
    let n_entries = crate::teams::MAX_AUDIT_SHOWN + 2;
    for i in 0..n_entries {
        store
            .add_audit(&alice(), ItemKind::Run, "r", &fac, &format!("action {i}"))
            .await
            .unwrap();
    }
    let audit = store.audit(&alice(), ItemKind::Run, "r").await.unwrap();
    assert_eq!(audit.len(), crate::teams::MAX_AUDIT_SHOWN);
    assert_eq!(audit[0].action, format!("action {}", n_entries - 1));
    assert_eq!(audit[0].actor, fac.id);
    assert_eq!(audit[0].actor_name, "fran");
    assert!(audit[0].at >= audit[1].at);
    // Another owner's item of the same id has no audit; deleting the run deletes it.
    assert!(
        store
            .audit(&UserId::new("bob"), ItemKind::Run, "r")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.delete_run(&alice(), "r").await.unwrap());
    store
        .create_run(&alice(), "r", &serde_json::json!({}), 1)
        .await
        .unwrap();
    assert!(
        store
            .audit(&alice(), ItemKind::Run, "r")
            .await
            .unwrap()
            .is_empty()
    );
}

/// Challenges (issue 22): published by one user, closed only by them, taking the runs of
/// their participants once each, bounded in number.
pub async fn challenges_take_participants_runs_until_closed(store: &dyn Store) {
    let (fac, bob) = (UserId::new("f"), UserId::new("bob"));
    let spec = ChallengeSpec {
        title: "Best QA prompt".into(),
        dataset_owner: fac.clone(),
        dataset_id: "d".into(),
        task: "qa".into(),
        metric: "f1_score".into(),
        models: vec!["m".into()],
    };
    assert!(matches!(
        store
            .create_challenge(
                &fac,
                &ChallengeSpec {
                    title: " ".into(),
                    ..spec.clone()
                }
            )
            .await,
        Err(StoreError::Config { .. })
    ));
    let challenge = store.create_challenge(&fac, &spec).await.unwrap().unwrap();
    assert!(challenge.open);
    assert_eq!(
        store.challenge(&challenge.id).await.unwrap().as_ref(),
        Some(&challenge)
    );
    assert!(store.challenge("nope").await.unwrap().is_none());

    store
        .create_run(&alice(), "ra", &serde_json::json!({}), 1)
        .await
        .unwrap();
    store
        .create_run(&bob, "rb", &serde_json::json!({}), 1)
        .await
        .unwrap();
    // A participant submits only their own runs.
    assert_eq!(
        store.submit_run(&challenge.id, &bob, "ra").await.unwrap(),
        Err(Refusal::NotFound)
    );
    assert_eq!(
        store.submit_run("nope", &bob, "rb").await.unwrap(),
        Err(Refusal::NotFound)
    );
    for _ in 0..2 {
        store
            .submit_run(&challenge.id, &alice(), "ra")
            .await
            .unwrap()
            .unwrap();
    }
    store
        .submit_run(&challenge.id, &bob, "rb")
        .await
        .unwrap()
        .unwrap();
    let submissions = store.submissions(&challenge.id).await.unwrap();
    assert_eq!(
        submissions
            .iter()
            .map(|s| (s.participant.clone(), s.run_id.as_str()))
            .collect::<Vec<_>>(),
        vec![(alice(), "ra"), (bob.clone(), "rb")]
    );

    // Only its publisher closes it; a closed challenge takes no run.
    assert!(!store.close_challenge(&bob, &challenge.id).await.unwrap());
    assert!(store.close_challenge(&fac, &challenge.id).await.unwrap());
    assert!(!store.close_challenge(&fac, &challenge.id).await.unwrap());
    assert!(!store.challenge(&challenge.id).await.unwrap().unwrap().open);
    store
        .create_run(&bob, "rb2", &serde_json::json!({}), 1)
        .await
        .unwrap();
    assert_eq!(
        store.submit_run(&challenge.id, &bob, "rb2").await.unwrap(),
        Err(Refusal::Closed)
    );

    // Open challenges are bounded; the list is newest first.
    let mut last = challenge.id.clone();
    for _ in 0..crate::teams::MAX_OPEN_CHALLENGES {
        last = store
            .create_challenge(&fac, &spec)
            .await
            .unwrap()
            .unwrap()
            .id;
    }
    assert_eq!(
        store.create_challenge(&fac, &spec).await.unwrap(),
        Err(Refusal::Full)
    );
    let listed = store.challenges().await.unwrap();
    assert_eq!(listed.len(), crate::teams::MAX_OPEN_CHALLENGES + 1);
    assert_eq!(listed.last().unwrap().id, challenge.id);
    assert!(listed.iter().any(|c| c.id == last));
}
