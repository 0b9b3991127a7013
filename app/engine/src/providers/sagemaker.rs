//! SageMaker real-time endpoints through InvokeEndpoint, with the request/response formats of
//! the common containers, and endpoint listing (SageMaker `ListEndpoints`).
//!
//! Formats ([`SageMakerFormat`]):
//! - `text-generation` (Hugging Face TGI / JumpStart text generation): request
//!   `{"inputs": prompt, "parameters": {max_new_tokens, temperature, top_p, stop,
//!   return_full_text: false}}`, response `[{"generated_text": ...}]` or `{"generated_text": ...}`;
//! - `messages` (OpenAI-style messages API of TGI ≥ 1.4 and LMI containers): request
//!   `{"messages": [...], max_tokens, temperature, top_p, stop}`, response
//!   `choices.0.message.content` with `usage` tokens;
//! - `custom`: a JSON request template with placeholders and a JSON path to the text.
//!
//! Invariant: the SDK client never retries (see [`super::aws`]); a response whose text cannot be
//! found is a permanent error naming the path that failed.

use aws_config::SdkConfig;
use aws_sdk_sagemakerruntime::Client;
use aws_smithy_types::Blob;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::aws::{ResponseSizeLimit, Timeouts, no_retries, sdk_error, timeout_config};
use super::redact::Redactor;
use super::{
    BoxFuture, ChatMessage, GenerateRequest, Generation, InferenceParams, ModelProvider,
    ProviderError, Role, html_page, truncate_message,
};
use crate::limits::ByteSize;

const PROVIDER: &str = "sagemaker";

/// How to talk to a SageMaker endpoint's container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "kebab-case")]
pub enum SageMakerFormat {
    /// Hugging Face TGI / JumpStart text generation (`inputs` + `parameters`).
    #[default]
    TextGeneration,
    /// OpenAI-style chat messages (TGI messages API, LMI).
    Messages,
    /// A custom JSON body and response path.
    Custom {
        /// A JSON document; string values `"{prompt}"`, `"{system}"`, `"{max_tokens}"`,
        /// `"{temperature}"`, `"{top_p}"`, `"{stop}"` become the typed value (a key whose
        /// parameter is unset is removed), and `{prompt}` / `{system}` inside longer strings
        /// are substituted.
        request_template: String,
        /// Dot-separated path to the output text, numbers index arrays:
        /// `0.generated_text`, `choices.0.message.content`, `generated_texts.0`.
        response_path: String,
    },
}

impl SageMakerFormat {
    /// Checks a custom template now, so a bad catalog entry fails before any call.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            SageMakerFormat::Custom {
                request_template, ..
            } => serde_json::from_str::<Value>(request_template)
                .map(|_| ())
                .map_err(|err| format!("request template is not valid JSON: {err}")),
            _ => Ok(()),
        }
    }
}

/// The SageMaker provider for one container format; cheap to share.
#[derive(Debug, Clone)]
pub struct SageMakerProvider {
    client: Client,
    format: SageMakerFormat,
    /// Region and endpoint override, for [`ModelProvider::cache_scope`].
    scope: String,
    /// Keeps the endpoint URL's credentials out of messages and answers.
    redactor: Redactor,
}

impl SageMakerProvider {
    /// Builds a SageMaker Runtime client from a shared `SdkConfig`, retries off, replies capped
    /// at `max_response`.
    pub fn new(
        sdk_config: &SdkConfig,
        timeouts: Timeouts,
        format: SageMakerFormat,
        max_response: ByteSize,
    ) -> Self {
        let config = aws_sdk_sagemakerruntime::config::Builder::from(sdk_config)
            .retry_config(no_retries())
            .timeout_config(timeout_config(timeouts))
            .interceptor(ResponseSizeLimit {
                limit: max_response,
            })
            .build();
        SageMakerProvider {
            client: Client::from_conf(config),
            format,
            scope: super::aws::scope(PROVIDER, sdk_config),
            redactor: super::aws::redactor(sdk_config),
        }
    }

