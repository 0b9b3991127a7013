//! Operations: the layers every request passes (request id, structured request logs with the
//! cause of every 500, body limit, timeout, security headers) and `llm-eval serve` itself
//! (state from the data directory, interrupted runs, listener, graceful shutdown on SIGTERM).
//!
//! Connections are served by [`serve_http`] (hyper's HTTP/1 with a header-read timeout, so a
//! client that sends its headers a byte at a time holds a connection for at most
//! [`WebConfig::header_read_timeout`]).
//!
//! Invariants: every response carries `x-request-id` (the client's, if it sent a sane one, or
//! ours), and every log line of a request is in a span with that id; no request body is read
//! past its limit; a request other than an event stream is answered within the timeout; on
//! SIGTERM or Ctrl-C the server stops accepting, marks its running runs interrupted and drains
//! in-flight requests for at most [`SHUTDOWN_GRACE`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use tokio_util::sync::CancellationToken;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};

use super::error::{InternalCause, Shown};
use super::state::{AppState, WebConfig};
use engine::cache::ResponseCache;
use engine::catalog::Catalog;
use engine::providers::{ProviderSettings, Providers};
use store::StoreSpec;

/// How long in-flight requests and stopping runs get after SIGTERM (ECS waits 30 s by
/// default before it kills the task).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Request ids: a per-process random prefix and a counter (unique, cheap, not guessable as a
/// whole, and sortable within a process).
#[derive(Clone)]
struct RequestIds {
    prefix: Arc<str>,
    counter: Arc<AtomicU64>,
}

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, request: &Request<B>) -> Option<RequestId> {
        // A load balancer's id is kept when it looks like an id (no header injection, no
        // megabyte log lines).
        if let Some(given) = request.headers().get(&REQUEST_ID)
            && given.len() <= 64
            && given
                .as_bytes()
                .iter()
                .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'))
        {
            return Some(RequestId::new(given.clone()));
        }
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{}-{n:06}", self.prefix))
            .ok()
            .map(RequestId::new)
    }
}

/// Logs every request in a span with its request id, and the cause of every 500.
async fn log_request(request: Request, next: Next) -> Response {
    let request_id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let method = request.method().clone();
    // The path only: a query string can hold what a user typed.
    let path = request.uri().path().to_string();
    let span = tracing::info_span!("request", id = %request_id, %method, %path);
    let started = std::time::Instant::now();
    let response = tracing::Instrument::instrument(next.run(request), span.clone()).await;
    let _entered = span.enter();
    let status = response.status().as_u16();
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Some(cause) = response.extensions().get::<InternalCause>() {
        tracing::error!(status, elapsed_ms, error = %cause.0, "request failed");
    } else if status >= 500 {
        tracing::error!(status, elapsed_ms, "request failed");
    } else {
        tracing::info!(status, elapsed_ms, "request");
    }
    match response.extensions().get::<Shown>().cloned() {
        Some(shown) => with_request_id(response, &shown, &request_id),
        None => response,
    }
}

/// A server error's answer with the request id the user can report (the cause is in the log
/// line of that id only).
fn with_request_id(response: Response, shown: &Shown, request_id: &str) -> Response {
    let (mut parts, _) = response.into_parts();
    let body = if shown.json {
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        axum::body::Body::from(
            serde_json::json!({"error": shown.message, "request_id": request_id}).to_string(),
        )
    } else {
        let message = format!("{} Request id: {request_id}", shown.message);
        axum::body::Body::from(super::page::error_page(parts.status, &message).0)
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, body)
}

/// Security headers of every response.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = |headers: &mut axum::http::HeaderMap, name: HeaderName, value: &'static str| {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    };
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    );
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "same-origin");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    if !headers.contains_key(header::CACHE_CONTROL) {
        // Pages show a user's own data: no shared cache may keep them.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Answers 408 when a request takes longer than the limit (event streams excepted: their
/// handler returns at once and the stream is not timed).
async fn timeout(
    axum::extract::State(limit): axum::extract::State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let message = format!(
                "The server did not answer within {} s. Try again; a run you started keeps going.",
                limit.as_secs()
            );
            let mut response = axum::response::IntoResponse::into_response((
                StatusCode::REQUEST_TIMEOUT,
                super::page::error_page(StatusCode::REQUEST_TIMEOUT, &message),
            ));
            response
                .extensions_mut()
                .insert(InternalCause(Arc::new("request timed out".to_string())));
            response
        }
    }
}

