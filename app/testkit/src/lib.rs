//! Helpers shared by the integration tests and benchmarks of the app's crates (a dev-dependency
//! only; nothing shipped depends on it): paths to the sample dataset, model doubles wired to the
//! real provider code, run plans with fast retry settings, and Cognito on a moto server
//! ([`cognito`]).

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

pub mod cognito;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use engine::dataset::Dataset;
use engine::judge::Rubric;
use engine::providers::InferenceParams;
use engine::providers::openai::{OpenAiConfig, OpenAiProvider};
use engine::runner::{EvalPlan, ModelClient, RunContext, RunnerConfig};
use engine::template::PromptTemplate;
use fmeval_scoring::metrics::MetricName;
use fmeval_scoring::sample::Selection;
use model_doubles::{Answer, Behavior, FaultPlan, ModelServer};
use store::{SqliteStore, UserId};
use tokio_util::sync::CancellationToken;

/// The squad-qa template used across the tests (the original app's default).
pub const SQUAD_TEMPLATE: &str = "Human: {doc}\n\nAnswer briefly: {question}\n\nAssistant:";

/// How many records the sample dataset holds.
pub const N_SQUAD: usize = 20;

/// The workspace root (the parent of `app/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("app/testkit/ has two parents")
        .to_path_buf()
}

/// The sample dataset directory shipped in the repository (`app/data/squad-qa`).
pub fn squad_dir() -> PathBuf {
    PathBuf::from(engine::sample_data::SOURCE_DIR)
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
        max_response: engine::limits::DEFAULT_MAX_RESPONSE,
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
        name: String::new(),
        estimated_cost_usd: None,
        dataset: Dataset::open(dataset).expect("dataset opens"),
        variants: vec![engine::runner::Variant {
            label: engine::runner::DEFAULT_VARIANT.to_string(),
            template: PromptTemplate::parse(SQUAD_TEMPLATE).expect("template parses"),
        }],
        reference_field: "answers".to_string(),
        selection,
        metrics,
        models,
        judges: Vec::new(),
        rubric: Rubric::default_rubric(),
        config: fast_config(4),
        params: Default::default(),
        task: Default::default(),
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

/// The lines of a `records.jsonl` as JSON values.
pub fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .expect("records.jsonl exists")
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect()
}

/// Process output as text (lossy).
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
