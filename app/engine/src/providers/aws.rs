//! What the AWS providers (Bedrock, SageMaker) share: client configuration with the SDK's own
//! retries off and explicit timeouts, and the mapping of SDK errors to [`ProviderError`] kinds.
//!
//! Invariant: a client built here makes exactly one attempt per call (`RetryConfig::disabled()`),
//! because the runner owns retries, back-off and the throttling window.
//! Invariant: no reply body is read past the response limit ([`ResponseSizeLimit`]), and no
//! message carries the endpoint URL's credentials ([`scope`] and the providers' redactors).

use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_sdk_bedrockruntime::config::http::HttpResponse;
use aws_sdk_bedrockruntime::config::interceptors::BeforeDeserializationInterceptorContextMut;
use aws_sdk_bedrockruntime::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_bedrockruntime::error::{BoxError, ProvideErrorMetadata, SdkError};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use http_body_util::BodyExt;

use super::redact::{Redactor, url_without_credentials};
use super::{ProviderError, html_page, parse_retry_after, response_too_large, truncate_message};
use crate::limits::ByteSize;
use store::error_chain;

/// Timeouts of one model call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP + TLS connect.
    pub connect: Duration,
    /// The whole attempt, including reading the response.
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(5),
            request: Duration::from_secs(120),
        }
    }
}

/// The SDK retry setting every model client uses: none.
pub(crate) fn no_retries() -> RetryConfig {
    RetryConfig::disabled()
}

/// The endpoint override of the AWS clients: the `SdkConfig`'s, else `AWS_ENDPOINT_URL` (the
/// SDK reads that variable itself, per service client, so the `SdkConfig` may not show it).
pub(crate) fn endpoint_url(sdk_config: &SdkConfig) -> Option<String> {
    sdk_config
        .endpoint_url()
        .map(str::to_owned)
        .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
        .filter(|url| !url.trim().is_empty())
}

/// Where an AWS provider's calls go, for the response cache key: provider, region and the
/// endpoint override, if any, without the credentials a URL may carry (the key is stored).
pub(crate) fn scope(provider: &str, sdk_config: &SdkConfig) -> String {
    format!(
        "{provider} {} {}",
        sdk_config.region().map_or("-", |region| region.as_ref()),
        endpoint_url(sdk_config)
            .map(|url| url_without_credentials(&url))
            .as_deref()
            .unwrap_or("-")
    )
}

/// What an AWS provider's messages must not show: the endpoint URL's credentials.
pub(crate) fn redactor(sdk_config: &SdkConfig) -> Redactor {
    match endpoint_url(sdk_config) {
        Some(url) => Redactor::default().with_url_credentials(&url),
        None => Redactor::default(),
    }
}

/// A reply larger than the response limit (the error inside the SDK's response error).
#[derive(Debug, thiserror::Error)]
#[error("the response is larger than {limit}")]
pub(crate) struct ResponseTooLarge {
    limit: ByteSize,
}

/// An interceptor that caps the reply body of every call: a `Content-Length` over the limit
/// fails before anything is read, and any other body stops being read one chunk past it (an
/// endpoint streaming an endless body would otherwise be read until memory runs out).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResponseSizeLimit {
    pub(crate) limit: ByteSize,
}

impl Intercept for ResponseSizeLimit {
    fn name(&self) -> &'static str {
        "ResponseSizeLimit"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let limit = self.limit;
        let response = context.response_mut();
        let declared = response
            .headers()
            .get("content-length")
            .and_then(|length| length.trim().parse::<u64>().ok());
        if declared.is_some_and(|length| length > limit.0) {
            return Err(Box::new(ResponseTooLarge { limit }));
        }
        let body = std::mem::replace(response.body_mut(), SdkBody::taken());
        let capped = http_body_util::Limited::new(body, limit.as_usize()).map_err(move |error| {
            if error.is::<http_body_util::LengthLimitError>() {
                Box::new(ResponseTooLarge { limit }) as BoxError
            } else {
                error
            }
        });
        *response.body_mut() = SdkBody::from_body_1_x(capped);
        Ok(())
    }
}

/// The [`ResponseTooLarge`] somewhere in an error's sources, if any.
fn too_large_in(err: &(dyn std::error::Error + 'static)) -> Option<ByteSize> {
    let mut current = Some(err);
    while let Some(error) = current {
        if let Some(too_large) = error.downcast_ref::<ResponseTooLarge>() {
            return Some(too_large.limit);
        }
        current = error.source();
    }
    None
}

/// The SDK timeout setting for model clients.
pub(crate) fn timeout_config(timeouts: Timeouts) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(timeouts.connect)
        .read_timeout(timeouts.request)
        .operation_attempt_timeout(timeouts.request)
        .operation_timeout(timeouts.request)
        .build()
}

