//! Start-up cost: a 1-record run of the release `llm-eval` binary, from process start to the
//! printed score, against a local OpenAI-compatible double answering at once. Target: under
//! 0.5 s. Prints figures, asserts nothing.

use std::time::{Duration, Instant};

use model_doubles::{Answer, Behavior, ModelServer};

const RUNS: usize = 7;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench());
}

async fn bench() {
    let server = ModelServer::start(Behavior {
        answer: Answer::Fixed("France".into()),
        ..Behavior::default()
    })
    .await
    .expect("double starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let dataset = std::path::Path::new(engine::sample_data::SOURCE_DIR).join("qa.jsonl");
    let mut times: Vec<Duration> = Vec::new();
    for run in 0..RUNS {
        let started = Instant::now();
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_llm-eval"))
            .args(["eval", "--dataset"])
            .arg(&dataset)
            .args([
                "--template",
                "Human: {question}\n\nAssistant:",
                "--model",
                "openai:gpt-4o-mini",
                "--metric",
                "qa_accuracy",
                "--records",
                "1",
                "--no-cache",
                "--quiet",
                "--out",
            ])
            .arg(dir.path().join(format!("out-{run}")))
            .env("OPENAI_BASE_URL", format!("{}/v1", server.url()))
            .env("OPENAI_API_KEY", "bench")
            .env("LLM_EVAL_STORE", dir.path().join("store.sqlite"))
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .await
            .expect("llm-eval runs");
        let elapsed = started.elapsed();
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() || !stdout.contains("f1_score") {
            println!(
                "run {run} failed: {}\n{stdout}",
                String::from_utf8_lossy(&output.stderr)
            );
            return;
        }
        times.push(elapsed);
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "startup: 1-record run of the release binary, process start to exit (score printed), {RUNS} runs: min {:.1} ms, median {:.1} ms, max {:.1} ms (target < 500 ms)",
        ms(times[0]),
        ms(times[RUNS / 2]),
        ms(times[RUNS - 1])
    );
}
