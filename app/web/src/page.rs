//! The page layout: what every page shows around its content (navigation, the signed-in user
//! and logout, the local-mode notice) and how a template becomes a response.
//!
//! Invariant: every page is rendered through [`Html`], so a template error becomes a logged
//! 500, never a half page; every form in a template takes its CSRF token from
//! [`Layout::csrf_token`].

use askama::Template;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::AppError;
use super::session::{CurrentUser, SessionContext};
use super::state::AppState;

/// What the layout needs to know about the request.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The signed-in user's name (local mode: "local user").
    pub user_name: String,
    /// Whether to show the "local mode: no login configured" notice (and no logout button).
    pub local_mode: bool,
    /// The session's CSRF token, for every form of the page.
    pub csrf_token: String,
    /// The request path, for the navigation's current-page mark.
    pub path: String,
    /// Whether the user is a facilitator (the Team link); from the verified token only.
    pub facilitator: bool,
}

impl Layout {
    /// Whether `prefix` is the current section (for `aria-current`).
    pub fn is_current(&self, prefix: &str) -> bool {
        if prefix == "/" {
            self.path == "/"
        } else {
            self.path.starts_with(prefix)
        }
    }
}

impl FromRequestParts<AppState> for Layout {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Layout, AppError> {
        let user = CurrentUser::from_request_parts(parts, state).await?;
        let csrf_token = parts
            .extensions
            .get::<SessionContext>()
            .map(|context| context.session.csrf_token.clone())
            .unwrap_or_default();
        Ok(Layout {
            facilitator: user.facilitator,
            user_name: user.name,
            local_mode: state.is_local_mode(),
            csrf_token,
            path: parts.uri.path().to_string(),
        })
    }
}

/// A rendered askama template as an HTML response.
pub struct Html<T>(pub T);

impl<T: Template> IntoResponse for Html<T> {
    fn into_response(self) -> Response {
        match self.0.render() {
            Ok(body) => {
                ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
            }
            Err(error) => AppError::Internal(anyhow::Error::new(error).context("rendering a page"))
                .into_response(),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    reason: &'a str,
    message: &'a str,
}

/// The HTML of an error page (standalone: it needs no session, so it works for every error).
pub fn error_page(status: StatusCode, message: &str) -> axum::response::Html<String> {
    let page = ErrorPage {
        status: status.as_u16(),
        reason: status.canonical_reason().unwrap_or("Error"),
        message,
    };
    axum::response::Html(page.render().unwrap_or_else(|_| message.to_string()))
}

/// The models of a run, from its stored configuration, comma-separated.
pub fn models_of(run: &store::RunRow) -> String {
    run.config
        .get("models")
        .and_then(serde_json::Value::as_array)
        .map(|models| {
            models
                .iter()
                .filter_map(serde_json::Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}
