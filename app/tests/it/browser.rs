//! End-to-end in headless Chromium, driven over the W3C WebDriver protocol by chromedriver on
//! a free port, against a real server on 127.0.0.1 with the Cognito login against a moto
//! server's user pool and the model double behind it: one long journey (first login with the
//! new-password challenge, sample dataset, template with live preview, a run with live
//! progress, results, downloads, a second run, compare, logout, and a second user who sees
//! none of it). Screenshots of the main pages are written to `$CARGO_TARGET_DIR/screenshots/`
//! (or `target/screenshots/`).
//!
//! The WebDriver client is the few calls this test needs, over reqwest (already a dependency):
//! new session, navigate, find, click, type, read text, run a script, screenshot.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The W3C element key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn find_binary(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::helpers::workspace_root().join("target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A chromedriver process and one browser session.
struct Browser {
    driver: std::process::Child,
    client: reqwest::Client,
    session: String,
    base: String,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    async fn start() -> Browser {
        let chromedriver = find_binary(&["chromedriver"]).expect(
            "chromedriver is installed (scripts/test.sh installs Debian's chromium-driver)",
        );
        let chromium = find_binary(&["chromium", "chromium-browser", "google-chrome"])
            .expect("chromium is installed (scripts/test.sh installs Debian's chromium)");
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let driver = std::process::Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(response) = client.get(format!("{base}/status")).send().await
                && response.status().is_success()
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.display().to_string(),
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        }}});
        let created: Value = client
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_string();
        Browser {
            driver,
            client,
            session,
            base,
            _profile: profile,
        }
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        self.try_command(method.clone(), path, body)
            .await
            .unwrap_or_else(|error| panic!("{method} {path}: {error}"))
    }

    /// A WebDriver command; its error value when it fails.
    async fn try_command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> Result<Value, Value> {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let request = self.client.request(method.clone(), &url);
        let request = if method == reqwest::Method::GET {
            request
        } else {
            request.json(&body)
        };
        let reply: Value = request.send().await.unwrap().json().await.unwrap();
        if reply["value"].get("error").is_some() {
            return Err(reply["value"].clone());
        }
        Ok(reply["value"].clone())
    }

    async fn goto(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", json!({"url": url}))
            .await;
    }

    /// The first element matching `css`, waiting up to 10 s for it.
    async fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let url = format!("{}/session/{}/element", self.base, self.session);
            let reply: Value = self
                .client
                .post(&url)
                .json(&json!({"using": "css selector", "value": css}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if let Some(id) = reply["value"][ELEMENT].as_str() {
                return id.to_string();
            }
            assert!(Instant::now() < deadline, "no element `{css}`: {reply}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            json!({}),
        )
        .await;
    }

    async fn clear_and_type(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{id}/clear"),
            json!({}),
        )
        .await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            json!({"text": text}),
        )
        .await;
    }

    async fn text(&self, css: &str) -> String {
        let id = self.find(css).await;
        self.command(
            reqwest::Method::GET,
            &format!("/element/{id}/text"),
            json!({}),
        )
        .await
        .as_str()
        .unwrap_or("")
        .to_string()
    }

    async fn script(&self, script: &str) -> Value {
        self.command(
            reqwest::Method::POST,
            "/execute/async",
            json!({"script": script, "args": []}),
        )
        .await
    }

    async fn url(&self) -> String {
        self.command(reqwest::Method::GET, "/url", json!({}))
            .await
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// Waits until `css`'s text contains `needle`.
    async fn wait_for_text(&self, css: &str, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            // The page may be replaced between finding the element and reading it (a redirect,
            // the reload at the end of a run): a stale element is read again.
            let id = self.find(css).await;
            let text = match self
                .try_command(
                    reqwest::Method::GET,
                    &format!("/element/{id}/text"),
                    json!({}),
                )
                .await
            {
                Ok(text) => text.as_str().unwrap_or("").to_string(),
                Err(error) if error["error"] == "stale element reference" => String::new(),
                Err(error) => panic!("reading `{css}`: {error}"),
            };
            if text.contains(needle) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "`{css}` never showed `{needle}`: {text}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Signs `username` in on the login page with the temporary password, then chooses the
    /// new password on the challenge page.
    async fn first_login(&self, username: &str) {
        self.clear_and_type("#username", username).await;
        self.clear_and_type("#password", crate::auth::TEMPORARY_PASSWORD)
            .await;
        self.click("main form button[type=submit]").await;
        self.wait_for_text("h1", "Choose a new password", Duration::from_secs(10))
            .await;
        self.screenshot(&format!("00-new-password-{username}"))
            .await;
        self.clear_and_type("#new_password", crate::auth::NEW_PASSWORD)
            .await;
        self.clear_and_type("#confirm_password", crate::auth::NEW_PASSWORD)
            .await;
        self.click("main form button[type=submit]").await;
    }

    async fn screenshot(&self, name: &str) {
        let png = self
            .command(reqwest::Method::GET, "/screenshot", json!({}))
            .await;
        let bytes = decode_base64(png.as_str().unwrap());
        std::fs::write(screenshot_dir().join(format!("{name}.png")), bytes).unwrap();
    }
}

/// Standard base64 (WebDriver screenshots), without a dependency for it.
fn decode_base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let digits: Vec<u8> = text
        .bytes()
        .filter(|c| *c != b'=' && !c.is_ascii_whitespace())
        .map(value)
        .collect();
    let mut bytes = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let n = chunk
            .iter()
            .fold(0u32, |n, digit| (n << 6) | u32::from(*digit))
            << (6 * (4 - chunk.len()));
        let n_bytes = chunk.len() * 6 / 8;
        bytes.extend(&n.to_be_bytes()[1..1 + n_bytes]);
    }
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_evaluates_watches_downloads_and_compares_in_the_browser() {
    // Slow enough answers to watch the progress move.
    let server = model_doubles::ModelServer::start(model_doubles::Behavior {
        latency: Duration::from_millis(60),
        answer: model_doubles::Answer::Fixed("France".into()),
        ..model_doubles::Behavior::default()
    })
    .await
    .unwrap();
    let moto = model_doubles::Moto::start().await;
    let pool = crate::auth::Pool::create(&moto).await;
    pool.create_user("alice").await;
    pool.create_user("bob").await;
    let login =
        app::web::login::CognitoLogin::new(app::auth::Authenticator::new(pool.config()).await);
    let app = crate::login::spawn_login_app(&server, login).await;
    let browser = Browser::start().await;
    let url = |path: &str| format!("{}{path}", app.base_url);

    // Any page asks for the login first and comes back to it afterwards.
    browser.goto(&url("/datasets")).await;
    browser
        .wait_for_text("h1", "Sign in", Duration::from_secs(10))
        .await;
    assert!(browser.url().await.ends_with("/login?next=%2Fdatasets"));
    browser.screenshot("00-login").await;
    browser.first_login("alice").await;
    browser
        .wait_for_text("h1", "Datasets", Duration::from_secs(10))
        .await;
    assert!(browser.url().await.ends_with("/datasets"));
    browser.goto(&url("/")).await;
    let user = browser.text("header .user").await;
    assert!(user.contains("Signed in as alice"), "{user}");
    browser.screenshot("01-home").await;

    browser.goto(&url("/datasets")).await;
    browser
        .click("form[action='/datasets/sample'] button")
        .await;
    browser
        .wait_for_text("h1", "squad-qa.jsonl", Duration::from_secs(10))
        .await;
    browser.screenshot("02-dataset").await;

    browser.click("a.button.primary").await; // Evaluate with this dataset
    browser
        .wait_for_text("h1", "New evaluation", Duration::from_secs(10))
        .await;
    browser
        .clear_and_type(
            "#template",
            "Human: Answer briefly: {question}\n\nAssistant:",
        )
        .await;
    // The live preview follows the typing.
    browser
        .wait_for_text(
            "#preview",
            "Answer briefly: In what country is Normandy located?",
            Duration::from_secs(10),
        )
        .await;
    browser.clear_and_type("#extra_models", "openai:m").await;
    browser.clear_and_type("#concurrency", "2").await;
    browser.screenshot("03-new-evaluation").await;
    browser.click("button[value='run']").await;

    // Live progress, then the results (the page reloads when the run ends).
    browser
        .wait_for_text("#run-status", "running", Duration::from_secs(10))
        .await;
    browser.screenshot("04-run-progress").await;
    browser
        .wait_for_text("#run-status", "finished", Duration::from_secs(60))
        .await;
    browser
        .wait_for_text("#summary-title", "Summary", Duration::from_secs(10))
        .await;
    let summary = browser
        .text("section[aria-labelledby='summary-title'] table")
        .await;
    assert!(summary.contains("openai:m"), "{summary}");
    browser.screenshot("05-results").await;
    let first_run = browser.url().await;

    // The downloads answer with the files: the summary, one JSON line per record, the CSV.
    let files = browser
        .script(
            "const done = arguments[arguments.length - 1];
             Promise.all([...document.querySelectorAll('a[download]')].map(a => fetch(a.href).then(r => r.text())))
               .then(texts => done(texts));",
        )
        .await;
    let files: Vec<&str> = files
        .as_array()
        .unwrap()
        .iter()
        .map(|text| text.as_str().unwrap())
        .collect();
    let summary: Value = serde_json::from_str(files[0]).unwrap();
    assert_eq!(summary["models"][0]["model"], "openai:m", "{summary}");
    assert_eq!(files[1].lines().count(), 20, "records.jsonl");
    assert!(
        files[2].starts_with("model_input,prompt,model_output,target_output,category,f1_score"),
        "records.csv"
    );
    assert_eq!(
        csv::Reader::from_reader(files[2].as_bytes())
            .records()
            .count(),
        20
    );

    // A second run cloned from the first, with another template; then compare both.
    browser.click("a[href^='/evals/new?from=']").await;
    browser
        .clear_and_type("#template", "Q: {question}\nA:")
        .await;
    browser.click("button[value='run']").await;
    browser
        .wait_for_text("#run-status", "finished", Duration::from_secs(60))
        .await;
    browser.goto(&url("/runs")).await;
    browser
        .click("tbody tr:nth-child(1) input[type=checkbox]")
        .await;
    browser
        .click("tbody tr:nth-child(2) input[type=checkbox]")
        .await;
    browser.click("form[action='/compare'] button").await;
    browser
        .wait_for_text("h1", "Compare 2 runs", Duration::from_secs(10))
        .await;
    let config = browser.text("main table").await;
    assert!(config.contains("Q: {question}"), "{config}");
    browser.screenshot("06-compare").await;
    assert!(first_run.contains("/runs/"));

    // Logout, and a second user sees none of alice's runs or datasets.
    browser.click("header form[action='/logout'] button").await;
    browser
        .wait_for_text("main", "You are signed out.", Duration::from_secs(10))
        .await;
    browser.goto(&url("/runs")).await;
    browser
        .wait_for_text("h1", "Sign in", Duration::from_secs(10))
        .await;
    browser.first_login("bob").await;
    browser
        .wait_for_text("h1", "History", Duration::from_secs(10))
        .await;
    let history = browser.text("main").await;
    let first_id = first_run.rsplit('/').next().unwrap();
    assert!(!history.contains(first_id), "{history}");
    browser.screenshot("07-second-user-history").await;
    browser.goto(&first_run).await;
    browser
        .wait_for_text("h1", "404", Duration::from_secs(10))
        .await;
    browser.goto(&url("/datasets")).await;
    let datasets = browser.text("main").await;
    assert!(!datasets.contains("squad-qa.jsonl"), "{datasets}");
}
