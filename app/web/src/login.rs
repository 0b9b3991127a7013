//! The Cognito login of the web app: [`CognitoLogin`], the [`super::Authenticator`] that
//! `llm-eval serve` uses when `COGNITO_USER_POOL_ID` and `COGNITO_CLIENT_ID` are set.
//!
//! Routes (public, inside the session and CSRF layers): `GET/POST /login` (username and
//! password), `GET/POST /login/challenge` (a new password at the first login with a temporary
//! one, or an authenticator-app code), `POST /logout` (revokes the session's refresh token at
//! Cognito, or with `scope=everywhere` signs the user out on every device, then ends the
//! session).
//!
//! Every protected request is authenticated from its session: the sealed [`SessionAuth`] must
//! open for this session id and hold tokens; tokens close to expiry are refreshed first (and
//! the session saved); a refresh Cognito refuses ends the session. Scripts may instead send
//! `Authorization: Bearer <access token>`; the token is verified against the pool's JWKS
//! (signature, issuer, client, expiry, `token_use`) on every request and refused with 401.
//! Users are identified by the token's `sub`, which owns their runs and datasets.
//!
//! Invariants: tokens, passwords and challenge sessions never reach the browser, a log line or
//! a page (only the sealed string reaches the store); a redirect after login only goes to a
//! path on this site; the login limiter counts attempts against the client address that the
//! configured number of trusted proxies reports ([`auth::TrustedProxies`]), never one
//! the client chose.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::SystemTime;

use askama::Template;
use axum::Router;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form};
use secrecy::SecretString;
use serde::Deserialize;

use super::error::{AppError, InternalCause};
use super::page::Html;
use super::session::{self, CurrentUser, SessionContext};
use super::state::AppState;
use auth::{self, Answer, Challenge, ChallengeKind, LoginError, SessionAuth, SignIn, Tokens};
use engine::providers::BoxFuture;
use store::{Session, SessionUser, UserId};

/// The clock the login reads (tests move it forward to see refreshes).
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// The Cognito login as the web app's [`super::Authenticator`].
#[derive(Clone)]
pub struct CognitoLogin {
    auth: Arc<auth::Authenticator>,
    clock: Clock,
}

impl std::fmt::Debug for CognitoLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CognitoLogin")
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl CognitoLogin {
    /// The login over `auth`, on the system clock.
    pub fn new(auth: auth::Authenticator) -> CognitoLogin {
        CognitoLogin::with_clock(auth, Arc::new(SystemTime::now))
    }

    /// The login over `auth`, reading the time from `clock`.
    pub fn with_clock(auth: auth::Authenticator, clock: Clock) -> CognitoLogin {
        CognitoLogin {
            auth: Arc::new(auth),
            clock,
        }
    }

    /// The client address of a request, believing forwarded headers only as configured.
    fn client_addr(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> IpAddr {
        // Without connection info (an in-process `oneshot`) every request shares one address.
        let peer = peer.unwrap_or(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
        self.auth.config().forwarded.client_addr(headers, peer)
    }

    fn open(&self, session: &Session) -> Option<SessionAuth> {
        let sealed = session.auth_data.as_deref()?;
        match self.auth.open(sealed, &session.id) {
            Ok(auth) => Some(auth),
            Err(_) => {
                // Tampered with, moved from another session, or sealed by a process with another
                // key (a restart without a client secret): signed out.
                tracing::info!("a session's login data did not open; signing it out");
                None
            }
        }
    }

    async fn authenticate_session(
        &self,
        state: &AppState,
        session: &Session,
    ) -> Result<CurrentUser, Refusal> {
        let Some(SessionAuth::SignedIn(tokens)) = self.open(session) else {
            return Err(Refusal::NotSignedIn);
        };
        let now = (self.clock)();
        let group = state.config.facilitator_group.as_str();
        if !tokens.needs_refresh(now) {
            return Ok(user_of(&tokens, group));
        }
        match self.auth.refresh(&tokens).await {
            Ok(fresh) => {
                let mut updated = session.clone();
                updated.auth_data = Some(
                    self.auth
                        .seal(&SessionAuth::SignedIn(fresh.clone()), &session.id),
                );
                updated.user = Some(session_user(&fresh));
                state
                    .store
                    .save_session(&updated)
                    .await
                    .map_err(|error| Refusal::Error(error.into()))?;
                Ok(user_of(&fresh, group))
            }
            // Cognito is unreachable but the tokens still hold: carry on, try again next time.
            Err(error) if error.is_server_fault() && !tokens.expired(now) => {
                tracing::warn!(error = %error, "token refresh failed; the tokens are still valid");
                Ok(user_of(&tokens, group))
            }
            Err(error) => {
                if error.is_server_fault() {
                    tracing::warn!(error = %error, "token refresh failed and the tokens expired");
                }
                // Refused (revoked, expired refresh token) or expired: the session is over.
                state
                    .store
                    .delete_session(&session.id)
                    .await
                    .map_err(|error| Refusal::Error(error.into()))?;
                Err(Refusal::Expired)
            }
        }
    }

    async fn authenticate_bearer(
        &self,
        state: &AppState,
        token: &str,
    ) -> Result<CurrentUser, Response> {
        match self.auth.verify_access_token(token).await {
            Ok(claims) => Ok(CurrentUser {
                facilitator: claims
                    .groups
                    .iter()
                    .any(|group| *group == state.config.facilitator_group),
                id: UserId::new(claims.sub),
                name: claims.username,
            }),
            Err(error) => {
                tracing::info!(error = %error, "a bearer token was refused");
                let mut response = (
                    StatusCode::UNAUTHORIZED,
                    "The access token was refused: it is not a valid, unexpired access token of this app's user pool.\n",
                )
                    .into_response();
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"invalid_token\""),
                );
                Err(response)
            }
        }
    }
}

