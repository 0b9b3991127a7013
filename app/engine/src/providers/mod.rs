//! Model providers: one trait, one implementation per API (Bedrock Converse, SageMaker
//! InvokeEndpoint, OpenAI-compatible chat completions).
//!
//! Invariant: this is the only module family (with `store`) that talks to the network. A
//! provider makes exactly one attempt per `generate` call; retries, back-off, throttling windows
//! and timeouts belong to the runner, which decides using [`ProviderError::kind`].
//! [`Providers`] builds the clients once per process from one AWS `SdkConfig` and reads the
//! OpenAI key once; the key stays a `SecretString`, out of `Debug`, logs and errors.

pub mod aws;
pub mod bedrock;
pub mod openai;
pub mod redact;
pub mod sagemaker;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

pub use crate::chat::{ChatMessage, Role};

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
    /// Bedrock Converse's processing tier (`serviceTier.type`); other providers have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<ServiceTier>,
    /// Bedrock Converse's `performanceConfig.latency`; other providers have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Latency>,
}

impl InferenceParams {
    /// Whether a Bedrock-only option (service tier, latency) is set.
    pub fn has_bedrock_options(&self) -> bool {
        self.service_tier.is_some() || self.latency.is_some()
    }
}

/// Amazon Bedrock's processing tier of an online call (Converse `serviceTier.type`): the price
/// and the queue a request gets. Bedrock also has `reserved` (provisioned capacity bought
/// ahead), which an evaluation does not choose per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceTier {
    /// Standard on-demand processing (what a call without a tier gets).
    Default,
    /// Cheaper, served after the other tiers when demand is high: made for evaluations.
    Flex,
    /// Served first, at a premium.
    Priority,
}

impl ServiceTier {
    /// Every tier, in the order forms list them.
    pub const ALL: [ServiceTier; 3] = [
        ServiceTier::Default,
        ServiceTier::Flex,
        ServiceTier::Priority,
    ];

    /// The wire value: `default`, `flex` or `priority`.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceTier::Default => "default",
            ServiceTier::Flex => "flex",
            ServiceTier::Priority => "priority",
        }
    }
}

impl std::str::FromStr for ServiceTier {
    type Err = String;

    fn from_str(text: &str) -> Result<ServiceTier, String> {
        ServiceTier::ALL
            .into_iter()
            .find(|tier| tier.as_str() == text.trim())
            .ok_or_else(|| {
                format!(
                    "unknown service tier `{}` (default, flex, priority)",
                    text.trim()
                )
            })
    }
}

impl std::fmt::Display for ServiceTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Converse's `performanceConfig.latency`: `optimized` asks for the latency-optimized version
/// of a model (where Bedrock has one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Latency {
    /// The model as usual.
    Standard,
    /// The latency-optimized version of the model.
    Optimized,
}

impl Latency {
    /// Both values, in the order forms list them.
    pub const ALL: [Latency; 2] = [Latency::Standard, Latency::Optimized];

    /// The wire value: `standard` or `optimized`.
    pub fn as_str(self) -> &'static str {
        match self {
            Latency::Standard => "standard",
            Latency::Optimized => "optimized",
        }
    }
}

impl std::str::FromStr for Latency {
    type Err = String;

    fn from_str(text: &str) -> Result<Latency, String> {
        Latency::ALL
            .into_iter()
            .find(|latency| latency.as_str() == text.trim())
            .ok_or_else(|| format!("unknown latency `{}` (standard, optimized)", text.trim()))
    }
}

impl std::fmt::Display for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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
    /// The endpoint answered, but not with a usable reply: larger than the response limit, an
    /// HTML page (a wrong base URL, a login portal), or not the API's format. Not retried.
    #[error("{provider} returned an unusable response: {message}")]
    InvalidResponse {
        /// Provider name.
        provider: &'static str,
        /// What is wrong with it (an excerpt at most, never secrets).
        message: String,
    },
}

