//! The wire formats: parsing requests and writing success and error responses of the OpenAI
//! chat completions API, Bedrock Runtime (Converse and InvokeModel), SageMaker Runtime
//! InvokeEndpoint and SageMaker ListEndpoints.
//!
//! Invariant: responses carry exactly the fields the real services send that clients read
//! (including the ones the AWS SDK treats as required, such as Converse `metrics.latencyMs` and
//! `usage.totalTokens`), and errors carry the error code where the SDK looks for it: the
//! `x-amzn-ErrorType` header and the body's `__type` (restJson1 / awsJson1_1).

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::Protocol;

/// What the server extracted from a request body.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub(crate) prompt: String,
    pub(crate) system: Option<String>,
    pub(crate) body: Value,
    /// For SageMaker: which response shape the request's format calls for.
    pub(crate) sagemaker_shape: SageMakerShape,
}

/// The response shape of a SageMaker container, chosen from the request body.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SageMakerShape {
    /// TGI / JumpStart text generation: `{"inputs": ...}` → `[{"generated_text": ...}]`.
    #[default]
    TextGeneration,
    /// OpenAI-style messages API (TGI ≥ 1.4 / LMI): `{"messages": [...]}` → chat completion.
    Messages,
    /// Older JumpStart models: `{"text_inputs": ...}` → `{"generated_texts": [...]}`.
    TextInputs,
}

/// A request body the protocol cannot accept.
#[derive(Debug)]
pub(crate) struct BadRequest(pub(crate) String);

/// Parses a request body of `protocol`.
pub(crate) fn parse(protocol: Protocol, raw: &[u8]) -> Result<Parsed, BadRequest> {
    match protocol {
        Protocol::SageMakerInvoke => Ok(parse_sagemaker(raw)),
        Protocol::SageMakerListEndpoints => Ok(Parsed {
            body: serde_json::from_slice(raw).unwrap_or(Value::Null),
            ..Parsed::default()
        }),
        Protocol::OpenAiChat | Protocol::BedrockConverse | Protocol::BedrockInvoke => {
            let body: Value = serde_json::from_slice(raw)
                .map_err(|err| BadRequest(format!("request body is not valid JSON: {err}")))?;
            let (prompt, system) = match protocol {
                Protocol::BedrockConverse => converse_prompt(&body)?,
                _ => chat_prompt(&body)?,
            };
            Ok(Parsed {
                prompt,
                system,
                body,
                sagemaker_shape: SageMakerShape::default(),
            })
        }
    }
}

/// Text of an OpenAI / Anthropic message `content`: a string or a list of `{type, text}` parts.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

/// Last user message and the system prompt of an OpenAI-style (or Anthropic) chat body.
fn chat_prompt(body: &Value) -> Result<(String, Option<String>), BadRequest> {
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| BadRequest("`messages` must be a non-empty array".into()))?;
    let role_text = |wanted: &[&str]| {
        messages
            .iter()
            .filter(|message| {
                message
                    .get("role")
                    .and_then(Value::as_str)
                    .is_some_and(|role| wanted.contains(&role))
            })
            .map(|message| content_text(message.get("content").unwrap_or(&Value::Null)))
            .collect::<Vec<_>>()
    };
    let prompt = role_text(&["user"])
        .pop()
        .ok_or_else(|| BadRequest("`messages` has no user message".into()))?;
    let mut system = role_text(&["system", "developer"]);
    if let Some(top_level) = body.get("system") {
        system.insert(0, content_text(top_level));
    }
    let system = (!system.is_empty()).then(|| system.join("\n"));
    Ok((prompt, system))
}