/// The operations layers around `app`.
pub fn operations(app: Router<AppState>, config: &WebConfig) -> Router<AppState> {
    let ids = RequestIds {
        prefix: store::sqlite::random_hex(4).into(),
        counter: Arc::new(AtomicU64::new(1)),
    };
    app.layer(axum::middleware::from_fn_with_state(
        config.request_timeout,
        timeout,
    ))
    // Uploads have their own, larger limit on their route; this is the limit of the rest.
    .layer(axum::extract::DefaultBodyLimit::max(config.max_form_bytes))
    .layer(axum::middleware::from_fn(security_headers))
    .layer(axum::middleware::from_fn(log_request))
    .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
    .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), ids))
}

/// A run lease's default time to live: a task that dies mid-run has its runs resumed by
/// another task within about this long.
pub const DEFAULT_LEASE_SECS: u64 = 30;

/// What `llm-eval serve` needs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Where to listen.
    pub addr: SocketAddr,
    /// The data directory (store, datasets, uploads, response cache).
    pub data_dir: PathBuf,
    /// A catalog file overriding or extending the built-in one.
    pub catalog: Option<PathBuf>,
    /// The Secrets Manager secret of the OpenAI key.
    pub openai_secret_name: Option<String>,
    /// The largest upload in MiB.
    pub max_upload_mib: usize,
    /// Do not use the response cache.
    pub no_cache: bool,
    /// The store (`None`: `store.sqlite` in the data directory).
    pub store: Option<store::StoreSpec>,
    /// A run lease's time to live with a shared store (`None`: [`DEFAULT_LEASE_SECS`]).
    pub lease_secs: Option<u64>,
    /// The Cognito login (`None`: local mode, one local user and no login).
    pub login: Option<auth::AuthConfig>,
}

/// The state of a server over `options`' data directory.
pub async fn build_state(options: &ServeOptions) -> anyhow::Result<AppState> {
    let spec = options
        .store
        .clone()
        .unwrap_or_else(|| StoreSpec::Sqlite(options.data_dir.join("store.sqlite")));
    let bucket = std::env::var("DATA_BUCKET").ok();
    let store = spec
        .open(&options.data_dir, bucket.as_deref())
        .await
        .context("opening the store")?;
    // A shared store: runs hold leases, so several tasks can serve and resume them.
    let runs = match &spec {
        StoreSpec::Dynamo { .. } => super::registry::RunRegistry::with_leases(
            options.lease_secs.unwrap_or(DEFAULT_LEASE_SECS),
        ),
        StoreSpec::Sqlite(_) => super::registry::RunRegistry::default(),
    };
    // Uploads a killed process left half-written: nothing else writes there yet.
    if let Some(staging) = store.staging_path().parent() {
        match super::routes::datasets::clean_staging(staging) {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "removed staged uploads left by the last stop"),
            Err(error) => {
                tracing::warn!(error = %error, "cleaning the upload staging directory failed")
            }
        }
    }
    let interrupted = store
        .mark_interrupted()
        .await
        .context("marking interrupted runs")?;
    if !interrupted.is_empty() {
        tracing::warn!(
            runs = interrupted.len(),
            "runs were interrupted by the last stop; they can be resumed from their pages"
        );
    }
    let catalog = match &options.catalog {
        Some(path) => {
            Catalog::load(path).with_context(|| format!("loading catalog {}", path.display()))?
        }
        None => Catalog::embedded(),
    };
    let catalog = Arc::new(catalog);
    let runs = match batch_env(&catalog).await? {
        Some(env) => runs.with_batch(env),
        None => runs,
    };
    let providers = Providers::from_env(ProviderSettings {
        openai_secret_name: options.openai_secret_name.clone(),
        ..ProviderSettings::default()
    })
    .await
    .context("setting up model providers")?;
    let cache = if options.no_cache {
        None
    } else {
        Some(
            ResponseCache::open_dir(&options.data_dir.join("cache"))
                .context("opening the response cache")?,
        )
    };
    let mut config = WebConfig::local(options.data_dir.clone());
    config.max_upload_bytes = options.max_upload_mib.saturating_mul(1024 * 1024);
    // Plain HTTP is only for local mode with a browser on the same machine; anywhere else, and
    // whenever there is a login to protect, the app is behind HTTPS (CloudFront) and the
    // cookie must never travel in clear (browsers accept Secure cookies from
    // http://127.0.0.1 and http://localhost, so a local login test works too).
    config.secure_cookies = options.login.is_some() || !options.addr.ip().is_loopback();
    shared_settings_from_env(&mut config, |name| std::env::var(name).ok())?;
    let runs = runs.with_call_ceiling(config.quotas.task_model_calls);
    let authenticator: Option<Arc<dyn super::Authenticator>> = match &options.login {
        Some(login) => Some(Arc::new(super::login::CognitoLogin::new(
            auth::Authenticator::new(login.clone()).await,
        ))),
        None => None,
    };
    Ok(AppState {
        store,
        cache,
        catalog,
        providers: Arc::new(providers),
        runs,
        config: Arc::new(config),
        authenticator,
    })
}

