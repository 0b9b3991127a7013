//! Classification and summarization runs end to end: the plan built by `build_plan` (labels
//! taken from the targets, the category field checked), the real OpenAI provider code against
//! the model double, the runner, and the exported `records.jsonl` and `summary.json` with
//! fmeval's score names, dataset scores, the confusion matrix and per-category scores.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use engine::catalog::Catalog;
use engine::output;
use engine::plan::{EvalRequest, build_plan};
use engine::providers::{ProviderSettings, Providers};
use engine::runner;
use fmeval_scoring::metrics::classification::Average;
use fmeval_scoring::metrics::{MetricName, Task};
use model_doubles::{Answer, FaultPlan, ModelServer};

use crate::helpers::{context, read_jsonl, start, workspace_root};

fn sample(folder: &str, file: &str) -> PathBuf {
    workspace_root().join("app/data").join(folder).join(file)
}

async fn providers(server: &ModelServer) -> Providers {
    Providers::from_env(ProviderSettings {
        openai_base_url: Some(format!("{}/v1", server.url())),
        openai_api_key: Some(secrecy::SecretString::from("k".to_string())),
        ..Default::default()
    })
    .await
    .unwrap()
}

/// Builds the request's plan, runs it and exports it into `dir`.
async fn run_and_export(
    request: &EvalRequest,
    server: &ModelServer,
    dir: &Path,
) -> (output::Summary, Vec<serde_json::Value>) {
    let plan = build_plan(request, &Catalog::embedded(), &providers(server).await)
        .await
        .unwrap();
    let columns = plan.columns();
    let score_names: Vec<&str> = plan
        .metrics
        .iter()
        .flat_map(|metric| metric.score_names().iter().copied())
        .collect();
    let config = plan.config_json();
    let context = context(dir);
    let store = context.store.clone();
    let outcome = runner::run(Arc::new(plan), "run-1", context, None)
        .await
        .unwrap();
    let out = dir.join("out");
    let summary = output::export(
        store.as_ref(),
        &store::UserId::local(),
        &outcome,
        config,
        &columns,
        &score_names,
        &out,
    )
    .await
    .unwrap();
    (summary, read_jsonl(&out.join("records.jsonl")))
}

#[tokio::test]
async fn classification_over_the_reviews_sample() {
    // The model calls reviews that mention a fault "Negative" (capitalised: fmeval lowercases
    // the answer's pieces), says "It is positive" when the review praises, and is unsure
    // otherwise ("unknown").
    let server = start(
        Answer::Map {
            rules: vec![
                ("Stopped".into(), "Negative".into()),
                ("cracked".into(), "Negative".into()),
                ("leaks".into(), "negative.".into()),
                ("Worth".into(), "It is positive".into()),
                ("best coffee".into(), "positive\n".into()),
            ],
            default: "I cannot tell".into(),
        },
        FaultPlan::none(),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut request = EvalRequest::new(
        sample("reviews-classification", "reviews.jsonl"),
        "Classify: {text}".into(),
        vec!["openai:m".into()],
        vec![MetricName::ClassificationAccuracy],
    );
    request.reference_field = "label".into();
    request.task.task = Some(Task::Classification);
    request.task.category_field = Some("category".into());
    request.task.average = Average::Macro;
    let (summary, records) = run_and_export(&request, &server, dir.path()).await;

    assert_eq!(records.len(), 24);
    let first = &records[0];
    assert_eq!(first["category"], "electronics");
    // Stored like fmeval's records: an integer score.
    assert_eq!(
        first["scores"],
        serde_json::json!([{"name": "classification_accuracy_score", "value": 0}])
    );
    let stopped = records
        .iter()
        .find(|record| record["model_input"].as_str().unwrap().contains("Stopped"))
        .unwrap();
    assert_eq!(stopped["scores"][0]["value"], 1);
    // "negative." is not a label (the full stop stays).
    let leaks = records
        .iter()
        .find(|record| record["model_input"].as_str().unwrap().contains("leaks"))
        .unwrap();
    assert_eq!(leaks["scores"][0]["value"], 0);

    let model = &summary.models[0];
    let names: Vec<&str> = model
        .scores
        .iter()
        .map(|score| score.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "classification_accuracy_score",
            "balanced_accuracy_score",
            "precision_score",
            "recall_score"
        ]
    );
    // Correct: "Stopped", "cracked" (negative), "Worth every penny" and "best coffee"
    // (positive): 4 of 24.
    assert_eq!(
        summary.mean("openai:m", "classification_accuracy_score"),
        Some(4.0 / 24.0)
    );
    let matrix = model.classification.as_ref().unwrap();
    assert_eq!(
        matrix.labels,
        ["negative", "neutral", "positive", "unknown"]
    );
    // 9 negative, 6 neutral and 9 positive reviews.
    assert_eq!(matrix.matrix[0], [2, 0, 0, 7]);
    assert_eq!(matrix.matrix[1], [0, 0, 0, 6]);
    assert_eq!(matrix.matrix[2], [0, 0, 2, 7]);
    assert_eq!(matrix.average, Average::Macro);
    // Balanced accuracy: recall per reference class (2/9, 0/6, 2/9) averaged.
    assert_eq!(
        summary.mean("openai:m", "balanced_accuracy_score"),
        Some((2.0 / 9.0 + 0.0 + 2.0 / 9.0) / 3.0)
    );
    let categories: Vec<&str> = model
        .categories
        .iter()
        .map(|category| category.category.as_str())
        .collect();
    assert_eq!(categories, ["books", "electronics", "kitchen"]);
    let kitchen = &model.categories[2];
    assert_eq!(kitchen.scores.len(), 4);
    assert_eq!(kitchen.scores[0].count, 8);
    // The labels the run found are stored with it, so a later summary converts alike.
    assert_eq!(
        summary.config["labels"],
        serde_json::json!(["positive", "negative", "neutral"])
    );
    assert_eq!(summary.config["task"], "classification");
}

