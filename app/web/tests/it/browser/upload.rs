//! Uploading datasets through the Datasets page's file input, in local mode: a JSON Lines file
//! and a CSV file (Chromium sends its multipart boundary with capital letters, which the CSRF
//! guard once lowercased and refused with 403), a file with a broken line (its `file:line`
//! shown on the dataset's page), a file that cannot be read at all and a file of another kind
//! (the reason shown beside the file input).

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use super::{Browser, PAGE_WAIT};

/// Picks `path` on the Datasets page and presses Upload.
async fn upload(browser: &Browser, base_url: &str, path: &Path) {
    browser.goto(&format!("{base_url}/datasets")).await;
    browser.pick_file("#file", path).await;
    browser
        .click("form[action='/datasets'] button[type=submit]")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_uploads_jsonl_and_csv_files_and_sees_what_is_wrong_with_bad_ones() {
    let server = crate::helpers::start(
        model_doubles::Answer::Fixed("France".into()),
        model_doubles::FaultPlan::default(),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut state = crate::pages::test_state(&server, dir.path()).await;
    state.config = Arc::new(web::WebConfig {
        max_upload_bytes: 1024 * 1024,
        ..(*state.config).clone()
    });
    let app = crate::pages::spawn_app_with(state, dir).await;
    let files = tempfile::tempdir().unwrap();
    let browser = Browser::start().await;

    // A JSON Lines file: the dataset's page names it, counts its records and lists its fields.
    let jsonl = files.path().join("My Questions.jsonl");
    std::fs::copy(crate::helpers::squad_jsonl(), &jsonl).unwrap();
    upload(&browser, &app.base_url, &jsonl).await;
    browser
        .wait_for_text("h1", "My Questions.jsonl", PAGE_WAIT)
        .await;
    let figures = browser.text(".figures").await;
    assert!(
        figures.contains("20\nrecords") || figures.contains("20 records"),
        "{figures}"
    );
    let fields = browser.text("main").await;
    assert!(
        fields.contains("question") && fields.contains("answers"),
        "{fields}"
    );
    browser.screenshot("10-upload-jsonl").await;

    // A CSV file with a header row.
    let csv = files.path().join("questions.csv");
    std::fs::copy(crate::helpers::squad_csv(), &csv).unwrap();
    upload(&browser, &app.base_url, &csv).await;
    browser
        .wait_for_text("h1", "questions.csv", PAGE_WAIT)
        .await;
    let page = browser.text("main").await;
    assert!(page.contains("Reference Answer(s)"), "{page}");
    browser.screenshot("11-upload-csv").await;

    // A file with one broken line is kept; its page says which line cannot be read.
    let broken = files.path().join("broken.jsonl");
    std::fs::write(
        &broken,
        "{\"question\": \"a?\", \"answers\": \"x\"}\n{\"question\": \"b?\", \"answers\": \"y\"}\n{\"question\": \"c?\", \n",
    )
    .unwrap();
    upload(&browser, &app.base_url, &broken).await;
    browser.wait_for_text("h1", "broken.jsonl", PAGE_WAIT).await;
    let problems = browser
        .wait_for_text("section.errors", "broken.jsonl:3", PAGE_WAIT)
        .await;
    assert!(
        problems.contains("1 record(s) cannot be read"),
        "{problems}"
    );
    browser.screenshot("12-upload-broken-line").await;

    // A file no record of which can be read is refused, with its file:line.
    let garbage = files.path().join("garbage.jsonl");
    std::fs::write(&garbage, "this is not JSON\n").unwrap();
    upload(&browser, &app.base_url, &garbage).await;
    let error = browser
        .wait_for_text("#file-error", "garbage.jsonl:1", PAGE_WAIT)
        .await;
    assert!(
        !error.contains(&app.dir.path().display().to_string()),
        "{error}"
    );
    browser.screenshot("13-upload-unreadable").await;

    // A file of another kind is refused with the kinds that can be uploaded.
    let notes = files.path().join("notes.txt");
    std::fs::write(&notes, "question,answers\n").unwrap();
    upload(&browser, &app.base_url, &notes).await;
    browser
        .wait_for_text(
            "#file-error",
            "only JSON Lines (.jsonl) and CSV (.csv)",
            PAGE_WAIT,
        )
        .await;
    browser.screenshot("14-upload-wrong-kind").await;

    // The list shows the three kept datasets by the names they were uploaded with.
    browser.goto(&format!("{}/datasets", app.base_url)).await;
    let list = browser.text("section[aria-labelledby='yours'] table").await;
    for name in ["My Questions.jsonl", "questions.csv", "broken.jsonl"] {
        assert!(list.contains(name), "{name} in {list}");
    }
    assert!(
        !list.contains("garbage.jsonl") && !list.contains("notes.txt"),
        "{list}"
    );
}