/// The TCP peer of the request, when the server was started with connect info (an
/// in-process `oneshot` has none).
struct Peer(Option<SocketAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Peer, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(peer)| *peer),
        ))
    }
}

/// Why a session does not authenticate.
enum Refusal {
    NotSignedIn,
    Expired,
    Error(AppError),
}

/// The user of verified tokens; a facilitator when the access token's `cognito:groups` claim
/// names `facilitator_group`.
fn user_of(tokens: &Tokens, facilitator_group: &str) -> CurrentUser {
    CurrentUser {
        facilitator: tokens
            .user
            .groups
            .iter()
            .any(|group| group == facilitator_group),
        ..CurrentUser::from(session_user(tokens))
    }
}

fn session_user(tokens: &Tokens) -> SessionUser {
    SessionUser {
        id: UserId::new(tokens.user.sub.clone()),
        name: tokens
            .user
            .email
            .clone()
            .unwrap_or_else(|| tokens.user.username.clone()),
    }
}

/// The bearer token of an `Authorization` header, if the request has one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

/// The login page's URL that returns to `next` afterwards.
fn login_url(next: &str, info: Option<&str>) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    if next != "/" {
        query.append_pair("next", next);
    }
    if let Some(info) = info {
        query.append_pair("info", info);
    }
    let query = query.finish();
    if query.is_empty() {
        "/login".to_string()
    } else {
        format!("/login?{query}")
    }
}

/// `next` if it is a path on this site, else `/` (no open redirect: `//host`, `/\host`,
/// schemes and control characters are refused).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(next)
            if next.starts_with('/')
                && !next.starts_with("//")
                && !next.starts_with("/\\")
                && next.len() <= 2048
                && !next.chars().any(|c| c.is_control() || c == '\\') =>
        {
            next.to_string()
        }
        _ => "/".to_string(),
    }
}

impl super::Authenticator for CognitoLogin {
    fn routes(&self) -> Router<AppState> {
        let login = self.clone();
        let submit = self.clone();
        let challenge = self.clone();
        let answer = self.clone();
        let logout = self.clone();
        Router::new()
            .route(
                "/login",
                get(move |ctx, query| login_page(login, ctx, query)).post(
                    move |state, ctx, connect, headers, form| {
                        login_submit(submit, state, ctx, connect, headers, form)
                    },
                ),
            )
            .route(
                "/login/challenge",
                get(move |ctx, query| challenge_page(challenge, ctx, query)).post(
                    move |state, ctx, connect, headers, form| {
                        challenge_submit(answer, state, ctx, connect, headers, form)
                    },
                ),
            )
            .route(
                "/logout",
                post(move |state, ctx, form| logout_submit(logout, state, ctx, form)),
            )
    }

