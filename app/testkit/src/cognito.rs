//! Amazon Cognito for the tests, on a moto server: a user pool like the app stack's with an app
//! client that has a secret, users created with a temporary password, the first login, forged
//! tokens signed by a key the test holds (served by a local JWKS server), and authenticator-app
//! codes (RFC 6238) for moto's fixed TOTP secret.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auth::{Answer, AuthConfig, Authenticator, SignIn, Tokens};
use aws_sdk_cognitoidentityprovider::Client as AdminClient;
use aws_sdk_cognitoidentityprovider::types::{
    ExplicitAuthFlowsType, MessageActionType, PasswordPolicyType, UserPoolPolicyType,
};
use engine::providers::aws::local_sdk_config;
use model_doubles::Moto;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

/// A temporary password as `deployer users` hands them out.
pub const TEMPORARY_PASSWORD: &str = "Temp-Passw0rd-2024!";
/// A password that meets the pool's policy.
pub const NEW_PASSWORD: &str = "Chosen-Passw0rd-2024!";
pub const CLIENT_ADDR: &str = "203.0.113.7";

/// A user pool and app client (with a secret) in a moto server.
pub struct Pool {
    /// The pool id.
    pub pool_id: String,
    /// The app client id.
    pub client_id: String,
    /// The app client secret.
    pub client_secret: String,
    /// The moto server's URL.
    pub endpoint: String,
}

impl Pool {
    /// A pool like the app stack's: 14-character passwords with every character class, an app
    /// client with a secret and the password and refresh flows.
    pub async fn create(moto: &Moto) -> Pool {
        let admin = admin(moto.url());
        let pool = admin
            .create_user_pool()
            .pool_name("llm-eval-users")
            .policies(
                UserPoolPolicyType::builder()
                    .password_policy(
                        PasswordPolicyType::builder()
                            .minimum_length(14)
                            .require_uppercase(true)
                            .require_lowercase(true)
                            .require_numbers(true)
                            .require_symbols(true)
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let pool_id = pool
            .user_pool()
            .and_then(|pool| pool.id())
            .unwrap()
            .to_owned();
        let client = admin
            .create_user_pool_client()
            .user_pool_id(&pool_id)
            .client_name("llm-eval-app")
            .generate_secret(true)
            .explicit_auth_flows(ExplicitAuthFlowsType::AllowUserPasswordAuth)
            .explicit_auth_flows(ExplicitAuthFlowsType::AllowRefreshTokenAuth)
            .send()
            .await
            .unwrap();
        let client = client.user_pool_client().unwrap();
        Pool {
            pool_id,
            client_id: client.client_id().unwrap().to_owned(),
            client_secret: client.client_secret().unwrap().to_owned(),
            endpoint: moto.url().to_owned(),
        }
    }

    /// `AdminCreateUser` with [`TEMPORARY_PASSWORD`] (no invitation message).
    pub async fn create_user(&self, username: &str) {
        admin(&self.endpoint)
            .admin_create_user()
            .user_pool_id(&self.pool_id)
            .username(username)
            .temporary_password(TEMPORARY_PASSWORD)
            .message_action(MessageActionType::Suppress)
            .send()
            .await
            .unwrap();
    }

    /// The login settings of an app using this pool, with moto's endpoint and JWKS.
    pub fn config(&self) -> AuthConfig {
        let vars = [
            ("COGNITO_USER_POOL_ID", self.pool_id.clone()),
            ("COGNITO_CLIENT_ID", self.client_id.clone()),
            ("COGNITO_CLIENT_SECRET", self.client_secret.clone()),
            (
                "COGNITO_JWKS_URL",
                format!("{}/{}/.well-known/jwks.json", self.endpoint, self.pool_id),
            ),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
        ];
        AuthConfig::from_lookup(|name| {
            Ok(vars
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.clone()))
        })
        .unwrap()
        .unwrap()
    }
}

pub fn admin(endpoint: &str) -> AdminClient {
    AdminClient::new(&local_sdk_config(endpoint))
}

pub fn secret(text: &str) -> SecretString {
    SecretString::from(text.to_owned())
}

pub fn client_addr() -> IpAddr {
    CLIENT_ADDR.parse().unwrap()
}

/// Signs `username` in with the temporary password and answers the new-password challenge.
pub async fn first_login(auth: &Authenticator, username: &str) -> Tokens {
    let challenge = match auth
        .sign_in(username, &secret(TEMPORARY_PASSWORD), client_addr())
        .await
        .unwrap()
    {
        SignIn::Challenge(challenge) => challenge,
        SignIn::Done(_) => panic!("a temporary password must ask for a new one"),
    };
    match auth
        .answer(
            &challenge,
            Answer::NewPassword(secret(NEW_PASSWORD)),
            client_addr(),
        )
        .await
        .unwrap()
    {
        SignIn::Done(tokens) => tokens,
        SignIn::Challenge(other) => panic!("unexpected second challenge {other:?}"),
    }
}

/// Signs `username` in with `password`, which must need no further step.
pub async fn sign_in_with(auth: &Authenticator, username: &str, password: &str) -> Tokens {
    match auth
        .sign_in(username, &secret(password), client_addr())
        .await
        .unwrap()
    {
        SignIn::Done(tokens) => tokens,
        SignIn::Challenge(challenge) => panic!("unexpected challenge {challenge:?}"),
    }
}

/// An RSA key of the test's own, published by [`JwksServer`].
pub struct TestKey {
    pair: aws_lc_rs::rsa::KeyPair,
    kid: String,
}

impl TestKey {
    /// A fresh 2048-bit key with key id `kid`.
    pub fn generate(kid: &str) -> TestKey {
        TestKey {
            pair: aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap(),
            kid: kid.to_owned(),
        }
    }

