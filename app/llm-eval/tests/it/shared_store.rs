//! Two `llm-eval serve` processes sharing one DynamoDB table and S3 bucket (a moto server): a
//! run started through the first shows live progress through the second; SIGKILL of the first
//! mid-run lets the second take the expired lease and resume the run, which ends with every
//! record stored exactly once.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use model_doubles::{Behavior, ModelServer};
use store::dynamo::{DynamoConfig, sdk_loader};
use store::{DynamoStore, Store, UserId, all_records};
use tokio::io::AsyncBufReadExt;

use crate::helpers::{N_SQUAD, SQUAD_TEMPLATE, llm_eval};

const TABLE: &str = "shared-store";
const BUCKET: &str = "shared-data";

/// A browser talking to one of the servers with a session cookie shared by both (sessions
/// live in the shared table).
pub(crate) struct Browser {
    pub(crate) client: reqwest::Client,
    pub(crate) cookie: Option<String>,
}

impl Browser {
    /// A browser with no cookie yet that does not follow redirects (tests read `Location`).
    pub(crate) fn new() -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    pub(crate) async fn get(&mut self, url: &str) -> (reqwest::StatusCode, String) {
        let mut request = self.client.get(url);
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.unwrap();
        self.remember(response.headers());
        let status = response.status();
        (status, response.text().await.unwrap())
    }

    pub(crate) async fn post(
        &mut self,
        url: &str,
        fields: &[(&str, &str)],
    ) -> (reqwest::StatusCode, String) {
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (name, value) in fields {
            form.append_pair(name, value);
        }
        let mut request = self
            .client
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.finish());
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.unwrap();
        self.remember(response.headers());
        let status = response.status();
        let location = response
            .headers()
            .get("location")
            .map(|value| value.to_str().unwrap().to_string())
            .unwrap_or_default();
        (status, location)
    }

    pub(crate) fn remember(&mut self, headers: &reqwest::header::HeaderMap) {
        for value in headers.get_all("set-cookie") {
            let text = value.to_str().unwrap();
            if text.starts_with("llm_eval_session=") {
                self.cookie = Some(text.split(';').next().unwrap().to_string());
            }
        }
    }

    pub(crate) async fn csrf_token(&mut self, base: &str) -> String {
        let (_, page) = self.get(&format!("{base}/datasets")).await;
        let marker = "name=\"csrf_token\" value=\"";
        let start = page.find(marker).expect("the page has a form") + marker.len();
        page[start..start + 64].to_string()
    }

    pub(crate) async fn progress(&mut self, base: &str, run_id: &str) -> serde_json::Value {
        let (status, body) = self.get(&format!("{base}/runs/{run_id}/progress")).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{body}");
        serde_json::from_str(&body).unwrap()
    }
}

/// Starts `llm-eval serve` on the shared store; returns the child and its URL.
async fn serve(
    models: &ModelServer,
    moto: &model_doubles::Moto,
    dir: &std::path::Path,
) -> (tokio::process::Child, String) {
    let mut command = llm_eval(models, dir);
    command
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir.join("data"))
        .env("LLM_EVAL_STORE", format!("dynamodb:{TABLE}"))
        .env("DATA_BUCKET", BUCKET)
        .env("LLM_EVAL_LEASE_SECS", "2")
        .env("AWS_ENDPOINT_URL", moto.url());
    spawn_serve(command).await
}

