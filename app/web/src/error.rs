//! One error type for every handler: 4xx errors carry a message for the user, 5xx errors are
//! opaque to the user and logged with the request's span (the axum error-handling pattern).
//!
//! Invariant: turning an error into a response has no side effects; the cause of a 500 travels
//! in a response extension ([`InternalCause`]) and [`super::serve`]'s logging layer writes it,
//! inside the request span that carries the request id.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use store::StoreError;

/// What went wrong in a request.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request is malformed or invalid; the message says what to fix.
    #[error("{0}")]
    BadRequest(String),
    /// The request is refused (CSRF token missing or wrong).
    #[error("{0}")]
    Forbidden(String),
    /// No such page, run or dataset (for this user).
    #[error("{0}")]
    NotFound(String),
    /// The body is larger than the limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The action does not fit the current state (for example deleting a running run).
    #[error("{0}")]
    Conflict(String),
    /// Login is required (answered with a redirect to the login page).
    #[error("login required")]
    LoginRequired,
    /// Anything else: a bug or an unavailable backend.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for AppError {
    fn from(error: StoreError) -> AppError {
        AppError::Internal(anyhow::Error::new(error))
    }
}

/// The cause of a 500, kept for the logging layer.
#[derive(Debug, Clone)]
pub struct InternalCause(pub std::sync::Arc<String>);

impl AppError {
    /// The status code of the error.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::LoginRequired => StatusCode::SEE_OTHER,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the user is told.
    pub fn public_message(&self) -> String {
        match self {
            AppError::Internal(_) => {
                "Something went wrong on the server. The error is in the server log; try again, or report it.".to_string()
            }
            other => other.to_string(),
        }
    }

    fn cause(&self) -> Option<InternalCause> {
        match self {
            AppError::Internal(error) => {
                Some(InternalCause(std::sync::Arc::new(format!("{error:#}"))))
            }
            _ => None,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let AppError::LoginRequired = self {
            return (StatusCode::SEE_OTHER, [(header::LOCATION, "/login")]).into_response();
        }
        let status = self.status();
        let body = super::page::error_page(status, &self.public_message());
        let mut response = (status, body).into_response();
        if let Some(cause) = self.cause() {
            response.extensions_mut().insert(cause);
        }
        response
    }
}

/// An [`AppError`] answered as JSON (`{"error": "..."}`), for the endpoints scripts call.
#[derive(Debug)]
pub struct JsonError(pub AppError);

impl From<AppError> for JsonError {
    fn from(error: AppError) -> JsonError {
        JsonError(error)
    }
}

impl From<StoreError> for JsonError {
    fn from(error: StoreError) -> JsonError {
        JsonError(error.into())
    }
}

impl IntoResponse for JsonError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let body = axum::Json(serde_json::json!({"error": self.0.public_message()}));
        let mut response = (status, body).into_response();
        if let Some(cause) = self.0.cause() {
            response.extensions_mut().insert(cause);
        }
        response
    }
}
