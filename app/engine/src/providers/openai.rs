//! OpenAI-compatible chat completions (`POST {base_url}/chat/completions`) over reqwest with
//! rustls, so OpenAI itself and local servers such as vLLM or Ollama work alike.
//!
//! Invariant: the API key lives in a [`SecretString`] and is exposed only while building the
//! `Authorization` header; it never reaches `Debug`, logs or error messages. Error statuses map
//! to [`ProviderError`] kinds the way OpenAI's own SDKs decide retries: 429 is throttling
//! (except `insufficient_quota`, which waiting does not fix), 408/409/5xx and network failures
//! are transient, other 4xx are permanent.
//! Invariant: a reply body is read at most to the response limit (an error body to 64 KiB),
//! and every message and answer passes the [`Redactor`] of the key and the base URL's
//! credentials before it leaves this module.

use std::time::{Duration, SystemTime};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::redact::{Redactor, url_without_credentials};
use super::{
    BoxFuture, ChatMessage, GenerateRequest, Generation, ModelProvider, ProviderError, Role,
    html_page, parse_retry_after, response_too_large, truncate_message,
};
use crate::limits::ByteSize;
use store::error_chain;

const PROVIDER: &str = "openai";

/// The default base URL (what `OPENAI_BASE_URL` overrides).
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// How to reach an OpenAI-compatible API.
#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// Base URL including the version prefix, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// Bearer key; local servers may need none.
    pub api_key: Option<SecretString>,
    /// TCP + TLS connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout (a hung server becomes a transient error).
    pub request_timeout: Duration,
    /// The largest reply body accepted.
    pub max_response: ByteSize,
}

/// How much of an error reply is read: enough for any API's error JSON, never a whole page.
const MAX_ERROR_BODY: u64 = 64 << 10;

/// The OpenAI-compatible provider; cheap to share.
#[derive(Debug, Clone)]
pub struct OpenAiProvider {
    client: reqwest::Client,
    completions_url: String,
    api_key: Option<SecretString>,
    max_response: ByteSize,
    /// The key and the base URL's credentials, kept out of messages and answers.
    redactor: Redactor,
    /// The completions URL without credentials, for the cache key.
    scope: String,
}

impl OpenAiProvider {
    /// Builds the HTTP client (connection pool shared by all calls).
    pub fn new(config: OpenAiConfig) -> Result<OpenAiProvider, ProviderError> {
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .pool_max_idle_per_host(256)
            .build()
            .map_err(|err| ProviderError::Permanent {
                provider: PROVIDER,
                message: format!("cannot build the HTTP client: {err}"),
            })?;
        if let Some(key) = &config.api_key {
            // Checked once here: a key that cannot be a header value would otherwise fail
            // every call with an opaque builder error. The message never shows the key.
            if reqwest::header::HeaderValue::from_str(&format!("Bearer {}", key.expose_secret()))
                .is_err()
            {
                return Err(ProviderError::Permanent {
                    provider: PROVIDER,
                    message: "the API key contains characters an HTTP header cannot carry (a line break or another control character?)".to_owned(),
                });
            }
        }
        let completions_url = format!("{}/chat/completions", config.base_url.trim_end_matches('/'));
        // Checked once here: a base URL without a scheme (`localhost:11434/v1`) would otherwise
        // fail every call with an opaque builder error.
        let is_http_url = reqwest::Url::parse(&completions_url)
            .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host_str().is_some());
        if !is_http_url {
            // A URL may carry credentials (`https://user:secret@host`); such a one is not shown.
            let shown = if config.base_url.contains('@') {
                String::new()
            } else {
                format!(" `{}`", config.base_url)
            };
            return Err(ProviderError::Permanent {
                provider: PROVIDER,
                message: format!(
                    "the base URL{shown} (OPENAI_BASE_URL) is not an http(s) URL such as http://localhost:11434/v1"
                ),
            });
        }
        let redactor = Redactor::new(config.api_key.clone()).with_url_credentials(&config.base_url);
        Ok(OpenAiProvider {
            client,
            scope: format!("{PROVIDER} {}", url_without_credentials(&completions_url)),
            completions_url,
            api_key: config.api_key,
            max_response: config.max_response,
            redactor,
        })
    }

    async fn call(&self, request: &GenerateRequest) -> Result<Generation, ProviderError> {
        match self.call_unredacted(request).await {
            Ok(mut generation) => {
                generation.text = self.redactor.clean(&generation.text).into_owned();
                Ok(generation)
            }
            Err(error) => Err(self.redactor.error(error)),
        }
    }

    async fn call_unredacted(
        &self,
        request: &GenerateRequest,
    ) -> Result<Generation, ProviderError> {
        let body = ChatRequest::new(request);
        let mut http_request = self.client.post(&self.completions_url).json(&body);
        if let Some(key) = &self.api_key {
            http_request = http_request.bearer_auth(key.expose_secret());
        }
        let response = http_request.send().await.map_err(network_error)?;
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        if !status.is_success() {
            // Enough for the API's error JSON; the rest of a large error page is not read.
            let (bytes, _cut) = read_body(response, MAX_ERROR_BODY).await?;
            return Err(status_error(status.as_u16(), &bytes, retry_after));
        }
        let too_large = || response_too_large(PROVIDER, self.max_response);
        if response
            .content_length()
            .is_some_and(|length| length > self.max_response.0)
        {
            return Err(too_large());
        }
        let (bytes, cut) = read_body(response, self.max_response.0).await?;
        if cut {
            return Err(too_large());
        }
        if let Some(page) = html_page(content_type.as_deref(), &bytes) {
            return Err(ProviderError::InvalidResponse {
                provider: PROVIDER,
                message: format!(
                    "HTTP {} with {page} instead of a chat completion (is OPENAI_BASE_URL the API's base URL, such as http://localhost:11434/v1?)",
                    status.as_u16()
                ),
            });
        }
        parse_completion(&bytes)
    }
}

