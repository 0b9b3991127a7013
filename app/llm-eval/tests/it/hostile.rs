//! Hostile and careless endpoints (issue 11), each a scripted model double on 127.0.0.1: an
//! endless or oversized reply, an HTML page with 200 OK, a key echoed in an error, credentials
//! in a base URL, a day-long Retry-After. Every test is bounded in time by [`bounded`].

#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::time::Duration;

use engine::cache::ResponseCache;
use engine::limits::ByteSize;
use engine::providers::aws::{Timeouts, local_sdk_config};
use engine::providers::bedrock::BedrockProvider;
use engine::providers::openai::{OpenAiConfig, OpenAiProvider};
use engine::providers::sagemaker::{SageMakerFormat, SageMakerProvider};
use engine::providers::{
    ChatMessage, ErrorKind, GenerateRequest, InferenceParams, ModelProvider, ProviderError, Role,
};
use engine::runner::{Caller, ModelClient, RunnerConfig};
use model_doubles::{Answer, Behavior, Fault, FaultPlan, ModelServer, When};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use crate::helpers::{assert_exit, read_jsonl, squad_jsonl, text};

/// Fails the test instead of hanging when `work` takes more than a minute.
async fn bounded<T>(work: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), work)
        .await
        .expect("finished within the test's time bound")
}

fn user(prompt: &str) -> GenerateRequest {
    GenerateRequest {
        model_id: "m".into(),
        messages: vec![ChatMessage {
            role: Role::User,
            content: prompt.into(),
        }],
        prompt_text: prompt.into(),
        params: InferenceParams::default(),
    }
}

async fn double(fault: Fault) -> ModelServer {
    ModelServer::start(Behavior {
        faults: FaultPlan::none().on(When::Always, fault),
        ..Behavior::default()
    })
    .await
    .unwrap()
}

fn openai(base_url: &str, key: Option<&str>, max_response: ByteSize) -> OpenAiProvider {
    OpenAiProvider::new(OpenAiConfig {
        base_url: base_url.to_owned(),
        api_key: key.map(|key| SecretString::from(key.to_owned())),
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(30),
        max_response,
    })
    .unwrap()
}

fn timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(2),
        request: Duration::from_secs(30),
    }
}

/// The error of one call of each provider kind to `server`.
async fn errors_of_every_provider(
    server: &ModelServer,
    max_response: ByteSize,
) -> Vec<(&'static str, ProviderError)> {
    let sdk_config = local_sdk_config(&server.url());
    let providers: Vec<(&'static str, Box<dyn ModelProvider>)> = vec![
        (
            "openai",
            Box::new(openai(&format!("{}/v1", server.url()), None, max_response)),
        ),
        (
            "bedrock",
            Box::new(BedrockProvider::new(&sdk_config, timeouts(), max_response)),
        ),
        (
            "sagemaker",
            Box::new(SageMakerProvider::new(
                &sdk_config,
                timeouts(),
                SageMakerFormat::TextGeneration,
                max_response,
            )),
        ),
    ];
    let mut errors = Vec::new();
    for (name, provider) in providers {
        let error = bounded(provider.generate(&user("q")))
            .await
            .expect_err("the call fails");
        errors.push((name, error));
    }
    errors
}

#[tokio::test]
async fn regression_an_endless_reply_fails_at_the_response_limit() {
    let server = double(Fault::EndlessBody).await;
    for (name, error) in errors_of_every_provider(&server, ByteSize(1 << 20)).await {
        assert_eq!(error.kind(), ErrorKind::Permanent, "{name}: {error}");
        assert_eq!(
            error.to_string(),
            format!(
                "{name} returned an unusable response: the response is larger than 1 MiB, the limit of --max-response-size (raise it if such answers are expected)"
            )
        );
    }
}

#[tokio::test]
async fn regression_a_reply_over_the_limit_fails_and_one_under_it_passes() {
    let server = ModelServer::start(Behavior {
        answer: Answer::Fixed("x".repeat(300 << 10)),
        ..Behavior::default()
    })
    .await
    .unwrap();
    let base_url = format!("{}/v1", server.url());
    let error = bounded(openai(&base_url, None, ByteSize(256 << 10)).generate(&user("q")))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("larger than 256 KiB"), "{error}");
    let generation = bounded(openai(&base_url, None, ByteSize(1 << 20)).generate(&user("q")))
        .await
        .unwrap();
    assert_eq!(generation.text.len(), 300 << 10);
}