    fn authenticate<'a>(
        &'a self,
        state: &'a AppState,
        session: &'a Session,
        request: &'a Parts,
    ) -> BoxFuture<'a, Result<CurrentUser, Response>> {
        Box::pin(async move {
            if let Some(token) = bearer(&request.headers) {
                return self.authenticate_bearer(state, token).await;
            }
            // Only a page can be returned to; after a form post the user starts at home.
            let next = if request.method == Method::GET {
                safe_next(request.uri.path_and_query().map(|pq| pq.as_str()))
            } else {
                "/".to_string()
            };
            match self.authenticate_session(state, session).await {
                Ok(user) => Ok(user),
                Err(Refusal::NotSignedIn) => {
                    Err(Redirect::to(&login_url(&next, None)).into_response())
                }
                Err(Refusal::Expired) => Err(login_redirect_clearing_cookie(
                    state,
                    &login_url(&next, Some("expired")),
                )),
                Err(Refusal::Error(error)) => Err(error.into_response()),
            }
        })
    }
}

fn login_redirect_clearing_cookie(state: &AppState, location: &str) -> Response {
    let mut response = Redirect::to(location).into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, session::clear_cookie(state));
    response
}

// --- Pages ---------------------------------------------------------------------------------

/// Which form the login page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginStep {
    /// Username and password.
    Password,
    /// A new password instead of the temporary one.
    NewPassword,
    /// An authenticator-app code.
    MfaCode,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    title: &'static str,
    step: LoginStep,
    csrf_token: String,
    next: String,
    username: String,
    info: Option<&'static str>,
    error: Option<String>,
}

impl LoginPage {
    fn password(ctx: &SessionContext, next: String) -> LoginPage {
        LoginPage {
            title: "Sign in",
            step: LoginStep::Password,
            csrf_token: ctx.session.csrf_token.clone(),
            next,
            username: String::new(),
            info: None,
            error: None,
        }
    }

    fn challenge(ctx: &SessionContext, next: String, challenge: &Challenge) -> LoginPage {
        let (title, step) = match challenge.kind {
            ChallengeKind::NewPassword => ("Choose a new password", LoginStep::NewPassword),
            ChallengeKind::SoftwareTokenMfa => ("Authenticator code", LoginStep::MfaCode),
        };
        LoginPage {
            title,
            step,
            csrf_token: ctx.session.csrf_token.clone(),
            next,
            username: challenge.username().to_string(),
            info: None,
            error: None,
        }
    }
}