    /// A provider sharing this one's client, for another format.
    pub fn with_format(&self, format: SageMakerFormat) -> SageMakerProvider {
        SageMakerProvider {
            client: self.client.clone(),
            format,
            scope: self.scope.clone(),
            redactor: self.redactor.clone(),
        }
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
        let body = request_body(&self.format, request)?;
        let output = self
            .client
            .invoke_endpoint()
            .endpoint_name(&request.model_id)
            .content_type("application/json")
            .accept("application/json")
            .body(Blob::new(body))
            .send()
            .await
            .map_err(|err| sdk_error(PROVIDER, err))?;
        let bytes = output.body().map(Blob::as_ref).unwrap_or_default();
        if let Some(page) = html_page(output.content_type(), bytes) {
            return Err(ProviderError::InvalidResponse {
                provider: PROVIDER,
                message: format!(
                    "the endpoint answered with {page} instead of the model container's JSON"
                ),
            });
        }
        parse_response(&self.format, bytes).map_err(|message| ProviderError::InvalidResponse {
            provider: PROVIDER,
            message: truncate_message(&message),
        })
    }
}

impl ModelProvider for SageMakerProvider {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn cache_scope(&self) -> String {
        // The container format shapes the request body, so it is part of what is asked.
        let format = serde_json::to_string(&self.format).unwrap_or_default();
        format!("{} {format}", self.scope)
    }

    fn generate<'a>(
        &'a self,
        request: &'a GenerateRequest,
    ) -> BoxFuture<'a, Result<Generation, ProviderError>> {
        Box::pin(self.call(request))
    }
}

/// One SageMaker endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndpointInfo {
    /// Endpoint name (what `sagemaker:NAME` refers to).
    pub name: String,
    /// `InService`, `Creating`, `Failed` ...
    pub status: String,
}

/// Lists the endpoints of the account and region, following every page.
pub async fn list_endpoints(
    sdk_config: &SdkConfig,
    timeouts: Timeouts,
) -> Result<Vec<EndpointInfo>, ProviderError> {
    let config = aws_sdk_sagemaker::config::Builder::from(sdk_config)
        .retry_config(no_retries())
        .timeout_config(timeout_config(timeouts))
        .interceptor(ResponseSizeLimit {
            limit: crate::limits::DEFAULT_MAX_RESPONSE,
        })
        .build();
    let client = aws_sdk_sagemaker::Client::from_conf(config);
    let mut items = client
        .list_endpoints()
        .max_results(100)
        .into_paginator()
        .items()
        .send();
    let mut endpoints = Vec::new();
    while let Some(summary) = items.next().await {
        let summary = summary.map_err(|err| sdk_error(PROVIDER, err))?;
        endpoints.push(EndpointInfo {
            name: summary.endpoint_name().unwrap_or_default().to_owned(),
            status: summary
                .endpoint_status()
                .map(|status| status.as_str().to_owned())
                .unwrap_or_default(),
        });
    }
    Ok(endpoints)
}