    /// The key as a JWK.
    pub fn jwk(&self) -> Value {
        use aws_lc_rs::signature::KeyPair as _;
        let public = self.pair.public_key();
        json!({
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": self.kid,
            "n": b64url(public.modulus().big_endian_without_leading_zero()),
            "e": b64url(public.exponent().big_endian_without_leading_zero()),
        })
    }

    /// A JWT with `header` and `claims`, signed RS256 with this key.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let message = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let mut signature = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                message.as_bytes(),
                &mut signature,
            )
            .unwrap();
        format!("{message}.{}", b64url(&signature))
    }
}

/// Base64url without padding, as JWTs use it.
pub fn b64url(bytes: &[u8]) -> String {
    aws_smithy_types::base64::encode(bytes)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn issuer(pool: &Pool) -> String {
    format!(
        "https://cognito-idp.us-east-1.amazonaws.com/{}",
        pool.pool_id
    )
}

/// The claims of a Cognito access token of `pool`'s client expiring in `expires_in` seconds
/// (negative: already expired).
pub fn access_claims(pool: &Pool, expires_in: i64) -> Value {
    let now = now_secs();
    json!({
        "sub": "5f1b9a7e-0000-4000-8000-000000000001",
        "iss": issuer(pool),
        "client_id": pool.client_id,
        "token_use": "access",
        "scope": "aws.cognito.signin.user.admin",
        "username": "alice",
        "iat": now,
        "auth_time": now,
        "exp": now.saturating_add_signed(expires_in),
    })
}

/// A local JWKS endpoint serving a key set the test can change, counting its requests.
pub struct JwksServer {
    /// Where the key set is served.
    pub url: String,
    state: Arc<Mutex<(String, usize)>>,
}

impl JwksServer {
    /// Serves `body` as the key set.
    pub async fn start(body: String) -> JwksServer {
        let state = Arc::new(Mutex::new((body, 0usize)));
        let shared = state.clone();
        let router = axum::Router::new().route(
            "/jwks.json",
            axum::routing::get(move || {
                let shared = shared.clone();
                async move {
                    let mut state = shared.lock().unwrap();
                    state.1 += 1;
                    state.0.clone()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        JwksServer { url, state }
    }

    /// Serves `body` from now on.
    pub fn serve(&self, body: String) {
        self.state.lock().unwrap().0 = body;
    }

    /// How many times the key set was fetched.
    pub fn requests(&self) -> usize {
        self.state.lock().unwrap().1
    }
}

pub fn key_set(keys: &[&TestKey]) -> String {
    json!({"keys": keys.iter().map(|key| key.jwk()).collect::<Vec<_>>()}).to_string()
}

/// moto's fixed TOTP secret (`COGNITO_TOTP_MFA_SECRET`), Base32 without padding.
pub const MOTO_TOTP_SECRET: &str = "asdfasdfasdf";

/// RFC 4648 Base32 (case-insensitive, padding ignored).
pub fn base32_decode(text: &str) -> Vec<u8> {
    let mut bits = 0u64;
    let mut n_bits = 0;
    let mut out = Vec::new();
    for c in text.trim_end_matches('=').chars() {
        let value = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
            .find(c.to_ascii_uppercase())
            .unwrap() as u64;
        bits = (bits << 5) | value;
        n_bits += 5;
        if n_bits >= 8 {
            n_bits -= 8;
            out.push((bits >> n_bits) as u8);
            bits &= (1 << n_bits) - 1;
        }
    }
    out
}

/// The RFC 6238 code (SHA-1, 30 s, 6 digits) of `secret` at Unix time `unix_secs`.
pub fn totp(secret: &str, unix_secs: u64) -> String {
    let key = aws_lc_rs::hmac::Key::new(
        aws_lc_rs::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        &base32_decode(secret),
    );
    let tag = aws_lc_rs::hmac::sign(&key, &(unix_secs / 30).to_be_bytes());
    let digest = tag.as_ref();
    let offset = usize::from(digest[19] & 0x0f);
    let number = u32::from_be_bytes(digest[offset..offset + 4].try_into().unwrap()) & 0x7fff_ffff;
    format!("{:06}", number % 1_000_000)
}

/// A code that moto will check within the same 30-second window.
pub async fn fresh_totp() -> String {
    if now_secs() % 30 > 25 {
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    totp(MOTO_TOTP_SECRET, now_secs())
}

/// Enrols `username` (signed in with `tokens`) in an authenticator app (moto's fixed TOTP
/// secret) and makes it their preferred MFA; moto must run with TOTP checking on.
pub async fn enrol_authenticator_app(pool: &Pool, username: &str, tokens: &Tokens) {
    let cognito = admin(&pool.endpoint);
    let access_token = tokens.access_token().expose_secret();
    cognito
        .associate_software_token()
        .access_token(access_token)
        .send()
        .await
        .unwrap();
    cognito
        .verify_software_token()
        .access_token(access_token)
        .user_code(fresh_totp().await)
        .send()
        .await
        .unwrap();
    cognito
        .admin_set_user_mfa_preference()
        .user_pool_id(&pool.pool_id)
        .username(username)
        .software_token_mfa_settings(
            aws_sdk_cognitoidentityprovider::types::SoftwareTokenMfaSettingsType::builder()
                .enabled(true)
                .preferred_mfa(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
}
