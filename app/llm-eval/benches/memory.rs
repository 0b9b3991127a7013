//! Peak memory of evaluating 100,000 records: `qa.jsonl` repeated with new ids into a temp file,
//! run by the release `llm-eval` binary against a local double with 1 ms latency; the child's
//! peak RSS is its `VmHWM` from `/proc/<pid>/status` (the kernel's high-water mark of the
//! resident set, read every 10 ms until exit, so only growth in the last few milliseconds could
//! be missed). Target: under 200 MB. Prints figures, asserts nothing.

use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use model_doubles::{Behavior, ModelServer};

const N_RECORDS: usize = 100_000;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench());
}

fn squad_lines() -> Vec<serde_json::Map<String, serde_json::Value>> {
    let path = std::path::Path::new(engine::sample_data::SOURCE_DIR).join("qa.jsonl");
    let file = std::fs::File::open(&path).expect("qa.jsonl opens");
    std::io::BufReader::new(file)
        .lines()
        .map(|line| line.expect("qa.jsonl reads"))
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(&line).expect("qa.jsonl parses"))
        .collect()
}

fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

async fn bench() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("big.jsonl");
    let base = squad_lines();
    {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
        for i in 0..N_RECORDS {
            let mut record = base[i % base.len()].clone();
            record.insert(
                "question_id".into(),
                serde_json::Value::from(format!("bench-{i}")),
            );
            // A distinct question per record, so every record is a distinct request.
            let question = record
                .get("question")
                .and_then(|q| q.as_str())
                .unwrap_or("")
                .to_string();
            record.insert(
                "question".into(),
                serde_json::Value::from(format!("{question} (#{i})")),
            );
            writeln!(file, "{}", serde_json::Value::Object(record)).expect("write");
        }
        file.flush().expect("flush");
    }
    let server = ModelServer::start(Behavior::with_latency(Duration::from_millis(1)))
        .await
        .expect("double starts");
    let stderr_path = dir.path().join("stderr.log");
    let started = Instant::now();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_llm-eval"))
        .args(["eval", "--dataset"])
        .arg(&path)
        .args([
            "--template",
            "Human: {doc}\n\nAnswer briefly: {question}\n\nAssistant:",
            "--model",
            "openai:gpt-4o-mini",
            "--metric",
            "qa_accuracy",
            "--metric",
            "factual_knowledge",
            "--concurrency",
            "64",
            "--no-cache",
            "--quiet",
            "--out",
        ])
        .arg(dir.path().join("out"))
        .env("OPENAI_BASE_URL", format!("{}/v1", server.url()))
        .env("OPENAI_API_KEY", "bench")
        .env("LLM_EVAL_STORE", dir.path().join("store.sqlite"))
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        // Files, not pipes: a child blocked on a full pipe would stop (and stop growing).
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).expect("create stderr log"))
        .spawn()
        .expect("llm-eval starts");
    let pid = child.id().expect("child pid");
    let mut peak_kb = 0;
    let status = loop {
        if let Some(kb) = vm_hwm_kb(pid) {
            peak_kb = peak_kb.max(kb);
        }
        match tokio::time::timeout(Duration::from_millis(10), child.wait()).await {
            Ok(status) => break status.expect("wait"),
            Err(_) => continue,
        }
    };
    let elapsed = started.elapsed().as_secs_f64();
    let lines = std::fs::read_to_string(dir.path().join("out/records.jsonl"))
        .map(|text| text.lines().count())
        .unwrap_or(0);
    println!(
        "memory: {N_RECORDS} records (concurrency 64, 1 ms double): peak RSS (VmHWM) {:.1} MB (target < 200 MB); exit {:?}, {lines} records written, {elapsed:.1} s ({:.0} records/s)",
        peak_kb as f64 / 1024.0,
        status.code(),
        lines as f64 / elapsed,
    );
    if !status.success() || lines != N_RECORDS {
        let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        println!("FAILED: the run did not evaluate every record\n{stderr}");
        std::process::exit(1);
    }
}
