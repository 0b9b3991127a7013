//! The shared-deployment figures of issue 19 (docs/security.md), printed, from the `llm-eval`
//! binary of the profile this benchmark is built with (release under `cargo bench`) running
//! `serve` in local mode against a model double:
//! - the reply to the template-amplification attempt (a 20 KB template of 4,000 `{doc}` over the
//!   sample dataset, `POST /evals/preview`), in bytes;
//! - the server's peak resident memory (`VmHWM`) after 20 such requests at once and one 250 KB
//!   template of 50,000 placeholders;
//! - the session rows stored after 1,000 cookieless `GET /`.
//!
//! Asserts only that each request got an answer. Run with
//! `cargo bench -p llm-eval --bench shared`.

use std::time::Duration;

use tokio::io::AsyncBufReadExt;

fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench());
}

/// A browser's cookie jar of one session cookie.
struct Browser {
    client: reqwest::Client,
    cookie: Option<String>,
}

impl Browser {
    fn new() -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookie: None,
        }
    }

    fn with_cookie(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.cookie {
            Some(cookie) => request.header("cookie", cookie),
            None => request,
        }
    }

    fn remember(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap_or_default();
            if text.starts_with("llm_eval_session=") {
                self.cookie = text.split(';').next().map(str::to_string);
            }
        }
    }

    /// The page's CSRF token (and the session cookie it belongs to).
    async fn csrf_token(&mut self, base: &str) -> String {
        let response = self
            .with_cookie(self.client.get(format!("{base}/datasets")))
            .send()
            .await
            .expect("datasets page");
        self.remember(&response);
        let page = response.text().await.expect("page");
        let marker = "name=\"csrf_token\" value=\"";
        let start = page.find(marker).expect("a form") + marker.len();
        page[start..start + 64].to_string()
    }
}

async fn bench() {
    let models = model_doubles::ModelServer::start(model_doubles::Behavior::default())
        .await
        .expect("double");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_llm-eval"))
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .env("OPENAI_BASE_URL", format!("{}/v1", models.url()))
        .env("OPENAI_API_KEY", "bench")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("llm-eval serve starts");
    let pid = child.id().expect("pid");
    let mut lines = tokio::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("serve starts in time")
        .expect("stderr")
        .expect("a first line");
    let base = first
        .strip_prefix("listening on ")
        .expect("listening on ...")
        .to_string();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let mut browser = Browser::new();
    let token = browser.csrf_token(&base).await;
    let added = browser
        .with_cookie(browser.client.post(format!("{base}/datasets/sample")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            form_urlencoded::Serializer::new(String::new())
                .append_pair("csrf_token", &token)
                .finish(),
        )
        .send()
        .await
        .expect("sample added");
    let dataset = added.headers()["location"]
        .to_str()
        .expect("location")
        .trim_start_matches("/datasets/")
        .to_string();
    let idle_kb = vm_hwm_kb(pid).unwrap_or(0);

    let preview = |template: String| {
        let request = browser
            .with_cookie(browser.client.post(format!("{base}/evals/preview")))
            .header("x-csrf-token", &token)
            .json(&serde_json::json!({"dataset": dataset, "template": template}));
        tokio::spawn(async move {
            let reply = request.send().await.expect("preview answered");
            reply.bytes().await.expect("body").len()
        })
    };
    let one = preview("{doc}".repeat(4_000)).await.expect("preview");
    let mut at_once: Vec<_> = (0..20).map(|_| preview("{doc}".repeat(4_000))).collect();
    at_once.push(preview("{doc}".repeat(50_000)));
    let mut largest = 0;
    for reply in at_once {
        largest = largest.max(reply.await.expect("preview"));
    }
    let peak_kb = vm_hwm_kb(pid).unwrap_or(0);

    let anonymous = reqwest::Client::new();
    for _ in 0..1_000 {
        let status = anonymous
            .get(format!("{base}/"))
            .send()
            .await
            .expect("home page")
            .status();
        assert!(status.is_success(), "GET / answered {status}");
    }
    let conn = rusqlite::Connection::open(dir.path().join("data/store.sqlite")).expect("store");
    let sessions: i64 = conn
        .query_row("SELECT COUNT(*) FROM sessions", [], |row| row.get(0))
        .expect("sessions counted");

    println!(
        "shared deployment (release llm-eval serve, local mode):\n\
         - reply to the amplification attempt (4,000 {{doc}}, 20 KB): {one} bytes\n\
         - 20 such requests at once and one of 50,000 placeholders (250 KB): largest reply {largest} bytes; peak RSS (VmHWM) {:.1} MB (after start-up and the sample: {:.1} MB)\n\
         - session rows after 1,000 cookieless GET /: {sessions}",
        peak_kb as f64 / 1024.0,
        idle_kb as f64 / 1024.0,
    );
    let _ = child.kill().await;
}
