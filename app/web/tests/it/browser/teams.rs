//! Workshops as teams (issue 22) in the browser, with three users signed in through moto's
//! Cognito: fran (in the `facilitators` group), alice and bob. The facilitator sees and
//! cancels a participant's run (recorded and shown to its owner); a participant gets 404 for
//! another's unshared run, reads and clones a shared one and cannot change it; a token without
//! the group claim gets no facilitator view, whatever form field or header it forges; a
//! challenge ranks two participants and updates, live, when a better run finishes; the
//! facilitator exports and closes it.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use model_doubles::{Answer, Behavior};
use serde_json::json;

use super::{Browser, PAGE_WAIT};

/// How long a run of the sample's 20 records (300 ms a call, one at a time) may take.
const RUN_WAIT: Duration = Duration::from_secs(60);

/// Signs `username` in again (their password is set).
async fn login(browser: &Browser, username: &str) {
    browser.wait_for_text("h1", "Sign in", PAGE_WAIT).await;
    browser.clear_and_type("#username", username).await;
    browser
        .clear_and_type("#password", testkit::cognito::NEW_PASSWORD)
        .await;
    browser.click("main form button[type=submit]").await;
}

async fn logout(browser: &Browser) {
    browser.click("header form[action='/logout'] button").await;
    browser
        .wait_for_text("main", "You are signed out.", PAGE_WAIT)
        .await;
}

/// Fills the evaluation form (already open) and starts the run; returns the run's page URL.
async fn start_run(browser: &Browser, name: &str, template: &str, first: Option<usize>) -> String {
    browser
        .wait_for_text("h1", "New evaluation", PAGE_WAIT)
        .await;
    browser.clear_and_type("#name", name).await;
    browser.clear_and_type("#template", template).await;
    browser.clear_and_type("#extra_models", "openai:m").await;
    browser.clear_and_type("#concurrency", "1").await;
    // The form keeps the user's last settings: the selection is chosen every time.
    match first {
        Some(n) => {
            browser
                .click("input[name='selection'][value='first']")
                .await;
            browser.clear_and_type("#count", &n.to_string()).await;
        }
        None => {
            browser.click("input[name='selection'][value='all']").await;
        }
    }
    browser.click("button[value='run']").await;
    browser.wait_for_text("#run-name", name, PAGE_WAIT).await;
    browser.url().await
}