/// Spawns `command` (an `llm-eval serve` command), waits for its "listening on URL" line and
/// keeps draining its stderr so the server never blocks on a full pipe; the child is killed
/// when dropped. Returns the child and its URL.
pub(crate) async fn spawn_serve(command: std::process::Command) -> (tokio::process::Child, String) {
    let mut child = tokio::process::Command::from(command)
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let url = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {first}"))
        .to_string();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_runs_and_the_survivor_resumes_a_killed_ones_run() {
    shared_run(Stop::Kill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_stopped_with_sigterm_hands_its_run_to_the_other() {
    shared_run(Stop::Term).await;
}

#[derive(Clone, Copy, PartialEq)]
enum Stop {
    /// SIGKILL: the lease expires.
    Kill,
    /// SIGTERM: the lease is released.
    Term,
}

/// Two servers on one moto-backed store, and a run of the sample dataset started through the
/// first (slow answers: it lasts long enough to be watched, cancelled or killed halfway).
struct Shared {
    _moto: model_doubles::Moto,
    _dirs: (tempfile::TempDir, tempfile::TempDir, tempfile::TempDir),
    store: DynamoStore,
    models: ModelServer,
    first: tokio::process::Child,
    url_a: String,
    _second: tokio::process::Child,
    url_b: String,
    browser: Browser,
    run_id: String,
}

/// The SDK configuration of a process that talks to `moto` (test credentials, us-east-1).
pub(crate) async fn moto_config(moto: &model_doubles::Moto) -> aws_config::SdkConfig {
    sdk_loader()
        .endpoint_url(moto.url())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "AKIDTEST",
            "test-secret",
            None,
            None,
            "test",
        ))
        .load()
        .await
}

async fn start_shared_run() -> Shared {
    let moto = model_doubles::Moto::start().await;
    let config = moto_config(&moto).await;
    let check_dir = tempfile::tempdir().unwrap();
    let store = DynamoStore::new(
        &config,
        DynamoConfig {
            table: TABLE.into(),
            bucket: BUCKET.into(),
            local_dir: check_dir.path().to_path_buf(),
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
    // Slow answers: the run lasts long enough to be watched and killed halfway.
    let models = ModelServer::start(Behavior::with_latency(Duration::from_millis(400)))
        .await
        .unwrap();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (first, url_a) = serve(&models, &moto, dir_a.path()).await;
    let (second, url_b) = serve(&models, &moto, dir_b.path()).await;

    let mut browser = Browser::new();
    let token = browser.csrf_token(&url_a).await;
    let (status, location) = browser
        .post(
            &format!("{url_a}/datasets/sample"),
            &[("csrf_token", &token)],
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::SEE_OTHER, "{location}");
    let dataset = location.trim_start_matches("/datasets/").to_string();
    let (status, location) = browser
        .post(
            &format!("{url_a}/evals"),
            &[
                ("csrf_token", &token),
                ("dataset", &dataset),
                ("reference_field", "answers"),
                ("template", SQUAD_TEMPLATE),
                ("extra_models", "openai:m"),
                ("metrics", "qa_accuracy"),
                ("selection", "all"),
                ("concurrency", "1"),
                ("max_attempts", "1"),
                ("timeout", "10"),
                ("action", "run"),
            ],
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::SEE_OTHER, "{location}");
    let run_id = location.trim_start_matches("/runs/").to_string();

    Shared {
        _moto: moto,
        _dirs: (check_dir, dir_a, dir_b),
        store,
        models,
        first,
        url_a,
        _second: second,
        url_b,
        browser,
        run_id,
    }
}

async fn shared_run(stop: Stop) {
    let Shared {
        _moto,
        _dirs,
        store,
        models: _models,
        mut first,
        url_a: _,
        _second,
        url_b,
        mut browser,
        run_id,
    } = start_shared_run().await;
    // Live progress through the second server, which does not execute the run.
    let deadline = Instant::now() + Duration::from_secs(30);
    let seen = loop {
        let progress = browser.progress(&url_b, &run_id).await;
        let done = progress["done"].as_u64().unwrap();
        if done >= 3 {
            break progress;
        }
        assert!(
            Instant::now() < deadline,
            "no progress through the second server: {progress}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(seen["status"], "running", "{seen}");
    assert_eq!(seen["total"], N_SQUAD, "{seen}");

    // The first server dies without a word; its lease expires and the second takes the run.
    match stop {
        Stop::Kill => first.start_kill().unwrap(),
        Stop::Term => {
            let pid = first.id().unwrap().to_string();
            std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap();
        }
    }
    let exit = tokio::time::timeout(Duration::from_secs(30), first.wait())
        .await
        .unwrap()
        .unwrap();
    if stop == Stop::Term {
        assert_eq!(exit.code(), Some(0), "a graceful stop");
        // Handed back, not interrupted: still running, for the other server to take.
        let run = store.run(&UserId::local(), &run_id).await.unwrap().unwrap();
        assert_eq!(run.status, store::RunStatus::Running);
    }
    let killed_at = browser.progress(&url_b, &run_id).await["done"]
        .as_u64()
        .unwrap();
    assert!(killed_at < N_SQUAD as u64, "the run ended before the kill");
    let deadline = Instant::now() + Duration::from_secs(60);
    let ended = loop {
        let progress = browser.progress(&url_b, &run_id).await;
        if progress["status"] != "running" {
            break progress;
        }
        assert!(
            Instant::now() < deadline,
            "the run was not resumed: {progress}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(ended["status"], "finished", "{ended}");
    assert_eq!(ended["done"], N_SQUAD, "{ended}");

    // Every record exactly once, in the shared table.
    let rows = all_records(&store, &UserId::local(), &run_id)
        .await
        .unwrap();
    let positions: Vec<usize> = rows.iter().map(|row| row.position).collect();
    assert_eq!(positions, (0..N_SQUAD).collect::<Vec<_>>());
    let counts = store
        .record_counts(&UserId::local(), &run_id)
        .await
        .unwrap();
    assert_eq!((counts.ok, counts.failed), (N_SQUAD, 0));
    let run = store.run(&UserId::local(), &run_id).await.unwrap().unwrap();
    assert_eq!(run.summary.unwrap()["done"], N_SQUAD);
}

/// Cancel through the second server, which does not execute the run: the request is stored,
/// the first server (holding the lease) sees it at its next renewal and cancels the run, which
/// ends `cancelled` with its finished records kept, and no more model calls are made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_is_cancelled_through_a_server_that_does_not_execute_it() {
    let Shared {
        _moto,
        _dirs,
        store,
        models,
        first: _first,
        url_a,
        _second,
        url_b,
        mut browser,
        run_id,
    } = start_shared_run().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let progress = browser.progress(&url_b, &run_id).await;
        if progress["done"].as_u64().unwrap() >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "no progress: {progress}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The second server's page offers the Cancel button; its form carries the CSRF token.
    let (status, page) = browser.get(&format!("{url_b}/runs/{run_id}")).await;
    assert_eq!(status, reqwest::StatusCode::OK);
    assert!(page.contains(&format!("/runs/{run_id}/cancel")), "{page}");
    let token = browser.csrf_token(&url_b).await;
    let (status, location) = browser
        .post(
            &format!("{url_b}/runs/{run_id}/cancel"),
            &[("csrf_token", &token)],
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::SEE_OTHER, "{location}");
    assert_eq!(location, format!("/runs/{run_id}"));
    let requested_at = Instant::now();
    assert!(
        store
            .cancel_requested(&UserId::local(), &run_id)
            .await
            .unwrap(),
        "the request is stored"
    );
    let (status, page) = browser.get(&format!("{url_b}{location}")).await;
    assert_eq!(status, reqwest::StatusCode::OK);
    let run_now = store.run(&UserId::local(), &run_id).await.unwrap().unwrap();
    if run_now.status == store::RunStatus::Running {
        assert!(page.contains("Cancelling was requested"), "{page}");
    }

    // The first server stops the run within a renewal period (2 s lease: 0.67 s), plus the
    // model call in flight.
    let deadline = Instant::now() + Duration::from_secs(15);
    let ended = loop {
        let progress = browser.progress(&url_a, &run_id).await;
        if progress["status"] != "running" {
            break progress;
        }
        assert!(
            Instant::now() < deadline,
            "the run was not cancelled: {progress}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(ended["status"], "cancelled", "{ended}");
    assert!(
        requested_at.elapsed() < Duration::from_secs(5),
        "cancelled after {:?}",
        requested_at.elapsed()
    );
    let done = ended["done"].as_u64().unwrap();
    assert!(
        done < N_SQUAD as u64,
        "the run ended before the cancel: {ended}"
    );
    // No more model calls once it is cancelled (and the stored summary says cancelled).
    let calls = models.stats().requests;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        models.stats().requests,
        calls,
        "model calls after the cancel"
    );
    let run = store.run(&UserId::local(), &run_id).await.unwrap().unwrap();
    assert_eq!(run.status, store::RunStatus::Cancelled);
    assert_eq!(run.summary.unwrap()["status"], "cancelled");
    let rows = all_records(&store, &UserId::local(), &run_id)
        .await
        .unwrap();
    assert_eq!(rows.len() as u64, done, "finished records kept");
    // Still cancelled later: no other task adopts it.
    assert_eq!(
        browser.progress(&url_b, &run_id).await["status"],
        "cancelled"
    );
}
