//! The Cognito login library against a real moto server (per test): a pool and an app client
//! with a secret, users created by an administrator with a temporary password, the first-login
//! challenge, refresh, sign-out, token verification against moto's JWKS; and forged tokens
//! against a local JWKS server whose key the test holds, so that each check (signature,
//! issuer, client, expiry, `token_use`, algorithm) is the only one a token fails.
//!
//! moto 5.2.1 does not implement `RevokeToken` (it answers HTTP 500), so that one call is
//! checked against a small scripted double of the Cognito JSON protocol instead.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use auth::{
    Answer, Authenticator, ChallengeKind, LimitPolicy, LoginError, SignIn, TokenError, TokenUse,
    TokenVerifier,
};
use aws_sdk_cognitoidentityprovider::types::ExplicitAuthFlowsType;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use model_doubles::Moto;
use testkit::cognito::*;

async fn setup() -> (Moto, Pool, Authenticator) {
    let moto = Moto::start().await;
    let pool = Pool::create(&moto).await;
    let auth = Authenticator::new(pool.config()).await;
    (moto, pool, auth)
}

#[tokio::test]
async fn first_login_sets_a_new_password() {
    let (_moto, pool, auth) = setup().await;
    pool.create_user("alice").await;

    let SignIn::Challenge(challenge) = auth
        .sign_in("alice", &secret(TEMPORARY_PASSWORD), client_addr())
        .await
        .unwrap()
    else {
        panic!("a temporary password must ask for a new one");
    };
    assert_eq!(challenge.kind, ChallengeKind::NewPassword);
    assert_eq!(challenge.username(), "alice");
    assert!(!format!("{challenge:?}").contains(TEMPORARY_PASSWORD));

    // The pool's policy refuses a weak password, and the challenge can be answered again.
    let weak = auth
        .answer(
            &challenge,
            Answer::NewPassword(secret("short")),
            client_addr(),
        )
        .await
        .unwrap_err();
    assert!(matches!(weak, LoginError::PasswordPolicy(_)), "{weak:?}");
    assert!(
        weak.to_string()
            .starts_with("the new password does not meet the password policy"),
        "{weak}"
    );
    assert!(!weak.to_string().contains("short"), "{weak}");

    let SignIn::Done(tokens) = auth
        .answer(
            &challenge,
            Answer::NewPassword(secret(NEW_PASSWORD)),
            client_addr(),
        )
        .await
        .unwrap()
    else {
        panic!("signed in after the new password");
    };
    assert_eq!(tokens.user.username, "alice");
    assert!(!tokens.user.sub.is_empty());
    assert!(!tokens.expired(SystemTime::now()));
    assert!(!tokens.needs_refresh(SystemTime::now()));
    let debug = format!("{tokens:?}");
    assert!(
        !debug.contains(tokens.access_token().expose_secret()),
        "{debug}"
    );

    // From now on the new password signs in directly, and the temporary one is dead.
    let SignIn::Done(again) = auth
        .sign_in("alice", &secret(NEW_PASSWORD), client_addr())
        .await
        .unwrap()
    else {
        panic!("no challenge after the first login");
    };
    assert_eq!(again.user.sub, tokens.user.sub);
    let old = auth
        .sign_in("alice", &secret(TEMPORARY_PASSWORD), client_addr())
        .await
        .unwrap_err();
    assert_eq!(old.to_string(), "incorrect username or password");
}

#[tokio::test]
async fn wrong_password_and_unknown_user_read_the_same() {
    let (_moto, pool, auth) = setup().await;
    pool.create_user("alice").await;
    let wrong = auth
        .sign_in("alice", &secret("Not-the-passw0rd!"), client_addr())
        .await
        .unwrap_err();
    let unknown = auth
        .sign_in("mallory", &secret("Not-the-passw0rd!"), client_addr())
        .await
        .unwrap_err();
    assert_eq!(wrong.to_string(), "incorrect username or password");
    assert_eq!(unknown.to_string(), wrong.to_string());
    assert!(!wrong.is_server_fault());
    for (username, password, expected) in [
        ("", "x", "enter your username and password"),
        ("alice", "", "enter your username and password"),
        (
            &"a".repeat(129),
            "x",
            "the username is longer than 128 characters",
        ),
        (
            "alice",
            &"p".repeat(257),
            "the password is longer than 256 characters",
        ),
    ] {
        let err = auth
            .sign_in(username, &secret(password), client_addr())
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), expected);
    }
}

