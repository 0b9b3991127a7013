//! A shared deployment survives its users (issue 19), over HTTP against the real router: each
//! attack of the issue as a test. Template amplification through the preview, sessions stored
//! by cookieless requests, another site driving local mode through a rebound host name, and
//! one user's cached answers reaching another.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use engine::cache::ResponseCache;
use model_doubles::ModelServer;
use reqwest::StatusCode;
use web::WebConfig;

use crate::pages::{
    TestApp, TestLogin, add_sample, spawn_app, spawn_app_with, start_eval, test_state, wait_for_run,
};

async fn model_server() -> ModelServer {
    crate::helpers::start(
        model_doubles::Answer::Fixed("France".into()),
        model_doubles::FaultPlan::none(),
    )
    .await
}

/// Rows in the app's `sessions` table.
fn stored_sessions(app: &TestApp) -> i64 {
    let conn = rusqlite::Connection::open(app.dir.path().join("store.sqlite")).unwrap();
    conn.query_row("SELECT COUNT(*) FROM sessions", [], |row| row.get(0))
        .unwrap()
}

#[tokio::test]
async fn the_preview_of_an_amplifying_template_stops_at_the_prompt_limit() {
    let server = model_server().await;
    let app = spawn_app(&server).await;
    let dataset = add_sample(&app).await;
    let token = app.csrf_token().await;
    // 20 KB of template, 80 MB of prompt per sample record before the limit.
    let template = "{doc}".repeat(4_000);
    let url = format!("{}/evals/preview", app.base_url);
    let reply = app
        .send(
            reqwest::Client::new()
                .post(url)
                .header("x-csrf-token", &token)
                .json(&serde_json::json!({"dataset": dataset, "template": template})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(
        reply.body.len() < 4096,
        "the reply holds {} bytes",
        reply.body.len()
    );
    let json: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    let error = json["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("the prompt template renders to more than 1 MiB")
            && error.contains("LLM_EVAL_MAX_PROMPT_SIZE"),
        "{json}"
    );

    // Saved as a run, every record fails with the same error and nothing reaches the model.
    let started = start_eval(&app, &dataset, &template, &[]).await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    let run_id = started.location().trim_start_matches("/runs/").to_string();
    wait_for_run(&app, &run_id).await;
    let records = app.get(&format!("/runs/{run_id}/records.jsonl")).await;
    assert!(records.body.len() < 200_000, "{} bytes", records.body.len());
    for line in records.body.lines() {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(
            row["error"]
                .as_str()
                .is_some_and(|error| error.contains("renders to more than 1 MiB")),
            "{row}"
        );
    }
    assert!(server.received().is_empty(), "a model was called");
}

#[tokio::test]
async fn the_server_limit_is_a_ceiling_a_form_cannot_raise() {
    let server = model_server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut state = test_state(&server, dir.path()).await;
    let mut config = (*state.config).clone();
    web::serve::shared_settings_from_env(&mut config, |name| {
        (name == "LLM_EVAL_MAX_PROMPT_SIZE").then(|| "2KiB".to_string())
    })
    .unwrap();
    assert_eq!(config.max_prompt_size, engine::limits::ByteSize(2048));
    state.config = Arc::new(config);
    let app = spawn_app_with(state, dir).await;
    let dataset = add_sample(&app).await;
    let token = app.csrf_token().await;
    let reply = app
        .send(
            reqwest::Client::new()
                .post(format!("{}/evals/preview", app.base_url))
                .header("x-csrf-token", &token)
                .json(&serde_json::json!({"dataset": dataset, "template": "{doc}"})),
        )
        .await;
    assert!(
        reply.body.contains("renders to more than 2 KiB"),
        "{}",
        reply.body
    );
    let mut bad = WebConfig::local(std::path::PathBuf::new());
    let error = web::serve::shared_settings_from_env(&mut bad, |name| {
        (name == "LLM_EVAL_MAX_PROMPT_SIZE").then(|| "lots".to_string())
    })
    .unwrap_err();
    assert!(
        error.to_string().starts_with("LLM_EVAL_MAX_PROMPT_SIZE: "),
        "{error}"
    );
}

#[tokio::test]
async fn a_server_error_shows_its_category_and_request_id_never_its_cause() {
    let server = model_server().await;
    let app = spawn_app(&server).await;
    let dataset = add_sample(&app).await;
    let token = app.csrf_token().await;
    // The store breaks under the running server (as a full disk or a lost table would).
    let conn = rusqlite::Connection::open(app.dir.path().join("store.sqlite")).unwrap();
    conn.execute_batch("ALTER TABLE datasets RENAME TO datasets_gone")
        .unwrap();

    let page = app.get("/datasets").await;
    assert_eq!(
        page.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        page.body
    );
    let request_id = page.headers["x-request-id"].to_str().unwrap().to_string();
    assert!(
        page.body.contains("could not read or write its data store")
            && page.body.contains(&format!("Request id: {request_id}")),
        "{}",
        page.body
    );
    for cause in ["no such table", "datasets", "sqlite", "store.sqlite"] {
        assert!(
            !page.body.to_lowercase().contains(cause),
            "the page shows {cause:?}: {}",
            page.body
        );
    }

    // A script's JSON endpoint: the same category and the id as fields.
    let reply = app
        .send(
            reqwest::Client::new()
                .post(format!("{}/evals/preview", app.base_url))
                .header("x-csrf-token", &token)
                .json(&serde_json::json!({"dataset": dataset, "template": "{question}"})),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        reply.body
    );
    let json: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(
        json["request_id"].as_str(),
        reply.headers["x-request-id"].to_str().ok()
    );
    assert!(
        json["error"]
            .as_str()
            .is_some_and(|error| error.contains("data store") && !error.contains("table")),
        "{json}"
    );
}

#[tokio::test]
async fn cookieless_requests_store_no_session() {
    let server = model_server().await;
    let app = spawn_app(&server).await;
    for _ in 0..1_000 {
        app.new_browser();
        let page = app.get("/").await;
        assert_eq!(page.status, StatusCode::OK);
    }
    assert_eq!(
        stored_sessions(&app),
        0,
        "sessions stored by anonymous GETs"
    );
    // The anonymous session still carries a working CSRF token, and its forms work.
    let dataset = add_sample(&app).await;
    assert!(!dataset.is_empty());
    assert_eq!(stored_sessions(&app), 0);
    // Another browser's token is not this one's.
    let token = app.csrf_token().await;
    app.new_browser();
    app.get("/").await;
    let refused = app
        .post_form("/datasets/sample", &[("csrf_token", &token)])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn with_a_login_only_signed_in_sessions_are_stored_and_the_cookie_is_host_prefixed() {
    let server = model_server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut state = test_state(&server, dir.path()).await;
    state.authenticator = Some(Arc::new(TestLogin));
    state.config = Arc::new(WebConfig {
        secure_cookies: true,
        ..(*state.config).clone()
    });
    let app = spawn_app_with(state, dir).await;
    for _ in 0..200 {
        app.new_browser();
        let page = app.get("/login").await;
        assert_eq!(page.status, StatusCode::OK);
        let cookie = page.headers.get("set-cookie").unwrap().to_str().unwrap();
        assert!(
            cookie.starts_with("__Host-llm_eval_session=")
                && cookie.contains("; Secure")
                && cookie.contains("Path=/")
                && !cookie.contains("Domain"),
            "{cookie}"
        );
    }
    assert_eq!(stored_sessions(&app), 0);
    let token = app.get("/login").await.csrf_token();
    let before = app.session_id();
    let signed_in = app
        .post_form("/login", &[("csrf_token", &token), ("user", "alice")])
        .await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.body
    );
    assert_ne!(app.session_id(), before);
    assert_eq!(stored_sessions(&app), 1);
    assert!(app.get("/").await.body.contains("alice"));
}

/// A GET of `path` with the `Host` header `host`.
async fn get_with_host(app: &TestApp, path: &str, host: &str) -> StatusCode {
    app.send(app.get_request(path).header("host", host))
        .await
        .status
}

#[tokio::test]
async fn local_mode_answers_only_loopback_host_names_and_its_own_origin() {
    let server = model_server().await;
    let app = spawn_app(&server).await;
    let port = app.base_url.rsplit(':').next().unwrap().to_string();
    // DNS rebinding: a page of evil.example whose name now points at 127.0.0.1.
    for host in [
        format!("evil.example:{port}"),
        format!("localhost.evil.example:{port}"),
        "10.0.0.7".to_string(),
    ] {
        assert_eq!(
            get_with_host(&app, "/", &host).await,
            StatusCode::FORBIDDEN,
            "{host}"
        );
        assert_eq!(
            get_with_host(&app, "/datasets", &host).await,
            StatusCode::FORBIDDEN,
            "{host}"
        );
    }
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
    ] {
        assert_eq!(
            get_with_host(&app, "/", &host).await,
            StatusCode::OK,
            "{host}"
        );
    }
    // A form posted from another origin is refused even with the right token.
    let token = app.csrf_token().await;
    let cross = app
        .send(
            app.form_request("/datasets/sample", &[("csrf_token", &token)])
                .header("origin", "http://evil.example"),
        )
        .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    let same = app
        .send(
            app.form_request("/datasets/sample", &[("csrf_token", &token)])
                .header("origin", app.base_url.clone()),
        )
        .await;
    assert_eq!(same.status, StatusCode::SEE_OTHER, "{}", same.body);

    // Names the user configures are answered too.
    let dir = tempfile::tempdir().unwrap();
    let mut state = test_state(&server, dir.path()).await;
    let mut config = (*state.config).clone();
    web::serve::shared_settings_from_env(&mut config, |name| {
        (name == "LLM_EVAL_ALLOWED_HOSTS").then(|| " my-laptop.lan , other.lan".to_string())
    })
    .unwrap();
    state.config = Arc::new(config);
    let configured = spawn_app_with(state, dir).await;
    assert_eq!(
        get_with_host(&configured, "/", "My-Laptop.lan:8080").await,
        StatusCode::OK
    );
    assert_eq!(
        get_with_host(&configured, "/", "evil.example").await,
        StatusCode::FORBIDDEN
    );
}

/// The `n_cached` figures of a run's summary, summed.
async fn reused_answers(app: &TestApp, run_id: &str) -> u64 {
    let summary = app.get(&format!("/runs/{run_id}/summary.json")).await;
    assert_eq!(summary.status, StatusCode::OK, "{}", summary.body);
    fn sum(value: &serde_json::Value) -> u64 {
        match value {
            serde_json::Value::Object(map) => map
                .iter()
                .map(|(key, value)| {
                    if key == "n_cached" {
                        value.as_u64().unwrap_or(0)
                    } else {
                        sum(value)
                    }
                })
                .sum(),
            serde_json::Value::Array(values) => values.iter().map(sum).sum(),
            _ => 0,
        }
    }
    sum(&serde_json::from_str(&summary.body).unwrap())
}

/// Runs `{question}` over the first two records of `dataset`; returns the run id.
async fn two_record_run(app: &TestApp, dataset: &str) -> String {
    let started = start_eval(
        app,
        dataset,
        "{question}",
        &[("selection", "first"), ("count", "2")],
    )
    .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    let run_id = started.location().trim_start_matches("/runs/").to_string();
    let progress = wait_for_run(app, &run_id).await;
    assert_eq!(progress["status"], "finished", "{progress}");
    run_id
}

#[tokio::test]
async fn clearing_the_history_purges_the_users_cached_answers_too() {
    let server = model_server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut state = test_state(&server, dir.path()).await;
    state.cache = Some(ResponseCache::open_dir(&dir.path().join("cache")).unwrap());
    let app = spawn_app_with(state, dir).await;
    let dataset = add_sample(&app).await;
    let first = two_record_run(&app, &dataset).await;
    assert_eq!(reused_answers(&app, &first).await, 0);
    let again = two_record_run(&app, &dataset).await;
    assert_eq!(reused_answers(&app, &again).await, 2, "the cache answers");
    let token = app.csrf_token().await;
    let cleared = app
        .post_form("/runs/clear", &[("csrf_token", &token), ("confirm", "yes")])
        .await;
    assert_eq!(cleared.status, StatusCode::SEE_OTHER, "{}", cleared.body);
    let calls = server.received().len();
    let after = two_record_run(&app, &dataset).await;
    assert_eq!(
        reused_answers(&app, &after).await,
        0,
        "answers outlived the history"
    );
    assert_eq!(server.received().len(), calls + 2);
}

#[tokio::test]
async fn one_users_cached_answers_never_reach_another() {
    let server = model_server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut state = test_state(&server, dir.path()).await;
    state.authenticator = Some(Arc::new(TestLogin));
    state.cache = Some(ResponseCache::open_dir(&dir.path().join("cache")).unwrap());
    let app = spawn_app_with(state, dir).await;
    let login = |user: &'static str| {
        let app = &app;
        async move {
            app.new_browser();
            let token = app.get("/login").await.csrf_token();
            let signed_in = app
                .post_form("/login", &[("csrf_token", &token), ("user", user)])
                .await;
            assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
        }
    };
    login("alice").await;
    let dataset = add_sample(&app).await;
    let run = |dataset: String| {
        let app = &app;
        async move { two_record_run(app, &dataset).await }
    };
    let first = run(dataset.clone()).await;
    assert_eq!(reused_answers(&app, &first).await, 0);
    let calls = server.received().len();
    assert_eq!(calls, 2);
    // The same user again: the cache answers.
    let again = run(dataset).await;
    assert_eq!(reused_answers(&app, &again).await, 2);
    assert_eq!(server.received().len(), calls);

    // Another user with the same prompt: fresh answers, never alice's.
    login("bob").await;
    let bobs_dataset = add_sample(&app).await;
    let bobs = run(bobs_dataset).await;
    assert_eq!(
        reused_answers(&app, &bobs).await,
        0,
        "bob got alice's answers"
    );
    assert_eq!(server.received().len(), calls + 2);
}