/// Reads a reply body chunk by chunk, at most `limit` bytes; the flag says whether there was
/// more (the rest is not read: the connection is dropped).
async fn read_body(
    mut response: reqwest::Response,
    limit: u64,
) -> Result<(Vec<u8>, bool), ProviderError> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(network_error)? {
        let room = limit.saturating_sub(body.len());
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, false))
}

impl ModelProvider for OpenAiProvider {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn cache_scope(&self) -> String {
        self.scope.clone()
    }

    fn generate<'a>(
        &'a self,
        request: &'a GenerateRequest,
    ) -> BoxFuture<'a, Result<Generation, ProviderError>> {
        Box::pin(self.call(request))
    }
}

/// The wait a throttled response asks for: `retry-after-ms` (milliseconds, sent by Azure OpenAI
/// and read first by OpenAI's SDKs), else `Retry-After` (seconds or an HTTP date).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    header("retry-after-ms")
        .and_then(|millis| millis.trim().parse::<f64>().ok())
        .and_then(|millis| Duration::try_from_secs_f64(millis / 1000.0).ok())
        .or_else(|| {
            header("retry-after").and_then(|value| parse_retry_after(value, SystemTime::now()))
        })
}

#[derive(Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop: &'a [String],
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: &'a str,
}

impl<'a> ChatRequest<'a> {
    fn new(request: &'a GenerateRequest) -> ChatRequest<'a> {
        let params = &request.params;
        let messages = wire_messages(&request.messages, &request.prompt_text);
        if is_reasoning_model(&request.model_id) {
            // OpenAI's reasoning models reject `max_tokens` and any non-default sampling.
            return ChatRequest {
                model: &request.model_id,
                messages,
                temperature: None,
                max_tokens: None,
                max_completion_tokens: params.max_tokens,
                top_p: None,
                stop: &params.stop_sequences,
            };
        }
        ChatRequest {
            model: &request.model_id,
            messages,
            temperature: params.temperature,
            // `max_tokens` is what every OpenAI-compatible server (vLLM, Ollama ...) accepts.
            max_tokens: params.max_tokens,
            max_completion_tokens: None,
            top_p: params.top_p,
            stop: &params.stop_sequences,
        }
    }
}

/// OpenAI reasoning models (o1, o3, o4-mini, gpt-5 ...), which take `max_completion_tokens`
/// and only the default temperature.
fn is_reasoning_model(model_id: &str) -> bool {
    let name = model_id.rsplit('/').next().unwrap_or(model_id);
    ["o1", "o3", "o4", "gpt-5"].iter().any(|family| {
        name.strip_prefix(family)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
    })
}

/// The chat messages on the wire; a request without messages sends its text as one user turn.
fn wire_messages<'a>(messages: &'a [ChatMessage], prompt_text: &'a str) -> Vec<WireMessage<'a>> {
    if messages.is_empty() {
        return vec![WireMessage {
            role: "user",
            content: prompt_text,
        }];
    }
    messages
        .iter()
        .map(|message| WireMessage {
            role: match message.role {
                Role::System => "system",
                Role::User => "user",
                Role::Assistant => "assistant",
            },
            content: &message.content,
        })
        .collect()
}

#[derive(Deserialize)]
struct ChatResponse {
    choices: Vec<Choice>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: ResponseMessage,
}

#[derive(Deserialize)]
struct ResponseMessage {
    content: Option<String>,
}

#[derive(Deserialize)]
struct Usage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
}