#[tokio::test]
async fn refresh_keeps_the_user_and_sign_out_ends_it() {
    let (_moto, pool, auth) = setup().await;
    pool.create_user("alice").await;
    let tokens = first_login(&auth, "alice").await;

    // moto checks REFRESH_TOKEN_AUTH's SECRET_HASH, so this also proves the hash.
    let fresh = auth.refresh(&tokens).await.unwrap();
    assert_eq!(fresh.user, tokens.user);
    assert_ne!(
        fresh.access_token().expose_secret(),
        tokens.access_token().expose_secret()
    );
    auth.refresh(&fresh)
        .await
        .expect("the refresh token is kept");

    // A wrong client secret is refused by Cognito's SECRET_HASH check.
    let mut wrong_secret = pool.config();
    wrong_secret.client_secret = Some(secret("not-the-client-secret"));
    let wrong = Authenticator::new(wrong_secret).await;
    assert!(wrong.refresh(&tokens).await.is_err());

    // Signing out everywhere revokes the refresh token.
    auth.sign_out(&fresh, true).await.unwrap();
    let err = auth.refresh(&fresh).await.unwrap_err();
    assert_eq!(err.to_string(), "your session has expired; sign in again");
}

#[tokio::test]
async fn tokens_verify_against_the_pools_jwks() {
    let (_moto, pool, auth) = setup().await;
    pool.create_user("alice").await;
    let tokens = first_login(&auth, "alice").await;
    let claims = auth
        .verify_access_token(tokens.access_token().expose_secret())
        .await
        .unwrap();
    assert_eq!(claims.sub, tokens.user.sub);
    assert_eq!(claims.username, "alice");

    // An ID token is not an access token.
    let err = auth
        .verify_access_token(tokens.id_token().expose_secret())
        .await
        .unwrap_err();
    assert!(matches!(err, TokenError::TokenUse { .. }), "{err:?}");

    // A key of our own under moto's key id: the signature does not verify.
    let forger = TestKey::generate("dummy");
    let forged = forger.sign(
        &json!({"alg": "RS256", "kid": "dummy"}),
        &access_claims(&pool, 3600),
    );
    let err = auth.verify_access_token(&forged).await.unwrap_err();
    assert!(matches!(err, TokenError::Signature), "{err:?}");

    // Tokens of another app client of the same pool are refused.
    let other_client = admin(&pool.endpoint)
        .create_user_pool_client()
        .user_pool_id(&pool.pool_id)
        .client_name("other")
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowUserPasswordAuth)
        .send()
        .await
        .unwrap();
    let mut other_config = pool.config();
    other_config.client_id = other_client
        .user_pool_client()
        .and_then(|client| client.client_id())
        .unwrap()
        .to_owned();
    other_config.client_secret = None;
    let other = Authenticator::new(other_config).await;
    let err = other
        .verify_access_token(tokens.access_token().expose_secret())
        .await
        .unwrap_err();
    assert!(matches!(err, TokenError::Audience), "{err:?}");
}

#[tokio::test]
async fn attempts_are_limited_per_user() {
    let moto = Moto::start().await;
    let pool = Pool::create(&moto).await;
    pool.create_user("alice").await;
    let mut policy = LimitPolicy::default();
    policy.per_user.burst = 2;
    let auth = Authenticator::with_limits(pool.config(), policy).await;
    for _ in 0..2 {
        let err = auth
            .sign_in("alice", &secret("Not-the-passw0rd!"), client_addr())
            .await
            .unwrap_err();
        assert!(matches!(err, LoginError::InvalidCredentials), "{err:?}");
    }
    // Even the right password waits now; Cognito is not asked.
    let err = auth
        .sign_in("ALICE", &secret(TEMPORARY_PASSWORD), client_addr())
        .await
        .unwrap_err();
    let LoginError::RateLimited(limited) = &err else {
        panic!("limited: {err:?}");
    };
    assert!((59..=60).contains(&limited.retry_after_secs()), "{err}");
    assert!(
        err.to_string()
            .starts_with("too many sign-in attempts; try again in ")
    );
    // Another user from the same address is not locked out.
    pool.create_user("bob").await;
    first_login(&auth, "bob").await;
}

// --- Forged tokens against a JWKS whose key the test holds -------------------------------

fn pool_stub() -> Pool {
    Pool {
        pool_id: "us-east-1_TestPool1".into(),
        client_id: "testclient0123456789abcdef".into(),
        client_secret: String::new(),
        endpoint: String::new(),
    }
}

