//! A batch run through the web app, as a team would run one: two `llm-eval serve` tasks on one
//! DynamoDB table (moto), Bedrock batch inference through the control-plane double
//! (`AWS_ENDPOINT_URL_BEDROCK`) and moto's S3. A 1,000-record dataset is uploaded, a two-model
//! batch run started from the form; the task polling the jobs is killed mid-poll, and the other
//! task takes the run's expired lease, polls the same jobs (no second job) and finishes it with
//! every (record, model) stored exactly once. And a batch run the web app hands back at SIGTERM
//! keeps its jobs with it, so `llm-eval runs watch` on another machine finishes it.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use model_doubles::bedrock_control::BedrockControl;
use model_doubles::{Answer, BatchBehavior, Moto};
use store::dynamo::DynamoConfig;
use store::{DynamoStore, Store, UserId, all_records};

use crate::helpers::{llm_eval, start};
use crate::shared_store::{Browser, moto_config, spawn_serve};

const TABLE: &str = "batch-web";
const BUCKET: &str = "batch-web-data";
const N: usize = 1_000;

fn answer() -> Answer {
    Answer::from_fn(|prompt| {
        let number: String = prompt.text.chars().filter(char::is_ascii_digit).collect();
        format!("answer {number}")
    })
}

async fn serve(
    models: &model_doubles::ModelServer,
    moto: &Moto,
    bedrock: &BedrockControl,
    dir: &std::path::Path,
) -> (tokio::process::Child, String) {
    let mut command = llm_eval(models, dir);
    command
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir.join("data"))
        .env("LLM_EVAL_STORE", format!("dynamodb:{TABLE}"))
        .env("DATA_BUCKET", BUCKET)
        .env("LLM_EVAL_LEASE_SECS", "2")
        .env("AWS_ENDPOINT_URL", moto.url())
        .env("AWS_ENDPOINT_URL_BEDROCK", bedrock.url())
        .env("LLM_EVAL_BATCH_BUCKET", BUCKET)
        .env(
            "LLM_EVAL_BATCH_ROLE_ARN",
            "arn:aws:iam::123456789012:role/llm-eval-batch",
        )
        .env("LLM_EVAL_BATCH_POLL_SECS", "0.1");
    spawn_serve(command).await
}