fn json_f32(value: f32) -> Value {
    // Through the shortest decimal text, so 0.1f32 is sent as 0.1, not 0.10000000149011612.
    value
        .to_string()
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

fn system_text(messages: &[ChatMessage]) -> Option<String> {
    let parts: Vec<&str> = messages
        .iter()
        .filter(|message| message.role == Role::System)
        .map(|message| message.content.as_str())
        .collect();
    (!parts.is_empty()).then(|| parts.join("\n\n"))
}

fn request_body(
    format: &SageMakerFormat,
    request: &GenerateRequest,
) -> Result<Vec<u8>, ProviderError> {
    let params = &request.params;
    let body = match format {
        SageMakerFormat::TextGeneration => {
            let mut parameters = Map::new();
            if let Some(max) = params.max_tokens {
                parameters.insert("max_new_tokens".into(), json!(max));
            }
            if let Some(temperature) = params.temperature {
                parameters.insert("temperature".into(), json_f32(temperature));
            }
            if let Some(top_p) = params.top_p {
                parameters.insert("top_p".into(), json_f32(top_p));
            }
            if !params.stop_sequences.is_empty() {
                parameters.insert("stop".into(), json!(params.stop_sequences));
            }
            parameters.insert("return_full_text".into(), json!(false));
            json!({"inputs": request.prompt_text, "parameters": parameters})
        }
        SageMakerFormat::Messages => {
            let messages: Vec<Value> = if request.messages.is_empty() {
                vec![json!({"role": "user", "content": request.prompt_text})]
            } else {
                request
                    .messages
                    .iter()
                    .map(|message| json!({"role": message.role, "content": message.content}))
                    .collect()
            };
            let mut body = Map::new();
            body.insert("messages".into(), Value::Array(messages));
            insert_chat_params(&mut body, params);
            Value::Object(body)
        }
        SageMakerFormat::Custom {
            request_template, ..
        } => {
            let template: Value =
                serde_json::from_str(request_template).map_err(|err| ProviderError::Permanent {
                    provider: PROVIDER,
                    message: format!("request template is not valid JSON: {err}"),
                })?;
            let system = system_text(&request.messages);
            fill_template(template, &request.prompt_text, system.as_deref(), params)
                .unwrap_or(Value::Null)
        }
    };
    serde_json::to_vec(&body).map_err(|err| ProviderError::Permanent {
        provider: PROVIDER,
        message: format!("cannot encode the request body: {err}"),
    })
}

fn insert_chat_params(body: &mut Map<String, Value>, params: &InferenceParams) {
    if let Some(max) = params.max_tokens {
        body.insert("max_tokens".into(), json!(max));
    }
    if let Some(temperature) = params.temperature {
        body.insert("temperature".into(), json_f32(temperature));
    }
    if let Some(top_p) = params.top_p {
        body.insert("top_p".into(), json_f32(top_p));
    }
    if !params.stop_sequences.is_empty() {
        body.insert("stop".into(), json!(params.stop_sequences));
    }
}

/// Fills a custom template; `None` means "remove this value" (an unset parameter).
fn fill_template(
    template: Value,
    prompt: &str,
    system: Option<&str>,
    params: &InferenceParams,
) -> Option<Value> {
    match template {
        Value::String(text) => match text.as_str() {
            "{prompt}" => Some(json!(prompt)),
            "{system}" => system.map(|system| json!(system)),
            "{max_tokens}" => params.max_tokens.map(|max| json!(max)),
            "{temperature}" => params.temperature.map(json_f32),
            "{top_p}" => params.top_p.map(json_f32),
            "{stop}" => (!params.stop_sequences.is_empty()).then(|| json!(params.stop_sequences)),
            _ => Some(Value::String(
                text.replace("{prompt}", prompt)
                    .replace("{system}", system.unwrap_or_default()),
            )),
        },
        Value::Array(items) => Some(Value::Array(
            items
                .into_iter()
                .filter_map(|item| fill_template(item, prompt, system, params))
                .collect(),
        )),
        Value::Object(fields) => Some(Value::Object(
            fields
                .into_iter()
                .filter_map(|(key, value)| {
                    fill_template(value, prompt, system, params).map(|value| (key, value))
                })
                .collect(),
        )),
        other => Some(other),
    }
}

/// Follows a dot-separated path (numbers index arrays).
fn lookup<'a>(value: &'a Value, path: &str) -> Result<&'a Value, String> {
    let mut current = value;
    for segment in path.split('.').filter(|segment| !segment.is_empty()) {
        let next = match current {
            Value::Array(items) => segment
                .parse::<usize>()
                .ok()
                .and_then(|index| items.get(index)),
            Value::Object(fields) => fields.get(segment),
            _ => None,
        };
        current = next.ok_or_else(|| format!("response has no `{segment}` on path `{path}`"))?;
    }
    Ok(current)
}

fn text_at(body: &Value, path: &str) -> Result<String, String> {
    match lookup(body, path)? {
        Value::String(text) => Ok(text.clone()),
        other => Err(format!(
            "response value at `{path}` is not a string: {}",
            truncate_message(&other.to_string())
        )),
    }
}

