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
    // Slow enough answers to watch the progress move.
    let server = model_doubles::ModelServer::start(model_doubles::Behavior {
        latency: Duration::from_millis(60),
        answer: model_doubles::Answer::Fixed("France".into()),
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
    let summary = browser
        .text("section[aria-labelledby='summary-title'] table")
        .await;
    assert!(summary.contains("openai:m"), "{summary}");
    browser.screenshot("05-results").await;
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
    browser.screenshot("06-compare").await;
    assert!(first_run.contains("/runs/"));

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
    let first_id = first_run.rsplit('/').next().unwrap();
    assert!(!history.contains(first_id), "{history}");
    browser.screenshot("07-second-user-history").await;
    browser.goto(&first_run).await;
    browser.wait_for_text("h1", "404", PAGE_WAIT).await;
    browser.goto(&url("/datasets")).await;
    let datasets = browser.text("main").await;
    assert!(!datasets.contains("squad-qa.jsonl"), "{datasets}");
}
