//! Keeping credentials out of everything a provider returns: the secrets it holds (the API key,
//! the user and password of a base or endpoint URL, credential-like query parameters) are
//! replaced in every error message and answer, because those go into records.jsonl,
//! records.csv, the run store and the terminal; and URLs are shown (and used as cache scopes)
//! without them.
//!
//! Invariant: a [`Redactor`] never prints its secrets (`Debug` shows only how many it holds).

use std::borrow::Cow;

use secrecy::{ExposeSecret, SecretString};

use super::ProviderError;

/// What a redacted secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Secrets shorter than this are not redacted: replacing every `a` of a message would only
/// garble it, and such a short secret protects nothing anyway.
const MIN_SECRET_CHARS: usize = 4;

/// Query parameters whose value is a credential (by a substring of their name).
const CREDENTIAL_PARAMS: &[&str] = &[
    "key",
    "token",
    "secret",
    "sig",
    "pass",
    "auth",
    "credential",
];

/// Replaces the secrets of one provider wherever they appear.
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Vec<SecretString>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

impl Redactor {
    /// A redactor of `secrets` (too short ones are skipped; longest first, so a secret that
    /// contains another is replaced whole).
    pub fn new(secrets: impl IntoIterator<Item = SecretString>) -> Redactor {
        let mut secrets: Vec<SecretString> = secrets
            .into_iter()
            .filter(|secret| secret.expose_secret().chars().count() >= MIN_SECRET_CHARS)
            .collect();
        secrets.sort_by_key(|secret| std::cmp::Reverse(secret.expose_secret().len()));
        Redactor { secrets }
    }

    /// Adds the credentials of `url` (user, password, credential-like query values).
    pub fn with_url_credentials(mut self, url: &str) -> Redactor {
        let found = url_credentials(url);
        let mut all = std::mem::take(&mut self.secrets);
        all.extend(found);
        Redactor::new(all)
    }

    /// `text` with every secret replaced by [`REDACTED`].
    pub fn clean<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let mut text = Cow::Borrowed(text);
        for secret in &self.secrets {
            let secret = secret.expose_secret();
            if text.contains(secret) {
                text = Cow::Owned(text.replace(secret, REDACTED));
            }
            // A URL-encoded secret (a password with `@` or `/` in a URL) too.
            let encoded = percent_encode(secret);
            if encoded != secret && text.contains(&encoded) {
                text = Cow::Owned(text.replace(&encoded, REDACTED));
            }
        }
        text
    }

    /// The error with its message cleaned.
    pub fn error(&self, error: ProviderError) -> ProviderError {
        error.map_message(|message| self.clean(&message).into_owned())
    }
}

/// `url` without its user, password and credential-like query values (shown as
/// [`REDACTED`]); text that is not a URL is returned as is.
pub fn url_without_credentials(url: &str) -> String {
    let Ok(mut parsed) = reqwest::Url::parse(url) else {
        return url.to_owned();
    };
    if parsed.cannot_be_a_base() {
        return url.to_owned();
    }
    let _ = parsed.set_username("");
    let _ = parsed.set_password(None);
    if parsed.query().is_some() {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(name, value)| {
                let value = if is_credential_param(&name) {
                    REDACTED.to_owned()
                } else {
                    value.into_owned()
                };
                (name.into_owned(), value)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

fn is_credential_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    CREDENTIAL_PARAMS.iter().any(|part| name.contains(part))
}

/// The credentials a URL carries, decoded.
fn url_credentials(url: &str) -> Vec<SecretString> {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let decode = |text: &str| percent_decode(text).unwrap_or_else(|| text.to_owned());
    if !parsed.username().is_empty() {
        found.push(SecretString::from(decode(parsed.username())));
    }
    if let Some(password) = parsed.password() {
        found.push(SecretString::from(decode(password)));
    }
    for (name, value) in parsed.query_pairs() {
        if is_credential_param(&name) && !value.is_empty() {
            found.push(SecretString::from(value.into_owned()));
        }
    }
    found
}

/// RFC 3986 percent-encoding of everything but unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes; `None` when the result is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut idx = 0;
    while idx < bytes.len() {
        if bytes[idx] == b'%'
            && let Some(hex) = text.get(idx + 1..idx + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            idx += 3;
            continue;
        }
        out.push(bytes[idx]);
        idx += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redactor(secrets: &[&str]) -> Redactor {
        Redactor::new(
            secrets
                .iter()
                .map(|secret| SecretString::from(secret.to_string())),
        )
    }

    #[test]
    fn secrets_are_replaced_everywhere() {
        let redactor = redactor(&["sk-live-abc123", "p@ss/word", "xy"]);
        assert_eq!(
            redactor.clean("Incorrect API key provided: sk-live-abc123. Key sk-live-abc123"),
            "Incorrect API key provided: [redacted]. Key [redacted]"
        );
        assert_eq!(
            redactor.clean("GET http://u:p%40ss%2Fword@host/"),
            "GET http://u:[redacted]@host/"
        );
        // Too short to redact.
        assert_eq!(redactor.clean("xylophone"), "xylophone");
        assert!(!format!("{redactor:?}").contains("abc123"));
    }

    #[test]
    fn urls_lose_their_credentials() {
        assert_eq!(
            url_without_credentials("http://user:secret@host:8080/v1"),
            "http://host:8080/v1"
        );
        assert_eq!(
            url_without_credentials("https://gw.example/v1?api-version=2024-02-01&api_key=abc"),
            "https://gw.example/v1?api-version=2024-02-01&api_key=%5Bredacted%5D"
        );
        assert_eq!(url_without_credentials("not a url"), "not a url");
        let redactor = Redactor::default()
            .with_url_credentials("http://alice:s%3Acret@host/v1?token=t0k3n&page=2");
        assert_eq!(
            redactor.clean("alice s:cret t0k3n page=2"),
            "[redacted] [redacted] [redacted] page=2"
        );
    }

    #[test]
    fn errors_are_cleaned() {
        let redactor = redactor(&["sk-live-abc123"]);
        let error = redactor.error(ProviderError::Permanent {
            provider: "openai",
            message: "HTTP 401: bad key sk-live-abc123".into(),
        });
        assert_eq!(
            error.to_string(),
            "openai rejected the request: HTTP 401: bad key [redacted]"
        );
    }

    proptest::proptest! {
        #[test]
        fn a_secret_never_survives(secret in "[a-zA-Z0-9@:/%_-]{4,20}", before in "\\PC{0,20}", after in "\\PC{0,20}") {
            proptest::prop_assume!(!REDACTED.contains(&secret));
            let redactor = redactor(&[&secret]);
            let cleaned = redactor.clean(&format!("{before}{secret}{after}")).into_owned();
            proptest::prop_assert!(!cleaned.contains(&secret), "{cleaned}");
        }
    }
}