fn parse_completion(bytes: &[u8]) -> Result<Generation, ProviderError> {
    let response: ChatResponse =
        serde_json::from_slice(bytes).map_err(|err| ProviderError::InvalidResponse {
            provider: PROVIDER,
            message: truncate_message(&format!(
                "not a chat completion ({err}): {}",
                crate::limits::excerpt(&String::from_utf8_lossy(bytes), 200)
            )),
        })?;
    let Some(choice) = response.choices.into_iter().next() else {
        return Err(ProviderError::InvalidResponse {
            provider: PROVIDER,
            message: "chat completion response has no choices".into(),
        });
    };
    Ok(Generation {
        // A refusal or tool call has no text content; it scores as an empty answer.
        text: choice.message.content.unwrap_or_default(),
        input_tokens: response
            .usage
            .as_ref()
            .and_then(|usage| usage.prompt_tokens),
        output_tokens: response
            .usage
            .as_ref()
            .and_then(|usage| usage.completion_tokens),
    })
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    message: Option<String>,
    code: Option<serde_json::Value>,
}

/// Maps an error status (and the API's error JSON, when there is one) to a [`ProviderError`].
fn status_error(status: u16, body: &[u8], retry_after: Option<Duration>) -> ProviderError {
    let detail = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .map(|body| body.error);
    let code = detail
        .as_ref()
        .and_then(|detail| detail.code.as_ref())
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let api_message = detail
        .and_then(|detail| detail.message)
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    let message = truncate_message(&format!("HTTP {status}: {api_message}"));
    match status {
        429 if code == "insufficient_quota" => ProviderError::Permanent {
            provider: PROVIDER,
            message,
        },
        429 => ProviderError::Throttled {
            provider: PROVIDER,
            message,
            retry_after,
        },
        408 | 409 | 500..=599 => ProviderError::Transient {
            provider: PROVIDER,
            message,
        },
        _ => ProviderError::Permanent {
            provider: PROVIDER,
            message,
        },
    }
}

