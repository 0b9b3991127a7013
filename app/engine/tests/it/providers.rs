//! Providers against the model doubles over real HTTP: parameter mapping (what the double
//! received), system prompts, tokens, error kinds for each fault, Retry-After, secrets.

use std::time::Duration;

use engine::catalog::{Catalog, ModelSpec};
use engine::providers::aws::{Timeouts, local_sdk_config};
use engine::providers::bedrock::BedrockProvider;
use engine::providers::openai::{OpenAiConfig, OpenAiProvider};
use engine::providers::sagemaker::{SageMakerFormat, SageMakerProvider, list_endpoints};
use engine::providers::{
    ChatMessage, ErrorKind, GenerateRequest, InferenceParams, ModelProvider, ProviderError,
    ProviderSettings, Providers, Role,
};
use model_doubles::{Answer, Behavior, Fault, FaultPlan, ModelServer, Moto, Protocol, When};
use secrecy::SecretString;

const FAKE_KEY: &str = "sk-test-fake-key-0123456789";

fn request(model_id: &str, messages: &[(Role, &str)], params: InferenceParams) -> GenerateRequest {
    let messages: Vec<ChatMessage> = messages
        .iter()
        .map(|(role, content)| ChatMessage {
            role: *role,
            content: (*content).to_owned(),
        })
        .collect();
    let prompt_text = messages
        .iter()
        .map(|message| message.content.as_str())
        .collect::<Vec<_>>()
        .join("\n\n");
    GenerateRequest {
        model_id: model_id.to_owned(),
        messages,
        prompt_text,
        params,
    }
}

fn user(prompt: &str) -> GenerateRequest {
    request("m", &[(Role::User, prompt)], InferenceParams::default())
}

fn all_params() -> InferenceParams {
    InferenceParams {
        temperature: Some(0.25),
        max_tokens: Some(64),
        top_p: Some(0.5),
        stop_sequences: vec!["\n\n".into(), "END".into()],
        ..InferenceParams::default()
    }
}

async fn server(behavior: Behavior) -> ModelServer {
    ModelServer::start(behavior).await.expect("double starts")
}

fn faulty(fault: Fault) -> Behavior {
    Behavior {
        faults: FaultPlan::none().on(When::Always, fault),
        ..Behavior::default()
    }
}

// ---------------------------------------------------------------- OpenAI

fn openai(server: &ModelServer, key: Option<&str>) -> OpenAiProvider {
    OpenAiProvider::new(OpenAiConfig {
        base_url: format!("{}/v1", server.url()),
        api_key: key.map(|key| SecretString::from(key.to_owned())),
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_millis(500),
        max_response: engine::limits::DEFAULT_MAX_RESPONSE,
    })
    .expect("client builds")
}

async fn openai_error(behavior: Behavior) -> ProviderError {
    let server = server(behavior).await;
    openai(&server, None)
        .generate(&user("q"))
        .await
        .expect_err("the call fails")
}

#[tokio::test]
async fn openai_maps_messages_and_parameters() {
    let server = server(Behavior {
        answer: Answer::Fixed(" Paris, France ".into()),
        api_key: Some(FAKE_KEY.into()),
        ..Behavior::default()
    })
    .await;
    let provider = openai(&server, Some(FAKE_KEY));
    let req = request(
        "gpt-4o-mini",
        &[
            (Role::System, "Answer briefly."),
            (Role::User, "Capital of France?"),
            (Role::Assistant, "Paris"),
            (Role::User, "And its country?"),
        ],
        all_params(),
    );
    let generation = provider.generate(&req).await.expect("generates");
    assert_eq!(generation.text, " Paris, France ", "output kept exactly");
    // The double counts whitespace-separated words: 3 (last user turn) + 2 (system).
    assert_eq!(generation.input_tokens, Some(5));
    assert_eq!(generation.output_tokens, Some(2));

    let received = server.received();
    assert_eq!(received.len(), 1);
    let body = &received[0].body;
    assert_eq!(
        body,
        &serde_json::json!({
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "Answer briefly."},
                {"role": "user", "content": "Capital of France?"},
                {"role": "assistant", "content": "Paris"},
                {"role": "user", "content": "And its country?"},
            ],
            "temperature": 0.25,
            "max_tokens": 64,
            "top_p": 0.5,
            "stop": ["\n\n", "END"],
        })
    );
    assert_eq!(
        received[0].authorization.as_deref(),
        Some(format!("Bearer {FAKE_KEY}").as_str())
    );
    assert_eq!(
        received[0].content_type.as_deref(),
        Some("application/json")
    );
}

