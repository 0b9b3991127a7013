//! Server-side sessions, CSRF protection and the current user.
//!
//! - [`load_session`] finds the session of the session cookie in the store, or starts an
//!   anonymous one (a random 256-bit id whose CSRF token is derived from it), extends a stored
//!   one while it is used, and puts a [`SessionContext`] in the request extensions.
//! - Nothing is stored before a login: an anonymous session lives in the browser's cookie only
//!   (its CSRF token is the SHA-256 of a domain tag and the id, so only the holder of the
//!   HttpOnly cookie can know it: a double-submit token), and a store row is written only by
//!   [`sign_in`] or [`rotate`] (a pending login challenge), each under a fresh id. A loop of
//!   cookieless requests therefore stores nothing.
//! - The cookie is `__Host-llm_eval_session` whenever it is `Secure` (no subdomain or plain-HTTP
//!   page can set or shadow it), `llm_eval_session` in local mode on loopback.
//! - [`csrf_guard`] refuses every unsafe request (POST, PUT, PATCH, DELETE) whose CSRF token
//!   (the `X-CSRF-Token` header, or the `csrf_token` field of a URL-encoded form or of the first
//!   part of a multipart form) is not the session's, with 403, before any handler runs.
//! - [`require_user`] resolves the [`CurrentUser`] of protected routes: the local user in local
//!   mode, else whatever the [`super::Authenticator`] says.
//!
//! Invariants: the cookie holds only the session id (HttpOnly, SameSite=Lax, Path=/, Secure
//! unless local mode on loopback); tokens are compared in constant time; a multipart body is
//! never buffered whole to find its token (only its first part, at most
//! [`MAX_CSRF_PREFIX`] bytes).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

use super::error::AppError;
use super::state::AppState;
use store::sqlite::random_hex;
use store::{Session, SessionUser, StoreError, UserId};

/// The session cookie's name in local mode on loopback (plain HTTP, not `Secure`).
pub const COOKIE: &str = "llm_eval_session";
/// The session cookie's name whenever it is `Secure`: the `__Host-` prefix makes browsers
/// refuse it unless it is Secure, has `Path=/` and no `Domain`, so no sibling site can plant one.
pub const SECURE_COOKIE: &str = "__Host-llm_eval_session";

/// The session cookie's name under `state`'s settings.
pub fn cookie_name(state: &AppState) -> &'static str {
    if state.config.secure_cookies {
        SECURE_COOKIE
    } else {
        COOKIE
    }
}

/// The form field and header that carry the CSRF token.
pub const CSRF_FIELD: &str = "csrf_token";
/// The header that carries the CSRF token of `fetch` calls.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The most bytes of a multipart body read to find its first part (the CSRF token).
pub const MAX_CSRF_PREFIX: usize = 16 * 1024;

/// A session is extended (and its cookie sent again) once this much of its lifetime is used.
const EXTEND_AFTER: Duration = Duration::from_secs(3600);

/// The request's session, in the request extensions of every route but `/healthz` and
/// `/static/*`.
#[derive(Debug, Clone)]
pub struct SessionContext {
    /// The session as stored.
    pub session: Session,
}

/// Who is making the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentUser {
    /// The owner id of the user's runs, datasets and settings.
    pub id: UserId,
    /// What the pages show.
    pub name: String,
    /// Whether the user is a facilitator: a member of the configured Cognito group
    /// ([`super::state::WebConfig::facilitator_group`]) as the verified token's
    /// `cognito:groups` claim says; never set from anything the browser sends.
    pub facilitator: bool,
}

impl CurrentUser {
    /// The one user of local mode.
    pub fn local() -> CurrentUser {
        CurrentUser {
            id: UserId::local(),
            name: "local user".to_string(),
            facilitator: false,
        }
    }

    /// The user as the store's directory and audit name them.
    pub fn known(&self) -> store::KnownUser {
        store::KnownUser {
            id: self.id.clone(),
            name: self.name.clone(),
        }
    }
}

