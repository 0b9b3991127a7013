//! The second and later phases of batch runs, through the binary against the Bedrock
//! control-plane double (`AWS_ENDPOINT_URL_BEDROCK`) and moto's S3 (`AWS_ENDPOINT_URL_S3`):
//! `--retry-failed RUN` of a batch run sends the failed records as a new batch job (only
//! them; a retry created twice starts one job; the next retry its own), or online when fewer
//! than 100 are left; `qa_accuracy_by_llm` judges go out as a second phase of batch jobs of
//! the judge model (or online with `--judge-mode online`); and a run whose process is killed
//! during its judge phase is finished by `llm-eval runs watch` without a second job.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use model_doubles::{Answer, BatchBehavior};
use serde_json::Value;

use crate::batch::{Doubles, command, doubles_answering};
use crate::helpers::{assert_exit, assert_usage_error, output, read_jsonl, text};

/// The judge: a Bedrock model with a batch price in the catalog.
const JUDGE: &str = "claude-3-5-haiku";
const JUDGE_ID: &str = "us.anthropic.claude-3-5-haiku-20241022-v1:0";

/// `answer N` for the record's number; the judge (online or in a job) says `Y`.
fn answer() -> Answer {
    Answer::from_fn(|prompt| {
        if prompt.model.contains("claude-3-5-haiku") {
            return "Y".to_owned();
        }
        let number: String = prompt.text.chars().filter(char::is_ascii_digit).collect();
        format!("answer {number}")
    })
}

async fn doubles(
    dir: &Path,
    n_records: usize,
    behavior: impl FnOnce(&mut BatchBehavior),
) -> Doubles {
    doubles_answering(dir, n_records, answer, behavior).await
}

fn eval(extra: &[&'static str]) -> Vec<&'static str> {
    let mut args = vec![
        "eval",
        "--dataset",
        "items.jsonl",
        "--template",
        "{question}",
        "--model",
        "claude-3-haiku",
        "--metric",
        "qa_accuracy",
        "--mode",
        "batch",
    ];
    args.extend_from_slice(extra);
    args
}

/// The run id of a results directory.
fn run_id(dir: &Path, out: &str) -> String {
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(out).join("summary.json")).unwrap())
            .unwrap();
    summary["run_id"].as_str().unwrap().to_owned()
}

/// The records of `out` whose evaluation failed, by index.
fn failed(dir: &Path, out: &str) -> BTreeSet<u64> {
    read_jsonl(&dir.join(out).join("records.jsonl"))
        .iter()
        .filter(|record| !record["error"].is_null())
        .map(|record| record["index"].as_u64().unwrap())
        .collect()
}