/// An `SdkConfig` for a local endpoint (a model double, LocalStack): region `us-east-1`, fake
/// static credentials (requests are signed; the double does not check), the given endpoint.
pub fn local_sdk_config(endpoint_url: &str) -> SdkConfig {
    use aws_sdk_bedrockruntime::config::{Credentials, SharedCredentialsProvider};
    SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint_url)
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDLOCALDOUBLE",
            "local-double-secret",
            None,
            None,
            "local-double",
        )))
        .build()
}

/// Service error codes that mean "try again later" without being throttling.
const TRANSIENT_CODES: &[&str] = &[
    "InternalServerException",
    "InternalFailure",
    "InternalDependencyException",
    "ServiceUnavailableException",
    "ServiceUnavailable",
    "ModelTimeoutException",
    "ModelNotReadyException",
    "ModelStreamErrorException",
    "RequestTimeout",
    "RequestTimeoutException",
];

/// Service error codes that mean throttling.
const THROTTLING_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
];

/// Maps an SDK error to a [`ProviderError`]: throttling codes (with `Retry-After` from the raw
/// response), transient codes and 5xx, timeouts, dispatch and response failures are retryable;
/// validation, access, not-found and model errors are permanent.
pub(crate) fn sdk_error<E>(provider: &'static str, err: SdkError<E, HttpResponse>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if let Some(limit) = too_large_in(&err) {
        return response_too_large(provider, limit);
    }
    // A 2xx that is not the operation's output: an HTML page from a wrong endpoint or a portal
    // (the SDK reports it as a response or an unknown service error).
    let raw_success = match &err {
        SdkError::ResponseError(context) => Some(context.raw()),
        SdkError::ServiceError(context) => Some(context.raw()),
        _ => None,
    }
    .filter(|raw| raw.status().is_success());
    if let Some(raw) = raw_success {
        let content_type = raw.headers().get("content-type");
        let body = raw.body().bytes().unwrap_or_default();
        let status = raw.status().as_u16();
        return ProviderError::InvalidResponse {
            provider,
            message: match html_page(content_type, body) {
                Some(page) => format!(
                    "HTTP {status} with {page} instead of the API's JSON (is AWS_ENDPOINT_URL the service endpoint?)"
                ),
                None => truncate_message(&format!(
                    "HTTP {status} that is not the API's reply: {}",
                    crate::limits::excerpt(&String::from_utf8_lossy(body), 200)
                )),
            },
        };
    }
    match &err {
        SdkError::ServiceError(context) => {
            let raw = context.raw();
            let status = raw.status().as_u16();
            let retry_after = raw
                .headers()
                .get("retry-after")
                .and_then(|value| parse_retry_after(value, SystemTime::now()));
            let service_error = context.err();
            let code = service_error.code().unwrap_or("UnknownError");
            let message = truncate_message(&format!(
                "{code} (HTTP {status}): {}",
                service_error.message().unwrap_or("no message")
            ));
            classify(provider, code, status, message, retry_after)
        }
        SdkError::ConstructionFailure(_) => ProviderError::Permanent {
            provider,
            message: truncate_message(&format!("cannot build the request: {}", error_chain(&err))),
        },
        SdkError::TimeoutError(_) => ProviderError::Transient {
            provider,
            message: "request timed out".into(),
        },
        _ => ProviderError::Transient {
            provider,
            message: truncate_message(&format!("request failed: {}", error_chain(&err))),
        },
    }
}

fn classify(
    provider: &'static str,
    code: &str,
    status: u16,
    message: String,
    retry_after: Option<Duration>,
) -> ProviderError {
    if THROTTLING_CODES.contains(&code) || (status == 429 && !TRANSIENT_CODES.contains(&code)) {
        return ProviderError::Throttled {
            provider,
            message,
            retry_after,
        };
    }
    if TRANSIENT_CODES.contains(&code) || status >= 500 || status == 408 {
        return ProviderError::Transient { provider, message };
    }
    ProviderError::Permanent { provider, message }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::ErrorKind;

    fn check(code: &str, status: u16, expected: ErrorKind) {
        let err = classify("bedrock", code, status, String::new(), None);
        assert_eq!(err.kind(), expected, "{code} {status}");
    }

    #[test]
    fn codes() {
        check("ThrottlingException", 429, ErrorKind::Throttled);
        check("ThrottlingException", 400, ErrorKind::Throttled);
        check("ModelNotReadyException", 429, ErrorKind::Transient);
        check("ServiceUnavailableException", 503, ErrorKind::Transient);
        check("InternalServerException", 500, ErrorKind::Transient);
        check("ModelTimeoutException", 408, ErrorKind::Transient);
        check("UnknownError", 502, ErrorKind::Transient);
        check("ValidationException", 400, ErrorKind::Permanent);
        check("AccessDeniedException", 403, ErrorKind::Permanent);
        check("ResourceNotFoundException", 404, ErrorKind::Permanent);
        check("ModelError", 424, ErrorKind::Permanent);
        check("ServiceQuotaExceededException", 400, ErrorKind::Permanent);
    }
}