impl From<SessionUser> for CurrentUser {
    /// A session's user, without any role (a role comes only from a verified token).
    fn from(user: SessionUser) -> CurrentUser {
        CurrentUser {
            id: user.id,
            name: user.name,
            facilitator: false,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<CurrentUser, AppError> {
        // Only `require_user` puts it there: a handler outside the protected routes that asks
        // for a user gets the login page, never a default user.
        parts
            .extensions
            .get::<CurrentUser>()
            .cloned()
            .ok_or(AppError::LoginRequired)
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |now| now.as_secs() as i64)
}

/// A new session with a random id and a random CSRF token (to be stored).
fn new_session(ttl: Duration) -> Session {
    Session {
        id: random_hex(32),
        csrf_token: random_hex(32),
        user: None,
        auth_data: None,
        expires_unix: unix_now() + ttl.as_secs() as i64,
    }
}

/// The anonymous (never stored) session of cookie id `id`: its CSRF token is derived from the
/// id, so it needs no row.
fn anonymous_session(id: String, ttl: Duration) -> Session {
    Session {
        csrf_token: anonymous_csrf_token(&id),
        id,
        user: None,
        auth_data: None,
        expires_unix: unix_now() + ttl.as_secs() as i64,
    }
}

/// The CSRF token of an anonymous session: SHA-256 of a domain tag and the id, in hex.
fn anonymous_csrf_token(session_id: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::new()
        .chain_update(b"llm-eval anonymous csrf v1\0")
        .chain_update(session_id.as_bytes())
        .finalize();
    digest
        .iter()
        .fold(String::with_capacity(64), |mut text, byte| {
            use std::fmt::Write;
            let _ = write!(text, "{byte:02x}");
            text
        })
}

/// The `Set-Cookie` value that gives the browser session `session_id`.
pub fn session_cookie(state: &AppState, session_id: &str) -> HeaderValue {
    let secure = if state.config.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let value = format!(
        "{}={session_id}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        cookie_name(state),
        state.config.session_ttl.as_secs()
    );
    HeaderValue::from_str(&value).expect("a session id is hex, a valid header value")
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie(state: &AppState) -> HeaderValue {
    let secure = if state.config.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}",
        cookie_name(state)
    ))
    .expect("a constant cookie is a valid header value")
}

/// The session id of the request's cookie named `cookie`, if any.
fn cookie_session_id(headers: &HeaderMap, cookie: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == cookie)
        .map(|(_, value)| value.to_string())
        // Our ids are 64 hex digits; anything else is not worth a store lookup.
        .filter(|value| value.len() == 64 && value.bytes().all(|byte| byte.is_ascii_hexdigit()))
}

/// Whether the request carries `Authorization: Bearer ...` (the scheme is case-insensitive).
fn has_bearer_token(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.get(..7))
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("bearer "))
}

/// Middleware: the request's session (found or started) as a [`SessionContext`]. Sessions
/// are stored only once signed in or with a pending login (see the module docs): any other
/// request gets an anonymous session that lives in its cookie only, and requests with a
/// bearer token and no session cookie get one that is not even sent back.
pub async fn load_session(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let ttl = state.config.session_ttl;
    let cookie_id = cookie_session_id(request.headers(), cookie_name(&state));
    let found = match &cookie_id {
        Some(id) => match state.store.session(id).await {
            Ok(found) => found,
            Err(error) => return AppError::from(error).into_response(),
        },
        None => None,
    };
    let (session, send_cookie) = match (found, cookie_id) {
        (Some(mut session), _) => {
            let used = ttl.as_secs() as i64 - (session.expires_unix - unix_now());
            if used > EXTEND_AFTER.as_secs() as i64 {
                session.expires_unix = unix_now() + ttl.as_secs() as i64;
                if let Err(error) = state.store.save_session(&session).await {
                    return AppError::from(error).into_response();
                }
                (session, true)
            } else {
                (session, false)
            }
        }
        // A cookie the store does not know (anonymous, or its row expired or was signed
        // out): an anonymous session under the same id, stored nowhere.
        (None, Some(id)) => (anonymous_session(id, ttl), false),
        // A client that authenticates each request with a bearer token keeps no cookie: its
        // session lives for this request only.
        (None, None) if has_bearer_token(request.headers()) => (new_session(ttl), false),
        // A new browser: an anonymous session in its cookie only.
        (None, None) => (anonymous_session(random_hex(32), ttl), true),
    };
    let session_id = session.id.clone();
    request.extensions_mut().insert(SessionContext { session });
    let mut response = next.run(request).await;
    // A handler that signed the user in or out set its own cookie: that one wins.
    let handler_set_cookie = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|value| {
            value
                .as_bytes()
                .starts_with(format!("{}=", cookie_name(&state)).as_bytes())
        });
    if send_cookie && !handler_set_cookie {
        response
            .headers_mut()
            .append(header::SET_COOKIE, session_cookie(&state, &session_id));
    }
    response
}

/// Signs a user in on the request's session: the old session is deleted and a new one (new
/// id, new CSRF token: no session fixation) holds the user and the authentication layer's
/// opaque data. Returns the new session and the `Set-Cookie` value to send.
pub async fn sign_in(
    state: &AppState,
    old: &Session,
    user: SessionUser,
    auth_data: Option<String>,
) -> Result<(Session, HeaderValue), StoreError> {
    state.store.delete_session(&old.id).await?;
    let session = Session {
        user: Some(user),
        auth_data,
        ..new_session(state.config.session_ttl)
    };
    state.store.save_session(&session).await?;
    let cookie = session_cookie(state, &session.id);
    Ok((session, cookie))
}

