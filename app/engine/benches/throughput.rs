//! Throughput of the runner against a local OpenAI-compatible double with 200 ms latency:
//! 1,000 records at concurrency 16 and 64, records/s and the ratio to the bound
//! (concurrency ÷ latency). Target: at least 90 % of the bound. Prints figures, asserts nothing.

mod common;

use common::{LATENCY, N_RECORDS, dataset, timed_run};
use store::SqliteStore;

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
    for concurrency in [16usize, 64] {
        let store =
            SqliteStore::open_shared(&dir.path().join(format!("store-{concurrency}.sqlite")))
                .expect("store");
        timed_run(&path, concurrency, store).await;
    }
}
