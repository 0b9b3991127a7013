//! Throughput of the runner writing to the DynamoDB + S3 store on a moto server, against a
//! local OpenAI-compatible double with 200 ms latency: 1,000 records at concurrency 16, records/s
//! and the ratio to the bound (concurrency ÷ latency; target at least 90 %, as with SQLite), and
//! the DynamoDB requests per stored record. Then the store alone: records/s of batched writes
//! (`insert_records` of 500 rows). Needs `moto_server` (scripts/test.sh installs it). Prints
//! figures, asserts nothing.

mod common;

use std::sync::Arc;
use std::time::Instant;

use common::{LATENCY, N_RECORDS, dataset, timed_run};
use store::dynamo::{DynamoConfig, sdk_loader};
use store::{DynamoStore, Store, UserId};

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench());
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
        let requests_before = store.dynamo_requests();
        let outcome = timed_run(&path, concurrency, Arc::new(store.clone())).await;
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
