//! Shared test helpers: paths to the sample dataset, model doubles wired to the real provider
//! code, run plans with fast retry settings, and running the `llm-eval` binary and checking
//! how it exited.

#![allow(clippy::unwrap_used, dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use app::dataset::Dataset;
use app::metrics::MetricName;
use app::metrics::llm_judge::Rubric;
use app::providers::InferenceParams;
use app::providers::openai::{OpenAiConfig, OpenAiProvider};
use app::runner::{EvalPlan, ModelClient, RunContext, RunnerConfig};
use app::sample::Selection;
use app::store::{SqliteStore, UserId};
use app::template::PromptTemplate;
use model_doubles::{Answer, Behavior, FaultPlan, ModelServer};
use tokio_util::sync::CancellationToken;

/// The squad-qa template used across the tests (the original app's default).
pub const SQUAD_TEMPLATE: &str = "Human: {doc}\n\nAnswer briefly: {question}\n\nAssistant:";

/// How many records the sample dataset holds.
pub const N_SQUAD: usize = 20;

/// The workspace root (parent of `app/`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("app/ has a parent directory")
        .to_path_buf()
}

/// The sample dataset directory shipped in the repository (`app/data/squad-qa`).
pub fn squad_dir() -> PathBuf {
    PathBuf::from(app::sample_data::SOURCE_DIR)
}

/// `qa.jsonl` of the sample dataset.
pub fn squad_jsonl() -> PathBuf {
    squad_dir().join("qa.jsonl")
}

/// `qa.csv` of the sample dataset.
pub fn squad_csv() -> PathBuf {
    squad_dir().join("qa.csv")
}

/// A model double giving `answer` under `faults` (no latency, no API key).
pub async fn start(answer: Answer, faults: FaultPlan) -> ModelServer {
    ModelServer::start(Behavior {
        answer,
        faults,
        ..Behavior::default()
    })
    .await
    .expect("the model double starts")
}

/// An OpenAI-compatible model client talking to `server` (the real provider code).
pub fn openai_client(server: &ModelServer, model_id: &str) -> ModelClient {
    let provider = OpenAiProvider::new(OpenAiConfig {
        base_url: format!("{}/v1", server.url()),
        api_key: None,
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(30),
        max_response: app::limits::DEFAULT_MAX_RESPONSE,
    })
    .expect("the OpenAI client builds");
    ModelClient {
        label: format!("openai:{model_id}"),
        provider: Arc::new(provider),
        model_id: model_id.to_string(),
        params: InferenceParams::default(),
        price_per_1k_input: Some(0.5),
        price_per_1k_output: Some(1.5),
    }
}

/// Retry settings that keep fault tests fast.
pub fn fast_config(concurrency: usize) -> RunnerConfig {
    RunnerConfig {
        concurrency,
        max_attempts: 5,
        timeout: Duration::from_millis(500),
        max_retry_wait: Duration::from_secs(5),
        record_timeout: Duration::from_secs(60),
        backoff_base: Duration::from_millis(5),
        backoff_max: Duration::from_millis(50),
    }
}

/// A plan over `dataset` with the squad template and the given models and metrics.
pub fn plan(
    dataset: &Path,
    models: Vec<ModelClient>,
    metrics: Vec<MetricName>,
    selection: Selection,
) -> EvalPlan {
    EvalPlan {
        dataset: Dataset::open(dataset).expect("dataset opens"),
        template: PromptTemplate::parse(SQUAD_TEMPLATE).expect("template parses"),
        reference_field: "answers".to_string(),
        selection,
        metrics,
        models,
        judges: Vec::new(),
        rubric: Rubric::default_rubric(),
        config: fast_config(4),
        params: Default::default(),
    }
}

/// A [`plan`] over the sample dataset for the one model `openai:m` on `server`.
pub fn squad_plan(
    server: &ModelServer,
    metrics: Vec<MetricName>,
    selection: Selection,
) -> EvalPlan {
    plan(
        &squad_jsonl(),
        vec![openai_client(server, "m")],
        metrics,
        selection,
    )
}

/// A fresh store in `dir` and a context around it (no cache).
pub fn context(dir: &Path) -> RunContext {
    let (events, _) = tokio::sync::broadcast::channel(4096);
    RunContext {
        store: SqliteStore::open_shared(&dir.join("store.sqlite")).expect("store opens"),
        owner: UserId::local(),
        cache: None,
        events,
        cancel: CancellationToken::new(),
    }
}

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

/// The lines of a `records.jsonl` as JSON values.
pub fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .expect("records.jsonl exists")
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect()
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

/// Process output as text (lossy).
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
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
