//! Throughput of the runner writing to the DynamoDB + S3 store on a moto server, against a
//! local OpenAI-compatible double with 200 ms latency: 1,000 records at concurrency 16, records/s
//! and the ratio to the bound (concurrency ÷ latency; target at least 90 %, as with SQLite), and
//! the DynamoDB requests per stored record. Then the store alone: records/s of batched writes
//! (`insert_records` of 500 rows). Needs `moto_server` (scripts/test.sh installs it). Prints
//! figures, asserts nothing.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::dataset::Dataset;
use engine::judge::Rubric;
use engine::providers::InferenceParams;
use engine::providers::openai::{OpenAiConfig, OpenAiProvider};
use engine::runner::{self, EvalPlan, ModelClient, RunContext, RunnerConfig};
use engine::template::PromptTemplate;
use fmeval_scoring::metrics::MetricName;
use fmeval_scoring::sample::Selection;
use model_doubles::{Behavior, ModelServer};
use store::dynamo::{DynamoConfig, sdk_loader};
use store::{DynamoStore, Store, UserId};
use tokio_util::sync::CancellationToken;

const N_RECORDS: usize = 1_000;
const LATENCY: Duration = Duration::from_millis(200);

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench());
}

/// Writes `n` records with distinct questions (so the cache could not help even if enabled).
fn dataset(dir: &std::path::Path, n: usize) -> std::path::PathBuf {
    let path = dir.join("bench.jsonl");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).expect("create dataset"));
    for i in 0..n {
        let line = serde_json::json!({"question": format!("question {i}?"), "answers": ["answer"]});
        writeln!(file, "{line}").expect("write dataset");
    }
    file.flush().expect("flush dataset");
    path
}

async fn bench() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dataset(dir.path(), N_RECORDS);
    println!(
        "throughput: {N_RECORDS} records, OpenAI-compatible double with {} ms latency, qa_accuracy + factual_knowledge, no cache; bound = concurrency / latency; target >= 90 % of the bound",
        LATENCY.as_millis()
    );
    let moto = model_doubles::Moto::start().await;
    let config = sdk_loader()
        .endpoint_url(moto.url())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "testing", "testing", None, None, "bench",
        ))
        .load()
        .await;
    let store = DynamoStore::new(
        &config,
        DynamoConfig {
            table: "bench".into(),
            bucket: "bench".into(),
            local_dir: dir.path().to_path_buf(),
        },
    )
    .expect("store");
    store.create_table().await.expect("table");
    for concurrency in [16usize] {
        // A fresh double per run, so its counters (requests, max in flight) are this run's.
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
            dataset: Dataset::open(&path).expect("dataset"),
            variants: vec![engine::runner::Variant {
                label: engine::runner::DEFAULT_VARIANT.to_string(),
                template: PromptTemplate::parse("Human: {question}\n\nAssistant:")
                    .expect("template"),
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
            store: Arc::new(store.clone()),
            owner: UserId::local(),
            cache: None,
            events,
            cancel: CancellationToken::new(),
        };
        let requests_before = store.dynamo_requests();
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
        let requests = store.dynamo_requests() - requests_before;
        println!(
            "  DynamoDB requests: {requests} for {} records = {:.3} per record (the run item, a run check and a counter update per written batch, one conditional put per record, the summary's reads)",
            outcome.done + outcome.failed,
            requests as f64 / (outcome.done + outcome.failed).max(1) as f64
        );
    }
    // The store alone: batched writes as fast as moto takes them.
    let owner = UserId::local();
    let rows: Vec<store::RecordRow> = (0..N_WRITES)
        .map(|position| store::RecordRow {
            model: "m".into(),
            model_order: 0,
            variant: String::new(),
            position,
            index: position,
            model_input: format!("Human: question {position}?\n\nAssistant:"),
            prompt: format!("Human: question {position}?\n\nAssistant:"),
            model_output: Some(" answer".into()),
            target_output: Some("answer".into()),
            category: None,
            scores: Vec::new(),
            latency_ms: Some(200.0),
            input_tokens: Some(10),
            output_tokens: Some(2),
            cost_usd: None,
            error: None,
            judge_replies: Vec::new(),
            perturbations: Vec::new(),
            cached: false,
        })
        .collect();
    store
        .create_run(&owner, "writes", &serde_json::json!({}), N_WRITES)
        .await
        .expect("run");
    let requests_before = store.dynamo_requests();
    let started = Instant::now();
    for chunk in rows.chunks(500) {
        store
            .insert_records(&owner, "writes", chunk.to_vec())
            .await
            .expect("insert");
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "store writes: {N_WRITES} records in batches of 500: {:.0} records/s, {:.3} DynamoDB requests per record ({elapsed:.2} s)",
        N_WRITES as f64 / elapsed,
        (store.dynamo_requests() - requests_before) as f64 / N_WRITES as f64
    );
}

const N_WRITES: usize = 5_000;
