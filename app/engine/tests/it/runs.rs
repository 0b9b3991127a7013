//! Library-level runs against the model doubles (real OpenAI provider code over HTTP): faults
//! lose or duplicate nothing, failures are recorded, the cache saves calls, cancellation keeps
//! finished work, resume re-runs only failures, and scores follow METRICS.md.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use engine::output;
use engine::runner::{self, PriorAnswer, PriorResults};
use fmeval_scoring::metrics::MetricName;
use fmeval_scoring::sample::Selection;
use model_doubles::{Answer, Behavior, Fault, FaultPlan, ModelServer, When};
use store::{RecordRow, RunStatus};

use crate::helpers::{N_SQUAD, context, openai_client, plan, squad_jsonl, squad_plan, start};

/// Every (model, index) appears exactly once.
fn assert_each_once(rows: &[RecordRow], models: &[&str], n_records: usize) {
    let mut seen: BTreeMap<(String, usize), usize> = BTreeMap::new();
    for row in rows {
        *seen.entry((row.model.clone(), row.index)).or_default() += 1;
    }
    assert_eq!(rows.len(), models.len() * n_records, "rows: {}", rows.len());
    for model in models {
        for index in 0..n_records {
            assert_eq!(
                seen.get(&(model.to_string(), index)),
                Some(&1),
                "{model} record {index}"
            );
        }
    }
}

#[tokio::test]
async fn faults_lose_and_duplicate_nothing() {
    let faults = FaultPlan::none()
        .on(When::Request(2), Fault::throttle_secs(0))
        .on(When::Request(3), Fault::Throttle { retry_after: None })
        .on(When::Every(5), Fault::Status(503))
        .on(When::Every(7), Fault::Drop)
        .on(When::Request(11), Fault::Hang(Duration::from_secs(3)))
        .on(When::Request(13), Fault::Status(500));
    let server = start(Answer::Echo, faults).await;
    let dir = tempfile::tempdir().unwrap();
    let context = context(dir.path());
    let models = vec![openai_client(&server, "a"), openai_client(&server, "b")];
    let mut plan = plan(
        &squad_jsonl(),
        models,
        vec![MetricName::QaAccuracy],
        Selection::All,
    );
    // Long enough that an answer slowed by a loaded machine is not a fault of its own (five
    // such attempts in a row failed a record under CI load), short enough to cut the hang.
    plan.config.timeout = Duration::from_secs(2);
    // About 31 % of request numbers carry a fault (every 5th, every 7th and a few more), and
    // concurrent records share the numbering: with 5 attempts a record lost five draws in a
    // row in about one run in ten. With 10 attempts that is about 1 in 3,000 runs.
    plan.config.max_attempts = 10;
    let plan = Arc::new(plan);
    let outcome = runner::run(plan, "faults", context.clone(), None)
        .await
        .unwrap();

    assert_eq!(outcome.status, RunStatus::Finished);
    let rows = store::all_records(context.store.as_ref(), &context.owner, "faults")
        .await
        .unwrap();
    let errors: Vec<&str> = rows.iter().filter_map(|row| row.error.as_deref()).collect();
    assert_eq!(
        (outcome.total, outcome.done, outcome.failed),
        (2 * N_SQUAD, 2 * N_SQUAD, 0),
        "{errors:?}"
    );
    assert_each_once(&rows, &["openai:a", "openai:b"], N_SQUAD);
    let stats = server.stats();
    assert!(stats.faults >= 8, "faults injected: {}", stats.faults);
    assert!(
        stats.requests > 2 * N_SQUAD as u64,
        "retries happened: {}",
        stats.requests
    );
    assert!(stats.successes >= 2 * N_SQUAD as u64);
}

