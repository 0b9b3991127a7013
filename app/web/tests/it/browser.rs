//! End-to-end in headless Chromium: Debian's `chromium` driven through `chromedriver` with the
//! `fantoccini` WebDriver client, against a real server on 127.0.0.1. Each journey is one test
//! that clicks, types and picks files through the file input the way a user does, and asserts
//! what the user sees. Screenshots of every page a journey passes are written to
//! `$CARGO_TARGET_DIR/screenshots/` (or `target/screenshots/`) and kept as CI artifacts;
//! downloads are saved by the browser into a folder of the test's own and read back.

#![allow(clippy::unwrap_used)]

mod journey;
mod manage;
mod teams;
mod upload;
mod variants;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fantoccini::Locator;
use serde_json::json;

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

/// How long a page may take to show what a step waits for.
const PAGE_WAIT: Duration = Duration::from_secs(10);

/// A chromedriver process and one browser session.
pub struct Browser {
    client: fantoccini::Client,
    driver: std::process::Child,
    /// Where the browser saves downloads.
    downloads: tempfile::TempDir,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium session with a fresh profile
    /// and a download folder of its own.
    pub async fn start() -> Browser {
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
        let profile = tempfile::tempdir().unwrap();
        let downloads = tempfile::tempdir().unwrap();
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.display().to_string(),
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1366,1000",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
                "prefs": {
                    "download.default_directory": downloads.path().display().to_string(),
                    "download.prompt_for_download": false,
                },
            },
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object")
        };
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = loop {
            // chromedriver needs a moment to listen.
            match fantoccini::ClientBuilder::new(
                hyper_util::client::legacy::connect::HttpConnector::new(),
            )
            .capabilities(capabilities.clone())
            .connect(&url)
            .await
            {
                Ok(client) => break client,
                Err(error) => {
                    assert!(Instant::now() < deadline, "no WebDriver session: {error}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        Browser {
            client,
            driver,
            downloads,
            _profile: profile,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|error| panic!("opening {url}: {error}"));
    }

    pub async fn url(&self) -> String {
        self.client.current_url().await.unwrap().to_string()
    }

    /// The first element matching `css`, waiting for it.
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(PAGE_WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("no element `{css}`: {error}"))
    }

    pub async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|error| panic!("clicking `{css}`: {error}"));
    }

    pub async fn clear_and_type(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        element.clear().await.unwrap();
        element
            .send_keys(text)
            .await
            .unwrap_or_else(|error| panic!("typing into `{css}`: {error}"));
    }

    /// Picks `path` in the file input `css`, as the file chooser does.
    pub async fn pick_file(&self, css: &str, path: &Path) {
        self.find(css)
            .await
            .send_keys(&path.display().to_string())
            .await
            .unwrap_or_else(|error| panic!("picking {} in `{css}`: {error}", path.display()));
    }

    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    /// Waits until `css`'s text contains `needle`, and returns the text.
    pub async fn wait_for_text(&self, css: &str, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            // The page may be replaced between finding the element and reading it (a redirect,
            // the reload at the end of a run): a stale element is read again.
            // Chromium reports a node replaced by a navigation either as a stale element or as
            // "does not belong to the document": both are read again, until the deadline.
            let text = match self.client.find(Locator::Css(css)).await {
                Ok(element) => element.text().await.unwrap_or_default(),
                Err(error) if error.is_no_such_element() => String::new(),
                Err(error) => panic!("finding `{css}`: {error}"),
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
    pub async fn first_login(&self, username: &str) {
        self.clear_and_type("#username", username).await;
        self.clear_and_type("#password", testkit::cognito::TEMPORARY_PASSWORD)
            .await;
        self.click("main form button[type=submit]").await;
        self.wait_for_text("h1", "Choose a new password", PAGE_WAIT)
            .await;
        self.screenshot(&format!("00-new-password-{username}"))
            .await;
        self.clear_and_type("#new_password", testkit::cognito::NEW_PASSWORD)
            .await;
        self.clear_and_type("#confirm_password", testkit::cognito::NEW_PASSWORD)
            .await;
        self.click("main form button[type=submit]").await;
    }

    /// Saves a screenshot of the page as `<name>.png` in the screenshot folder.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(screenshot_dir().join(format!("{name}.png")), png).unwrap();
    }

    /// The file the browser saved under a name ending in `suffix` (the app names downloads
    /// `<run id>-<file>`) in its download folder, once it is complete.
    pub async fn downloaded(&self, suffix: &str) -> Vec<u8> {
        let deadline = Instant::now() + PAGE_WAIT;
        loop {
            // Chromium writes `<name>.crdownload` and renames it when the download is done.
            let names: Vec<String> = std::fs::read_dir(self.downloads.path())
                .unwrap()
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            if let Some(name) = names.iter().find(|name| name.ends_with(suffix)) {
                return std::fs::read(self.downloads.path().join(name)).unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "the browser never saved *{suffix}; the download folder holds {names:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