#[tokio::test]
async fn openai_omits_unset_parameters() {
    let server = server(Behavior::default()).await;
    openai(&server, None)
        .generate(&user("hello"))
        .await
        .expect("generates");
    let received = server.received();
    assert_eq!(
        received[0].body,
        serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "hello"}]})
    );
    assert_eq!(received[0].authorization, None);
}

#[tokio::test]
async fn openai_throttle_carries_retry_after_seconds() {
    let err = openai_error(faulty(Fault::throttle_secs(7))).await;
    assert_eq!(err.kind(), ErrorKind::Throttled);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
}

#[tokio::test]
async fn openai_throttle_carries_retry_after_http_date() {
    let in_an_hour = std::time::SystemTime::now() + Duration::from_secs(3600);
    let err = openai_error(faulty(Fault::Throttle {
        retry_after: Some(httpdate::fmt_http_date(in_an_hour)),
    }))
    .await;
    assert_eq!(err.kind(), ErrorKind::Throttled);
    let wait = err.retry_after().expect("retry-after parsed");
    assert!(wait > Duration::from_secs(3590) && wait <= Duration::from_secs(3600));
}

#[tokio::test]
async fn openai_throttle_without_retry_after() {
    let err = openai_error(faulty(Fault::Throttle { retry_after: None })).await;
    assert_eq!(
        (err.kind(), err.retry_after()),
        (ErrorKind::Throttled, None)
    );
}

#[tokio::test]
async fn openai_error_kinds() {
    for (fault, expected) in [
        (Fault::Status(500), ErrorKind::Transient),
        (Fault::Status(503), ErrorKind::Transient),
        (Fault::Status(400), ErrorKind::Permanent),
        (Fault::Status(404), ErrorKind::Permanent),
        (Fault::Drop, ErrorKind::Transient),
        (Fault::Hang(Duration::from_secs(5)), ErrorKind::Transient),
    ] {
        let err = openai_error(faulty(fault.clone())).await;
        assert_eq!(err.kind(), expected, "{fault:?}: {err}");
    }
}

#[tokio::test]
async fn openai_connection_refused_is_transient() {
    let url = {
        let server = server(Behavior::default()).await;
        server.url()
    };
    let provider = OpenAiProvider::new(OpenAiConfig {
        base_url: format!("{url}/v1"),
        api_key: None,
        connect_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(1),
        max_response: engine::limits::DEFAULT_MAX_RESPONSE,
    })
    .expect("client builds");
    let err = provider.generate(&user("q")).await.expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
}

#[tokio::test]
async fn openai_wrong_key_is_permanent_and_never_shown() {
    let server = server(Behavior {
        api_key: Some("sk-the-right-key".into()),
        ..Behavior::default()
    })
    .await;
    let provider = openai(&server, Some(FAKE_KEY));
    let err = provider.generate(&user("q")).await.expect_err("401");
    assert_eq!(err.kind(), ErrorKind::Permanent);
    for shown in [err.to_string(), format!("{err:?}"), format!("{provider:?}")] {
        assert!(!shown.contains(FAKE_KEY), "key leaked: {shown}");
    }
}

// ---------------------------------------------------------------- Bedrock

