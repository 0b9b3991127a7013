//! Amazon Bedrock through the Converse API, which covers all Bedrock text models uniformly.
//!
//! Invariants: the SDK client never retries (see [`super::aws`]); models without system-prompt
//! support in Converse (Amazon Titan Text, Cohere Command (text) and Command Light, Mistral 7B /
//! Mixtral 8x7B Instruct, AI21 Jurassic-2) get the system text folded into the first user
//! message, and models without chat support get the whole conversation as one user message,
//! so every template works with every model. Adjacent turns of one role are merged, since
//! Converse requires user and assistant turns to alternate.

use aws_config::SdkConfig;
use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::types::{
    ContentBlock, ConversationRole, ConverseOutput, InferenceConfiguration, Message,
    PerformanceConfigLatency, PerformanceConfiguration, ServiceTierType, SystemContentBlock,
};

use super::aws::{ResponseSizeLimit, Timeouts, no_retries, sdk_error, timeout_config};
use super::redact::Redactor;
use super::{
    BoxFuture, ChatMessage, GenerateRequest, Generation, Latency, ModelProvider, ProviderError,
    Role, ServiceTier,
};
use crate::limits::ByteSize;

const PROVIDER: &str = "bedrock";

/// The Bedrock provider; cheap to share (the SDK client is reference-counted).
#[derive(Debug, Clone)]
pub struct BedrockProvider {
    client: Client,
    /// Region and endpoint override, for [`ModelProvider::cache_scope`].
    scope: String,
    /// Keeps the endpoint URL's credentials out of messages and answers.
    redactor: Redactor,
}

