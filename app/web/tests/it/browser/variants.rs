//! Prompt variants in the browser: the user adds variants to the form (each with its own
//! label and live preview), removes one, runs two variants with two models, and reads the
//! matrix of variants × models with the best cell marked, then filters the records to one
//! variant.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use model_doubles::{Answer, Behavior};

use super::{Browser, PAGE_WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_compares_prompt_variants_side_by_side_in_the_browser() {
    // "France" only to prompts that end with "Country:": the hinted variant wins.
    let server = model_doubles::ModelServer::start(Behavior {
        answer: Answer::from_fn(|prompt| {
            if prompt.text.trim_end().ends_with("Country:") {
                "France".to_string()
            } else {
                "Unsure".to_string()
            }
        }),
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
    browser.click("a.button.primary").await;
    browser
        .wait_for_text("h1", "New evaluation", PAGE_WAIT)
        .await;
    browser.clear_and_type("#name", "Hint or not").await;
    browser.clear_and_type("#template", "Q: {question}").await;

    // Two variants added (the form comes back with everything typed), the second removed.
    browser.click("#add-variant").await;
    browser.find("#template-1").await;
    assert_eq!(
        browser
            .find("#template")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("Q: {question}")
    );
    browser.clear_and_type("#variant_label-1", "hint").await;
    browser
        .clear_and_type("#template-1", "Q: {question}\nCountry:")
        .await;
    // Its own live preview follows the typing.
    browser
        .wait_for_text("#preview-1", "Country:", PAGE_WAIT)
        .await;
    browser.click("#add-variant").await;
    browser.find("#template-2").await;
    browser
        .clear_and_type("#template-2", "Third: {question}")
        .await;
    browser.screenshot("30-three-variants").await;
    browser.click("button[value='remove_variant_1']").await;
    browser
        .wait_for_text("h1", "New evaluation", PAGE_WAIT)
        .await;
    assert!(
        browser
            .client
            .find(fantoccini::Locator::Css("#template-2"))
            .await
            .is_err(),
        "the third variant is gone"
    );
    assert_eq!(
        browser
            .find("#template-1")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("Q: {question}\nCountry:")
    );
    assert_eq!(
        browser
            .find("#variant_label-1")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("hint")
    );

    browser
        .clear_and_type("#extra_models", "openai:m1\nopenai:m2")
        .await;
    browser.clear_and_type("#concurrency", "4").await;
    // The cost before anything is called: 20 records × 2 variants × 2 models.
    browser.click("button[value='estimate']").await;
    let estimate = browser.wait_for_text("#estimate", "80", PAGE_WAIT).await;
    assert!(estimate.contains("model calls"), "{estimate}");
    assert_eq!(
        browser
            .client
            .find_all(fantoccini::Locator::Css("#estimate-table tbody tr"))
            .await
            .unwrap()
            .len(),
        4
    );
    // Everything typed is still there.
    assert_eq!(
        browser
            .find("#template-1")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("Q: {question}\nCountry:")
    );
    browser.screenshot("31-variants-form").await;
    browser.click("button[value='run']").await;
    browser
        .wait_for_text("#run-status", "finished", Duration::from_secs(60))
        .await;
    browser
        .wait_for_text("#matrix-title", "Variants × models", PAGE_WAIT)
        .await;
    assert_eq!(browser.text("#run-name").await, "Hint or not");

    // The f1_score matrix: rows A and hint, columns the two models, the best cell marked in
    // the hinted row.
    let matrix = browser.text("table.matrix[data-score='f1_score']").await;
    assert!(
        matrix.contains("openai:m1") && matrix.contains("openai:m2"),
        "{matrix}"
    );
    let best = browser
        .text("table.matrix[data-score='f1_score'] td.best")
        .await;
    assert!(best.contains('★'), "{best}");
    let best_row = browser
        .client
        .execute(
            "return document.querySelector(\"table.matrix[data-score='f1_score'] td.best\").parentElement.querySelector('th').textContent;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(best_row, "hint");
    let summary = browser.text("#summary-table").await;
    assert!(summary.contains("hint"), "{summary}");
    browser
        .client
        .execute(
            "document.getElementById('summary-title').scrollIntoView();",
            vec![],
        )
        .await
        .unwrap();
    browser.screenshot("32-variants-matrix").await;

    // The records of one variant: 20 records × 2 models.
    browser
        .find("#variant")
        .await
        .select_by_value("hint")
        .await
        .unwrap();
    browser.click("#records form button[type=submit]").await;
    browser
        .wait_for_text("#records", "40 matching", PAGE_WAIT)
        .await;
    let rows = browser.text("#records-table tbody").await;
    assert!(rows.contains("hint · openai:m1"), "{rows}");
    assert!(!rows.contains("A · openai"), "{rows}");
    browser.screenshot("33-variant-records").await;

    // One record per row: the four columns side by side; the records where variant A is worse
    // than the hinted one with the same model, searched for Normandy.
    browser.click("#side-link").await;
    browser
        .wait_for_text("h1", "Records side by side", PAGE_WAIT)
        .await;
    let header = browser.text("#side-table thead").await;
    for column in [
        "A · openai:m1",
        "A · openai:m2",
        "hint · openai:m1",
        "hint · openai:m2",
    ] {
        assert!(header.contains(column), "{header}");
    }
    browser
        .wait_for_text("#side-count", "20 matching", PAGE_WAIT)
        .await;
    browser
        .find("#show")
        .await
        .select_by_value("worse")
        .await
        .unwrap();
    browser.find("#a").await.select_by_value("2").await.unwrap();
    browser.find("#b").await.select_by_value("0").await.unwrap();
    browser.clear_and_type("#q", "normandy").await;
    browser.click("#side-view button[type=submit]").await;
    browser
        .wait_for_text("#side-count", "1 matching", PAGE_WAIT)
        .await;
    let row = browser.text("#side-table tbody").await;
    assert!(row.contains("France") && row.contains("Unsure"), "{row}");
    browser.screenshot("34-side-by-side").await;
}
