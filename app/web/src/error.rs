//! One error type for every handler: 4xx errors carry a message for the user, 5xx errors are
//! opaque to the user and logged with the request's span (the axum error-handling pattern).
//!
//! Invariant: turning an error into a response has no side effects; the cause of a 500 travels
//! in a response extension ([`InternalCause`]) and [`super::serve`]'s logging layer writes it,
//! inside the request span that carries the request id. The user sees the error's category
//! ([`ErrorCategory`]) and that request id (added by the same layer, through [`Shown`]), never
//! the cause: AWS's texts name the account and its roles.

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

/// What kind of server-side failure a 500 was, as the user is told it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCategory {
    /// The store (SQLite, or DynamoDB and S3) failed or did not answer.
    Store,
    /// Anything else: a bug, or a service the server needs.
    Server,
}

impl ErrorCategory {
    /// The category of `error`, from its source chain.
    pub fn of(error: &anyhow::Error) -> ErrorCategory {
        if error
            .chain()
            .any(|cause| cause.downcast_ref::<StoreError>().is_some())
        {
            ErrorCategory::Store
        } else {
            ErrorCategory::Server
        }
    }

    /// The sentence the user reads (without the request id).
    pub fn message(self) -> &'static str {
        match self {
            ErrorCategory::Store => {
                "The server could not read or write its data store. Try again in a moment; if it keeps failing, report it with the request id."
            }
            ErrorCategory::Server => {
                "Something went wrong on the server. Try again, or report it with the request id."
            }
        }
    }
}

/// A server error's public message, kept for the logging layer, which answers it with the
/// request id (an HTML page, or JSON for the endpoints scripts call).
#[derive(Debug, Clone)]
pub struct Shown {
    /// The category's sentence.
    pub message: &'static str,
    /// Answer as JSON (`{"error", "request_id"}`) instead of a page.
    pub json: bool,
}

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
            AppError::Internal(error) => ErrorCategory::of(error).message().to_string(),
            other => other.to_string(),
        }
    }

    fn shown(&self, json: bool) -> Option<Shown> {
        match self {
            AppError::Internal(error) => Some(Shown {
                message: ErrorCategory::of(error).message(),
                json,
            }),
            _ => None,
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
        if let Some(shown) = self.shown(false) {
            response.extensions_mut().insert(shown);
        }
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
        if let Some(shown) = self.0.shown(true) {
            response.extensions_mut().insert(shown);
        }
        if let Some(cause) = self.0.cause() {
            response.extensions_mut().insert(cause);
        }
        response
    }
}