/// Serves `app` on `listener` until `drain` completes (then stops accepting, lets each
/// connection finish its request and waits for them all), one task per connection, HTTP/1
/// with keep-alive. A connection that does not deliver a request's headers within
/// `header_read_timeout` is closed. Handlers find the peer address as axum's
/// `ConnectInfo<SocketAddr>` (what the login limiter counts attempts against; behind trusted
/// proxies, the address they report).
pub async fn serve_http(
    listener: tokio::net::TcpListener,
    app: Router,
    drain: impl std::future::Future<Output = ()>,
    header_read_timeout: Duration,
) -> anyhow::Result<()> {
    use tower::ServiceExt;
    let (close_tx, close_rx) = tokio::sync::watch::channel(());
    let mut connections = tokio::task::JoinSet::new();
    let mut drain = std::pin::pin!(drain);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait a little, keep serving.
                    tracing::warn!(error = %error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut drain => break,
        };
        let _ = stream.set_nodelay(true);
        let service = app.clone().map_request(
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                request.map(axum::body::Body::new)
            },
        );
        let service = hyper_util::service::TowerToHyperService::new(service);
        let mut close = close_rx.clone();
        connections.spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_read_timeout);
            let connection =
                builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(error = %error, "connection ended with an error");
                    }
                    return;
                }
                _ = close.changed() => connection.as_mut().graceful_shutdown(),
            }
            let _ = connection.await;
        });
        // Finished connections are reaped as we go, so the set holds only open ones.
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = close_tx.send(());
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// The settings of a shared server read from the environment (see `docs/security.md`):
/// `LLM_EVAL_MAX_PROMPT_SIZE` (the rendered-prompt ceiling), `LLM_EVAL_MAX_RUN_RESTARTS` (task
/// deaths before a run is failed instead of resumed), the quotas (`LLM_EVAL_MAX_RUNS_PER_USER`,
/// `LLM_EVAL_MAX_MODELS_PER_RUN`, `LLM_EVAL_MAX_RUN_CONCURRENCY`,
/// `LLM_EVAL_MAX_DATASETS_PER_USER`, `LLM_EVAL_MAX_DATASET_BYTES_PER_USER`,
/// `LLM_EVAL_MAX_TASK_MODEL_CALLS`) and
/// `LLM_EVAL_ALLOWED_HOSTS` (comma-separated host names local mode answers besides loopback
/// ones) and `LLM_EVAL_FACILITATOR_GROUP` (the Cognito group of facilitators).
pub fn shared_settings_from_env(
    config: &mut WebConfig,
    var: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<()> {
    if let Some(text) = var("LLM_EVAL_MAX_PROMPT_SIZE").filter(|text| !text.trim().is_empty()) {
        let limit = engine::limits::parse_size(&text)
            .map_err(|why| anyhow::anyhow!("LLM_EVAL_MAX_PROMPT_SIZE: {why}"))?;
        config.max_prompt_size = limit;
    }
    if let Some(text) = var("LLM_EVAL_MAX_RUN_RESTARTS").filter(|text| !text.trim().is_empty()) {
        config.max_run_restarts = text
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "LLM_EVAL_MAX_RUN_RESTARTS: `{text}` is not a whole number of at least 1"
                )
            })?;
    }
    let whole = |name: &str, value: &mut usize| -> anyhow::Result<()> {
        if let Some(text) = var(name).filter(|text| !text.trim().is_empty()) {
            *value = text
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| {
                    anyhow::anyhow!("{name}: `{text}` is not a whole number of at least 1")
                })?;
        }
        Ok(())
    };
    let quotas = &mut config.quotas;
    whole("LLM_EVAL_MAX_RUNS_PER_USER", &mut quotas.runs_per_user)?;
    whole(
        "LLM_EVAL_MAX_TASK_MODEL_CALLS",
        &mut quotas.task_model_calls,
    )?;
    whole("LLM_EVAL_MAX_MODELS_PER_RUN", &mut quotas.models_per_run)?;
    whole(
        "LLM_EVAL_MAX_RUN_CONCURRENCY",
        &mut quotas.concurrency_per_run,
    )?;
    whole(
        "LLM_EVAL_MAX_DATASETS_PER_USER",
        &mut quotas.datasets_per_user,
    )?;
    if let Some(text) =
        var("LLM_EVAL_MAX_DATASET_BYTES_PER_USER").filter(|text| !text.trim().is_empty())
    {
        quotas.dataset_bytes_per_user = engine::limits::parse_size(&text)
            .map_err(|why| anyhow::anyhow!("LLM_EVAL_MAX_DATASET_BYTES_PER_USER: {why}"))?
            .0;
    }
    if let Some(text) = var("LLM_EVAL_FACILITATOR_GROUP").filter(|text| !text.trim().is_empty()) {
        let group = text.trim();
        // Cognito's rule for group names: 1 to 128 characters of \p{L}\p{M}\p{S}\p{N}\p{P}.
        if group.chars().count() > 128 || group.chars().any(char::is_whitespace) {
            anyhow::bail!(
                "LLM_EVAL_FACILITATOR_GROUP: `{group}` is not a Cognito group name (1 to 128 characters, no spaces)"
            );
        }
        config.facilitator_group = group.to_string();
    }
    if let Some(text) = var("LLM_EVAL_ALLOWED_HOSTS") {
        config.allowed_hosts = text
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(str::to_string)
            .collect();
    }
    Ok(())
}