impl ProviderError {
    /// How the runner should treat this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Throttled { .. } => ErrorKind::Throttled,
            Self::Transient { .. } => ErrorKind::Transient,
            Self::Permanent { .. } | Self::InvalidResponse { .. } => ErrorKind::Permanent,
        }
    }

    /// The same error with its message rewritten (context added, secrets redacted).
    pub fn map_message(self, rewrite: impl FnOnce(String) -> String) -> ProviderError {
        match self {
            ProviderError::Throttled {
                provider,
                message,
                retry_after,
            } => ProviderError::Throttled {
                provider,
                message: rewrite(message),
                retry_after,
            },
            ProviderError::Transient { provider, message } => ProviderError::Transient {
                provider,
                message: rewrite(message),
            },
            ProviderError::Permanent { provider, message } => ProviderError::Permanent {
                provider,
                message: rewrite(message),
            },
            ProviderError::InvalidResponse { provider, message } => {
                ProviderError::InvalidResponse {
                    provider,
                    message: rewrite(message),
                }
            }
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

    /// Where the calls go, as part of the response cache key: the same model id behind another
    /// base URL, region or endpoint override (a local test server, another account's endpoint)
    /// is another model, and must not be answered from the other one's cache.
    fn cache_scope(&self) -> String {
        self.name().to_owned()
    }

    /// Makes exactly one call to the model.
    fn generate<'a>(
        &'a self,
        request: &'a GenerateRequest,
    ) -> BoxFuture<'a, Result<Generation, ProviderError>>;
}

/// The Secrets Manager secret holding the OpenAI key when no other source gives one.
pub const DEFAULT_OPENAI_SECRET: &str = "openai_key";

/// How to build the providers. `Providers::from_env` fills unset fields from the environment
/// (`OPENAI_BASE_URL`, `OPENAI_API_KEY`; the AWS SDK reads `AWS_REGION`, `AWS_ENDPOINT_URL`
/// and credentials itself).
#[derive(Debug, Clone, Default)]
pub struct ProviderSettings {
    /// AWS region (else the SDK's chain: `AWS_REGION`, profile ...).
    pub region: Option<String>,
    /// AWS endpoint override for Bedrock / SageMaker / Secrets Manager (else `AWS_ENDPOINT_URL`).
    pub aws_endpoint_url: Option<String>,
    /// OpenAI-compatible base URL (else `OPENAI_BASE_URL`, else the OpenAI API).
    pub openai_base_url: Option<String>,
    /// OpenAI key (else `OPENAI_API_KEY`, else the Secrets Manager secret).
    pub openai_api_key: Option<secrecy::SecretString>,
    /// Secret holding the OpenAI key, as plain text or JSON `{"api_key": "..."}`. When unset,
    /// [`DEFAULT_OPENAI_SECRET`] is read only for the default OpenAI base URL (a local server
    /// usually needs no key, and looking for AWS credentials would only slow it down).
    pub openai_secret_name: Option<String>,
    /// Timeouts of every model call.
    pub timeouts: aws::Timeouts,
    /// The largest reply accepted (the whole HTTP body); `None` is
    /// [`crate::limits::DEFAULT_MAX_RESPONSE`].
    pub max_response: Option<crate::limits::ByteSize>,
}

/// The provider clients of a process: built once from one `SdkConfig`, shared by all runs.
/// The AWS configuration is loaded on first use, so a run that only calls OpenAI-compatible
/// models never looks for AWS credentials or a region.
#[derive(Debug)]
pub struct Providers {
    sdk_config: tokio::sync::OnceCell<aws_config::SdkConfig>,
    /// Whether the AWS configuration has a region and credentials, checked once before the
    /// first AWS model so that a missing login fails the run up front, not every record.
    aws_ready: tokio::sync::OnceCell<Result<(), String>>,
    settings: ProviderSettings,
    bedrock: std::sync::OnceLock<Arc<bedrock::BedrockProvider>>,
    sagemaker: std::sync::OnceLock<sagemaker::SageMakerProvider>,
    openai: tokio::sync::OnceCell<Arc<openai::OpenAiProvider>>,
}