#[tokio::test]
async fn permanent_failures_are_recorded_and_the_run_goes_on() {
    let faults = FaultPlan::none().on(
        When::PromptContains("In what country is Normandy located?".into()),
        Fault::Status(400),
    );
    let server = start(Answer::Echo, faults).await;
    let dir = tempfile::tempdir().unwrap();
    let context = context(dir.path());
    let plan = Arc::new(squad_plan(
        &server,
        vec![MetricName::FactualKnowledge],
        Selection::All,
    ));
    let outcome = runner::run(plan, "perm", context.clone(), None)
        .await
        .unwrap();
    assert_eq!((outcome.done, outcome.failed), (N_SQUAD - 1, 1));
    let rows = store::all_records(context.store.as_ref(), &context.owner, "perm")
        .await
        .unwrap();
    let failed: Vec<&RecordRow> = rows.iter().filter(|row| !row.is_ok()).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].index, 0);
    assert!(
        failed[0]
            .error
            .as_deref()
            .unwrap()
            .contains("after 1 attempt)"),
        "{:?}",
        failed[0].error
    );
    // A permanent error is not retried.
    assert_eq!(server.stats().requests, N_SQUAD as u64);
}

#[tokio::test]
async fn throttling_shrinks_the_window_and_everything_completes() {
    let faults = FaultPlan::none().on(When::Requests { from: 1, to: 6 }, Fault::throttle_secs(0));
    let server = ModelServer::start(Behavior {
        faults,
        latency: Duration::from_millis(20),
        ..Behavior::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let context = context(dir.path());
    let mut events = context.events.subscribe();
    let plan = Arc::new(squad_plan(
        &server,
        vec![MetricName::QaAccuracy],
        Selection::All,
    ));
    let outcome = runner::run(plan, "throttle", context.clone(), None)
        .await
        .unwrap();
    assert_eq!((outcome.done, outcome.failed), (N_SQUAD, 0));
    let mut smallest_window = usize::MAX;
    while let Ok(event) = events.try_recv() {
        if let engine::progress::ProgressEvent::Throttled { window, .. } = event {
            smallest_window = smallest_window.min(window);
        }
    }
    assert_eq!(
        smallest_window, 1,
        "the window halves down to 1 under repeated throttling"
    );
    assert_each_once(
        &store::all_records(context.store.as_ref(), &context.owner, "throttle")
            .await
            .unwrap(),
        &["openai:m"],
        N_SQUAD,
    );
}

#[tokio::test]
async fn cache_hits_make_no_model_calls() {
    let server = ModelServer::start(Behavior::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut context = context(dir.path());
    context.cache =
        Some(engine::cache::ResponseCache::open_dir(&dir.path().join("cache")).unwrap());
    let make_plan = |metric| Arc::new(squad_plan(&server, vec![metric], Selection::All));
    runner::run(
        make_plan(MetricName::QaAccuracy),
        "first",
        context.clone(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(server.stats().requests, N_SQUAD as u64);
    // Re-scoring with another metric costs nothing.
    let outcome = runner::run(
        make_plan(MetricName::FactualKnowledge),
        "second",
        context.clone(),
        None,
    )
    .await
    .unwrap();
    assert_eq!((outcome.done, outcome.failed), (N_SQUAD, 0));
    assert_eq!(server.stats().requests, N_SQUAD as u64);
    let first = store::all_records(context.store.as_ref(), &context.owner, "first")
        .await
        .unwrap();
    let second = store::all_records(context.store.as_ref(), &context.owner, "second")
        .await
        .unwrap();
    for (a, b) in first.iter().zip(&second) {
        assert_eq!(a.model_output, b.model_output);
    }
}

#[tokio::test]
async fn cancellation_keeps_finished_work() {
    let server = ModelServer::start(Behavior::with_latency(Duration::from_millis(150)))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let context = context(dir.path());
    let mut plan = squad_plan(&server, vec![MetricName::QaAccuracy], Selection::All);
    plan.config.concurrency = 2;
    let plan = Arc::new(plan);
    let cancel = context.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        cancel.cancel();
    });
    let started = std::time::Instant::now();
    let outcome = runner::run(plan.clone(), "cancel", context.clone(), None)
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "cancel is prompt"
    );
    assert_eq!(outcome.status, RunStatus::Cancelled);
    let finished = outcome.done + outcome.failed;
    assert!(finished > 0 && finished < N_SQUAD, "finished {finished}");
    let rows = store::all_records(context.store.as_ref(), &context.owner, "cancel")
        .await
        .unwrap();
    assert_eq!(rows.len(), finished);
    assert!(rows.iter().all(RecordRow::is_ok));

    let out = dir.path().join("out");
    let summary = output::export(
        context.store.as_ref(),
        &context.owner,
        &outcome,
        plan.config_json(),
        &plan.columns(),
        &["f1_score"],
        &out,
    )
    .await
    .unwrap();
    assert_eq!(summary.status, RunStatus::Cancelled);
    assert_eq!(
        crate::helpers::read_jsonl(&out.join("records.jsonl")).len(),
        finished
    );
    assert_eq!(
        context
            .store
            .run(&context.owner, "cancel")
            .await
            .unwrap()
            .unwrap()
            .status,
        RunStatus::Cancelled
    );
}

#[tokio::test]
async fn retry_failed_reruns_only_failures() {
    let faults = FaultPlan::none().on_times(
        When::PromptContains("In what country is Normandy located?".into()),
        1,
        Fault::Status(400),
    );
    let server = start(Answer::Echo, faults).await;
    let dir = tempfile::tempdir().unwrap();
    let context = context(dir.path());
    let make_plan = || {
        Arc::new(squad_plan(
            &server,
            vec![MetricName::QaAccuracy],
            Selection::All,
        ))
    };
    let first = runner::run(make_plan(), "first", context.clone(), None)
        .await
        .unwrap();
    assert_eq!(first.failed, 1);
    let prior: PriorResults = store::all_records(context.store.as_ref(), &context.owner, "first")
        .await
        .unwrap()
        .into_iter()
        .filter_map(|row| {
            PriorAnswer::from_row(&row).map(|answer| (runner::prior_key(&row), answer))
        })
        .collect::<HashMap<_, _>>();
    let second = runner::run(
        make_plan(),
        "second",
        context.clone(),
        Some(Arc::new(prior)),
    )
    .await
    .unwrap();
    assert_eq!(
        (second.done, second.failed, second.copied),
        (N_SQUAD, 0, N_SQUAD - 1)
    );
    assert_eq!(
        server.stats().requests,
        N_SQUAD as u64 + 1,
        "only the failed record is re-run"
    );
    let rows = store::all_records(context.store.as_ref(), &context.owner, "second")
        .await
        .unwrap();
    assert_each_once(&rows, &["openai:m"], N_SQUAD);
    assert_eq!(
        rows.iter().map(|row| row.position).collect::<Vec<_>>(),
        (0..N_SQUAD).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn regression_single_record_run() {
    let server = start(Answer::Fixed("France".into()), FaultPlan::none()).await;
    let dir = tempfile::tempdir().unwrap();
    let context = context(dir.path());
    let plan = Arc::new(squad_plan(
        &server,
        vec![MetricName::QaAccuracy, MetricName::FactualKnowledge],
        Selection::First(1),
    ));
    let outcome = runner::run(plan, "one", context.clone(), None)
        .await
        .unwrap();
    assert_eq!((outcome.total, outcome.done), (1, 1));
    let rows = store::all_records(context.store.as_ref(), &context.owner, "one")
        .await
        .unwrap();
    let scores: Vec<(String, f64)> = rows[0]
        .scores
        .iter()
        .map(|s| (s.name.clone(), s.value.as_f64()))
        .collect();
    assert_eq!(
        scores,
        [
            ("f1_score", 1.0),
            ("exact_match_score", 1.0),
            ("quasi_exact_match_score", 1.0),
            ("precision_over_words", 1.0),
            ("recall_over_words", 1.0),
            ("factual_knowledge", 1.0)
        ]
        .map(|(name, value)| (name.to_string(), value))
    );
}

/// Canned answers scored as METRICS.md says (worked examples of section 2.5).
#[tokio::test]
async fn canned_answers_score_as_metrics_md() {
    let answer = Answer::Map {
        rules: vec![
            (
                "When did the 1973 oil crisis begin?".into(),
                "The crisis began in October 1973.".into(),
            ),
            (
                "Where did the black death originate?".into(),
                "Central Asia".into(),
            ),
            (
                "In what country is Normandy located?".into(),
                "france".into(),
            ),
        ],
        default: "no idea".into(),
    };
    let server = start(answer, FaultPlan::none()).await;
    let dir = tempfile::tempdir().unwrap();
    let context = context(dir.path());
    let plan = Arc::new(squad_plan(
        &server,
        vec![MetricName::QaAccuracy, MetricName::FactualKnowledge],
        Selection::All,
    ));
    runner::run(plan, "canned", context.clone(), None)
        .await
        .unwrap();
    let rows = store::all_records(context.store.as_ref(), &context.owner, "canned")
        .await
        .unwrap();
    let scores = |index: usize| -> Vec<f64> {
        rows[index]
            .scores
            .iter()
            .map(|s| s.value.as_f64())
            .collect()
    };
    // Order: f1, exact, quasi-exact, precision, recall, factual_knowledge.
    assert_eq!(scores(8), vec![0.5714285714285714, 0.0, 0.0, 0.4, 1.0, 1.0]);
    assert_eq!(scores(14), vec![1.0, 1.0, 1.0, 1.0, 1.0, 1.0]);
    assert_eq!(scores(0), vec![1.0, 0.0, 1.0, 1.0, 1.0, 1.0]);
    assert_eq!(scores(1), vec![0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
}

#[tokio::test]
async fn sample_follows_fmeval_order() {
    let server = ModelServer::start(Behavior::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let context = context(dir.path());
    let plan = Arc::new(squad_plan(
        &server,
        vec![MetricName::FactualKnowledge],
        Selection::Sample { n: 100, seed: 1234 },
    ));
    runner::run(plan, "sample", context.clone(), None)
        .await
        .unwrap();
    let order: Vec<usize> = store::all_records(context.store.as_ref(), &context.owner, "sample")
        .await
        .unwrap()
        .iter()
        .map(|row| row.index)
        .collect();
    assert_eq!(
        order,
        vec![
            3, 13, 2, 16, 14, 5, 4, 0, 8, 18, 17, 11, 10, 9, 7, 1, 19, 12, 6, 15
        ]
    );
}

#[tokio::test]
async fn judges_score_and_keep_raw_replies() {
    let answer = Answer::from_fn(|prompt| {
        if prompt.model == "judge-yes" {
            "Y".to_string()
        } else if prompt.model == "judge-chatty" {
            "I think so".to_string()
        } else {
            "France".to_string()
        }
    });
    let server = start(answer, FaultPlan::none()).await;
    let dir = tempfile::tempdir().unwrap();
    let context = context(dir.path());
    let mut plan = squad_plan(
        &server,
        vec![MetricName::QaAccuracyByLlm],
        Selection::First(2),
    );
    plan.judges = vec![
        openai_client(&server, "judge-yes"),
        openai_client(&server, "judge-chatty"),
    ];
    runner::run(Arc::new(plan), "judged", context.clone(), None)
        .await
        .unwrap();
    let rows = store::all_records(context.store.as_ref(), &context.owner, "judged")
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    for row in &rows {
        assert_eq!(row.scores.len(), 1);
        assert_eq!(row.scores[0].name, "qa_accuracy_by_llm");
        assert_eq!(row.scores[0].value.as_f64(), 0.75);
        let replies: Vec<(&str, &str)> = row
            .judge_replies
            .iter()
            .map(|r| (r.judge.as_str(), r.reply.as_str()))
            .collect();
        assert_eq!(
            replies,
            vec![
                ("openai:judge-yes", "Y"),
                ("openai:judge-chatty", "I think so")
            ]
        );
    }
    assert_eq!(server.stats().requests, 6);
}

#[tokio::test]
async fn validation_happens_before_any_call() {
    let server = ModelServer::start(Behavior::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut bad_template = squad_plan(&server, vec![MetricName::QaAccuracy], Selection::All);
    bad_template.variants[0].template = engine::template::PromptTemplate::parse("{nope}").unwrap();
    let err = runner::run(Arc::new(bad_template), "a", context(dir.path()), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
    let mut bad_reference = squad_plan(&server, vec![MetricName::QaAccuracy], Selection::All);
    bad_reference.reference_field = "gold".into();
    let err = runner::run(Arc::new(bad_reference), "b", context(dir.path()), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("gold"), "{err}");
    let no_judges = squad_plan(&server, vec![MetricName::QaAccuracyByLlm], Selection::All);
    let err = runner::run(Arc::new(no_judges), "c", context(dir.path()), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("judge"), "{err}");
    assert_eq!(server.stats().requests, 0);
}

/// records.jsonl does not depend on completion order: two runs with different latency jitter
/// export the same lines (but for latency).
#[tokio::test]
async fn export_order_is_deterministic_and_categories_are_averaged() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = dir.path().join("cat.jsonl");
    let lines: Vec<String> = (0..30)
        .map(|i| {
            serde_json::json!({"doc": "d", "question": format!("q{i}"), "answers": ["France"], "category": if i % 3 == 0 { "geo" } else { "other" }})
                .to_string()
        })
        .collect();
    std::fs::write(&dataset, lines.join("\n")).unwrap();
    let mut exports = Vec::new();
    for seed in [1u64, 2] {
        let answer = Answer::from_fn(|prompt| {
            if prompt.text.contains("q3") || prompt.text.contains("q6") {
                "France".into()
            } else {
                "Spain".into()
            }
        });
        let server = ModelServer::start(Behavior {
            answer,
            latency: Duration::from_millis(1),
            jitter: Duration::from_millis(30),
            seed,
            ..Behavior::default()
        })
        .await
        .unwrap();
        let context = context(&dir.path().join(format!("store{seed}")));
        let mut plan = plan(
            &dataset,
            vec![openai_client(&server, "m")],
            vec![MetricName::FactualKnowledge],
            Selection::All,
        );
        plan.config.concurrency = 8;
        let plan = Arc::new(plan);
        let outcome = runner::run(plan.clone(), "det", context.clone(), None)
            .await
            .unwrap();
        let out = dir.path().join(format!("out{seed}"));
        let summary = output::export(
            context.store.as_ref(),
            &context.owner,
            &outcome,
            plan.config_json(),
            &plan.columns(),
            &["factual_knowledge"],
            &out,
        )
        .await
        .unwrap();
        let categories: Vec<(String, f64)> = summary.models[0]
            .categories
            .iter()
            .map(|category| (category.category.clone(), category.scores[0].value))
            .collect();
        // geo: q0, q3, q6, ... q27 (10 records), of which q3 and q6 are right (q30+ do not exist).
        assert_eq!(
            categories,
            vec![("geo".to_string(), 0.2), ("other".to_string(), 0.0)]
        );
        let mut records = crate::helpers::read_jsonl(&out.join("records.jsonl"));
        for record in &mut records {
            record.as_object_mut().unwrap().remove("latency_ms");
        }
        exports.push(records);
    }
    assert_eq!(exports[0], exports[1]);
    assert_eq!(
        exports[0]
            .iter()
            .map(|r| r["index"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        (0..30).collect::<Vec<_>>()
    );
}