/// Last user message and the system prompt of a Converse body.
fn converse_prompt(body: &Value) -> Result<(String, Option<String>), BadRequest> {
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .filter(|messages| !messages.is_empty())
        .ok_or_else(|| BadRequest("messages must contain at least one message".into()))?;
    let prompt = messages
        .iter()
        .rev()
        .find(|message| message.get("role").and_then(Value::as_str) == Some("user"))
        .map(|message| content_text(message.get("content").unwrap_or(&Value::Null)))
        .ok_or_else(|| BadRequest("a conversation must contain a user message".into()))?;
    let system = body.get("system").and_then(Value::as_array).map(|blocks| {
        blocks
            .iter()
            .filter_map(|block| block.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok((prompt, system))
}

fn parse_sagemaker(raw: &[u8]) -> Parsed {
    let Ok(body) = serde_json::from_slice::<Value>(raw) else {
        // Raw text bodies (custom containers) are the prompt themselves.
        return Parsed {
            prompt: String::from_utf8_lossy(raw).into_owned(),
            ..Parsed::default()
        };
    };
    if let Some(inputs) = body.get("inputs") {
        return Parsed {
            prompt: content_text(inputs),
            body,
            ..Parsed::default()
        };
    }
    if let Some(inputs) = body.get("text_inputs") {
        return Parsed {
            prompt: content_text(inputs),
            body,
            sagemaker_shape: SageMakerShape::TextInputs,
            ..Parsed::default()
        };
    }
    if body.get("messages").is_some()
        && let Ok((prompt, system)) = chat_prompt(&body)
    {
        return Parsed {
            prompt,
            system,
            body,
            sagemaker_shape: SageMakerShape::Messages,
        };
    }
    Parsed {
        prompt: String::from_utf8_lossy(raw).into_owned(),
        body,
        ..Parsed::default()
    }
}

/// Approximate token count: whitespace-separated words (deterministic, cheap).
pub(crate) fn count_tokens(text: &str) -> u64 {
    u64::try_from(text.split_whitespace().count()).unwrap_or(u64::MAX)
}

pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_string(),
    )
        .into_response()
}

/// The successful response of `protocol`.
pub(crate) fn success(
    protocol: Protocol,
    seq: u64,
    model: &str,
    parsed: &Parsed,
    reply: &str,
    latency_ms: u64,
) -> Response {
    let input_tokens =
        count_tokens(&parsed.prompt) + parsed.system.as_deref().map_or(0, count_tokens);
    let output_tokens = count_tokens(reply);
    match protocol {
        Protocol::OpenAiChat => json_response(
            StatusCode::OK,
            &openai_completion(seq, model, reply, input_tokens, output_tokens),
        ),
        Protocol::BedrockConverse => json_response(
            StatusCode::OK,
            &json!({
                "output": {"message": {"role": "assistant", "content": [{"text": reply}]}},
                "stopReason": "end_turn",
                "usage": {
                    "inputTokens": input_tokens,
                    "outputTokens": output_tokens,
                    "totalTokens": input_tokens + output_tokens,
                },
                "metrics": {"latencyMs": latency_ms},
            }),
        ),
        Protocol::BedrockInvoke => json_response(
            StatusCode::OK,
            &json!({
                "id": format!("msg_double_{seq}"),
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{"type": "text", "text": reply}],
                "stop_reason": "end_turn",
                "stop_sequence": null,
                "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
            }),
        ),
        Protocol::SageMakerInvoke => {
            let body = match parsed.sagemaker_shape {
                SageMakerShape::TextGeneration => json!([{"generated_text": reply}]),
                SageMakerShape::TextInputs => json!({"generated_texts": [reply]}),
                SageMakerShape::Messages => {
                    openai_completion(seq, model, reply, input_tokens, output_tokens)
                }
            };
            let mut response = json_response(StatusCode::OK, &body);
            response.headers_mut().insert(
                "x-amzn-invoked-production-variant",
                HeaderValue::from_static("AllTraffic"),
            );
            response
        }
        Protocol::SageMakerListEndpoints => {
            json_response(StatusCode::OK, &json!({"Endpoints": []}))
        }
    }
}