impl BedrockProvider {
    /// Builds a Bedrock Runtime client from a shared `SdkConfig` (region, credentials,
    /// `AWS_ENDPOINT_URL`), with the SDK's retries off, the given timeouts, and replies capped
    /// at `max_response`.
    pub fn new(
        sdk_config: &SdkConfig,
        timeouts: Timeouts,
        max_response: ByteSize,
    ) -> BedrockProvider {
        let config = aws_sdk_bedrockruntime::config::Builder::from(sdk_config)
            .retry_config(no_retries())
            .timeout_config(timeout_config(timeouts))
            .interceptor(ResponseSizeLimit {
                limit: max_response,
            })
            .build();
        BedrockProvider {
            client: Client::from_conf(config),
            scope: super::aws::scope(PROVIDER, sdk_config),
            redactor: super::aws::redactor(sdk_config),
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
        let capabilities = capabilities(&request.model_id);
        let conversation = conversation(&request.messages, &request.prompt_text, capabilities);
        let messages = conversation
            .messages
            .into_iter()
            .map(|(role, text)| {
                Message::builder()
                    .role(role)
                    .content(ContentBlock::Text(text))
                    .build()
                    .map_err(|err| ProviderError::Permanent {
                        provider: PROVIDER,
                        message: format!("cannot build a message: {err}"),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let params = &request.params;
        let max_tokens = params
            .max_tokens
            .map(|max| i32::try_from(max).unwrap_or(i32::MAX));
        let inference = InferenceConfiguration::builder()
            .set_max_tokens(max_tokens)
            .set_temperature(params.temperature)
            .set_top_p(params.top_p)
            .set_stop_sequences(
                (!params.stop_sequences.is_empty()).then(|| params.stop_sequences.clone()),
            )
            .build();
        let service_tier = params
            .service_tier
            .map(|tier| {
                aws_sdk_bedrockruntime::types::ServiceTier::builder()
                    .r#type(match tier {
                        ServiceTier::Default => ServiceTierType::Default,
                        ServiceTier::Flex => ServiceTierType::Flex,
                        ServiceTier::Priority => ServiceTierType::Priority,
                    })
                    .build()
                    .map_err(|err| ProviderError::Permanent {
                        provider: PROVIDER,
                        message: format!("cannot build the service tier: {err}"),
                    })
            })
            .transpose()?;
        let performance = params.latency.map(|latency| {
            PerformanceConfiguration::builder()
                .latency(match latency {
                    Latency::Standard => PerformanceConfigLatency::Standard,
                    Latency::Optimized => PerformanceConfigLatency::Optimized,
                })
                .build()
        });
        let output = self
            .client
            .converse()
            .model_id(&request.model_id)
            .set_service_tier(service_tier)
            .set_performance_config(performance)
            .set_messages(Some(messages))
            .set_system(
                conversation
                    .system
                    .map(|system| vec![SystemContentBlock::Text(system)]),
            )
            .inference_config(inference)
            .send()
            .await
            .map_err(|err| sdk_error(PROVIDER, err))?;
        let text = match output.output() {
            Some(ConverseOutput::Message(message)) => message
                .content()
                .iter()
                .filter_map(|block| block.as_text().ok())
                .map(String::as_str)
                .collect::<String>(),
            _ => {
                return Err(ProviderError::Permanent {
                    provider: PROVIDER,
                    message: "converse response has no message".into(),
                });
            }
        };
        let usage = output.usage();
        Ok(Generation {
            text,
            input_tokens: usage.and_then(|usage| u64::try_from(usage.input_tokens()).ok()),
            output_tokens: usage.and_then(|usage| u64::try_from(usage.output_tokens()).ok()),
        })
    }
}

impl ModelProvider for BedrockProvider {
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

/// The Converse request body (REST-JSON, as the Converse API and a batch job's `modelInput`
/// with `modelInvocationType: Converse` take it) of `request`: the same conversation and
/// inference configuration [`BedrockProvider`] sends online.
pub(crate) fn converse_body(request: &GenerateRequest) -> serde_json::Value {
    let conversation = conversation(
        &request.messages,
        &request.prompt_text,
        capabilities(&request.model_id),
    );
    let messages: Vec<serde_json::Value> = conversation
        .messages
        .into_iter()
        .map(|(role, text)| serde_json::json!({"role": role.as_str(), "content": [{"text": text}]}))
        .collect();
    let params = &request.params;
    let mut inference = serde_json::Map::new();
    if let Some(max_tokens) = params.max_tokens {
        inference.insert("maxTokens".into(), max_tokens.into());
    }
    if let Some(temperature) = params.temperature {
        inference.insert("temperature".into(), shortest_f64(temperature).into());
    }
    if let Some(top_p) = params.top_p {
        inference.insert("topP".into(), shortest_f64(top_p).into());
    }
    if !params.stop_sequences.is_empty() {
        inference.insert("stopSequences".into(), params.stop_sequences.clone().into());
    }
    let mut body = serde_json::Map::new();
    body.insert("messages".into(), messages.into());
    if let Some(system) = conversation.system {
        body.insert("system".into(), serde_json::json!([{"text": system}]));
    }
    if !inference.is_empty() {
        body.insert("inferenceConfig".into(), inference.into());
    }
    if let Some(tier) = params.service_tier {
        body.insert(
            "serviceTier".into(),
            serde_json::json!({"type": tier.as_str()}),
        );
    }
    if let Some(latency) = params.latency {
        body.insert(
            "performanceConfig".into(),
            serde_json::json!({"latency": latency.as_str()}),
        );
    }
    body.into()
}

/// An `f32` as the `f64` its shortest decimal form names (0.7, not 0.699999988079071).
fn shortest_f64(value: f32) -> f64 {
    value.to_string().parse().unwrap_or(f64::from(value))
}

/// What a model accepts in Converse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Capabilities {
    system_prompt: bool,
    chat: bool,
}

/// Model id prefixes (after any cross-region inference profile prefix such as `us.`) of models
/// whose Converse support lacks system prompts, and of those that lack chat (multi-turn) too;
/// from the Bedrock user guide, "Supported models and model features".
const NO_SYSTEM_PROMPT: &[&str] = &[
    "amazon.titan-text",
    "amazon.titan-tg1",
    "cohere.command-text",
    "cohere.command-light-text",
    "mistral.mistral-7b-instruct",
    "mistral.mixtral-8x7b-instruct",
    "ai21.j2",
];
const NO_CHAT: &[&str] = &[
    "cohere.command-text",
    "cohere.command-light-text",
    "ai21.j2",
];

fn capabilities(model_id: &str) -> Capabilities {
    // A model ARN ends with `/model-id`; an inference profile id starts with a geography.
    let base = model_id.rsplit('/').next().unwrap_or(model_id);
    let base = [
        "us.", "eu.", "apac.", "us-gov.", "ca.", "jp.", "au.", "global.",
    ]
    .iter()
    .find_map(|geo| base.strip_prefix(geo))
    .unwrap_or(base);
    Capabilities {
        system_prompt: !NO_SYSTEM_PROMPT
            .iter()
            .any(|prefix| base.starts_with(prefix)),
        chat: !NO_CHAT.iter().any(|prefix| base.starts_with(prefix)),
    }
}

/// The Converse `system` and `messages` for a rendered prompt.
#[derive(Debug, PartialEq)]
struct Conversation {
    system: Option<String>,
    messages: Vec<(ConversationRole, String)>,
}

fn conversation(
    messages: &[ChatMessage],
    prompt_text: &str,
    capabilities: Capabilities,
) -> Conversation {
    if !capabilities.chat || messages.is_empty() {
        return Conversation {
            system: None,
            messages: vec![(ConversationRole::User, prompt_text.to_owned())],
        };
    }
    let system_parts: Vec<&str> = messages
        .iter()
        .filter(|message| message.role == Role::System)
        .map(|message| message.content.as_str())
        .collect();
    let system = (!system_parts.is_empty()).then(|| system_parts.join("\n\n"));
    // Converse wants user and assistant turns to alternate: adjacent turns of one role merge.
    let mut turns: Vec<(ConversationRole, String)> = Vec::with_capacity(messages.len());
    for message in messages {
        let role = match message.role {
            Role::System => continue,
            Role::User => ConversationRole::User,
            Role::Assistant => ConversationRole::Assistant,
        };
        match turns.last_mut() {
            Some((last_role, text)) if *last_role == role => {
                text.push_str("\n\n");
                text.push_str(&message.content);
            }
            _ => turns.push((role, message.content.clone())),
        }
    }
    if turns.is_empty() {
        // A system-only prompt: Converse needs a user turn, so the text becomes one.
        return Conversation {
            system: None,
            messages: vec![(ConversationRole::User, prompt_text.to_owned())],
        };
    }
    if capabilities.system_prompt {
        return Conversation {
            system,
            messages: turns,
        };
    }
    if let Some(system) = system {
        match turns
            .iter_mut()
            .find(|(role, _)| *role == ConversationRole::User)
        {
            Some((_, first_user)) => *first_user = format!("{system}\n\n{first_user}"),
            None => turns.insert(0, (ConversationRole::User, system)),
        }
    }
    Conversation {
        system: None,
        messages: turns,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_capabilities(model_id: &str, system_prompt: bool, chat: bool) {
        assert_eq!(
            capabilities(model_id),
            Capabilities {
                system_prompt,
                chat
            },
            "{model_id}"
        );
    }

    #[test]
    fn model_capabilities() {
        check_capabilities("anthropic.claude-3-haiku-20240307-v1:0", true, true);
        check_capabilities("us.anthropic.claude-3-7-sonnet-20250219-v1:0", true, true);
        check_capabilities("amazon.titan-text-express-v1", false, true);
        check_capabilities("amazon.titan-text-premier-v1:0", false, true);
        check_capabilities("mistral.mistral-7b-instruct-v0:2", false, true);
        check_capabilities("mistral.mistral-large-2402-v1:0", true, true);
        check_capabilities("cohere.command-text-v14", false, false);
        check_capabilities("cohere.command-r-v1:0", true, true);
        check_capabilities("meta.llama3-8b-instruct-v1:0", true, true);
        check_capabilities(
            "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-text-lite-v1",
            false,
            true,
        );
    }

    fn message(role: Role, content: &str) -> ChatMessage {
        ChatMessage {
            role,
            content: content.into(),
        }
    }

    fn check(model_id: &str, messages: &[ChatMessage], expected: Conversation) {
        let got = conversation(messages, "TEXT", capabilities(model_id));
        assert_eq!(got, expected, "{model_id}");
    }

    #[test]
    fn conversations() {
        let system_user = [message(Role::System, "S"), message(Role::User, "U")];
        let user = |text: &str| (ConversationRole::User, text.to_owned());
        check(
            "anthropic.claude-v2:1",
            &system_user,
            Conversation {
                system: Some("S".into()),
                messages: vec![user("U")],
            },
        );
        check(
            "amazon.titan-text-express-v1",
            &system_user,
            Conversation {
                system: None,
                messages: vec![user("S\n\nU")],
            },
        );
        check(
            "amazon.titan-text-express-v1",
            &[message(Role::System, "S")],
            Conversation {
                system: None,
                messages: vec![user("TEXT")],
            },
        );
        check(
            "anthropic.claude-v2:1",
            &[
                message(Role::User, "a"),
                message(Role::User, "b"),
                message(Role::Assistant, "c"),
            ],
            Conversation {
                system: None,
                messages: vec![
                    user("a\n\nb"),
                    (ConversationRole::Assistant, "c".to_owned()),
                ],
            },
        );
        check(
            "cohere.command-text-v14",
            &system_user,
            Conversation {
                system: None,
                messages: vec![user("TEXT")],
            },
        );
        check(
            "anthropic.claude-v2:1",
            &[],
            Conversation {
                system: None,
                messages: vec![user("TEXT")],
            },
        );
    }
}
