//! Benchmark: the worst hostile and careless inputs of issue 11 after the fix, each run by the
//! `llm-eval` binary (of the profile the benchmark is built with: release under `cargo bench`)
//! against a local double: wall time and peak memory (the child's
//! `VmHWM`, read every 10 ms until it exits). Prints a table, asserts nothing but that each
//! case ended the way the fix says (its exit code).
//!
//! Run with `cargo bench -p llm-eval --bench hostile`. The Retry-After cases wait for real (about
//! 70 s in all).

use std::path::Path;
use std::time::{Duration, Instant};

use model_doubles::{Behavior, Fault, FaultPlan, ModelServer, When};

fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `llm-eval args` in `dir` against `server`; returns (seconds, peak MB, exit code,
/// the last line of stderr or the first record's error).
async fn measure(
    server: &ModelServer,
    dir: &Path,
    args: &[&str],
) -> (f64, f64, Option<i32>, String) {
    let stderr_path = dir.join("stderr.log");
    let _ = std::fs::remove_dir_all(dir.join("out"));
    let started = Instant::now();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_llm-eval"))
        .args(args)
        .current_dir(dir)
        .env("OPENAI_BASE_URL", format!("{}/v1", server.url()))
        .env("OPENAI_API_KEY", "bench")
        .env("LLM_EVAL_STORE", dir.join("store.sqlite"))
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
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
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let record_error = std::fs::read_to_string(dir.join("out/records.jsonl"))
        .ok()
        .and_then(|text| {
            let line = text.lines().next()?.to_owned();
            let value: serde_json::Value = serde_json::from_str(&line).ok()?;
            value["error"].as_str().map(str::to_owned)
        });
    let said = record_error.unwrap_or_else(|| {
        stderr
            .lines()
            .rfind(|line| !line.trim().is_empty())
            .unwrap_or("")
            .to_owned()
    });
    (elapsed, peak_kb as f64 / 1024.0, status.code(), said)
}

async fn double(fault: Fault) -> ModelServer {
    ModelServer::start(Behavior {
        faults: FaultPlan::none().on(When::Always, fault),
        ..Behavior::default()
    })
    .await
    .expect("double starts")
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench());
}

async fn bench() {
    let dir = tempfile::tempdir().expect("temp dir");
    let squad = Path::new(engine::sample_data::SOURCE_DIR).join("qa.jsonl");
    let squad = squad.to_str().expect("UTF-8 path");
    // One 200 MB record, then two small ones.
    let big = dir.path().join("big.jsonl");
    {
        use std::io::Write;
        let mut file = std::io::BufWriter::new(std::fs::File::create(&big).expect("create"));
        write!(file, "{{\"question\":\"").expect("write");
        let chunk = "x".repeat(1 << 20);
        for _ in 0..200 {
            file.write_all(chunk.as_bytes()).expect("write");
        }
        writeln!(file, "\",\"answers\":[\"a\"]}}").expect("write");
        writeln!(file, "{{\"question\":\"q\",\"answers\":[\"a\"]}}").expect("write");
        writeln!(file, "{{\"question\":\"q2\",\"answers\":[\"a\"]}}").expect("write");
    }
    let eval = |dataset: &'static str, extra: &[&'static str]| -> Vec<&'static str> {
        let mut args = vec![
            "eval",
            "--dataset",
            dataset,
            "--template",
            "{question}",
            "--model",
            "openai:gpt-4o-mini",
            "--metric",
            "qa_accuracy",
            "--no-cache",
            "--quiet",
            "--out",
            "out",
        ];
        args.extend_from_slice(extra);
        args
    };
    let squad: &'static str = Box::leak(squad.to_owned().into_boxed_str());
    let big_path: &'static str =
        Box::leak(big.to_str().expect("UTF-8").to_owned().into_boxed_str());

    let endless = double(Fault::EndlessBody).await;
    let throttle_5 = double(Fault::Throttle {
        retry_after: Some("5".into()),
    })
    .await;
    let throttle_day = double(Fault::Throttle {
        retry_after: Some("86400".into()),
    })
    .await;
    let echo = ModelServer::start(Behavior::default())
        .await
        .expect("double starts");

    let cases: Vec<(&str, &ModelServer, Vec<&'static str>, i32)> = vec![
        (
            "endless reply body (default --max-response-size 4 MiB)",
            &endless,
            eval(squad, &["--records", "1"]),
            1,
        ),
        (
            "Retry-After: 5, --timeout 2 --max-attempts 2 (was 100 s, 21 attempts)",
            &throttle_5,
            eval(
                squad,
                &["--records", "1", "--timeout", "2", "--max-attempts", "2"],
            ),
            1,
        ),
        (
            "Retry-After: 86400, --max-attempts 2 (default --max-retry-wait 60 s)",
            &throttle_day,
            eval(squad, &["--records", "1", "--max-attempts", "2"]),
            1,
        ),
        (
            "a 200 MB first record among 3 (default --max-record-size 16 MiB)",
            &echo,
            eval(big_path, &[]),
            0,
        ),
        (
            "preview of that dataset (its first record is the 200 MB one)",
            &echo,
            vec!["preview", "--dataset", big_path, "--template", "{question}"],
            2,
        ),
        (
            "preview --dataset /dev/zero",
            &echo,
            vec![
                "preview",
                "--dataset",
                "/dev/zero",
                "--template",
                "{question}",
            ],
            2,
        ),
    ];
    println!("llm-eval over hostile input (one process per case)");
    println!("| case | wall time | peak RSS | exit | what it says |");
    println!("|---|---|---|---|---|");
    let mut failed = false;
    for (what, server, args, expected) in cases {
        let requests_before = server.stats().requests;
        let (secs, peak_mb, code, said) = measure(server, dir.path(), &args).await;
        let requests = server.stats().requests - requests_before;
        let said: String = said.chars().take(160).collect();
        println!(
            "| {what} | {secs:.2} s | {peak_mb:.1} MB | {} | {requests} request(s); {said} |",
            code.map_or("signal".to_owned(), |code| code.to_string())
        );
        if code != Some(expected) {
            failed = true;
            eprintln!("FAILED: {what}: exit {code:?}, expected {expected}");
        }
    }
    if failed {
        std::process::exit(1);
    }
}