fn bedrock(server: &ModelServer) -> BedrockProvider {
    BedrockProvider::new(
        &local_sdk_config(&server.url()),
        Timeouts {
            connect: Duration::from_secs(2),
            request: Duration::from_millis(500),
        },
        engine::limits::DEFAULT_MAX_RESPONSE,
    )
}

async fn bedrock_error(behavior: Behavior) -> ProviderError {
    let server = server(behavior).await;
    bedrock(&server)
        .generate(&request(
            HAIKU,
            &[(Role::User, "q")],
            InferenceParams::default(),
        ))
        .await
        .expect_err("the call fails")
}

const HAIKU: &str = "anthropic.claude-3-haiku-20240307-v1:0";

#[tokio::test]
async fn bedrock_converse_maps_messages_and_parameters() {
    let server = server(Behavior {
        answer: Answer::Fixed(" Paris\n".into()),
        ..Behavior::default()
    })
    .await;
    let req = request(
        HAIKU,
        &[
            (Role::System, "Answer briefly."),
            (Role::User, "Capital of France?"),
            (Role::Assistant, "Paris"),
            (Role::User, "And its country?"),
        ],
        all_params(),
    );
    let generation = bedrock(&server).generate(&req).await.expect("generates");
    assert_eq!(generation.text, " Paris\n", "output kept exactly");
    assert_eq!(
        (generation.input_tokens, generation.output_tokens),
        (Some(5), Some(1))
    );
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].protocol, Protocol::BedrockConverse);
    assert_eq!(
        received[0].model, HAIKU,
        "model id with `:` survives the path"
    );
    assert_eq!(
        received[0].body,
        serde_json::json!({
            "messages": [
                {"role": "user", "content": [{"text": "Capital of France?"}]},
                {"role": "assistant", "content": [{"text": "Paris"}]},
                {"role": "user", "content": [{"text": "And its country?"}]},
            ],
            "system": [{"text": "Answer briefly."}],
            "inferenceConfig": {
                "maxTokens": 64,
                "temperature": 0.25,
                "topP": 0.5,
                "stopSequences": ["\n\n", "END"],
            },
        })
    );
    let signature = received[0].authorization.as_deref().unwrap_or_default();
    assert!(signature.starts_with("AWS4-HMAC-SHA256 "), "{signature}");
}

#[tokio::test]
async fn bedrock_folds_the_system_prompt_for_titan() {
    let server = server(Behavior::default()).await;
    let req = request(
        "amazon.titan-text-express-v1",
        &[(Role::System, "Be brief."), (Role::User, "Why?")],
        InferenceParams::default(),
    );
    let generation = bedrock(&server).generate(&req).await.expect("generates");
    assert_eq!(generation.text, "Be brief.\n\nWhy?");
    let received = server.received();
    assert_eq!(received[0].system, None);
    assert_eq!(
        received[0].body,
        serde_json::json!({
            "messages": [{"role": "user", "content": [{"text": "Be brief.\n\nWhy?"}]}],
            "inferenceConfig": {},
        })
    );
}

