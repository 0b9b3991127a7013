//! Regressions found by field-testing the `llm-eval` binary as a first-time user and as a CI
//! gate: each test is named after the defect it pins down.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use model_doubles::{Answer, Behavior, Fault, FaultPlan, ModelServer, When};

use crate::helpers::{
    N_SQUAD, SQUAD_TEMPLATE, assert_exit, assert_usage_error, eval, eval_args, eval_args_with,
    llm_eval, output, read_jsonl, run, squad_jsonl, start, summary, text,
};

fn france_server_behavior() -> Behavior {
    Behavior {
        answer: Answer::Fixed("France".into()),
        ..Behavior::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_duplicate_model_is_evaluated_once() {
    let server = ModelServer::start(france_server_behavior()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dataset = squad_jsonl().display().to_string();
    let output = eval(
        &server,
        dir.path(),
        &dataset,
        "out",
        &["--no-cache", "--model", "openai:gpt-4o-mini"],
    )
    .await;
    assert_exit(&output, 0);
    assert_eq!(
        read_jsonl(&dir.path().join("out/records.jsonl")).len(),
        N_SQUAD
    );
    assert_eq!(server.stats().requests, N_SQUAD as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_fail_under_fails_when_a_model_has_no_scored_record() {
    let server = ModelServer::start(Behavior {
        faults: FaultPlan::none().on(When::Model("broken".into()), Fault::Status(400)),
        ..france_server_behavior()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dataset = squad_jsonl().display().to_string();
    let output = eval(
        &server,
        dir.path(),
        &dataset,
        "out",
        &[
            "--records",
            "3",
            "--model",
            "openai:broken",
            "--fail-under",
            "factual_knowledge=0.3",
        ],
    )
    .await;
    assert_exit(&output, 1);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(
            "fail-under: openai:broken factual_knowledge: no record was scored (3 failed), so it cannot reach 0.3"
        ),
        "{stderr}"
    );
    assert!(
        !stderr.contains("openai:gpt-4o-mini factual_knowledge"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_retry_failed_with_a_changed_template_calls_the_model_again() {
    let server = start(
        Answer::Echo,
        FaultPlan::none().on_times(
            When::PromptContains("In what country is Normandy located?".into()),
            1,
            Fault::Status(400),
        ),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let dataset = squad_jsonl().display().to_string();
    let first = run(
        &server,
        dir.path(),
        &eval_args_with(
            &dataset,
            "Q: {question}",
            "openai:m",
            "qa_accuracy",
            &["--out", "first", "--no-cache", "--quiet"],
        ),
    )
    .await;
    assert_exit(&first, 0);
    assert_eq!(server.stats().requests, N_SQUAD as u64);

    // Same records, another template and one more metric: nothing of the first run fits.
    let second = run(
        &server,
        dir.path(),
        &eval_args_with(
            &dataset,
            "Question: {question}",
            "openai:m",
            "qa_accuracy",
            &[
                "--metric",
                "factual_knowledge",
                "--out",
                "second",
                "--no-cache",
                "--quiet",
                "--retry-failed",
                "first",
            ],
        ),
    )
    .await;
    assert_exit(&second, 0);
    assert_eq!(server.stats().requests, 2 * N_SQUAD as u64);
    let records = read_jsonl(&dir.path().join("second/records.jsonl"));
    assert_eq!(records.len(), N_SQUAD);
    for record in &records {
        assert!(
            record["model_input"]
                .as_str()
                .unwrap()
                .starts_with("Question: "),
            "{record}"
        );
        assert_eq!(record["scores"].as_array().unwrap().len(), 6, "{record}");
        // The double echoes the prompt.
        assert_eq!(record["model_output"], record["model_input"]);
    }

    // Same template, a metric added: answers are reused and scored with the new metric.
    let third = run(
        &server,
        dir.path(),
        &eval_args_with(
            &dataset,
            "Q: {question}",
            "openai:m",
            "qa_accuracy",
            &[
                "--metric",
                "factual_knowledge",
                "--out",
                "third",
                "--no-cache",
                "--quiet",
                "--retry-failed",
                "first",
            ],
        ),
    )
    .await;
    assert_exit(&third, 0);
    assert_eq!(
        server.stats().requests,
        2 * N_SQUAD as u64 + 1,
        "only the record that failed is asked again"
    );
    let records = read_jsonl(&dir.path().join("third/records.jsonl"));
    assert!(records.iter().all(|record| record["error"].is_null()));
    assert!(
        records
            .iter()
            .all(|record| record["scores"].as_array().unwrap().len() == 6)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_empty_selection_is_a_usage_error() {
    let server = ModelServer::start(france_server_behavior()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.jsonl"), "\n\n").unwrap();
    std::fs::write(dir.path().join("header.csv"), "question,answers\n").unwrap();
    let dataset = squad_jsonl().display().to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            eval_args("empty.jsonl", "out", &[]),
            "empty.jsonl: the dataset has no records",
        ),
        (
            eval_args("header.csv", "out", &[]),
            "header.csv: the dataset has no records",
        ),
        (
            eval_args(&dataset, "out", &["--records", "0"]),
            "must be at least 1",
        ),
        (
            eval_args(&dataset, "out", &["--sample", "0"]),
            "must be at least 1",
        ),
    ];
    for (args, needle) in cases {
        assert_usage_error(&run(&server, dir.path(), &args).await, needle);
    }
    assert_eq!(server.stats().requests, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_template_file_typo_is_not_sent_as_the_prompt() {
    let server = ModelServer::start(france_server_behavior()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dataset = squad_jsonl().display().to_string();
    let mut args = eval_args(&dataset, "out", &[]);
    let template_at = args.iter().position(|arg| *arg == SQUAD_TEMPLATE).unwrap();
    args[template_at] = "prompts/qa.txt";
    let output = run(&server, dir.path(), &args).await;
    assert_usage_error(&output, "`prompts/qa.txt`: no such file");
    assert_eq!(server.stats().requests, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_api_key_with_a_trailing_line_end_is_trimmed() {
    let server = ModelServer::start(Behavior {
        api_key: Some("test-key".into()),
        ..france_server_behavior()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dataset = squad_jsonl().display().to_string();
    let mut command = llm_eval(&server, dir.path());
    command
        .env("OPENAI_API_KEY", "test-key\r\n")
        .args(eval_args(
            &dataset,
            "out",
            &["--records", "2", "--no-cache"],
        ));
    let output = output(command).await;
    assert_exit(&output, 0);
    let records = read_jsonl(&dir.path().join("out/records.jsonl"));
    assert!(records.iter().all(|record| record["error"].is_null()));
    assert_eq!(server.stats().requests, 2);
}

fn write(dir: &Path, name: &str, content: &str) -> String {
    std::fs::write(dir.join(name), content).unwrap();
    name.to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_broken_or_sparse_first_record_fails_alone() {
    let server = ModelServer::start(france_server_behavior()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dataset = write(
        dir.path(),
        "sparse.jsonl",
        concat!(
            "{\"question\": tru}\n",
            "{\"question\": \"Where is Paris?\"}\n",
            "{\"question\": \"Where is Lyon?\", \"answers\": [\"France\"]}\n",
            "{\"answers\": [\"France\"]}\n",
        ),
    );
    let output = run(
        &server,
        dir.path(),
        &eval_args_with(
            &dataset,
            "Q: {question}",
            "openai:m",
            "qa_accuracy",
            &["--out", "out", "--quiet"],
        ),
    )
    .await;
    assert_exit(&output, 0);
    let errors: Vec<serde_json::Value> = read_jsonl(&dir.path().join("out/records.jsonl"))
        .iter()
        .map(|record| record["error"].clone())
        .collect();
    assert_eq!(
        errors,
        [
            serde_json::json!("sparse.jsonl:1: invalid JSON at column 17: expected ident"),
            serde_json::json!("sparse.jsonl:2: field `answers` is missing"),
            serde_json::Value::Null,
            serde_json::json!("sparse.jsonl:4: field `question` used by the template is missing"),
        ]
    );
    assert_eq!(server.stats().requests, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_unusable_out_dir_fails_before_any_model_call() {
    let server = ModelServer::start(france_server_behavior()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dataset = squad_jsonl().display().to_string();
    std::fs::write(dir.path().join("taken"), "a file, not a directory").unwrap();
    let output = eval(&server, dir.path(), &dataset, "taken", &[]).await;
    assert_usage_error(
        &output,
        "--out taken: cannot write taken (checked before any model call): it exists and is not a directory",
    );
    assert_eq!(server.stats().requests, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_category_values_print_as_python_and_null_is_none() {
    let server = ModelServer::start(france_server_behavior()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dataset = write(
        dir.path(),
        "categories.jsonl",
        concat!(
            "{\"question\": \"a\", \"answers\": \"France\", \"category\": true}\n",
            "{\"question\": \"b\", \"answers\": \"France\", \"category\": null}\n",
            "{\"question\": \"c\", \"answers\": \"France\", \"category\": \"geo\"}\n",
            "{\"question\": \"d\", \"answers\": \"France\", \"category\": 3}\n",
        ),
    );
    let output = run(
        &server,
        dir.path(),
        &eval_args_with(
            &dataset,
            "Q: {question}",
            "openai:m",
            "factual_knowledge",
            &["--out", "out", "--quiet"],
        ),
    )
    .await;
    assert_exit(&output, 0);
    let categories: Vec<serde_json::Value> = read_jsonl(&dir.path().join("out/records.jsonl"))
        .iter()
        .map(|record| record.get("category").cloned().unwrap_or_default())
        .collect();
    assert_eq!(
        categories,
        [
            serde_json::json!("True"),
            serde_json::Value::Null,
            serde_json::json!("geo"),
            serde_json::json!("3"),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_cache_hits_do_not_drag_latency_percentiles_to_zero() {
    let server = ModelServer::start(Behavior {
        latency: std::time::Duration::from_millis(20),
        ..france_server_behavior()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dataset = squad_jsonl().display().to_string();
    let first = eval(&server, dir.path(), &dataset, "first", &["--records", "4"]).await;
    assert_exit(&first, 0);
    let p50 = summary(dir.path(), "first")["models"][0]["latency_p50_ms"]
        .as_f64()
        .unwrap();
    assert!(p50 >= 20.0, "{p50}");
    // Half the records are now cached: the percentiles are those of the real calls.
    let second = eval(&server, dir.path(), &dataset, "second", &["--records", "8"]).await;
    assert_exit(&second, 0);
    assert_eq!(server.stats().requests, 8);
    let p50 = summary(dir.path(), "second")["models"][0]["latency_p50_ms"]
        .as_f64()
        .unwrap();
    assert!(p50 >= 20.0, "{p50}");
    let third = eval(&server, dir.path(), &dataset, "third", &["--records", "8"]).await;
    assert_exit(&third, 0);
    assert!(summary(dir.path(), "third")["models"][0]["latency_p50_ms"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_json_array_file_is_reported_once_not_per_record() {
    let server = ModelServer::start(france_server_behavior()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pretty = write(
        dir.path(),
        "pretty.json",
        "[\n  {\"question\": \"q\", \"answers\": [\"France\"]}\n]\n",
    );
    let compact = write(
        dir.path(),
        "compact.json",
        "[{\"question\": \"q\", \"answers\": [\"France\"]}]",
    );
    for dataset in [pretty, compact] {
        let output = eval(&server, dir.path(), &dataset, "out", &[]).await;
        assert_usage_error(
            &output,
            &format!("{dataset}: this is one JSON array, not JSON Lines"),
        );
    }
    // A file of nothing but broken lines is reported once, with its first problem.
    let broken = write(dir.path(), "broken.jsonl", "{\"q\": \n[1, 2]\n");
    let output = eval(&server, dir.path(), &broken, "out", &[]).await;
    assert_usage_error(
        &output,
        "broken.jsonl: no usable record among the first 1000; the first problem: broken.jsonl:1: invalid JSON",
    );
    assert_eq!(server.stats().requests, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_cache_does_not_answer_for_another_base_url() {
    let local = start(
        Answer::Fixed("from the local server".into()),
        FaultPlan::none(),
    )
    .await;
    let other = ModelServer::start(france_server_behavior()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dataset = squad_jsonl().display().to_string();
    let args = eval_args(&dataset, "out", &["--records", "2", "--replace"]);
    assert_exit(&run(&local, dir.path(), &args).await, 0);
    // The same model id and prompts behind another OPENAI_BASE_URL, same cache directory.
    assert_exit(&run(&other, dir.path(), &args).await, 0);
    assert_eq!(other.stats().requests, 2, "not answered from the cache");
    let outputs: Vec<serde_json::Value> = read_jsonl(&dir.path().join("out/records.jsonl"))
        .iter()
        .map(|record| record["model_output"].clone())
        .collect();
    assert_eq!(
        outputs,
        [serde_json::json!("France"), serde_json::json!("France")]
    );
    // Back to the first server: its answers are still cached.
    assert_exit(&run(&local, dir.path(), &args).await, 0);
    assert_eq!(local.stats().requests, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_aws_endpoint_url_without_scheme_fails_before_any_call() {
    let server = ModelServer::start(france_server_behavior()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dataset = squad_jsonl().display().to_string();
    let endpoint = server.url().replace("http://", "");
    let mut command = llm_eval(&server, dir.path());
    command
        .env("AWS_ENDPOINT_URL", &endpoint)
        .args(eval_args_with(
            &dataset,
            "{question}",
            "claude-3-haiku",
            "qa_accuracy",
            &["--quiet"],
        ));
    let output = output(command).await;
    assert_usage_error(
        &output,
        &format!("the AWS endpoint URL `{endpoint}` (AWS_ENDPOINT_URL) is not an http(s) URL"),
    );
    let stderr = text(&output.stderr);
    assert!(!stderr.contains("test-secret"), "{stderr}");
    assert_eq!(server.stats().requests, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_cache_does_not_answer_for_another_aws_endpoint() {
    let first = start(
        Answer::Fixed("from the first endpoint".into()),
        FaultPlan::none(),
    )
    .await;
    let second = ModelServer::start(france_server_behavior()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dataset = squad_jsonl().display().to_string();
    let args = eval_args_with(
        &dataset,
        "{question}",
        "claude-3-haiku",
        "qa_accuracy",
        &["--records", "2", "--out", "out", "--quiet", "--replace"],
    );
    // llm_eval points AWS_ENDPOINT_URL at the given server; the cache directory is shared.
    assert_exit(&run(&first, dir.path(), &args).await, 0);
    assert_exit(&run(&second, dir.path(), &args).await, 0);
    assert_eq!(second.stats().requests, 2, "not answered from the cache");
    assert_exit(&run(&first, dir.path(), &args).await, 0);
    assert_eq!(first.stats().requests, 2, "its own answers are cached");
}