#[tokio::test]
async fn regression_an_html_page_with_200_is_named_as_such() {
    let server = double(Fault::HtmlPage).await;
    for (name, error) in errors_of_every_provider(&server, ByteSize(1 << 20)).await {
        let message = error.to_string();
        assert_eq!(error.kind(), ErrorKind::Permanent, "{name}: {message}");
        assert!(
            message.starts_with(&format!("{name} returned an unusable response: ")),
            "{message}"
        );
        assert!(
            message.contains("an HTML page titled \"Sign in · Example Gateway\""),
            "{message}"
        );
        assert!(!message.contains("rejected the request"), "{message}");
    }
}

#[tokio::test]
async fn regression_an_echoed_key_is_redacted() {
    const KEY: &str = "sk-live-0123456789abcdef";
    let server = double(Fault::EchoKey).await;
    let provider = openai(
        &format!("{}/v1", server.url()),
        Some(KEY),
        ByteSize(1 << 20),
    );
    let error = bounded(provider.generate(&user("q"))).await.unwrap_err();
    let shown = [error.to_string(), format!("{error:?}")];
    for text in &shown {
        assert!(!text.contains(KEY), "key leaked: {text}");
    }
    assert!(
        shown[0].contains("Incorrect API key provided: [redacted]."),
        "{}",
        shown[0]
    );
}

#[tokio::test]
async fn regression_base_url_credentials_stay_out_of_the_cache() {
    let server = ModelServer::start(Behavior::default()).await.unwrap();
    let address = server.url().trim_start_matches("http://").to_owned();
    let base_url = format!("http://tokenuser:hunter2secret@{address}/v1");
    let provider = openai(&base_url, None, ByteSize(1 << 20));
    let scope = provider.cache_scope();
    assert!(
        !scope.contains("hunter2secret") && !scope.contains("tokenuser"),
        "{scope}"
    );
    assert!(scope.contains(&address), "{scope}");

    let dir = tempfile::tempdir().unwrap();
    let cache = ResponseCache::open_dir(dir.path()).unwrap();
    let client = ModelClient {
        label: "openai:m".into(),
        provider: std::sync::Arc::new(provider),
        model_id: "m".into(),
        params: InferenceParams::default(),
        price_per_1k_input: None,
        price_per_1k_output: None,
    };
    let caller = Caller::new(client, RunnerConfig::default(), Some(cache.clone()), None);
    bounded(caller.call(&user("q"), &CancellationToken::new()))
        .await
        .unwrap();
    drop(caller);
    drop(cache);
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let contents = String::from_utf8_lossy(&bytes);
        assert!(!contents.contains("hunter2secret"), "password in the cache");
        assert!(!contents.contains("tokenuser"), "user in the cache");
    }

    // The AWS endpoint override likewise.
    let sdk_config = local_sdk_config(&format!("http://aws:awssecret99@{address}"));
    let scope = BedrockProvider::new(&sdk_config, timeouts(), ByteSize(1 << 20)).cache_scope();
    assert!(!scope.contains("awssecret99"), "{scope}");
}

/// The `llm-eval eval` arguments over the first record of the sample dataset.
fn one_record_eval<'a>(out: &'a str, dataset: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
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
        "--records",
        "1",
        "--out",
        out,
        "--quiet",
        "--no-cache",
    ];
    args.extend_from_slice(extra);
    args
}

#[tokio::test]
async fn regression_an_endless_reply_fails_its_record_not_the_machine() {
    let server = double(Fault::EndlessBody).await;
    let dir = tempfile::tempdir().unwrap();
    let dataset = squad_jsonl();
    let dataset = dataset.to_str().unwrap();
    let args = one_record_eval("out", dataset, &["--max-response-size", "2MiB"]);
    let output = bounded(crate::helpers::run(&server, dir.path(), &args)).await;
    // Every record of the model failed: exit 1, with the reason stored in the row.
    assert_exit(&output, 1);
    let rows = read_jsonl(&dir.path().join("out/records.jsonl"));
    let error = rows[0]["error"].as_str().unwrap();
    assert!(
        error.contains("the response is larger than 2 MiB, the limit of --max-response-size"),
        "{error}"
    );
    assert!(error.contains("(after 1 attempt)"), "{error}");
}