/// The HTTP status of a `fetch` the page makes (same origin, its session cookie), with the
/// page's CSRF token added to a form body.
async fn fetch_status(browser: &Browser, method: &str, path: &str, form: serde_json::Value) -> u64 {
    let status = browser
        .client
        .execute_async(
            "const [method, path, form, done] = arguments;
             const token = document.querySelector('input[name=csrf_token]').value;
             const init = {method, headers: {
               'X-Facilitator': 'true', 'X-Cognito-Groups': 'facilitators',
               'X-Amzn-Oidc-Data': 'forged'}};
             if (method === 'POST') {
               init.headers['Content-Type'] = 'application/x-www-form-urlencoded';
               init.body = new URLSearchParams({...form, csrf_token: token}).toString();
             }
             fetch(path, init).then(r => done(r.status), e => done(String(e)));",
            vec![json!(method), json!(path), form],
        )
        .await
        .unwrap();
    status
        .as_u64()
        .unwrap_or_else(|| panic!("fetch {path}: {status}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workshop_shares_runs_facilitates_and_ranks_a_challenge_in_the_browser() {
    // A template asking for a guess gets a wrong answer; every other prompt gets "France"
    // (right for the first record, about Normandy): alice's wording beats bob's.
    let server = model_doubles::ModelServer::start(Behavior {
        latency: Duration::from_millis(300),
        answer: Answer::Map {
            rules: vec![("Guess:".into(), "Germany".into())],
            default: "France".into(),
        },
        ..Behavior::default()
    })
    .await
    .unwrap();
    let moto = model_doubles::Moto::start().await;
    let pool = testkit::cognito::Pool::create(&moto).await;
    for user in ["fran", "alice", "bob"] {
        pool.create_user(user).await;
    }
    let admin = testkit::cognito::admin(moto.url());
    admin
        .create_group()
        .user_pool_id(&pool.pool_id)
        .group_name("facilitators")
        .send()
        .await
        .unwrap();
    admin
        .admin_add_user_to_group()
        .user_pool_id(&pool.pool_id)
        .username("fran")
        .group_name("facilitators")
        .send()
        .await
        .unwrap();
    let login_layer = web::login::CognitoLogin::new(auth::Authenticator::new(pool.config()).await);
    let app = crate::login::spawn_login_app(&server, login_layer).await;
    let url = |path: &str| format!("{}{path}", app.base_url);
    let facilitator = Browser::start().await;
    let participant = Browser::start().await;

    // Everyone signs in once (sharing names users who have).
    facilitator.goto(&url("/")).await;
    facilitator.first_login("fran").await;
    facilitator
        .wait_for_text("header .user", "fran", PAGE_WAIT)
        .await;
    facilitator.find("#team-link").await;
    participant.goto(&url("/")).await;
    participant.first_login("bob").await;
    participant
        .wait_for_text("header .user", "bob", PAGE_WAIT)
        .await;
    logout(&participant).await;
    participant.goto(&url("/datasets")).await;
    participant.first_login("alice").await;
    participant.wait_for_text("h1", "Datasets", PAGE_WAIT).await;
    let users = app.state.store.known_users(10).await.unwrap();
    let id_of = |name: &str| {
        users
            .iter()
            .find(|user| user.name == name)
            .unwrap()
            .id
            .as_str()
            .to_string()
    };
    let alice_id = id_of("alice");

    // Alice starts a slow run; the facilitator finds it on the Team page and cancels it.
    participant
        .click("form[action='/datasets/sample'] button")
        .await;
    participant
        .wait_for_text("h1", "squad-qa.jsonl", PAGE_WAIT)
        .await;
    let dataset_url = participant.url().await;
    participant.click("a.button.primary").await;
    let slow_run = start_run(
        &participant,
        "Alice slow",
        "Answer briefly: {question}",
        None,
    )
    .await;
    participant
        .wait_for_text("#run-status", "running", PAGE_WAIT)
        .await;
    facilitator.goto(&url("/team")).await;
    let row = facilitator
        .wait_for_text("#team-runs", "Alice slow", PAGE_WAIT)
        .await;
    assert!(row.contains("alice"), "{row}");
    facilitator.screenshot("40-team").await;
    facilitator.click("#team-runs a").await;
    facilitator
        .wait_for_text("#read-only", "belongs to alice", PAGE_WAIT)
        .await;
    let page = facilitator.text("main").await;
    assert!(page.contains("Facilitator's view"), "{page}");
    assert!(
        facilitator
            .client
            .find(fantoccini::Locator::Css("#run-notes-input"))
            .await
            .is_err(),
        "a facilitator cannot rename another user's run"
    );
    facilitator
        .click("form[action$='/cancel'] button[type=submit]")
        .await;
    facilitator
        .wait_for_text("#run-status", "cancelled", RUN_WAIT)
        .await;
    facilitator.screenshot("41-facilitator-cancelled").await;
    // Alice sees who did it, on the run.
    participant.goto(&slow_run).await;
    let audit = participant
        .wait_for_text("#audit", "cancelled the run", PAGE_WAIT)
        .await;
    assert!(audit.contains("fran"), "{audit}");
    participant.screenshot("42-audit-shown-to-owner").await;

    // Alice shares a finished run with bob, and the dataset with everyone.
    participant.goto(&dataset_url).await;
    participant.click("a.button.primary").await;
    let shared_run = start_run(
        &participant,
        "Alice shared",
        "Answer briefly: {question}",
        Some(3),
    )
    .await;
    participant
        .wait_for_text("#run-status", "finished", RUN_WAIT)
        .await;
    participant.click("#sharing summary").await;
    participant.clear_and_type("#share-user", "bob").await;
    participant.click("#share-run button[type=submit]").await;
    participant.wait_for_text("#grants", "bob", PAGE_WAIT).await;
    participant.goto(&dataset_url).await;
    participant.click("#sharing summary").await;
    participant
        .click("#share-dataset input[name='everyone']")
        .await;
    participant
        .click("#share-dataset button[type=submit]")
        .await;
    participant
        .wait_for_text("#grants", "everyone", PAGE_WAIT)
        .await;
    logout(&participant).await;

    // Bob: 404 for alice's unshared run, even naming its owner.
    participant.goto(&url("/shared")).await;
    login(&participant, "bob").await;
    participant
        .wait_for_text("h1", "Shared with me", PAGE_WAIT)
        .await;
    let slow_id = slow_run.rsplit('/').next().unwrap().to_string();
    participant
        .goto(&url(&format!("/runs/{slow_id}?owner={alice_id}")))
        .await;
    participant.wait_for_text("h1", "404", PAGE_WAIT).await;
    // The shared run is listed with its owner, and reads read only.
    participant.goto(&url("/shared")).await;
    let shared = participant
        .wait_for_text("#shared-runs", "Alice shared", PAGE_WAIT)
        .await;
    assert!(shared.contains("alice"), "{shared}");
    participant.screenshot("43-shared-with-me").await;
    participant.click("#shared-runs td a").await;
    participant
        .wait_for_text("#read-only", "belongs to alice", PAGE_WAIT)
        .await;
    participant
        .wait_for_text("#summary-title", "Summary", PAGE_WAIT)
        .await;
    for absent in ["#run-notes-input", "form[action$='/delete']", "#share-run"] {
        assert!(
            participant
                .client
                .find(fantoccini::Locator::Css(absent))
                .await
                .is_err(),
            "{absent} on a shared run"
        );
    }
    // Changing it anyway: every change is refused as for a run that does not exist.
    let shared_id = shared_run.rsplit('/').next().unwrap().to_string();
    for (path, form) in [
        (
            format!("/runs/{shared_id}/notes"),
            json!({"name": "Bob's now", "notes": "", "owner": alice_id}),
        ),
        (
            format!("/runs/{shared_id}/delete"),
            json!({"owner": alice_id}),
        ),
        (
            format!("/runs/{shared_id}/unshare"),
            json!({"grantee": id_of("bob")}),
        ),
    ] {
        let status = fetch_status(&participant, "POST", &path, form).await;
        assert_eq!(status, 404, "{path}");
    }
    let still = app
        .state
        .store
        .run(&store::UserId::new(&alice_id), &shared_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(still.name, "Alice shared");
    // No facilitator view for bob's token (no group claim), whatever the request claims.
    assert!(
        participant
            .client
            .find(fantoccini::Locator::Css("#team-link"))
            .await
            .is_err()
    );
    assert_eq!(
        fetch_status(
            &participant,
            "GET",
            "/team?facilitator=1&role=facilitator",
            json!({})
        )
        .await,
        403
    );
    assert_eq!(
        fetch_status(
            &participant,
            "POST",
            &format!("/runs/{slow_id}/cancel"),
            json!({"owner": alice_id, "facilitator": "true", "cognito:groups": "facilitators"}),
        )
        .await,
        404
    );
    assert_eq!(
        fetch_status(
            &participant,
            "POST",
            &format!("/team/users/{}/quotas", id_of("bob")),
            json!({"runs_per_user": "100", "models_per_run": "64", "concurrency_per_run": "512",
                   "datasets_per_user": "100", "dataset_mib_per_user": "100",
                   "facilitator": "true"}),
        )
        .await,
        403
    );
    assert!(
        app.state
            .store
            .user_quotas(&store::UserId::new(id_of("bob")))
            .await
            .unwrap()
            .is_none()
    );
    // Clone it into his own evaluation: the shared dataset is used where it is.
    participant.goto(&url("/shared")).await;
    participant.click("#shared-runs a.button").await;
    participant
        .wait_for_text("h1", "New evaluation", PAGE_WAIT)
        .await;
    let template = participant
        .find("#template")
        .await
        .prop("value")
        .await
        .unwrap();
    assert_eq!(template.as_deref(), Some("Answer briefly: {question}"));
    let dataset = participant
        .find("#dataset")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    assert!(dataset.starts_with(&format!("{alice_id}/")), "{dataset}");
    participant.click("button[value='run']").await;
    participant
        .wait_for_text("#run-status", "finished", RUN_WAIT)
        .await;
    let clone_id = participant
        .url()
        .await
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    assert!(
        participant
            .client
            .find(fantoccini::Locator::Css("#read-only"))
            .await
            .is_err(),
        "the clone is bob's own run"
    );
    participant.goto(&url("/datasets")).await;
    let datasets = participant.text("main").await;
    assert!(
        !datasets.contains("squad-qa.jsonl"),
        "no copy of the dataset: {datasets}"
    );
    // Compared with his own run: alice's shared run is one of the columns.
    participant
        .goto(&url(&format!(
            "/compare?run={alice_id}/{shared_id}&run={clone_id}"
        )))
        .await;
    let compared = participant
        .wait_for_text("main", "Alice shared", PAGE_WAIT)
        .await;
    assert!(compared.contains("Compare"), "{compared}");
    participant.screenshot("47-compare-shared-with-own").await;

    // The facilitator sets alice's quotas: stored, shown as hers.
    facilitator.goto(&url("/team")).await;
    facilitator
        .clear_and_type("tr[data-user='alice'] input[name='runs_per_user']", "5")
        .await;
    facilitator
        .click("tr[data-user='alice'] form.quotas button[type=submit]")
        .await;
    facilitator
        .wait_for_text("tr[data-user='alice']", "set for this user", PAGE_WAIT)
        .await;
    let stored = app
        .state
        .store
        .user_quotas(&store::UserId::new(&alice_id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored["runs_per_user"], 5, "{stored}");

    // The facilitator publishes a challenge on a dataset of theirs, and watches it.
    facilitator.goto(&url("/datasets")).await;
    facilitator
        .click("form[action='/datasets/sample'] button")
        .await;
    facilitator
        .wait_for_text("h1", "squad-qa.jsonl", PAGE_WAIT)
        .await;
    facilitator.goto(&url("/challenges")).await;
    facilitator
        .clear_and_type("#challenge-title", "Normandy cup")
        .await;
    facilitator
        .click("#new-challenge button[type=submit]")
        .await;
    facilitator
        .wait_for_text("h1", "Normandy cup", PAGE_WAIT)
        .await;
    let challenge = facilitator.url().await;
    facilitator.screenshot("44-challenge-published").await;

    // Bob takes part with a weak wording.
    participant.goto(&challenge).await;
    participant
        .click("a.button[href^='/evals/new?dataset=']")
        .await;
    start_run(&participant, "Bob guesses", "Guess: {question}", Some(3)).await;
    participant
        .wait_for_text("#run-status", "finished", RUN_WAIT)
        .await;
    participant.goto(&challenge).await;
    participant.click("#submit-run button[type=submit]").await;
    facilitator
        .wait_for_text(
            "#leaderboard tbody tr:first-child .participant",
            "bob",
            PAGE_WAIT,
        )
        .await;
    let board = facilitator.text("#leaderboard").await;
    assert!(board.contains("Bob guesses"), "{board}");
    logout(&participant).await;

    // Alice submits a better run while it is still going; the facilitator's page, never
    // reloaded, shows it unranked, then first once it finishes.
    participant.goto(&challenge).await;
    login(&participant, "alice").await;
    participant
        .wait_for_text("h1", "Normandy cup", PAGE_WAIT)
        .await;
    participant
        .click("a.button[href^='/evals/new?dataset=']")
        .await;
    let alice_run = start_run(
        &participant,
        "Alice briefly",
        "Answer briefly: {question}",
        None,
    )
    .await;
    participant.goto(&challenge).await;
    participant.click("#submit-run button[type=submit]").await;
    let waiting = facilitator
        .wait_for_text("#leaderboard", "Alice briefly", PAGE_WAIT)
        .await;
    assert!(waiting.contains("running"), "{waiting}");
    facilitator.screenshot("45-board-while-running").await;
    facilitator
        .wait_for_text(
            "#leaderboard tbody tr:first-child .participant",
            "alice",
            RUN_WAIT,
        )
        .await;
    let first = facilitator.text("#leaderboard tbody tr:first-child").await;
    assert!(
        first.starts_with('1') && first.contains("Alice briefly"),
        "{first}"
    );
    let second = facilitator.text("#leaderboard tbody tr:nth-child(2)").await;
    assert!(
        second.starts_with('2') && second.contains("bob"),
        "{second}"
    );
    facilitator.screenshot("46-board-after-better-run").await;
    participant.goto(&alice_run).await;
    participant
        .wait_for_text("#run-status", "finished", PAGE_WAIT)
        .await;

    // Export and close.
    facilitator.click("#export-board").await;
    let csv = String::from_utf8(facilitator.downloaded(".csv").await).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("rank,participant,run_id"), "{csv}");
    assert!(lines[1].starts_with("1,alice,"), "{csv}");
    assert!(lines[2].starts_with("2,bob,"), "{csv}");
    facilitator
        .click("form[action$='/close'] button[type=submit]")
        .await;
    facilitator
        .wait_for_text("#challenge-closed", "closed", PAGE_WAIT)
        .await;
}
