//! The 50-user load test of issue 19 (ignored by default: it takes a minute and its figures
//! mean something only on a quiet machine; run it with
//! `cargo nextest run -p web --run-ignored only load`): 49 signed-in users read their pages
//! while idle, then while one user hammers the server at full quota (3 runs of 8 models at a
//! concurrency of 16 over 500 records, a 200 ms model), and their p95 latency must stay within
//! twice the idle one. Prints the figures.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use model_doubles::{Behavior, ModelServer};
use reqwest::StatusCode;
use web::WebConfig;

use crate::pages::{TestApp, TestLogin, spawn_app_with, test_state};

const USERS: usize = 50;
const REQUESTS_PER_USER: usize = 20;

/// Signs `name` in on a new browser; returns its session id.
async fn session_of(app: &TestApp, name: &str) -> String {
    app.new_browser();
    let token = app.get("/login").await.csrf_token();
    let signed_in = app
        .post_form("/login", &[("csrf_token", &token), ("user", name)])
        .await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    app.session_id().unwrap()
}

/// Each session reads `/runs` `REQUESTS_PER_USER` times, all sessions at once; the latencies.
async fn read_pages(app: &TestApp, sessions: &[String]) -> Vec<Duration> {
    let client = reqwest::Client::new();
    let reads = sessions.iter().map(|session| {
        let client = client.clone();
        let url = format!("{}/runs", app.base_url);
        let cookie = format!("{}={session}", app.cookie_name());
        async move {
            let mut latencies = Vec::new();
            for _ in 0..REQUESTS_PER_USER {
                let started = Instant::now();
                let response = client
                    .get(&url)
                    .header("cookie", &cookie)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::OK);
                let _ = response.bytes().await.unwrap();
                latencies.push(started.elapsed());
            }
            latencies
        }
    });
    futures::future::join_all(reads)
        .await
        .into_iter()
        .flatten()
        .collect()
}

fn percentile(latencies: &mut [Duration], p: f64) -> Duration {
    latencies.sort();
    let rank = ((p / 100.0) * latencies.len() as f64).ceil() as usize;
    latencies[rank.saturating_sub(1).min(latencies.len() - 1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a load test: run it alone on a quiet machine"]
async fn one_user_at_full_quota_does_not_slow_the_others_down() {
    let server = ModelServer::start(Behavior::with_latency(Duration::from_millis(200)))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut state = test_state(&server, dir.path()).await;
    state.authenticator = Some(Arc::new(TestLogin));
    state.config = Arc::new(WebConfig {
        max_upload_bytes: 16 << 20,
        ..(*state.config).clone()
    });
    state.runs = web::registry::RunRegistry::default()
        .with_call_ceiling(state.config.quotas.task_model_calls);
    let app = spawn_app_with(state, dir).await;
    let quotas = app.state.config.quotas.clone();
    let mut sessions = Vec::new();
    for user in 1..USERS {
        sessions.push(session_of(&app, &format!("user{user}")).await);
    }
    let mut idle = read_pages(&app, &sessions).await;
    let (idle_p50, idle_p95) = (percentile(&mut idle, 50.0), percentile(&mut idle, 95.0));

    // The hammering user: a 500-record dataset, then every run the quotas allow.
    session_of(&app, "hammer").await;
    let mut dataset = String::new();
    for n in 0..500 {
        dataset.push_str(&format!(
            "{{\"question\": \"Question {n}?\", \"answers\": [\"a\"]}}\n"
        ));
    }
    let token = app.csrf_token().await;
    let uploaded = app
        .post_multipart(
            "/datasets",
            &[("csrf_token", &token)],
            Some(("file", "load.jsonl", dataset.into_bytes())),
        )
        .await;
    assert_eq!(uploaded.status, StatusCode::SEE_OTHER, "{}", uploaded.body);
    let dataset_id = uploaded
        .location()
        .trim_start_matches("/datasets/")
        .to_string();
    let models: Vec<String> = (0..quotas.models_per_run)
        .map(|n| format!("openai:m{n}"))
        .collect();
    let models = models.join(", ");
    let concurrency = quotas.concurrency_per_run.to_string();
    let mut runs = Vec::new();
    for _ in 0..quotas.runs_per_user {
        let started = crate::pages::start_eval(
            &app,
            &dataset_id,
            "{question}",
            &[
                ("extra_models", models.as_str()),
                ("concurrency", concurrency.as_str()),
                ("metrics", "qa_accuracy"),
            ],
        )
        .await;
        assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
        runs.push(started.location().to_string());
    }
    // One more is over the quota.
    let over = crate::pages::start_eval(&app, &dataset_id, "{question}", &[]).await;
    assert_eq!(over.status, StatusCode::BAD_REQUEST);

    let mut loaded = read_pages(&app, &sessions).await;
    let (loaded_p50, loaded_p95) = (percentile(&mut loaded, 50.0), percentile(&mut loaded, 95.0));
    let calls = server.received().len();
    println!(
        "load: {} users x {REQUESTS_PER_USER} page reads; idle p50 {:.1} ms p95 {:.1} ms; with one user at full quota ({} runs x {} models x concurrency {}, {calls} model calls meanwhile) p50 {:.1} ms p95 {:.1} ms",
        sessions.len(),
        idle_p50.as_secs_f64() * 1000.0,
        idle_p95.as_secs_f64() * 1000.0,
        quotas.runs_per_user,
        quotas.models_per_run,
        quotas.concurrency_per_run,
        loaded_p50.as_secs_f64() * 1000.0,
        loaded_p95.as_secs_f64() * 1000.0,
    );
    assert!(
        calls > 0,
        "the hammering runs made no call while the others read"
    );
    assert!(
        loaded_p95 <= idle_p95 * 2,
        "p95 {loaded_p95:?} under load, {idle_p95:?} idle"
    );
}