#[tokio::test]
async fn bedrock_throttling_exception_with_retry_after() {
    let err = bedrock_error(faulty(Fault::throttle_secs(3))).await;
    assert_eq!(err.kind(), ErrorKind::Throttled, "{err}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
    assert!(err.to_string().contains("ThrottlingException"), "{err}");
}

#[tokio::test]
async fn bedrock_error_kinds() {
    for (fault, expected) in [
        (Fault::Status(500), ErrorKind::Transient),
        (Fault::Status(503), ErrorKind::Transient),
        (Fault::Status(408), ErrorKind::Transient),
        (Fault::Status(400), ErrorKind::Permanent),
        (Fault::Status(403), ErrorKind::Permanent),
        (Fault::Status(404), ErrorKind::Permanent),
        (Fault::Drop, ErrorKind::Transient),
        (Fault::Hang(Duration::from_secs(5)), ErrorKind::Transient),
    ] {
        let err = bedrock_error(faulty(fault.clone())).await;
        assert_eq!(err.kind(), expected, "{fault:?}: {err}");
    }
}

#[tokio::test]
async fn bedrock_makes_one_attempt_per_call() {
    let server = server(faulty(Fault::Status(503))).await;
    let err = bedrock(&server)
        .generate(&request(
            HAIKU,
            &[(Role::User, "q")],
            InferenceParams::default(),
        ))
        .await
        .expect_err("fails");
    assert_eq!(err.kind(), ErrorKind::Transient);
    assert_eq!(server.stats().requests, 1, "the SDK's own retries are off");
}

// ---------------------------------------------------------------- SageMaker

fn sagemaker(server: &ModelServer, format: SageMakerFormat) -> SageMakerProvider {
    SageMakerProvider::new(
        &local_sdk_config(&server.url()),
        Timeouts {
            connect: Duration::from_secs(2),
            request: Duration::from_millis(500),
        },
        format,
        engine::limits::DEFAULT_MAX_RESPONSE,
    )
}

fn system_and_user() -> GenerateRequest {
    request(
        "my-endpoint",
        &[(Role::System, "Be brief."), (Role::User, "Why?")],
        all_params(),
    )
}

#[tokio::test]
async fn sagemaker_text_generation() {
    let server = server(Behavior {
        answer: Answer::Fixed(" because\n".into()),
        ..Behavior::default()
    })
    .await;
    let generation = sagemaker(&server, SageMakerFormat::TextGeneration)
        .generate(&system_and_user())
        .await
        .expect("generates");
    assert_eq!(generation.text, " because\n");
    let received = server.received();
    assert_eq!(received[0].protocol, Protocol::SageMakerInvoke);
    assert_eq!(received[0].model, "my-endpoint");
    assert_eq!(
        received[0].content_type.as_deref(),
        Some("application/json")
    );
    assert_eq!(received[0].accept.as_deref(), Some("application/json"));
    assert_eq!(
        received[0].body,
        serde_json::json!({
            "inputs": "Be brief.\n\nWhy?",
            "parameters": {
                "max_new_tokens": 64,
                "temperature": 0.25,
                "top_p": 0.5,
                "stop": ["\n\n", "END"],
                "return_full_text": false,
            },
        })
    );
}

#[tokio::test]
async fn sagemaker_messages_api() {
    let server = server(Behavior::default()).await;
    let generation = sagemaker(&server, SageMakerFormat::Messages)
        .generate(&system_and_user())
        .await
        .expect("generates");
    assert_eq!(generation.text, "Why?");
    assert_eq!(
        (generation.input_tokens, generation.output_tokens),
        (Some(3), Some(1))
    );
    let received = server.received();
    assert_eq!(received[0].system.as_deref(), Some("Be brief."));
    assert_eq!(
        received[0].body["messages"],
        serde_json::json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Why?"},
        ])
    );
    assert_eq!(received[0].body["max_tokens"], 64);
}

#[tokio::test]
async fn sagemaker_custom_template_and_path() {
    let server = server(Behavior {
        answer: Answer::Fixed("forty-two".into()),
        ..Behavior::default()
    })
    .await;
    let format = SageMakerFormat::Custom {
        request_template: r#"{"text_inputs": "{prompt}", "max_length": "{max_tokens}", "seed": 7}"#
            .into(),
        response_path: "generated_texts.0".into(),
    };
    let generation = sagemaker(&server, format)
        .generate(&system_and_user())
        .await
        .expect("generates");
    assert_eq!(generation.text, "forty-two");
    assert_eq!(
        server.received()[0].body,
        serde_json::json!({"text_inputs": "Be brief.\n\nWhy?", "max_length": 64, "seed": 7})
    );
}

