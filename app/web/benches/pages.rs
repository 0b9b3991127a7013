//! The records pages of a large run, printed (asserts only that every page answers 200): a
//! finished run of 10,000 records × 3 prompt variants × 2 models (60,000 rows), stored in the
//! SQLite store and in the DynamoDB store (on a moto server), served by the real router over
//! HTTP on 127.0.0.1:
//! - one user: the side-by-side view sorted by the difference of two columns' scores, page
//!   after page (following its "Next page" links, which carry the last record's key), and the
//!   records page sorted by a score; p50/p95, and the first (cold) view apart;
//! - one user alone going round every page of the next item 20 times: what each page costs
//!   without a queue;
//! - 50 users at once for 20 s, each going round every page (home, history, the run page, the
//!   records page sorted by a score and its next pages, the side-by-side view sorted by a
//!   difference and its next pages, "where the second column is worse", the comparison of two
//!   runs); p50/p95/max per page.
//!
//! The rows are written through the store's own `insert_records` (no model is called), the
//! summary with the engine's `SummaryBuilder`, so the pages read what a real run leaves.
//! Every loop is bounded in time and count. Run with `cargo bench -p web --bench pages`
//! (`PAGES_BENCH_STORES=sqlite` or `=dynamodb` measures one store only; `PAGES_BENCH_RECORDS`
//! sets the records per run, 10,000 by default). On DynamoDB the one user's round also prints
//! each page's DynamoDB requests, items, bytes and read units (the store's own counters), and
//! the runs' score indexes are read once by the store before the pages, counted and timed.
//! `PAGES_BENCH_DYNAMODB_URL=http://127.0.0.1:PORT` puts the DynamoDB store's table on that
//! server instead of moto (e.g. dynalite, which keeps items sorted by key as DynamoDB does).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::catalog::Catalog;
use engine::output::{Column, Summary, SummaryBuilder};
use engine::plan::{EvalRequest, TemplateRequest, build_plan};
use engine::providers::{ProviderSettings, Providers};
use fmeval_scoring::metrics::{MetricName, Score, ScoreValue};
use store::{RecordRow, RunStatus, SharedStore, UserId};
use web::{AppState, WebConfig, registry::RunRegistry};

/// Records per run unless `PAGES_BENCH_RECORDS` says otherwise (at most [`MAX_RECORDS`]).
const N_RECORDS: usize = 10_000;
const MAX_RECORDS: usize = 100_000;
const RECORDS_VARIABLE: &str = "PAGES_BENCH_RECORDS";
const VARIANTS: [&str; 3] = ["A", "B", "C"];
const MODELS: [&str; 2] = ["openai:m1", "openai:m2"];
const N_USERS: usize = 50;
const LOAD_SECS: u64 = 20;
const SINGLE_REQUESTS: usize = 60;
const BATCH: usize = 500;
const BATCHES_AT_ONCE: usize = 4;
/// Rounds of every page by one user alone.
const ROUND_REPEATS: usize = 20;
/// `PAGES_BENCH_STORES`: which stores to measure, `sqlite`, `dynamodb` or both (the default).
const STORES_VARIABLE: &str = "PAGES_BENCH_STORES";
/// `PAGES_BENCH_DYNAMODB_URL`: a DynamoDB-compatible server (dynalite) to measure the DynamoDB
/// store on instead of moto, whose `Query` walks every item of the table.
const DYNAMODB_URL_VARIABLE: &str = "PAGES_BENCH_DYNAMODB_URL";

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench());
}

/// A small deterministic generator (the same rows on every run of the benchmark).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

/// Records per run: [`N_RECORDS`], or `PAGES_BENCH_RECORDS`.
fn n_records() -> usize {
    match std::env::var(RECORDS_VARIABLE) {
        Ok(text) => text
            .trim()
            .parse()
            .ok()
            .filter(|n| (1..=MAX_RECORDS).contains(n))
            .unwrap_or_else(|| panic!("{RECORDS_VARIABLE}={text}: expected 1 to {MAX_RECORDS}")),
        Err(_) => N_RECORDS,
    }
}

fn write_dataset(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("big.jsonl");
    let mut out = String::new();
    for i in 0..n_records() {
        out.push_str(
            &serde_json::json!({
                "question": format!("What is the capital of country number {i}?"),
                "answers": format!("City {i}"),
            })
            .to_string(),
        );
        out.push('\n');
    }
    std::fs::write(&path, out).expect("dataset written");
    path
}