impl Providers {
    /// Fills unset settings from `OPENAI_BASE_URL` / `OPENAI_API_KEY`; the AWS configuration
    /// is loaded from the environment when an AWS provider is first needed. No network IO
    /// happens until a provider is used.
    pub async fn from_env(mut settings: ProviderSettings) -> Result<Providers, ProviderError> {
        let non_empty = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|value| !value.trim().is_empty())
        };
        if settings.openai_base_url.is_none() {
            settings.openai_base_url = non_empty("OPENAI_BASE_URL");
        }
        if settings.openai_api_key.is_none() {
            // A key pasted from a file often carries a line end (`\n`, `\r\n`); keys never
            // contain whitespace, so it is trimmed rather than sent in a broken header.
            settings.openai_api_key = non_empty("OPENAI_API_KEY")
                .map(|key| secrecy::SecretString::from(key.trim().to_owned()));
        }
        Ok(Providers {
            sdk_config: tokio::sync::OnceCell::new(),
            aws_ready: tokio::sync::OnceCell::new(),
            settings,
            bedrock: std::sync::OnceLock::new(),
            sagemaker: std::sync::OnceLock::new(),
            openai: tokio::sync::OnceCell::new(),
        })
    }

    /// The AWS configuration, loaded once from the environment (region, credentials,
    /// `AWS_ENDPOINT_URL`) unless it was given.
    async fn sdk_config(&self) -> &aws_config::SdkConfig {
        self.sdk_config
            .get_or_init(|| async {
                let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
                if let Some(region) = &self.settings.region {
                    loader = loader.region(aws_config::Region::new(region.clone()));
                }
                if let Some(endpoint_url) = &self.settings.aws_endpoint_url {
                    loader = loader.endpoint_url(endpoint_url);
                }
                loader.load().await
            })
            .await
    }

    /// Providers over a given `SdkConfig` (tests point it at a double with
    /// [`aws::local_sdk_config`]); reads no environment variables.
    pub fn with_sdk_config(sdk_config: aws_config::SdkConfig, settings: ProviderSettings) -> Self {
        Providers {
            sdk_config: tokio::sync::OnceCell::new_with(Some(sdk_config)),
            aws_ready: tokio::sync::OnceCell::new(),
            settings,
            bedrock: std::sync::OnceLock::new(),
            sagemaker: std::sync::OnceLock::new(),
            openai: tokio::sync::OnceCell::new(),
        }
    }

    /// The provider for a model. The OpenAI key is resolved (and the secret read) once, on the
    /// first OpenAI model.
    pub async fn get(
        &self,
        spec: &crate::catalog::ModelSpec,
    ) -> Result<Arc<dyn ModelProvider>, ProviderError> {
        use crate::catalog::ProviderKind;
        match spec.provider {
            ProviderKind::Bedrock => {
                let sdk_config = self.aws_config_checked("bedrock").await?;
                Ok(self
                    .bedrock
                    .get_or_init(|| {
                        Arc::new(bedrock::BedrockProvider::new(
                            sdk_config,
                            self.settings.timeouts,
                            self.max_response(),
                        ))
                    })
                    .clone())
            }
            ProviderKind::SageMaker => {
                let sdk_config = self.aws_config_checked("sagemaker").await?;
                let base = self.sagemaker.get_or_init(|| {
                    sagemaker::SageMakerProvider::new(
                        sdk_config,
                        self.settings.timeouts,
                        sagemaker::SageMakerFormat::default(),
                        self.max_response(),
                    )
                });
                let format = spec.sagemaker_format.clone().unwrap_or_default();
                Ok(Arc::new(base.with_format(format)))
            }
            ProviderKind::OpenAi => {
                let provider = self
                    .openai
                    .get_or_try_init(|| async {
                        let api_key = self.openai_key().await?;
                        openai::OpenAiProvider::new(openai::OpenAiConfig {
                            base_url: self.openai_base_url().to_owned(),
                            api_key,
                            connect_timeout: self.settings.timeouts.connect,
                            request_timeout: self.settings.timeouts.request,
                            max_response: self.max_response(),
                        })
                        .map(Arc::new)
                    })
                    .await?;
                Ok(provider.clone())
            }
        }
    }

    /// The AWS configuration after checking, once, that it has a region and that credentials
    /// can be loaded. The error names what is missing, never a credential.
    async fn aws_config_checked(
        &self,
        provider: &'static str,
    ) -> Result<&aws_config::SdkConfig, ProviderError> {
        use aws_credential_types::provider::ProvideCredentials;
        let sdk_config = self.sdk_config().await;
        let ready = self
            .aws_ready
            .get_or_init(|| async {
                if sdk_config.region().is_none() {
                    return Err(
                        "no AWS region: set AWS_REGION (or a region in the AWS profile)".to_owned(),
                    );
                }
                if let Some(endpoint_url) = aws::endpoint_url(sdk_config) {
                    // Else every call fails (and is retried) with "failed to apply endpoint".
                    let is_http_url = reqwest::Url::parse(&endpoint_url).is_ok_and(|url| {
                        matches!(url.scheme(), "http" | "https") && url.host_str().is_some()
                    });
                    if !is_http_url {
                        return Err(format!(
                            "the AWS endpoint URL `{endpoint_url}` (AWS_ENDPOINT_URL) is not an http(s) URL such as http://localhost:4566"
                        ));
                    }
                }
                let Some(credentials) = sdk_config.credentials_provider() else {
                    return Err("no AWS credentials provider is configured".to_owned());
                };
                credentials
                    .provide_credentials()
                    .await
                    .map(|_| ())
                    .map_err(|error| {
                        format!(
                            "no AWS credentials (environment, profile, SSO, container or instance role): {error}"
                        )
                    })
            })
            .await;
        match ready {
            Ok(()) => Ok(sdk_config),
            Err(message) => Err(ProviderError::Permanent {
                provider,
                message: message.clone(),
            }),
        }
    }

    /// The SageMaker endpoints of the account and region.
    pub async fn list_sagemaker_endpoints(
        &self,
    ) -> Result<Vec<sagemaker::EndpointInfo>, ProviderError> {
        let sdk_config = self.aws_config_checked("sagemaker").await?;
        sagemaker::list_endpoints(sdk_config, self.settings.timeouts).await
    }

    fn max_response(&self) -> crate::limits::ByteSize {
        self.settings
            .max_response
            .unwrap_or(crate::limits::DEFAULT_MAX_RESPONSE)
    }

    fn openai_base_url(&self) -> &str {
        self.settings
            .openai_base_url
            .as_deref()
            .unwrap_or(openai::DEFAULT_BASE_URL)
    }

    async fn openai_key(&self) -> Result<Option<secrecy::SecretString>, ProviderError> {
        if let Some(key) = &self.settings.openai_api_key {
            return Ok(Some(key.clone()));
        }
        let secret_name = match &self.settings.openai_secret_name {
            Some(name) => name.as_str(),
            None if self.openai_base_url().trim_end_matches('/') == openai::DEFAULT_BASE_URL => {
                DEFAULT_OPENAI_SECRET
            }
            None => return Ok(None),
        };
        read_secret_key(self.sdk_config().await, secret_name)
            .await
            .map(Some)
    }
}