#[tokio::test]
async fn sagemaker_wrong_response_path_is_permanent() {
    let server = server(Behavior::default()).await;
    let format = SageMakerFormat::Custom {
        request_template: r#"{"inputs": "{prompt}"}"#.into(),
        response_path: "outputs.0.text".into(),
    };
    let err = sagemaker(&server, format)
        .generate(&system_and_user())
        .await
        .expect_err("path not found");
    assert_eq!(err.kind(), ErrorKind::Permanent);
    assert!(err.to_string().contains("outputs.0.text"), "{err}");
}

#[tokio::test]
async fn sagemaker_error_kinds() {
    for (fault, expected, code) in [
        (
            Fault::throttle_secs(2),
            ErrorKind::Throttled,
            "ThrottlingException",
        ),
        (Fault::Status(424), ErrorKind::Permanent, "ModelError"),
        (
            Fault::Status(503),
            ErrorKind::Transient,
            "ServiceUnavailable",
        ),
        (Fault::Status(500), ErrorKind::Transient, "InternalFailure"),
        (Fault::Status(400), ErrorKind::Permanent, "ValidationError"),
        (Fault::Drop, ErrorKind::Transient, "connection closed"),
        (
            Fault::Hang(Duration::from_secs(5)),
            ErrorKind::Transient,
            "time",
        ),
    ] {
        let server = server(faulty(fault.clone())).await;
        let err = sagemaker(&server, SageMakerFormat::TextGeneration)
            .generate(&system_and_user())
            .await
            .expect_err("fails");
        assert_eq!(err.kind(), expected, "{fault:?}: {err}");
        assert!(err.to_string().contains(code), "{fault:?}: {err}");
        assert_eq!(server.stats().requests, 1, "one attempt per call");
    }
}

#[tokio::test]
async fn sagemaker_throttle_is_status_400_with_retry_after() {
    let server = server(faulty(Fault::throttle_secs(2))).await;
    let err = sagemaker(&server, SageMakerFormat::TextGeneration)
        .generate(&system_and_user())
        .await
        .expect_err("throttled");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));
    assert!(err.to_string().contains("HTTP 400"), "{err}");
}

#[tokio::test]
async fn sagemaker_lists_all_endpoint_pages() {
    let names: Vec<String> = (0..230)
        .map(|index| format!("endpoint-{index:03}"))
        .collect();
    let server = server(Behavior {
        endpoints: names.clone(),
        ..Behavior::default()
    })
    .await;
    let endpoints = list_endpoints(&local_sdk_config(&server.url()), Timeouts::default())
        .await
        .expect("lists");
    let listed: Vec<String> = endpoints
        .iter()
        .map(|endpoint| endpoint.name.clone())
        .collect();
    assert_eq!(listed, names);
    assert!(
        endpoints
            .iter()
            .all(|endpoint| endpoint.status == "InService")
    );
    assert_eq!(server.stats().requests, 3, "pages of 100");
    let first = &server.received()[0];
    assert_eq!(first.protocol, Protocol::SageMakerListEndpoints);
    assert_eq!(first.body["MaxResults"], 100);
}

// ---------------------------------------------------------------- Providers factory, secrets

fn spec(text: &str) -> ModelSpec {
    Catalog::embedded().resolve(text).expect("resolves")
}