fn parse_response(format: &SageMakerFormat, bytes: &[u8]) -> Result<Generation, String> {
    let body: Value = serde_json::from_slice(bytes).map_err(|err| {
        format!(
            "response is not JSON ({err}): {}",
            truncate_message(&String::from_utf8_lossy(bytes))
        )
    })?;
    let token = |path: &str| lookup(&body, path).ok().and_then(Value::as_u64);
    match format {
        SageMakerFormat::TextGeneration => {
            let path = if body.is_array() {
                "0.generated_text"
            } else {
                "generated_text"
            };
            Ok(Generation {
                text: text_at(&body, path)?,
                input_tokens: None,
                output_tokens: token(if body.is_array() {
                    "0.details.generated_tokens"
                } else {
                    "details.generated_tokens"
                }),
            })
        }
        SageMakerFormat::Messages => Ok(Generation {
            text: text_at(&body, "choices.0.message.content")?,
            input_tokens: token("usage.prompt_tokens"),
            output_tokens: token("usage.completion_tokens"),
        }),
        SageMakerFormat::Custom { response_path, .. } => Ok(Generation {
            text: text_at(&body, response_path)?,
            input_tokens: None,
            output_tokens: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generate_request(params: InferenceParams) -> GenerateRequest {
        GenerateRequest {
            model_id: "endpoint".into(),
            messages: vec![
                ChatMessage {
                    role: Role::System,
                    content: "S".into(),
                },
                ChatMessage {
                    role: Role::User,
                    content: "U".into(),
                },
            ],
            prompt_text: "S\n\nU".into(),
            params,
        }
    }

    fn check_body(format: &SageMakerFormat, params: InferenceParams, expected: Value) {
        let body = request_body(format, &generate_request(params)).expect("encodes");
        let body: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(body, expected);
    }

    fn params() -> InferenceParams {
        InferenceParams {
            temperature: Some(0.1),
            max_tokens: Some(32),
            top_p: None,
            stop_sequences: vec!["\n".into()],
            ..InferenceParams::default()
        }
    }

    #[test]
    fn request_bodies() {
        check_body(
            &SageMakerFormat::TextGeneration,
            params(),
            json!({"inputs": "S\n\nU", "parameters": {"max_new_tokens": 32, "temperature": 0.1, "stop": ["\n"], "return_full_text": false}}),
        );
        check_body(
            &SageMakerFormat::Messages,
            params(),
            json!({"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}], "max_tokens": 32, "temperature": 0.1, "stop": ["\n"]}),
        );
        check_body(
            &SageMakerFormat::Custom {
                request_template: r#"{"text_inputs": "[INST] {prompt} [/INST]", "max_length": "{max_tokens}", "top_p": "{top_p}", "sys": "{system}"}"#.into(),
                response_path: "generated_texts.0".into(),
            },
            params(),
            json!({"text_inputs": "[INST] S\n\nU [/INST]", "max_length": 32, "sys": "S"}),
        );
    }

    fn check_response(format: &SageMakerFormat, body: &str, expected: Result<&str, &str>) {
        let got = parse_response(format, body.as_bytes());
        match expected {
            Ok(text) => assert_eq!(got.map(|generation| generation.text), Ok(text.to_owned())),
            Err(needle) => {
                let err = got.expect_err("fails");
                assert!(err.contains(needle), "{err}");
            }
        }
    }

    #[test]
    fn responses() {
        let tgi = SageMakerFormat::TextGeneration;
        check_response(&tgi, r#"[{"generated_text": " x "}]"#, Ok(" x "));
        check_response(&tgi, r#"{"generated_text": "y"}"#, Ok("y"));
        check_response(&tgi, r#"[]"#, Err("no `0`"));
        check_response(&tgi, "<html>", Err("not JSON"));
        let messages = SageMakerFormat::Messages;
        check_response(
            &messages,
            r#"{"choices": [{"message": {"content": "z"}}]}"#,
            Ok("z"),
        );
        let custom = SageMakerFormat::Custom {
            request_template: "{}".into(),
            response_path: "generated_texts.0".into(),
        };
        check_response(&custom, r#"{"generated_texts": ["w"]}"#, Ok("w"));
        check_response(&custom, r#"{"generated_texts": [1]}"#, Err("not a string"));
    }

    #[test]
    fn format_from_toml() {
        let format: SageMakerFormat = toml::from_str(
            "format = \"custom\"\nrequest_template = '{\"inputs\": \"{prompt}\"}'\nresponse_path = \"0.generated_text\"\n",
        )
        .expect("parses");
        assert!(matches!(format, SageMakerFormat::Custom { .. }));
        assert!(format.validate().is_ok());
    }

    proptest::proptest! {
        #[test]
        fn lookup_never_panics(path in ".{0,40}", body in ".{0,80}") {
            let value: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            let _ = lookup(&value, &path);
        }
    }
}
