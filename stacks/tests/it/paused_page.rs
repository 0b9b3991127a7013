//! The paused page's CloudFront Function, run: its code (`cloudfront-js-2.0`, ES5 syntax plus
//! parts of later versions) is evaluated by headless Chromium's V8 on a viewer-request event
//! of CloudFront's documented shape, and the response it returns must be CloudFront's generated
//! response: status 503, headers as `{value}` objects, a text body naming the way back.
//!
//! Chromium is Debian's `chromium` (`scripts/test.sh` installs it for the browser tests); the
//! test fails without it. It runs the code as the template holds it, so what the test checks is
//! what CloudFront would publish.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use crate::helpers::default_stack;

/// A headless Chromium start takes about 2 s here.
const TIMEOUT: Duration = Duration::from_secs(120);

fn chromium() -> PathBuf {
    let paths = std::env::var_os("PATH").unwrap_or_default();
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|candidate| candidate.is_file())
        })
        .unwrap_or_else(|| panic!("chromium not found on PATH; `bash scripts/test.sh` installs it"))
}

/// What `code`'s `handler` returns for a GET of `uri`, as JSON.
fn run_handler(code: &str, uri: &str) -> Json {
    let dir = tempfile::tempdir().unwrap();
    let event = serde_json::json!({
        "version": "1.0",
        "context": {"distributionDomainName": "d111111abcdef8.cloudfront.net", "distributionId": "EDFDVBD6EXAMPLE", "eventType": "viewer-request", "requestId": "r-1"},
        "viewer": {"ip": "198.51.100.11"},
        "request": {"method": "GET", "uri": uri, "querystring": {}, "headers": {"host": {"value": "d111111abcdef8.cloudfront.net"}}, "cookies": {}}
    });
    // The result is written with `<`, `>` and `&` escaped as JSON escapes, so the dumped DOM
    // holds it verbatim.
    let page = format!(
        "<!doctype html><html><body><pre id=\"out\">no result</pre><script>\n{code}\ntry {{ var result = JSON.stringify(handler({event})); }} catch (err) {{ var result = JSON.stringify({{thrown: String(err)}}); }}\ndocument.getElementById('out').textContent = result.replace(/</g, '\\\\u003c').replace(/>/g, '\\\\u003e').replace(/&/g, '\\\\u0026');\n</script></body></html>"
    );
    let file = dir.path().join("paused.html");
    std::fs::write(&file, page).unwrap();
    let out_path = dir.path().join("dom.html");
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            &format!("--user-data-dir={}", dir.path().join("profile").display()),
            "--dump-dom",
        ])
        .arg(format!("file://{}", file.display()))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|err| panic!("running chromium: {err}"));
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let dom = std::fs::read_to_string(&out_path).unwrap();
    let start = dom
        .find("<pre id=\"out\">")
        .unwrap_or_else(|| panic!("no result element in:\n{dom}"))
        + "<pre id=\"out\">".len();
    let end = start + dom[start..].find("</pre>").unwrap();
    serde_json::from_str(&dom[start..end])
        .unwrap_or_else(|err| panic!("{err}: {}", &dom[start..end]))
}

#[test]
fn the_paused_page_answers_every_path_with_503_and_the_way_back() {
    let app = default_stack("app").template.to_json_value();
    let code = app["Resources"]["PausedPageFunction"]["Properties"]["FunctionCode"]
        .as_str()
        .unwrap()
        .to_owned();
    for uri in ["/", "/runs/42", "/healthz"] {
        let response = run_handler(&code, uri);
        assert!(response.get("thrown").is_none(), "{uri}: {response}");
        assert_eq!(response["statusCode"], 503, "{uri}");
        assert_eq!(response["statusDescription"], "Service Unavailable");
        // CloudFront's generated responses carry headers as lower-case names of `{value}`.
        assert_eq!(
            response["headers"]["content-type"],
            serde_json::json!({"value": "text/html; charset=utf-8"})
        );
        assert_eq!(
            response["headers"]["cache-control"],
            serde_json::json!({"value": "no-store"})
        );
        assert_eq!(response["body"]["encoding"], "text");
        let body = response["body"]["data"].as_str().unwrap();
        assert!(body.contains("This evaluation app is paused"), "{body}");
        assert!(body.contains("<code>deployer resume</code>"), "{body}");
        // No request value reaches the page.
        assert!(
            !body.contains(uri.trim_start_matches('/')) || uri == "/",
            "{body}"
        );
    }
}
