//! Template amplification (issue 19): a short template that repeats a long field thousands of
//! times. Rendering stops at the rendered-prompt limit (`--max-prompt-size`) in `preview` and in
//! `eval`, with an error naming the template and the limit, and nothing of the oversized prompt
//! is sent or stored.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use model_doubles::{Behavior, ModelServer};

use crate::helpers::{read_jsonl, squad_jsonl, text};

/// 4,000 `{doc}` placeholders: 20 KB of template, about 80 MB of prompt per sample record.
fn amplified_template() -> String {
    "{doc}".repeat(4_000)
}

async fn bounded<T>(work: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), work)
        .await
        .expect("finished within the test's time bound")
}

#[tokio::test]
async fn preview_of_an_amplifying_template_stops_at_the_prompt_limit() {
    let server = ModelServer::start(Behavior::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dataset = squad_jsonl();
    let template = amplified_template();
    let args = [
        "preview",
        "--dataset",
        dataset.to_str().unwrap(),
        "--template",
        template.as_str(),
    ];
    let output = bounded(crate::helpers::run(&server, dir.path(), &args)).await;
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("the prompt template renders to more than 1 MiB")
            && stderr.contains("--max-prompt-size"),
        "{stderr}"
    );
    assert!(output.stdout.len() < 1000, "{} bytes", output.stdout.len());
    assert!(stderr.len() < 2000, "{} bytes of stderr", stderr.len());

    // The limit is a setting: 400 placeholders (1.7 MB of prompt) fail under the default and
    // print in full once it is raised.
    let template = "{doc}".repeat(400);
    let args = [
        "preview",
        "--dataset",
        dataset.to_str().unwrap(),
        "--template",
        template.as_str(),
    ];
    let output = bounded(crate::helpers::run(&server, dir.path(), &args)).await;
    assert!(!output.status.success());
    let mut command = crate::helpers::llm_eval(&server, dir.path());
    command.args(args).env("LLM_EVAL_MAX_PROMPT_SIZE", "4MiB");
    let output = bounded(crate::helpers::output(command)).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        output.stdout.len() > 1 << 20,
        "{} bytes",
        output.stdout.len()
    );
}

#[tokio::test]
async fn eval_of_an_amplifying_template_fails_each_record_without_calling_the_model() {
    let server = ModelServer::start(Behavior::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dataset = squad_jsonl();
    let template = amplified_template();
    let args = [
        "eval",
        "--dataset",
        dataset.to_str().unwrap(),
        "--template",
        template.as_str(),
        "--model",
        "openai:gpt-4o-mini",
        "--metric",
        "qa_accuracy",
        "--records",
        "3",
        "--out",
        "out",
        "--quiet",
        "--no-cache",
        "--max-prompt-size",
        "64KiB",
    ];
    let output = bounded(crate::helpers::run(&server, dir.path(), &args)).await;
    let rows = read_jsonl(&dir.path().join("out").join("records.jsonl"));
    assert_eq!(rows.len(), 3, "{}", text(&output.stderr));
    for row in &rows {
        let error = row["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("the prompt template renders to more than 64 KiB"),
            "{row}"
        );
        assert!(
            row.to_string().len() < 4096,
            "a stored row holds the prompt"
        );
    }
    assert!(server.received().is_empty(), "a model was called");
}
