//! `llm-eval eval --mode batch` and `llm-eval runs watch`, running the binary against the
//! Bedrock control-plane double (through `AWS_ENDPOINT_URL_BEDROCK`) and moto's S3 (through
//! `AWS_ENDPOINT_URL_S3`), as a user would against AWS.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use model_doubles::bedrock_control::BedrockControl;
use model_doubles::{Answer, BatchBehavior, FaultPlan, ModelServer, Moto};

use crate::helpers::{assert_exit, assert_usage_error, llm_eval, output, read_jsonl, start, text};

/// The data bucket the batch objects go to.
const BUCKET: &str = "batch-bucket";

/// The doubles a batch run talks to: moto (S3), the Bedrock control plane and the model
/// double (online calls); `s3` reads back what the run and the double wrote.
pub(crate) struct Doubles {
    pub(crate) moto: Moto,
    pub(crate) bedrock: BedrockControl,
    pub(crate) models: ModelServer,
    pub(crate) s3: aws_sdk_s3::Client,
}

fn answer() -> Answer {
    Answer::from_fn(|prompt| {
        let number: String = prompt.text.chars().filter(char::is_ascii_digit).collect();
        format!("answer {number}")
    })
}

async fn doubles(dir: &Path, n_records: usize) -> Doubles {
    doubles_answering(dir, n_records, answer, |_| {}).await
}

/// Starts the doubles (both models answering with `answer`, the batch double set up by
/// `behavior`), creates the bucket and writes `n_records` records to `dir/items.jsonl`.
pub(crate) async fn doubles_answering(
    dir: &Path,
    n_records: usize,
    answer: fn() -> Answer,
    behavior: impl FnOnce(&mut BatchBehavior),
) -> Doubles {
    let moto = Moto::start().await;
    let mut batch = BatchBehavior::new(moto.url(), answer());
    batch.step = Duration::from_millis(20);
    behavior(&mut batch);
    let bedrock = BedrockControl::start_with_batch("us-east-1", Vec::new(), batch)
        .await
        .unwrap();
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(moto.url())
        .credentials_provider(aws_credential_types::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    let lines: Vec<String> = (0..n_records)
        .map(|i| {
            serde_json::json!({"question": format!("What is item {i}?"), "answers": format!("answer {i}")})
                .to_string()
        })
        .collect();
    std::fs::write(dir.join("items.jsonl"), lines.join("\n")).unwrap();
    Doubles {
        models: start(answer(), FaultPlan::none()).await,
        moto,
        bedrock,
        s3,
    }
}

/// `llm-eval ARGS` in `dir`, pointed at the doubles with the batch settings a deployed task gets.
pub(crate) fn command(doubles: &Doubles, dir: &Path, args: &[&str]) -> std::process::Command {
    let mut command = llm_eval(&doubles.models, dir);
    command
        .env("AWS_ENDPOINT_URL_BEDROCK", doubles.bedrock.url())
        .env("AWS_ENDPOINT_URL_S3", doubles.moto.url())
        .env("LLM_EVAL_BATCH_BUCKET", BUCKET)
        .env(
            "LLM_EVAL_BATCH_ROLE_ARN",
            "arn:aws:iam::123456789012:role/llm-eval-batch",
        )
        .env("LLM_EVAL_BATCH_POLL_SECS", "0.05")
        .args(args);
    command
}

const EVAL: [&str; 9] = [
    "eval",
    "--dataset",
    "items.jsonl",
    "--template",
    "{question}",
    "--model",
    "claude-3-haiku",
    "--metric",
    "qa_accuracy",
];

fn assert_answers(dir: &Path, out: &str, n: usize) {
    let records = read_jsonl(&dir.join(out).join("records.jsonl"));
    assert_eq!(records.len(), n);
    for (position, record) in records.iter().enumerate() {
        assert_eq!(
            record["model_output"],
            format!("answer {position}"),
            "{record}"
        );
    }
}

#[tokio::test]
async fn eval_mode_batch_waits_for_the_jobs_and_writes_results() {
    let dir = tempfile::tempdir().unwrap();
    let doubles = doubles(dir.path(), 150).await;
    let mut args = EVAL.to_vec();
    args.extend(["--mode", "batch", "--out", "out"]);
    let output = output(command(&doubles, dir.path(), &args)).await;
    assert_exit(&output, 0);
    assert_answers(dir.path(), "out", 150);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("batch: 1 jobs: 1 Completed (150/150 records processed)"),
        "{stderr}"
    );
    assert_eq!(doubles.bedrock.batch_jobs().len(), 1);
    assert_eq!(doubles.models.stats().requests, 0, "no online call");
}

#[tokio::test]
async fn detach_then_runs_watch_finishes_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let doubles = doubles(dir.path(), 120).await;
    let mut args = EVAL.to_vec();
    args.extend(["--mode", "batch", "--detach"]);
    let submitted = output(command(&doubles, dir.path(), &args)).await;
    assert_exit(&submitted, 0);
    let run_id = text(&submitted.stdout).trim().to_owned();
    assert!(
        text(&submitted.stderr).contains(&format!("llm-eval runs watch {run_id}")),
        "{}",
        text(&submitted.stderr)
    );
    let watched = output(command(
        &doubles,
        dir.path(),
        &["runs", "watch", &run_id, "--out", "watched"],
    ))
    .await;
    assert_exit(&watched, 0);
    assert_answers(dir.path(), "watched", 120);
    // A finished run has nothing left to watch.
    let again = output(command(&doubles, dir.path(), &["runs", "watch", &run_id])).await;
    assert_usage_error(&again, "is finished already");
    assert_eq!(doubles.bedrock.batch_jobs().len(), 1);
}

#[tokio::test]
async fn batch_settings_and_models_are_checked_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let doubles = doubles(dir.path(), 120).await;
    let mut no_bucket = command(
        &doubles,
        dir.path(),
        &[&EVAL[..], &["--mode", "batch"]].concat(),
    );
    no_bucket.env_remove("LLM_EVAL_BATCH_BUCKET");
    assert_usage_error(
        &output(no_bucket).await,
        "--mode batch needs --batch-bucket",
    );
    let mut args = EVAL.to_vec();
    args[6] = "claude-3-sonnet";
    args.extend(["--mode", "batch"]);
    assert_usage_error(
        &output(command(&doubles, dir.path(), &args)).await,
        "model `claude-3-sonnet` cannot run in batch mode",
    );
    let bad_mode = output(command(
        &doubles,
        dir.path(),
        &[&EVAL[..], &["--mode", "offline"]].concat(),
    ))
    .await;
    assert_usage_error(&bad_mode, "unknown mode `offline`");
    assert!(doubles.bedrock.batch_jobs().is_empty());
}
