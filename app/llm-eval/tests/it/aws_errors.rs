//! What a shared app shows of AWS's errors (issue 19): Bedrock refuses every call with its real
//! `AccessDeniedException` text, which names the task's role and the account id. Through
//! `llm-eval serve` (the binary users run) and HTTP, the run page, both record downloads and the
//! summary keep what the user needs (the exception and the action refused) and lose the ARNs
//! and the account id; the store keeps the whole text.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use model_doubles::{Answer, Fault, FaultPlan, When};

use crate::helpers::{llm_eval, start};
use crate::shared_store::{Browser, spawn_serve};

const ACCOUNT: &str = "123456789012";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_and_downloads_show_aws_errors_without_the_account_or_roles() {
    let models = start(
        Answer::Fixed("Paris".into()),
        FaultPlan::none().on(
            When::Model("anthropic.claude-3-haiku-20240307-v1:0".into()),
            Fault::Status(403),
        ),
    )
    .await;
    assert!(model_doubles::ACCESS_DENIED_BEDROCK.contains(ACCOUNT));
    let dir = tempfile::tempdir().unwrap();
    let mut command = llm_eval(&models, dir.path());
    command
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"));
    let (_server, base) = spawn_serve(command).await;

    let mut browser = Browser::new();
    let token = browser.csrf_token(&base).await;
    let (status, location) = browser
        .post(
            &format!("{base}/datasets/sample"),
            &[("csrf_token", &token)],
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::SEE_OTHER, "{location}");
    let dataset = location.trim_start_matches("/datasets/").to_string();
    let (status, location) = browser
        .post(
            &format!("{base}/evals"),
            &[
                ("csrf_token", &token),
                ("dataset", &dataset),
                ("reference_field", "answers"),
                ("template", "{question}"),
                ("models", "claude-3-haiku"),
                ("metrics", "qa_accuracy"),
                ("selection", "first"),
                ("count", "3"),
                ("max_attempts", "1"),
                ("action", "run"),
            ],
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::SEE_OTHER, "{location}");
    let run_id = location.trim_start_matches("/runs/").to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let progress = browser.progress(&base, &run_id).await;
        if progress["status"] != "running" {
            break;
        }
        assert!(Instant::now() < deadline, "not finished: {progress}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    for path in ["", "/records.jsonl", "/records.csv", "/summary.json"] {
        let (status, body) = browser.get(&format!("{base}/runs/{run_id}{path}")).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{path}: {body}");
        for detail in [ACCOUNT, "assumed-role", "llm-eval-task-role", "arn:aws"] {
            assert!(!body.contains(detail), "{path} shows {detail:?}: {body}");
        }
        if path != "/summary.json" {
            assert!(
                body.contains("AccessDeniedException")
                    && body.contains("not authorized to perform: bedrock:InvokeModel"),
                "{path} lost what the user needs: {body}"
            );
        }
    }
    // The store keeps the whole text (for the owner's log and support).
    let conn = rusqlite::Connection::open(dir.path().join("store.sqlite")).unwrap();
    let stored: String = conn
        .query_row(
            "SELECT error FROM records WHERE run_id = ?1 LIMIT 1",
            [&run_id],
            |row| row.get(0),
        )
        .unwrap();
    assert!(stored.contains(ACCOUNT), "{stored}");
}