#[tokio::test]
async fn regression_a_day_long_retry_after_does_not_stall_the_run() {
    let server = double(Fault::Throttle {
        retry_after: Some("86400".into()),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let dataset = squad_jsonl();
    let dataset = dataset.to_str().unwrap();
    let args = one_record_eval(
        "out",
        dataset,
        &[
            "--max-attempts",
            "2",
            "--max-retry-wait",
            "1",
            "--timeout",
            "2",
        ],
    );
    let output = bounded(crate::helpers::run(&server, dir.path(), &args)).await;
    assert_exit(&output, 1);
    assert_eq!(server.stats().requests, 2, "{}", text(&output.stderr));
    let rows = read_jsonl(&dir.path().join("out/records.jsonl"));
    let error = rows[0]["error"].as_str().unwrap();
    assert!(
        error.ends_with("(after 2 attempts, the limit of --max-attempts; the endpoint asked to wait 86400 s before retrying, more than the 1 s of --max-retry-wait)"),
        "{error}"
    );
}

#[tokio::test]
async fn regression_a_record_never_outlasts_the_record_timeout() {
    let server = double(Fault::Hang(Duration::from_secs(3600))).await;
    let dir = tempfile::tempdir().unwrap();
    let dataset = squad_jsonl();
    let dataset = dataset.to_str().unwrap();
    let args = one_record_eval(
        "out",
        dataset,
        &[
            "--max-attempts",
            "100",
            "--timeout",
            "1",
            "--record-timeout",
            "2.5",
        ],
    );
    let output = bounded(crate::helpers::run(&server, dir.path(), &args)).await;
    assert_exit(&output, 1);
    let rows = read_jsonl(&dir.path().join("out/records.jsonl"));
    let error = rows[0]["error"].as_str().unwrap();
    assert!(
        error.contains("the next would end past the 2.5 s of --record-timeout"),
        "{error}"
    );
    assert!(server.stats().requests <= 3, "{:?}", server.stats());
}

/// The mode bits of `path`.
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn regression_store_cache_and_results_are_private() {
    let server = ModelServer::start(Behavior::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dataset = squad_jsonl();
    let mut args = one_record_eval("out", dataset.to_str().unwrap(), &[]);
    // With the cache this time.
    args.retain(|arg| *arg != "--no-cache");
    let output = bounded(crate::helpers::run(&server, dir.path(), &args)).await;
    assert_exit(&output, 0);
    let private_files = [
        "store.sqlite",
        "cache/responses.sqlite",
        "out/records.jsonl",
        "out/records.csv",
        "out/summary.json",
    ];
    for file in private_files {
        assert_eq!(mode(&dir.path().join(file)), 0o600, "{file}");
    }
    for sqlite_side_file in ["store.sqlite-wal", "cache/responses.sqlite-wal"] {
        let path = dir.path().join(sqlite_side_file);
        if path.exists() {
            assert_eq!(mode(&path), 0o600, "{sqlite_side_file}");
        }
    }
    for directory in ["cache", "out"] {
        assert_eq!(mode(&dir.path().join(directory)), 0o700, "{directory}");
    }
}

#[tokio::test]
async fn regression_out_never_overwrites_the_dataset() {
    let server = ModelServer::start(Behavior::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // A previous run's records.jsonl used as the dataset, with --out its own directory.
    let dataset = dir.path().join("prev/records.jsonl");
    std::fs::create_dir_all(dataset.parent().unwrap()).unwrap();
    std::fs::copy(squad_jsonl(), &dataset).unwrap();
    let before = std::fs::read(&dataset).unwrap();
    for extra in [&[][..], &["--replace"][..]] {
        let args = one_record_eval("prev", "prev/records.jsonl", extra);
        let output = bounded(crate::helpers::run(&server, dir.path(), &args)).await;
        assert_exit(&output, 2);
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains("--out prev: records.jsonl is the input prev/records.jsonl; writing the results would destroy it"),
            "{stderr}"
        );
    }
    assert_eq!(
        std::fs::read(&dataset).unwrap(),
        before,
        "the dataset is intact"
    );
    assert_eq!(server.stats().requests, 0, "no model call was made");
}

#[tokio::test]
async fn regression_out_with_results_needs_replace() {
    let server = ModelServer::start(Behavior::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dataset = squad_jsonl();
    let dataset = dataset.to_str().unwrap();
    let output = bounded(crate::helpers::run(
        &server,
        dir.path(),
        &one_record_eval("out", dataset, &[]),
    ))
    .await;
    assert_exit(&output, 0);
    let first = std::fs::read(dir.path().join("out/summary.json")).unwrap();
    let requests = server.stats().requests;
    let output = bounded(crate::helpers::run(
        &server,
        dir.path(),
        &one_record_eval("out", dataset, &[]),
    ))
    .await;
    assert_exit(&output, 2);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("--out out: already holds results (records.jsonl, records.csv, summary.json); pass --replace to overwrite them"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(dir.path().join("out/summary.json")).unwrap(),
        first
    );
    assert_eq!(server.stats().requests, requests, "refused before any call");
    let output = bounded(crate::helpers::run(
        &server,
        dir.path(),
        &one_record_eval("out", dataset, &["--replace"]),
    ))
    .await;
    assert_exit(&output, 0);
}

#[tokio::test]
async fn regression_an_unwritable_out_fails_before_any_call() {
    use std::os::unix::fs::PermissionsExt;
    let server = ModelServer::start(Behavior::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o500)).unwrap();
    // Root can write anywhere: the check is then moot, and so is this test.
    let probe = out.join("probe");
    if std::fs::write(&probe, "").is_ok() {
        let _ = std::fs::remove_file(&probe);
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o700)).unwrap();
        // A file where the directory should be is unwritable for root too.
        std::fs::remove_dir(&out).unwrap();
        std::fs::write(&out, "").unwrap();
    }
    let dataset = squad_jsonl();
    let output = bounded(crate::helpers::run(
        &server,
        dir.path(),
        &one_record_eval("out", dataset.to_str().unwrap(), &[]),
    ))
    .await;
    assert_exit(&output, 2);
    let stderr = text(&output.stderr);
    assert!(stderr.contains("--out out: cannot write"), "{stderr}");
    assert_eq!(server.stats().requests, 0, "no model call was paid for");
    let _ = std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o700));
}

