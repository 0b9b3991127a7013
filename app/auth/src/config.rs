//! Login settings read from the environment: the Cognito user pool and app client, where the
//! pool's signing keys are published, the Cognito endpoint override, and how many reverse
//! proxies in front of the app may be believed about the client's address.
//!
//! Invariant: the client secret is a [`SecretString`] from the moment it is read; `Debug` of
//! [`AuthConfig`] and every [`AuthConfigError`] name variables, never their secret values.

use std::fmt;

use secrecy::SecretString;

/// Variable: the Cognito user pool id (`<region>_<id>`). With [`CLIENT_ID_VAR`] it turns login on.
pub const USER_POOL_ID_VAR: &str = "COGNITO_USER_POOL_ID";
/// Variable: the app client id.
pub const CLIENT_ID_VAR: &str = "COGNITO_CLIENT_ID";
/// Variable: the app client secret (ECS injects it from Secrets Manager).
pub const CLIENT_SECRET_VAR: &str = "COGNITO_CLIENT_SECRET";
/// Variable: where the pool's JSON Web Key Set is read (tests point it at the moto server).
pub const JWKS_URL_VAR: &str = "COGNITO_JWKS_URL";
/// Variable: send the user's address to Cognito threat protection (`UserContextData`); needs
/// `EnablePropagateAdditionalUserContextData` on the app client.
pub const PROPAGATE_CLIENT_IP_VAR: &str = "COGNITO_PROPAGATE_CLIENT_IP";
/// Variable: how many reverse proxies in front of the app append to `X-Forwarded-For`.
pub const TRUSTED_PROXIES_VAR: &str = "LLM_EVAL_TRUSTED_PROXIES";

/// The most proxies [`TRUSTED_PROXIES_VAR`] may name; more is a typo, not a topology.
const MAX_TRUSTED_PROXIES: u8 = 8;

/// Everything the login needs to know about the user pool.
#[derive(Clone)]
pub struct AuthConfig {
    /// The pool id, `<region>_<id>`.
    pub user_pool_id: String,
    /// The app client id.
    pub client_id: String,
    /// The app client secret, when the client has one (the app stack's client does).
    pub client_secret: Option<SecretString>,
    /// The pool's region: the prefix of its id.
    pub region: String,
    /// The JWKS document of the pool.
    pub jwks_url: String,
    /// Where the Cognito API calls go instead of the regional endpoint (moto in tests).
    pub endpoint_url: Option<String>,
    /// Whether to pass the client's address to Cognito threat protection.
    pub propagate_client_ip: bool,
    /// Which forwarded headers to believe.
    pub forwarded: TrustedProxies,
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("user_pool_id", &self.user_pool_id)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("region", &self.region)
            .field("jwks_url", &self.jwks_url)
            .field("endpoint_url", &self.endpoint_url)
            .field("propagate_client_ip", &self.propagate_client_ip)
            .field("forwarded", &self.forwarded)
            .finish()
    }
}

/// How many reverse proxies stand between the browser and the app, each appending the address
/// it saw to `X-Forwarded-For`. Zero (the default) believes no forwarded header at all, so a
/// client cannot choose the address its login attempts are counted against.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrustedProxies(pub u8);