/// Network failures (connect, timeout, connection reset, truncated body) are transient. The
/// URL is left out of the message: a base URL may carry credentials.
fn network_error(err: reqwest::Error) -> ProviderError {
    let what = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else if err.is_body() || err.is_decode() {
        "failed reading the response"
    } else {
        "failed"
    };
    let err = err.without_url();
    let message = format!("request {what}: {}", error_chain(&err));
    if err.is_builder() {
        return ProviderError::Permanent {
            provider: PROVIDER,
            message: truncate_message(&message),
        };
    }
    ProviderError::Transient {
        provider: PROVIDER,
        message: truncate_message(&message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::ErrorKind;

    fn check(status: u16, body: &str, expected: ErrorKind) {
        assert_eq!(
            status_error(status, body.as_bytes(), None).kind(),
            expected,
            "{status} {body}"
        );
    }

    fn check_key(key: &str, expected_ok: bool) {
        let res = OpenAiProvider::new(OpenAiConfig {
            base_url: DEFAULT_BASE_URL.to_owned(),
            api_key: Some(SecretString::from(key.to_owned())),
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(1),
            max_response: crate::limits::DEFAULT_MAX_RESPONSE,
        });
        match res {
            Ok(_) => assert!(expected_ok, "{key:?} should be rejected"),
            Err(error) => {
                assert!(!expected_ok, "{key:?}: {error}");
                assert!(!error.to_string().contains("sk-"), "{error}");
            }
        }
    }

    fn check_base_url(base_url: &str, expected: Result<(), &str>) {
        let res = OpenAiProvider::new(OpenAiConfig {
            base_url: base_url.to_owned(),
            api_key: None,
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(1),
            max_response: crate::limits::DEFAULT_MAX_RESPONSE,
        });
        assert_eq!(
            res.map(|_| ()).map_err(|error| error.to_string()),
            expected.map_err(str::to_owned),
            "{base_url}"
        );
    }

    #[test]
    fn regression_base_url_without_scheme_fails_at_setup() {
        check_base_url("http://localhost:11434/v1", Ok(()));
        check_base_url("https://api.openai.com/v1/", Ok(()));
        check_base_url(
            "localhost:11434/v1",
            Err(
                "openai rejected the request: the base URL `localhost:11434/v1` (OPENAI_BASE_URL) is not an http(s) URL such as http://localhost:11434/v1",
            ),
        );
        check_base_url(
            "127.0.0.1:8000/v1",
            Err(
                "openai rejected the request: the base URL `127.0.0.1:8000/v1` (OPENAI_BASE_URL) is not an http(s) URL such as http://localhost:11434/v1",
            ),
        );
        check_base_url(
            "ftp://user:secret@host/v1",
            Err(
                "openai rejected the request: the base URL (OPENAI_BASE_URL) is not an http(s) URL such as http://localhost:11434/v1",
            ),
        );
    }

    #[test]
    fn regression_api_key_with_a_line_break_fails_at_setup() {
        check_key("sk-abc123", true);
        check_key("sk-abc123\n", false);
        check_key("sk-abc\r\n", false);
        check_key("sk-a\u{1}bc", false);
    }

    #[test]
    fn status_kinds() {
        check(
            429,
            r#"{"error":{"message":"slow down","code":"rate_limit_exceeded"}}"#,
            ErrorKind::Throttled,
        );
        check(
            429,
            r#"{"error":{"message":"quota","code":"insufficient_quota"}}"#,
            ErrorKind::Permanent,
        );
        check(500, "oops", ErrorKind::Transient);
        check(503, "", ErrorKind::Transient);
        check(408, "", ErrorKind::Transient);
        check(400, r#"{"error":{"message":"bad"}}"#, ErrorKind::Permanent);
        check(401, "", ErrorKind::Permanent);
        check(404, "", ErrorKind::Permanent);
    }

    #[test]
    fn retry_after_headers() {
        let check = |pairs: &[(&'static str, &'static str)], expected: Option<Duration>| {
            let mut headers = reqwest::header::HeaderMap::new();
            for (name, value) in pairs {
                headers.insert(*name, reqwest::header::HeaderValue::from_static(value));
            }
            assert_eq!(retry_after(&headers), expected, "{pairs:?}");
        };
        check(&[("retry-after", "2")], Some(Duration::from_secs(2)));
        check(
            &[("retry-after-ms", "1500")],
            Some(Duration::from_millis(1500)),
        );
        check(
            &[("retry-after-ms", "250"), ("retry-after", "9")],
            Some(Duration::from_millis(250)),
        );
        check(
            &[("retry-after-ms", "soon"), ("retry-after", "9")],
            Some(Duration::from_secs(9)),
        );
        check(&[], None);
    }

    #[test]
    fn reasoning_models() {
        for (model, expected) in [
            ("o1", true),
            ("o3-mini", true),
            ("o4-mini-2025-04-16", true),
            ("gpt-5", true),
            ("gpt-5-mini", true),
            ("gpt-4o", false),
            ("gpt-4.1-nano", false),
            ("o1x", false),
            ("llama3", false),
        ] {
            assert_eq!(is_reasoning_model(model), expected, "{model}");
        }
    }

    #[test]
    fn reasoning_request_body() {
        let request = GenerateRequest {
            model_id: "o3-mini".into(),
            messages: Vec::new(),
            prompt_text: "q".into(),
            params: crate::providers::InferenceParams {
                temperature: Some(0.0),
                max_tokens: Some(100),
                top_p: Some(0.9),
                ..Default::default()
            },
        };
        let body = serde_json::to_value(ChatRequest::new(&request)).expect("serializes");
        assert_eq!(
            body,
            serde_json::json!({"model": "o3-mini", "messages": [{"role": "user", "content": "q"}], "max_completion_tokens": 100})
        );
    }

    #[test]
    fn error_message_comes_from_the_api() {
        let err = status_error(400, br#"{"error":{"message":"bad temperature"}}"#, None);
        assert_eq!(
            err.to_string(),
            "openai rejected the request: HTTP 400: bad temperature"
        );
    }

    #[test]
    fn completion_parsing() {
        let body = br#"{"choices":[{"message":{"role":"assistant","content":" Paris "}}],"usage":{"prompt_tokens":7,"completion_tokens":2}}"#;
        let generation = parse_completion(body).expect("parses");
        assert_eq!(
            generation,
            Generation {
                text: " Paris ".into(),
                input_tokens: Some(7),
                output_tokens: Some(2)
            }
        );
        assert!(parse_completion(br#"{"choices":[]}"#).is_err());
    }
}
