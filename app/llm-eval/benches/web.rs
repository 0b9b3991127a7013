//! The web app's figures, printed (asserts nothing):
//! - idle RSS of the release `llm-eval serve` (local mode, fresh data directory), target under
//!   30 MB;
//! - render time of the results page of a 1,000-record run (sequential requests), target under
//!   100 ms;
//! - load: 50 simulated users browsing (home, history, results page, a record page, progress)
//!   for 20 s while two runs execute against a 200 ms double; p50/p95/max per page.
//!
//! Every request goes to 127.0.0.1; the loops are bounded in time and count.

use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::catalog::Catalog;
use engine::providers::{ProviderSettings, Providers};
use model_doubles::{Answer, Behavior, ModelServer};
use store::{SqliteStore, UserId};
use web::{AppState, WebConfig, registry::RunRegistry};

const N_USERS: usize = 50;
const LOAD_SECS: u64 = 20;
const N_RECORDS: usize = 1000;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench());
}

fn vm_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

async fn idle_rss() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_llm-eval"))
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("HOME", dir.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("llm-eval serve starts");
    use tokio::io::AsyncBufReadExt;
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), stderr.next_line())
        .await
        .expect("serve prints its address")
        .expect("stderr reads")
        .expect("a line");
    let url = line.trim_start_matches("listening on ").to_string();
    tokio::spawn(async move { while let Ok(Some(_)) = stderr.next_line().await {} });
    // One page view, as a user would open it, then idle.
    let _ = reqwest::get(format!("{url}/")).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pid = child.id().expect("pid");
    let rss = vm_rss_kb(pid).unwrap_or(0);
    println!(
        "idle RSS of `llm-eval serve` after one page view: {:.1} MB (target < 30 MB)",
        rss as f64 / 1024.0
    );
    let _ = child.kill().await;
}

fn big_dataset(dir: &std::path::Path) -> std::path::PathBuf {
    let text = String::from_utf8_lossy(engine::sample_data::QA_JSONL).to_string();
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    let path = dir.join("big.jsonl");
    let mut out = String::new();
    for i in 0..N_RECORDS {
        let mut record: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(lines[i % lines.len()]).expect("sample parses");
        let question = record
            .get("question")
            .and_then(|q| q.as_str())
            .unwrap_or("")
            .to_string();
        record.insert("question".into(), format!("{question} (#{i})").into());
        out.push_str(&serde_json::to_string(&record).expect("serializes"));
        out.push('\n');
    }
    std::fs::write(&path, out).expect("dataset written");
    path
}

