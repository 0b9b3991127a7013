//! The web app's Cognito login over HTTP, against a per-test moto server's user pool: the
//! redirect to the login page (keeping the requested page), CSRF on the login forms, the
//! first login's new-password challenge, session cookies, logout, refresh before expiry and a
//! revoked refresh token, tampered session data, bearer tokens (forged, expired, for another
//! client) against a JWKS whose key the test holds, and the attempt limit with and without
//! trusted proxies.
//!
//! moto 5.2.1 answers `RevokeToken` with HTTP 500; logout must end the session anyway, which
//! the logout test checks (the revoke request itself is checked in `auth.rs` against a double).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use auth::{AuthConfig, Authenticator, LimitPolicy, TrustedProxies};
use model_doubles::{ModelServer, Moto};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::json;
use web::login::CognitoLogin;
use web::{AppState, WebConfig};

use crate::pages::{Page, TestApp, spawn_app_with, test_state};
use testkit::cognito::{
    JwksServer, NEW_PASSWORD, Pool, TEMPORARY_PASSWORD, TestKey, access_claims, admin, key_set,
};

async fn model_server() -> ModelServer {
    crate::helpers::start(
        model_doubles::Answer::Fixed("France".into()),
        model_doubles::FaultPlan::none(),
    )
    .await
}

/// An app with the Cognito login over `login`, cookies `Secure` as `llm-eval serve` sets them.
pub async fn spawn_login_app(server: &ModelServer, login: CognitoLogin) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut state: AppState = test_state(server, dir.path()).await;
    state.config = Arc::new(WebConfig {
        secure_cookies: true,
        ..(*state.config).clone()
    });
    state.authenticator = Some(Arc::new(login));
    spawn_app_with(state, dir).await
}

async fn login_of(config: AuthConfig) -> CognitoLogin {
    CognitoLogin::new(Authenticator::new(config).await)
}