#[tokio::test]
async fn forged_tokens_are_refused() {
    let key = TestKey::generate("k1");
    let jwks = JwksServer::start(key_set(&[&key])).await;
    let pool = pool_stub();
    let verifier = TokenVerifier::new(issuer(&pool), pool.client_id.clone(), jwks.url.clone());
    let header = json!({"alg": "RS256", "kid": "k1"});
    let good = access_claims(&pool, 3600);

    // The genuine article verifies: every refusal below is for the one thing changed.
    let claims = verifier
        .verify(&key.sign(&header, &good), TokenUse::Access)
        .await
        .unwrap();
    assert_eq!(claims.username, "alice");

    let with = |field: &str, value: Value| {
        let mut claims = good.clone();
        claims[field] = value;
        key.sign(&header, &claims)
    };
    let check = |token: String, expected: &'static str| {
        let verifier = &verifier;
        async move {
            let err = verifier.verify(&token, TokenUse::Access).await.unwrap_err();
            assert_eq!(err.to_string(), expected, "{err:?}");
        }
    };
    check(with("exp", json!(now_secs() - 3600)), "token has expired").await;
    check(
        with(
            "iss",
            json!("https://cognito-idp.us-east-1.amazonaws.com/us-east-1_OtherPool"),
        ),
        "token was issued by another user pool or issuer",
    )
    .await;
    check(
        with("client_id", json!("someotherclient")),
        "token was issued to another app client",
    )
    .await;
    check(
        with("token_use", json!("id")),
        "token is not an access token",
    )
    .await;

    // A signature over different claims.
    let genuine = key.sign(&header, &good);
    let mut parts: Vec<String> = genuine.split('.').map(str::to_owned).collect();
    let mut elevated = good.clone();
    elevated["username"] = json!("admin");
    parts[1] = b64url(elevated.to_string().as_bytes());
    check(parts.join("."), "token signature is invalid").await;

    // `alg: none` with no signature, and HS256 keyed with the public key (algorithm confusion).
    let unsigned = format!(
        "{}.{}.",
        b64url(br#"{"alg":"none","kid":"k1"}"#),
        b64url(good.to_string().as_bytes())
    );
    check(unsigned, "token is malformed").await;
    let hs256 = jsonwebtoken::encode(
        &jsonwebtoken::Header {
            kid: Some("k1".into()),
            ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
        },
        &good,
        &jsonwebtoken::EncodingKey::from_secret(key.jwk()["n"].as_str().unwrap().as_bytes())
            .unwrap(),
    )
    .unwrap();
    check(hs256, "token is signed with HS256; only RS256 is accepted").await;
    check(
        key.sign(&json!({"alg": "RS256"}), &good),
        "token header has no key id",
    )
    .await;
    check("not-a-token".into(), "token is malformed").await;
    check("x".repeat(20_000), "token is longer than 16384 bytes").await;

    // An ID token must name the client in `aud`.
    let mut id_claims = good.clone();
    id_claims["token_use"] = json!("id");
    id_claims["cognito:username"] = json!("alice");
    id_claims["aud"] = json!("someotherclient");
    let err = verifier
        .verify(&key.sign(&header, &id_claims), TokenUse::Id)
        .await
        .unwrap_err();
    assert!(matches!(err, TokenError::Audience), "{err:?}");
    id_claims["aud"] = json!(pool.client_id);
    verifier
        .verify(&key.sign(&header, &id_claims), TokenUse::Id)
        .await
        .unwrap();
    assert_eq!(jwks.requests(), 1, "the key set is fetched once and cached");
}

#[tokio::test]
async fn unknown_key_ids_refetch_the_key_set_at_most_once_per_interval() {
    let old = TestKey::generate("old");
    let new = TestKey::generate("new");
    let jwks = JwksServer::start(key_set(&[&old])).await;
    let pool = pool_stub();
    let verifier = TokenVerifier::new(issuer(&pool), pool.client_id.clone(), jwks.url.clone())
        .with_min_refetch(Duration::from_millis(300));
    let claims = access_claims(&pool, 3600);
    verifier
        .verify(
            &old.sign(&json!({"alg": "RS256", "kid": "old"}), &claims),
            TokenUse::Access,
        )
        .await
        .unwrap();
    assert_eq!(jwks.requests(), 1);

    // A flood of made-up key ids costs no fetch inside the interval.
    for n in 0..50 {
        let forged = new.sign(
            &json!({"alg": "RS256", "kid": format!("forged-{n}")}),
            &claims,
        );
        let err = verifier
            .verify(&forged, TokenUse::Access)
            .await
            .unwrap_err();
        assert!(matches!(err, TokenError::UnknownKey), "{err:?}");
    }
    assert_eq!(
        jwks.requests(),
        1,
        "no fetch for unknown kids within the interval"
    );

    // The pool rotates its key: after the interval one refetch picks it up.
    jwks.serve(key_set(&[&old, &new]));
    tokio::time::sleep(Duration::from_millis(350)).await;
    let rotated = new.sign(&json!({"alg": "RS256", "kid": "new"}), &claims);
    verifier.verify(&rotated, TokenUse::Access).await.unwrap();
    verifier.verify(&rotated, TokenUse::Access).await.unwrap();
    assert_eq!(jwks.requests(), 2);
}

