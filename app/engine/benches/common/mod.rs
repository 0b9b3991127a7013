//! What the runner benchmarks share: the dataset, one timed run of it against a fresh
//! OpenAI-compatible double and its printed line. Each bench includes it with `mod common;`.
//! Depends on the engine, the store trait and the model doubles only.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::dataset::Dataset;
use engine::judge::Rubric;
use engine::providers::InferenceParams;
use engine::providers::openai::{OpenAiConfig, OpenAiProvider};
use engine::runner::{self, EvalPlan, ModelClient, RunContext, RunOutcome, RunnerConfig};
use engine::template::PromptTemplate;
use fmeval_scoring::metrics::MetricName;
use fmeval_scoring::sample::Selection;
use model_doubles::{Behavior, ModelServer};
use store::{Store, UserId};
use tokio_util::sync::CancellationToken;

/// Records per run.
pub const N_RECORDS: usize = 1_000;
/// The double's latency per request.
pub const LATENCY: Duration = Duration::from_millis(200);

/// Writes `n` records with distinct questions (so the cache could not help even if enabled).
pub fn dataset(dir: &Path, n: usize) -> PathBuf {
    let path = dir.join("bench.jsonl");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).expect("create dataset"));
    for i in 0..n {
        let line = serde_json::json!({"question": format!("question {i}?"), "answers": ["answer"]});
        writeln!(file, "{line}").expect("write dataset");
    }
    file.flush().expect("flush dataset");
    path
}

/// Runs the dataset at `path` (qa_accuracy + factual_knowledge, no cache) against a fresh double
/// (so its counters are this run's) at `concurrency` into `store`, and prints records/s against
/// the bound (concurrency ÷ latency).
pub async fn timed_run(path: &Path, concurrency: usize, store: Arc<dyn Store>) -> RunOutcome {
    let server = ModelServer::start(Behavior::with_latency(LATENCY))
        .await
        .expect("double starts");
    let provider = Arc::new(
        OpenAiProvider::new(OpenAiConfig {
            base_url: format!("{}/v1", server.url()),
            api_key: None,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(60),
            max_response: engine::limits::DEFAULT_MAX_RESPONSE,
        })
        .expect("client builds"),
    );
    let plan = EvalPlan {
        name: String::new(),
        estimated_cost_usd: None,
        dataset: Dataset::open(path).expect("dataset"),
        variants: vec![engine::runner::Variant {
            label: engine::runner::DEFAULT_VARIANT.to_string(),
            template: PromptTemplate::parse("Human: {question}\n\nAssistant:").expect("template"),
        }],
        reference_field: "answers".into(),
        selection: Selection::All,
        metrics: vec![MetricName::QaAccuracy, MetricName::FactualKnowledge],
        models: vec![ModelClient {
            label: "openai:bench".into(),
            provider,
            model_id: "bench".into(),
            params: InferenceParams::default(),
            price_per_1k_input: None,
            price_per_1k_output: None,
        }],
        judges: Vec::new(),
        rubric: Rubric::default_rubric(),
        config: RunnerConfig {
            concurrency,
            ..RunnerConfig::default()
        },
        params: Default::default(),
        task: Default::default(),
    };
    let (events, _) = tokio::sync::broadcast::channel(1024);
    let context = RunContext {
        store,
        owner: UserId::local(),
        cache: None,
        events,
        cancel: CancellationToken::new(),
    };
    let started = Instant::now();
    let outcome = runner::run(Arc::new(plan), "bench", context, None)
        .await
        .expect("run");
    let elapsed = started.elapsed().as_secs_f64();
    let rate = outcome.done as f64 / elapsed;
    let bound = concurrency as f64 / LATENCY.as_secs_f64();
    println!(
        "concurrency {concurrency:>3}: {rate:>6.1} records/s = {:>5.1} % of the bound {bound:.0}/s ({} ok, {} failed, {} requests, max {} in flight, {elapsed:.2} s)",
        100.0 * rate / bound,
        outcome.done,
        outcome.failed,
        server.stats().requests,
        server.stats().max_in_flight,
    );
    outcome
}