/// A login setting that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthConfigError {
    /// One of the pool id and the client id is set, the other is not.
    #[error(
        "{set} is set but {missing} is not: set both to turn on login, or neither for local mode"
    )]
    Incomplete {
        /// The variable that is set.
        set: &'static str,
        /// The variable that is missing.
        missing: &'static str,
    },
    /// The pool id is not `<region>_<id>`.
    #[error(
        "{USER_POOL_ID_VAR} `{value}` is not a user pool id (`<region>_<id>`, such as `eu-west-1_AbC123xyz`)"
    )]
    PoolId {
        /// The value given.
        value: String,
    },
    /// The client id has characters Cognito never uses.
    #[error("{CLIENT_ID_VAR} is not an app client id (letters, digits, `+` and `_`, at most 128)")]
    ClientId,
    /// A URL setting is not an `http(s)` URL.
    #[error("{name} `{value}` is not an http:// or https:// URL")]
    Url {
        /// The variable.
        name: &'static str,
        /// The value given.
        value: String,
    },
    /// A yes/no setting is neither.
    #[error("{name} `{value}` is not true or false")]
    Bool {
        /// The variable.
        name: &'static str,
        /// The value given.
        value: String,
    },
    /// The proxy count is not a small number.
    #[error(
        "{TRUSTED_PROXIES_VAR} `{value}` is not a number of proxies from 0 to {MAX_TRUSTED_PROXIES}"
    )]
    TrustedProxies {
        /// The value given.
        value: String,
    },
    /// A variable is not UTF-8 (it would otherwise read as unset and switch login off).
    #[error("{name} is not valid UTF-8")]
    NotUnicode {
        /// The variable.
        name: &'static str,
    },
}

impl AuthConfig {
    /// The login settings of this process: `None` (local mode) when neither the pool id nor the
    /// client id is set.
    pub fn from_env() -> Result<Option<AuthConfig>, AuthConfigError> {
        Self::from_lookup(|name| match std::env::var(name) {
            Ok(value) => Ok(Some(value)),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(name),
        })
    }

    /// [`AuthConfig::from_env`] over any source of variables; `lookup` returns `Err(name)` for
    /// a value that is not UTF-8.
    pub fn from_lookup(
        lookup: impl Fn(&'static str) -> Result<Option<String>, &'static str>,
    ) -> Result<Option<AuthConfig>, AuthConfigError> {
        let get = |name: &'static str| -> Result<Option<String>, AuthConfigError> {
            let value = lookup(name).map_err(|name| AuthConfigError::NotUnicode { name })?;
            Ok(value
                .map(|value| value.trim().to_owned())
                .filter(|value| !value.is_empty()))
        };
        let pool = get(USER_POOL_ID_VAR)?;
        let client = get(CLIENT_ID_VAR)?;
        let (user_pool_id, client_id) = match (pool, client) {
            (None, None) => return Ok(None),
            (Some(_), None) => {
                return Err(AuthConfigError::Incomplete {
                    set: USER_POOL_ID_VAR,
                    missing: CLIENT_ID_VAR,
                });
            }
            (None, Some(_)) => {
                return Err(AuthConfigError::Incomplete {
                    set: CLIENT_ID_VAR,
                    missing: USER_POOL_ID_VAR,
                });
            }
            (Some(pool), Some(client)) => (pool, client),
        };
        let region = pool_region(&user_pool_id)
            .ok_or_else(|| AuthConfigError::PoolId {
                value: user_pool_id.clone(),
            })?
            .to_owned();
        if !valid_client_id(&client_id) {
            return Err(AuthConfigError::ClientId);
        }
        // The secret is read raw apart from its line end: a secret never holds whitespace,
        // but a value pasted from a file often ends in one.
        let client_secret = lookup(CLIENT_SECRET_VAR)
            .map_err(|name| AuthConfigError::NotUnicode { name })?
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
            .map(SecretString::from);
        let jwks_url = match get(JWKS_URL_VAR)? {
            Some(url) => checked_url(JWKS_URL_VAR, url)?,
            None => default_jwks_url(&region, &user_pool_id),
        };
        let endpoint_url = match get("AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER")? {
            Some(url) => Some(checked_url(
                "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER",
                url,
            )?),
            None => get("AWS_ENDPOINT_URL")?
                .map(|url| checked_url("AWS_ENDPOINT_URL", url))
                .transpose()?,
        };
        let propagate_client_ip = match get(PROPAGATE_CLIENT_IP_VAR)? {
            None => false,
            Some(value) => parse_bool(PROPAGATE_CLIENT_IP_VAR, &value)?,
        };
        let forwarded = match get(TRUSTED_PROXIES_VAR)? {
            None => TrustedProxies::default(),
            Some(value) => match value.parse::<u8>() {
                Ok(count) if count <= MAX_TRUSTED_PROXIES => TrustedProxies(count),
                _ => return Err(AuthConfigError::TrustedProxies { value }),
            },
        };
        Ok(Some(AuthConfig {
            user_pool_id,
            client_id,
            client_secret,
            region,
            jwks_url,
            endpoint_url,
            propagate_client_ip,
            forwarded,
        }))
    }

