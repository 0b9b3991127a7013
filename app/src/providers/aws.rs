//! What the AWS providers (Bedrock, SageMaker) share: client configuration with the SDK's own
//! retries off and explicit timeouts, and the mapping of SDK errors to [`ProviderError`] kinds.
//!
//! Invariant: a client built here makes exactly one attempt per call (`RetryConfig::disabled()`),
//! because the runner owns retries, back-off and the throttling window.

use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_sdk_bedrockruntime::config::http::HttpResponse;
use aws_sdk_bedrockruntime::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;

use super::{ProviderError, error_chain, parse_retry_after, truncate_message};

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
/// endpoint override, if any.
pub(crate) fn scope(provider: &str, sdk_config: &SdkConfig) -> String {
    format!(
        "{provider} {} {}",
        sdk_config.region().map_or("-", |region| region.as_ref()),
        endpoint_url(sdk_config).as_deref().unwrap_or("-")
    )
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
