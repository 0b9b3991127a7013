//! HTTP routes of the evaluation app.

use axum::{Router, routing::get};

/// The application router.
pub fn router() -> Router {
    Router::new().route("/healthz", get(healthz))
}

async fn healthz() -> &'static str {
    "ok"
}
