//! Model providers: one trait, one implementation per API (Bedrock Converse, SageMaker
//! InvokeEndpoint, OpenAI-compatible chat completions).
//!
//! Invariant: this is the only module family (with `store`) that talks to the network. A
//! provider makes exactly one attempt per `generate` call; retries, back-off, throttling windows
//! and timeouts belong to the runner, which decides using [`ProviderError::kind`].

pub mod aws;
pub mod bedrock;
pub mod openai;
pub mod sagemaker;

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// Who speaks a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions for the model; at most one, first.
    System,
    /// The human turn.
    User,
    /// A prior model turn (few-shot examples).
    Assistant,
}

/// One chat message of a rendered prompt.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who speaks.
    pub role: Role,
    /// What is said.
    pub content: String,
}

/// Inference parameters; `None` leaves the provider's default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InferenceParams {
    /// Sampling temperature.
    pub temperature: Option<f32>,
    /// Maximum number of generated tokens.
    pub max_tokens: Option<u32>,
    /// Nucleus sampling probability mass.
    pub top_p: Option<f32>,
    /// Sequences that stop generation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop_sequences: Vec<String>,
}

/// One request to a model.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateRequest {
    /// The provider-specific model id (Bedrock model id, SageMaker endpoint name, OpenAI model).
    pub model_id: String,
    /// The rendered prompt as chat messages.
    pub messages: Vec<ChatMessage>,
    /// The rendered prompt as one string (what text-completion APIs such as SageMaker TGI get).
    pub prompt_text: String,
    /// Inference parameters.
    pub params: InferenceParams,
}

/// What a model returned for one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    /// The output text, exactly as returned (never trimmed).
    pub text: String,
    /// Input tokens, when the API reports them.
    pub input_tokens: Option<u64>,
    /// Output tokens, when the API reports them.
    pub output_tokens: Option<u64>,
}

/// How the runner should treat a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 429 / ThrottlingException: shrink the concurrency window, wait, retry.
    Throttled,
    /// 5xx, connection reset, timeout: retry with jittered exponential back-off.
    Transient,
    /// Bad request, auth, unknown model: do not retry; the record fails.
    Permanent,
}

/// A failed model call.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The API throttled the request.
    #[error("throttled by {provider}: {message}")]
    Throttled {
        /// Provider name.
        provider: &'static str,
        /// The API's message.
        message: String,
        /// How long the API asked us to wait (Retry-After), if it said.
        retry_after: Option<Duration>,
    },
    /// A transient failure (5xx, connection dropped, timed out).
    #[error("{provider} request failed: {message}")]
    Transient {
        /// Provider name.
        provider: &'static str,
        /// What went wrong (never contains secrets).
        message: String,
    },
    /// A failure that retrying will not fix.
    #[error("{provider} rejected the request: {message}")]
    Permanent {
        /// Provider name.
        provider: &'static str,
        /// What went wrong (never contains secrets).
        message: String,
    },
}

impl ProviderError {
    /// How the runner should treat this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Throttled { .. } => ErrorKind::Throttled,
            Self::Transient { .. } => ErrorKind::Transient,
            Self::Permanent { .. } => ErrorKind::Permanent,
        }
    }

    /// The wait the API asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Throttled { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// A boxed future, so that providers can be used as trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A model API. Implementations are cheap to share (`Arc<dyn ModelProvider>`).
pub trait ModelProvider: Send + Sync {
    /// Short provider name: `bedrock`, `sagemaker` or `openai`.
    fn name(&self) -> &'static str;

    /// Makes exactly one call to the model.
    fn generate<'a>(
        &'a self,
        request: &'a GenerateRequest,
    ) -> BoxFuture<'a, Result<Generation, ProviderError>>;
}

/// Parses a `Retry-After` header value: delay seconds (`"2"`, also fractional `"1.5"` as some
/// gateways send) or an HTTP date, relative to `now`. A date in the past means "now" (zero).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    if let Ok(seconds) = value.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds).ok();
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// An error and its sources, `outer: inner: innermost`, for messages (no `Debug` output).
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        // Some errors repeat their source in their own message.
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// The longest API message kept in an error (bodies can be large HTML pages).
const MAX_ERROR_MESSAGE_CHARS: usize = 500;

/// Shortens an API message for an error, on a character boundary.
pub(crate) fn truncate_message(message: &str) -> String {
    match message.char_indices().nth(MAX_ERROR_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_retry_after(value: &str, expected: Option<Duration>) {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(parse_retry_after(value, now), expected, "{value:?}");
    }

    #[test]
    fn retry_after() {
        check_retry_after("3", Some(Duration::from_secs(3)));
        check_retry_after(" 0 ", Some(Duration::ZERO));
        check_retry_after("1.5", Some(Duration::from_millis(1500)));
        // 1_445_412_480 is Wed, 21 Oct 2015 07:28:00 GMT.
        check_retry_after(
            "Wed, 21 Oct 2015 07:28:10 GMT",
            Some(Duration::from_secs(10)),
        );
        check_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", Some(Duration::ZERO));
        check_retry_after("-1", None);
        check_retry_after("soon", None);
        check_retry_after("", None);
    }

    #[test]
    fn truncation() {
        assert_eq!(truncate_message("short"), "short");
        let long = "é".repeat(600);
        assert_eq!(truncate_message(&long).chars().count(), 501);
    }

    proptest::proptest! {
        #[test]
        fn retry_after_never_panics(value in ".*") {
            let _ = parse_retry_after(&value, SystemTime::now());
        }
    }
}
