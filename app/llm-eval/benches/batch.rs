//! Batch mode at scale: 100,000 records × 1 model through `llm-eval eval --mode batch` (the
//! release binary) against the Bedrock control-plane double and moto's S3, both outside the
//! measured process. Reports the child's peak RSS (`VmHWM`, read every 10 ms), the S3 requests
//! it made per 1,000 records (it prints its count), and its own time outside the jobs: from
//! start to its first job-status line (reading the dataset, writing and uploading the inputs,
//! creating the jobs) plus from the last status line to exit (reading the outputs, scoring,
//! storing, exporting). Targets: peak RSS < 200 MB, own time < 60 s. Prints figures, asserts
//! nothing but completeness.

use std::io::Write;
use std::time::{Duration, Instant};

use model_doubles::bedrock_control::BedrockControl;
use model_doubles::{Answer, BatchBehavior, Moto};
use tokio::io::AsyncBufReadExt;

const N_RECORDS: usize = 100_000;
const BUCKET: &str = "bench-batch";

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench());
}

fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

async fn bench() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("big.jsonl");
    {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
        for i in 0..N_RECORDS {
            let line = serde_json::json!({
                "question": format!("What is the capital of country number {i}?"),
                "answers": format!("answer {i}<OR>capital {i}"),
            });
            writeln!(file, "{line}").expect("write");
        }
        file.flush().expect("flush");
    }
    let moto = Moto::start().await;
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(moto.url())
        .credentials_provider(aws_credential_types::Credentials::new(
            "bench", "bench", None, None, "bench",
        ))
        .load()
        .await;
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    )
    .create_bucket()
    .bucket(BUCKET)
    .send()
    .await
    .expect("bucket");
    let answer = Answer::from_fn(|prompt| {
        let number: String = prompt.text.chars().filter(char::is_ascii_digit).collect();
        format!("answer {number}")
    });
    let mut batch = BatchBehavior::new(moto.url(), answer);
    batch.step = Duration::from_millis(50);
    let bedrock = BedrockControl::start_with_batch("us-east-1", Vec::new(), batch)
        .await
        .expect("double starts");
    let started = Instant::now();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_llm-eval"))
        .args(["eval", "--dataset"])
        .arg(&path)
        .args([
            "--template",
            "{question}",
            "--model",
            "claude-3-haiku",
            "--metric",
            "qa_accuracy",
            "--mode",
            "batch",
            "--no-cache",
            "--out",
        ])
        .arg(dir.path().join("out"))
        .env("LLM_EVAL_STORE", dir.path().join("store.sqlite"))
        .env("LLM_EVAL_BATCH_BUCKET", BUCKET)
        .env(
            "LLM_EVAL_BATCH_ROLE_ARN",
            "arn:aws:iam::123456789012:role/bench",
        )
        .env("LLM_EVAL_BATCH_POLL_SECS", "0.1")
        .env("AWS_ENDPOINT_URL_BEDROCK", bedrock.url())
        .env("AWS_ENDPOINT_URL_S3", moto.url())
        .env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("llm-eval starts");
    let pid = child.id().expect("child pid");
    // Stderr is drained as it comes (a full pipe would stop the child), each line timed.
    let mut lines = tokio::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
    let reader = tokio::spawn(async move {
        let mut timed = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            timed.push((Instant::now(), line));
        }
        timed
    });
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
    let ended = Instant::now();
    let lines = reader.await.expect("stderr reader");
    let status_lines: Vec<&(Instant, String)> = lines
        .iter()
        .filter(|(_, line)| line.starts_with("batch: ") && line.contains(" jobs: "))
        .collect();
    let s3_requests: Option<u64> = lines.iter().find_map(|(_, line)| {
        line.strip_prefix("batch: ")?
            .strip_suffix(" S3 requests")?
            .parse()
            .ok()
    });
    let written = std::fs::read_to_string(dir.path().join("out/records.jsonl"))
        .map(|text| text.lines().count())
        .unwrap_or(0);
    let (Some(first), Some(last)) = (status_lines.first(), status_lines.last()) else {
        let stderr: Vec<&str> = lines.iter().map(|(_, line)| line.as_str()).collect();
        println!("FAILED: no job status line\n{}", stderr.join("\n"));
        std::process::exit(1);
    };
    let submit = first.0 - started;
    let after = ended - last.0;
    println!(
        "batch: {N_RECORDS} records × 1 model, {} jobs: peak RSS (VmHWM) {:.1} MB (target < 200 MB); own time {:.1} s (target < 60 s) = {:.1} s reading the dataset, writing and uploading inputs, creating jobs + {:.1} s reading outputs, scoring, storing, exporting; S3 requests {} ({:.2} per 1,000 records); {written} records written; exit {:?}; total {:.1} s (the double's job time included)",
        bedrock.batch_jobs().len(),
        peak_kb as f64 / 1024.0,
        (submit + after).as_secs_f64(),
        submit.as_secs_f64(),
        after.as_secs_f64(),
        s3_requests.map_or_else(|| "?".to_owned(), |n| n.to_string()),
        s3_requests.map_or(f64::NAN, |n| n as f64 * 1000.0 / N_RECORDS as f64),
        status.code(),
        (ended - started).as_secs_f64(),
    );
    if !status.success() || written != N_RECORDS {
        let stderr: Vec<&str> = lines.iter().map(|(_, line)| line.as_str()).collect();
        println!(
            "FAILED: the run did not evaluate every record\n{}",
            stderr.join("\n")
        );
        std::process::exit(1);
    }
}
