//! What the login keeps in a server-side session, sealed for the store: a sign-in waiting at a
//! challenge, or the verified tokens of a signed-in user.
//!
//! The store keeps this as an opaque string. It is encrypted and authenticated (AES-256-GCM,
//! a random nonce per seal) under a key derived from the app client secret, and bound to the
//! session id, so a copy of the database yields no usable token, and data moved from one
//! session row to another does not open. Without a client secret the key is random per
//! process: sessions then end when the process does.
//!
//! Invariant: tokens and the challenge session are plain text only inside [`SealKey::seal`]
//! and [`SealKey::open`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::{Challenge, ChallengeKind, Tokens, User};

/// The version tag of the sealed format.
const PREFIX: &str = "v1.";
/// The largest sealed value opened (tokens are a few KiB).
const MAX_SEALED: usize = 64 * 1024;

/// What a session holds for the login.
#[derive(Debug, Clone)]
pub enum SessionAuth {
    /// A sign-in waiting for the answer to a challenge.
    Pending(Challenge),
    /// A signed-in user.
    SignedIn(Tokens),
}

/// Why sealed data did not open: tampered with, from another session or key (a restart
/// without a client secret), or of an older format. The session is then treated as signed out.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the session's login data does not open")]
pub struct OpenError;

/// The key that seals [`SessionAuth`].
pub struct SealKey {
    key: RandomizedNonceKey,
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(<redacted>)")
    }
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum Plain {
    Pending {
        kind: PlainKind,
        username: String,
        session: String,
        started_unix: u64,
    },
    SignedIn {
        sub: String,
        username: String,
        email: Option<String>,
        #[serde(default)]
        groups: Vec<String>,
        id_token: String,
        access_token: String,
        refresh_token: String,
        expires_unix: u64,
        issued_unix: u64,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum PlainKind {
    NewPassword,
    SoftwareTokenMfa,
}

impl SealKey {
    /// The key of an app client: derived from its secret (HMAC-SHA256 over the pool and client
    /// ids), or random when it has none.
    pub fn derive(
        client_secret: Option<&SecretString>,
        user_pool_id: &str,
        client_id: &str,
    ) -> SealKey {
        let mut key_bytes = [0u8; 32];
        match client_secret {
            Some(secret) => {
                let hmac_key = aws_lc_rs::hmac::Key::new(
                    aws_lc_rs::hmac::HMAC_SHA256,
                    secret.expose_secret().as_bytes(),
                );
                let mut context = aws_lc_rs::hmac::Context::with_key(&hmac_key);
                context.update(b"llm-eval session login data v1\0");
                context.update(user_pool_id.as_bytes());
                context.update(b"\0");
                context.update(client_id.as_bytes());
                key_bytes.copy_from_slice(context.sign().as_ref());
            }
            None => {
                // The system RNG does not fail on the platforms we build for; a zero key would
                // still authenticate correctly, only without secrecy against a copy of the store.
                if aws_lc_rs::rand::fill(&mut key_bytes).is_err() {
                    tracing::error!("no system randomness for the session key");
                }
            }
        }
        SealKey {
            key: RandomizedNonceKey::new(&AES_256_GCM, &key_bytes)
                .expect("AES-256-GCM accepts a 32-byte key"),
        }
    }

    /// `auth` sealed for the session `session_id`.
    pub fn seal(&self, auth: &SessionAuth, session_id: &str) -> String {
        let plain = match auth {
            SessionAuth::Pending(challenge) => Plain::Pending {
                kind: match challenge.kind {
                    ChallengeKind::NewPassword => PlainKind::NewPassword,
                    ChallengeKind::SoftwareTokenMfa => PlainKind::SoftwareTokenMfa,
                },
                username: challenge.username.clone(),
                session: challenge.session.expose_secret().to_owned(),
                started_unix: unix(challenge.started),
            },
            SessionAuth::SignedIn(tokens) => Plain::SignedIn {
                sub: tokens.user.sub.clone(),
                username: tokens.user.username.clone(),
                email: tokens.user.email.clone(),
                groups: tokens.user.groups.clone(),
                id_token: tokens.id_token.expose_secret().to_owned(),
                access_token: tokens.access_token.expose_secret().to_owned(),
                refresh_token: tokens.refresh_token.expose_secret().to_owned(),
                expires_unix: unix(tokens.expires_at),
                issued_unix: unix(tokens.issued_at),
            },
        };
        let mut buffer =
            serde_json::to_vec(&plain).expect("plain login data is strings and numbers");
        let nonce = self
            .key
            .seal_in_place_append_tag(Aad::from(session_id.as_bytes()), &mut buffer)
            .expect("sealing a buffer with a random nonce does not fail");
        let mut sealed = nonce.as_ref().to_vec();
        sealed.extend_from_slice(&buffer);
        format!("{PREFIX}{}", aws_smithy_types::base64::encode(&sealed))
    }

    /// The login data sealed for `session_id`.
    pub fn open(&self, sealed: &str, session_id: &str) -> Result<SessionAuth, OpenError> {
        if sealed.len() > MAX_SEALED {
            return Err(OpenError);
        }
        let encoded = sealed.strip_prefix(PREFIX).ok_or(OpenError)?;
        let mut bytes = aws_smithy_types::base64::decode(encoded).map_err(|_| OpenError)?;
        if bytes.len() < NONCE_LEN {
            return Err(OpenError);
        }
        let mut ciphertext = bytes.split_off(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&bytes).map_err(|_| OpenError)?;
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(session_id.as_bytes()), &mut ciphertext)
            .map_err(|_| OpenError)?;
        let plain: Plain = serde_json::from_slice(plain).map_err(|_| OpenError)?;
        Ok(match plain {
            Plain::Pending {
                kind,
                username,
                session,
                started_unix,
            } => SessionAuth::Pending(Challenge {
                kind: match kind {
                    PlainKind::NewPassword => ChallengeKind::NewPassword,
                    PlainKind::SoftwareTokenMfa => ChallengeKind::SoftwareTokenMfa,
                },
                username,
                session: SecretString::from(session),
                started: from_unix(started_unix),
            }),
            Plain::SignedIn {
                sub,
                username,
                email,
                groups,
                id_token,
                access_token,
                refresh_token,
                expires_unix,
                issued_unix,
            } => SessionAuth::SignedIn(Tokens {
                user: User {
                    sub,
                    username,
                    email,
                    groups,
                },
                id_token: SecretString::from(id_token),
                access_token: SecretString::from(access_token),
                refresh_token: SecretString::from(refresh_token),
                expires_at: from_unix(expires_unix),
                issued_at: from_unix(issued_unix),
            }),
        })
    }
}

fn unix(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

fn from_unix(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        Tokens {
            user: User {
                sub: "5f1b9a7e".into(),
                username: "alice".into(),
                email: Some("alice@example.com".into()),
                groups: vec!["facilitators".into()],
            },
            id_token: SecretString::from("id.token.value".to_owned()),
            access_token: SecretString::from("access.token.value".to_owned()),
            refresh_token: SecretString::from("refresh-token-value".to_owned()),
            expires_at: from_unix(2_000_000_000),
            issued_at: from_unix(1_999_996_400),
        }
    }

    fn key(secret: &str) -> SealKey {
        SealKey::derive(
            Some(&SecretString::from(secret.to_owned())),
            "eu-west-1_Pool",
            "client",
        )
    }

    #[test]
    fn sealed_tokens_open_for_their_session_only() {
        let key = key("client-secret");
        let sealed = key.seal(&SessionAuth::SignedIn(tokens()), "session-a");
        assert!(sealed.starts_with("v1."));
        for secret in [
            "id.token.value",
            "access.token.value",
            "refresh-token-value",
            "alice",
        ] {
            assert!(!sealed.contains(secret), "{secret} in {sealed}");
        }
        let SessionAuth::SignedIn(opened) = key.open(&sealed, "session-a").expect("opens") else {
            panic!("signed in");
        };
        assert_eq!(opened.user, tokens().user);
        assert_eq!(opened.refresh_token.expose_secret(), "refresh-token-value");
        assert_eq!(opened.expires_at, tokens().expires_at);

        assert_eq!(key.open(&sealed, "session-b").err(), Some(OpenError));
        assert_eq!(
            super::SealKey::open(&self::key("other-secret"), &sealed, "session-a").err(),
            Some(OpenError)
        );
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 3;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).expect("ascii");
        assert_eq!(key.open(&tampered, "session-a").err(), Some(OpenError));
        assert_eq!(key.open("v0.abc", "session-a").err(), Some(OpenError));
        assert_eq!(key.open("v1.", "session-a").err(), Some(OpenError));
        // Two seals of the same data differ (random nonce).
        assert_ne!(
            sealed,
            key.seal(&SessionAuth::SignedIn(tokens()), "session-a")
        );
    }

    #[test]
    fn pending_challenges_round_trip() {
        let key = key("client-secret");
        let challenge = Challenge {
            kind: ChallengeKind::SoftwareTokenMfa,
            username: "alice".into(),
            session: SecretString::from("cognito-session".to_owned()),
            started: from_unix(1_999_999_000),
        };
        let sealed = key.seal(&SessionAuth::Pending(challenge), "s");
        let SessionAuth::Pending(opened) = key.open(&sealed, "s").expect("opens") else {
            panic!("pending");
        };
        assert_eq!(opened.kind, ChallengeKind::SoftwareTokenMfa);
        assert_eq!(opened.username(), "alice");
        assert_eq!(opened.session.expose_secret(), "cognito-session");
        assert_eq!(opened.started, from_unix(1_999_999_000));
    }

    #[test]
    fn without_a_secret_the_key_is_per_process() {
        let first = SealKey::derive(None, "p", "c");
        let second = SealKey::derive(None, "p", "c");
        let sealed = first.seal(&SessionAuth::SignedIn(tokens()), "s");
        assert!(first.open(&sealed, "s").is_ok());
        assert_eq!(second.open(&sealed, "s").err(), Some(OpenError));
        assert_eq!(format!("{first:?}"), "SealKey(<redacted>)");
    }
}
