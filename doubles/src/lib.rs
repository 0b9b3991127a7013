//! Local doubles of model APIs, for tests and benchmarks: one HTTP server on `127.0.0.1:0` that
//! speaks the real wire protocols of
//!
//! - OpenAI chat completions: `POST /v1/chat/completions` (also `/chat/completions`);
//! - Amazon Bedrock Runtime: `POST /model/{modelId}/converse` and `/model/{modelId}/invoke`
//!   (Anthropic messages body);
//! - Amazon SageMaker Runtime: `POST /endpoints/{EndpointName}/invocations` (TGI / JumpStart
//!   `{"inputs"}`, `{"text_inputs"}`, OpenAI-style `{"messages"}`);
//! - Amazon SageMaker `ListEndpoints` (awsJson1_1, `X-Amz-Target: SageMaker.ListEndpoints`).
//!
//! Beside it, two AWS control-plane doubles moto lacks, for `deployer doctor`'s tests:
//! [`bedrock_control`] (Bedrock `ListFoundationModels`, `GetFoundationModelAvailability`) and
//! [`service_quotas`] (`ListServiceQuotas`); the Bedrock double also runs batch inference jobs
//! over moto's S3 ([`BatchBehavior`], [`bedrock_control::BedrockControl::start_with_batch`]).
//!
//! The real clients (the AWS SDK through `endpoint_url` / `AWS_ENDPOINT_URL`, reqwest) talk to
//! it; SigV4 signatures are accepted without checking. A [`Behavior`] sets latency (with seeded
//! jitter), the answer, and a deterministic [`FaultPlan`] (throttling with `Retry-After`, error
//! statuses, hangs, dropped connections, and hostile replies: an endless body, an HTML page, an
//! error echoing the key); [`ModelServer::stats`] counts requests, concurrency
//! and requests per prompt, and [`ModelServer::received`] shows what clients sent.
//!
//! What it deliberately does not do: tokenize (tokens are whitespace-separated words), stream
//! responses, or verify signatures. It is cheap: a benchmark at concurrency 64 with 200 ms
//! latency spends its time sleeping, not in the double.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! use model_doubles::{Answer, Behavior, ModelServer};
//! let server = ModelServer::start(Behavior { answer: Answer::Fixed("4".into()), ..Behavior::default() }).await?;
//! assert!(server.url().starts_with("http://127.0.0.1:"));
//! assert_eq!(server.stats().requests, 0);
//! # Ok(())
//! # }
//! ```

mod bedrock_batch;
pub mod bedrock_control;
mod behavior;
pub mod moto;
pub mod service_quotas;
mod stats;
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, Request, header};
use axum::response::Response;
use axum::routing::{MethodRouter, post};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

pub use bedrock_batch::BatchBehavior;
pub use behavior::{Answer, Behavior, Fault, FaultPlan, Prompt, When};
pub use moto::Moto;
pub use stats::{PromptCount, Protocol, RECEIVED_LOG_CAPACITY, ReceivedRequest, Stats};
pub use wire::ACCESS_DENIED_BEDROCK;

use stats::Counters;

/// A running double. Dropping it stops accepting connections and closes open ones.
#[derive(Debug)]
pub struct ModelServer {
    addr: SocketAddr,
    state: Arc<ServerState>,
    shutdown: CancellationToken,
    accept_task: JoinHandle<()>,
}

#[derive(Debug)]
struct ServerState {
    behavior: Behavior,
    counters: Counters,
}

/// Lets a handler close its own connection without a response ([`Fault::Drop`]).
#[derive(Clone)]
struct ConnectionKill(Arc<Notify>);

impl ModelServer {
    /// Starts a server on `127.0.0.1` on a free port.
    pub async fn start(behavior: Behavior) -> std::io::Result<ModelServer> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(ServerState {
            behavior,
            counters: Counters::default(),
        });
        let shutdown = CancellationToken::new();
        let router = routes().with_state(Arc::clone(&state));
        let accept_task = tokio::spawn(accept_loop(listener, router, shutdown.clone()));
        Ok(ModelServer {
            addr,
            state,
            shutdown,
            accept_task,
        })
    }

    /// The base URL, `http://127.0.0.1:PORT` (OpenAI clients want `{url}/v1`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.state.counters.snapshot()
    }

    /// The last [`RECEIVED_LOG_CAPACITY`] requests, oldest first.
    pub fn received(&self) -> Vec<ReceivedRequest> {
        self.state.counters.received()
    }
}

impl Drop for ModelServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
        self.accept_task.abort();
    }
}

fn routes() -> Router<Arc<ServerState>> {
    Router::new()
        .route("/v1/chat/completions", post(openai_chat))
        .route("/chat/completions", post(openai_chat))
        .route(
            "/model/{model_id}/converse",
            path_model(Protocol::BedrockConverse),
        )
        .route(
            "/model/{model_id}/invoke",
            path_model(Protocol::BedrockInvoke),
        )
        .route(
            "/endpoints/{endpoint}/invocations",
            path_model(Protocol::SageMakerInvoke),
        )
        .route("/", post(aws_json_target))
}