#[tokio::test]
async fn an_unusable_key_set_is_an_error_not_a_pass() {
    let key = TestKey::generate("k1");
    let huge = format!(r#"{{"keys":[], "pad": "{}"}}"#, "x".repeat(100_000));
    let jwks = JwksServer::start(huge).await;
    let pool = pool_stub();
    let verifier = TokenVerifier::new(issuer(&pool), pool.client_id.clone(), jwks.url.clone())
        .with_min_refetch(Duration::ZERO);
    let token = key.sign(
        &json!({"alg": "RS256", "kid": "k1"}),
        &access_claims(&pool, 3600),
    );
    let err = verifier.verify(&token, TokenUse::Access).await.unwrap_err();
    assert!(
        err.to_string()
            .ends_with("the document is larger than 65536 bytes"),
        "{err}"
    );
    jwks.serve("<html>not json</html>".into());
    let err = verifier.verify(&token, TokenUse::Access).await.unwrap_err();
    assert!(err.to_string().contains("not a JWKS document"), "{err}");
}

// --- RevokeToken, which moto does not implement -------------------------------------------

/// A scripted double of Cognito's `RevokeToken` (JSON 1.1 protocol) recording each body.
async fn revoke_double() -> (String, Arc<Mutex<Vec<(String, Value)>>>) {
    let seen: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let recorded = seen.clone();
    let router = axum::Router::new().route(
        "/",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let recorded = recorded.clone();
                async move {
                    let target = headers
                        .get("x-amz-target")
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    recorded.lock().unwrap().push((target, body));
                    ([("content-type", "application/x-amz-json-1.1")], "{}")
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, seen)
}

#[tokio::test]
async fn logout_revokes_this_sessions_refresh_token() {
    let (_moto, pool, auth) = setup().await;
    pool.create_user("alice").await;
    let tokens = first_login(&auth, "alice").await;

    let (double_url, seen) = revoke_double().await;
    let mut config = pool.config();
    config.endpoint_url = Some(double_url);
    let logout = Authenticator::new(config).await;
    logout.sign_out(&tokens, false).await.unwrap();

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    let (target, body) = &seen[0];
    assert_eq!(target, "AWSCognitoIdentityProviderService.RevokeToken");
    assert_eq!(body["ClientId"], json!(pool.client_id));
    assert_eq!(body["ClientSecret"], json!(pool.client_secret));
    assert!(
        body["Token"]
            .as_str()
            .is_some_and(|token| !token.is_empty())
    );
    assert_ne!(
        body["Token"].as_str(),
        Some(tokens.access_token().expose_secret()),
        "the refresh token is revoked, not the access token"
    );
}

// --- Authenticator-app codes ---------------------------------------------------------------

#[test]
fn totp_matches_rfc_6238() {
    // RFC 6238 appendix B, SHA-1, T = 59 s: 94287082 (8 digits), so 287082 with 6.
    let rfc_secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"; // "12345678901234567890"
    assert_eq!(totp(rfc_secret, 59), "287082");
}

#[tokio::test]
async fn authenticator_app_codes_are_checked() {
    let moto = Moto::start_with_env(&[("MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP", "true")]).await;
    let pool = Pool::create(&moto).await;
    pool.create_user("alice").await;
    let auth = Authenticator::new(pool.config()).await;
    let tokens = first_login(&auth, "alice").await;

    // Alice enrols an authenticator app, as the Cognito console or an admin tool would.
    enrol_authenticator_app(&pool, "alice", &tokens).await;

    let SignIn::Challenge(challenge) = auth
        .sign_in("alice", &secret(NEW_PASSWORD), client_addr())
        .await
        .unwrap()
    else {
        panic!("an enrolled user is asked for a code");
    };
    assert_eq!(challenge.kind, ChallengeKind::SoftwareTokenMfa);
    for malformed in ["12345", "abcdef", "1234567"] {
        let err = auth
            .answer(&challenge, Answer::MfaCode(malformed.into()), client_addr())
            .await
            .unwrap_err();
        assert!(matches!(err, LoginError::InvalidCode), "{err:?}");
    }
    let right = fresh_totp().await;
    let wrong = format!("{:06}", (right.parse::<u32>().unwrap() + 1) % 1_000_000);
    let err = auth
        .answer(&challenge, Answer::MfaCode(wrong), client_addr())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "incorrect code; enter the current 6-digit code from your authenticator app"
    );
    // moto checks this answer's SECRET_HASH too.
    let SignIn::Done(signed_in) = auth
        .answer(
            &challenge,
            Answer::MfaCode(fresh_totp().await),
            client_addr(),
        )
        .await
        .unwrap()
    else {
        panic!("signed in with the right code");
    };
    assert_eq!(signed_in.user.sub, tokens.user.sub);
}
