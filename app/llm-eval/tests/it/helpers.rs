//! Helpers of this binary's tests: the shared ones from `testkit`, and running the `llm-eval`
//! binary and checking how it exited.

#![allow(clippy::unwrap_used, dead_code)]

use std::path::Path;
use std::process::Output;

use model_doubles::ModelServer;
pub use testkit::*;

/// The `llm-eval` binary with a hermetic environment pointed at `server`.
pub fn llm_eval(server: &ModelServer, dir: &Path) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_llm-eval"));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("OPENAI_BASE_URL", format!("{}/v1", server.url()))
        .env("OPENAI_API_KEY", "test-key")
        .env("AWS_ENDPOINT_URL", server.url())
        .env("AWS_ACCESS_KEY_ID", "AKIDTEST")
        .env("AWS_SECRET_ACCESS_KEY", "test-secret")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("LLM_EVAL_STORE", dir.join("store.sqlite"))
        .env("LLM_EVAL_CACHE_DIR", dir.join("cache"))
        .current_dir(dir);
    if std::env::var_os("TEST_LOG").is_some() {
        command.env("RUST_LOG", "debug");
    }
    command
}

/// Runs `command` (an [`llm_eval`] command) to completion.
pub async fn output(command: std::process::Command) -> Output {
    tokio::process::Command::from(command)
        .output()
        .await
        .expect("llm-eval runs")
}

/// Runs `llm-eval args` against `server` in `dir`.
pub async fn run(server: &ModelServer, dir: &Path, args: &[&str]) -> Output {
    let mut command = llm_eval(server, dir);
    command.args(args);
    output(command).await
}

/// The arguments of an `eval` of `dataset` with `template`, `model` and `metric`, followed by
/// `extra` (more models, metrics, options).
pub fn eval_args_with<'a>(
    dataset: &'a str,
    template: &'a str,
    model: &'a str,
    metric: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "eval",
        "--dataset",
        dataset,
        "--template",
        template,
        "--model",
        model,
        "--metric",
        metric,
    ];
    args.extend_from_slice(extra);
    args
}

/// The arguments of a quiet `eval` of `dataset` with the squad template, `openai:gpt-4o-mini`,
/// `qa_accuracy` and `factual_knowledge`, writing to `out`, followed by `extra`.
pub fn eval_args<'a>(dataset: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = eval_args_with(
        dataset,
        SQUAD_TEMPLATE,
        "openai:gpt-4o-mini",
        "qa_accuracy",
        &[
            "--metric",
            "factual_knowledge",
            "--out",
            out,
            "--timeout",
            "2",
            "--quiet",
        ],
    );
    args.extend_from_slice(extra);
    args
}

/// Runs the [`eval_args`] of `dataset`, `out` and `extra` against `server` in `dir`.
pub async fn eval(
    server: &ModelServer,
    dir: &Path,
    dataset: &str,
    out: &str,
    extra: &[&str],
) -> Output {
    run(server, dir, &eval_args(dataset, out, extra)).await
}

/// The process exited with `expected`; otherwise fails showing its stdout and stderr.
pub fn assert_exit(output: &Output, expected: i32) {
    assert_eq!(
        output.status.code(),
        Some(expected),
        "stdout: {}\nstderr: {}",
        text(&output.stdout),
        text(&output.stderr)
    );
}

/// The process exited 2 (usage or configuration error) with `needle` in its stderr.
pub fn assert_usage_error(output: &Output, needle: &str) {
    assert_exit(output, 2);
    let stderr = text(&output.stderr);
    assert!(stderr.contains(needle), "{needle}: {stderr}");
}

/// `summary.json` of the output directory `out` under `dir`.
pub fn summary(dir: &Path, out: &str) -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(dir.join(out).join("summary.json")).expect("summary.json exists"),
    )
    .expect("summary.json is JSON")
}