#[tokio::test]
async fn summarization_over_the_news_sample() {
    // The model answers with the article's first sentence.
    let server = start(
        Answer::from_fn(|prompt| {
            let article = prompt.text.split("\n\n").nth(1).unwrap_or_default();
            article.split(". ").next().unwrap_or_default().to_owned()
        }),
        FaultPlan::none(),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut request = EvalRequest::new(
        sample("news-summarization", "news.jsonl"),
        "Summarize this article in one sentence.\n\n{document}".into(),
        vec!["openai:m".into()],
        vec![MetricName::SummarizationAccuracy],
    );
    request.reference_field = "summary".into();
    let (summary, records) = run_and_export(&request, &server, dir.path()).await;
    assert_eq!(records.len(), 8);
    for record in &records {
        let output = record["model_output"].as_str().unwrap();
        let target = record["target_output"].as_str().unwrap();
        let expected = fmeval_scoring::metrics::rouge::score(output, target);
        let scores = record["scores"].as_array().unwrap();
        let names: Vec<&str> = scores
            .iter()
            .map(|score| score["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["rouge1", "rouge2", "rougeL"]);
        assert_eq!(scores[0]["value"].as_f64(), Some(expected.rouge1));
        assert_eq!(scores[2]["value"].as_f64(), Some(expected.rouge_l));
        assert!(expected.rouge1 > 0.0 && expected.rouge1 < 1.0, "{output:?}");
    }
    assert_eq!(summary.config["task"], "summarization");
    // `category` is there: per-category means without asking.
    assert_eq!(summary.models[0].categories.len(), 6);
    assert!(summary.models[0].classification.is_none());
}

/// The questions of the first `n` squad records, in file order.
fn squad_questions(n: usize) -> Vec<String> {
    read_jsonl(&crate::helpers::squad_jsonl())
        .iter()
        .take(n)
        .map(|record| record["question"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn qa_robustness_sends_exactly_the_perturbed_prompts() {
    // Right when the prompt is unperturbed ("France" is the first record's answer), otherwise
    // an answer that depends on the prompt.
    let questions = squad_questions(3);
    let plain: Vec<String> = questions
        .iter()
        .map(|question| format!("Q: {question}"))
        .collect();
    let server = start(
        Answer::from_fn(move |prompt| {
            if plain.iter().any(|original| original == prompt.text) {
                "France".to_owned()
            } else {
                format!("France {}", prompt.text.len())
            }
        }),
        FaultPlan::none(),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut request = EvalRequest::new(
        crate::helpers::squad_jsonl(),
        "Q: {question}".into(),
        vec!["openai:m".into()],
        vec![MetricName::QaAccuracySemanticRobustness],
    );
    request.selection = fmeval_scoring::sample::Selection::First(3);
    request.concurrency = 3;
    request.task.perturbation = Some(fmeval_scoring::perturbation::Perturbation::RandomUpperCase);
    let (summary, records) = run_and_export(&request, &server, dir.path()).await;

    // One stream, records in selection order, five perturbations each.
    let mut perturber = fmeval_scoring::perturbation::Perturber::new(
        fmeval_scoring::perturbation::Perturbation::RandomUpperCase,
    );
    let mut expected_prompts = Vec::new();
    for (record, question) in records.iter().zip(&questions) {
        let expected: Vec<String> = perturber
            .perturb(question)
            .into_iter()
            .map(|perturbed| format!("Q: {perturbed}"))
            .collect();
        let got: Vec<&str> = record["perturbations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|perturbed| perturbed["prompt"].as_str().unwrap())
            .collect();
        assert_eq!(got, expected);
        expected_prompts.extend(expected);
        let names: Vec<&str> = record["scores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|score| score["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            MetricName::QaAccuracySemanticRobustness.score_names()
        );
    }
    // The double saw the 3 originals and exactly the 15 perturbed prompts.
    let mut seen: Vec<String> = server
        .received()
        .into_iter()
        .map(|received| received.prompt)
        .collect();
    assert_eq!(seen.len(), 18);
    seen.retain(|prompt| {
        !questions
            .iter()
            .any(|question| *prompt == format!("Q: {question}"))
    });
    seen.sort();
    expected_prompts.sort();
    assert_eq!(seen, expected_prompts);

    // Deltas: the mean over the five perturbed answers of |original - perturbed|.
    let first = &records[0];
    let original_f1 = first["scores"][0]["value"].as_f64().unwrap();
    let perturbed_f1: Vec<f64> = first["perturbations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|perturbed| perturbed["scores"][0]["value"].as_f64().unwrap())
        .collect();
    let mut sum = 0.0;
    for value in &perturbed_f1 {
        sum += (original_f1 - value).abs();
    }
    assert_eq!(first["scores"][5]["name"], "delta_f1_score");
    assert_eq!(first["scores"][5]["value"].as_f64(), Some(sum / 5.0));
    assert!(sum > 0.0, "the perturbed answers score differently");
    assert_eq!(summary.config["perturbation"], "random_upper_case");
    assert_eq!(summary.config["perturbed_field"], "question");
    // The extra calls are paid for: 6 calls' tokens per record.
    let tokens = first["input_tokens"].as_u64().unwrap();
    assert!(tokens >= 6, "{tokens}");
}

#[tokio::test]
async fn classification_robustness_scores_the_delta() {
    // Answers "positive" unless the prompt has an upper-case letter after its first one.
    let server = start(
        Answer::from_fn(|prompt| {
            if prompt.text.chars().skip(1).any(char::is_uppercase) {
                "negative".to_owned()
            } else {
                "positive".to_owned()
            }
        }),
        FaultPlan::none(),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut request = EvalRequest::new(
        sample("reviews-classification", "reviews.jsonl"),
        "review: {text}".into(),
        vec!["openai:m".into()],
        vec![MetricName::ClassificationAccuracySemanticRobustness],
    );
    request.reference_field = "label".into();
    request.selection = fmeval_scoring::sample::Selection::First(4);
    request.task.perturbation = Some(fmeval_scoring::perturbation::Perturbation::RandomUpperCase);
    let (summary, records) = run_and_export(&request, &server, dir.path()).await;
    assert_eq!(records.len(), 4);
    for record in &records {
        let scores = record["scores"].as_array().unwrap();
        assert_eq!(scores[0]["name"], "classification_accuracy_score");
        assert_eq!(scores[1]["name"], "delta_classification_accuracy_score");
        assert_eq!(record["perturbations"].as_array().unwrap().len(), 5);
    }
    // The first review is positive and its original prompt ("review: The battery...") has
    // an upper-case `T`: predicted negative; every perturbed prompt also has capitals.
    assert_eq!(records[0]["scores"][0]["value"], 0);
    assert_eq!(records[0]["scores"][1]["value"].as_f64(), Some(0.0));
    let names: Vec<&str> = summary.models[0]
        .scores
        .iter()
        .map(|score| score.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "classification_accuracy_score",
            "balanced_accuracy_score",
            "precision_score",
            "recall_score",
            "delta_classification_accuracy_score"
        ]
    );
}

/// `perturb_field` picks the field the robustness metric perturbs (by default the template's
/// first): the other fields are filled unperturbed, and the stream is the same one the
/// default field would draw, applied to the chosen field's values.
#[tokio::test]
async fn robustness_perturbs_the_field_asked_for() {
    let questions = squad_questions(2);
    let server = start(Answer::Fixed("France".into()), FaultPlan::none()).await;
    let dir = tempfile::tempdir().unwrap();
    let docs: Vec<String> = std::fs::read_to_string(crate::helpers::squad_jsonl())
        .unwrap()
        .lines()
        .take(2)
        .map(|line| {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            record["doc"].as_str().unwrap().to_owned()
        })
        .collect();
    let mut request = EvalRequest::new(
        crate::helpers::squad_jsonl(),
        "{doc}\nQ: {question}".into(),
        vec!["openai:m".into()],
        vec![MetricName::QaAccuracySemanticRobustness],
    );
    request.selection = fmeval_scoring::sample::Selection::First(2);
    request.task.perturbation = Some(fmeval_scoring::perturbation::Perturbation::RandomUpperCase);
    request.task.perturb_field = Some("question".into());
    let (summary, records) = run_and_export(&request, &server, dir.path()).await;
    let mut perturber = fmeval_scoring::perturbation::Perturber::new(
        fmeval_scoring::perturbation::Perturbation::RandomUpperCase,
    );
    for ((record, question), doc) in records.iter().zip(&questions).zip(&docs) {
        let expected: Vec<String> = perturber
            .perturb(question)
            .into_iter()
            .map(|perturbed| format!("{doc}\nQ: {perturbed}"))
            .collect();
        let got: Vec<&str> = record["perturbations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|perturbed| perturbed["prompt"].as_str().unwrap())
            .collect();
        assert_eq!(got, expected);
    }
    assert_eq!(summary.config["perturbed_field"], "question");
    // Stored with the run: a clone or a resume perturbs the same field.
    let again = EvalRequest::from_config(&summary.config).unwrap();
    assert_eq!(again.task.perturb_field.as_deref(), Some("question"));
}