async fn upload(browser: &mut Browser, base: &str, token: &str, bytes: Vec<u8>) -> String {
    let boundary = "----llm-eval-batch-web-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{token}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"items.jsonl\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend(bytes);
    body.extend(format!("\r\n--{boundary}--\r\n").as_bytes());
    let response = browser
        .client
        .post(format!("{base}/datasets"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .header("cookie", browser.cookie.clone().unwrap_or_default())
        .body(body)
        .send()
        .await
        .unwrap();
    browser.remember(response.headers());
    assert_eq!(response.status(), reqwest::StatusCode::SEE_OTHER);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    location.trim_start_matches("/datasets/").to_owned()
}

/// The shared store (its table) and the data bucket on `moto`.
async fn shared_store(moto: &Moto, check_dir: &std::path::Path) -> DynamoStore {
    let config = moto_config(moto).await;
    let store = DynamoStore::new(
        &config,
        DynamoConfig {
            table: TABLE.into(),
            bucket: BUCKET.into(),
            local_dir: check_dir.to_path_buf(),
        },
    )
    .unwrap();
    store.create_table().await.unwrap();
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    )
    .create_bucket()
    .bucket(BUCKET)
    .send()
    .await
    .unwrap();
    store
}

/// The doubles of a web batch run: moto (DynamoDB and S3), the store the test checks through
/// (its files in `check_dir`), the Bedrock control-plane double whose job statuses last `step`
/// and which fails every `record_error_every`-th record, and the model double, both answering
/// with `answer`.
struct Setup {
    moto: Moto,
    _check_dir: tempfile::TempDir,
    store: DynamoStore,
    bedrock: BedrockControl,
    models: model_doubles::ModelServer,
}

async fn setup(answer: fn() -> Answer, step: Duration, record_error_every: u64) -> Setup {
    let moto = Moto::start().await;
    let check_dir = tempfile::tempdir().unwrap();
    let store = shared_store(&moto, check_dir.path()).await;
    let mut batch = BatchBehavior::new(moto.url(), answer());
    batch.step = step;
    batch.record_error_every = Some(record_error_every);
    let bedrock = BedrockControl::start_with_batch("us-east-1", Vec::new(), batch)
        .await
        .unwrap();
    let models = start(answer(), model_doubles::FaultPlan::none()).await;
    Setup {
        moto,
        _check_dir: check_dir,
        store,
        bedrock,
        models,
    }
}

fn dataset_lines(n: usize) -> Vec<u8> {
    let lines: Vec<String> = (0..n)
        .map(|i| {
            serde_json::json!({"question": format!("What is item {i}?"), "answers": format!("answer {i}")})
                .to_string()
        })
        .collect();
    lines.join("\n").into_bytes()
}

/// Starts a two-model batch run of `dataset` from the form of `base`; returns its id.
async fn start_batch_run(browser: &mut Browser, base: &str, token: &str, dataset: &str) -> String {
    let (status, location) = browser
        .post(
            &format!("{base}/evals"),
            &[
                ("csrf_token", token),
                ("dataset", dataset),
                ("reference_field", "answers"),
                ("template", "{question}"),
                ("models", "claude-3-haiku"),
                ("models", "nova-lite"),
                ("metrics", "qa_accuracy"),
                ("selection", "all"),
                ("mode", "batch"),
                ("action", "run"),
            ],
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::SEE_OTHER, "{location}");
    location.trim_start_matches("/runs/").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_model_batch_run_survives_the_kill_of_its_task() {
    // Slow jobs: each status lasts 1.5 s, long enough to kill the polling task mid-job.
    let Setup {
        moto,
        _check_dir,
        store,
        bedrock,
        models,
    } = setup(answer, Duration::from_millis(1500), 250).await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut first, url_a) = serve(&models, &moto, &bedrock, dir_a.path()).await;
    let (_second, url_b) = serve(&models, &moto, &bedrock, dir_b.path()).await;

    let mut browser = Browser::new();
    let token = browser.csrf_token(&url_a).await;
    let dataset = upload(&mut browser, &url_a, &token, dataset_lines(N)).await;
    // The form offers batch mode (this server has the batch settings).
    let (_, form) = browser
        .get(&format!("{url_a}/evals/new?dataset={dataset}"))
        .await;
    assert!(
        form.contains("name=\"mode\" value=\"batch\""),
        "batch mode offered"
    );
    let run_id = start_batch_run(&mut browser, &url_a, &token, &dataset).await;

    // The run page shows the jobs' progress (from the second task, which does not run it).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, page) = browser.get(&format!("{url_b}/runs/{run_id}")).await;
        if page.contains("2 jobs: 2 InProgress") {
            break;
        }
        assert!(Instant::now() < deadline, "no batch progress: {page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The polling task dies mid-poll; the other takes the expired lease and the same jobs.
    first.start_kill().unwrap();
    let _ = first.wait().await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let ended = loop {
        let progress = browser.progress(&url_b, &run_id).await;
        if progress["status"] != "running" {
            break progress;
        }
        assert!(Instant::now() < deadline, "not finished: {progress}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(ended["status"], "finished", "{ended}");
    assert_eq!(bedrock.batch_jobs().len(), 2, "no job was created twice");
    let rows = all_records(&store, &UserId::local(), &run_id)
        .await
        .unwrap();
    assert_eq!(rows.len(), 2 * N);
    let mut pairs: Vec<(String, usize)> = rows
        .iter()
        .map(|row| (row.model.clone(), row.position))
        .collect();
    pairs.sort();
    pairs.dedup();
    assert_eq!(pairs.len(), 2 * N, "each (model, record) once");
    let failed: Vec<&store::RecordRow> = rows.iter().filter(|row| !row.is_ok()).collect();
    assert_eq!(failed.len(), 8, "every 250th record of each job failed");
    assert!(
        failed[0]
            .error
            .as_deref()
            .unwrap()
            .starts_with("Bedrock batch:")
    );
    assert!(
        rows.iter().filter(|row| row.is_ok()).all(
            |row| row.model_output.as_deref() == Some(format!("answer {}", row.index).as_str())
        )
    );
    let counts = store
        .record_counts(&UserId::local(), &run_id)
        .await
        .unwrap();
    assert_eq!((counts.ok, counts.failed), (2 * N - 8, 8));
}

/// A batch run started in the web app, handed back at SIGTERM while its jobs run, keeps its
/// jobs in the store; `llm-eval runs watch` (another machine: the app's copy of the dataset is
/// gone, the store's is fetched) polls those jobs, creates none, and finishes the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_watch_finishes_a_batch_run_the_web_app_handed_back() {
    const RECORDS: usize = 300;
    let Setup {
        moto,
        _check_dir,
        store,
        bedrock,
        models,
    } = setup(answer, Duration::from_millis(1000), 100).await;
    let (server_dir, cli_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut server, url) = serve(&models, &moto, &bedrock, server_dir.path()).await;
    let mut browser = Browser::new();
    let token = browser.csrf_token(&url).await;
    let dataset = upload(&mut browser, &url, &token, dataset_lines(RECORDS)).await;
    let run_id = start_batch_run(&mut browser, &url, &token, &dataset).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, page) = browser.get(&format!("{url}/runs/{run_id}")).await;
        if page.contains("2 jobs: 2 InProgress") {
            break;
        }
        assert!(Instant::now() < deadline, "no batch progress: {page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pid = server.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let exit = tokio::time::timeout(Duration::from_secs(30), server.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(exit.code(), Some(0), "a graceful stop");
    // Handed back with its jobs: the run's summary names both (one per column).
    let run = store.run(&UserId::local(), &run_id).await.unwrap().unwrap();
    assert_eq!(run.status, store::RunStatus::Running);
    let summary = run.summary.unwrap();
    assert_eq!(summary["handed_back"], true, "{summary}");
    let state = engine::batch::BatchState::of_summary(Some(&summary))
        .unwrap_or_else(|| panic!("no batch state kept: {summary}"));
    assert!(state.submitted);
    let mut columns: Vec<(usize, usize)> = state
        .jobs
        .iter()
        .map(|job| (job.model_order, job.chunk))
        .collect();
    columns.sort();
    assert_eq!(columns, [(0, 0), (1, 0)], "{summary}");
    assert!(
        state
            .jobs
            .iter()
            .all(|job| job.job_arn.starts_with("arn:aws:bedrock:")),
        "{summary}"
    );
    std::fs::remove_dir_all(server_dir.path().join("data")).unwrap();

    let out = cli_dir.path().join("results");
    let mut watch = llm_eval(&models, cli_dir.path());
    watch
        .args(["runs", "watch", &run_id, "--store"])
        .arg(format!("dynamodb:{TABLE}"))
        .arg("--out")
        .arg(&out)
        .args(["--batch-poll-secs", "0.1"])
        .env("DATA_BUCKET", BUCKET)
        .env("AWS_ENDPOINT_URL", moto.url())
        .env("AWS_ENDPOINT_URL_BEDROCK", bedrock.url());
    let done = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::from(watch).output(),
    )
    .await
    .unwrap()
    .unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert_eq!(done.status.code(), Some(0), "{stderr}");
    assert_eq!(bedrock.batch_jobs().len(), 2, "no job was created again");
    let run = store.run(&UserId::local(), &run_id).await.unwrap().unwrap();
    assert_eq!(run.status, store::RunStatus::Finished);
    let rows = all_records(&store, &UserId::local(), &run_id)
        .await
        .unwrap();
    assert_eq!(rows.len(), 2 * RECORDS);
    let failed = rows.iter().filter(|row| !row.is_ok()).count();
    assert_eq!(failed, 6, "every 100th record of each job failed");
    let exported = std::fs::read_to_string(out.join("records.jsonl")).unwrap();
    assert_eq!(exported.lines().count(), 2 * RECORDS);
}

/// `answer N` for the record's number; the judge (`claude-3-5-haiku`) says `Y`.
fn judging_answer() -> Answer {
    Answer::from_fn(|prompt| {
        if prompt.model.contains("claude-3-5-haiku") {
            return "Y".to_owned();
        }
        let number: String = prompt.text.chars().filter(char::is_ascii_digit).collect();
        format!("answer {number}")
    })
}

/// Waits until run `run_id` is no longer running on `base`; returns its progress.
async fn ended(browser: &mut Browser, base: &str, run_id: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let progress = browser.progress(base, run_id).await;
        if progress["status"] != "running" {
            return progress;
        }
        assert!(Instant::now() < deadline, "not finished: {progress}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A batch run with an LLM judge started from the form: its judge goes out as a second batch
/// phase (the run page says which phase runs), and "Retry failed records" sends only the
/// failed records as a new batch job of the run's next attempt; pressed again while that
/// retry runs, it shows that retry instead of starting another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn judges_and_retries_of_a_batch_run_from_the_web_app() {
    const RECORDS: usize = 300;
    // Every second record of every job fails (answers and verdicts alike).
    let Setup {
        moto,
        _check_dir,
        store,
        bedrock,
        models,
    } = setup(judging_answer, Duration::from_millis(300), 2).await;
    let dir = tempfile::tempdir().unwrap();
    let (_server, url) = serve(&models, &moto, &bedrock, dir.path()).await;
    let mut browser = Browser::new();
    let token = browser.csrf_token(&url).await;
    let dataset = upload(&mut browser, &url, &token, dataset_lines(RECORDS)).await;
    let (_, form) = browser
        .get(&format!("{url}/evals/new?dataset={dataset}"))
        .await;
    assert!(form.contains("name=\"judge_mode\""), "judge mode offered");
    let (status, location) = browser
        .post(
            &format!("{url}/evals"),
            &[
                ("csrf_token", token.as_str()),
                ("dataset", dataset.as_str()),
                ("reference_field", "answers"),
                ("template", "{question}"),
                ("models", "claude-3-haiku"),
                ("metrics", "qa_accuracy"),
                ("metrics", "qa_accuracy_by_llm"),
                ("judges", "claude-3-5-haiku"),
                ("selection", "all"),
                ("mode", "batch"),
                ("judge_mode", "batch"),
                ("action", "run"),
            ],
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::SEE_OTHER, "{location}");
    let run_id = location.trim_start_matches("/runs/").to_owned();
    // The run page names the phase: the answers' jobs, then the judge's.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    while !seen.contains(&"judges") {
        let (_, page) = browser.get(&format!("{url}/runs/{run_id}")).await;
        for (phase, line) in [("answers", "answers: 1 jobs"), ("judges", "judges: 1 jobs")] {
            if page.contains(line) && !seen.contains(&phase) {
                seen.push(phase);
            }
        }
        assert!(Instant::now() < deadline, "no judge phase: {page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen, ["answers", "judges"]);
    assert_eq!(
        ended(&mut browser, &url, &run_id).await["status"],
        "finished"
    );
    let jobs = bedrock.batch_jobs();
    assert_eq!(
        jobs.iter().map(|job| job.0.clone()).collect::<Vec<_>>(),
        [
            format!("llm-eval-{run_id}-m0-c0"),
            format!("llm-eval-{run_id}-j0-m0-c0")
        ]
    );
    assert_eq!(jobs[1].1, "us.anthropic.claude-3-5-haiku-20241022-v1:0");
    let rows = all_records(&store, &UserId::local(), &run_id)
        .await
        .unwrap();
    assert_eq!(rows.len(), RECORDS);
    let failed: std::collections::BTreeSet<usize> = rows
        .iter()
        .filter(|row| !row.is_ok())
        .map(|row| row.position)
        .collect();
    // 150 answers failed; the judge's job failed half of the 150 it judged.
    assert_eq!(failed.len(), 225);
    let judge_failed = rows
        .iter()
        .filter(|row| {
            row.error
                .as_deref()
                .is_some_and(|error| error.starts_with("judge Bedrock batch:"))
        })
        .count();
    assert_eq!(judge_failed, 75);
    assert!(
        rows.iter()
            .filter(|row| row.is_ok())
            .all(|row| row.judge_replies.len() == 1 && row.judge_replies[0].reply == "Y")
    );
    assert_eq!(models.stats().requests, 0, "no online call");

    // "Retry failed records": a new batch run whose job carries only the failed records.
    let (_, page) = browser.get(&format!("{url}/runs/{run_id}")).await;
    assert!(page.contains("Retry failed records"), "{page}");
    let retry_url = format!("{url}/runs/{run_id}/retry");
    let (status, location) = browser
        .post(&retry_url, &[("csrf_token", token.as_str())])
        .await;
    assert_eq!(status, reqwest::StatusCode::SEE_OTHER, "{location}");
    let retry_id = location.trim_start_matches("/runs/").to_owned();
    assert_ne!(retry_id, run_id);
    // Pressed again while it runs: the same retry, no second job.
    let (status, again) = browser
        .post(&retry_url, &[("csrf_token", token.as_str())])
        .await;
    assert_eq!(status, reqwest::StatusCode::SEE_OTHER);
    assert_eq!(again, location);
    assert_eq!(
        ended(&mut browser, &url, &retry_id).await["status"],
        "finished"
    );
    let names: Vec<String> = bedrock.batch_jobs().into_iter().map(|job| job.0).collect();
    assert_eq!(
        names[2..],
        [
            format!("llm-eval-{run_id}-r1-m0-c0"),
            format!("llm-eval-{run_id}-r1-j0-m0-c0")
        ]
    );
    let (_, input, _) = bedrock
        .batch_job_inputs()
        .into_iter()
        .find(|job| job.0 == names[2])
        .unwrap();
    let (bucket, key) = input.trim_start_matches("s3://").split_once('/').unwrap();
    let config = moto_config(&moto).await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    let body = s3
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
    let sent: std::collections::BTreeSet<usize> = String::from_utf8(body.to_vec())
        .unwrap()
        .lines()
        .map(|line| {
            let line: serde_json::Value = serde_json::from_str(line).unwrap();
            line["recordId"].as_str().unwrap().parse().unwrap()
        })
        .collect();
    assert_eq!(sent, failed, "only the failed records went out again");
    let retried = all_records(&store, &UserId::local(), &retry_id)
        .await
        .unwrap();
    assert_eq!(retried.len(), RECORDS);
    // Every earlier success is kept as it was.
    for row in rows.iter().filter(|row| row.is_ok()) {
        let now = retried
            .iter()
            .find(|again| again.position == row.position)
            .unwrap();
        assert!(now.is_ok());
        assert_eq!(now.model_output, row.model_output);
    }
    assert!(retried.iter().filter(|row| row.is_ok()).count() > 75);
    assert_eq!(models.stats().requests, 0, "no online call");
}