fn openai_completion(
    seq: u64,
    model: &str,
    reply: &str,
    input_tokens: u64,
    output_tokens: u64,
) -> Value {
    json!({
        "id": format!("chatcmpl-double-{seq}"),
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": reply},
            "logprobs": null,
            "finish_reason": "stop",
        }],
        "usage": {
            "prompt_tokens": input_tokens,
            "completion_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
        },
    })
}

/// One page of SageMaker `ListEndpoints` (`MaxResults` default 10, `NextToken` = next index).
pub(crate) fn list_endpoints(endpoints: &[String], request: &Value) -> Response {
    let max_results = request
        .get("MaxResults")
        .and_then(Value::as_u64)
        .and_then(|max| usize::try_from(max).ok())
        .unwrap_or(10)
        .max(1);
    let start = request
        .get("NextToken")
        .and_then(Value::as_str)
        .and_then(|token| token.parse::<usize>().ok())
        .unwrap_or(0)
        .min(endpoints.len());
    let end = start.saturating_add(max_results).min(endpoints.len());
    let page: Vec<Value> = endpoints[start..end]
        .iter()
        .map(|name| {
            json!({
                "EndpointName": name,
                "EndpointArn": format!("arn:aws:sagemaker:us-east-1:123456789012:endpoint/{}", name.to_lowercase()),
                "CreationTime": 1_700_000_000.0,
                "LastModifiedTime": 1_700_000_000.0,
                "EndpointStatus": "InService",
            })
        })
        .collect();
    let mut body = json!({"Endpoints": page});
    if end < endpoints.len() {
        body["NextToken"] = json!(end.to_string());
    }
    json_response(StatusCode::OK, &body)
}

/// Bedrock's message for a call the caller's role may not make: it names the role's session
/// and the account (a test account id here), which a shared app must not show its users.
pub const ACCESS_DENIED_BEDROCK: &str = "User: arn:aws:sts::123456789012:assumed-role/llm-eval-task-role/8f1e2d3c4b5a is not authorized to perform: bedrock:InvokeModel on resource: arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0 because no identity-based policy allows the bedrock:InvokeModel action";

/// The error code a status maps to, per protocol.
fn aws_error_code(protocol: Protocol, status: u16) -> &'static str {
    match (protocol, status) {
        (Protocol::SageMakerInvoke, 424) => "ModelError",
        (Protocol::SageMakerInvoke, 503) => "ServiceUnavailable",
        (Protocol::SageMakerInvoke, 500) => "InternalFailure",
        (Protocol::SageMakerInvoke, 400) => "ValidationError",
        (_, 400) => "ValidationException",
        (_, 401 | 403) => "AccessDeniedException",
        (_, 404) => "ResourceNotFoundException",
        (_, 408) => "ModelTimeoutException",
        (_, 424) => "ModelErrorException",
        (_, 429) => "ThrottlingException",
        (_, 503) => "ServiceUnavailableException",
        _ => "InternalServerException",
    }
}

/// An error response of `protocol` with HTTP `status`.
pub(crate) fn error(protocol: Protocol, status: u16, message: &str) -> Response {
    let status_code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match protocol {
        Protocol::OpenAiChat => {
            let (kind, code) = match status {
                400 => ("invalid_request_error", Value::Null),
                401 => ("invalid_request_error", json!("invalid_api_key")),
                403 => (
                    "invalid_request_error",
                    json!("unsupported_country_region_territory"),
                ),
                404 => ("invalid_request_error", json!("model_not_found")),
                429 => ("requests", json!("rate_limit_exceeded")),
                _ => ("server_error", Value::Null),
            };
            json_response(
                status_code,
                &json!({"error": {"message": message, "type": kind, "param": null, "code": code}}),
            )
        }
        _ => aws_error(status_code, aws_error_code(protocol, status), message),
    }
}

