//! Login with an Amazon Cognito user pool, done on the server: the browser sends its username
//! and password to the app, which signs in with `USER_PASSWORD_AUTH` and the app client's
//! secret, answers the challenges of a first login (a new password instead of the temporary
//! one) or of an authenticator app, verifies the tokens Cognito returns, refreshes them before
//! they expire and revokes them on logout.
//!
//! [`Authenticator`] is the one entry point; the web layer keeps its [`Tokens`] in the
//! server-side session and never hands them to the browser.
//!
//! Invariants:
//! - a password, the client secret, a token or a challenge session is a [`SecretString`]: out
//!   of `Debug`, logs and every error message;
//! - every [`Tokens`] value holds tokens whose signature, issuer, client, expiry and `token_use`
//!   were verified ([`token`]);
//! - wrong password and unknown user give the same message, so the login page does not tell
//!   which usernames exist;
//! - sign-in attempts are counted per username and client address ([`limit`]) before Cognito
//!   is asked.
//!
//! **Architecture invariant:** `auth` depends on no other crate of the app and knows nothing
//! about routes, pages or the store (it takes a header map and returns tokens and errors),
//! because the web layer decides what a login looks like and keeps what this crate returns in
//! its own session.

pub mod cognito;
pub mod config;
pub mod forwarded;
pub mod limit;
pub mod session;
pub mod token;

use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_cognitoidentityprovider::types::ChallengeNameType;
use secrecy::{ExposeSecret, SecretString};

pub use cognito::ServiceError;
pub use config::{AuthConfig, AuthConfigError, TrustedProxies};
pub use limit::{LimitPolicy, LoginLimiter, RateLimited};
pub use session::{OpenError, SealKey, SessionAuth};
pub use token::{TokenError, TokenUse, TokenVerifier, VerifiedClaims};

use cognito::{Cognito, IssuedTokens, Step};

/// The longest username Cognito accepts.
pub const MAX_USERNAME_CHARS: usize = 128;
/// The longest password Cognito accepts.
pub const MAX_PASSWORD_CHARS: usize = 256;
/// Cognito's default (and the app stack's) time to answer a challenge; the session Cognito
/// hands out for it is useless after that.
pub const CHALLENGE_VALIDITY: Duration = Duration::from_secs(3 * 60);
/// Tokens are refreshed when less than this is left (or half their lifetime, if shorter).
const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// The signed-in user, as the verified ID token names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user's immutable id in the pool: what runs and datasets belong to.
    pub sub: String,
    /// Cognito's name of the user.
    pub username: String,
    /// The email address, if the pool has one for the user.
    pub email: Option<String>,
    /// The Cognito groups the verified access token names (`cognito:groups`): what roles are
    /// read from, never from anything the browser sends.
    pub groups: Vec<String>,
}

/// The verified tokens of one signed-in browser session.
#[derive(Clone)]
pub struct Tokens {
    /// Who they belong to.
    pub user: User,
    id_token: SecretString,
    access_token: SecretString,
    refresh_token: SecretString,
    /// When the access and ID tokens expire (the earlier of the two).
    pub expires_at: SystemTime,
    /// When they were issued.
    pub issued_at: SystemTime,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("user", &self.user)
            .field("expires_at", &self.expires_at)
            .field("issued_at", &self.issued_at)
            .finish_non_exhaustive()
    }
}

impl Tokens {
    /// The access token (for Cognito calls on the user's behalf).
    pub fn access_token(&self) -> &SecretString {
        &self.access_token
    }

    /// The ID token.
    pub fn id_token(&self) -> &SecretString {
        &self.id_token
    }

    /// Whether they should be refreshed at `now`: less than five minutes (or half their
    /// lifetime) left.
    pub fn needs_refresh(&self, now: SystemTime) -> bool {
        let lifetime = self
            .expires_at
            .duration_since(self.issued_at)
            .unwrap_or_default();
        let margin = REFRESH_MARGIN.min(lifetime / 2);
        now + margin >= self.expires_at
    }