/// Batch mode's settings from `LLM_EVAL_BATCH_BUCKET`, `LLM_EVAL_BATCH_ROLE_ARN` (both, or
/// no batch mode), `LLM_EVAL_BATCH_PREFIX` and `LLM_EVAL_BATCH_POLL_SECS`; the deployed task
/// gets them from the app stack.
async fn batch_env(catalog: &Arc<Catalog>) -> anyhow::Result<Option<super::registry::BatchEnv>> {
    let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    let (Some(bucket), Some(role)) = (var("LLM_EVAL_BATCH_BUCKET"), var("LLM_EVAL_BATCH_ROLE_ARN"))
    else {
        return Ok(None);
    };
    let mut settings = engine::batch::BatchSettings::new(bucket, role);
    if let Some(prefix) = var("LLM_EVAL_BATCH_PREFIX") {
        settings.prefix = prefix;
    }
    if let Some(secs) = var("LLM_EVAL_BATCH_POLL_SECS") {
        let secs: f64 = secs
            .parse()
            .ok()
            .filter(|secs| (0.01..=3600.0).contains(secs))
            .with_context(|| {
                format!("LLM_EVAL_BATCH_POLL_SECS: `{secs}` is not 0.01 to 3600 seconds")
            })?;
        settings.poll_interval = Duration::from_secs_f64(secs);
    }
    Ok(Some(super::registry::BatchEnv {
        clients: engine::batch::BatchClients::from_env().await,
        settings,
        catalog: catalog.clone(),
    }))
}

/// Serves `state` on `listener` until `shutdown` is cancelled, then stops runs (marked
/// interrupted) and drains requests for at most [`SHUTDOWN_GRACE`].
pub async fn serve_until(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let registry = state.runs.clone();
    let store = state.store.clone();
    // Expired sessions are removed hourly; a failure is logged and tried again later.
    let purge_stop = shutdown.clone();
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                () = purge_stop.cancelled() => return,
            }
            if let Err(error) = store.purge_sessions().await {
                tracing::warn!(error = %error, "purging expired sessions failed");
            }
        }
    });
    // With leases, runs left behind by a task that died (or handed them back) are looked for
    // every half lease and resumed here.
    if let Some(leases) = state.runs.leases() {
        let period = Duration::from_millis(leases.ttl_secs * 500).max(Duration::from_millis(500));
        let adopt_state = state.clone();
        let adopt_stop = shutdown.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = interval.tick() => {}
                    () = adopt_stop.cancelled() => return,
                }
                super::adopt::adopt_orphans(&adopt_state).await;
            }
        });
    }
    let header_read_timeout = state.config.header_read_timeout;
    let app = super::router(state);
    let drain = {
        let shutdown = shutdown.clone();
        let registry = registry.clone();
        async move {
            shutdown.cancelled().await;
            tracing::info!("shutting down: stopping runs and draining requests");
            // Runs first: their event streams end with them, which lets the drain finish.
            registry.shutdown(SHUTDOWN_GRACE).await;
        }
    };
    let server = serve_http(listener, app, drain, header_read_timeout);
    tokio::select! {
        res = server => res.context("serving")?,
        () = async {
            shutdown.cancelled().await;
            tokio::time::sleep(SHUTDOWN_GRACE * 2).await;
        } => tracing::warn!("requests still open after the grace period were dropped"),
    }
    Ok(())
}
