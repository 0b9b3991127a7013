//! Managing runs in local mode, every button a user presses after starting one: the preview
//! button (the form's own, not the live preview), cancelling a running run, retrying the
//! records that failed, deleting one run, and clearing the whole history.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use model_doubles::{Answer, Behavior, Fault, FaultPlan, When};

use super::{Browser, PAGE_WAIT};

/// How long a run of the 20 sample records may take here.
const RUN_WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_previews_cancels_retries_deletes_and_clears_runs_in_the_browser() {
    // Slow answers, so that a run is still going when Cancel is pressed; the first request for
    // the last record is refused (a 400 is not retried), so the run that reaches it has one
    // failed record.
    let server = model_doubles::ModelServer::start(Behavior {
        latency: Duration::from_millis(300),
        answer: Answer::Fixed("France".into()),
        faults: FaultPlan::none().on_times(
            When::PromptContains("another name for private schools".into()),
            1,
            Fault::Status(400),
        ),
        ..Behavior::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = crate::pages::test_state(&server, dir.path()).await;
    let app = crate::pages::spawn_app_with(state, dir).await;
    let browser = Browser::start().await;
    let url = |path: &str| format!("{}{path}", app.base_url);

    browser.goto(&url("/datasets")).await;
    browser
        .click("form[action='/datasets/sample'] button")
        .await;
    browser
        .wait_for_text("h1", "squad-qa.jsonl", PAGE_WAIT)
        .await;
    browser.click("a.button.primary").await; // Evaluate with this dataset
    browser
        .wait_for_text("h1", "New evaluation", PAGE_WAIT)
        .await;

    // The preview button renders the first records server-side (what a browser without
    // JavaScript gets), keeping what was typed.
    browser
        .clear_and_type("#template", "Where? {question}")
        .await;
    browser.click("button[value='preview']").await;
    browser
        .wait_for_text(
            "#preview",
            "Where? In what country is Normandy located?",
            PAGE_WAIT,
        )
        .await;
    let template = browser.find("#template").await.prop("value").await.unwrap();
    assert_eq!(template.as_deref(), Some("Where? {question}"));
    browser.screenshot("20-preview-button").await;

    // A slow run, named on the form, cancelled while it goes: the records done so far are kept.
    browser.clear_and_type("#name", "Slow try").await;
    browser.clear_and_type("#extra_models", "openai:m").await;
    browser.clear_and_type("#concurrency", "1").await;
    browser.click("button[value='run']").await;
    browser
        .wait_for_text("#run-status", "running", PAGE_WAIT)
        .await;
    browser
        .wait_for_text("#progress-text", "done", PAGE_WAIT)
        .await;
    browser.screenshot("21-before-cancel").await;
    browser
        .click("form[action$='/cancel'] button[type=submit]")
        .await;
    browser
        .wait_for_text("#run-status", "cancelled", RUN_WAIT)
        .await;
    let cancelled = browser.url().await;
    assert_eq!(browser.text("#run-name").await, "Slow try");

    // Renamed after the fact, with notes over several lines.
    browser.click("#notes summary").await;
    browser
        .clear_and_type("#run-name-input", "Cancelled on purpose")
        .await;
    browser
        .clear_and_type("#run-notes-input", "Stopped early.\nRetry it below.")
        .await;
    browser
        .click("form[action$='/notes'] button[type=submit]")
        .await;
    browser
        .wait_for_text("#run-name", "Cancelled on purpose", PAGE_WAIT)
        .await;
    let notes = browser.text("#run-notes").await;
    assert_eq!(notes, "Stopped early.\nRetry it below.");
    let figures = browser.text("main").await;
    assert!(
        figures.contains("Retry failed records"),
        "a cancelled run offers to evaluate the rest: {figures}"
    );
    browser.screenshot("22-cancelled").await;

    // Retrying the cancelled run evaluates what is left (the last record fails once there),
    // and retrying that run evaluates only the failed record.
    browser
        .click("form[action$='/retry'] button[type=submit]")
        .await;
    browser
        .wait_for_text("#run-status", "finished", RUN_WAIT)
        .await;
    let summary = browser
        .wait_for_text(
            "section[aria-labelledby='summary-title']",
            "failed",
            PAGE_WAIT,
        )
        .await;
    assert!(
        summary.contains("1\nfailed") || summary.contains("1 failed"),
        "{summary}"
    );
    let records = browser.text("#records-table").await;
    assert!(
        records.contains("400"),
        "the failed record says why: {records}"
    );
    let with_failure = browser.url().await;
    assert_ne!(with_failure, cancelled);
    browser.screenshot("23-one-failed").await;
    browser
        .click("form[action$='/retry'] button[type=submit]")
        .await;
    browser
        .wait_for_text("#run-status", "finished", RUN_WAIT)
        .await;
    let summary = browser
        .text("section[aria-labelledby='summary-title'] .figures")
        .await;
    assert!(
        summary.contains("20\nsucceeded") || summary.contains("20 succeeded"),
        "{summary}"
    );
    assert!(
        summary.contains("0\nfailed") || summary.contains("0 failed"),
        "{summary}"
    );
    assert!(
        !browser.text("main").await.contains("Retry failed records"),
        "nothing is left to retry"
    );
    browser.screenshot("24-retried").await;

    // Three runs in the history, by name (a retry carries the name of the run it continues);
    // deleting one leaves two.
    browser.goto(&url("/runs")).await;
    assert_eq!(history_rows(&browser).await, 3);
    let history = browser.text("main table").await;
    assert!(history.contains("Cancelled on purpose"), "{history}");
    browser.goto(&with_failure).await;
    browser
        .click("form[action$='/delete'] button[type=submit]")
        .await;
    browser.wait_for_text("h1", "History", PAGE_WAIT).await;
    assert_eq!(history_rows(&browser).await, 2);
    let history = browser.text("main table").await;
    let deleted_id = with_failure.rsplit('/').next().unwrap();
    assert!(!history.contains(deleted_id), "{history}");
    browser.goto(&with_failure).await;
    browser.wait_for_text("h1", "404", PAGE_WAIT).await;

    // Clearing the history needs the confirmation box ticked (the browser refuses the form
    // without it), then deletes every run.
    browser.goto(&url("/runs")).await;
    browser
        .click("form[action='/runs/clear'] button[type=submit]")
        .await;
    assert_eq!(
        history_rows(&browser).await,
        2,
        "unconfirmed: nothing deleted"
    );
    browser
        .click("form[action='/runs/clear'] input[name=confirm]")
        .await;
    browser.screenshot("25-clear-history").await;
    browser
        .click("form[action='/runs/clear'] button[type=submit]")
        .await;
    browser
        .wait_for_text("main", "No runs yet.", PAGE_WAIT)
        .await;
    browser.screenshot("26-history-cleared").await;
}

/// The number of runs the History page lists.
async fn history_rows(browser: &Browser) -> usize {
    browser.wait_for_text("h1", "History", PAGE_WAIT).await;
    browser
        .client
        .find_all(fantoccini::Locator::Css("main table tbody tr"))
        .await
        .unwrap()
        .len()
}