/// The input lines of the double's job named `name`, read back from moto's S3.
async fn job_input(doubles: &Doubles, name: &str) -> Vec<Value> {
    let (_, uri, _) = doubles
        .bedrock
        .batch_job_inputs()
        .into_iter()
        .find(|(job, _, _)| job == name)
        .unwrap_or_else(|| panic!("no job {name}"));
    let (bucket, key) = uri.trim_start_matches("s3://").split_once('/').unwrap();
    let body = doubles
        .s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    String::from_utf8(body.to_vec())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn job_names(doubles: &Doubles) -> Vec<String> {
    doubles
        .bedrock
        .batch_jobs()
        .into_iter()
        .map(|(name, _, _)| name)
        .collect()
}

fn record_ids(lines: &[Value]) -> BTreeSet<u64> {
    lines
        .iter()
        .map(|line| line["recordId"].as_str().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test]
async fn retry_failed_of_a_batch_run_sends_only_the_failed_records_as_a_new_job() {
    let dir = tempfile::tempdir().unwrap();
    // Every second record of a job fails: 150 of the first run's 300.
    let doubles = doubles(dir.path(), 300, |batch| batch.record_error_every = Some(2)).await;
    let first = output(command(&doubles, dir.path(), &eval(&["--out", "first"]))).await;
    assert_exit(&first, 0);
    let first_id = run_id(dir.path(), "first");
    let failed_first = failed(dir.path(), "first");
    assert_eq!(failed_first.len(), 150);
    let answered_first: Vec<Value> = read_jsonl(&dir.path().join("first/records.jsonl"))
        .into_iter()
        .filter(|record| record["error"].is_null())
        .collect();

    // Two retries asked at once (a double click, a script run twice) start one job: either
    // they number the same attempt and share its job, or the later one finds the first
    // running and refuses.
    let retry = |out: &'static str| {
        command(
            &doubles,
            dir.path(),
            &[
                "eval",
                "--retry-failed",
                &first_id,
                "--out",
                out,
                "--detach",
            ],
        )
    };
    let (a, b) = tokio::join!(output(retry("ra")), output(retry("rb")));
    let started: Vec<String> = [&a, &b]
        .iter()
        .filter(|run| run.status.code() == Some(0))
        .map(|run| text(&run.stdout).trim().to_owned())
        .collect();
    assert!(!started.is_empty(), "{a:?} {b:?}");
    for run in [&a, &b] {
        if run.status.code() != Some(0) {
            assert_usage_error(run, "is still running");
        }
    }
    let retry_jobs: Vec<String> = job_names(&doubles)
        .into_iter()
        .filter(|name| name.contains("-r1-"))
        .collect();
    assert_eq!(
        retry_jobs,
        vec![format!("llm-eval-{first_id}-r1-m0-c0")],
        "one job for the retry, named with its attempt"
    );
    // Only the failed records went out again.
    let sent = job_input(&doubles, &retry_jobs[0]).await;
    assert_eq!(record_ids(&sent), failed_first);
    // Asked again while it runs: the retry in flight, not a new one.
    let again = output(retry("rc")).await;
    assert_usage_error(&again, "is still running");
    // A run still going has no failed records to retry yet.
    let early = output(command(
        &doubles,
        dir.path(),
        &["eval", "--retry-failed", &started[0], "--out", "early"],
    ))
    .await;
    assert_usage_error(
        &early,
        "is still going; retry its failed records once it ends",
    );
    for run_id in &started {
        let watched = output(command(
            &doubles,
            dir.path(),
            &["runs", "watch", run_id, "--out", &format!("w-{run_id}")],
        ))
        .await;
        assert_exit(&watched, 0);
    }
    let retried = format!("w-{}", started[0]);
    let records = read_jsonl(&dir.path().join(&retried).join("records.jsonl"));
    assert_eq!(records.len(), 300);
    // What the first run computed is kept as it was; half of the retried records now answer.
    for earlier in &answered_first {
        let now = records
            .iter()
            .find(|record| record["index"] == earlier["index"])
            .unwrap();
        assert_eq!(now["model_output"], earlier["model_output"]);
        assert!(now["error"].is_null());
    }
    let failed_retry = failed(dir.path(), &retried);
    assert_eq!(failed_retry.len(), 75);
    assert!(failed_retry.is_subset(&failed_first));
    for record in records.iter().filter(|record| record["error"].is_null()) {
        assert_eq!(
            record["model_output"],
            format!("answer {}", record["index"]),
            "{record}"
        );
    }
    assert_eq!(doubles.models.stats().requests, 0, "no online call");

    // A second retry of the first run once that one ended: its own attempt, its own job.
    let second = output(command(
        &doubles,
        dir.path(),
        &["eval", "--retry-failed", &first_id, "--out", "second"],
    ))
    .await;
    assert_exit(&second, 0);
    assert!(
        job_names(&doubles).contains(&format!("llm-eval-{first_id}-r2-m0-c0")),
        "{:?}",
        job_names(&doubles)
    );
    assert_eq!(job_names(&doubles).len(), 3, "{:?}", job_names(&doubles));
}

#[tokio::test]
async fn a_retry_with_fewer_than_100_failed_records_runs_them_online_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    // 40 of 200 fail: under a job's minimum.
    let doubles = doubles(dir.path(), 200, |batch| batch.record_error_every = Some(5)).await;
    let first = output(command(&doubles, dir.path(), &eval(&["--out", "first"]))).await;
    assert_exit(&first, 0);
    let first_id = run_id(dir.path(), "first");
    assert_eq!(failed(dir.path(), "first").len(), 40);
    let retry = output(command(
        &doubles,
        dir.path(),
        &["eval", "--retry-failed", &first_id, "--out", "retry"],
    ))
    .await;
    assert_exit(&retry, 0);
    let stderr = text(&retry.stderr);
    assert!(
        stderr.contains(
            "note: `claude-3-haiku` runs online: 40 failed records to retry, and a batch job takes at least 100"
        ),
        "{stderr}"
    );
    assert_eq!(doubles.bedrock.batch_jobs().len(), 1, "no second job");
    assert_eq!(
        doubles.models.stats().requests,
        40,
        "the failed records, online"
    );
    assert!(failed(dir.path(), "retry").is_empty());
    let records = read_jsonl(&dir.path().join("retry/records.jsonl"));
    assert_eq!(records.len(), 200);
    for record in &records {
        assert_eq!(
            record["model_output"],
            format!("answer {}", record["index"])
        );
    }
    // Asked for online, a batch run's retry runs online whatever its size.
    let online = output(command(
        &doubles,
        dir.path(),
        &[
            "eval",
            "--retry-failed",
            &first_id,
            "--mode",
            "online",
            "--judge-mode",
            "batch",
        ],
    ))
    .await;
    assert_usage_error(&online, "--judge-mode is a setting of batch runs");
}

