//! `llm-eval eval --task classification|summarization` through the real binary against the
//! model double, on the sample datasets shipped in the repository: fmeval's score names in
//! records.jsonl, records.csv, summary.json and the table, the labels flag, the category field,
//! `--fail-under` on a dataset score, and the task's usage errors.

#![allow(clippy::unwrap_used)]

use model_doubles::{Answer, FaultPlan};

use crate::helpers::{
    assert_exit, assert_usage_error, read_jsonl, run, start, summary, text, workspace_root,
};

fn sample(folder: &str, file: &str) -> String {
    workspace_root()
        .join("app/data")
        .join(folder)
        .join(file)
        .display()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classification_run_with_labels_categories_and_fail_under() {
    // "Positive" for every review that says "the", "negative" for the rest.
    let server = start(
        Answer::Map {
            rules: vec![(" the ".into(), "Positive".into())],
            default: "well, negative".into(),
        },
        FaultPlan::none(),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let dataset = sample("reviews-classification", "reviews.jsonl");
    let args = |out: &'static str, extra: &[&'static str]| -> Vec<String> {
        let mut args: Vec<String> = [
            "eval",
            "--dataset",
            &dataset,
            "--template",
            "Sentiment of: {text}",
            "--model",
            "openai:gpt-4o-mini",
            "--task",
            "classification",
            "--reference-field",
            "label",
            "--out",
            out,
            "--quiet",
        ]
        .iter()
        .map(|arg| arg.to_string())
        .collect();
        args.extend(extra.iter().map(|arg| arg.to_string()));
        args
    };
    let argv = args(
        "out",
        &[
            "--category-field",
            "category",
            "--labels",
            "positive,negative,neutral",
            "--average",
            "weighted",
        ],
    );
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let output = run(&server, dir.path(), &argv).await;
    assert_exit(&output, 0);
    let stdout = text(&output.stdout);
    for name in [
        "classification_accuracy_score",
        "balanced_accuracy_score",
        "precision_score",
        "recall_score",
    ] {
        assert!(stdout.contains(name), "{name}: {stdout}");
    }
    let records = read_jsonl(&dir.path().join("out/records.jsonl"));
    assert_eq!(records.len(), 24);
    assert_eq!(
        records[0]["scores"][0]["name"],
        "classification_accuracy_score"
    );
    assert!(records[0]["scores"][0]["value"].is_i64());
    let csv = std::fs::read_to_string(dir.path().join("out/records.csv")).unwrap();
    assert!(
        csv.lines()
            .next()
            .unwrap()
            .contains("classification_accuracy_score")
    );

    let summary = summary(dir.path(), "out");
    let model = &summary["models"][0];
    assert_eq!(model["classification"]["average"], "weighted");
    // "well, negative" holds the label `negative`; no answer is unknown.
    assert_eq!(
        model["classification"]["labels"],
        serde_json::json!(["negative", "neutral", "positive"])
    );
    let matrix = model["classification"]["matrix"].as_array().unwrap();
    let total: u64 = matrix
        .iter()
        .flat_map(|row| row.as_array().unwrap())
        .map(|count| count.as_u64().unwrap())
        .sum();
    assert_eq!(total, 24);
    assert_eq!(model["categories"].as_array().unwrap().len(), 3);
    assert_eq!(
        summary["config"]["labels_given"],
        serde_json::json!(["positive", "negative", "neutral"])
    );

    // A dataset score can gate the exit code.
    let argv = args(
        "out",
        &["--replace", "--fail-under", "balanced_accuracy_score=0.99"],
    );
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let output = run(&server, dir.path(), &argv).await;
    assert_exit(&output, 1);
    assert!(
        text(&output.stderr).contains("balanced_accuracy_score"),
        "{}",
        text(&output.stderr)
    );

    // Usage errors name the flag.
    let argv = args("bad", &["--category-field", "topic"]);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    assert_usage_error(
        &run(&server, dir.path(), &argv).await,
        "category field `topic`",
    );
    let argv = args("bad", &["--metric", "qa_accuracy"]);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    assert_usage_error(
        &run(&server, dir.path(), &argv).await,
        "not one of the classification task's",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summarization_run_scores_rouge() {
    let server = start(
        Answer::Fixed("A town will build a new cycle path on the old railway line.".into()),
        FaultPlan::none(),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let dataset = sample("news-summarization", "news.jsonl");
    let output = run(
        &server,
        dir.path(),
        &[
            "eval",
            "--dataset",
            &dataset,
            "--template",
            "Summarize: {document}",
            "--model",
            "openai:gpt-4o-mini",
            "--task",
            "summarization",
            "--reference-field",
            "summary",
            "--out",
            "out",
            "--quiet",
        ],
    )
    .await;
    assert_exit(&output, 0);
    let records = read_jsonl(&dir.path().join("out/records.jsonl"));
    assert_eq!(records.len(), 8);
    let names: Vec<&str> = records[0]["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|score| score["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["rouge1", "rouge2", "rougeL"]);
    let expected = fmeval_scoring::metrics::rouge::score(
        "A town will build a new cycle path on the old railway line.",
        records[0]["target_output"].as_str().unwrap(),
    );
    assert_eq!(
        records[0]["scores"][0]["value"].as_f64(),
        Some(expected.rouge1)
    );
    assert!(expected.rouge1 > 0.3, "{expected:?}");
    let summary = summary(dir.path(), "out");
    assert_eq!(summary["config"]["task"], "summarization");
    assert_eq!(
        summary["models"][0]["categories"].as_array().unwrap().len(),
        6
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn robustness_run_keeps_the_perturbed_prompts() {
    let server = start(Answer::Fixed("positive".into()), FaultPlan::none()).await;
    let dir = tempfile::tempdir().unwrap();
    let dataset = sample("reviews-classification", "reviews.jsonl");
    let output = run(
        &server,
        dir.path(),
        &[
            "eval",
            "--dataset",
            &dataset,
            "--template",
            "Sentiment of: {text}",
            "--model",
            "openai:gpt-4o-mini",
            "--metric",
            "classification_accuracy_semantic_robustness",
            "--perturbation",
            "whitespace_add_remove",
            "--reference-field",
            "label",
            "--records",
            "2",
            "--out",
            "out",
            "--quiet",
        ],
    )
    .await;
    assert_exit(&output, 0);
    assert!(text(&output.stdout).contains("delta_classification_accuracy_score"));
    // 2 records × (1 + 5) calls.
    assert_eq!(server.stats().requests, 12);
    let records = read_jsonl(&dir.path().join("out/records.jsonl"));
    let mut perturber = fmeval_scoring::perturbation::Perturber::new(
        fmeval_scoring::perturbation::Perturbation::WhitespaceAddRemove,
    );
    for record in &records {
        let text_field = record["model_input"]
            .as_str()
            .unwrap()
            .trim_start_matches("Sentiment of: ")
            .to_owned();
        let expected: Vec<String> = perturber
            .perturb(&text_field)
            .into_iter()
            .map(|perturbed| format!("Sentiment of: {perturbed}"))
            .collect();
        let got: Vec<&str> = record["perturbations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|perturbed| perturbed["prompt"].as_str().unwrap())
            .collect();
        assert_eq!(got, expected);
    }
    let summary = summary(dir.path(), "out");
    assert_eq!(summary["config"]["perturbation"], "whitespace_add_remove");

    // A perturbation without a robustness metric is refused before any call.
    let before = server.stats().requests;
    let output = run(
        &server,
        dir.path(),
        &[
            "eval",
            "--dataset",
            &dataset,
            "--template",
            "Sentiment of: {text}",
            "--model",
            "openai:gpt-4o-mini",
            "--task",
            "classification",
            "--perturbation",
            "butter_finger",
            "--reference-field",
            "label",
            "--out",
            "bad",
        ],
    )
    .await;
    assert_usage_error(&output, "--perturbation");
    assert_eq!(server.stats().requests, before);
}