#[tokio::test]
async fn providers_route_each_kind_to_its_protocol() {
    let server = server(Behavior {
        endpoints: vec!["ep-a".into(), "ep-b".into()],
        ..Behavior::default()
    })
    .await;
    let providers = Providers::with_sdk_config(
        local_sdk_config(&server.url()),
        ProviderSettings {
            openai_base_url: Some(format!("{}/v1", server.url())),
            ..ProviderSettings::default()
        },
    );
    let custom = Catalog::parse(
        "[[model]]\nalias = \"my-llm\"\nprovider = \"sagemaker\"\nmodel_id = \"ep-a\"\n[model.sagemaker]\nformat = \"messages\"\n",
        std::path::Path::new("custom.toml"),
    )
    .expect("parses");
    let cases = [
        (spec("claude-3-haiku"), Protocol::BedrockConverse, "bedrock"),
        (
            spec("sagemaker:ep-b"),
            Protocol::SageMakerInvoke,
            "sagemaker",
        ),
        (
            custom.resolve("my-llm").expect("resolves"),
            Protocol::SageMakerInvoke,
            "sagemaker",
        ),
        (spec("openai:local-model"), Protocol::OpenAiChat, "openai"),
    ];
    for (model, protocol, name) in &cases {
        let provider = providers.get(model).await.expect("provider");
        assert_eq!(provider.name(), *name);
        let req = request(&model.model_id, &[(Role::User, "hi")], model.params.clone());
        let generation = provider.generate(&req).await.expect("generates");
        assert_eq!(generation.text, "hi");
        let last = server.received().pop().expect("received");
        assert_eq!(
            (last.protocol, last.model.as_str()),
            (*protocol, model.model_id.as_str())
        );
    }
    let received = server.received();
    assert!(
        received[2].body.get("messages").is_some(),
        "catalog format used"
    );
    assert!(
        received[1].body.get("inputs").is_some(),
        "text generation by default"
    );
    assert_eq!(
        received[0].body["inferenceConfig"]["maxTokens"], 512,
        "catalog defaults"
    );
    let endpoints = providers.list_sagemaker_endpoints().await.expect("lists");
    assert_eq!(endpoints.len(), 2);
}

async fn put_secret(moto: &Moto, name: &str, value: &str) {
    aws_sdk_secretsmanager::Client::new(&local_sdk_config(moto.url()))
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
        .expect("secret created");
}

fn secret_settings(double: &ModelServer, secret_name: &str) -> ProviderSettings {
    ProviderSettings {
        openai_base_url: Some(format!("{}/v1", double.url())),
        openai_secret_name: Some(secret_name.into()),
        ..ProviderSettings::default()
    }
}

#[tokio::test]
async fn openai_key_from_secrets_manager() {
    let moto = Moto::start().await;
    put_secret(&moto, "openai_key", FAKE_KEY).await;
    put_secret(
        &moto,
        "team/openai",
        &format!("{{\"api_key\": \"{FAKE_KEY}\"}}"),
    )
    .await;
    put_secret(&moto, "wrong-shape", "{\"token\": \"sk-do-not-show-0000\"}").await;
    let double = server(Behavior {
        api_key: Some(FAKE_KEY.into()),
        ..Behavior::default()
    })
    .await;
    let model = spec("gpt-4o-mini");

    for secret_name in ["openai_key", "team/openai"] {
        let providers = Providers::with_sdk_config(
            local_sdk_config(moto.url()),
            secret_settings(&double, secret_name),
        );
        let provider = providers.get(&model).await.expect("key read");
        provider.generate(&user("q")).await.expect("authorized");
        assert!(!format!("{providers:?}").contains(FAKE_KEY), "key in Debug");
    }
    let sent = double.received();
    assert!(
        sent.iter().all(|request| request.authorization.as_deref()
            == Some(format!("Bearer {FAKE_KEY}").as_str()))
    );

    // Read once: deleting the secret later does not matter to a built provider.
    let providers = Providers::with_sdk_config(
        local_sdk_config(moto.url()),
        secret_settings(&double, "openai_key"),
    );
    providers.get(&model).await.expect("key read");
    aws_sdk_secretsmanager::Client::new(&local_sdk_config(moto.url()))
        .delete_secret()
        .secret_id("openai_key")
        .force_delete_without_recovery(true)
        .send()
        .await
        .expect("deleted");
    providers.get(&model).await.expect("cached provider");

    let missing = Providers::with_sdk_config(
        local_sdk_config(moto.url()),
        secret_settings(&double, "no-such-secret"),
    );
    let err = missing.get(&model).await.err().expect("no secret");
    assert_eq!(err.kind(), ErrorKind::Permanent, "{err}");
    let message = err.to_string();
    assert!(
        message.contains("no-such-secret") && message.contains("ResourceNotFoundException"),
        "{message}"
    );

    let wrong = Providers::with_sdk_config(
        local_sdk_config(moto.url()),
        secret_settings(&double, "wrong-shape"),
    );
    let err = wrong.get(&model).await.err().expect("no api_key field");
    assert_eq!(
        err.to_string(),
        "openai rejected the request: secret `wrong-shape` is JSON without a string `api_key`"
    );
    assert!(!format!("{err:?}").contains("sk-do-not-show"));
}