/// A GET as a browser with the session cookie `cookie` (kept from the first answer).
async fn browse(
    client: &reqwest::Client,
    url: &str,
    cookie: &mut Option<String>,
) -> Result<bool, reqwest::Error> {
    let mut request = client.get(url);
    if let Some(cookie) = cookie.as_deref() {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await?;
    if let Some(set) = response
        .headers()
        .get("set-cookie")
        .and_then(|value| value.to_str().ok())
    {
        *cookie = set.split(';').next().map(str::to_string);
    }
    let ok = response.status().is_success();
    let _ = response.bytes().await?;
    Ok(ok)
}

fn percentile(sorted: &[Duration], pct: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((pct / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn run_plan(state: &AppState, dataset: &std::path::Path, template: &str) -> String {
    let mut request = engine::plan::EvalRequest::new(
        dataset.to_path_buf(),
        template.to_string(),
        vec!["openai:m".to_string()],
        vec![
            fmeval_scoring::metrics::MetricName::QaAccuracy,
            fmeval_scoring::metrics::MetricName::FactualKnowledge,
        ],
    );
    request.concurrency = 16;
    let plan = engine::plan::build_plan(&request, &state.catalog, &state.providers)
        .await
        .expect("plan");
    let run_id = store::new_run_id() + &store::sqlite::random_hex(2);
    state
        .runs
        .start(
            state.store.clone(),
            None,
            UserId::local(),
            run_id.clone(),
            Arc::new(plan),
            None,
        )
        .await
        .expect("run starts");
    run_id
}

async fn bench() {
    idle_rss().await;

    let fast = ModelServer::start(Behavior {
        answer: Answer::Fixed("France".into()),
        ..Behavior::default()
    })
    .await
    .expect("double");
    let slow = ModelServer::start(Behavior {
        latency: Duration::from_millis(200),
        answer: Answer::Fixed("France".into()),
        ..Behavior::default()
    })
    .await
    .expect("double");
    let dir = tempfile::tempdir().expect("temp dir");
    let dataset = big_dataset(dir.path());
    let state_for = |server: &ModelServer, store: store::SharedStore| {
        let url = format!("{}/v1", server.url());
        let store = store.clone();
        async move {
            AppState {
                store,
                cache: None,
                catalog: Arc::new(Catalog::embedded()),
                providers: Arc::new(
                    Providers::from_env(ProviderSettings {
                        openai_base_url: Some(url),
                        openai_api_key: Some(secrecy::SecretString::from("k".to_string())),
                        ..ProviderSettings::default()
                    })
                    .await
                    .expect("providers"),
                ),
                runs: RunRegistry::default(),
                config: Arc::new(WebConfig::local(std::path::PathBuf::from("."))),
                authenticator: None,
            }
        }
    };
    let store = SqliteStore::open_shared(&dir.path().join("store.sqlite")).expect("store");
    // A finished 1,000-record run to look at (against the fast double).
    let fast_state = state_for(&fast, store.clone()).await;
    let finished = run_plan(
        &fast_state,
        &dataset,
        "Human: {doc}\n\n{question}\n\nAssistant:",
    )
    .await;
    loop {
        let run = store
            .run(&UserId::local(), &finished)
            .await
            .expect("run")
            .expect("exists");
        if run.status != store::RunStatus::Running {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let state = state_for(&slow, store.clone()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let router = web::router(state.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(N_USERS)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");

    // The results page of the finished run, alone.
    let results = format!("{base}/runs/{finished}");
    let mut cookie = None;
    let _ = browse(&client, &results, &mut cookie).await; // the session, warm caches
    let mut times = Vec::new();
    for _ in 0..30 {
        let started = Instant::now();
        let ok = browse(&client, &results, &mut cookie)
            .await
            .expect("results page");
        assert!(ok, "the results page answers");
        times.push(started.elapsed());
    }
    times.sort();
    println!(
        "results page of a {N_RECORDS}-record run (summary, charts, first 50 rows): p50 {:.1} ms, p95 {:.1} ms (target < 100 ms)",
        percentile(&times, 50.0).as_secs_f64() * 1000.0,
        percentile(&times, 95.0).as_secs_f64() * 1000.0
    );

    // Two runs executing while 50 users browse.
    let running_a = run_plan(&state, &dataset, "Q: {question}").await;
    let running_b = run_plan(&state, &dataset, "Question: {question}\nAnswer:").await;
    let pages: Vec<(&'static str, String)> = vec![
        ("home", format!("{base}/")),
        ("history", format!("{base}/runs")),
        ("results (1,000 records)", results.clone()),
        (
            // Pages after the first follow a key (the "Next page" link); `cargo bench -p web
            // --bench pages` walks them.
            "records sorted by f1",
            format!("{base}/runs/{finished}?sort=f1_score&dir=desc"),
        ),
        ("running run page", format!("{base}/runs/{running_a}")),
        (
            "progress (poll)",
            format!("{base}/runs/{running_b}/progress"),
        ),
    ];
    let pages = Arc::new(pages);
    let deadline = Instant::now() + Duration::from_secs(LOAD_SECS);
    let mut users = Vec::new();
    for user_idx in 0..N_USERS {
        let (client, pages) = (reqwest::Client::new(), pages.clone());
        users.push(tokio::spawn(async move {
            let mut timings: Vec<(usize, Duration, bool)> = Vec::new();
            let mut page_idx = user_idx % pages.len();
            let mut cookie = None;
            // Bounded in time and in count.
            while Instant::now() < deadline && timings.len() < 10_000 {
                let started = Instant::now();
                let ok = browse(&client, &pages[page_idx].1, &mut cookie)
                    .await
                    .unwrap_or(false);
                timings.push((page_idx, started.elapsed(), ok));
                page_idx = (page_idx + 1) % pages.len();
                // Think time of a person clicking through pages.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            timings
        }));
    }
    let mut per_page: Vec<Vec<Duration>> = vec![Vec::new(); pages.len()];
    let mut n_errors = 0;
    for user in users {
        for (page_idx, elapsed, ok) in user.await.expect("user task") {
            per_page[page_idx].push(elapsed);
            n_errors += usize::from(!ok);
        }
    }
    let counts = |run_id: &String| {
        let store = store.clone();
        let run_id = run_id.clone();
        async move {
            store
                .record_counts(&UserId::local(), &run_id)
                .await
                .expect("counts")
        }
    };
    let (a, b) = (counts(&running_a).await, counts(&running_b).await);
    println!(
        "load: {N_USERS} users for {LOAD_SECS} s while two {N_RECORDS}-record runs execute (200 ms double, concurrency 16): {} requests, {n_errors} errors; the runs stored {} and {} rows meanwhile",
        per_page.iter().map(Vec::len).sum::<usize>(),
        a.ok + a.failed,
        b.ok + b.failed
    );
    println!(
        "{:<32} {:>8} {:>9} {:>9} {:>9}",
        "page", "requests", "p50 ms", "p95 ms", "max ms"
    );
    for ((name, _), times) in pages.iter().zip(per_page.iter_mut()) {
        times.sort();
        println!(
            "{name:<32} {:>8} {:>9.1} {:>9.1} {:>9.1}",
            times.len(),
            percentile(times, 50.0).as_secs_f64() * 1000.0,
            percentile(times, 95.0).as_secs_f64() * 1000.0,
            times.last().copied().unwrap_or_default().as_secs_f64() * 1000.0
        );
    }
    state.runs.shutdown(Duration::from_secs(10)).await;
}
