//! Verification of the pool's JSON Web Tokens: the RS256 signature against the pool's JWKS,
//! then issuer, audience (`aud` of ID tokens, `client_id` of access tokens), expiry and
//! `token_use`, as Cognito documents for verifying its tokens.
//!
//! The key set is fetched on first use and cached. A token signed with a key id the cache does
//! not know triggers one refetch (Cognito may have rotated its keys), but at most once per
//! [`MIN_REFETCH`]: a stream of forged key ids cannot turn the app into a client hammering the
//! JWKS endpoint. Fetches have a timeout and a size limit, and only one runs at a time.
//!
//! Invariant: only RS256 is accepted, with keys from the configured JWKS URL alone; the `jku`,
//! `jwk` and `x5u` header fields and `alg: none` are never honoured, and no error message
//! contains a token.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// The least time between two JWKS fetches after the first.
pub const MIN_REFETCH: Duration = Duration::from_secs(60);
/// How long to wait before retrying a JWKS fetch that failed.
const RETRY_FAILED_FETCH: Duration = Duration::from_secs(5);
/// The largest JWKS document read (Cognito's is about 1 KiB).
const MAX_JWKS_BYTES: usize = 64 * 1024;
/// The largest token looked at (Cognito's are 1–4 KiB; group claims make ID tokens grow).
const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// The whole JWKS fetch, connect included.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Clock skew allowed on `exp`.
const LEEWAY_SECS: u64 = 30;

/// Which of the pool's tokens is being verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenUse {
    /// An access token (`token_use: access`, `client_id` claim).
    Access,
    /// An ID token (`token_use: id`, `aud` claim).
    Id,
}

impl TokenUse {
    fn claim(self) -> &'static str {
        match self {
            TokenUse::Access => "access",
            TokenUse::Id => "id",
        }
    }
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Not three base64url parts with a JSON header, or a header naming an unknown algorithm
    /// (`none` included).
    #[error("token is malformed")]
    Malformed,
    /// Longer than any token Cognito issues.
    #[error("token is longer than {MAX_TOKEN_BYTES} bytes")]
    TooLong,
    /// Signed with an algorithm other than RS256.
    #[error("token is signed with {0:?}; only RS256 is accepted")]
    Algorithm(Algorithm),
    /// No `kid` in the header.
    #[error("token header has no key id")]
    MissingKeyId,
    /// The pool publishes no key with the token's `kid`.
    #[error("token is signed with a key the user pool does not publish")]
    UnknownKey,
    /// The signature does not verify.
    #[error("token signature is invalid")]
    Signature,
    /// `exp` is past.
    #[error("token has expired")]
    Expired,
    /// `iss` is not the pool.
    #[error("token was issued by another user pool or issuer")]
    Issuer,
    /// `aud` (ID token) or `client_id` (access token) is not this app's client.
    #[error("token was issued to another app client")]
    Audience,
    /// `token_use` is not the expected one.
    #[error("token is not an {expected} token")]
    TokenUse {
        /// The expected `token_use`.
        expected: &'static str,
    },
    /// A claim the app needs is missing or has the wrong type.
    #[error("token claim `{0}` is missing or invalid")]
    Claim(String),
    /// The key set could not be fetched.
    #[error("cannot read the user pool's signing keys from {url}: {message}")]
    Jwks {
        /// The JWKS URL.
        url: String,
        /// What failed.
        message: String,
    },
}

/// The claims of a verified token the app uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedClaims {
    /// The user's immutable id in the pool.
    pub sub: String,
    /// Cognito's name of the user (`username` in access tokens, `cognito:username` in ID
    /// tokens); the `sub` itself in pools that sign in with an email alias.
    pub username: String,
    /// The email address, when the ID token carries one.
    pub email: Option<String>,
    /// The user's Cognito groups (`cognito:groups`; empty when the token has none).
    pub groups: Vec<String>,
    /// When the token stops being valid.
    pub expires_at: SystemTime,
    /// When the token was issued.
    pub issued_at: SystemTime,
}

#[derive(Deserialize)]
struct RawClaims {
    sub: String,
    token_use: String,
    exp: u64,
    #[serde(default)]
    iat: Option<u64>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default, rename = "cognito:username")]
    cognito_username: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default, rename = "cognito:groups")]
    groups: Vec<String>,
}