/// The rows of a run of `columns` over the dataset, as the runner would store them: about 2 %
/// failed, scores on a few levels (many ties, as real scores have).
fn rows(columns: &[Column], score_names: &[&str], seed: u64) -> Vec<RecordRow> {
    let mut random = Lcg(seed);
    let mut rows = Vec::with_capacity(n_records() * columns.len());
    for position in 0..n_records() {
        for (model_order, column) in columns.iter().enumerate() {
            let failed = random.next().is_multiple_of(50);
            let prompt = format!(
                "Variant {}: answer briefly. What is the capital of country number {position}?",
                column.variant
            );
            rows.push(RecordRow {
                model: column.model.clone(),
                variant: column.variant.clone(),
                model_order,
                position,
                index: position,
                model_input: prompt.clone(),
                prompt,
                model_output: (!failed).then(|| {
                    format!(
                        "The capital is city {}.",
                        random.next() as usize % 3 + position
                    )
                }),
                target_output: Some(format!("City {position}")),
                category: None,
                scores: if failed {
                    Vec::new()
                } else {
                    score_names
                        .iter()
                        .map(|name| Score {
                            name: name.to_string(),
                            value: ScoreValue::Float((random.next() % 5) as f64 / 4.0),
                        })
                        .collect()
                },
                latency_ms: (!failed).then(|| 100.0 + (random.next() % 900) as f64),
                input_tokens: Some(20),
                output_tokens: (!failed).then_some(6),
                cost_usd: Some(0.00001),
                error: failed.then(|| "the model returned HTTP 500".to_string()),
                judge_replies: Vec::new(),
                perturbations: Vec::new(),
                cached: false,
            });
        }
    }
    rows
}

/// Stores a finished run of `rows` with its summary; returns the seconds it took.
async fn store_run(
    store: &SharedStore,
    run_id: &str,
    config: &serde_json::Value,
    columns: &[Column],
    rows: Vec<RecordRow>,
) -> f64 {
    let owner = UserId::local();
    let started = Instant::now();
    store
        .create_run(&owner, run_id, config, rows.len())
        .await
        .expect("run created");
    let mut summary = SummaryBuilder::new(columns).with_config(config);
    let (mut done, mut failed) = (0, 0);
    for row in &rows {
        summary.add(row);
        if row.is_ok() {
            done += 1;
        } else {
            failed += 1;
        }
    }
    let total = rows.len();
    // A few batches at once, as several writer tasks would (each row is still one
    // conditional put, each batch one index write).
    let mut batches: Vec<Vec<RecordRow>> = Vec::new();
    let mut rows = rows.into_iter();
    loop {
        let batch: Vec<RecordRow> = rows.by_ref().take(BATCH).collect();
        if batch.is_empty() {
            break;
        }
        batches.push(batch);
    }
    {
        use futures::StreamExt;
        let owner = &owner;
        futures::stream::iter(batches)
            .map(|batch| async move {
                store
                    .insert_records(owner, run_id, batch)
                    .await
                    .expect("rows stored");
            })
            .buffer_unordered(BATCHES_AT_ONCE)
            .collect::<Vec<()>>()
            .await;
    }
    let summary = Summary {
        run_id: run_id.to_string(),
        status: RunStatus::Finished,
        total,
        done,
        failed,
        elapsed_secs: 0.0,
        config: config.clone(),
        models: summary.finish(),
    };
    store
        .finish_run(
            &owner,
            run_id,
            RunStatus::Finished,
            &serde_json::to_value(&summary).expect("summary serializes"),
        )
        .await
        .expect("run finished");
    started.elapsed().as_secs_f64()
}

/// A GET as a browser with the session cookie `cookie` (kept from the first answer); the
/// status and the body.
async fn browse(
    client: &reqwest::Client,
    url: &str,
    cookie: &mut Option<String>,
) -> Result<(bool, String), reqwest::Error> {
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
    Ok((ok, response.text().await?))
}

/// The "Next page" link of a page, if it has one.
fn next_link(body: &str) -> Option<String> {
    let end = body.find("\">Next page</a>")?;
    let start = body[..end].rfind("href=\"")? + "href=\"".len();
    Some(
        body[start..end]
            .replace("&#38;", "&")
            .replace("&amp;", "&")
            .replace("&#x2F;", "/"),
    )
}