#[tokio::test]
async fn regression_a_fifo_dataset_is_refused_with_the_reason() {
    let server = ModelServer::start(Behavior::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(dir.path().join("pipe"))
        .status()
        .unwrap();
    assert!(status.success());
    for command in ["eval", "preview"] {
        let mut args = one_record_eval("out", "pipe", &[]);
        if command == "preview" {
            args = vec!["preview", "--dataset", "pipe", "--template", "{question}"];
        }
        let output = bounded(crate::helpers::run(&server, dir.path(), &args)).await;
        assert_exit(&output, 2);
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains("pipe: is a FIFO") && stderr.contains("save it to a file first"),
            "{stderr}"
        );
    }
}

#[tokio::test]
async fn regression_preview_of_an_endless_input_is_bounded() {
    let server = ModelServer::start(Behavior::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "preview",
        "--dataset",
        "/dev/zero",
        "--template",
        "{question}",
    ];
    let output = bounded(crate::helpers::run(&server, dir.path(), &args)).await;
    assert_exit(&output, 2);
    assert!(
        text(&output.stderr).contains("/dev/zero: is a character device"),
        "{}",
        text(&output.stderr)
    );
    // A regular file that is one 40 MB line: the record limit, with a short error.
    let huge = dir.path().join("huge.jsonl");
    let file = std::fs::File::create(&huge).unwrap();
    file.set_len(40 << 20).unwrap();
    let args = [
        "preview",
        "--dataset",
        "huge.jsonl",
        "--template",
        "{question}",
    ];
    let output = bounded(crate::helpers::run(&server, dir.path(), &args)).await;
    assert_exit(&output, 2);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(
            "huge.jsonl:1: the record is larger than 16 MiB, the largest record the evaluation reads"
        ) && stderr.contains("hint: --max-record-size raises the limit"),
        "{stderr}"
    );
    assert!(stderr.len() < 2000, "{} bytes of stderr", stderr.len());
}

#[tokio::test]
async fn regression_a_dataset_changed_mid_run_is_not_a_success() {
    use engine::runner::RunError;
    // Slow answers, one at a time: the run is still reading when the file grows.
    let server = ModelServer::start(Behavior {
        latency: Duration::from_millis(40),
        ..Behavior::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dataset = dir.path().join("d.jsonl");
    std::fs::copy(squad_jsonl(), &dataset).unwrap();
    let mut plan = crate::helpers::plan(
        &dataset,
        vec![crate::helpers::openai_client(&server, "m")],
        vec![fmeval_scoring::metrics::MetricName::QaAccuracy],
        fmeval_scoring::sample::Selection::All,
    );
    plan.config.concurrency = 1;
    let context = crate::helpers::context(dir.path());
    let store = context.store.clone();
    let appender = {
        let dataset = dataset.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            let line = std::fs::read_to_string(&dataset)
                .unwrap()
                .lines()
                .next()
                .unwrap()
                .to_owned();
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(&dataset)
                .unwrap();
            std::io::Write::write_all(&mut file, format!("{line}\n").as_bytes()).unwrap();
        })
    };
    let result = bounded(engine::runner::run(
        std::sync::Arc::new(plan),
        "changed",
        context,
        None,
    ))
    .await;
    appender.await.unwrap();
    let error = result.expect_err("a changed dataset fails the run");
    assert!(matches!(error, RunError::Dataset(_)), "{error}");
    assert!(
        error
            .to_string()
            .contains("the dataset changed while the run read it"),
        "{error}"
    );
    let run = store
        .run(&store::UserId::local(), "changed")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.status, store::RunStatus::Failed);
}