#[tokio::test]
async fn openai_local_base_url_needs_no_key_and_no_aws() {
    let double = server(Behavior::default()).await;
    // An unreachable AWS endpoint: if the provider tried Secrets Manager, the call would fail.
    let providers = Providers::with_sdk_config(
        local_sdk_config("http://127.0.0.1:9"),
        ProviderSettings {
            openai_base_url: Some(format!("{}/v1", double.url())),
            ..ProviderSettings::default()
        },
    );
    let provider = providers
        .get(&spec("openai:llama3"))
        .await
        .expect("no key needed");
    provider.generate(&user("q")).await.expect("generates");
    assert_eq!(double.received()[0].authorization, None);
}

// ---------------------------------------------------------------- the double itself

#[tokio::test]
async fn double_counts_concurrency_and_prompts() {
    let server = server(Behavior::with_latency(Duration::from_millis(150))).await;
    let provider = openai(&server, None);
    let prompts: Vec<String> = (0..12).map(|index| format!("prompt {index}")).collect();
    let calls = prompts.iter().map(|prompt| {
        let provider = &provider;
        async move { provider.generate(&user(prompt)).await }
    });
    let results = futures::future::join_all(calls).await;
    assert!(results.iter().all(Result::is_ok));
    let stats = server.stats();
    assert_eq!((stats.requests, stats.successes, stats.faults), (12, 12, 0));
    assert_eq!(stats.max_in_flight, 12, "all twelve overlapped");
    assert_eq!(stats.in_flight, 0);
    assert_eq!(stats.distinct_prompts(), 12);
    assert_eq!(stats.prompts_answered_more_than_once(), 0);
    assert_eq!(stats.prompt("prompt 3").requests, 1);
    assert_eq!(stats.prompt("never sent").requests, 0);
}

#[tokio::test]
async fn double_faults_by_prompt_then_recovers() {
    let server = server(Behavior {
        faults: FaultPlan::none()
            .on_times(
                When::PromptContains("flaky".into()),
                2,
                Fault::throttle_secs(1),
            )
            .on(When::PromptContains("broken".into()), Fault::Status(400)),
        answer: Answer::Map {
            rules: vec![("flaky".into(), "finally".into())],
            default: "ok".into(),
        },
        ..Behavior::default()
    })
    .await;
    let provider = openai(&server, None);
    let mut kinds = Vec::new();
    for prompt in ["flaky one", "steady", "flaky one", "flaky one", "broken"] {
        kinds.push(match provider.generate(&user(prompt)).await {
            Ok(generation) => Ok(generation.text),
            Err(err) => Err(err.kind()),
        });
    }
    assert_eq!(
        kinds,
        [
            Err(ErrorKind::Throttled),
            Ok("ok".to_owned()),
            Err(ErrorKind::Throttled),
            Ok("finally".to_owned()),
            Err(ErrorKind::Permanent),
        ]
    );
    let stats = server.stats();
    assert_eq!(stats.prompt("flaky one").requests, 3);
    assert_eq!(stats.prompt("flaky one").successes, 1);
    assert_eq!(stats.faults, 3);
}