/// Reads an API key from a Secrets Manager secret: plain text, or JSON with `api_key`.
async fn read_secret_key(
    sdk_config: &aws_config::SdkConfig,
    secret_name: &str,
) -> Result<secrecy::SecretString, ProviderError> {
    const PROVIDER: &str = "openai";
    let client = aws_sdk_secretsmanager::Client::new(sdk_config);
    let output = client
        .get_secret_value()
        .secret_id(secret_name)
        .send()
        .await
        .map_err(|err| {
            aws::sdk_error(PROVIDER, err)
                .with_context(&format!(
                    "OPENAI_API_KEY is not set; reading the API key from the Secrets Manager secret `{secret_name}`"
                ))
        })?;
    let permanent = |problem: &str| ProviderError::Permanent {
        provider: PROVIDER,
        message: format!("secret `{secret_name}` {problem}"),
    };
    let value = output
        .secret_string()
        .ok_or_else(|| permanent("has no string value"))?
        .trim();
    let key = if value.starts_with('{') {
        let parsed: serde_json::Value = serde_json::from_str(value)
            .map_err(|_| permanent("looks like JSON but does not parse"))?;
        parsed
            .get("api_key")
            .and_then(serde_json::Value::as_str)
            .map(str::trim)
            .ok_or_else(|| permanent("is JSON without a string `api_key`"))?
            .to_owned()
    } else {
        value.to_owned()
    };
    if key.is_empty() {
        return Err(permanent("is empty"));
    }
    Ok(secrecy::SecretString::from(key))
}

