//! Prompt variants from the command line: `--template` given more than once, or a
//! `--templates` file of labelled variants; every variant meets every model on the same
//! records, and the results are a matrix of variants × models.

#![allow(clippy::unwrap_used)]

use model_doubles::{Answer, Behavior, ModelServer};
use serde_json::Value;

use crate::helpers::*;

/// "France" when the prompt ends with "Country:", a wrong answer otherwise: the second
/// variant wins on every record that is about France.
async fn server() -> ModelServer {
    ModelServer::start(Behavior {
        answer: Answer::from_fn(|prompt| {
            if prompt.text.trim_end().ends_with("Country:") {
                "France".to_string()
            } else {
                "I do not know".to_string()
            }
        }),
        ..Behavior::default()
    })
    .await
    .unwrap()
}

fn lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[tokio::test]
async fn repeated_templates_are_variants_a_b_over_the_same_records_and_models() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let dataset = squad_jsonl();
    let args = [
        "eval",
        "--dataset",
        dataset.to_str().unwrap(),
        "--template",
        "Q: {question}",
        "--template",
        "Q: {question}\nCountry:",
        "--model",
        "openai:m1",
        "--model",
        "openai:m2",
        "--metric",
        "qa_accuracy",
        "--records",
        "5",
        "--name",
        "Two prompts",
        "--out",
        "out",
        "--quiet",
    ];
    let output = run(&server, dir.path(), &args).await;
    assert_exit(&output, 0);
    // 5 records × 2 variants × 2 models, each model called with exactly each variant's prompt.
    let records = lines(&dir.path().join("out/records.jsonl"));
    assert_eq!(records.len(), 20);
    let cells: std::collections::BTreeSet<(String, String)> = records
        .iter()
        .map(|record| {
            (
                record["variant"].as_str().unwrap().to_string(),
                record["model"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(cells.len(), 4, "{cells:?}");
    for record in &records {
        let country = record["model_input"]
            .as_str()
            .unwrap()
            .ends_with("Country:");
        assert_eq!(
            record["variant"],
            if country { "B" } else { "A" },
            "{record}"
        );
    }
    // Records in selection order, then column order: A·m1, A·m2, B·m1, B·m2.
    let first: Vec<(&str, &str)> = records[..4]
        .iter()
        .map(|record| {
            (
                record["variant"].as_str().unwrap(),
                record["model"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        first,
        [
            ("A", "openai:m1"),
            ("A", "openai:m2"),
            ("B", "openai:m1"),
            ("B", "openai:m2")
        ]
    );
    let csv_text = std::fs::read_to_string(dir.path().join("out/records.csv")).unwrap();
    assert!(
        csv_text.lines().next().unwrap().contains(",model,variant,"),
        "{csv_text}"
    );

    // The summary: one line per (variant, model), with the run's name and both templates.
    let summary: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("out/summary.json")).unwrap(),
    )
    .unwrap();
    let lines: Vec<(String, String)> = summary["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| {
            (
                line["variant"].as_str().unwrap().to_string(),
                line["model"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(summary["config"]["name"], "Two prompts");
    assert_eq!(summary["config"]["variants"][1]["label"], "B");
    assert_eq!(
        summary["config"]["variants"][1]["template"],
        "Q: {question}\nCountry:"
    );
    assert_eq!(summary["total"], 20);
    let f1 = |variant: &str, model: &str| -> f64 {
        summary["models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|line| line["variant"] == variant && line["model"] == model)
            .unwrap()["scores"]
            .as_array()
            .unwrap()
            .iter()
            .find(|score| score["name"] == "f1_score")
            .unwrap()["value"]
            .as_f64()
            .unwrap()
    };
    assert!(f1("B", "openai:m1") > f1("A", "openai:m1"));
    assert_eq!(f1("A", "openai:m1"), 0.0);

    // The printed matrix: variants as rows, models as columns, the best cell starred.
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("f1_score (variant × model, * best)"),
        "{stdout}"
    );
    let row_b = stdout
        .lines()
        .skip_while(|line| !line.starts_with("f1_score (variant"))
        .find(|line| line.starts_with("B "))
        .unwrap();
    assert!(row_b.contains('*'), "{stdout}");
}

#[tokio::test]
async fn a_templates_file_names_its_variants_and_bad_ones_are_refused_before_any_call() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let dataset = squad_jsonl();
    std::fs::write(
        dir.path().join("variants.toml"),
        "[[variant]]\nlabel = \"plain\"\ntemplate = \"Q: {question}\"\n\n\
         [[variant]]\nlabel = \"with hint\"\ntemplate = \"\"\"\nQ: {question}\nCountry:\"\"\"\n",
    )
    .unwrap();
    let base = |file: &'static str| {
        vec![
            "eval".to_string(),
            "--dataset".into(),
            dataset.to_str().unwrap().into(),
            "--templates".into(),
            file.into(),
            "--model".into(),
            "openai:m".into(),
            "--metric".into(),
            "qa_accuracy".into(),
            "--records".into(),
            "3".into(),
            "--quiet".into(),
        ]
    };
    let mut args = base("variants.toml");
    args.extend(["--out".into(), "named".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = run(&server, dir.path(), &args).await;
    assert_exit(&output, 0);
    let variants: std::collections::BTreeSet<String> =
        lines(&dir.path().join("named/records.jsonl"))
            .iter()
            .map(|record| record["variant"].as_str().unwrap().to_string())
            .collect();
    assert_eq!(
        variants.into_iter().collect::<Vec<_>>(),
        ["plain", "with hint"]
    );

    // A variant whose template names a missing field: refused, named, no model called.
    let calls_before = server.received().len();
    std::fs::write(
        dir.path().join("bad.toml"),
        "[[variant]]\ntemplate = \"Q: {question}\"\n[[variant]]\nlabel = \"typo\"\ntemplate = \"{questoin}\"\n",
    )
    .unwrap();
    let args: Vec<String> = base("bad.toml");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = run(&server, dir.path(), &args).await;
    assert_usage_error(&output, "variant typo");
    assert_usage_error(&output, "questoin");
    // An unknown key is named with the file.
    std::fs::write(
        dir.path().join("odd.toml"),
        "[[variant]]\nprompt = \"{question}\"\n",
    )
    .unwrap();
    let args: Vec<String> = base("odd.toml");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = run(&server, dir.path(), &args).await;
    assert_usage_error(&output, "odd.toml");
    assert_eq!(server.received().len(), calls_before);
}
