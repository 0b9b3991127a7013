//! The web app over HTTP: a real server on 127.0.0.1 port 0 (`spawn_app`) with its own store
//! in a temp dir and the model double behind the OpenAI client, plus in-process `oneshot`
//! checks of the router. Covers sessions, CSRF, limits, isolation and the pages' flows.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;

use engine::catalog::Catalog;
use engine::providers::{ProviderSettings, Providers};
use model_doubles::ModelServer;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use store::SqliteStore;
use web::{AppState, WebConfig, registry::RunRegistry};

/// A running app and a browser-like client that keeps the session cookie.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// The state the server runs on (tests read the store directly).
    pub state: AppState,
    /// The temp dir of the store; removed with the app.
    pub dir: tempfile::TempDir,
    client: reqwest::Client,
    cookie: std::sync::Mutex<Option<String>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The state of a test app over a fresh store, models served by `model_server`.
pub async fn test_state(model_server: &ModelServer, dir: &std::path::Path) -> AppState {
    let store = SqliteStore::open_shared(&dir.join("store.sqlite")).unwrap();
    let providers = Providers::from_env(ProviderSettings {
        openai_base_url: Some(format!("{}/v1", model_server.url())),
        openai_api_key: Some(secrecy::SecretString::from("test-key".to_string())),
        ..ProviderSettings::default()
    })
    .await
    .unwrap();
    AppState {
        store,
        cache: None,
        catalog: Arc::new(Catalog::embedded()),
        providers: Arc::new(providers),
        runs: RunRegistry::default(),
        config: Arc::new(WebConfig {
            max_upload_bytes: 64 * 1024,
            ..WebConfig::local(dir.to_path_buf())
        }),
        authenticator: None,
    }
}

/// Starts the app on 127.0.0.1 port 0 over a fresh store.
pub async fn spawn_app(model_server: &ModelServer) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let state = test_state(model_server, dir.path()).await;
    spawn_app_with(state, dir).await
}

/// Starts the app over `state`.
pub async fn spawn_app_with(state: AppState, dir: tempfile::TempDir) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = web::router(state.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await;
    });
    TestApp {
        base_url: format!("http://{addr}"),
        state,
        dir,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .unwrap(),
        cookie: std::sync::Mutex::new(None),
        server,
    }
}

/// A response's status, headers and body.
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    /// The `Location` of a redirect.
    pub fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
    }

    /// The CSRF token of the page's forms.
    pub fn csrf_token(&self) -> String {
        let marker = "name=\"csrf_token\" value=\"";
        let start = self.body.find(marker).expect("the page has a form") + marker.len();
        self.body[start..start + 64].to_string()
    }
}

