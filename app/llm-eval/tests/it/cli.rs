//! The `llm-eval` binary end to end against the model doubles: OpenAI and Bedrock wire
//! protocols, JSONL and CSV datasets, faults, cache, resume, `--fail-under`, usage errors,
//! SIGINT and the single-record regression.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use model_doubles::{Answer, Behavior, Fault, FaultPlan, ModelServer, When};

use crate::helpers::{
    N_SQUAD, SQUAD_TEMPLATE, assert_exit, assert_usage_error, eval, eval_args, eval_args_with,
    llm_eval, output, read_jsonl, run, squad_csv, squad_jsonl, start, summary, text,
};

fn indices(records: &[serde_json::Value]) -> Vec<u64> {
    records
        .iter()
        .map(|record| record["index"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eval_jsonl_with_openai_writes_fmeval_compatible_results() {
    let server = start(Answer::Fixed(" France\n".into()), FaultPlan::none()).await;
    let dir = tempfile::tempdir().unwrap();
    let dataset = squad_jsonl().display().to_string();
    let output = eval(&server, dir.path(), &dataset, "out", &[]).await;
    assert_exit(&output, 0);
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("f1_score") && stdout.contains("factual_knowledge"),
        "{stdout}"
    );

    let records = read_jsonl(&dir.path().join("out/records.jsonl"));
    assert_eq!(indices(&records), (0..N_SQUAD as u64).collect::<Vec<_>>());
    let keys: Vec<&str> = records[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "model_input",
            "prompt",
            "model_output",
            "target_output",
            "scores",
            "index",
            "model",
            "variant",
            "latency_ms",
            "input_tokens",
            "output_tokens",
            "cost_usd",
            "error"
        ]
    );
    assert_eq!(
        records[0]["model_output"], " France\n",
        "output kept exactly as returned"
    );
    assert_eq!(records[0]["target_output"], "France");
    // Scores are the library's METRICS.md scores of the raw output.
    let mut expected = fmeval_scoring::metrics::score_record(
        fmeval_scoring::metrics::MetricName::QaAccuracy,
        " France\n",
        "France",
    );
    expected.extend(fmeval_scoring::metrics::score_record(
        fmeval_scoring::metrics::MetricName::FactualKnowledge,
        " France\n",
        "France",
    ));
    assert_eq!(
        records[0]["scores"],
        serde_json::to_value(&expected).unwrap()
    );
    assert_eq!(
        records[0]["scores"][5],
        serde_json::json!({"name": "factual_knowledge", "value": 1})
    );

    let summary = summary(dir.path(), "out");
    assert_eq!(summary["status"], "finished");
    assert_eq!(summary["done"], N_SQUAD);
    assert_eq!(summary["models"][0]["model"], "openai:gpt-4o-mini");
    let csv = std::fs::read_to_string(dir.path().join("out/records.csv")).unwrap();
    assert!(csv.starts_with("model_input,prompt,model_output,target_output,category,f1_score,"));
    assert_eq!(server.stats().requests, N_SQUAD as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eval_csv_with_bedrock() {
    let server = start(Answer::Fixed("France".into()), FaultPlan::none()).await;
    let dir = tempfile::tempdir().unwrap();
    let dataset = squad_csv().display().to_string();
    let args = eval_args_with(
        &dataset,
        "Human: {Question}\n\nAssistant:",
        "bedrock:anthropic.claude-3-haiku-20240307-v1:0",
        "factual_knowledge",
        &[
            "--reference-field",
            "Reference Answer(s)",
            "--out",
            "out",
            "--quiet",
        ],
    );
    let output = run(&server, dir.path(), &args).await;
    assert_exit(&output, 0);
    let records = read_jsonl(&dir.path().join("out/records.jsonl"));
    assert_eq!(records.len(), N_SQUAD);
    assert!(
        records.iter().all(|record| record["error"].is_null()),
        "{records:?}"
    );
    assert_eq!(records[0]["scores"][0]["value"], 1);
    let protocols: Vec<_> = server
        .received()
        .iter()
        .map(|request| format!("{:?}", request.protocol))
        .collect();
    assert!(
        protocols
            .iter()
            .all(|protocol| protocol == "BedrockConverse"),
        "{protocols:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_through_the_binary_lose_nothing() {
    let faults = FaultPlan::none()
        .on(When::Request(1), Fault::throttle_secs(1))
        .on(When::Every(4), Fault::Status(503))
        .on(When::Every(9), Fault::Drop)
        .on(When::Request(6), Fault::Hang(Duration::from_secs(5)))
        .on(
            When::PromptContains("Where did the black death originate?".into()),
            Fault::Status(400),
        );
    let server = start(Answer::Echo, faults).await;
    let dir = tempfile::tempdir().unwrap();
    let dataset = squad_jsonl().display().to_string();
    let output = eval(&server, dir.path(), &dataset, "out", &["--no-cache"]).await;
    assert_exit(&output, 0);
    let records = read_jsonl(&dir.path().join("out/records.jsonl"));
    assert_eq!(indices(&records), (0..N_SQUAD as u64).collect::<Vec<_>>());
    let failed: Vec<u64> = records
        .iter()
        .filter(|record| !record["error"].is_null())
        .map(|record| record["index"].as_u64().unwrap())
        .collect();
    assert_eq!(failed, vec![14]);
    let summary = summary(dir.path(), "out");
    assert_eq!(
        (summary["done"].as_u64(), summary["failed"].as_u64()),
        (Some(19), Some(1))
    );
    assert!(
        text(&output.stdout).contains("1 failed"),
        "{}",
        text(&output.stdout)
    );
    assert!(server.stats().requests > N_SQUAD as u64, "retries happened");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerun_is_answered_by_the_cache() {
    let server = ModelServer::start(Behavior::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dataset = squad_jsonl().display().to_string();
    let first = eval(&server, dir.path(), &dataset, "one", &[]).await;
    assert_exit(&first, 0);
    assert_eq!(server.stats().requests, N_SQUAD as u64);
    let second = eval(&server, dir.path(), &dataset, "two", &[]).await;
    assert_exit(&second, 0);
    assert_eq!(
        server.stats().requests,
        N_SQUAD as u64,
        "no model call on re-run"
    );
    let third = eval(&server, dir.path(), &dataset, "three", &["--no-cache"]).await;
    assert_exit(&third, 0);
    assert_eq!(
        server.stats().requests,
        2 * N_SQUAD as u64,
        "--no-cache bypasses the cache"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_failed_resumes_from_an_out_dir_and_a_run_id() {
    let faults = FaultPlan::none().on_times(
        When::PromptContains("In what country is Normandy located?".into()),
        2,
        Fault::Status(400),
    );
    let server = start(Answer::Echo, faults).await;
    let dir = tempfile::tempdir().unwrap();
    let dataset = squad_jsonl().display().to_string();
    let first = eval(&server, dir.path(), &dataset, "first", &["--no-cache"]).await;
    assert_exit(&first, 0);
    let first_records = read_jsonl(&dir.path().join("first/records.jsonl"));
    assert!(!first_records[0]["error"].is_null());

    // Resume from the out dir: still failing once more, then from the run id: fixed.
    let second = eval(
        &server,
        dir.path(),
        &dataset,
        "second",
        &["--no-cache", "--retry-failed", "first"],
    )
    .await;
    assert_exit(&second, 0);
    assert_eq!(
        server.stats().requests,
        N_SQUAD as u64 + 1,
        "only the failed record is re-run"
    );
    let summary = summary(dir.path(), "second");
    let run_id = summary["run_id"].as_str().unwrap().to_string();
    let third = eval(
        &server,
        dir.path(),
        &dataset,
        "third",
        &["--no-cache", "--retry-failed", &run_id],
    )
    .await;
    assert_exit(&third, 0);
    assert_eq!(server.stats().requests, N_SQUAD as u64 + 2);
    let records = read_jsonl(&dir.path().join("third/records.jsonl"));
    assert_eq!(indices(&records), (0..N_SQUAD as u64).collect::<Vec<_>>());
    assert!(records.iter().all(|record| record["error"].is_null()));
    assert_eq!(
        records[3], first_records[3],
        "old successes are copied unchanged"
    );

    let unknown = eval(
        &server,
        dir.path(),
        &dataset,
        "x",
        &["--retry-failed", "no-such-run"],
    )
    .await;
    assert_exit(&unknown, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_under_sets_the_exit_code() {
    let server = start(Answer::Fixed("France".into()), FaultPlan::none()).await;
    let dir = tempfile::tempdir().unwrap();
    let dataset = squad_jsonl().display().to_string();
    let check = |threshold: &'static str, expected: i32| {
        let server = &server;
        let dir = dir.path().to_path_buf();
        let dataset = dataset.clone();
        async move {
            let output = eval(
                server,
                &dir,
                &dataset,
                "out",
                &["--fail-under", threshold, "--replace"],
            )
            .await;
            assert_eq!(
                output.status.code(),
                Some(expected),
                "{threshold}: {}",
                text(&output.stderr)
            );
        }
    };
    check("f1_score=0.9", 1).await;
    check("qa_accuracy=0.9", 1).await;
    check("factual_knowledge=0.01", 0).await;
    check("f1_score=0", 0).await;
    check("bleu=0.5", 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_errors_exit_2_before_any_model_call() {
    let server = ModelServer::start(Behavior::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dataset = squad_jsonl().display().to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            eval_args_with(&dataset, "{nope}", "openai:m", "qa_accuracy", &[]),
            "nope",
        ),
        (
            eval_args_with(
                &dataset,
                "{question}",
                "openai:m",
                "qa_accuracy",
                &["--reference-field", "gold"],
            ),
            "gold",
        ),
        (
            eval_args_with(
                &dataset,
                "{question}",
                "openai:m",
                "qa_accuracy_by_llm",
                &[],
            ),
            "judge",
        ),
        (
            eval_args_with(&dataset, "{question}", "openai:m", "bleu", &[]),
            "bleu",
        ),
        (
            eval_args_with(
                "missing.jsonl",
                "{question}",
                "openai:m",
                "qa_accuracy",
                &[],
            ),
            "missing.jsonl",
        ),
        (
            eval_args_with(
                &dataset,
                "{question}",
                "nosuchprovider:m",
                "qa_accuracy",
                &[],
            ),
            "nosuchprovider",
        ),
    ];
    for (args, needle) in cases {
        assert_usage_error(&run(&server, dir.path(), &args).await, needle);
    }
    assert_eq!(server.stats().requests, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_aws_region_or_credentials_fail_before_any_model_call() {
    let server = ModelServer::start(Behavior::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dataset = squad_jsonl().display().to_string();
    let args = eval_args_with(
        &dataset,
        "{question}",
        "bedrock:anthropic.claude-3-haiku-20240307-v1:0",
        "qa_accuracy",
        &["--quiet"],
    );
    let nowhere = dir.path().join("no-such-aws-file");
    for (missing, needle) in [
        ("AWS_REGION", "no AWS region"),
        ("AWS_ACCESS_KEY_ID", "no AWS credentials"),
    ] {
        let mut command = llm_eval(&server, dir.path());
        command
            .args(&args)
            .env_remove(missing)
            .env("AWS_CONFIG_FILE", &nowhere)
            .env("AWS_SHARED_CREDENTIALS_FILE", &nowhere);
        let output = output(command).await;
        assert_usage_error(&output, needle);
        let stderr = text(&output.stderr);
        assert!(!stderr.contains("test-secret"), "{stderr}");
    }
    assert_eq!(server.stats().requests, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_single_record_run() {
    let server = start(Answer::Fixed("France".into()), FaultPlan::none()).await;
    let dir = tempfile::tempdir().unwrap();
    let dataset = squad_jsonl().display().to_string();
    let output = eval(&server, dir.path(), &dataset, "out", &["--records", "1"]).await;
    assert_exit(&output, 0);
    let stdout = text(&output.stdout);
    assert!(stdout.contains("exact_match_score  1.0000"), "{stdout}");
    assert_eq!(read_jsonl(&dir.path().join("out/records.jsonl")).len(), 1);
    let sample = eval(
        &server,
        dir.path(),
        &dataset,
        "sample",
        &["--sample", "1", "--seed", "1234"],
    )
    .await;
    assert_exit(&sample, 0);
    assert_eq!(
        indices(&read_jsonl(&dir.path().join("sample/records.jsonl"))),
        vec![3]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_stops_cleanly_and_keeps_finished_work() {
    let server = ModelServer::start(Behavior::with_latency(Duration::from_millis(300)))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dataset = squad_jsonl().display().to_string();
    let mut command = llm_eval(&server, dir.path());
    command.args(eval_args(&dataset, "out", &["--concurrency", "2"]));
    let child = tokio::process::Command::from(command)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let pid = child.id().unwrap().to_string();
    let kill = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(kill.success());
    let output = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_exit(&output, 130);
    let records = read_jsonl(&dir.path().join("out/records.jsonl"));
    assert!(
        !records.is_empty() && records.len() < N_SQUAD,
        "kept {} records",
        records.len()
    );
    assert!(records.iter().all(|record| record["error"].is_null()));
    let summary = summary(dir.path(), "out");
    assert_eq!(summary["status"], "cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_renders_the_first_record() {
    let server = ModelServer::start(Behavior::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dataset = squad_jsonl().display().to_string();
    let output = run(
        &server,
        dir.path(),
        &[
            "preview",
            "--dataset",
            &dataset,
            "--template",
            "Q: {question}",
        ],
    )
    .await;
    assert_exit(&output, 0);
    assert!(
        text(&output.stdout).starts_with("Q: In what country is Normandy located?\n"),
        "{}",
        text(&output.stdout)
    );
    assert_eq!(server.stats().requests, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_healthcheck_and_stops_on_sigterm() {
    use tokio::io::AsyncBufReadExt;

    let server = ModelServer::start(Behavior::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut command = llm_eval(&server, dir.path());
    command.args(["serve", "--addr", "127.0.0.1:0"]);
    let mut child = tokio::process::Command::from(command)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), stderr.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let url = line.strip_prefix("listening on ").unwrap().to_string();
    let body = reqwest::get(format!("{url}/healthz"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "ok");
    // The container health check, given the bind address as the stack sets it (0.0.0.0:PORT).
    let port = url.rsplit(':').next().unwrap().to_string();
    let healthcheck = |dir: &Path| {
        let mut command = llm_eval(&server, dir);
        command
            .args(["healthcheck"])
            .env("LLM_EVAL_BIND", format!("0.0.0.0:{port}"));
        output(command)
    };
    let healthy = healthcheck(dir.path()).await;
    assert_exit(&healthy, 0);
    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let unhealthy = healthcheck(dir.path()).await;
    assert_exit(&unhealthy, 1);
    assert!(text(&unhealthy.stderr).contains("unhealthy"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bedrock_throttling_and_faults_lose_nothing() {
    let faults = FaultPlan::none()
        .on(When::Requests { from: 1, to: 3 }, Fault::throttle_secs(0))
        .on(When::Every(5), Fault::Status(503))
        .on(When::Every(11), Fault::Drop);
    let server = start(Answer::Fixed("France".into()), faults).await;
    let dir = tempfile::tempdir().unwrap();
    let dataset = squad_csv().display().to_string();
    let args = eval_args_with(
        &dataset,
        "Human: {Question}\n\nAssistant:",
        "bedrock:anthropic.claude-3-haiku-20240307-v1:0",
        "qa_accuracy",
        &[
            "--reference-field",
            "Reference Answer(s)",
            "--out",
            "out",
            "--no-cache",
            "--quiet",
        ],
    );
    let output = run(&server, dir.path(), &args).await;
    assert_exit(&output, 0);
    let records = read_jsonl(&dir.path().join("out/records.jsonl"));
    assert_eq!(indices(&records), (0..N_SQUAD as u64).collect::<Vec<_>>());
    assert!(
        records.iter().all(|record| record["error"].is_null()),
        "{records:?}"
    );
    let stats = server.stats();
    assert!(stats.faults >= 5, "faults: {}", stats.faults);
    assert_eq!(stats.requests, N_SQUAD as u64 + stats.faults);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn judges_from_the_command_line() {
    let answer = Answer::from_fn(|prompt| {
        if prompt.model == "judge" {
            "N".to_string()
        } else {
            "France".to_string()
        }
    });
    let server = start(answer, FaultPlan::none()).await;
    let dir = tempfile::tempdir().unwrap();
    let dataset = squad_jsonl().display().to_string();
    let args = eval_args_with(
        &dataset,
        SQUAD_TEMPLATE,
        "openai:m",
        "qa_accuracy_by_llm",
        &[
            "--judge",
            "openai:judge",
            "--records",
            "2",
            "--out",
            "out",
            "--quiet",
        ],
    );
    let output = run(&server, dir.path(), &args).await;
    assert_exit(&output, 0);
    let records = read_jsonl(&dir.path().join("out/records.jsonl"));
    assert_eq!(records.len(), 2);
    assert_eq!(
        records[0]["scores"],
        serde_json::json!([{"name": "qa_accuracy_by_llm", "value": 0.0}])
    );
    assert_eq!(records[0]["judge_replies"][0]["judge"], "openai:judge");
    assert_eq!(records[0]["judge_replies"][0]["reply"], "N");
    assert_eq!(server.stats().requests, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_lists_the_catalog_and_sagemaker_endpoints() {
    let server = ModelServer::start(Behavior {
        endpoints: vec!["qa-endpoint".into(), "tgi-llama".into()],
        ..Behavior::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let catalog = run(&server, dir.path(), &["models"]).await;
    assert_exit(&catalog, 0);
    let stdout = text(&catalog.stdout);
    assert!(
        stdout.contains("claude-3-haiku")
            && stdout.contains("bedrock:anthropic.claude-3-haiku-20240307-v1:0")
            && stdout.contains("openai:gpt-4o-mini"),
        "{stdout}"
    );
    let endpoints = run(&server, dir.path(), &["models", "--sagemaker-endpoints"]).await;
    assert_exit(&endpoints, 0);
    let stdout = text(&endpoints.stdout);
    assert!(
        stdout.contains("sagemaker:qa-endpoint") && stdout.contains("sagemaker:tgi-llama"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_failing_is_exit_1_without_fail_under() {
    let server = start(
        Answer::Echo,
        FaultPlan::none().on(When::Always, Fault::Status(400)),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let dataset = squad_jsonl().display().to_string();
    let output = eval(&server, dir.path(), &dataset, "out", &["--records", "3"]).await;
    assert_exit(&output, 1);
    assert!(
        text(&output.stderr).contains("every record of `openai:gpt-4o-mini` failed"),
        "{}",
        text(&output.stderr)
    );
    let records = read_jsonl(&dir.path().join("out/records.jsonl"));
    assert_eq!(records.len(), 3);
    assert!(records.iter().all(|record| !record["error"].is_null()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_cognito_settings_requires_login_and_signs_in_against_the_pool() {
    use tokio::io::AsyncBufReadExt;

    let server = ModelServer::start(Behavior::default()).await.unwrap();
    let moto = model_doubles::Moto::start().await;
    let pool = testkit::cognito::Pool::create(&moto).await;
    pool.create_user("alice").await;
    let dir = tempfile::tempdir().unwrap();
    let with_login = |command: &mut std::process::Command| {
        command
            .env("COGNITO_USER_POOL_ID", &pool.pool_id)
            .env("COGNITO_CLIENT_ID", &pool.client_id)
            .env("COGNITO_CLIENT_SECRET", &pool.client_secret)
            .env(
                "COGNITO_JWKS_URL",
                format!("{}/{}/.well-known/jwks.json", moto.url(), pool.pool_id),
            )
            .env("AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER", moto.url());
    };

    // Half a configuration is refused, naming the variables; it never falls back to local mode.
    let mut half = llm_eval(&server, dir.path());
    half.args(["serve", "--addr", "127.0.0.1:0"])
        .env("COGNITO_USER_POOL_ID", &pool.pool_id);
    let refused = output(half).await;
    assert_exit(&refused, 2);
    assert!(
        text(&refused.stderr).contains("COGNITO_USER_POOL_ID is set but COGNITO_CLIENT_ID is not"),
        "{}",
        text(&refused.stderr)
    );

    let mut command = llm_eval(&server, dir.path());
    command.args(["serve", "--addr", "127.0.0.1:0"]);
    with_login(&mut command);
    let mut child = tokio::process::Command::from(command)
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut next_line = async || {
        tokio::time::timeout(Duration::from_secs(10), stderr.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
    };
    let url = next_line()
        .await
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();
    let second = next_line().await;
    assert!(
        second.starts_with(&format!("login: Cognito user pool {}", pool.pool_id)),
        "{second}"
    );
    assert!(!second.contains(&pool.client_secret));

    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let runs = client.get(format!("{url}/runs")).send().await.unwrap();
    assert_eq!(runs.status(), reqwest::StatusCode::SEE_OTHER);
    assert_eq!(runs.headers()["location"], "/login?next=%2Fruns");
    let cookie = runs.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("; Secure"),
        "login on: Secure cookies: {cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_string();
    let page = client
        .get(format!("{url}/login"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("Local mode"), "{page}");
    let marker = "name=\"csrf_token\" value=\"";
    let start = page.find(marker).unwrap() + marker.len();
    let token = &page[start..start + 64];
    let signed = client
        .post(format!("{url}/login"))
        .header("cookie", &session)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            form_urlencoded::Serializer::new(String::new())
                .append_pair("csrf_token", token)
                .append_pair("username", "alice")
                .append_pair("password", testkit::cognito::TEMPORARY_PASSWORD)
                .finish(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), reqwest::StatusCode::SEE_OTHER);
    assert_eq!(
        signed.headers()["location"],
        "/login/challenge",
        "the binary reached moto's pool: the temporary password asks for a new one"
    );
    let pid = child.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

/// `--service-tier` and `--latency` reach Bedrock's Converse body as `serviceTier.type` and
/// `performanceConfig.latency`; a tier the catalog prices is costed at its price, a tier it
/// does not price gets no cost (never the standard one); a run without a Bedrock model refuses
/// them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bedrock_service_tier_and_latency_are_sent_and_priced() {
    let server = start(Answer::Fixed("France".into()), FaultPlan::none()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("catalog.toml"),
        "[[model]]\nalias = \"tiered\"\nprovider = \"bedrock\"\nmodel_id = \"amazon.nova-pro-v1:0\"\n\
         price_per_1k_input = 1.0\nprice_per_1k_output = 2.0\n\
         flex_price_per_1k_input = 0.5\nflex_price_per_1k_output = 1.0\n",
    )
    .unwrap();
    let dataset = squad_jsonl().display().to_string();
    let tiered = |tier: &'static str, out: &'static str| {
        eval_args_with(
            &dataset,
            SQUAD_TEMPLATE,
            "tiered",
            "factual_knowledge",
            &[
                "--catalog",
                "catalog.toml",
                "--records",
                "2",
                "--service-tier",
                tier,
                "--latency",
                "optimized",
                "--out",
                out,
                "--quiet",
                "--no-cache",
            ],
        )
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<String>>()
    };
    let args = tiered("flex", "flex");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = run(&server, dir.path(), &args).await;
    assert_exit(&output, 0);
    let received = server.received();
    assert_eq!(received.len(), 2);
    for request in &received {
        assert_eq!(
            request.body["serviceTier"],
            serde_json::json!({"type": "flex"})
        );
        assert_eq!(
            request.body["performanceConfig"],
            serde_json::json!({"latency": "optimized"})
        );
    }
    let records = read_jsonl(&dir.path().join("flex/records.jsonl"));
    for record in &records {
        let (input, output) = (
            record["input_tokens"].as_f64().unwrap(),
            record["output_tokens"].as_f64().unwrap(),
        );
        let expected = input / 1000.0 * 0.5 + output / 1000.0 * 1.0;
        let cost = record["cost_usd"].as_f64().unwrap();
        assert!((cost - expected).abs() < 1e-12, "{cost} vs {expected}");
    }

    // Priority: sent, but the catalog has no priority price, so no cost.
    let args = tiered("priority", "priority");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = run(&server, dir.path(), &args).await;
    assert_exit(&output, 0);
    let received = server.received();
    assert_eq!(
        received.last().unwrap().body["serviceTier"],
        serde_json::json!({"type": "priority"})
    );
    let records = read_jsonl(&dir.path().join("priority/records.jsonl"));
    assert!(
        records.iter().all(|record| record["cost_usd"].is_null()),
        "{records:?}"
    );

    // No Bedrock model: refused before any call.
    let calls = server.received().len();
    let args = eval_args(&dataset, "none", &["--service-tier", "flex"]);
    let output = run(&server, dir.path(), &args).await;
    assert_usage_error(&output, "no model of this run is a Bedrock model");
    assert_eq!(server.received().len(), calls);
}
