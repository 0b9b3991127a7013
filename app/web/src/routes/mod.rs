//! The routes, one module per feature; each returns its `Router<AppState>`.
//!
//! Invariant: [`public`] routes need no session (health check, static files); everything in
//! [`protected`] runs with a session, the CSRF guard and a [`super::CurrentUser`].

pub mod compare;
pub mod datasets;
pub mod evals;
mod home;
mod mode;
pub mod runs;
pub mod side;
pub mod teams;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use super::state::{AppState, WebConfig};

/// Routes anyone may call: the health check and the static files.
pub fn public() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/static/app.css", get(app_css))
        .route("/static/app.js", get(app_js))
}

/// Routes that need a user (the local user in local mode).
pub fn protected(config: &WebConfig) -> Router<AppState> {
    Router::new()
        .merge(home::routes())
        .merge(datasets::routes(config))
        .merge(evals::routes())
        .merge(runs::routes())
        .merge(side::routes())
        .merge(compare::routes())
        .merge(teams::routes())
}

/// The health check (ECS, the ALB and `llm-eval healthcheck`): the process answers.
async fn healthz() -> &'static str {
    "ok"
}

const APP_CSS: &str = include_str!("../../static/app.css");
const APP_JS: &str = include_str!("../../static/app.js");

async fn app_css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        APP_CSS,
    )
}

async fn app_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        APP_JS,
    )
}
