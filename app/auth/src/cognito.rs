//! The Cognito user-pool calls of the login: `InitiateAuth` (`USER_PASSWORD_AUTH` and
//! `REFRESH_TOKEN_AUTH`), `RespondToAuthChallenge`, `RevokeToken` and `GlobalSignOut`, each
//! with the app client's `SECRET_HASH` or secret where Cognito wants one.
//!
//! These operations are Cognito's public, unauthenticated API (it evaluates no IAM policy for
//! them), so the client is built without AWS credentials and works the same on a laptop, in
//! ECS and against moto.
//!
//! Invariant: passwords, the client secret, tokens and the challenge session only travel in
//! request bodies; a [`ServiceError`] carries Cognito's error code and message and never a
//! request value.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::config::http::HttpResponse;
use aws_sdk_cognitoidentityprovider::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cognitoidentityprovider::types::{
    AuthFlowType, AuthenticationResultType, ChallengeNameType, UserContextDataType,
};
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use secrecy::{ExposeSecret, SecretString};

use super::config::AuthConfig;

/// How long one Cognito call may take, retries included; the browser is waiting.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
/// How long connecting to Cognito may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// The longest Cognito message kept for the logs.
const MAX_MESSAGE: usize = 300;

/// A failed Cognito call: what Cognito answered, or why no answer came.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// Cognito answered with an error.
    #[error("cognito {operation}: {code}: {message}")]
    Service {
        /// The operation, such as `InitiateAuth`.
        operation: &'static str,
        /// The error code, such as `NotAuthorizedException`.
        code: String,
        /// Cognito's message (trimmed to a few hundred characters).
        message: String,
    },
    /// No answer in time.
    #[error("cognito {operation}: no answer within {} s", OPERATION_TIMEOUT.as_secs())]
    Timeout {
        /// The operation.
        operation: &'static str,
    },
    /// The call failed before an answer (connection, TLS, endpoint).
    #[error("cognito {operation}: {message}")]
    Transport {
        /// The operation.
        operation: &'static str,
        /// What failed.
        message: String,
    },
    /// Cognito answered without the fields the flow needs.
    #[error("cognito {operation}: the answer has no {missing}")]
    Incomplete {
        /// The operation.
        operation: &'static str,
        /// The missing part.
        missing: &'static str,
    },
}