    /// Whether they have expired at `now`.
    pub fn expired(&self, now: SystemTime) -> bool {
        now >= self.expires_at
    }
}

/// Which challenge a sign-in stopped at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeKind {
    /// First login with a temporary password (or a reset): the user chooses a new one.
    NewPassword,
    /// The user has an authenticator app (TOTP): a six-digit code.
    SoftwareTokenMfa,
}

/// A sign-in waiting for the user's answer to a challenge. It lives in the server-side
/// session between the login page and the challenge page.
#[derive(Clone)]
pub struct Challenge {
    /// What the user must answer.
    pub kind: ChallengeKind,
    /// Cognito's name of the user (`USER_ID_FOR_SRP`), for the answer and its `SECRET_HASH`.
    username: String,
    session: SecretString,
    /// When the sign-in started; Cognito refuses answers after [`CHALLENGE_VALIDITY`].
    pub started: SystemTime,
}

impl std::fmt::Debug for Challenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Challenge")
            .field("kind", &self.kind)
            .field("username", &self.username)
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}

impl Challenge {
    /// The user the challenge is for.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// Whether Cognito will still accept an answer at `now`.
    pub fn expired(&self, now: SystemTime) -> bool {
        now.duration_since(self.started).unwrap_or_default() >= CHALLENGE_VALIDITY
    }
}

/// The user's answer to a [`Challenge`].
pub enum Answer {
    /// The new password (for [`ChallengeKind::NewPassword`]).
    NewPassword(SecretString),
    /// The authenticator code (for [`ChallengeKind::SoftwareTokenMfa`]).
    MfaCode(String),
}

/// Where a sign-in step ended.
#[derive(Debug)]
pub enum SignIn {
    /// Signed in.
    Done(Tokens),
    /// One more step.
    Challenge(Challenge),
}