impl TestApp {
    /// The session cookie's name under this app's settings (`__Host-` when Secure).
    pub fn cookie_name(&self) -> &'static str {
        if self.state.config.secure_cookies {
            web::session::SECURE_COOKIE
        } else {
            web::session::COOKIE
        }
    }

    fn remember_cookie(&self, headers: &HeaderMap) {
        for value in headers.get_all("set-cookie") {
            let text = value.to_str().unwrap();
            if let Some(rest) = text.strip_prefix(&format!("{}=", self.cookie_name())) {
                let id = rest.split(';').next().unwrap().to_string();
                *self.cookie.lock().unwrap() = (!id.is_empty()).then_some(id);
            }
        }
    }

    /// Sends `request` with this browser's session cookie, remembering a new one.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Page {
        let cookie = self.cookie.lock().unwrap().clone();
        let request = match cookie {
            Some(id) => request.header("cookie", format!("{}={id}", self.cookie_name())),
            None => request,
        };
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        self.remember_cookie(&headers);
        let body = response.text().await.unwrap();
        Page {
            status,
            headers,
            body,
        }
    }

    /// GET `path`.
    pub async fn get(&self, path: &str) -> Page {
        self.send(self.client.get(format!("{}{path}", self.base_url)))
            .await
    }

    /// POST a URL-encoded form.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        self.send(self.form_request(path, fields)).await
    }

    /// A URL-encoded form POST to `path`, not yet sent.
    pub fn form_request(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::RequestBuilder {
        let mut body = form_urlencoded::Serializer::new(String::new());
        for (name, value) in fields {
            body.append_pair(name, value);
        }
        self.client
            .post(format!("{}{path}", self.base_url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.finish())
    }

    /// POST a multipart form: the fields in order, then a file part.
    pub async fn post_multipart(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        file: Option<(&str, &str, Vec<u8>)>,
    ) -> Page {
        let boundary = "----llm-eval-test-boundary-7f3a";
        let mut body: Vec<u8> = Vec::new();
        for (name, value) in fields {
            body.extend(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes());
        }
        if let Some((name, file_name, bytes)) = file {
            body.extend(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
            body.extend(bytes);
            body.extend(b"\r\n");
        }
        body.extend(format!("--{boundary}--\r\n").as_bytes());
        self.send(
            self.client
                .post(format!("{}{path}", self.base_url))
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(body),
        )
        .await
    }

    /// The CSRF token of this client's session (from any page with a form).
    pub async fn csrf_token(&self) -> String {
        self.get("/datasets").await.csrf_token()
    }

    /// The session id this browser holds.
    pub fn session_id(&self) -> Option<String> {
        self.cookie.lock().unwrap().clone()
    }

    /// Makes this browser hold session `id` (or none).
    pub fn set_session_id(&self, id: Option<String>) {
        *self.cookie.lock().unwrap() = id;
    }

    /// A GET request to `path`, not yet sent.
    pub fn get_request(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(format!("{}{path}", self.base_url))
    }

    /// Forgets the session cookie (a new browser).
    pub fn new_browser(&self) {
        *self.cookie.lock().unwrap() = None;
    }
}

/// The sample dataset's JSONL bytes.
pub fn squad_bytes() -> Vec<u8> {
    std::fs::read(crate::helpers::squad_jsonl()).unwrap()
}

/// A path in the repository's sample data.
pub fn sample_path(name: &str) -> PathBuf {
    crate::helpers::squad_dir().join(name)
}

async fn model_server() -> ModelServer {
    crate::helpers::start(
        model_doubles::Answer::Fixed("France".into()),
        model_doubles::FaultPlan::none(),
    )
    .await
}

#[tokio::test]
async fn healthz_needs_no_session_and_pages_carry_a_session_cookie() {
    let server = model_server().await;
    let app = spawn_app(&server).await;
    let health = app.get("/healthz").await;
    assert_eq!(
        (health.status, health.body.as_str()),
        (StatusCode::OK, "ok")
    );
    assert!(health.headers.get("set-cookie").is_none());
    assert!(health.headers.get("x-request-id").is_some());

    let home = app.get("/").await;
    assert_eq!(home.status, StatusCode::OK, "{}", home.body);
    assert!(
        home.body.contains("Local mode: no login configured"),
        "{}",
        home.body
    );
    let cookie = home.headers.get("set-cookie").unwrap().to_str().unwrap();
    assert!(cookie.starts_with("llm_eval_session="), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "local mode on loopback: {cookie}"
    );
    let csp = home.headers.get("content-security-policy").unwrap();
    assert!(csp.to_str().unwrap().contains("script-src 'self'"));
    // The same browser keeps its session: no new cookie.
    let again = app.get("/").await;
    assert!(again.headers.get("set-cookie").is_none());
}

#[tokio::test]
async fn the_cookie_is_secure_outside_local_loopback_mode() {
    let server = model_server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut state = test_state(&server, dir.path()).await;
    state.config = Arc::new(WebConfig {
        secure_cookies: true,
        ..(*state.config).clone()
    });
    let app = spawn_app_with(state, dir).await;
    let home = app.get("/").await;
    let cookie = home.headers.get("set-cookie").unwrap().to_str().unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
}

#[tokio::test]
async fn unsafe_requests_without_the_sessions_csrf_token_are_refused() {
    let server = model_server().await;
    let app = spawn_app(&server).await;
    let token = app.csrf_token().await;
    // No token, a wrong token, another session's token: 403 with a message.
    let refused = app.post_form("/runs/clear", &[("confirm", "yes")]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.body.contains("CSRF token"), "{}", refused.body);
    let wrong = app
        .post_form(
            "/runs/clear",
            &[("csrf_token", &"0".repeat(64)), ("confirm", "yes")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let other = spawn_app(&server).await;
    let foreign = other.csrf_token().await;
    let cross = app
        .post_form(
            "/runs/clear",
            &[("csrf_token", &foreign), ("confirm", "yes")],
        )
        .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    // A header token works for fetch calls; a wrong header is refused even with a right field.
    let header = app
        .send(
            app.form_request(
                "/runs/clear",
                &[("csrf_token", token.as_str()), ("confirm", "yes")],
            )
            .header("x-csrf-token", "bad"),
        )
        .await;
    assert_eq!(header.status, StatusCode::FORBIDDEN);
    // Multipart: the token must be the first part.
    let late = app
        .post_multipart("/datasets", &[], Some(("file", "qa.jsonl", squad_bytes())))
        .await;
    assert_eq!(late.status, StatusCode::FORBIDDEN, "{}", late.body);
    // With the token, the same form goes through.
    let ok = app
        .post_form("/runs/clear", &[("csrf_token", &token), ("confirm", "yes")])
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
}

#[tokio::test]
async fn the_router_answers_in_process_too() {
    use tower::ServiceExt;
    let server = model_server().await;
    let dir = tempfile::tempdir().unwrap();
    let state = test_state(&server, dir.path()).await;
    let response = web::router(state)
        .oneshot(
            axum::http::Request::get("/healthz")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), axum::http::StatusCode::OK);
}

/// Polls a run's progress until it is no longer running.
pub async fn wait_for_run(app: &TestApp, run_id: &str) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let page = app.get(&format!("/runs/{run_id}/progress")).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let progress: serde_json::Value = serde_json::from_str(&page.body).unwrap();
        if progress["status"] != "running" {
            return progress;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "run {run_id} did not end: {progress}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Adds the sample dataset; returns its id.
pub async fn add_sample(app: &TestApp) -> String {
    let token = app.csrf_token().await;
    let added = app
        .post_form("/datasets/sample", &[("csrf_token", &token)])
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    added
        .location()
        .trim_start_matches("/datasets/")
        .to_string()
}

/// Starts an evaluation of `dataset` with the form's fields; returns the response.
pub async fn start_eval(
    app: &TestApp,
    dataset: &str,
    template: &str,
    extra: &[(&str, &str)],
) -> Page {
    let token = app.csrf_token().await;
    let mut fields = vec![
        ("csrf_token", token.as_str()),
        ("dataset", dataset),
        ("reference_field", "answers"),
        ("template", template),
        ("extra_models", "openai:m"),
        ("metrics", "qa_accuracy"),
        ("metrics", "factual_knowledge"),
        ("selection", "all"),
        ("concurrency", "4"),
        ("max_attempts", "2"),
        ("timeout", "10"),
        ("action", "run"),
    ];
    fields.extend_from_slice(extra);
    app.post_form("/evals", &fields).await
}

#[tokio::test]
async fn an_evaluation_runs_from_the_form_to_the_downloads() {
    let server = model_server().await;
    let app = spawn_app(&server).await;
    let dataset = add_sample(&app).await;
    let shown = app.get(&format!("/datasets/{dataset}")).await;
    assert!(
        shown.body.contains("question_id") && shown.body.contains("Normandy"),
        "{}",
        shown.body
    );

    let started = start_eval(&app, &dataset, crate::helpers::SQUAD_TEMPLATE, &[]).await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    let run_id = started.location().trim_start_matches("/runs/").to_string();
    let progress = wait_for_run(&app, &run_id).await;
    assert_eq!(progress["status"], "finished");
    assert_eq!(progress["done"], crate::helpers::N_SQUAD);

    let page = app.get(&format!("/runs/{run_id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    for needle in [
        "openai:m",
        "f1_score",
        "factual_knowledge",
        "<svg",
        "Mean score per model",
        "Retry failed records",
    ] {
        if needle == "Retry failed records" {
            assert!(
                !page.body.contains(needle),
                "nothing failed: no retry button"
            );
        } else {
            assert!(page.body.contains(needle), "{needle}: {}", page.body);
        }
    }
    let jsonl = app.get(&format!("/runs/{run_id}/records.jsonl")).await;
    assert!(
        jsonl.headers["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    let lines: Vec<serde_json::Value> = jsonl
        .body
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), crate::helpers::N_SQUAD);
    let keys: Vec<&String> = lines[0].as_object().unwrap().keys().collect();
    assert_eq!(
        &keys[..6],
        [
            "model_input",
            "prompt",
            "model_output",
            "target_output",
            "scores",
            "index"
        ]
    );
    let csv = app.get(&format!("/runs/{run_id}/records.csv")).await;
    assert!(
        csv.body.starts_with(
            "model_input,prompt,model_output,target_output,category,f1_score,exact_match_score"
        ),
        "{}",
        &csv.body[..200]
    );
    assert_eq!(
        csv::Reader::from_reader(csv.body.as_bytes())
            .records()
            .count(),
        crate::helpers::N_SQUAD
    );
    let summary: serde_json::Value =
        serde_json::from_str(&app.get(&format!("/runs/{run_id}/summary.json")).await.body).unwrap();
    assert_eq!(summary["models"][0]["model"], "openai:m");
    assert_eq!(
        summary["config"]["template"],
        crate::helpers::SQUAD_TEMPLATE
    );

    // Sorted, filtered and paged tables come from the store's query.
    let failures = app.get(&format!("/runs/{run_id}?filter=failed")).await;
    assert!(
        failures.body.contains("0 matching record(s)"),
        "{}",
        failures.body
    );
    let low = app
        .get(&format!(
            "/runs/{run_id}?filter=low&score=f1_score&below=2&sort=f1_score&dir=desc"
        ))
        .await;
    assert!(low.body.contains("20 matching record(s)"), "{}", low.body);

    // History, clone, compare, delete.
    let history = app.get("/runs").await;
    assert!(history.body.contains(&run_id));
    let clone = app.get(&format!("/evals/new?from={run_id}")).await;
    assert!(
        clone.body.contains("Answer briefly: {question}"),
        "{}",
        clone.body
    );
    let second = start_eval(&app, &dataset, "Q: {question}", &[]).await;
    let second_id = second.location().trim_start_matches("/runs/").to_string();
    wait_for_run(&app, &second_id).await;
    let compare = app
        .get(&format!("/compare?run={run_id}&run={second_id}"))
        .await;
    assert_eq!(compare.status, StatusCode::OK, "{}", compare.body);
    assert!(
        compare.body.contains("Q: {question}") && compare.body.contains("template"),
        "{}",
        compare.body
    );
    let token = app.csrf_token().await;
    let deleted = app
        .post_form(
            &format!("/runs/{second_id}/delete"),
            &[("csrf_token", &token)],
        )
        .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.get(&format!("/runs/{second_id}")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn form_errors_are_the_engines_and_keep_what_was_typed() {
    let server = model_server().await;
    let app = spawn_app(&server).await;
    let dataset = add_sample(&app).await;
    let refused = start_eval(&app, &dataset, "Say {nope} to {question}", &[]).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("nope"), "{}", refused.body);
    assert!(
        refused.body.contains("id=\"template-error\""),
        "the message is next to the template"
    );
    assert!(
        refused.body.contains("Say {nope} to {question}"),
        "what was typed is kept"
    );
    let no_judge = start_eval(
        &app,
        &dataset,
        "{question}",
        &[("metrics", "qa_accuracy_by_llm")],
    )
    .await;
    assert!(
        no_judge.body.contains("needs at least one judge model"),
        "{}",
        no_judge.body
    );
    assert!(no_judge.body.contains("id=\"judges-error\""));
    let bad_number = start_eval(&app, &dataset, "{question}", &[("temperature", "warm")]).await;
    assert!(
        bad_number
            .body
            .contains("temperature `warm` is not a number")
    );
    let bad_size = start_eval(
        &app,
        &dataset,
        "{question}",
        &[("max_record_size", "lots"), ("record_timeout", "45")],
    )
    .await;
    assert_eq!(bad_size.status, StatusCode::BAD_REQUEST);
    assert!(
        bad_size
            .body
            .contains("largest record: `lots` is not a size"),
        "{}",
        bad_size.body
    );
    assert!(bad_size.body.contains("id=\"runner-error\""));
    assert!(
        bad_size.body.contains("value=\"45\""),
        "what was typed is kept"
    );
    let tiny = start_eval(&app, &dataset, "{question}", &[("max_record_size", "10")]).await;
    assert_eq!(tiny.status, StatusCode::BAD_REQUEST);
    assert!(
        tiny.body.contains(
            "the record is larger than 10 bytes, the largest record the evaluation reads"
        ) && tiny
            .body
            .contains("(raise \u{201c}Largest dataset record\u{201d} under Runner)")
            && !tiny.body.contains("--max-record-size"),
        "{}",
        tiny.body
    );
    let zero_wait = start_eval(&app, &dataset, "{question}", &[("max_retry_wait", "0")]).await;
    assert!(
        zero_wait
            .body
            .contains("the longest wait before a retry must be more than 0"),
        "{}",
        zero_wait.body
    );
    // The last form comes back on the next visit.
    let again = app.get("/evals/new").await;
    assert!(
        again.body.contains("name=\"max_retry_wait\" value=\"0\""),
        "{}",
        again.body
    );
    assert_eq!(server.stats().requests, 0, "no model was called");
}

#[tokio::test]
async fn the_runner_limits_of_the_form_reach_the_run_and_its_clone() {
    let server = model_server().await;
    let app = spawn_app(&server).await;
    let dataset = add_sample(&app).await;
    let started = start_eval(
        &app,
        &dataset,
        crate::helpers::SQUAD_TEMPLATE,
        &[
            ("max_retry_wait", "7"),
            ("record_timeout", "90"),
            ("max_record_size", "1 MiB"),
        ],
    )
    .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    let run_id = started.location().trim_start_matches("/runs/").to_string();
    wait_for_run(&app, &run_id).await;
    let summary = app.get(&format!("/runs/{run_id}/summary.json")).await;
    let summary: serde_json::Value = serde_json::from_str(&summary.body).unwrap();
    let config = &summary["config"];
    assert_eq!(config["max_retry_wait_secs"], 7.0, "{summary}");
    assert_eq!(config["record_timeout_secs"], 90.0, "{summary}");
    assert_eq!(config["max_record_bytes"], 1 << 20, "{summary}");
    let clone = app.get(&format!("/evals/new?from={run_id}")).await;
    for (id, value) in [
        ("max_retry_wait", "7"),
        ("record_timeout", "90"),
        ("max_record_size", "1 MiB"),
    ] {
        assert!(
            clone
                .body
                .contains(&format!("id=\"{id}\" name=\"{id}\" value=\"{value}\"")),
            "{id}: {}",
            clone.body
        );
    }
}

#[tokio::test]
async fn uploads_are_checked_limited_and_never_name_a_path() {
    let server = model_server().await;
    let app = spawn_app(&server).await;
    let token = app.csrf_token().await;
    let upload = |name: &'static str, bytes: Vec<u8>| {
        let app = &app;
        let token = token.clone();
        async move {
            app.post_multipart(
                "/datasets",
                &[("csrf_token", &token)],
                Some(("file", name, bytes)),
            )
            .await
        }
    };
    let too_large = upload("big.jsonl", vec![b'x'; 70 * 1024]).await;
    assert_eq!(too_large.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        too_large
            .body
            .contains("larger than the upload limit of 1 MiB"),
        "{}",
        too_large.body
    );
    let wrong_type = upload("tool.exe", b"MZ".to_vec()).await;
    assert_eq!(wrong_type.status, StatusCode::BAD_REQUEST);
    assert!(
        wrong_type
            .body
            .contains("only JSON Lines (.jsonl) and CSV (.csv)")
    );
    let array = upload("qa.json", b"[{\"q\": 1}]".to_vec()).await;
    assert!(
        array.body.contains("qa.json: this is one JSON array"),
        "{}",
        array.body
    );
    let empty = upload("empty.jsonl", Vec::new()).await;
    assert!(
        empty
            .body
            .contains("empty.jsonl: the dataset has no records"),
        "{}",
        empty.body
    );
    // Broken lines are listed with the file and line, as the CLI names them.
    let broken = upload(
        "../../etc/qa.jsonl",
        b"{\"question\": \"Q?\", \"answers\": [\"A\"]}\n{oops\n".to_vec(),
    )
    .await;
    assert_eq!(broken.status, StatusCode::SEE_OTHER, "{}", broken.body);
    let page = app.get(broken.location()).await;
    assert!(page.body.contains("qa.jsonl:2:"), "{}", page.body);
    assert!(
        !page.body.contains("etc/"),
        "the uploaded name is only a name"
    );
    let rows = app.state.store.datasets(&app_store_owner()).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].path.starts_with(app.dir.path().join("datasets")));
    // Nothing is left behind by the refused uploads.
    assert_eq!(
        std::fs::read_dir(app.dir.path().join("uploads"))
            .unwrap()
            .count(),
        0
    );
    // Ids that are not ours find nothing.
    for path in [
        "/datasets/..%2F..%2Fstore.sqlite",
        "/runs/..%2Fx",
        "/datasets/%00",
        "/runs/x/records.csv",
    ] {
        assert_eq!(app.get(path).await.status, StatusCode::NOT_FOUND, "{path}");
    }
    let _ = sample_path("qa.csv");
}

fn app_store_owner() -> store::UserId {
    store::UserId::local()
}

#[tokio::test]
async fn a_stopped_server_marks_its_runs_interrupted_and_resume_finishes_them() {
    let server = ModelServer::start(model_doubles::Behavior {
        latency: std::time::Duration::from_millis(100),
        answer: model_doubles::Answer::Fixed("France".into()),
        ..model_doubles::Behavior::default()
    })
    .await
    .unwrap();
    let app = spawn_app(&server).await;
    let dataset = add_sample(&app).await;
    let started = start_eval(&app, &dataset, "{question}", &[("concurrency", "1")]).await;
    let run_id = started.location().trim_start_matches("/runs/").to_string();
    tokio::time::sleep(std::time::Duration::from_millis(350)).await;
    app.state
        .runs
        .shutdown(std::time::Duration::from_secs(10))
        .await;
    let progress: serde_json::Value =
        serde_json::from_str(&app.get(&format!("/runs/{run_id}/progress")).await.body).unwrap();
    assert_eq!(progress["status"], "interrupted", "{progress}");
    let done = progress["done"].as_u64().unwrap();
    assert!(
        done > 0 && done < crate::helpers::N_SQUAD as u64,
        "{progress}"
    );
    let page = app.get(&format!("/runs/{run_id}")).await;
    assert!(page.body.contains("Resume run"), "{}", page.body);

    // A restarted server (new registry, same store) resumes it.
    let dir = tempfile::tempdir().unwrap();
    let restarted = spawn_app_with(
        AppState {
            runs: RunRegistry::default(),
            ..app.state.clone()
        },
        dir,
    )
    .await;
    *restarted.cookie.lock().unwrap() = app.cookie.lock().unwrap().clone();
    let requests_before = server.stats().requests;
    let token = restarted.csrf_token().await;
    let resumed = restarted
        .post_form(&format!("/runs/{run_id}/retry"), &[("csrf_token", &token)])
        .await;
    assert_eq!(resumed.status, StatusCode::SEE_OTHER, "{}", resumed.body);
    let new_id = resumed.location().trim_start_matches("/runs/").to_string();
    let progress = wait_for_run(&restarted, &new_id).await;
    assert_eq!(progress["status"], "finished");
    assert_eq!(progress["done"], crate::helpers::N_SQUAD);
    assert_eq!(
        server.stats().requests - requests_before,
        crate::helpers::N_SQUAD as u64 - done,
        "finished records are not asked again"
    );
}

/// A login layer for tests: `POST /login` with a user name signs that user in.
#[derive(Debug)]
pub struct TestLogin;

#[derive(serde::Deserialize)]
struct LoginForm {
    user: String,
}

async fn test_login(
    axum::extract::State(state): axum::extract::State<AppState>,
    axum::Extension(context): axum::Extension<web::session::SessionContext>,
    axum::Form(form): axum::Form<LoginForm>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let user = store::SessionUser {
        id: store::UserId::new(format!("sub-{}", form.user)),
        name: form.user,
    };
    let (_, cookie) = web::session::sign_in(&state, &context.session, user, Some("tokens".into()))
        .await
        .unwrap();
    (
        StatusCode::SEE_OTHER,
        [
            ("location", "/".to_string()),
            ("set-cookie", cookie.to_str().unwrap().to_string()),
        ],
    )
        .into_response()
}

async fn test_login_page(
    axum::Extension(context): axum::Extension<web::session::SessionContext>,
) -> axum::response::Html<String> {
    axum::response::Html(format!(
        "<form method=post action=/login><input type=hidden name=\"csrf_token\" value=\"{}\"><input name=user></form>",
        context.session.csrf_token
    ))
}

impl web::Authenticator for TestLogin {
    fn routes(&self) -> axum::Router<AppState> {
        axum::Router::new().route(
            "/login",
            axum::routing::get(test_login_page).post(test_login),
        )
    }

    fn authenticate<'a>(
        &'a self,
        _state: &'a AppState,
        session: &'a store::Session,
        request: &'a axum::http::request::Parts,
    ) -> engine::providers::BoxFuture<'a, Result<web::CurrentUser, axum::response::Response>> {
        Box::pin(async move {
            use axum::response::IntoResponse;
            match &session.user {
                Some(user) => Ok(user.clone().into()),
                None => Err(axum::response::Redirect::to(&format!(
                    "/login?next={}",
                    request.uri.path()
                ))
                .into_response()),
            }
        })
    }
}

#[tokio::test]
async fn with_a_login_layer_each_user_sees_only_their_own_runs_and_datasets() {
    let server = model_server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut state = test_state(&server, dir.path()).await;
    state.authenticator = Some(Arc::new(TestLogin));
    let app = spawn_app_with(state, dir).await;

    let anonymous = app.get("/runs").await;
    assert_eq!(
        (anonymous.status, anonymous.location()),
        (StatusCode::SEE_OTHER, "/login?next=/runs")
    );
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);
    let login = |user: &'static str| {
        let app = &app;
        async move {
            app.new_browser();
            let token = app.get("/login").await.csrf_token();
            let before = app.cookie.lock().unwrap().clone();
            let signed_in = app
                .post_form("/login", &[("csrf_token", &token), ("user", user)])
                .await;
            assert_eq!(
                signed_in.status,
                StatusCode::SEE_OTHER,
                "{}",
                signed_in.body
            );
            assert_ne!(
                *app.cookie.lock().unwrap(),
                before,
                "a new session id after login"
            );
        }
    };
    login("alice").await;
    let home = app.get("/").await;
    assert!(
        home.body.contains("Signed in as <strong>alice</strong>"),
        "{}",
        home.body
    );
    assert!(!home.body.contains("Local mode"));
    let dataset = add_sample(&app).await;
    let started = start_eval(&app, &dataset, "{question}", &[]).await;
    let run_id = started.location().trim_start_matches("/runs/").to_string();
    wait_for_run(&app, &run_id).await;

    login("bob").await;
    assert!(!app.get("/runs").await.body.contains(&run_id));
    assert!(!app.get("/datasets").await.body.contains(&dataset));
    for path in [
        format!("/runs/{run_id}"),
        format!("/runs/{run_id}/records.jsonl"),
        format!("/runs/{run_id}/summary.json"),
        format!("/runs/{run_id}/progress"),
        format!("/datasets/{dataset}"),
        format!("/evals/new?from={run_id}"),
    ] {
        assert_eq!(app.get(&path).await.status, StatusCode::NOT_FOUND, "{path}");
    }
    let token = app.csrf_token().await;
    for path in [
        format!("/runs/{run_id}/delete"),
        format!("/runs/{run_id}/retry"),
        format!("/datasets/{dataset}/delete"),
    ] {
        assert_eq!(
            app.post_form(&path, &[("csrf_token", &token)]).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    let cleared = app
        .post_form("/runs/clear", &[("csrf_token", &token), ("confirm", "yes")])
        .await;
    assert_eq!(cleared.status, StatusCode::SEE_OTHER);
    // Alice's run survived Bob's "clear all".
    login("alice").await;
    assert_eq!(
        app.get(&format!("/runs/{run_id}")).await.status,
        StatusCode::OK
    );
}

/// Quotas a facilitator sets for one user (issue 22) replace the server's for that user only,
/// are read from the store (so they survive a restart: a new state over the same store reads
/// them), and a stored value out of bounds is ignored.
#[tokio::test]
async fn a_users_own_quotas_replace_the_servers_for_them_alone() {
    let server = model_server().await;
    let dir = tempfile::tempdir().unwrap();
    let state = test_state(&server, dir.path()).await;
    let (user, other) = (store::UserId::new("u"), store::UserId::new("o"));
    let defaults = state.config.quotas.clone();
    assert_eq!(
        web::safety::quotas_for(&state, &user).await.unwrap(),
        defaults
    );
    let set = web::safety::UserQuotas {
        runs_per_user: 1,
        models_per_run: 2,
        concurrency_per_run: 3,
        datasets_per_user: 4,
        dataset_bytes_per_user: 5 << 20,
    };
    state
        .store
        .set_user_quotas(&user, &serde_json::to_value(set).unwrap())
        .await
        .unwrap();
    let restarted = test_state(&server, dir.path()).await;
    let quotas = web::safety::quotas_for(&restarted, &user).await.unwrap();
    assert_eq!(web::safety::UserQuotas::of(&quotas), set);
    assert_eq!(quotas.task_model_calls, defaults.task_model_calls);
    assert_eq!(
        web::safety::quotas_for(&restarted, &other).await.unwrap(),
        defaults
    );
    // Over a ceiling (stored by hand): ignored, the server's apply.
    restarted
        .store
        .set_user_quotas(
            &other,
            &serde_json::json!({"runs_per_user": 1_000_000, "models_per_run": 2,
                "concurrency_per_run": 3, "datasets_per_user": 4, "dataset_bytes_per_user": 5}),
        )
        .await
        .unwrap();
    assert_eq!(
        web::safety::quotas_for(&restarted, &other).await.unwrap(),
        defaults
    );
    // The dataset quota is the user's own now.
    let refused = web::safety::check_dataset_quota(&restarted, &user, 6 << 20)
        .await
        .unwrap();
    assert!(refused.is_err(), "{refused:?}");
    assert!(
        web::safety::check_dataset_quota(&restarted, &other, 6 << 20)
            .await
            .unwrap()
            .is_ok()
    );
}

/// The form's Bedrock service tier and latency go into the request: an unknown tier is an
/// error of the parameters, and a run without a Bedrock model refuses them, with the choices
/// kept selected.
#[tokio::test]
async fn the_form_takes_bedrocks_service_tier_and_latency() {
    let server = model_server().await;
    let app = spawn_app(&server).await;
    let dataset = add_sample(&app).await;
    let form = app.get(&format!("/evals/new?dataset={dataset}")).await;
    assert!(
        form.body.contains("<option value=\"flex\" ")
            && form.body.contains("<option value=\"optimized\" "),
        "{}",
        form.body
    );
    let unknown = start_eval(&app, &dataset, "{question}", &[("service_tier", "cheap")]).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(
        unknown.body.contains("unknown service tier `cheap`")
            && unknown.body.contains("id=\"params-error\""),
        "{}",
        unknown.body
    );
    let no_bedrock = start_eval(
        &app,
        &dataset,
        "{question}",
        &[("service_tier", "flex"), ("latency", "optimized")],
    )
    .await;
    assert_eq!(no_bedrock.status, StatusCode::BAD_REQUEST);
    assert!(
        no_bedrock
            .body
            .contains("no model of this run is a Bedrock model"),
        "{}",
        no_bedrock.body
    );
    assert!(
        no_bedrock.body.contains("<option value=\"flex\" selected>")
            && no_bedrock
                .body
                .contains("<option value=\"optimized\" selected>"),
        "what was chosen is kept: {}",
        no_bedrock.body
    );
    assert!(server.received().is_empty(), "no model was called");
}

/// The Team page's cost column (issue 22): a running run counts its estimate times the share of
/// its records done, an ended one its measured cost.
#[tokio::test]
async fn a_running_runs_cost_so_far_is_its_estimate_times_its_progress() {
    let server = ModelServer::start(model_doubles::Behavior {
        latency: std::time::Duration::from_millis(150),
        answer: model_doubles::Answer::Fixed("France".into()),
        ..model_doubles::Behavior::default()
    })
    .await
    .unwrap();
    let app = spawn_app(&server).await;
    let dataset = add_sample(&app).await;
    let started = start_eval(
        &app,
        &dataset,
        crate::helpers::SQUAD_TEMPLATE,
        &[
            ("models", "gpt-4.1-nano"),
            ("extra_models", ""),
            ("concurrency", "1"),
        ],
    )
    .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    let run_id = started.location().trim_start_matches("/runs/").to_string();
    let owner = store::UserId::local();
    let run = app.state.store.run(&owner, &run_id).await.unwrap().unwrap();
    let estimate = run.config["estimated_cost_usd"].as_f64().unwrap();
    assert!(estimate > 0.0, "{}", run.config);
    // Mid-run: part of the estimate.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let midway = loop {
        let usage = web::safety::usage_of(&app.state, &owner).await.unwrap();
        if usage.running == 1 && usage.records > 0 {
            break usage;
        }
        assert!(std::time::Instant::now() < deadline, "{usage:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(
        midway.running_cost_estimate_usd > 0.0 && midway.running_cost_estimate_usd < estimate,
        "{midway:?} of {estimate}"
    );
    assert_eq!(midway.cost_usd, 0.0);
    wait_for_run(&app, &run_id).await;
    let ended = web::safety::usage_of(&app.state, &owner).await.unwrap();
    assert_eq!(ended.running_cost_estimate_usd, 0.0);
    assert!(ended.cost_usd > 0.0, "{ended:?}");
}

/// The `href` of a pager link of a page ("Next page", "Previous page").
fn pager_link(body: &str, text: &str) -> Option<String> {
    let end = body.find(&format!("\">{text}</a>"))?;
    let start = body[..end].rfind("href=\"")? + "href=\"".len();
    Some(
        body[start..end]
            .replace("&#38;", "&")
            .replace("&amp;", "&")
            .replace("&#x2F;", "/"),
    )
}

/// The rows of a table of a page.
fn table_rows(body: &str, table_id: &str) -> Vec<String> {
    let start = body
        .find(&format!("<table id=\"{table_id}\""))
        .expect("the table");
    let table = &body[start..start + body[start..].find("</table>").expect("its end")];
    let tbody = &table[table.find("<tbody>").expect("a body")..];
    tbody
        .split("<tr>")
        .skip(1)
        .map(|row| row.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[tokio::test]
async fn the_records_table_and_the_side_view_page_by_key_forwards_and_back() {
    let server = model_server().await;
    let app = spawn_app(&server).await;
    let dataset = add_sample(&app).await;
    // 20 records × 3 variants: 60 rows, two pages of the records table.
    let started = start_eval(
        &app,
        &dataset,
        "{question}",
        &[("template", "B: {question}"), ("template", "C: {question}")],
    )
    .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    let run_id = started.location().trim_start_matches("/runs/").to_string();
    wait_for_run(&app, &run_id).await;

    let first = app
        .get(&format!("/runs/{run_id}?sort=f1_score&dir=desc"))
        .await;
    assert!(
        first.body.contains("60 matching record(s) · page 1 of 2"),
        "{}",
        first.body
    );
    assert!(pager_link(&first.body, "Previous page").is_none());
    // The table's links are relative to the run's page.
    let run_page = format!("/runs/{run_id}");
    let next = pager_link(&first.body, "Next page").expect("a next page");
    assert!(next.contains("after="), "{next}");
    let second = app.get(&format!("{run_page}{next}")).await;
    assert!(second.body.contains("page 2 of 2"), "{}", second.body);
    assert!(pager_link(&second.body, "Next page").is_none());
    let (rows_1, rows_2) = (
        table_rows(&first.body, "records-table"),
        table_rows(&second.body, "records-table"),
    );
    assert_eq!((rows_1.len(), rows_2.len()), (50, 10));
    assert!(rows_2.iter().all(|row| !rows_1.contains(row)));
    let previous = pager_link(&second.body, "Previous page").expect("a previous page");
    assert!(previous.contains("before="), "{previous}");
    let back = app.get(&format!("{run_page}{previous}")).await;
    assert!(back.body.contains("page 1 of 2"), "{}", back.body);
    assert_eq!(table_rows(&back.body, "records-table"), rows_1);
    // A cursor that is not one is the first page.
    let forged = app
        .get(&format!(
            "/runs/{run_id}?sort=f1_score&dir=desc&page=2&after=x~1"
        ))
        .await;
    assert_eq!(table_rows(&forged.body, "records-table"), rows_1);

    // Side by side, sorted by the difference between variants B and A: 10 records a page.
    let side = app
        .get(&format!("/runs/{run_id}/side?sort=difference&a=0&b=1"))
        .await;
    assert!(
        side.body.contains("20 matching record(s) · page 1 of 2"),
        "{}",
        side.body
    );
    let next = pager_link(&side.body, "Next page").expect("a next page");
    assert!(
        next.contains("after=") && next.contains("sort=difference"),
        "{next}"
    );
    let side_2 = app.get(&next).await;
    assert!(side_2.body.contains("page 2 of 2"), "{}", side_2.body);
    let (records_1, records_2) = (
        table_rows(&side.body, "side-table"),
        table_rows(&side_2.body, "side-table"),
    );
    assert_eq!((records_1.len(), records_2.len()), (10, 10));
    assert!(records_2.iter().all(|row| !records_1.contains(row)));
    let back = app
        .get(&pager_link(&side_2.body, "Previous page").expect("a previous page"))
        .await;
    assert!(back.body.contains("page 1 of 2"), "{}", back.body);
    assert_eq!(table_rows(&back.body, "side-table"), records_1);
}

#[tokio::test]
async fn compare_lists_changed_records_a_hundred_a_page() {
    // The double answers `yes` to prompts that start with `Z`, `no` to the others: every record
    // of the second run (template `Z: ...`) improves on the first.
    let server = crate::helpers::start(
        model_doubles::Answer::from_fn(|prompt| {
            if prompt.text.starts_with('Z') {
                "yes"
            } else {
                "no"
            }
            .to_owned()
        }),
        model_doubles::FaultPlan::none(),
    )
    .await;
    let app = spawn_app(&server).await;
    let lines: Vec<String> = (0..250)
        .map(|i| {
            serde_json::json!({"question": format!("Is {i} a number?"), "answers": "yes"})
                .to_string()
        })
        .collect();
    let token = app.csrf_token().await;
    let uploaded = app
        .post_multipart(
            "/datasets",
            &[("csrf_token", &token)],
            Some(("file", "numbers.jsonl", lines.join("\n").into_bytes())),
        )
        .await;
    assert_eq!(uploaded.status, StatusCode::SEE_OTHER, "{}", uploaded.body);
    let dataset = uploaded
        .location()
        .trim_start_matches("/datasets/")
        .to_string();
    let mut run_ids = Vec::new();
    for template in ["A: {question}", "Z: {question}"] {
        let started = start_eval(&app, &dataset, template, &[("concurrency", "16")]).await;
        assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
        let run_id = started.location().trim_start_matches("/runs/").to_string();
        wait_for_run(&app, &run_id).await;
        run_ids.push(run_id);
    }

    let first = app
        .get(&format!(
            "/compare?run={}&run={}&metric=f1_score",
            run_ids[0], run_ids[1]
        ))
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert!(first.body.contains("that changed (250)"), "{}", first.body);
    assert!(
        first.body.contains("Records 1–100 of 250."),
        "{}",
        first.body
    );
    let rows_1 = table_rows(&first.body, "compare-records");
    assert_eq!(rows_1.len(), 100);
    assert!(pager_link(&first.body, "Previous").is_none());
    let next = pager_link(&first.body, "Next").expect("a next page");
    assert!(
        next.contains("from=100") && next.contains("metric=f1_score"),
        "{next}"
    );

    let second = app.get(&next).await;
    assert!(
        second.body.contains("Records 101–200 of 250."),
        "{}",
        second.body
    );
    let rows_2 = table_rows(&second.body, "compare-records");
    assert_eq!(rows_2.len(), 100);
    assert!(rows_2.iter().all(|row| !rows_1.contains(row)));
    let third = app
        .get(&pager_link(&second.body, "Next").expect("a third page"))
        .await;
    assert!(
        third.body.contains("Records 201–250 of 250."),
        "{}",
        third.body
    );
    assert_eq!(table_rows(&third.body, "compare-records").len(), 50);
    assert!(pager_link(&third.body, "Next").is_none());
    let back = app
        .get(&pager_link(&third.body, "Previous").expect("a previous page"))
        .await;
    assert_eq!(table_rows(&back.body, "compare-records"), rows_2);

    // Past the end: said, with the way back; a `from` that is not a number is the first page.
    let past = app
        .get(&format!(
            "{}&from=900",
            &next[..next.find("&from=").unwrap()]
        ))
        .await;
    assert!(
        past.body.contains("id=\"compare-past-end\""),
        "{}",
        past.body
    );
    assert_eq!(
        table_rows(
            &app.get(&next.replace("from=100", "from=x")).await.body,
            "compare-records"
        ),
        rows_1
    );
}