impl ProviderError {
    /// The same error with `context: ` before its message.
    fn with_context(self, context: &str) -> ProviderError {
        self.map_message(|message| format!("{context}: {message}"))
    }
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

/// What a 200 reply that is an HTML page (a wrong base URL, a proxy or a login portal) rather
/// than the API's JSON is, for the error: `an HTML page titled "Sign in"`; `None` for anything
/// else.
pub(crate) fn html_page(content_type: Option<&str>, body: &[u8]) -> Option<String> {
    let head = String::from_utf8_lossy(&body[..body.len().min(64 << 10)]);
    let start = head.trim_start().to_ascii_lowercase();
    let looks_html = start.starts_with("<!doctype html")
        || start.starts_with("<html")
        || (start.starts_with('<') && (start.contains("<head") || start.contains("<body")));
    let says_html =
        content_type.is_some_and(|content_type| content_type.to_ascii_lowercase().contains("html"));
    if !(looks_html || says_html) {
        return None;
    }
    let lower = head.to_ascii_lowercase();
    let title = lower
        .find("<title")
        .and_then(|open| Some(open + lower[open..].find('>')? + 1))
        .and_then(|start| Some((start, start + lower[start..].find("</title")?)))
        .map(|(start, end)| {
            head[start..end]
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|title| !title.is_empty());
    Some(match title {
        Some(title) => format!(
            "an HTML page titled \"{}\"",
            crate::limits::excerpt(&title, 80)
        ),
        None => "an HTML page".to_owned(),
    })
}

/// The error for a reply larger than the response limit.
pub(crate) fn response_too_large(
    provider: &'static str,
    limit: crate::limits::ByteSize,
) -> ProviderError {
    ProviderError::InvalidResponse {
        provider,
        message: format!(
            "the response is larger than {limit}, the limit of --max-response-size (raise it if such answers are expected)"
        ),
    }
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
    fn html_pages_are_recognised() {
        let check = |content_type: Option<&str>, body: &str, expected: Option<&str>| {
            assert_eq!(
                html_page(content_type, body.as_bytes()).as_deref(),
                expected,
                "{body}"
            );
        };
        check(
            Some("text/html; charset=utf-8"),
            "<!DOCTYPE html><html><head><title>\n  Sign in\n</title></head></html>",
            Some("an HTML page titled \"Sign in\""),
        );
        check(None, "  <html><body>hi</body></html>", Some("an HTML page"));
        check(Some("application/json"), "{\"choices\": []}", None);
        check(None, "not json", None);
        check(Some("text/html"), "<title>x</tit", Some("an HTML page"));
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