fn percentile(sorted: &[Duration], pct: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((pct / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// One user following a paged view: the first page, then its next pages, back to the first
/// after the last.
struct Pager {
    first: String,
    next: Option<String>,
}

impl Pager {
    fn new(first: String) -> Pager {
        Pager { first, next: None }
    }

    fn url(&self) -> String {
        self.next.clone().unwrap_or_else(|| self.first.clone())
    }

    /// Keeps the page's "Next page" link: a path on the site, or a query string (the records
    /// table's `?page=2&after=...`), which is relative to the page itself, not to the site.
    fn saw(&mut self, base: &str, body: &str) {
        let current = self.url();
        let page = current.split(['?', '#']).next().unwrap_or(&current);
        self.next = next_link(body).map(|link| {
            if link.starts_with('?') {
                format!("{page}{link}")
            } else {
                format!("{base}{link}")
            }
        });
    }
}

/// Times `n` views of a paged view by one user, following its next links; the cold first view
/// apart.
async fn one_user(
    client: &reqwest::Client,
    base: &str,
    first: &str,
    n: usize,
) -> (Duration, Vec<Duration>) {
    let mut cookie = None;
    let mut pager = Pager::new(format!("{base}{first}"));
    let started = Instant::now();
    let (ok, body) = browse(client, &pager.url(), &mut cookie)
        .await
        .expect("page");
    assert!(ok, "{first} answers: {body}");
    let cold = started.elapsed();
    pager.saw(base, &body);
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let url = pager.url();
        let started = Instant::now();
        let (ok, body) = browse(client, &url, &mut cookie).await.expect("page");
        times.push(started.elapsed());
        assert!(ok, "{url} answers");
        pager.saw(base, &body);
    }
    times.sort();
    (cold, times)
}

/// Serves the pages over `store` and times them; with `probe` (the DynamoDB store), the one
/// user's round also prints the DynamoDB requests and reads of each page.
async fn measure(
    label: &str,
    store: SharedStore,
    state_of: impl Fn(SharedStore) -> AppState,
    probe: Option<&store::DynamoStore>,
) {
    let state = state_of(store.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let router = web::router(state);
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(N_USERS)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let runs = store.runs(&UserId::local(), 2).await.expect("runs");
    let (run, other) = (runs[0].id.clone(), runs[1].id.clone());

    let side = format!("/runs/{run}/side?score=f1_score&a=0&b=2&sort=difference");
    let sorted = format!("/runs/{run}?sort=f1_score&dir=desc");
    for (name, first) in [
        ("side by side, sorted by a score difference", &side),
        ("records page sorted by a score", &sorted),
    ] {
        let (cold, times) = one_user(&client, &base, first, SINGLE_REQUESTS).await;
        println!(
            "{label}: one user, {name}, {SINGLE_REQUESTS} pages: p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms (first, cold view {:.1} ms; target p95 < 150 ms)",
            ms(percentile(&times, 50.0)),
            ms(percentile(&times, 95.0)),
            ms(percentile(&times, 100.0)),
            ms(cold),
        );
    }

    // Every page of the round.
    let pages: Vec<(&'static str, String)> = vec![
        ("home", "/".to_string()),
        ("history", "/runs".to_string()),
        (
            "run page (summary, matrix, first 50 rows)",
            format!("/runs/{run}"),
        ),
        ("records sorted by f1, next pages", sorted.clone()),
        ("side by side by difference, next pages", side.clone()),
        (
            "side by side, where B is worse",
            format!("/runs/{run}/side?score=f1_score&show=worse&a=0&b=2"),
        ),
        (
            "compare two runs against a baseline",
            format!("/compare?run={run}&run={other}&metric=f1_score&show=regressed"),
        ),
    ];
    // One user alone, each page of the round in turn: what a page costs without a queue (the
    // cold first views are behind us).
    {
        let mut cookie = None;
        let mut pagers: Vec<Pager> = pages
            .iter()
            .map(|(_, path)| Pager::new(format!("{base}{path}")))
            .collect();
        let mut times: Vec<Vec<Duration>> = vec![Vec::new(); pages.len()];
        // Per page: DynamoDB requests, items, bytes and read units, summed over the views.
        let mut reads = vec![[0u64; 4]; pages.len()];
        let counts = || {
            probe.map(|probe| {
                let read = probe.dynamo_reads();
                [probe.dynamo_requests(), read.items, read.bytes, read.units]
            })
        };
        for _ in 0..ROUND_REPEATS {
            for (page, pager) in pagers.iter_mut().enumerate() {
                let url = pager.url();
                let before = counts();
                let started = Instant::now();
                let (ok, body) = browse(&client, &url, &mut cookie).await.expect("page");
                times[page].push(started.elapsed());
                if let (Some(before), Some(after)) = (before, counts()) {
                    for (sum, (after, before)) in
                        reads[page].iter_mut().zip(after.iter().zip(before))
                    {
                        *sum += after - before;
                    }
                }
                assert!(ok, "{url} answers");
                pager.saw(&base, &body);
            }
        }
        println!("{label}: one user, every page of the round {ROUND_REPEATS} times:");
        for (page, mut times) in times.into_iter().enumerate() {
            times.sort();
            let per_view = |sum: u64| sum as f64 / ROUND_REPEATS as f64;
            let [requests, items, bytes, units] = reads[page];
            let dynamo = if probe.is_some() {
                format!(
                    "  per view: {:.1} DynamoDB requests, {:.1} items, {:.1} KB, {:.1} read units",
                    per_view(requests),
                    per_view(items),
                    per_view(bytes) / 1024.0,
                    per_view(units),
                )
            } else {
                String::new()
            };
            println!(
                "  {:<45} p50 {:>7.1} ms  p95 {:>7.1} ms{dynamo}",
                pages[page].0,
                ms(percentile(&times, 50.0)),
                ms(percentile(&times, 95.0)),
            );
        }
    }

    // 50 users, each going round every page.
    let deadline = Instant::now() + Duration::from_secs(LOAD_SECS);
    let mut users = tokio::task::JoinSet::new();
    for user in 0..N_USERS {
        let client = client.clone();
        let base = base.clone();
        let pages = pages.clone();
        users.spawn(async move {
            let mut cookie = None;
            let mut pagers: Vec<Pager> = pages
                .iter()
                .map(|(_, path)| Pager::new(format!("{base}{path}")))
                .collect();
            let mut times: Vec<(usize, Duration, bool)> = Vec::new();
            let mut turn = user;
            while Instant::now() < deadline {
                let page = turn % pages.len();
                turn += 1;
                let url = pagers[page].url();
                let started = Instant::now();
                let result = browse(&client, &url, &mut cookie).await;
                let elapsed = started.elapsed();
                match result {
                    Ok((ok, body)) => {
                        pagers[page].saw(&base, &body);
                        times.push((page, elapsed, ok));
                    }
                    Err(_) => times.push((page, elapsed, false)),
                }
            }
            times
        });
    }
    let mut per_page: BTreeMap<usize, Vec<Duration>> = BTreeMap::new();
    let (mut n_requests, mut n_errors) = (0, 0);
    while let Some(times) = users.join_next().await {
        for (page, elapsed, ok) in times.expect("user task") {
            n_requests += 1;
            if !ok {
                n_errors += 1;
            }
            per_page.entry(page).or_default().push(elapsed);
        }
    }
    println!(
        "{label}: {N_USERS} users for {LOAD_SECS} s: {n_requests} requests, {n_errors} errors (target: every page p95 < 1 s)"
    );
    for (page, mut times) in per_page {
        times.sort();
        println!(
            "  {:<45} n {:>5}  p50 {:>7.1} ms  p95 {:>7.1} ms  max {:>7.1} ms",
            pages[page].0,
            times.len(),
            ms(percentile(&times, 50.0)),
            ms(percentile(&times, 95.0)),
            ms(percentile(&times, 100.0)),
        );
    }
    server.abort();
}

async fn bench() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dataset = write_dataset(dir.path());
    let catalog = Arc::new(Catalog::embedded());
    // No model is called: the providers only let the plan be built.
    let providers = Arc::new(
        Providers::from_env(ProviderSettings {
            openai_base_url: Some("http://127.0.0.1:9/v1".to_string()),
            openai_api_key: Some(secrecy::SecretString::from("k".to_string())),
            ..ProviderSettings::default()
        })
        .await
        .expect("providers"),
    );
    let mut request = EvalRequest::new(
        dataset,
        "Q: {question}".to_string(),
        MODELS.iter().map(|model| model.to_string()).collect(),
        vec![MetricName::QaAccuracy],
    );
    request.templates = VARIANTS
        .iter()
        .map(|label| TemplateRequest {
            label: label.to_string(),
            text: format!("Variant {label}: answer briefly. {{question}}"),
        })
        .collect();
    let plan = build_plan(&request, &catalog, &providers)
        .await
        .expect("plan");
    let config = plan.config_json();
    let columns = plan.columns();
    let score_names = engine::output::score_names_of_config(&config);
    let state_of = |store: SharedStore| AppState {
        store,
        cache: None,
        catalog: catalog.clone(),
        providers: providers.clone(),
        runs: RunRegistry::default(),
        config: Arc::new(WebConfig::local(dir.path().to_path_buf())),
        authenticator: None,
    };

    let stores = std::env::var(STORES_VARIABLE).unwrap_or_default();
    let (with_sqlite, with_dynamo) = match stores.trim() {
        "" | "both" => (true, true),
        "sqlite" => (true, false),
        "dynamodb" => (false, true),
        other => panic!("{STORES_VARIABLE}={other}: expected sqlite, dynamodb or both"),
    };

    // SQLite.
    if with_sqlite {
        let sqlite =
            store::SqliteStore::open_shared(&dir.path().join("store.sqlite")).expect("store");
        for (run, seed) in [
            ("20260101T000000Z-baseline", 1),
            ("20260101T000001Z-candidate", 2),
        ] {
            let secs = store_run(
                &sqlite,
                run,
                &config,
                &columns,
                rows(&columns, &score_names, seed),
            )
            .await;
            println!(
                "SQLite: stored {} rows in {secs:.1} s",
                n_records() * columns.len()
            );
        }
        measure("SQLite", sqlite, &state_of, None).await;
    }
    if !with_dynamo {
        return;
    }

    // DynamoDB on a moto server, or on the DynamoDB-compatible server `PAGES_BENCH_DYNAMODB_URL`
    // names (the pages only read and write the table).
    let (endpoint, server, _moto) = match std::env::var(DYNAMODB_URL_VARIABLE) {
        Ok(url) if !url.is_empty() => (url, "DynamoDB (dynalite)", None),
        _ => {
            let moto = model_doubles::Moto::start().await;
            (moto.url().to_owned(), "DynamoDB (moto)", Some(moto))
        }
    };
    let sdk = store::dynamo::sdk_loader()
        .endpoint_url(&endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "testing", "testing", None, None, "bench",
        ))
        .load()
        .await;
    let dynamo = store::DynamoStore::new(
        &sdk,
        store::dynamo::DynamoConfig {
            table: "bench".into(),
            bucket: "bench".into(),
            local_dir: dir.path().join("dynamo"),
        },
    )
    .expect("store");
    dynamo.create_table().await.expect("table");
    // A clone sharing the store's counters of requests and reads.
    let probe = dynamo.clone();
    let dynamo: SharedStore = Arc::new(dynamo);
    for (run, seed) in [
        ("20260101T000000Z-baseline", 1),
        ("20260101T000001Z-candidate", 2),
    ] {
        let secs = store_run(
            &dynamo,
            run,
            &config,
            &columns,
            rows(&columns, &score_names, seed),
        )
        .await;
        println!(
            "{server}: stored {} rows in {secs:.1} s",
            n_records() * columns.len()
        );
    }
    // The runs' score indexes read once, before the pages, by the store itself (on moto the
    // first view would pass the server's 30 s request limit: moto's `Query` walks every item
    // of the table for each page it returns): what it costs on DynamoDB, counted.
    for run in ["20260101T000000Z-baseline", "20260101T000001Z-candidate"] {
        let (requests, reads) = (probe.dynamo_requests(), probe.dynamo_reads());
        let started = Instant::now();
        let matrix = dynamo
            .score_matrix(&UserId::local(), run, "f1_score")
            .await
            .expect("score matrix");
        let reads_now = probe.dynamo_reads();
        println!(
            "{server}: the score index of {run} ({} records) read in {:.1} s: {} requests, {} items, {:.0} KB, {} read units",
            matrix.positions.len(),
            started.elapsed().as_secs_f64(),
            probe.dynamo_requests() - requests,
            reads_now.items - reads.items,
            (reads_now.bytes - reads.bytes) as f64 / 1024.0,
            reads_now.units - reads.units,
        );
    }
    measure(server, dynamo, &state_of, Some(&probe)).await;
}