/// The status and page of a refused login step.
fn refused(error: &LoginError, page: LoginPage) -> Response {
    let status = match error {
        LoginError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
        LoginError::InvalidCredentials | LoginError::InvalidCode => StatusCode::UNAUTHORIZED,
        LoginError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        LoginError::Misconfigured(_) | LoginError::Token(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut response = (status, Html(page)).into_response();
    if error.is_server_fault() {
        // The source chain (Cognito's code and message) is for the log; the user gets Display.
        response
            .extensions_mut()
            .insert(InternalCause(Arc::new(chain(error))));
    }
    if let LoginError::RateLimited(limited) = error
        && let Ok(value) = HeaderValue::from_str(&limited.retry_after_secs().to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

#[derive(Deserialize)]
struct PageQuery {
    next: Option<String>,
    info: Option<String>,
}

fn info_text(info: Option<&str>) -> Option<&'static str> {
    match info {
        Some("expired") => Some("Your session has expired. Sign in again."),
        Some("signed_out") => Some("You are signed out."),
        Some("challenge_expired") => Some("That sign-in took too long. Sign in again."),
        _ => None,
    }
}

async fn login_page(
    login: CognitoLogin,
    Extension(ctx): Extension<SessionContext>,
    Query(query): Query<PageQuery>,
) -> Response {
    let next = safe_next(query.next.as_deref());
    // Already signed in: straight on.
    if let Some(SessionAuth::SignedIn(_)) = login.open(&ctx.session) {
        return Redirect::to(&next).into_response();
    }
    let mut page = LoginPage::password(&ctx, next);
    page.info = info_text(query.info.as_deref());
    Html(page).into_response()
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: Option<String>,
}

async fn login_submit(
    login: CognitoLogin,
    State(state): State<AppState>,
    Extension(ctx): Extension<SessionContext>,
    Peer(peer): Peer,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let client = login.client_addr(&headers, peer);
    let password = SecretString::from(form.password);
    let outcome = login.auth.sign_in(&form.username, &password, client).await;
    let mut page = LoginPage::password(&ctx, next.clone());
    page.username = form
        .username
        .trim()
        .chars()
        .take(auth::MAX_USERNAME_CHARS)
        .collect();
    step_outcome(&login, &state, &ctx, next, outcome, page).await
}

/// Signs in, or stores the pending challenge, or shows the error on `page`.
async fn step_outcome(
    login: &CognitoLogin,
    state: &AppState,
    ctx: &SessionContext,
    next: String,
    outcome: Result<SignIn, LoginError>,
    mut page: LoginPage,
) -> Response {
    match outcome {
        Ok(SignIn::Done(tokens)) => match signed_in(login, state, &ctx.session, &tokens).await {
            Ok(cookie) => {
                tracing::info!(user = %tokens.user.sub, "signed in");
                let mut response = Redirect::to(&next).into_response();
                response.headers_mut().append(header::SET_COOKIE, cookie);
                response
            }
            Err(error) => error.into_response(),
        },
        Ok(SignIn::Challenge(challenge)) => {
            // A password passed: a privilege change, so the pending login lives under a fresh
            // session id and CSRF token (the anonymous id the page was served under, which
            // another site may have planted, gets nothing).
            let pending = SessionAuth::Pending(challenge);
            let rotated =
                session::rotate(state, &ctx.session, |id| login.auth.seal(&pending, id)).await;
            let cookie = match rotated {
                Ok((_, cookie)) => cookie,
                Err(error) => return AppError::from(error).into_response(),
            };
            let location = if next == "/" {
                "/login/challenge".to_string()
            } else {
                format!(
                    "/login/challenge?{}",
                    form_urlencoded::Serializer::new(String::new())
                        .append_pair("next", &next)
                        .finish()
                )
            };
            let mut response = Redirect::to(&location).into_response();
            response.headers_mut().append(header::SET_COOKIE, cookie);
            response
        }
        Err(LoginError::ChallengeExpired) => {
            // Back to an anonymous session: its row goes (the cookie's id stays anonymous).
            if let Err(error) = state.store.delete_session(&ctx.session.id).await {
                return AppError::from(error).into_response();
            }
            Redirect::to(&login_url(&next, Some("challenge_expired"))).into_response()
        }
        Err(error) => {
            page.error = Some(capitalized(&error.to_string()));
            refused(&error, page)
        }
    }
}

/// A new signed-in session for `tokens` (new id and CSRF token); its `Set-Cookie`.
async fn signed_in(
    login: &CognitoLogin,
    state: &AppState,
    old: &Session,
    tokens: &Tokens,
) -> Result<HeaderValue, AppError> {
    let user = session_user(tokens);
    // The directory that sharing and the facilitator's view name users by.
    state
        .store
        .remember_user(&store::KnownUser {
            id: user.id.clone(),
            name: user.name.clone(),
        })
        .await?;
    let (mut session, cookie) = session::sign_in(state, old, user, None).await?;
    // The seal is bound to the session id, which `sign_in` has just chosen.
    session.auth_data = Some(
        login
            .auth
            .seal(&SessionAuth::SignedIn(tokens.clone()), &session.id),
    );
    state.store.save_session(&session).await?;
    Ok(cookie)
}

/// An error and its sources, for the log.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}

async fn challenge_page(
    login: CognitoLogin,
    Extension(ctx): Extension<SessionContext>,
    Query(query): Query<PageQuery>,
) -> Response {
    let next = safe_next(query.next.as_deref());
    match login.open(&ctx.session) {
        Some(SessionAuth::Pending(challenge)) => {
            Html(LoginPage::challenge(&ctx, next, &challenge)).into_response()
        }
        Some(SessionAuth::SignedIn(_)) => Redirect::to(&next).into_response(),
        None => Redirect::to(&login_url(&next, None)).into_response(),
    }
}

#[derive(Deserialize)]
struct ChallengeForm {
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    confirm_password: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    next: Option<String>,
}

async fn challenge_submit(
    login: CognitoLogin,
    State(state): State<AppState>,
    Extension(ctx): Extension<SessionContext>,
    Peer(peer): Peer,
    headers: HeaderMap,
    Form(form): Form<ChallengeForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let Some(SessionAuth::Pending(challenge)) = login.open(&ctx.session) else {
        return Redirect::to(&login_url(&next, Some("challenge_expired"))).into_response();
    };
    let page = LoginPage::challenge(&ctx, next.clone(), &challenge);
    let answer = match challenge.kind {
        ChallengeKind::NewPassword => {
            if form.new_password != form.confirm_password {
                let error = LoginError::PasswordsDiffer;
                let mut page = page;
                page.error = Some(capitalized(&error.to_string()));
                return refused(&error, page);
            }
            Answer::NewPassword(SecretString::from(form.new_password))
        }
        ChallengeKind::SoftwareTokenMfa => Answer::MfaCode(form.code),
    };
    let client = login.client_addr(&headers, peer);
    let outcome = login.auth.answer(&challenge, answer, client).await;
    step_outcome(&login, &state, &ctx, next, outcome, page).await
}

#[derive(Deserialize)]
struct LogoutForm {
    /// `everywhere`: every session of the user on every device (`GlobalSignOut`).
    #[serde(default)]
    scope: Option<String>,
}

async fn logout_submit(
    login: CognitoLogin,
    State(state): State<AppState>,
    Extension(ctx): Extension<SessionContext>,
    Form(form): Form<LogoutForm>,
) -> Response {
    if let Some(SessionAuth::SignedIn(tokens)) = login.open(&ctx.session) {
        let everywhere = form.scope.as_deref() == Some("everywhere");
        // The session ends here whatever Cognito says; a failed revoke is logged, and the
        // refresh token then lives out its validity unused (only the sealed store row had it).
        match login.auth.sign_out(&tokens, everywhere).await {
            Ok(()) | Err(LoginError::SessionExpired) => {}
            Err(error) => {
                tracing::warn!(error = %chain(&error), "revoking the refresh token at logout failed");
            }
        }
        tracing::info!(user = %tokens.user.sub, "signed out");
    }
    match session::sign_out(&state, &ctx.session).await {
        Ok(cookie) => {
            let mut response = Redirect::to("/login?info=signed_out").into_response();
            response.headers_mut().append(header::SET_COOKIE, cookie);
            response
        }
        Err(error) => AppError::from(error).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_returned_to() {
        assert_eq!(safe_next(Some("/runs/abc?page=2")), "/runs/abc?page=2");
        for hostile in [
            "//evil.example/",
            "/\\evil.example",
            "https://evil.example/",
            "javascript:alert(1)",
            "runs",
            "/a\r\nSet-Cookie: x=1",
        ] {
            assert_eq!(safe_next(Some(hostile)), "/", "{hostile:?}");
        }
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn the_login_url_keeps_the_requested_page() {
        assert_eq!(login_url("/", None), "/login");
        assert_eq!(login_url("/runs?x=1", None), "/login?next=%2Fruns%3Fx%3D1");
        assert_eq!(
            login_url("/runs", Some("expired")),
            "/login?next=%2Fruns&info=expired"
        );
    }

    #[test]
    fn bearer_tokens_are_read_from_the_authorization_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc.def"),
        );
        assert_eq!(bearer(&headers), Some("abc.def"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&headers), None);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer  "));
        assert_eq!(bearer(&headers), None);
    }
}