fn judged(extra: &[&'static str]) -> Vec<&'static str> {
    let mut args = eval(&["--metric", "qa_accuracy_by_llm", "--judge", JUDGE]);
    args.extend_from_slice(extra);
    args
}

/// Every record answered and judged `Y` by the judge.
fn assert_judged(dir: &Path, out: &str, n: usize) {
    let records = read_jsonl(&dir.join(out).join("records.jsonl"));
    assert_eq!(records.len(), n);
    for record in &records {
        assert!(record["error"].is_null(), "{record}");
        assert_eq!(
            record["model_output"],
            format!("answer {}", record["index"])
        );
        assert_eq!(record["judge_replies"][0]["reply"], "Y", "{record}");
        let score = record["scores"]
            .as_array()
            .unwrap()
            .iter()
            .find(|score| score["name"] == "qa_accuracy_by_llm")
            .unwrap_or_else(|| panic!("{record}"));
        assert_eq!(score["value"], 1.0);
    }
}

#[tokio::test]
async fn judges_of_a_batch_run_go_out_as_a_second_batch_phase() {
    let dir = tempfile::tempdir().unwrap();
    let doubles = doubles(dir.path(), 150, |_| {}).await;
    let run = output(command(&doubles, dir.path(), &judged(&["--out", "out"]))).await;
    assert_exit(&run, 0);
    assert_judged(dir.path(), "out", 150);
    let id = run_id(dir.path(), "out");
    let jobs = doubles.bedrock.batch_jobs();
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    assert_eq!(jobs[1].0, format!("llm-eval-{id}-j0-m0-c0"));
    assert_eq!(jobs[1].1, JUDGE_ID);
    // The judge's job carries the rubric filled with each record's question and answer.
    let lines = job_input(&doubles, &jobs[1].0).await;
    assert_eq!(lines.len(), 150);
    for line in &lines {
        let position: u64 = line["recordId"].as_str().unwrap().parse().unwrap();
        let prompt = line["modelInput"].to_string();
        assert!(
            prompt.contains(&format!("What is item {position}?"))
                && prompt.contains(&format!("answer {position}"))
                && prompt.contains("Reply with only the letter Y or N"),
            "{prompt}"
        );
    }
    assert_eq!(doubles.models.stats().requests, 0, "no online call");
    let stderr = text(&run.stderr);
    assert!(
        stderr.contains("batch: judges: 1 jobs: 1 Completed"),
        "{stderr}"
    );
    // The judge's replies are priced at its batch price, on top of the answer's.
    let records = read_jsonl(&dir.path().join("out/records.jsonl"));
    let answer_cost = 0.000125 * records[0]["input_tokens"].as_f64().unwrap() / 1000.0
        + 0.000625 * records[0]["output_tokens"].as_f64().unwrap() / 1000.0;
    assert!(
        records[0]["cost_usd"].as_f64().unwrap() > answer_cost,
        "{}",
        records[0]
    );
}

#[tokio::test]
async fn judge_mode_online_asks_the_judges_from_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let doubles = doubles(dir.path(), 150, |_| {}).await;
    let run = output(command(
        &doubles,
        dir.path(),
        &judged(&["--judge-mode", "online", "--out", "out"]),
    ))
    .await;
    assert_exit(&run, 0);
    assert_judged(dir.path(), "out", 150);
    assert_eq!(
        doubles.bedrock.batch_jobs().len(),
        1,
        "the answers' job only"
    );
    assert_eq!(
        doubles.models.stats().requests,
        150,
        "one judge call a record"
    );
    // A judge without batch support refuses the batch judge phase, with the way out.
    let refused = output(command(
        &doubles,
        dir.path(),
        &eval(&[
            "--metric",
            "qa_accuracy_by_llm",
            "--judge",
            "claude-3-sonnet",
        ]),
    ))
    .await;
    assert_usage_error(&refused, "model `claude-3-sonnet` cannot run in batch mode");
    assert_usage_error(&refused, "judge mode online");
}

#[tokio::test]
async fn a_process_killed_in_the_judge_phase_is_finished_by_runs_watch() {
    let dir = tempfile::tempdir().unwrap();
    // Slow jobs: the judge phase lasts long enough to be killed in.
    let doubles = doubles(dir.path(), 120, |batch| {
        batch.step = Duration::from_millis(300);
    })
    .await;
    let mut child =
        tokio::process::Command::from(command(&doubles, dir.path(), &judged(&["--out", "killed"])))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let judge_job = loop {
        if let Some((name, _, status)) = doubles
            .bedrock
            .batch_jobs()
            .into_iter()
            .find(|(name, _, _)| name.contains("-j0-"))
        {
            assert_ne!(status, "Completed", "killed too late");
            break name;
        }
        assert!(Instant::now() < deadline, "no judge job");
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    child.kill().await.unwrap();
    let run_id = judge_job
        .strip_prefix("llm-eval-")
        .and_then(|name| name.strip_suffix("-j0-m0-c0"))
        .unwrap()
        .to_owned();
    let watched = output(command(
        &doubles,
        dir.path(),
        &["runs", "watch", &run_id, "--out", "watched"],
    ))
    .await;
    assert_exit(&watched, 0);
    assert_judged(dir.path(), "watched", 120);
    let jobs = job_names(&doubles);
    assert_eq!(
        jobs,
        vec![
            format!("llm-eval-{run_id}-m0-c0"),
            format!("llm-eval-{run_id}-j0-m0-c0")
        ],
        "the watch polled the same judge job"
    );
    assert_eq!(doubles.models.stats().requests, 0, "no online call");
}