pub(crate) fn aws_error(status: StatusCode, code: &str, message: &str) -> Response {
    let mut response = json_response(status, &json!({"__type": code, "message": message}));
    if let Ok(value) = HeaderValue::from_str(code) {
        response.headers_mut().insert("x-amzn-errortype", value);
    }
    response
}

/// A throttling response of `protocol`, with `Retry-After` when given.
pub(crate) fn throttle(protocol: Protocol, retry_after: Option<&str>) -> Response {
    let mut response = match protocol {
        Protocol::OpenAiChat => error(
            protocol,
            429,
            "Rate limit reached for requests. Please try again later.",
        ),
        // SageMaker Runtime sends ThrottlingException with status 400.
        Protocol::SageMakerInvoke | Protocol::SageMakerListEndpoints => aws_error(
            StatusCode::BAD_REQUEST,
            "ThrottlingException",
            "Rate exceeded",
        ),
        Protocol::BedrockConverse | Protocol::BedrockInvoke => aws_error(
            StatusCode::TOO_MANY_REQUESTS,
            "ThrottlingException",
            "Too many requests, please wait before trying again.",
        ),
    };
    if let Some(value) = retry_after.and_then(|value| HeaderValue::from_str(value).ok()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// 200 with the beginning of `protocol`'s success JSON, then `x` forever in 64 KiB chunks,
/// made as they are read (the double's memory stays flat; the stream ends when the client goes).
pub(crate) fn endless(protocol: Protocol) -> Response {
    let prefix: &'static str = match protocol {
        Protocol::OpenAiChat => r#"{"choices":[{"message":{"role":"assistant","content":""#,
        Protocol::BedrockConverse => {
            r#"{"output":{"message":{"role":"assistant","content":[{"text":""#
        }
        _ => r#"[{"generated_text":""#,
    };
    let chunk = Bytes::from(vec![b'x'; 64 << 10]);
    let body = futures::stream::once(async move {
        Ok::<Bytes, std::io::Error>(Bytes::from_static(prefix.as_bytes()))
    })
    .chain(futures::stream::repeat_with(move || Ok(chunk.clone())));
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        axum::body::Body::from_stream(body),
    )
        .into_response()
}

/// 200 with an HTML page, as a login portal or a web server's index answers any path.
pub(crate) fn html_page() -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        "<!DOCTYPE html>\n<html><head><title>Sign in · Example Gateway</title></head>\n<body><form method=\"post\"><input name=\"user\"></form></body></html>\n",
    )
        .into_response()
}

/// A header as a string, when present and visible ASCII.
pub(crate) fn header_string(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(protocol: Protocol, body: &str, expected: (&str, Option<&str>)) {
        let parsed = parse(protocol, body.as_bytes()).expect("parses");
        assert_eq!((parsed.prompt.as_str(), parsed.system.as_deref()), expected);
    }

    #[test]
    fn prompts() {
        check(
            Protocol::OpenAiChat,
            r#"{"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}]}"#,
            ("hi", Some("be brief")),
        );
        check(
            Protocol::OpenAiChat,
            r#"{"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]}"#,
            ("ab", None),
        );
        check(
            Protocol::BedrockConverse,
            r#"{"messages":[{"role":"user","content":[{"text":"q"}]}],"system":[{"text":"s"}]}"#,
            ("q", Some("s")),
        );
        check(
            Protocol::SageMakerInvoke,
            r#"{"inputs":"p","parameters":{}}"#,
            ("p", None),
        );
        check(
            Protocol::SageMakerInvoke,
            r#"{"text_inputs":"t"}"#,
            ("t", None),
        );
        check(Protocol::SageMakerInvoke, "raw text", ("raw text", None));
    }

    #[test]
    fn bad_bodies_are_rejected() {
        assert!(parse(Protocol::OpenAiChat, b"{").is_err());
        assert!(parse(Protocol::BedrockConverse, br#"{"messages":[]}"#).is_err());
    }
}