#[tokio::test]
async fn double_applies_latency_with_jitter() {
    let behavior = Behavior {
        latency: Duration::from_millis(20),
        jitter: Duration::from_millis(30),
        seed: 42,
        ..Behavior::default()
    };
    let server = server(behavior).await;
    let provider = bedrock(&server);
    let started = std::time::Instant::now();
    provider
        .generate(&request(
            HAIKU,
            &[(Role::User, "q")],
            InferenceParams::default(),
        ))
        .await
        .expect("generates");
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(20), "{elapsed:?}");
}

#[tokio::test]
async fn double_serves_bedrock_invoke_and_rejects_unknown_targets() {
    let server = server(Behavior {
        answer: Answer::Fixed("hello there".into()),
        ..Behavior::default()
    })
    .await;
    let client = reqwest::Client::new();
    let body = serde_json::json!({
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 10,
        "system": "be kind",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    });
    let response: serde_json::Value = client
        .post(format!("{}/model/{HAIKU}/invoke", server.url()))
        .json(&body)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(response["content"][0]["text"], "hello there");
    assert_eq!(response["usage"]["output_tokens"], 2);
    let received = server.received();
    assert_eq!(received[0].protocol, Protocol::BedrockInvoke);
    assert_eq!(received[0].system.as_deref(), Some("be kind"));

    let response = client
        .post(server.url())
        .header("x-amz-target", "SageMaker.DeleteEndpoint")
        .body("{}")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 400);
    assert_eq!(
        response
            .headers()
            .get("x-amzn-errortype")
            .and_then(|value| value.to_str().ok()),
        Some("UnknownOperationException")
    );
}

#[tokio::test]
async fn providers_from_env_prefers_explicit_settings() {
    let double = server(Behavior {
        api_key: Some(FAKE_KEY.into()),
        ..Behavior::default()
    })
    .await;
    let providers = Providers::from_env(ProviderSettings {
        region: Some("us-east-1".into()),
        aws_endpoint_url: Some(double.url()),
        openai_base_url: Some(format!("{}/v1", double.url())),
        openai_api_key: Some(SecretString::from(FAKE_KEY.to_owned())),
        ..ProviderSettings::default()
    })
    .await
    .expect("configured");
    let model = spec("gpt-4.1-nano");
    let provider = providers.get(&model).await.expect("provider");
    let req = request(&model.model_id, &[(Role::User, "q")], model.params.clone());
    provider.generate(&req).await.expect("authorized");
    assert_eq!(double.received()[0].model, "gpt-4.1-nano");
    assert!(!format!("{providers:?}").contains(FAKE_KEY));
}

#[tokio::test]
async fn bedrock_accepts_inference_profile_arns() {
    let server = server(Behavior::default()).await;
    let arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0";
    bedrock(&server)
        .generate(&request(
            arn,
            &[(Role::User, "q")],
            InferenceParams::default(),
        ))
        .await
        .expect("generates");
    assert_eq!(server.received()[0].model, arn);
}

// ---------------------------------------------------------------- generated docs

#[test]
fn catalog_table_in_the_docs_is_current() {
    const START: &str = "<!-- generated: models-table (by `cargo test -p engine --test it catalog_table`; UPDATE_DOCS=1 rewrites it) -->\n";
    const END: &str = "<!-- end: models-table -->";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/models.md");
    let page = std::fs::read_to_string(&path).expect("docs/models.md");
    let start = page
        .find(START)
        .expect("docs/models.md has the models-table start marker")
        + START.len();
    let end = start
        + page[start..]
            .find(END)
            .expect("docs/models.md has the end marker");
    let table = Catalog::embedded().markdown_table();
    if page[start..end] == table {
        return;
    }
    if std::env::var_os("UPDATE_DOCS").is_some() {
        let updated = format!("{}{}{}", &page[..start], table, &page[end..]);
        std::fs::write(&path, updated).expect("docs/models.md written");
        return;
    }
    panic!(
        "the model table in docs/models.md is stale: run `UPDATE_DOCS=1 cargo test -p engine --test it catalog_table`"
    );
}