/// Moves the request's session to a fresh id and CSRF token (a privilege change short of a
/// sign-in: a pending login challenge), holding `auth_data` sealed for the new id by
/// `seal(new_id)`; the old row, if any, is deleted. Returns the new session and its cookie.
pub async fn rotate(
    state: &AppState,
    old: &Session,
    seal: impl FnOnce(&str) -> String,
) -> Result<(Session, HeaderValue), StoreError> {
    state.store.delete_session(&old.id).await?;
    let mut session = new_session(state.config.session_ttl);
    session.auth_data = Some(seal(&session.id));
    state.store.save_session(&session).await?;
    let cookie = session_cookie(state, &session.id);
    Ok((session, cookie))
}

/// Signs out: deletes the session; returns the `Set-Cookie` value that clears the cookie.
pub async fn sign_out(state: &AppState, session: &Session) -> Result<HeaderValue, StoreError> {
    state.store.delete_session(&session.id).await?;
    Ok(clear_cookie(state))
}

/// Whether two tokens are equal, in time independent of where they differ.
fn tokens_match(given: &str, expected: &str) -> bool {
    given.len() == expected.len()
        && !expected.is_empty()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

fn csrf_refused() -> Response {
    AppError::Forbidden(
        "This form has expired or did not come from this site (its CSRF token is missing or wrong). Go back, reload the page and send it again.".to_string(),
    )
    .into_response()
}

/// Middleware: refuses unsafe requests without the session's CSRF token.
pub async fn csrf_guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let Some(expected) = request
        .extensions()
        .get::<SessionContext>()
        .map(|context| context.session.csrf_token.clone())
    else {
        return csrf_refused();
    };
    if let Some(given) = request
        .headers()
        .get(CSRF_HEADER)
        .and_then(|value| value.to_str().ok())
    {
        return if tokens_match(given, &expected) {
            next.run(request).await
        } else {
            csrf_refused()
        };
    }
    // The media type as the browser sent it: parameter values (the multipart boundary) are
    // case-sensitive, and Blink and WebKit send boundaries with capital letters.
    let media_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<mime::Mime>().ok());
    let Some(media_type) = media_type else {
        return csrf_refused();
    };
    if media_type.essence_str() == mime::APPLICATION_WWW_FORM_URLENCODED.essence_str() {
        let (parts, body) = request.into_parts();
        let bytes = match axum::body::to_bytes(body, state.config.max_form_bytes).await {
            Ok(bytes) => bytes,
            Err(_) => {
                return AppError::PayloadTooLarge(format!(
                    "the form is larger than {} KiB",
                    state.config.max_form_bytes / 1024
                ))
                .into_response();
            }
        };
        let given = form_urlencoded::parse(&bytes)
            .find(|(name, _)| name == CSRF_FIELD)
            .map(|(_, value)| value.into_owned());
        if !given.is_some_and(|given| tokens_match(&given, &expected)) {
            return csrf_refused();
        }
        return next
            .run(Request::from_parts(parts, Body::from(bytes)))
            .await;
    }
    if media_type.essence_str() == mime::MULTIPART_FORM_DATA.essence_str() {
        let Some(boundary) = media_type.get_param(mime::BOUNDARY) else {
            return AppError::BadRequest("the multipart form has no boundary".to_string())
                .into_response();
        };
        let boundary = boundary.as_str().to_string();
        let (parts, body) = request.into_parts();
        let mut stream = body.into_data_stream();
        let mut prefix: Vec<u8> = Vec::new();
        let mut ended = false;
        let given = loop {
            match first_part(&prefix, &boundary, ended).await {
                FirstPart::Token(token) => break Some(token),
                FirstPart::Refused => break None,
                FirstPart::NeedMore if prefix.len() > MAX_CSRF_PREFIX => break None,
                FirstPart::NeedMore => {}
            }
            match stream.next().await {
                Some(Ok(chunk)) => prefix.extend_from_slice(&chunk),
                Some(Err(_)) => break None,
                None => ended = true,
            }
        };
        if !given.is_some_and(|given| tokens_match(&given, &expected)) {
            return csrf_refused();
        }
        // The body again, as it came: the part already read, then the rest of the stream.
        let body = Body::from_stream(
            futures::stream::once(async move { Ok::<Bytes, axum::Error>(Bytes::from(prefix)) })
                .chain(stream),
        );
        return next.run(Request::from_parts(parts, body)).await;
    }
    csrf_refused()
}

/// What the first part of a multipart body says about the CSRF token.
#[derive(Debug, PartialEq)]
enum FirstPart {
    /// The first part is the token field, with this value.
    Token(String),
    /// The first part is another field, or the body is not a well-formed multipart body:
    /// refused (the form must send its token first).
    Refused,
    /// The bytes so far end before the first part does.
    NeedMore,
}

