//! A double of the Amazon Bedrock control plane (REST-JSON, what the AWS SDK's `aws-sdk-bedrock`
//! client speaks), for the parts `deployer doctor` reads and moto does not implement:
//!
//! - `GET /foundation-models` (`ListFoundationModels`): `{"modelSummaries": [...]}` with the
//!   models offered in the region;
//! - `GET /foundation-model-availability/{modelId}` (`GetFoundationModelAvailability`):
//!   `authorizationStatus`, `entitlementAvailability`, `regionAvailability` and
//!   `agreementAvailability.status`, or a `ResourceNotFoundException` (404) for a model the
//!   region does not have;
//! - with [`BedrockControl::start_with_batch`], batch inference (`CreateModelInvocationJob`,
//!   `GetModelInvocationJob`, `ListModelInvocationJobs`, `StopModelInvocationJob`) over moto's
//!   S3: see [`crate::bedrock_batch`].
//!
//! Field names and enum values are those of the Bedrock API reference (and of the SDK's
//! deserializers). Signatures are not checked. One server per test on `127.0.0.1:0`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::bedrock_batch::{BatchBehavior, BatchShared};

/// A foundation model as the double describes it.
#[derive(Debug, Clone)]
pub struct FoundationModel {
    /// Model id, e.g. `anthropic.claude-3-haiku-20240307-v1:0`.
    pub model_id: String,
    /// Display name, e.g. `Claude 3 Haiku`.
    pub model_name: String,
    /// Provider, e.g. `Anthropic`.
    pub provider_name: String,
    /// Whether the account was granted access (`authorizationStatus`).
    pub authorized: bool,
}

impl FoundationModel {
    /// An authorized model.
    pub fn new(model_id: &str, model_name: &str, provider_name: &str) -> FoundationModel {
        FoundationModel {
            model_id: model_id.to_owned(),
            model_name: model_name.to_owned(),
            provider_name: provider_name.to_owned(),
            authorized: true,
        }
    }

    /// The same model without access granted.
    pub fn without_access(self) -> FoundationModel {
        FoundationModel {
            authorized: false,
            ..self
        }
    }
}

#[derive(Debug)]
struct Shared {
    models: Vec<FoundationModel>,
    region: String,
    requests: AtomicUsize,
}

/// A running Bedrock control-plane double; stops when dropped.
#[derive(Debug)]
pub struct BedrockControl {
    addr: SocketAddr,
    shared: Arc<Shared>,
    batch: Option<Arc<BatchShared>>,
    task: JoinHandle<()>,
}

impl BedrockControl {
    /// Starts a double offering `models` in `region`.
    pub async fn start(
        region: &str,
        models: Vec<FoundationModel>,
    ) -> std::io::Result<BedrockControl> {
        BedrockControl::start_inner(region, models, None).await
    }

    /// Starts a double offering `models` in `region` that also runs batch inference jobs
    /// as `batch` says.
    pub async fn start_with_batch(
        region: &str,
        models: Vec<FoundationModel>,
        batch: BatchBehavior,
    ) -> std::io::Result<BedrockControl> {
        BedrockControl::start_inner(region, models, Some(batch)).await
    }

    async fn start_inner(
        region: &str,
        models: Vec<FoundationModel>,
        batch: Option<BatchBehavior>,
    ) -> std::io::Result<BedrockControl> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            models,
            region: region.to_owned(),
            requests: AtomicUsize::new(0),
        });
        let batch = batch.map(|batch| Arc::new(BatchShared::new(region, batch)));
        let mut app = Router::new()
            .route("/foundation-models", get(list_foundation_models))
            .route(
                "/foundation-model-availability/{model_id}",
                get(model_availability),
            )
            .with_state(shared.clone());
        if let Some(batch) = &batch {
            app = app.merge(crate::bedrock_batch::routes(Router::new()).with_state(batch.clone()));
        }
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(BedrockControl {
            addr,
            shared,
            batch,
            task,
        })
    }

    /// `http://127.0.0.1:<port>`, for `AWS_ENDPOINT_URL_BEDROCK`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests served so far (the batch operations not included).
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// The batch jobs created so far, in creation order: (job name, model id, status).
    pub fn batch_jobs(&self) -> Vec<(String, String, String)> {
        self.batch
            .as_ref()
            .map(|batch| batch.summary())
            .unwrap_or_default()
    }

    /// The batch jobs created so far, in creation order: (job name, input S3 URI, the
    /// `clientRequestToken` it was created with).
    pub fn batch_job_inputs(&self) -> Vec<(String, String, Option<String>)> {
        self.batch
            .as_ref()
            .map(|batch| batch.inputs())
            .unwrap_or_default()
    }
}

impl Drop for BedrockControl {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn json_response(status: StatusCode, body: Value, error_type: Option<&str>) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(error_type) = error_type
        && let Ok(value) = HeaderValue::from_str(error_type)
    {
        response.headers_mut().insert("x-amzn-errortype", value);
    }
    response
}

async fn list_foundation_models(State(shared): State<Arc<Shared>>) -> Response {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let summaries: Vec<Value> = shared
        .models
        .iter()
        .map(|model| {
            json!({
                "modelArn": format!("arn:aws:bedrock:{}::foundation-model/{}", shared.region, model.model_id),
                "modelId": model.model_id,
                "modelName": model.model_name,
                "providerName": model.provider_name,
                "inputModalities": ["TEXT"],
                "outputModalities": ["TEXT"],
                "responseStreamingSupported": true,
                "customizationsSupported": [],
                "inferenceTypesSupported": ["ON_DEMAND", "INFERENCE_PROFILE"],
                "modelLifecycle": {"status": "ACTIVE"},
            })
        })
        .collect();
    json_response(StatusCode::OK, json!({"modelSummaries": summaries}), None)
}

async fn model_availability(
    State(shared): State<Arc<Shared>>,
    Path(model_id): Path<String>,
) -> Response {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let Some(model) = shared
        .models
        .iter()
        .find(|model| model.model_id == model_id)
    else {
        return json_response(
            StatusCode::NOT_FOUND,
            json!({"message": format!("The model {model_id} was not found in {}", shared.region)}),
            Some("ResourceNotFoundException"),
        );
    };
    let available = |on: bool| if on { "AVAILABLE" } else { "NOT_AVAILABLE" };
    json_response(
        StatusCode::OK,
        json!({
            "modelId": model.model_id,
            "agreementAvailability": {"status": available(model.authorized)},
            "authorizationStatus": if model.authorized { "AUTHORIZED" } else { "NOT_AUTHORIZED" },
            "entitlementAvailability": available(model.authorized),
            "regionAvailability": "AVAILABLE",
        }),
        None,
    )
}