    /// The `iss` claim of every token of the pool. Cognito names the regional endpoint here
    /// even when the calls go elsewhere (moto does the same).
    pub fn issuer(&self) -> String {
        format!(
            "https://cognito-idp.{}.amazonaws.com/{}",
            self.region, self.user_pool_id
        )
    }
}

/// The pool's JWKS document as Cognito publishes it.
pub fn default_jwks_url(region: &str, user_pool_id: &str) -> String {
    format!("https://cognito-idp.{region}.amazonaws.com/{user_pool_id}/.well-known/jwks.json")
}

/// The region of a pool id `<region>_<id>` (Cognito's pattern `[\w-]+_[0-9a-zA-Z]+`), when the
/// id has that shape and the region looks like one (`eu-west-1`).
fn pool_region(user_pool_id: &str) -> Option<&str> {
    let (region, id) = user_pool_id.split_once('_')?;
    let region_ok = !region.is_empty()
        && region.contains('-')
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let id_ok = !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric());
    (region_ok && id_ok && user_pool_id.len() <= 55).then_some(region)
}

/// Cognito's client id pattern `[\w+]+`, at most 128 characters.
fn valid_client_id(client_id: &str) -> bool {
    !client_id.is_empty()
        && client_id.len() <= 128
        && client_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '+')
}

fn checked_url(name: &'static str, value: String) -> Result<String, AuthConfigError> {
    match reqwest::Url::parse(&value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => Ok(value),
        _ => Err(AuthConfigError::Url { name, value }),
    }
}

