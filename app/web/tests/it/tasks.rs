//! Classification and summarization from the web app, over HTTP: the samples offered by the
//! "add a sample" buttons, the form's task selector and its fields, the results page's
//! confusion matrix and per-category table, and the form's task errors.

#![allow(clippy::unwrap_used)]

use reqwest::StatusCode;

use crate::pages::{TestApp, spawn_app, wait_for_run};

/// Adds the sample `name`; returns its dataset id.
async fn add_named_sample(app: &TestApp, name: &str) -> String {
    let token = app.csrf_token().await;
    let added = app
        .post_form(
            &format!("/datasets/sample?name={name}"),
            &[("csrf_token", &token)],
        )
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    added
        .location()
        .trim_start_matches("/datasets/")
        .to_string()
}

async fn start(app: &TestApp, fields: &[(&str, &str)]) -> crate::pages::Page {
    let token = app.csrf_token().await;
    let mut all = vec![
        ("csrf_token", token.as_str()),
        ("extra_models", "openai:m"),
        ("selection", "all"),
        ("concurrency", "4"),
        ("max_attempts", "2"),
        ("timeout", "10"),
        ("action", "run"),
    ];
    all.extend_from_slice(fields);
    app.post_form("/evals", &all).await
}

#[tokio::test]
async fn classification_from_the_form_shows_the_confusion_matrix_and_categories() {
    let server = crate::helpers::start(
        model_doubles::Answer::Map {
            rules: vec![("Worth".into(), "positive".into())],
            default: "negative".into(),
        },
        model_doubles::FaultPlan::none(),
    )
    .await;
    let app = spawn_app(&server).await;
    let datasets = app.get("/datasets").await;
    assert!(
        datasets
            .body
            .contains("Add the sample reviews-classification dataset")
            && datasets
                .body
                .contains("Add the sample news-summarization dataset"),
        "{}",
        datasets.body
    );
    let form = app.get("/evals/new").await;
    for needle in [
        "name=\"task\"",
        "value=\"classification\"",
        "name=\"labels\"",
        "name=\"category_field\"",
        "data-tasks=\"classification\"",
    ] {
        assert!(form.body.contains(needle), "{needle}: {}", form.body);
    }

    let dataset = add_named_sample(&app, "reviews-classification").await;
    let started = start(
        &app,
        &[
            ("dataset", &dataset),
            ("reference_field", "label"),
            ("template", "Sentiment: {text}"),
            ("task", "classification"),
            ("metrics", "classification_accuracy"),
            ("category_field", "category"),
            ("average", "macro"),
        ],
    )
    .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    let run_id = started.location().trim_start_matches("/runs/").to_string();
    let progress = wait_for_run(&app, &run_id).await;
    assert_eq!(progress["status"], "finished");
    assert_eq!(progress["done"], 24);

    let page = app.get(&format!("/runs/{run_id}")).await;
    for needle in [
        "Confusion matrix",
        "balanced_accuracy_score",
        "precision_score",
        "macro average",
        "Scores per category",
        "electronics",
        "kitchen",
    ] {
        assert!(page.body.contains(needle), "{needle}: {}", page.body);
    }
    // Every negative review is predicted negative: 9 in that cell.
    assert!(
        page.body
            .contains("<th scope=\"row\">negative</th><td class=\"num\">9</td>"),
        "{}",
        page.body
    );

    // The clone of the run keeps its task.
    let clone = app.get(&format!("/evals/new?from={run_id}")).await;
    assert!(
        clone
            .body
            .contains("<option value=\"classification\" selected>"),
        "{}",
        clone.body
    );

    // A metric of another task is refused next to the metrics.
    let refused = start(
        &app,
        &[
            ("dataset", &dataset),
            ("reference_field", "label"),
            ("template", "Sentiment: {text}"),
            ("task", "summarization"),
            ("metrics", "classification_accuracy"),
        ],
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(
        refused.body.contains("not one of the summarization task"),
        "{}",
        refused.body
    );
}

#[tokio::test]
async fn summarization_from_the_form_scores_rouge() {
    let server = crate::helpers::start(
        model_doubles::Answer::Fixed("The council voted for a cycle path.".into()),
        model_doubles::FaultPlan::none(),
    )
    .await;
    let app = spawn_app(&server).await;
    let dataset = add_named_sample(&app, "news-summarization").await;
    let started = start(
        &app,
        &[
            ("dataset", &dataset),
            ("reference_field", "summary"),
            ("template", "Summarize: {document}"),
            ("task", "summarization"),
            ("metrics", "summarization_accuracy"),
        ],
    )
    .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    let run_id = started.location().trim_start_matches("/runs/").to_string();
    assert_eq!(wait_for_run(&app, &run_id).await["status"], "finished");
    let page = app.get(&format!("/runs/{run_id}")).await;
    for needle in [
        "rouge1",
        "rouge2",
        "rougeL",
        "Scores per category",
        "weather",
        // A chart per score of its mean per category, with its text alternative.
        "<title>Mean rouge1 per category</title>",
        "<title>Mean rougeL per category</title>",
    ] {
        assert!(page.body.contains(needle), "{needle}: {}", page.body);
    }
    let unknown = app
        .post_form(
            "/datasets/sample?name=nope",
            &[("csrf_token", &app.csrf_token().await)],
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn robustness_from_the_form_shows_the_perturbed_prompts() {
    let server = crate::helpers::start(
        model_doubles::Answer::Fixed("positive".into()),
        model_doubles::FaultPlan::none(),
    )
    .await;
    let app = spawn_app(&server).await;
    let dataset = add_named_sample(&app, "reviews-classification").await;
    let started = start(
        &app,
        &[
            ("dataset", &dataset),
            ("reference_field", "label"),
            ("template", "Sentiment: {text}"),
            ("task", "classification"),
            ("metrics", "classification_accuracy_semantic_robustness"),
            ("perturbation", "random_upper_case"),
            ("perturb_field", "text"),
            ("selection", "first"),
            ("count", "2"),
        ],
    )
    .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    let run_id = started.location().trim_start_matches("/runs/").to_string();
    assert_eq!(wait_for_run(&app, &run_id).await["status"], "finished");
    // 2 records × (1 + 5) calls.
    assert_eq!(server.stats().requests, 12);
    let page = app.get(&format!("/runs/{run_id}")).await;
    for needle in ["5 perturbed prompts", "delta_classification_accuracy_score"] {
        assert!(page.body.contains(needle), "{needle}: {}", page.body);
    }
    let mut perturber = fmeval_scoring::perturbation::Perturber::new(
        fmeval_scoring::perturbation::Perturbation::RandomUpperCase,
    );
    let first = perturber
        .perturb("The battery lasts two full days and the screen is bright even outdoors.");
    assert!(
        page.body.contains(&format!("Sentiment: {}", first[0])),
        "{}",
        page.body
    );
    // A perturbed field the template does not have is refused next to the task settings.
    let refused = start(
        &app,
        &[
            ("dataset", &dataset),
            ("reference_field", "label"),
            ("template", "Sentiment: {text}"),
            ("task", "classification"),
            ("metrics", "classification_accuracy_semantic_robustness"),
            ("perturb_field", "label"),
        ],
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("the perturbed field `label` is not a field of the template")
            && refused.body.contains("id=\"task-error\"")
            && refused
                .body
                .contains("name=\"perturb_field\" value=\"label\""),
        "{}",
        refused.body
    );
}