/// Verifies the tokens of one user pool and app client.
#[derive(Debug)]
pub struct TokenVerifier {
    issuer: String,
    client_id: String,
    jwks: Jwks,
}

impl TokenVerifier {
    /// A verifier of tokens from `issuer` for `client_id`, with keys from `jwks_url`.
    pub fn new(issuer: String, client_id: String, jwks_url: String) -> TokenVerifier {
        TokenVerifier {
            issuer,
            client_id,
            jwks: Jwks::new(jwks_url, MIN_REFETCH),
        }
    }

    /// The same verifier with another least time between JWKS fetches (tests of key rotation
    /// use a short one).
    pub fn with_min_refetch(mut self, min_refetch: Duration) -> TokenVerifier {
        self.jwks.min_refetch = min_refetch;
        self
    }

    /// Verifies `token` as a `token_use` token of the pool and returns its claims.
    pub async fn verify(
        &self,
        token: &str,
        token_use: TokenUse,
    ) -> Result<VerifiedClaims, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLong);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::RS256 {
            return Err(TokenError::Algorithm(header.alg));
        }
        let kid = header.kid.ok_or(TokenError::MissingKeyId)?;
        let key = self.jwks.key(&kid).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = LEEWAY_SECS;
        validation.set_issuer(&[&self.issuer]);
        match token_use {
            TokenUse::Id => {
                validation.set_audience(&[&self.client_id]);
                validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
            }
            TokenUse::Access => {
                // Access tokens carry `client_id` instead of `aud`; it is checked below.
                validation.validate_aud = false;
                validation.set_required_spec_claims(&["exp", "iss", "sub"]);
            }
        }
        let data = jsonwebtoken::decode::<RawClaims>(token, &key, &validation)
            .map_err(validation_error)?;
        let claims = data.claims;
        if claims.token_use != token_use.claim() {
            return Err(TokenError::TokenUse {
                expected: token_use.claim(),
            });
        }
        let username = match token_use {
            TokenUse::Access => {
                if claims.client_id.as_deref() != Some(self.client_id.as_str()) {
                    return Err(TokenError::Audience);
                }
                claims.username
            }
            TokenUse::Id => claims.cognito_username,
        }
        .filter(|name| !name.is_empty())
        .ok_or_else(|| {
            TokenError::Claim(match token_use {
                TokenUse::Access => "username".to_owned(),
                TokenUse::Id => "cognito:username".to_owned(),
            })
        })?;
        if claims.sub.is_empty() {
            return Err(TokenError::Claim("sub".to_owned()));
        }
        let expires_at = UNIX_EPOCH + Duration::from_secs(claims.exp);
        let issued_at = claims.iat.map_or(SystemTime::now(), |iat| {
            UNIX_EPOCH + Duration::from_secs(iat)
        });
        Ok(VerifiedClaims {
            sub: claims.sub,
            username,
            email: claims.email,
            groups: claims.groups,
            expires_at,
            issued_at,
        })
    }
}

fn validation_error(err: jsonwebtoken::errors::Error) -> TokenError {
    use jsonwebtoken::errors::ErrorKind;
    match err.kind() {
        ErrorKind::InvalidSignature => TokenError::Signature,
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::InvalidIssuer => TokenError::Issuer,
        ErrorKind::InvalidAudience => TokenError::Audience,
        ErrorKind::MissingRequiredClaim(claim) | ErrorKind::InvalidClaimFormat(claim) => {
            TokenError::Claim(claim.clone())
        }
        ErrorKind::Json(_) => TokenError::Claim("a required claim".to_owned()),
        _ => TokenError::Malformed,
    }
}

/// The pool's signing keys, fetched lazily and refetched for unknown key ids at most once per
/// `min_refetch`.
#[derive(Debug)]
struct Jwks {
    url: String,
    min_refetch: Duration,
    http: Result<reqwest::Client, String>,
    keys: RwLock<HashMap<String, DecodingKey>>,
    /// When the next fetch may start; `None` before the first. Held across a fetch, so only
    /// one runs and the others wait for its result.
    next_fetch: tokio::sync::Mutex<Option<Instant>>,
}

