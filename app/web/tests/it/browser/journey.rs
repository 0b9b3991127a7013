//! The long journey with the Cognito login against a moto server's user pool and the model
//! double behind it: first login with the new-password challenge, sample dataset, template
//! with live preview, a run with live progress, results, downloads saved by the browser, a
//! second run, compare, logout, and a second user who sees none of it.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::Value;

use super::{Browser, PAGE_WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_evaluates_watches_downloads_and_compares_in_the_browser() {
    // Slow enough answers to watch the progress move. "France" to everything, except that the
    // second run's template gets a wrong answer about Normandy: one record regresses.
    let server = model_doubles::ModelServer::start(model_doubles::Behavior {
        latency: Duration::from_millis(60),
        answer: model_doubles::Answer::Map {
            rules: vec![("Q: In what country is Normandy".into(), "Germany".into())],
            default: "France".into(),
        },
        ..model_doubles::Behavior::default()
    })
    .await
    .unwrap();
    let moto = model_doubles::Moto::start().await;
    let pool = testkit::cognito::Pool::create(&moto).await;
    pool.create_user("alice").await;
    pool.create_user("bob").await;
    let login = web::login::CognitoLogin::new(auth::Authenticator::new(pool.config()).await);
    let app = crate::login::spawn_login_app(&server, login).await;
    let browser = Browser::start().await;
    let url = |path: &str| format!("{}{path}", app.base_url);

    // Any page asks for the login first and comes back to it afterwards.
    browser.goto(&url("/datasets")).await;
    browser.wait_for_text("h1", "Sign in", PAGE_WAIT).await;
    assert!(browser.url().await.ends_with("/login?next=%2Fdatasets"));
    browser.screenshot("00-login").await;
    browser.first_login("alice").await;
    browser.wait_for_text("h1", "Datasets", PAGE_WAIT).await;
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
        .wait_for_text("h1", "squad-qa.jsonl", PAGE_WAIT)
        .await;
    browser.screenshot("02-dataset").await;

    browser.click("a.button.primary").await; // Evaluate with this dataset
    browser
        .wait_for_text("h1", "New evaluation", PAGE_WAIT)
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
            PAGE_WAIT,
        )
        .await;
    browser.clear_and_type("#extra_models", "openai:m").await;
    browser.clear_and_type("#concurrency", "2").await;
    browser.screenshot("03-new-evaluation").await;
    browser.click("button[value='run']").await;

    // Live progress, then the results (the page reloads when the run ends).
    browser
        .wait_for_text("#run-status", "running", PAGE_WAIT)
        .await;
    browser.screenshot("04-run-progress").await;
    browser
        .wait_for_text("#run-status", "finished", Duration::from_secs(60))
        .await;
    browser
        .wait_for_text("#summary-title", "Summary", PAGE_WAIT)
        .await;
    // The run names its dataset as it was added, not by its stored file.
    let header = browser.text("main").await;
    assert!(
        header.contains("dataset squad-qa.jsonl (sample)"),
        "{header}"
    );
    let summary = browser
        .text("section[aria-labelledby='summary-title'] table")
        .await;
    assert!(summary.contains("openai:m"), "{summary}");
    browser.screenshot("05-results").await;
    // At 1366 px the summary fits without a horizontal scroll, and no two labels of a chart
    // overlap as Chromium lays them out.
    let widths = browser
        .client
        .execute(
            "const s = document.getElementById('summary-scroll'); return [s.scrollWidth, s.clientWidth];",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        widths[0].as_f64() <= widths[1].as_f64(),
        "summary scrolls: {widths}"
    );
    let overlaps = browser
        .client
        .execute(
            "// Each label's laid-out box (getBBox, in its own turned frame), its corners taken
             // into the frame of its left neighbour: labels turned alike are then compared as
             // upright boxes, so only glyph boxes that really meet count.
             const box = (t, frame) => {
               const b = t.getBBox(), m = frame.getCTM().inverse().multiply(t.getCTM());
               const ps = [[b.x, b.y], [b.x + b.width, b.y], [b.x, b.y + b.height],
                           [b.x + b.width, b.y + b.height]]
                 .map(([x, y]) => new DOMPoint(x, y).matrixTransform(m));
               const xs = ps.map(p => p.x), ys = ps.map(p => p.y);
               return {l: Math.min(...xs), r: Math.max(...xs), t: Math.min(...ys), b: Math.max(...ys)};
             };
             const found = [];
             for (const svg of document.querySelectorAll('.charts svg')) {
               const labels = [...svg.querySelectorAll('text.x-label')];
               for (let i = 0; i + 1 < labels.length; i++) {
                 const a = box(labels[i], labels[i]), b = box(labels[i + 1], labels[i]);
                 const apart = a.r <= b.l || b.r <= a.l || a.b <= b.t || b.b <= a.t;
                 if (!apart) found.push([svg.getAttribute('aria-label'), i]);
               }
             }
             return [found, document.querySelectorAll('.charts svg text.x-label').length];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        overlaps[0],
        serde_json::json!([]),
        "overlapping chart labels: {overlaps}"
    );
    assert!(
        overlaps[1].as_u64().unwrap() > 0,
        "the charts have x labels"
    );
    let first_run = browser.url().await;

    // Each download button saves its file through the browser: the summary, one JSON line
    // per record, the CSV.
    browser.click("a[href$='/summary.json']").await;
    browser.click("a[href$='/records.jsonl']").await;
    browser.click("a[href$='/records.csv']").await;
    let summary: Value = serde_json::from_slice(&browser.downloaded("summary.json").await).unwrap();
    assert_eq!(summary["models"][0]["model"], "openai:m", "{summary}");
    let records = String::from_utf8(browser.downloaded("records.jsonl").await).unwrap();
    assert_eq!(records.lines().count(), 20, "records.jsonl");
    let csv_text = String::from_utf8(browser.downloaded("records.csv").await).unwrap();
    assert!(
        csv_text.starts_with("model_input,prompt,model_output,target_output,category,f1_score"),
        "records.csv"
    );
    assert_eq!(
        csv::Reader::from_reader(csv_text.as_bytes())
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
    let history = browser.text("main table").await;
    assert!(history.contains("squad-qa.jsonl (sample)"), "{history}");
    browser
        .click("tbody tr:nth-child(1) input[type=checkbox]")
        .await;
    browser
        .click("tbody tr:nth-child(2) input[type=checkbox]")
        .await;
    browser.click("form[action='/compare'] button").await;
    browser
        .wait_for_text("h1", "Compare 2 runs", PAGE_WAIT)
        .await;
    let config = browser.text("main table").await;
    assert!(config.contains("Q: {question}"), "{config}");
    assert!(config.contains("squad-qa.jsonl (sample)"), "{config}");
    browser.screenshot("06-compare").await;

    // The first run as the baseline, records that regressed on f1_score: the Normandy record,
    // with the second run's wrong answer beside the baseline's.
    let first_id = first_run.rsplit('/').next().unwrap();
    browser
        .find("#baseline")
        .await
        .select_by_value(first_id)
        .await
        .unwrap();
    browser
        .find("#metric")
        .await
        .select_by_value("f1_score")
        .await
        .unwrap();
    browser
        .find("#show")
        .await
        .select_by_value("regressed")
        .await
        .unwrap();
    browser.click("#compare-view button[type=submit]").await;
    let changes = browser
        .wait_for_text("#changes-title", "f1_score", PAGE_WAIT)
        .await;
    assert!(changes.contains("f1_score"), "{changes}");
    let counts = browser.text("#changes tbody").await;
    // One line (the second run against the baseline): 0 improved, 1 regressed, 19 unchanged.
    assert!(
        counts.contains("0 1 19 0") || counts.contains("0\t1\t19\t0"),
        "{counts}"
    );
    let regressed = browser.text("#compare-records").await;
    assert!(
        regressed.contains("Normandy") && regressed.contains("Germany"),
        "{regressed}"
    );
    assert_eq!(
        browser
            .client
            .find_all(fantoccini::Locator::Css("#compare-records tbody tr"))
            .await
            .unwrap()
            .len(),
        1
    );
    browser.screenshot("06-compare-regressions").await;

    // Logout, and a second user sees none of alice's runs or datasets.
    browser.click("header form[action='/logout'] button").await;
    browser
        .wait_for_text("main", "You are signed out.", PAGE_WAIT)
        .await;
    browser.goto(&url("/runs")).await;
    browser.wait_for_text("h1", "Sign in", PAGE_WAIT).await;
    browser.first_login("bob").await;
    browser.wait_for_text("h1", "History", PAGE_WAIT).await;
    let history = browser.text("main").await;
    assert!(!history.contains(first_id), "{history}");
    browser.screenshot("07-second-user-history").await;
    browser.goto(&first_run).await;
    browser.wait_for_text("h1", "404", PAGE_WAIT).await;
    browser.goto(&url("/datasets")).await;
    let datasets = browser.text("main").await;
    assert!(!datasets.contains("squad-qa.jsonl"), "{datasets}");
}