/// Reads the first part of a multipart body from the bytes received so far (`ended`: they are
/// the whole body) with `multer`, axum's own multipart parser.
async fn first_part(prefix: &[u8], boundary: &str, ended: bool) -> FirstPart {
    let bytes = Bytes::copy_from_slice(prefix);
    let stream = futures::stream::once(async move { Ok::<Bytes, std::convert::Infallible>(bytes) });
    // The caller bounds the prefix (MAX_CSRF_PREFIX and one chunk).
    let mut multipart = multer::Multipart::new(stream, boundary);
    let outcome = match multipart.next_field().await {
        Ok(Some(field)) if field.name() == Some(CSRF_FIELD) => field.text().await.map(Some),
        Ok(_) => return FirstPart::Refused,
        Err(error) => Err(error),
    };
    match outcome {
        Ok(Some(token)) => FirstPart::Token(token),
        Ok(None) => FirstPart::Refused,
        Err(multer::Error::IncompleteStream | multer::Error::IncompleteFieldData { .. })
            if !ended =>
        {
            FirstPart::NeedMore
        }
        Err(_) => FirstPart::Refused,
    }
}

/// Middleware of the protected routes: the [`CurrentUser`] in the request extensions, or the
/// authenticator's answer (a redirect to the login page).
pub async fn require_user(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(authenticator) = state.authenticator.clone() else {
        let mut request = request;
        request.extensions_mut().insert(CurrentUser::local());
        return next.run(request).await;
    };
    let Some(session) = request
        .extensions()
        .get::<SessionContext>()
        .map(|context| context.session.clone())
    else {
        return AppError::LoginRequired.into_response();
    };
    let (mut parts, body) = request.into_parts();
    match authenticator.authenticate(&state, &session, &parts).await {
        Ok(user) => {
            parts.extensions.insert(user);
            next.run(Request::from_parts(parts, body)).await
        }
        Err(response) => response,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn check_first_part(body: &str, expected: FirstPart) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let got = runtime.block_on(first_part(body.as_bytes(), "XyZ", false));
        assert_eq!(got, expected, "{body:?}");
    }

    #[test]
    fn the_token_is_read_from_the_first_multipart_part_only() {
        let token_part =
            "--XyZ\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\nabc\r\n--XyZ";
        check_first_part(token_part, FirstPart::Token("abc".into()));
        check_first_part(
            &format!(
                "{token_part}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nxx"
            ),
            FirstPart::Token("abc".into()),
        );
        check_first_part(
            "--XyZ\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\nab",
            FirstPart::NeedMore,
        );
        check_first_part(
            "--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc\r\n--XyZ",
            FirstPart::Refused,
        );
        check_first_part("", FirstPart::NeedMore);
        // The boundary is case-sensitive: another case is another boundary.
        check_first_part(
            "--xyz\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\nabc\r\n--xyz--\r\n",
            FirstPart::NeedMore,
        );
    }

    #[test]
    fn regression_a_boundary_with_capital_letters_is_kept() {
        let media_type: mime::Mime =
            "Multipart/Form-Data; boundary=----WebKitFormBoundaryAbC123xYz"
                .parse()
                .unwrap();
        assert_eq!(
            media_type.essence_str(),
            mime::MULTIPART_FORM_DATA.essence_str()
        );
        assert_eq!(
            media_type.get_param(mime::BOUNDARY).unwrap().as_str(),
            "----WebKitFormBoundaryAbC123xYz"
        );
    }

    #[test]
    fn cookies_and_boundaries_are_parsed_strictly() {
        let id = "a".repeat(64);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("x=1; {COOKIE}={id}")).unwrap(),
        );
        assert_eq!(cookie_session_id(&headers, COOKIE), Some(id.clone()));
        assert_eq!(cookie_session_id(&headers, SECURE_COOKIE), None);
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("{SECURE_COOKIE}={id}")).unwrap(),
        );
        assert_eq!(cookie_session_id(&headers, SECURE_COOKIE), Some(id));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("llm_eval_session=../../etc"),
        );
        assert_eq!(cookie_session_id(&headers, COOKIE), None);
        // Anonymous tokens: derived, 64 hex digits, different per id.
        let token = anonymous_csrf_token(&"a".repeat(64));
        assert_eq!(token.len(), 64);
        assert_ne!(token, anonymous_csrf_token(&"b".repeat(64)));
        assert!(tokens_match("abc", "abc"));
        assert!(!tokens_match("abd", "abc"));
        assert!(!tokens_match("", ""));
        assert!(!tokens_match("ab", "abc"));
    }
}