impl Jwks {
    fn new(url: String, min_refetch: Duration) -> Jwks {
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| err.to_string());
        Jwks {
            url,
            min_refetch,
            http,
            keys: RwLock::new(HashMap::new()),
            next_fetch: tokio::sync::Mutex::new(None),
        }
    }

    fn cached(&self, kid: &str) -> Option<DecodingKey> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(kid)
            .cloned()
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, TokenError> {
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        let mut next_fetch = self.next_fetch.lock().await;
        // Another request may have fetched the set while this one waited.
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        if next_fetch.is_some_and(|at| Instant::now() < at) {
            return Err(TokenError::UnknownKey);
        }
        match self.fetch().await {
            Ok(keys) => {
                *next_fetch = Some(Instant::now() + self.min_refetch);
                tracing::debug!(url = %self.url, n_keys = keys.len(), "fetched the user pool's signing keys");
                *self
                    .keys
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = keys;
            }
            Err(message) => {
                *next_fetch = Some(Instant::now() + RETRY_FAILED_FETCH.min(self.min_refetch));
                return Err(TokenError::Jwks {
                    url: self.url.clone(),
                    message,
                });
            }
        }
        self.cached(kid).ok_or(TokenError::UnknownKey)
    }

    async fn fetch(&self) -> Result<HashMap<String, DecodingKey>, String> {
        let http = self.http.as_ref().map_err(Clone::clone)?;
        let mut response = http
            .get(&self.url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(describe)?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(describe)? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(format!(
                    "the document is larger than {MAX_JWKS_BYTES} bytes"
                ));
            }
            body.extend_from_slice(&chunk);
        }
        parse_jwks(&body)
    }
}

fn describe(err: reqwest::Error) -> String {
    if err.is_timeout() {
        format!("no answer within {} s", FETCH_TIMEOUT.as_secs())
    } else if err.is_connect() {
        "cannot connect".to_owned()
    } else {
        err.without_url().to_string()
    }
}

/// The RSA signing keys of a JWKS document by key id; keys of other types or uses, and keys
/// that do not parse, are skipped so that one odd key does not lock every user out.
fn parse_jwks(body: &[u8]) -> Result<HashMap<String, DecodingKey>, String> {
    #[derive(Deserialize)]
    struct Document {
        keys: Vec<serde_json::Value>,
    }
    let document: Document =
        serde_json::from_slice(body).map_err(|err| format!("not a JWKS document ({err})"))?;
    let mut keys = HashMap::new();
    for value in document.keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
            continue;
        };
        let signing = !matches!(
            jwk.common.public_key_use,
            Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
        );
        let rs256 = jwk
            .common
            .key_algorithm
            .is_none_or(|alg| alg == jsonwebtoken::jwk::KeyAlgorithm::RS256);
        let is_rsa = matches!(
            jwk.algorithm,
            jsonwebtoken::jwk::AlgorithmParameters::RSA(_)
        );
        let (Some(kid), true, true, true) = (jwk.common.key_id.clone(), signing, rs256, is_rsa)
        else {
            continue;
        };
        if let Ok(key) = DecodingKey::from_jwk(&jwk) {
            keys.insert(kid, key);
        }
    }
    if keys.is_empty() {
        return Err("the document has no RS256 signing key".to_owned());
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwks_parsing_keeps_rs256_signing_keys() {
        let rsa = r#"{"kty":"RSA","kid":"k1","alg":"RS256","use":"sig","n":"sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw","e":"AQAB"}"#;
        let enc = rsa
            .replace("\"k1\"", "\"k2\"")
            .replace("\"sig\"", "\"enc\"");
        let other = r#"{"kty":"EC","kid":"k3","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;
        let junk = r#"{"kty":"RSA","kid":"k4"}"#;
        let body = format!(r#"{{"keys":[{rsa},{enc},{other},{junk}]}}"#);
        let keys = parse_jwks(body.as_bytes()).expect("parses");
        assert_eq!(keys.keys().collect::<Vec<_>>(), vec!["k1"]);
    }

    #[test]
    fn jwks_without_usable_keys_is_an_error() {
        assert_eq!(
            parse_jwks(br#"{"keys":[]}"#).err().as_deref(),
            Some("the document has no RS256 signing key")
        );
        assert!(
            parse_jwks(b"<html>")
                .err()
                .is_some_and(|err| err.starts_with("not a JWKS document"))
        );
    }
}