fn parse_bool(name: &'static str, value: &str) -> Result<bool, AuthConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(AuthConfigError::Bool {
            name,
            value: value.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn config(vars: &[(&'static str, &str)]) -> Result<Option<AuthConfig>, AuthConfigError> {
        AuthConfig::from_lookup(|name| {
            Ok(vars
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned()))
        })
    }

    fn pool(extra: &[(&'static str, &str)]) -> Result<Option<AuthConfig>, AuthConfigError> {
        let mut vars = vec![
            (USER_POOL_ID_VAR, "eu-west-1_AbC123xyz"),
            (CLIENT_ID_VAR, "4bmsrr65ah3oas5d4sd54st11k"),
        ];
        vars.extend_from_slice(extra);
        config(&vars)
    }

    fn check_err(vars: &[(&'static str, &str)], expected: &str) {
        let err = config(vars).expect_err("invalid");
        assert_eq!(err.to_string(), expected);
    }

    #[test]
    fn neither_variable_is_local_mode() {
        assert!(config(&[]).expect("valid").is_none());
        assert!(
            config(&[(USER_POOL_ID_VAR, " "), (CLIENT_ID_VAR, "")])
                .expect("valid")
                .is_none()
        );
    }

    #[test]
    fn defaults_follow_the_pool() {
        let config = pool(&[]).expect("valid").expect("login on");
        assert_eq!(config.region, "eu-west-1");
        assert_eq!(
            config.jwks_url,
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123xyz/.well-known/jwks.json"
        );
        assert_eq!(
            config.issuer(),
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123xyz"
        );
        assert!(config.client_secret.is_none());
        assert_eq!(config.endpoint_url, None);
        assert_eq!(config.forwarded, TrustedProxies(0));
        assert!(!config.propagate_client_ip);
    }

    #[test]
    fn overrides() {
        let config = pool(&[
            (CLIENT_SECRET_VAR, "s3cr3t-value\n"),
            (
                JWKS_URL_VAR,
                "http://127.0.0.1:5000/pool/.well-known/jwks.json",
            ),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            (TRUSTED_PROXIES_VAR, "2"),
            (PROPAGATE_CLIENT_IP_VAR, "true"),
        ])
        .expect("valid")
        .expect("login on");
        assert_eq!(
            config.client_secret.as_ref().map(|s| s.expose_secret()),
            Some("s3cr3t-value")
        );
        assert_eq!(
            config.jwks_url,
            "http://127.0.0.1:5000/pool/.well-known/jwks.json"
        );
        assert_eq!(
            config.endpoint_url.as_deref(),
            Some("http://127.0.0.1:5000")
        );
        assert_eq!(config.forwarded, TrustedProxies(2));
        assert!(config.propagate_client_ip);
        let specific = pool(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            (
                "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER",
                "http://127.0.0.1:6000",
            ),
        ])
        .expect("valid")
        .expect("login on");
        assert_eq!(
            specific.endpoint_url.as_deref(),
            Some("http://127.0.0.1:6000")
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        let config = pool(&[(CLIENT_SECRET_VAR, "do-not-print-me")])
            .expect("valid")
            .expect("login on");
        let debug = format!("{config:?}");
        assert!(!debug.contains("do-not-print-me"), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");
    }

    #[test]
    fn invalid_settings_name_the_variable() {
        check_err(
            &[(USER_POOL_ID_VAR, "eu-west-1_x")],
            "COGNITO_USER_POOL_ID is set but COGNITO_CLIENT_ID is not: set both to turn on login, or neither for local mode",
        );
        check_err(
            &[(CLIENT_ID_VAR, "abc")],
            "COGNITO_CLIENT_ID is set but COGNITO_USER_POOL_ID is not: set both to turn on login, or neither for local mode",
        );
        for bad_pool in ["pool", "eu-west-1_", "_abc", "EU_abc", "eu-west-1_a/b"] {
            check_err(
                &[(USER_POOL_ID_VAR, bad_pool), (CLIENT_ID_VAR, "abc")],
                &format!(
                    "COGNITO_USER_POOL_ID `{bad_pool}` is not a user pool id (`<region>_<id>`, such as `eu-west-1_AbC123xyz`)"
                ),
            );
        }
        check_err(
            &[(USER_POOL_ID_VAR, "eu-west-1_x"), (CLIENT_ID_VAR, "a b")],
            "COGNITO_CLIENT_ID is not an app client id (letters, digits, `+` and `_`, at most 128)",
        );
        let err = pool(&[(JWKS_URL_VAR, "file:///etc/passwd")]).expect_err("invalid");
        assert_eq!(
            err.to_string(),
            "COGNITO_JWKS_URL `file:///etc/passwd` is not an http:// or https:// URL"
        );
        let err = pool(&[(TRUSTED_PROXIES_VAR, "99")]).expect_err("invalid");
        assert_eq!(
            err.to_string(),
            "LLM_EVAL_TRUSTED_PROXIES `99` is not a number of proxies from 0 to 8"
        );
        let err = pool(&[(PROPAGATE_CLIENT_IP_VAR, "maybe")]).expect_err("invalid");
        assert_eq!(
            err.to_string(),
            "COGNITO_PROPAGATE_CLIENT_IP `maybe` is not true or false"
        );
        let err = AuthConfig::from_lookup(|name| {
            if name == CLIENT_ID_VAR {
                Err(name)
            } else {
                Ok(Some("eu-west-1_x".into()))
            }
        })
        .expect_err("invalid");
        assert_eq!(err.to_string(), "COGNITO_CLIENT_ID is not valid UTF-8");
    }
}