/// Files in the app's upload staging directory.
fn staged_files(app: &TestApp) -> usize {
    std::fs::read_dir(app.dir.path().join("uploads"))
        .map(|entries| entries.count())
        .unwrap_or(0)
}

/// Sends the start of an upload to `app` and waits until the server staged it; returns the
/// open connection.
async fn start_upload(app: &TestApp) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let token = app.csrf_token().await;
    let cookie = format!("{}={}", app.cookie_name(), app.session_id().unwrap());
    let boundary = "cutoffboundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{token}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jsonl\"\r\n\r\n"
    );
    body.push_str(&"{\"question\": \"q\", \"answers\": [\"a\"]}\n".repeat(100));
    let host = app.base_url.trim_start_matches("http://").to_string();
    let head = format!(
        "POST /datasets HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: 60000\r\n\r\n"
    );
    let mut stream = tokio::net::TcpStream::connect(&host).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    stream.flush().await.unwrap();
    wait_until(app, "nothing was staged", |files| files > 0).await;
    stream
}

async fn wait_until(app: &TestApp, why: &str, done: impl Fn(usize) -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !done(staged_files(app)) {
        assert!(std::time::Instant::now() < deadline, "{why}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_upload_cut_off_or_timed_out_mid_body_leaves_nothing_staged() {
    let server = model_server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut state = test_state(&server, dir.path()).await;
    state.config = Arc::new(WebConfig {
        request_timeout: std::time::Duration::from_secs(1),
        ..(*state.config).clone()
    });
    let app = spawn_app_with(state, dir).await;
    // The client goes away before the body ends.
    let stream = start_upload(&app).await;
    drop(stream);
    wait_until(&app, "the cut-off upload stayed staged", |files| files == 0).await;
    // The client stalls until the request timeout answers 408.
    let stream = start_upload(&app).await;
    wait_until(&app, "the timed-out upload stayed staged", |files| {
        files == 0
    })
    .await;
    drop(stream);
}

#[tokio::test]
async fn serve_removes_staged_uploads_left_by_a_killed_process() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("uploads")).unwrap();
    std::fs::write(dir.path().join("uploads").join("0123abcd.jsonl"), b"half").unwrap();
    let options = web::serve::ServeOptions {
        addr: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_path_buf(),
        catalog: None,
        openai_secret_name: None,
        max_upload_mib: 1,
        no_cache: true,
        store: None,
        lease_secs: None,
        login: None,
    };
    let _state = web::serve::build_state(&options).await.unwrap();
    assert_eq!(
        std::fs::read_dir(dir.path().join("uploads"))
            .unwrap()
            .count(),
        0
    );
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = model_server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut state = test_state(&server, dir.path()).await;
    state.config = Arc::new(WebConfig {
        header_read_timeout: std::time::Duration::from_secs(1),
        ..(*state.config).clone()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let serving = tokio::spawn(web::serve::serve_until(listener, state, shutdown.clone()));
    // Slowloris: headers a few bytes at a time, never the blank line that ends them.
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    let started = std::time::Instant::now();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    let mut buffer = [0u8; 1024];
    let closed = tokio::time::timeout(std::time::Duration::from_secs(8), async {
        loop {
            let _ = slow.write_all(b"X-A: b\r\n").await;
            match tokio::time::timeout(
                std::time::Duration::from_millis(200),
                slow.read(&mut buffer),
            )
            .await
            {
                Ok(Ok(0) | Err(_)) => return,
                Ok(Ok(_)) => {}
                Err(_) => {}
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the slow connection was still open after 8 s"
    );
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
    // A normal client is served meanwhile and after.
    let health = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    shutdown.cancel();
    tokio::time::timeout(std::time::Duration::from_secs(30), serving)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_run_whose_tasks_keep_dying_is_failed_instead_of_adopted_again() {
    let server = model_server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut state = test_state(&server, dir.path()).await;
    state.runs = web::registry::RunRegistry::with_leases(30);
    let owner = store::UserId::local();
    // Two tasks died running it already; a third one took it and died too (its lease ran out).
    let config = serde_json::json!({"dataset": "/nowhere.jsonl", "template": "{q}"});
    state
        .store
        .create_run(&owner, "poison", &config, 3)
        .await
        .unwrap();
    state
        .store
        .finish_run(
            &owner,
            "poison",
            store::RunStatus::Running,
            &serde_json::json!({"restarts": 2}),
        )
        .await
        .unwrap();
    assert!(
        state
            .store
            .acquire_lease(&owner, "poison", "dead-task", 0)
            .await
            .unwrap()
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let adopted = web::adopt::adopt_orphans(&state).await;
    assert!(adopted.is_empty(), "{adopted:?}");
    let run = state.store.run(&owner, "poison").await.unwrap().unwrap();
    assert_eq!(run.status, store::RunStatus::Failed);
    let reason = run.summary.unwrap()["error"].as_str().unwrap().to_string();
    assert!(
        reason.contains("stopped 3 times") && reason.contains("LLM_EVAL_MAX_RUN_RESTARTS"),
        "{reason}"
    );
    // Nothing adopts it afterwards.
    assert!(web::adopt::adopt_orphans(&state).await.is_empty());
    assert_eq!(
        state
            .store
            .run(&owner, "poison")
            .await
            .unwrap()
            .unwrap()
            .status,
        store::RunStatus::Failed
    );
}

#[tokio::test]
async fn quotas_refuse_over_limit_runs_and_datasets_with_a_clear_message_and_start_nothing() {
    let server = model_server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut state = test_state(&server, dir.path()).await;
    let mut config = (*state.config).clone();
    web::serve::shared_settings_from_env(&mut config, |name| {
        match name {
            "LLM_EVAL_MAX_MODELS_PER_RUN" => Some("1"),
            "LLM_EVAL_MAX_RUN_CONCURRENCY" => Some("4"),
            "LLM_EVAL_MAX_DATASETS_PER_USER" => Some("1"),
            _ => None,
        }
        .map(str::to_string)
    })
    .unwrap();
    state.config = Arc::new(config);
    let app = spawn_app_with(state, dir).await;
    // The form says what the server allows.
    let form = app.get("/evals/new").await;
    assert!(
        form.body
            .contains("1 models (and 1 judges) per run, a concurrency of 4 per model"),
        "{}",
        form.body
    );
    let dataset = add_sample(&app).await;
    let two_models = start_eval(
        &app,
        &dataset,
        "{question}",
        &[("extra_models", "openai:m, openai:n")],
    )
    .await;
    assert_eq!(two_models.status, StatusCode::BAD_REQUEST);
    assert!(
        two_models
            .body
            .contains("this server evaluates at most 1 models per run"),
        "{}",
        two_models.body
    );
    let too_concurrent = start_eval(&app, &dataset, "{question}", &[("concurrency", "5")]).await;
    assert_eq!(too_concurrent.status, StatusCode::BAD_REQUEST);
    assert!(too_concurrent.body.contains("a concurrency of at most 4"));
    assert!(server.received().is_empty());
    // A second dataset is over the count quota; nothing is kept or left staged.
    let token = app.csrf_token().await;
    let second = app
        .post_form("/datasets/sample", &[("csrf_token", &token)])
        .await;
    assert_eq!(second.status, StatusCode::BAD_REQUEST, "{}", second.body);
    assert!(
        second.body.contains("LLM_EVAL_MAX_DATASETS_PER_USER"),
        "{}",
        second.body
    );
    assert_eq!(
        app.state
            .store
            .datasets(&store::UserId::local())
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(staged_files(&app), 0);
    assert!(
        app.state
            .store
            .runs(&store::UserId::local(), 100)
            .await
            .unwrap()
            .is_empty(),
        "a refused run was stored"
    );
}

#[tokio::test]
async fn a_user_at_the_runs_in_flight_quota_cannot_start_another() {
    let server = ModelServer::start(model_doubles::Behavior::with_latency(
        std::time::Duration::from_millis(500),
    ))
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut state = test_state(&server, dir.path()).await;
    let mut config = (*state.config).clone();
    web::serve::shared_settings_from_env(&mut config, |name| {
        (name == "LLM_EVAL_MAX_RUNS_PER_USER").then(|| "1".to_string())
    })
    .unwrap();
    state.config = Arc::new(config);
    let app = spawn_app_with(state, dir).await;
    let dataset = add_sample(&app).await;
    // 20 records one at a time, half a second each: running for ten seconds.
    let first = start_eval(&app, &dataset, "{question}", &[("concurrency", "1")]).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.body);
    let second = start_eval(&app, &dataset, "{question}", &[("concurrency", "1")]).await;
    assert_eq!(second.status, StatusCode::BAD_REQUEST);
    assert!(
        second
            .body
            .contains("you have 1 runs going, the most this server runs at once for one user"),
        "{}",
        second.body
    );
    assert_eq!(
        app.state
            .store
            .runs(&store::UserId::local(), 10)
            .await
            .unwrap()
            .len(),
        1,
        "the refused run was stored"
    );
}
