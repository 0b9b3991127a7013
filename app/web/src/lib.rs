//! The evaluation web app: server-rendered askama pages over the runner and the store.
//!
//! **Architecture invariant:** pages are thin over the `engine` (plans, the runner, exports) and
//! the `store`; this crate owns HTTP, sessions, CSRF and page rendering, and nothing but the
//! `llm-eval` binary depends on it, because the headless CLI must evaluate exactly as the web
//! form does without linking a web server into its tests.
//!
//! # The contract with the authentication layer (`auth`)
//!
//! Everything a login needs is already here; the authentication layer only adds:
//!
//! 1. **An [`Authenticator`] in [`AppState::authenticator`]**: `None` in local mode (no
//!    `COGNITO_USER_POOL_ID` + `COGNITO_CLIENT_ID`), `Some` otherwise. [`router`] then
//!    requires login on every page and action except `/healthz`, `/static/*` and the
//!    authenticator's own routes.
//! 2. **The login routes**, returned by [`Authenticator::routes`] (`/login`, `/logout`, the
//!    new-password challenge, ...). They are public (no login required) but run inside the
//!    session and CSRF layers, so their forms carry `csrf_token` like every other form, and
//!    their handlers get the [`session::SessionContext`] from the request extensions.
//! 3. **The middleware half**, [`Authenticator::authenticate`]: called for every protected
//!    request with the request's session. It returns the [`CurrentUser`] (refreshing tokens
//!    first when needed, saving the updated session with [`store::Store::save_session`])
//!    or the response to send instead, normally a redirect to `/login?next=<path>`.
//!
//! What this module guarantees to the authentication layer:
//! - Sessions are server-side ([`store::Session`]): the cookie `llm_eval_session`
//!   holds only a random 256-bit id (HttpOnly, SameSite=Lax, `Secure` except in local mode on a
//!   loopback address); the row holds the CSRF token, the signed-in user and opaque
//!   `auth_data` (tokens), stored by the SHA-256 of the id.
//! - [`session::sign_in`] rotates the session id and CSRF token (no session fixation) and
//!   returns the cookie to set; [`session::sign_out`] deletes the row and clears the cookie.
//! - Every unsafe request (POST, PUT, PATCH, DELETE) carries the session's CSRF token, as a
//!   `csrf_token` form field (URL-encoded or the first part of a multipart form) or an
//!   `X-CSRF-Token` header; otherwise it is refused with 403 before any handler runs.
//! - Pages read the user only through the [`CurrentUser`] extractor, and every store query for
//!   runs, records, datasets and settings takes the user's id: isolation between users is the
//!   store API's, not a page filter.
//!
//! The implementation `llm-eval serve` uses is [`login::CognitoLogin`] (Amazon Cognito,
//! server-side, over [`auth`]); tests also plug in a small one of their own.
//!
//! # Layout
//! [`state`] (what handlers share), [`error`] (one [`AppError`]), [`safety`] (server ceilings,
//! quotas, local mode's `Host` and `Origin` checks), [`fair`] (the task's model-call ceiling
//! shared by the runs), [`session`] (sessions, CSRF,
//! [`CurrentUser`]), [`registry`] (the runs this process executes), [`page`] (the askama
//! layout), [`routes`] (one module per feature), [`chart`] (server-rendered SVG), [`serve`]
//! (listener, operations: request ids, logs, limits, timeouts, graceful shutdown), [`login`] (the
//! Cognito login pages and session check).

pub mod adopt;
pub mod chart;
pub mod error;
pub mod fair;
pub mod login;
pub mod page;
pub mod registry;
pub mod routes;
pub mod safety;
pub mod serve;
pub mod session;
pub mod state;

use axum::Router;
use axum::http::request::Parts;
use axum::response::Response;

pub use error::AppError;
pub use session::CurrentUser;
pub use state::{AppState, WebConfig};

use engine::providers::BoxFuture;
use store::Session;

/// The login layer, when login is configured (see the module docs for the contract).
pub trait Authenticator: Send + Sync + std::fmt::Debug + 'static {
    /// The public routes of the login flow, merged into the app inside the session and CSRF
    /// layers but outside the login requirement.
    fn routes(&self) -> Router<AppState>;

    /// The user of a protected request, or the response to answer instead (a redirect to the
    /// login page, with the requested path to return to).
    fn authenticate<'a>(
        &'a self,
        state: &'a AppState,
        session: &'a Session,
        request: &'a Parts,
    ) -> BoxFuture<'a, Result<CurrentUser, Response>>;
}

/// The application router over `state`.
pub fn router(state: AppState) -> Router {
    let protected = routes::protected(&state.config).route_layer(
        axum::middleware::from_fn_with_state(state.clone(), session::require_user),
    );
    let mut app = Router::new().merge(protected);
    if let Some(authenticator) = &state.authenticator {
        app = app.merge(authenticator.routes());
    }
    let app = app
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            session::csrf_guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            session::load_session,
        ))
        .merge(routes::public())
        // Outside everything else: a rebound host name gets no session and no page.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            safety::local_mode_guard,
        ));
    serve::operations(app, &state.config).with_state(state)
}