impl ServiceError {
    /// The error code Cognito answered with, if it answered.
    pub fn code(&self) -> Option<&str> {
        match self {
            ServiceError::Service { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Cognito's message, if it answered.
    pub fn message(&self) -> Option<&str> {
        match self {
            ServiceError::Service { message, .. } => Some(message),
            _ => None,
        }
    }
}

/// Tokens Cognito issued, not yet verified.
pub(crate) struct IssuedTokens {
    pub id_token: String,
    pub access_token: String,
    /// Absent after a refresh, unless the client rotates refresh tokens.
    pub refresh_token: Option<String>,
}

/// The answer to a sign-in step: tokens, or one more challenge.
pub(crate) enum Step {
    Tokens(IssuedTokens),
    Challenge {
        name: ChallengeNameType,
        session: String,
        parameters: HashMap<String, String>,
    },
}

/// The Cognito client of one app client.
#[derive(Debug, Clone)]
pub(crate) struct Cognito {
    client: Client,
    client_id: String,
    client_secret: Option<SecretString>,
    propagate_client_ip: bool,
}

impl Cognito {
    /// A client for the pool's region (or the endpoint override), without credentials.
    pub async fn new(config: &AuthConfig) -> Cognito {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(config.region.clone()))
            .no_credentials()
            .retry_config(RetryConfig::standard().with_max_attempts(2))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_timeout(OPERATION_TIMEOUT)
                    .build(),
            );
        if let Some(endpoint_url) = &config.endpoint_url {
            loader = loader.endpoint_url(endpoint_url);
        }
        let sdk_config = loader.load().await;
        Cognito {
            client: Client::new(&sdk_config),
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
            propagate_client_ip: config.propagate_client_ip,
        }
    }

    /// `InitiateAuth` with `USER_PASSWORD_AUTH`.
    pub async fn password_auth(
        &self,
        username: &str,
        password: &SecretString,
        client_addr: IpAddr,
    ) -> Result<Step, ServiceError> {
        const OPERATION: &str = "InitiateAuth";
        let mut request = self
            .client
            .initiate_auth()
            .client_id(&self.client_id)
            .auth_flow(AuthFlowType::UserPasswordAuth)
            .auth_parameters("USERNAME", username)
            .auth_parameters("PASSWORD", password.expose_secret())
            .set_user_context_data(self.context(client_addr));
        if let Some(hash) = self.secret_hash(username) {
            request = request.auth_parameters("SECRET_HASH", hash);
        }
        let output = request
            .send()
            .await
            .map_err(|err| service_error(OPERATION, err))?;
        step(
            OPERATION,
            output.authentication_result(),
            output.challenge_name(),
            output.session(),
            output.challenge_parameters(),
        )
    }

    /// `RespondToAuthChallenge` for `username` (Cognito's own name of the user) with
    /// `responses` besides `USERNAME` and `SECRET_HASH`.
    pub async fn respond(
        &self,
        challenge: ChallengeNameType,
        session: &SecretString,
        username: &str,
        responses: &[(&str, &str)],
        client_addr: IpAddr,
    ) -> Result<Step, ServiceError> {
        const OPERATION: &str = "RespondToAuthChallenge";
        let mut request = self
            .client
            .respond_to_auth_challenge()
            .client_id(&self.client_id)
            .challenge_name(challenge)
            .session(session.expose_secret())
            .challenge_responses("USERNAME", username)
            .set_user_context_data(self.context(client_addr));
        for (name, value) in responses {
            request = request.challenge_responses(*name, *value);
        }
        if let Some(hash) = self.secret_hash(username) {
            request = request.challenge_responses("SECRET_HASH", hash);
        }
        let output = request
            .send()
            .await
            .map_err(|err| service_error(OPERATION, err))?;
        step(
            OPERATION,
            output.authentication_result(),
            output.challenge_name(),
            output.session(),
            output.challenge_parameters(),
        )
    }

    /// `InitiateAuth` with `REFRESH_TOKEN_AUTH`. Cognito computes this flow's `SECRET_HASH`
    /// over its own name of the user (the `username` claim of the access token, which is the
    /// `sub` when users sign in with an email alias), not over what the user typed.
    pub async fn refresh(
        &self,
        refresh_token: &SecretString,
        cognito_username: &str,
    ) -> Result<IssuedTokens, ServiceError> {
        const OPERATION: &str = "InitiateAuth";
        let mut request = self
            .client
            .initiate_auth()
            .client_id(&self.client_id)
            .auth_flow(AuthFlowType::RefreshTokenAuth)
            .auth_parameters("REFRESH_TOKEN", refresh_token.expose_secret());
        if let Some(hash) = self.secret_hash(cognito_username) {
            request = request.auth_parameters("SECRET_HASH", hash);
        }
        let output = request
            .send()
            .await
            .map_err(|err| service_error(OPERATION, err))?;
        match step(
            OPERATION,
            output.authentication_result(),
            output.challenge_name(),
            output.session(),
            output.challenge_parameters(),
        )? {
            Step::Tokens(tokens) => Ok(tokens),
            Step::Challenge { .. } => Err(ServiceError::Incomplete {
                operation: OPERATION,
                missing: "tokens (it asked for a challenge)",
            }),
        }
    }

    /// `RevokeToken`: ends the refresh token of one browser session and the access tokens
    /// issued from it; the user's other sessions stay signed in.
    pub async fn revoke(&self, refresh_token: &SecretString) -> Result<(), ServiceError> {
        const OPERATION: &str = "RevokeToken";
        self.client
            .revoke_token()
            .client_id(&self.client_id)
            .token(refresh_token.expose_secret())
            .set_client_secret(
                self.client_secret
                    .as_ref()
                    .map(|secret| secret.expose_secret().to_owned()),
            )
            .send()
            .await
            .map_err(|err| service_error(OPERATION, err))?;
        Ok(())
    }

    /// `GlobalSignOut`: ends every session of the user, on every device.
    pub async fn global_sign_out(&self, access_token: &SecretString) -> Result<(), ServiceError> {
        const OPERATION: &str = "GlobalSignOut";
        self.client
            .global_sign_out()
            .access_token(access_token.expose_secret())
            .send()
            .await
            .map_err(|err| service_error(OPERATION, err))?;
        Ok(())
    }

    fn secret_hash(&self, username: &str) -> Option<String> {
        self.client_secret
            .as_ref()
            .map(|secret| secret_hash(secret, username, &self.client_id))
    }

    fn context(&self, client_addr: IpAddr) -> Option<UserContextDataType> {
        self.propagate_client_ip.then(|| {
            UserContextDataType::builder()
                .ip_address(client_addr.to_string())
                .build()
        })
    }
}

/// Cognito's `SECRET_HASH`: Base64(HMAC-SHA256(key = client secret, message = username +
/// client id)).
pub fn secret_hash(client_secret: &SecretString, username: &str, client_id: &str) -> String {
    let key = aws_lc_rs::hmac::Key::new(
        aws_lc_rs::hmac::HMAC_SHA256,
        client_secret.expose_secret().as_bytes(),
    );
    let mut context = aws_lc_rs::hmac::Context::with_key(&key);
    context.update(username.as_bytes());
    context.update(client_id.as_bytes());
    aws_smithy_types::base64::encode(context.sign().as_ref())
}

fn step(
    operation: &'static str,
    result: Option<&AuthenticationResultType>,
    challenge: Option<&ChallengeNameType>,
    session: Option<&str>,
    parameters: Option<&HashMap<String, String>>,
) -> Result<Step, ServiceError> {
    if let Some(result) = result {
        let id_token = result.id_token().ok_or(ServiceError::Incomplete {
            operation,
            missing: "id token",
        })?;
        let access_token = result.access_token().ok_or(ServiceError::Incomplete {
            operation,
            missing: "access token",
        })?;
        return Ok(Step::Tokens(IssuedTokens {
            id_token: id_token.to_owned(),
            access_token: access_token.to_owned(),
            refresh_token: result.refresh_token().map(str::to_owned),
        }));
    }
    let name = challenge.ok_or(ServiceError::Incomplete {
        operation,
        missing: "tokens and no challenge",
    })?;
    let session = session.ok_or(ServiceError::Incomplete {
        operation,
        missing: "challenge session",
    })?;
    Ok(Step::Challenge {
        name: name.clone(),
        session: session.to_owned(),
        parameters: parameters.cloned().unwrap_or_default(),
    })
}

fn service_error<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> ServiceError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match &err {
        SdkError::ServiceError(context) => {
            let service_error = context.err();
            ServiceError::Service {
                operation,
                code: service_error
                    .code()
                    .unwrap_or("UnknownError")
                    .chars()
                    .take(100)
                    .collect(),
                message: service_error
                    .message()
                    .unwrap_or("no message")
                    .chars()
                    .take(MAX_MESSAGE)
                    .collect(),
            }
        }
        SdkError::TimeoutError(_) => ServiceError::Timeout { operation },
        _ => {
            // The chain names the endpoint and the failing layer (DNS, TCP, TLS); requests
            // values are not part of any SDK error text.
            let mut message = err.to_string();
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                message.push_str(": ");
                message.push_str(&cause.to_string());
                source = cause.source();
            }
            ServiceError::Transport {
                operation,
                message: message.chars().take(MAX_MESSAGE).collect(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_hash_matches_hmac_sha256_base64() {
        // Computed independently: printf 'alice4bmsrr65ah3oas5d4sd54st11k' |
        // openssl dgst -sha256 -hmac 'client-secret' -binary | base64
        let secret = SecretString::from("client-secret".to_owned());
        assert_eq!(
            secret_hash(&secret, "alice", "4bmsrr65ah3oas5d4sd54st11k"),
            "P807Gsf0fF/54+VhP0Vkr3ZCn5lNO8oyiyOpDpHg/mg="
        );
    }
}