/// Signs `username` in through the pages; returns the final response (a redirect).
pub async fn sign_in(app: &TestApp, username: &str, password: &str, next: &str) -> Page {
    let page = app.get(&format!("/login?next={next}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let token = page.csrf_token();
    app.post_form(
        "/login",
        &[
            ("csrf_token", &token),
            ("username", username),
            ("password", password),
            ("next", next),
        ],
    )
    .await
}

/// The first login of `username`: temporary password, then the new-password page.
pub async fn first_login(app: &TestApp, username: &str) {
    let started = sign_in(app, username, TEMPORARY_PASSWORD, "/").await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    assert_eq!(started.location(), "/login/challenge");
    let page = app.get("/login/challenge").await;
    let token = page.csrf_token();
    let done = app
        .post_form(
            "/login/challenge",
            &[
                ("csrf_token", &token),
                ("new_password", NEW_PASSWORD),
                ("confirm_password", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(
        (done.status, done.location()),
        (StatusCode::SEE_OTHER, "/"),
        "{}",
        done.body
    );
}

#[tokio::test]
async fn pages_need_a_cognito_login_with_the_new_password_challenge_and_logout_ends_it() {
    let server = model_server().await;
    let moto = Moto::start().await;
    let pool = Pool::create(&moto).await;
    pool.create_user("alice").await;
    let app = spawn_login_app(&server, login_of(pool.config()).await).await;

    // Unauthenticated: every page redirects to the login, keeping the page asked for.
    let anonymous = app.get("/runs?page=2").await;
    assert_eq!(
        (anonymous.status, anonymous.location()),
        (StatusCode::SEE_OTHER, "/login?next=%2Fruns%3Fpage%3D2")
    );
    for path in ["/", "/datasets", "/evals/new", "/compare?run=x"] {
        let page = app.get(path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert!(page.location().starts_with("/login"), "{path}");
    }
    let posted = app.post_form("/runs/clear", &[]).await;
    assert_eq!(posted.status, StatusCode::FORBIDDEN, "CSRF first");
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);

    let login = app.get("/login?next=/runs").await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(login.body.contains("Sign in"), "{}", login.body);
    assert!(!login.body.contains("Local mode"));
    let cookie = anonymous
        .headers
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap();
    for attribute in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(cookie.starts_with("__Host-llm_eval_session="), "{cookie}");

    // The login form needs its CSRF token like every form.
    let no_token = app
        .post_form(
            "/login",
            &[("username", "alice"), ("password", TEMPORARY_PASSWORD)],
        )
        .await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    let wrong_token = app
        .post_form(
            "/login",
            &[
                ("csrf_token", &"0".repeat(64)),
                ("username", "alice"),
                ("password", TEMPORARY_PASSWORD),
            ],
        )
        .await;
    assert_eq!(wrong_token.status, StatusCode::FORBIDDEN);

    // A wrong password: the page says so and keeps the username, never the password.
    let wrong = sign_in(&app, "alice", "Not-the-passw0rd!", "/runs").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(
        wrong.body.contains("Incorrect username or password."),
        "{}",
        wrong.body
    );
    assert!(wrong.body.contains("value=\"alice\""));
    assert!(!wrong.body.contains("Not-the-passw0rd!"));
    let unknown = sign_in(&app, "nobody", "Not-the-passw0rd!", "/").await;
    assert!(unknown.body.contains("Incorrect username or password."));

    // The temporary password leads to the new-password page, still keeping the page.
    let before = app.session_id();
    let temporary = sign_in(&app, "alice", TEMPORARY_PASSWORD, "/runs").await;
    assert_eq!(
        (temporary.status, temporary.location()),
        (StatusCode::SEE_OTHER, "/login/challenge?next=%2Fruns")
    );
    // Reaching the challenge is a privilege change: a fresh session id, the old one dead.
    let pending = app.session_id();
    assert_ne!(pending, before, "a fresh session id at the challenge");
    assert!(
        temporary
            .headers
            .get("set-cookie")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("__Host-llm_eval_session="),
    );
    assert_eq!(
        app.get("/runs").await.status,
        StatusCode::SEE_OTHER,
        "a pending challenge is not a login"
    );
    let challenge = app.get("/login/challenge?next=%2Fruns").await;
    assert!(
        challenge.body.contains("Choose a new password"),
        "{}",
        challenge.body
    );
    assert!(challenge.body.contains("<strong>alice</strong>"));
    let token = challenge.csrf_token();
    let differ = app
        .post_form(
            "/login/challenge",
            &[
                ("csrf_token", &token),
                ("new_password", NEW_PASSWORD),
                ("confirm_password", "Chosen-Passw0rd-2025!"),
                ("next", "/runs"),
            ],
        )
        .await;
    assert_eq!(differ.status, StatusCode::BAD_REQUEST);
    assert!(
        differ
            .body
            .contains("The two new passwords are not the same.")
    );
    // A password the pool's policy refuses (moto checks the policy as Cognito does): the
    // page says why, never echoes the password, and the challenge can be answered again.
    let weak = app
        .post_form(
            "/login/challenge",
            &[
                ("csrf_token", &token),
                ("new_password", "weakpassword"),
                ("confirm_password", "weakpassword"),
                ("next", "/runs"),
            ],
        )
        .await;
    assert_eq!(weak.status, StatusCode::BAD_REQUEST, "{}", weak.body);
    assert!(
        weak.body.contains("Choose a new password") && weak.body.contains("password policy"),
        "{}",
        weak.body
    );
    assert!(!weak.body.contains("weakpassword"), "{}", weak.body);
    let done = app
        .post_form(
            "/login/challenge",
            &[
                ("csrf_token", &token),
                ("new_password", NEW_PASSWORD),
                ("confirm_password", NEW_PASSWORD),
                ("next", "/runs"),
            ],
        )
        .await;
    assert_eq!(
        (done.status, done.location()),
        (StatusCode::SEE_OTHER, "/runs"),
        "{}",
        done.body
    );
    let signed_in_cookie = done.headers.get("set-cookie").unwrap().to_str().unwrap();
    assert!(signed_in_cookie.contains("Secure") && signed_in_cookie.contains("HttpOnly"));
    let session_id = app.session_id();
    assert_ne!(session_id, before, "a new session id at login");

    let runs = app.get("/runs").await;
    assert_eq!(runs.status, StatusCode::OK, "{}", runs.body);
    assert!(runs.body.contains("Signed in as <strong>alice</strong>"));
    assert!(!runs.body.contains("Local mode"));
    // The session row holds the tokens only sealed; the browser never sees them.
    let stored = app
        .state
        .store
        .session(session_id.as_deref().unwrap())
        .await
        .unwrap()
        .unwrap();
    let sealed = stored.auth_data.unwrap();
    // A JWT starts with its base64url JSON header (`{"alg"`, `{"kid"` or `{"typ"`); random
    // sealed bytes may contain the three letters `eyJ` by chance (once in a few hundred runs),
    // so the check looks for a whole header start.
    assert!(
        sealed.starts_with("v1.")
            && !["eyJhbGci", "eyJraWQi", "eyJ0eXAi"]
                .iter()
                .any(|header| sealed.contains(header)),
        "{sealed}"
    );
    assert!(!runs.body.contains("eyJ"));
    let sub = stored.user.unwrap().id;
    assert_eq!(sub.as_str().len(), 36, "the user is the token's sub: {sub}");

    // The pre-login session id is dead (no session fixation).
    app.set_session_id(before);
    assert_eq!(app.get("/runs").await.status, StatusCode::SEE_OTHER);
    app.set_session_id(session_id.clone());

    // Logout ends the session even though moto cannot revoke the token.
    let token = runs.csrf_token();
    let out = app.post_form("/logout", &[("csrf_token", &token)]).await;
    assert_eq!(
        (out.status, out.location()),
        (StatusCode::SEE_OTHER, "/login?info=signed_out")
    );
    let cleared = out.headers.get("set-cookie").unwrap().to_str().unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert!(
        app.state
            .store
            .session(session_id.as_deref().unwrap())
            .await
            .unwrap()
            .is_none()
    );
    app.set_session_id(session_id);
    assert_eq!(app.get("/runs").await.status, StatusCode::SEE_OTHER);
    assert!(
        app.get("/login?info=signed_out")
            .await
            .body
            .contains("You are signed out.")
    );

    // The chosen password signs in directly, to the page asked for.
    app.new_browser();
    let again = sign_in(&app, "alice", NEW_PASSWORD, "/datasets").await;
    assert_eq!(
        (again.status, again.location()),
        (StatusCode::SEE_OTHER, "/datasets")
    );
    // A redirect after login never leaves the site.
    app.new_browser();
    let hostile = sign_in(&app, "alice", NEW_PASSWORD, "//evil.example/").await;
    assert_eq!(hostile.location(), "/");
}

#[tokio::test]
async fn tokens_are_refreshed_before_expiry_and_a_revoked_session_ends() {
    let server = model_server().await;
    let moto = Moto::start().await;
    let pool = Pool::create(&moto).await;
    pool.create_user("alice").await;
    // Moto's tokens last an hour; 58 minutes on, they are due for a refresh.
    let later = Arc::new(|| SystemTime::now() + Duration::from_secs(58 * 60));
    let login = CognitoLogin::with_clock(Authenticator::new(pool.config()).await, later);
    let app = spawn_login_app(&server, login).await;
    first_login(&app, "alice").await;
    let id = app.session_id().unwrap();
    let sealed = |app: &TestApp| {
        let id = id.clone();
        let store = app.state.store.clone();
        async move { store.session(&id).await.unwrap().map(|s| s.auth_data) }
    };
    let before = sealed(&app).await;
    let page = app.get("/runs").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let after = sealed(&app).await;
    assert!(after.is_some());
    assert_ne!(
        before, after,
        "refreshed tokens were sealed into the session"
    );

    // Alice signs in on a second browser, then logs out everywhere from the first one: the
    // second browser's next refresh is refused, its session ends and the login page says why.
    let first = app.session_id();
    app.new_browser();
    let second = sign_in(&app, "alice", NEW_PASSWORD, "/").await;
    assert_eq!(second.status, StatusCode::SEE_OTHER, "{}", second.body);
    let second = app.session_id();
    app.set_session_id(first);
    let token = app.get("/runs").await.csrf_token();
    let out = app
        .post_form(
            "/logout",
            &[("csrf_token", &token), ("scope", "everywhere")],
        )
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(
        sealed(&app).await.is_none(),
        "the first session row is gone"
    );
    app.set_session_id(second.clone());
    let ended = app.get("/runs").await;
    assert_eq!(
        (ended.status, ended.location()),
        (StatusCode::SEE_OTHER, "/login?next=%2Fruns&info=expired")
    );
    assert!(
        app.state
            .store
            .session(second.as_deref().unwrap())
            .await
            .unwrap()
            .is_none(),
        "the second session row is gone"
    );
    let page = app.get("/login?next=%2Fruns&info=expired").await;
    assert!(page.body.contains("Your session has expired."));

    // An administrator's sign-out of the user (AdminUserGlobalSignOut) ends sessions too.
    let again = sign_in(&app, "alice", NEW_PASSWORD, "/").await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    admin(moto.url())
        .admin_user_global_sign_out()
        .user_pool_id(&pool.pool_id)
        .username("alice")
        .send()
        .await
        .unwrap();
    assert!(app.get("/runs").await.location().ends_with("info=expired"));
}

#[tokio::test]
async fn tampered_sessions_and_forged_or_expired_bearer_tokens_are_refused() {
    let server = model_server().await;
    let moto = Moto::start().await;
    let pool = Pool::create(&moto).await;
    pool.create_user("alice").await;
    let app = spawn_login_app(&server, login_of(pool.config()).await).await;
    first_login(&app, "alice").await;
    let alice = app
        .state
        .store
        .session(&app.session_id().unwrap())
        .await
        .unwrap()
        .unwrap();

    // Alice's sealed login data copied into another browser's session does not open there.
    // (An anonymous browser has no stored session: the row is written here.)
    app.new_browser();
    app.get("/login").await;
    let other = store::Session {
        id: app.session_id().unwrap(),
        ..alice.clone()
    };
    app.state.store.save_session(&other).await.unwrap();
    assert_eq!(app.get("/runs").await.status, StatusCode::SEE_OTHER);
    // A flipped character in alice's own row does not open either.
    let mut tampered = alice.clone();
    let mut data = tampered.auth_data.clone().unwrap().into_bytes();
    let last = data.len() - 2;
    data[last] = if data[last] == b'A' { b'B' } else { b'A' };
    tampered.auth_data = Some(String::from_utf8(data).unwrap());
    app.state.store.save_session(&tampered).await.unwrap();
    app.set_session_id(Some(alice.id.clone()));
    assert_eq!(app.get("/runs").await.status, StatusCode::SEE_OTHER);

    // Bearer tokens: checked against the pool's keys on every request. The test's own key
    // stands in for the pool's, so it can mint expired and foreign tokens.
    let key = TestKey::generate("k1");
    let jwks = JwksServer::start(key_set(&[&key])).await;
    let mut config = pool.config();
    config.jwks_url = jwks.url.clone();
    let scripted = spawn_login_app(&server, login_of(config).await).await;
    let header = json!({"alg": "RS256", "kid": "k1"});
    let bearer = |token: String| {
        let scripted = &scripted;
        async move {
            scripted.new_browser();
            scripted
                .send(
                    scripted
                        .get_request("/runs")
                        .header("authorization", format!("Bearer {token}")),
                )
                .await
        }
    };
    let sessions = || {
        rusqlite::Connection::open(scripted.dir.path().join("store.sqlite"))
            .unwrap()
            .query_row("SELECT COUNT(*) FROM sessions", [], |row| {
                row.get::<_, i64>(0)
            })
            .unwrap()
    };
    let sessions_before = sessions();
    let good = bearer(key.sign(&header, &access_claims(&pool, 3600))).await;
    assert_eq!(good.status, StatusCode::OK, "{}", good.body);
    assert!(good.body.contains("Signed in as <strong>alice</strong>"));
    assert!(
        good.headers.get("set-cookie").is_none(),
        "a bearer client gets no session cookie"
    );
    assert_eq!(sessions(), sessions_before, "nor a stored session");
    let expired = bearer(key.sign(&header, &access_claims(&pool, -60))).await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        expired.headers.get("www-authenticate").unwrap(),
        "Bearer error=\"invalid_token\""
    );
    assert!(expired.body.contains("The access token was refused"));
    let forged = bearer(TestKey::generate("k1").sign(&header, &access_claims(&pool, 3600))).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    let mut foreign = access_claims(&pool, 3600);
    foreign["client_id"] = json!("another-client");
    assert_eq!(
        bearer(key.sign(&header, &foreign)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let mut id_token = access_claims(&pool, 3600);
    id_token["token_use"] = json!("id");
    assert_eq!(
        bearer(key.sign(&header, &id_token)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        bearer("not.a.token".into()).await.status,
        StatusCode::UNAUTHORIZED
    );

    // moto's own access token, against moto's JWKS, is accepted by the first app.
    let direct = Authenticator::new(pool.config()).await;
    let tokens = testkit::cognito::sign_in_with(&direct, "alice", NEW_PASSWORD).await;
    app.new_browser();
    let page = app
        .send(app.get_request("/runs").header(
            "authorization",
            format!("Bearer {}", tokens.access_token().expose_secret()),
        ))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
}

/// A wrong password for `user`, sent with `X-Forwarded-For: forwarded`.
async fn attempt(app: &TestApp, user: &str, forwarded: &str) -> Page {
    let token = app.get("/login").await.csrf_token();
    app.send(
        app.form_request(
            "/login",
            &[
                ("csrf_token", &token),
                ("username", user),
                ("password", "Not-the-passw0rd!"),
            ],
        )
        .header("x-forwarded-for", forwarded),
    )
    .await
}

#[tokio::test]
async fn login_attempts_are_limited_per_address_as_the_trusted_proxies_report_it() {
    let server = model_server().await;
    let moto = Moto::start().await;
    let pool = Pool::create(&moto).await;
    pool.create_user("alice").await;
    let mut policy = LimitPolicy::default();
    policy.per_client.burst = 3;
    policy.per_client.interval = Duration::from_secs(600);

    // No trusted proxy: X-Forwarded-For is the client's own claim and changes nothing.
    let app = spawn_login_app(
        &server,
        CognitoLogin::new(Authenticator::with_limits(pool.config(), policy).await),
    )
    .await;
    for n in 0..3 {
        let page = attempt(&app, &format!("user{n}"), &format!("198.51.100.{n}")).await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.body);
    }
    let limited = attempt(&app, "user9", "198.51.100.9").await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        limited
            .body
            .contains("Too many sign-in attempts; try again in "),
        "{}",
        limited.body
    );
    let retry_after: u64 = limited
        .headers
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=600).contains(&retry_after), "{retry_after}");
    // Even the right password waits (Cognito is not asked).
    let right = sign_in(&app, "alice", TEMPORARY_PASSWORD, "/").await;
    assert_eq!(right.status, StatusCode::TOO_MANY_REQUESTS);

    // Behind one trusted proxy, the address it appends is the client's: other clients of the
    // same proxy are not limited by one client's failures.
    let mut config = pool.config();
    config.forwarded = TrustedProxies(1);
    let proxied = spawn_login_app(
        &server,
        CognitoLogin::new(Authenticator::with_limits(config, policy).await),
    )
    .await;
    for n in 0..3 {
        let page = attempt(&proxied, &format!("user{n}"), "198.51.100.1").await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    }
    let same = attempt(&proxied, "user9", "203.0.113.9, 198.51.100.1").await;
    assert_eq!(
        same.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the client cannot prepend its way out"
    );
    let other = attempt(&proxied, "user9", "198.51.100.2").await;
    assert_eq!(other.status, StatusCode::UNAUTHORIZED, "{}", other.body);
}

#[tokio::test]
async fn a_user_with_an_authenticator_app_enters_its_code_on_the_challenge_page() {
    let server = model_server().await;
    let moto = Moto::start_with_env(&[("MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP", "true")]).await;
    let pool = Pool::create(&moto).await;
    pool.create_user("alice").await;
    let app = spawn_login_app(&server, login_of(pool.config()).await).await;
    first_login(&app, "alice").await;
    let direct = Authenticator::new(pool.config()).await;
    let tokens = testkit::cognito::sign_in_with(&direct, "alice", NEW_PASSWORD).await;
    testkit::cognito::enrol_authenticator_app(&pool, "alice", &tokens).await;

    app.new_browser();
    let started = sign_in(&app, "alice", NEW_PASSWORD, "/runs").await;
    assert_eq!(
        (started.status, started.location()),
        (StatusCode::SEE_OTHER, "/login/challenge?next=%2Fruns")
    );
    let page = app.get("/login/challenge?next=%2Fruns").await;
    assert!(page.body.contains("Authenticator code"), "{}", page.body);
    assert!(page.body.contains("name=\"code\""));
    let token = page.csrf_token();
    let answer = |code: String| {
        let app = &app;
        let token = token.clone();
        async move {
            app.post_form(
                "/login/challenge",
                &[("csrf_token", &token), ("code", &code), ("next", "/runs")],
            )
            .await
        }
    };
    let right = testkit::cognito::fresh_totp().await;
    let wrong = format!("{:06}", (right.parse::<u32>().unwrap() + 1) % 1_000_000);
    let refused = answer(wrong).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(
        refused.body.contains(
            "Incorrect code; enter the current 6-digit code from your authenticator app."
        ),
        "{}",
        refused.body
    );
    assert_eq!(app.get("/runs").await.status, StatusCode::SEE_OTHER);
    let done = answer(testkit::cognito::fresh_totp().await).await;
    assert_eq!(
        (done.status, done.location()),
        (StatusCode::SEE_OTHER, "/runs"),
        "{}",
        done.body
    );
    let runs = app.get("/runs").await;
    assert!(runs.body.contains("Signed in as <strong>alice</strong>"));
}

/// The facilitator role (issue 22) comes from the verified token's `cognito:groups` claim and
/// the configured group name only: a signed token naming the group opens the Team page, one
/// without it (or naming another group) gets 403 whatever headers or query it adds, and a
/// token signed by anyone but the pool is refused before any role is read.
#[tokio::test]
async fn the_facilitator_role_is_the_verified_tokens_group_claim_only() {
    let server = model_server().await;
    let moto = Moto::start().await;
    let pool = Pool::create(&moto).await;
    let key = TestKey::generate("k1");
    let jwks = JwksServer::start(key_set(&[&key])).await;
    let mut config = pool.config();
    config.jwks_url = jwks.url.clone();
    let app = spawn_login_app(&server, login_of(config).await).await;
    let header = json!({"alg": "RS256", "kid": "k1"});
    let token = |groups: Option<&[&str]>, signer: &TestKey| {
        let mut claims = access_claims(&pool, 3600);
        if let Some(groups) = groups {
            claims["cognito:groups"] = json!(groups);
        }
        signer.sign(&header, &claims)
    };
    let get = |path: &'static str, token: String| {
        let app = &app;
        async move {
            app.new_browser();
            app.send(
                app.get_request(path)
                    .header("authorization", format!("Bearer {token}"))
                    .header("x-facilitator", "true")
                    .header("x-cognito-groups", "facilitators"),
            )
            .await
        }
    };
    let facilitator = get("/team", token(Some(&["facilitators"]), &key)).await;
    assert_eq!(facilitator.status, StatusCode::OK, "{}", facilitator.body);
    assert!(facilitator.body.contains("id=\"team-link\""));
    for groups in [
        None,
        Some(&["participants"][..]),
        Some(&["Facilitators"][..]),
    ] {
        let refused = get(
            "/team?facilitator=true&role=facilitator",
            token(groups, &key),
        )
        .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{groups:?}");
        let home = get("/", token(groups, &key)).await;
        assert!(!home.body.contains("team-link"), "{groups:?}");
    }
    let forged = get(
        "/team",
        token(Some(&["facilitators"]), &TestKey::generate("k1")),
    )
    .await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);

    // Another group name configured: only its members are facilitators.
    let mut config = pool.config();
    config.jwks_url = jwks.url.clone();
    let dir = tempfile::tempdir().unwrap();
    let mut state = crate::pages::test_state(&server, dir.path()).await;
    state.config = Arc::new(WebConfig {
        secure_cookies: true,
        facilitator_group: "workshop-hosts".into(),
        ..(*state.config).clone()
    });
    state.authenticator = Some(Arc::new(login_of(config).await));
    let hosts = crate::pages::spawn_app_with(state, dir).await;
    for (groups, status) in [
        (&["facilitators"][..], StatusCode::FORBIDDEN),
        (&["workshop-hosts"][..], StatusCode::OK),
    ] {
        hosts.new_browser();
        let page = hosts
            .send(hosts.get_request("/team").header(
                "authorization",
                format!("Bearer {}", token(Some(groups), &key)),
            ))
            .await;
        assert_eq!(page.status, status, "{groups:?}");
    }
}