/// Why a sign-in, refresh or logout did not work; the `Display` text is for the user.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The form lacks the username or the password.
    #[error("enter your username and password")]
    MissingCredentials,
    /// Longer than Cognito accepts.
    #[error("the username is longer than {MAX_USERNAME_CHARS} characters")]
    UsernameTooLong,
    /// Longer than Cognito accepts.
    #[error("the password is longer than {MAX_PASSWORD_CHARS} characters")]
    PasswordTooLong,
    /// Wrong password, or no such user (deliberately the same message).
    #[error("incorrect username or password")]
    InvalidCredentials,
    /// Too many attempts from this user or address.
    #[error(transparent)]
    RateLimited(#[from] RateLimited),
    /// Cognito locked the user after repeated failures.
    #[error("too many failed sign-ins for this user; wait a few minutes and try again")]
    AttemptsExceeded,
    /// The temporary password from the administrator has expired.
    #[error("the temporary password has expired; ask an administrator for a new one")]
    TemporaryPasswordExpired,
    /// An administrator reset the password.
    #[error("the password must be reset; ask an administrator for a temporary password")]
    PasswordResetRequired,
    /// The new password breaks the pool's password policy (Cognito's explanation follows).
    #[error("the new password does not meet the password policy: {0}")]
    PasswordPolicy(String),
    /// The new password and its confirmation differ.
    #[error("the two new passwords are not the same")]
    PasswordsDiffer,
    /// The authenticator code is wrong.
    #[error("incorrect code; enter the current 6-digit code from your authenticator app")]
    InvalidCode,
    /// The challenge was answered too late, or its session is gone.
    #[error("this sign-in took too long; sign in again")]
    ChallengeExpired,
    /// The refresh token expired or was revoked.
    #[error("your session has expired; sign in again")]
    SessionExpired,
    /// Cognito asked for a step this app does not offer.
    #[error("sign-in needs a step this app does not support ({0}); ask an administrator")]
    UnsupportedChallenge(String),
    /// Cognito could not be reached or failed.
    #[error("sign-in is not available right now; try again in a moment")]
    Unavailable(#[source] ServiceError),
    /// Cognito refused the app itself (wrong client secret, flow not enabled, unknown client).
    #[error("sign-in is misconfigured on the server; ask an administrator")]
    Misconfigured(#[source] ServiceError),
    /// The tokens Cognito returned did not verify.
    #[error("sign-in failed: the user pool's tokens could not be verified")]
    Token(#[source] TokenError),
}

impl LoginError {
    /// Whether the fault is the server's (log it with its source; answer 5xx), not the user's.
    pub fn is_server_fault(&self) -> bool {
        matches!(
            self,
            LoginError::Unavailable(_) | LoginError::Misconfigured(_) | LoginError::Token(_)
        )
    }

    /// Whether the attempt counts against the rate limit: only the user's wrong answers do.
    fn counts_as_failure(&self) -> bool {
        matches!(
            self,
            LoginError::InvalidCredentials | LoginError::InvalidCode | LoginError::AttemptsExceeded
        )
    }
}

/// The login of the app: Cognito calls, token verification and the attempt limiter.
#[derive(Debug)]
pub struct Authenticator {
    config: AuthConfig,
    cognito: Cognito,
    verifier: TokenVerifier,
    limiter: LoginLimiter,
    seal_key: SealKey,
}

impl Authenticator {
    /// An authenticator for `config` with the default attempt limits. Does no network IO.
    pub async fn new(config: AuthConfig) -> Authenticator {
        Authenticator::with_limits(config, LimitPolicy::default()).await
    }

    /// An authenticator with the given attempt limits.
    pub async fn with_limits(config: AuthConfig, policy: LimitPolicy) -> Authenticator {
        let cognito = Cognito::new(&config).await;
        let verifier = TokenVerifier::new(
            config.issuer(),
            config.client_id.clone(),
            config.jwks_url.clone(),
        );
        let seal_key = SealKey::derive(
            config.client_secret.as_ref(),
            &config.user_pool_id,
            &config.client_id,
        );
        Authenticator {
            config,
            cognito,
            verifier,
            limiter: LoginLimiter::new(policy),
            seal_key,
        }
    }

    /// The settings it was built from.
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// Signs `username` in with `password`, from `client_addr`.
    pub async fn sign_in(
        &self,
        username: &str,
        password: &SecretString,
        client_addr: IpAddr,
    ) -> Result<SignIn, LoginError> {
        let username = username.trim();
        if username.is_empty() || password.expose_secret().is_empty() {
            return Err(LoginError::MissingCredentials);
        }
        if username.chars().count() > MAX_USERNAME_CHARS {
            return Err(LoginError::UsernameTooLong);
        }
        if password.expose_secret().chars().count() > MAX_PASSWORD_CHARS {
            return Err(LoginError::PasswordTooLong);
        }
        let charge = self.limiter.charge(username, client_addr, Instant::now())?;
        let started = SystemTime::now();
        let outcome = match self
            .cognito
            .password_auth(username, password, client_addr)
            .await
        {
            Ok(step) => self.next(step, username, started).await,
            Err(err) => Err(sign_in_error(err)),
        };
        self.settle(charge, &outcome);
        outcome
    }

    /// Answers `challenge` with `answer`, from `client_addr`.
    pub async fn answer(
        &self,
        challenge: &Challenge,
        answer: Answer,
        client_addr: IpAddr,
    ) -> Result<SignIn, LoginError> {
        if challenge.expired(SystemTime::now()) {
            return Err(LoginError::ChallengeExpired);
        }
        let (name, key, value) = match (&challenge.kind, &answer) {
            (ChallengeKind::NewPassword, Answer::NewPassword(password)) => {
                let password = password.expose_secret();
                if password.is_empty() {
                    return Err(LoginError::PasswordPolicy("enter a new password".into()));
                }
                if password.chars().count() > MAX_PASSWORD_CHARS {
                    return Err(LoginError::PasswordTooLong);
                }
                (
                    ChallengeNameType::NewPasswordRequired,
                    "NEW_PASSWORD",
                    password,
                )
            }
            (ChallengeKind::SoftwareTokenMfa, Answer::MfaCode(code)) => {
                let code = code.trim();
                if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(LoginError::InvalidCode);
                }
                (
                    ChallengeNameType::SoftwareTokenMfa,
                    "SOFTWARE_TOKEN_MFA_CODE",
                    code,
                )
            }
            _ => return Err(LoginError::ChallengeExpired),
        };
        let charge = self
            .limiter
            .charge(&challenge.username, client_addr, Instant::now())?;
        let outcome = match self
            .cognito
            .respond(
                name,
                &challenge.session,
                &challenge.username,
                &[(key, value)],
                client_addr,
            )
            .await
        {
            Ok(step) => {
                self.next(step, &challenge.username, challenge.started)
                    .await
            }
            Err(err) => Err(challenge_error(err, value)),
        };
        self.settle(charge, &outcome);
        outcome
    }

    /// New tokens for `tokens`, from their refresh token. The refresh token itself is kept
    /// unless Cognito rotates it.
    pub async fn refresh(&self, tokens: &Tokens) -> Result<Tokens, LoginError> {
        let issued = self
            .cognito
            .refresh(&tokens.refresh_token, &tokens.user.username)
            .await
            .map_err(refresh_error)?;
        let refresh_token = issued
            .refresh_token
            .clone()
            .map_or_else(|| tokens.refresh_token.clone(), SecretString::from);
        let fresh = self.verified(issued, refresh_token).await?;
        if fresh.user.sub != tokens.user.sub {
            // Cognito never does this; refusing keeps one user's session from becoming another's.
            return Err(LoginError::Token(TokenError::Claim("sub".into())));
        }
        Ok(fresh)
    }

    /// Ends the session of `tokens` at Cognito: only this one (`RevokeToken`, which ends the
    /// refresh token and the access tokens issued from it), or with `everywhere` every session
    /// of the user on every device (`GlobalSignOut`).
    pub async fn sign_out(&self, tokens: &Tokens, everywhere: bool) -> Result<(), LoginError> {
        let result = if everywhere {
            self.cognito.global_sign_out(&tokens.access_token).await
        } else {
            self.cognito.revoke(&tokens.refresh_token).await
        };
        result.map_err(|err| match err.code() {
            // The tokens are already dead: the goal of the logout is reached.
            Some("NotAuthorizedException") => LoginError::SessionExpired,
            _ => service_fault(err),
        })
    }

    /// Verifies an access token of the pool for this app (for an `Authorization: Bearer`
    /// request) and returns its claims.
    pub async fn verify_access_token(&self, token: &str) -> Result<VerifiedClaims, TokenError> {
        self.verifier.verify(token, TokenUse::Access).await
    }

    /// The token verifier.
    pub fn verifier(&self) -> &TokenVerifier {
        &self.verifier
    }

    /// `auth` sealed for storing with the session `session_id` ([`session`]).
    pub fn seal(&self, auth: &SessionAuth, session_id: &str) -> String {
        self.seal_key.seal(auth, session_id)
    }

    /// The login data a session `session_id` stored, if it opens.
    pub fn open(&self, sealed: &str, session_id: &str) -> Result<SessionAuth, OpenError> {
        self.seal_key.open(sealed, session_id)
    }

    async fn next(
        &self,
        step: Step,
        typed_username: &str,
        started: SystemTime,
    ) -> Result<SignIn, LoginError> {
        match step {
            Step::Tokens(issued) => {
                let refresh_token = issued.refresh_token.clone().map(SecretString::from).ok_or(
                    LoginError::Unavailable(ServiceError::Incomplete {
                        operation: "InitiateAuth",
                        missing: "refresh token",
                    }),
                )?;
                Ok(SignIn::Done(self.verified(issued, refresh_token).await?))
            }
            Step::Challenge {
                name,
                session,
                parameters,
            } => {
                let kind = match name {
                    ChallengeNameType::NewPasswordRequired => {
                        let required = parameters
                            .get("requiredAttributes")
                            .map(String::as_str)
                            .unwrap_or("[]");
                        if !matches!(required.trim(), "" | "[]") {
                            return Err(LoginError::UnsupportedChallenge(format!(
                                "the pool requires attributes at first login: {required}"
                            )));
                        }
                        ChallengeKind::NewPassword
                    }
                    ChallengeNameType::SoftwareTokenMfa => ChallengeKind::SoftwareTokenMfa,
                    other => return Err(LoginError::UnsupportedChallenge(other.to_string())),
                };
                // Cognito names the user it means in USER_ID_FOR_SRP (the real username when
                // the user typed an alias); the answer and its SECRET_HASH must use that name.
                let username = parameters
                    .get("USER_ID_FOR_SRP")
                    .or_else(|| parameters.get("USERNAME"))
                    .cloned()
                    .unwrap_or_else(|| typed_username.to_owned());
                Ok(SignIn::Challenge(Challenge {
                    kind,
                    username,
                    session: SecretString::from(session),
                    started,
                }))
            }
        }
    }

    async fn verified(
        &self,
        issued: IssuedTokens,
        refresh_token: SecretString,
    ) -> Result<Tokens, LoginError> {
        let id = self
            .verifier
            .verify(&issued.id_token, TokenUse::Id)
            .await
            .map_err(token_fault)?;
        let access = self
            .verifier
            .verify(&issued.access_token, TokenUse::Access)
            .await
            .map_err(token_fault)?;
        if id.sub != access.sub {
            return Err(LoginError::Token(TokenError::Claim("sub".into())));
        }
        Ok(Tokens {
            user: User {
                sub: access.sub,
                // The access token's `username` is what REFRESH_TOKEN_AUTH's SECRET_HASH needs.
                username: access.username,
                email: id.email,
                groups: access.groups,
            },
            id_token: SecretString::from(issued.id_token),
            access_token: SecretString::from(issued.access_token),
            refresh_token,
            expires_at: id.expires_at.min(access.expires_at),
            issued_at: id.issued_at.max(access.issued_at),
        })
    }

    fn settle(&self, charge: limit::Charge, outcome: &Result<SignIn, LoginError>) {
        let failed = outcome
            .as_ref()
            .err()
            .is_some_and(LoginError::counts_as_failure);
        if !failed {
            self.limiter.refund(charge, Instant::now());
        }
    }
}

fn token_fault(err: TokenError) -> LoginError {
    match err {
        TokenError::Jwks { .. } => LoginError::Unavailable(ServiceError::Transport {
            operation: "JWKS",
            message: err.to_string(),
        }),
        other => LoginError::Token(other),
    }
}

/// Cognito codes that mean the app (client id, secret, flows, pool) is set up wrongly.
const MISCONFIGURED: &[&str] = &[
    "ResourceNotFoundException",
    "InvalidUserPoolConfigurationException",
    "UnauthorizedException",
    "InvalidLambdaResponseException",
    "UnexpectedLambdaException",
    "UserLambdaValidationException",
];

fn service_fault(err: ServiceError) -> LoginError {
    match err.code() {
        Some(code) if MISCONFIGURED.contains(&code) => LoginError::Misconfigured(err),
        Some("InvalidParameterException") => LoginError::Misconfigured(err),
        Some("NotAuthorizedException") if is_secret_problem(&err) => LoginError::Misconfigured(err),
        _ => LoginError::Unavailable(err),
    }
}

/// "Unable to verify secret hash for client …", "Client … is configured for secret but secret
/// was not received", "… flow not enabled for this client": the app's fault, not the user's.
fn is_secret_problem(err: &ServiceError) -> bool {
    let message = err.message().unwrap_or_default().to_ascii_lowercase();
    message.contains("secret")
        || message.contains("not enabled")
        || message.contains("not supported")
}

fn message_has(err: &ServiceError, needle: &str) -> bool {
    err.message()
        .unwrap_or_default()
        .to_ascii_lowercase()
        .contains(needle)
}

fn sign_in_error(err: ServiceError) -> LoginError {
    match err.code() {
        Some("NotAuthorizedException") if is_secret_problem(&err) => LoginError::Misconfigured(err),
        Some("NotAuthorizedException") if message_has(&err, "attempts exceeded") => {
            LoginError::AttemptsExceeded
        }
        Some("NotAuthorizedException") if message_has(&err, "temporary password has expired") => {
            LoginError::TemporaryPasswordExpired
        }
        // Wrong password, disabled user and (with PreventUserExistenceErrors off) unknown user
        // all read the same, so the page does not reveal which accounts exist.
        Some("NotAuthorizedException" | "UserNotFoundException" | "UserNotConfirmedException") => {
            LoginError::InvalidCredentials
        }
        Some("PasswordResetRequiredException") => LoginError::PasswordResetRequired,
        _ => service_fault(err),
    }
}

fn challenge_error(err: ServiceError, answer: &str) -> LoginError {
    match err.code() {
        Some("InvalidPasswordException") => {
            LoginError::PasswordPolicy(policy_message(err.message().unwrap_or_default(), answer))
        }
        Some("CodeMismatchException") => LoginError::InvalidCode,
        Some("ExpiredCodeException") => LoginError::ChallengeExpired,
        Some("NotAuthorizedException") if is_secret_problem(&err) => LoginError::Misconfigured(err),
        Some("NotAuthorizedException") if message_has(&err, "session") => {
            LoginError::ChallengeExpired
        }
        Some("NotAuthorizedException") if message_has(&err, "attempts exceeded") => {
            LoginError::AttemptsExceeded
        }
        Some("NotAuthorizedException") => LoginError::InvalidCode,
        // An unknown or used-up challenge session.
        Some("ResourceNotFoundException") if !message_has(&err, "client") => {
            LoginError::ChallengeExpired
        }
        _ => service_fault(err),
    }
}

fn refresh_error(err: ServiceError) -> LoginError {
    match err.code() {
        Some("NotAuthorizedException") if is_secret_problem(&err) => LoginError::Misconfigured(err),
        Some("NotAuthorizedException" | "UserNotFoundException") => LoginError::SessionExpired,
        _ => service_fault(err),
    }
}

/// Cognito's explanation of a refused new password, as shown to the user: its text after the
/// `Password does not conform to policy:` prefix, without the password should it ever appear.
fn policy_message(message: &str, password: &str) -> String {
    let explanation = message
        .split_once(':')
        .map_or(message, |(_, rest)| rest)
        .trim();
    let explanation = if explanation.is_empty() {
        "choose a longer password with upper and lower case letters, digits and symbols"
    } else {
        explanation
    };
    if !password.is_empty() && explanation.contains(password) {
        return explanation.replace(password, "…");
    }
    explanation.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(code: &str, message: &str) -> ServiceError {
        ServiceError::Service {
            operation: "InitiateAuth",
            code: code.to_owned(),
            message: message.to_owned(),
        }
    }

    fn sign_in(code: &str, message: &str) -> String {
        sign_in_error(service(code, message)).to_string()
    }

    #[test]
    fn sign_in_errors_read_for_the_user() {
        let invalid = "incorrect username or password";
        assert_eq!(
            sign_in("NotAuthorizedException", "Incorrect username or password."),
            invalid
        );
        assert_eq!(
            sign_in("UserNotFoundException", "User does not exist."),
            invalid
        );
        assert_eq!(
            sign_in("NotAuthorizedException", "User is disabled."),
            invalid
        );
        assert_eq!(
            sign_in("NotAuthorizedException", "Password attempts exceeded"),
            "too many failed sign-ins for this user; wait a few minutes and try again"
        );
        assert_eq!(
            sign_in(
                "NotAuthorizedException",
                "Temporary password has expired and must be reset by an administrator."
            ),
            "the temporary password has expired; ask an administrator for a new one"
        );
        let misconfigured = "sign-in is misconfigured on the server; ask an administrator";
        assert_eq!(
            sign_in(
                "NotAuthorizedException",
                "Unable to verify secret hash for client abc"
            ),
            misconfigured
        );
        assert_eq!(
            sign_in(
                "NotAuthorizedException",
                "Client abc is configured for secret but secret was not received"
            ),
            misconfigured
        );
        assert_eq!(
            sign_in(
                "InvalidParameterException",
                "USER_PASSWORD_AUTH flow not enabled for this client"
            ),
            misconfigured
        );
        assert_eq!(
            sign_in(
                "ResourceNotFoundException",
                "User pool client abc does not exist."
            ),
            misconfigured
        );
        assert_eq!(
            sign_in("TooManyRequestsException", "Rate exceeded"),
            "sign-in is not available right now; try again in a moment"
        );
        assert_eq!(
            sign_in("InternalErrorException", "oops"),
            "sign-in is not available right now; try again in a moment"
        );
    }

    #[test]
    fn challenge_errors_read_for_the_user() {
        let check = |code: &str, message: &str, expected: &str| {
            assert_eq!(
                challenge_error(service(code, message), "Hunter2-secret!").to_string(),
                expected
            );
        };
        check(
            "InvalidPasswordException",
            "Password does not conform to policy: Password not long enough",
            "the new password does not meet the password policy: Password not long enough",
        );
        check(
            "InvalidPasswordException",
            "Password does not conform to policy: Hunter2-secret! is too common",
            "the new password does not meet the password policy: … is too common",
        );
        check(
            "NotAuthorizedException",
            "Invalid session for the user, session is expired.",
            "this sign-in took too long; sign in again",
        );
        check(
            "CodeMismatchException",
            "Invalid code received for user",
            "incorrect code; enter the current 6-digit code from your authenticator app",
        );
        check(
            "ResourceNotFoundException",
            "9b3c2a",
            "this sign-in took too long; sign in again",
        );
    }

    #[test]
    fn only_wrong_answers_count_against_the_limit() {
        assert!(LoginError::InvalidCredentials.counts_as_failure());
        assert!(LoginError::InvalidCode.counts_as_failure());
        assert!(
            !LoginError::Unavailable(service("InternalErrorException", "")).counts_as_failure()
        );
        assert!(!LoginError::PasswordPolicy(String::new()).counts_as_failure());
    }

    #[test]
    fn refresh_margin() {
        let issued_at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let tokens = |lifetime_secs: u64| Tokens {
            user: User {
                sub: "s".into(),
                username: "u".into(),
                email: None,
                groups: Vec::new(),
            },
            id_token: SecretString::from("i".to_owned()),
            access_token: SecretString::from("a".to_owned()),
            refresh_token: SecretString::from("r".to_owned()),
            expires_at: issued_at + Duration::from_secs(lifetime_secs),
            issued_at,
        };
        let at = |secs: u64| issued_at + Duration::from_secs(secs);
        let hour = tokens(3600);
        assert!(!hour.needs_refresh(at(3600 - 301)));
        assert!(hour.needs_refresh(at(3600 - 300)));
        assert!(!hour.expired(at(3599)));
        assert!(hour.expired(at(3600)));
        // Five-minute tokens are refreshed after half their life, not on every request.
        let short = tokens(300);
        assert!(!short.needs_refresh(at(149)));
        assert!(short.needs_refresh(at(150)));
        assert!(!format!("{hour:?}").contains("\"a\""));
    }
}