/// Serves each connection with hyper directly (HTTP/1.1, keep-alive) so that a handler can
/// drop its connection mid-request, which `axum::serve` cannot do.
async fn accept_loop(listener: TcpListener, router: Router, shutdown: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => return,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of file descriptors or a reset during the handshake: try again shortly.
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
        };
        // Latency figures must not include Nagle delays.
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let kill = Arc::new(Notify::new());
            let kill_for_requests = ConnectionKill(Arc::clone(&kill));
            let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(kill_for_requests.clone());
                router.clone().oneshot(request)
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                () = kill.notified() => {}
                () = shutdown.cancelled() => {}
            }
        });
    }
}

async fn openai_chat(
    State(state): State<Arc<ServerState>>,
    Extension(kill): Extension<ConnectionKill>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(&state, &kill, Protocol::OpenAiChat, None, &headers, &body).await
}

/// The handler of a route whose path names the model (`{model_id}`, `{endpoint}`): the three
/// such routes differ only in the protocol their body speaks.
fn path_model(protocol: Protocol) -> MethodRouter<Arc<ServerState>> {
    post(
        move |State(state): State<Arc<ServerState>>,
              Extension(kill): Extension<ConnectionKill>,
              Path(model): Path<String>,
              headers: HeaderMap,
              body: Bytes| async move {
            handle(&state, &kill, protocol, Some(model), &headers, &body).await
        },
    )
}

/// awsJson1_1 operations are all `POST /`, told apart by `X-Amz-Target`.
async fn aws_json_target(
    State(state): State<Arc<ServerState>>,
    Extension(kill): Extension<ConnectionKill>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if target == "SageMaker.ListEndpoints" {
        let protocol = Protocol::SageMakerListEndpoints;
        handle(&state, &kill, protocol, None, &headers, &body).await
    } else {
        wire::aws_error(
            axum::http::StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            &format!("the model double does not serve operation `{target}`"),
        )
    }
}

async fn handle(
    state: &ServerState,
    kill: &ConnectionKill,
    protocol: Protocol,
    path_model: Option<String>,
    headers: &HeaderMap,
    raw_body: &[u8],
) -> Response {
    let behavior = &state.behavior;
    let counters = &state.counters;
    let (seq, in_flight) = counters.begin();
    let parsed = wire::parse(protocol, raw_body);
    let (parsed, bad_request) = match parsed {
        Ok(parsed) => (parsed, None),
        Err(bad) => (wire::Parsed::default(), Some(bad.0)),
    };
    let model = path_model.unwrap_or_else(|| {
        parsed
            .body
            .get("model")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned()
    });
    let authorization = wire::header_string(headers, header::AUTHORIZATION);
    let authorized = protocol != Protocol::OpenAiChat
        || behavior
            .api_key
            .as_ref()
            .is_none_or(|key| authorization.as_deref() == Some(format!("Bearer {key}").as_str()));
    counters.record(ReceivedRequest {
        seq,
        protocol,
        model: model.clone(),
        prompt: parsed.prompt.clone(),
        system: parsed.system.clone(),
        content_type: wire::header_string(headers, header::CONTENT_TYPE),
        accept: wire::header_string(headers, header::ACCEPT),
        authorization,
        body: parsed.body.clone(),
    });

    let delay = behavior.delay(seq);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Some(message) = bad_request {
        return wire::error(protocol, 400, &message);
    }
    if !authorized {
        return wire::error(protocol, 401, "Incorrect API key provided.");
    }
    match behavior.faults.pick(seq, &model, &parsed.prompt) {
        None => {}
        Some(Fault::Hang(duration)) => {
            counters.fault();
            // A hang outlives the client's timeout; the client has moved on (and may retry), so
            // counting the hung request as in flight would overstate the client's concurrency.
            drop(in_flight);
            tokio::time::sleep(duration).await;
        }
        Some(Fault::Throttle { retry_after }) => {
            counters.fault();
            return wire::throttle(protocol, retry_after.as_deref());
        }
        Some(Fault::Status(status)) => {
            counters.fault();
            let message = match (protocol, status) {
                // AWS words a refused call with the caller's role and the account id, as here.
                (Protocol::BedrockConverse | Protocol::BedrockInvoke, 403) => {
                    wire::ACCESS_DENIED_BEDROCK.to_string()
                }
                _ => "injected fault from the model double".to_string(),
            };
            return wire::error(protocol, status, &message);
        }
        Some(Fault::Drop) => {
            counters.fault();
            kill.0.notify_one();
            // The connection task drops this future together with the connection.
            return std::future::pending::<Response>().await;
        }
        Some(Fault::EndlessBody) => {
            counters.fault();
            return wire::endless(protocol);
        }
        Some(Fault::HtmlPage) => {
            counters.fault();
            return wire::html_page();
        }
        Some(Fault::EchoKey) => {
            counters.fault();
            let sent = wire::header_string(headers, header::AUTHORIZATION).unwrap_or_default();
            let key = sent.strip_prefix("Bearer ").unwrap_or(&sent);
            return wire::error(
                protocol,
                401,
                &format!(
                    "Incorrect API key provided: {key}. You can find your API key at https://example.invalid/keys."
                ),
            );
        }
    }

    if protocol == Protocol::SageMakerListEndpoints {
        counters.success(&parsed.prompt);
        return wire::list_endpoints(&behavior.endpoints, &parsed.body);
    }
    let reply = behavior.answer.reply(&Prompt {
        model: &model,
        text: &parsed.prompt,
        system: parsed.system.as_deref(),
    });
    counters.success(&parsed.prompt);
    let latency_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
    wire::success(protocol, seq, &model, &parsed, &reply, latency_ms)
}
