//! What keeps one server safe to share and to run on a laptop: the server's own ceilings on
//! what a request may ask for (the rendered-prompt limit), the per-user quotas (runs in flight,
//! models, concurrency, datasets and their bytes), and, in local mode, the `Host` and `Origin`
//! checks that stop another site from driving the app through DNS rebinding.
//!
//! Depends on the state and the engine's request type only; it must not depend on routes or
//! on the login layer, because it runs before either.
//!
//! Invariants: in local mode, a request whose `Host` names anything but a loopback name or
//! address (or a name of [`WebConfig::allowed_hosts`]) is refused before any handler or session
//! code runs, and so is a state-changing request whose `Origin` is another origin; a request a
//! user makes can never raise a ceiling the server set.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use engine::plan::{EvalRequest, Field};
use store::UserId;

use super::state::{AppState, WebConfig};

/// Per-user quotas of a shared server, with their defaults (see `docs/security.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quotas {
    /// Runs one user may have running at once (`LLM_EVAL_MAX_RUNS_PER_USER`).
    pub runs_per_user: usize,
    /// Models, and judge models, one run may name (`LLM_EVAL_MAX_MODELS_PER_RUN`).
    pub models_per_run: usize,
    /// Concurrent requests per model one run may ask for (`LLM_EVAL_MAX_RUN_CONCURRENCY`).
    pub concurrency_per_run: usize,
    /// Datasets one user may keep (`LLM_EVAL_MAX_DATASETS_PER_USER`).
    pub datasets_per_user: usize,
    /// Bytes of datasets one user may keep (`LLM_EVAL_MAX_DATASET_BYTES_PER_USER`).
    pub dataset_bytes_per_user: u64,
    /// Model calls in flight of all the runs of one task, shared equally by the running runs
    /// (`LLM_EVAL_MAX_TASK_MODEL_CALLS`).
    pub task_model_calls: usize,
}

impl Default for Quotas {
    fn default() -> Quotas {
        Quotas {
            runs_per_user: 3,
            models_per_run: 8,
            concurrency_per_run: 16,
            datasets_per_user: 50,
            dataset_bytes_per_user: 500 << 20,
            task_model_calls: 256,
        }
    }
}

impl Quotas {
    /// One line for the form: what this server allows.
    pub fn summary(&self) -> String {
        format!(
            "This server allows each user {} runs at a time, {} models (and {} judges) per run, a concurrency of {} per model, and {} datasets of {} in all; it makes at most {} model calls at once, shared equally by the running runs.",
            self.runs_per_user,
            self.models_per_run,
            self.models_per_run,
            self.concurrency_per_run,
            self.datasets_per_user,
            engine::limits::ByteSize(self.dataset_bytes_per_user),
            self.task_model_calls
        )
    }
}

/// The newest runs of a user looked at to count the ones still running (with a shared store,
/// runs other tasks execute count too).
const RUNNING_LOOKBACK: usize = 50;

/// The quotas a facilitator may set for one user (issue 22), stored as JSON with
/// [`store::Store::set_user_quotas`]; each is bounded by [`QUOTA_CEILINGS`], so no form can
/// ask the server for more than it was built to give.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UserQuotas {
    /// Runs the user may have running at once.
    pub runs_per_user: usize,
    /// Models (and judges) per run.
    pub models_per_run: usize,
    /// Concurrency per model of one run.
    pub concurrency_per_run: usize,
    /// Datasets the user may keep.
    pub datasets_per_user: usize,
    /// Bytes of datasets the user may keep.
    pub dataset_bytes_per_user: u64,
}

/// The highest value a facilitator may set for each of [`UserQuotas`].
pub const QUOTA_CEILINGS: UserQuotas = UserQuotas {
    runs_per_user: 100,
    models_per_run: 64,
    concurrency_per_run: 512,
    datasets_per_user: 10_000,
    dataset_bytes_per_user: 100 << 30,
};

impl UserQuotas {
    /// The per-user part of the server's quotas.
    pub fn of(quotas: &Quotas) -> UserQuotas {
        UserQuotas {
            runs_per_user: quotas.runs_per_user,
            models_per_run: quotas.models_per_run,
            concurrency_per_run: quotas.concurrency_per_run,
            datasets_per_user: quotas.datasets_per_user,
            dataset_bytes_per_user: quotas.dataset_bytes_per_user,
        }
    }

    /// Why these quotas cannot be set: a value is 0 or above its ceiling.
    pub fn check(&self) -> Result<(), String> {
        let checks: [(&str, u64, u64); 5] = [
            (
                "runs at a time",
                self.runs_per_user as u64,
                QUOTA_CEILINGS.runs_per_user as u64,
            ),
            (
                "models per run",
                self.models_per_run as u64,
                QUOTA_CEILINGS.models_per_run as u64,
            ),
            (
                "concurrency per model",
                self.concurrency_per_run as u64,
                QUOTA_CEILINGS.concurrency_per_run as u64,
            ),
            (
                "datasets",
                self.datasets_per_user as u64,
                QUOTA_CEILINGS.datasets_per_user as u64,
            ),
            (
                "dataset bytes",
                self.dataset_bytes_per_user,
                QUOTA_CEILINGS.dataset_bytes_per_user,
            ),
        ];
        for (name, value, ceiling) in checks {
            if value == 0 || value > ceiling {
                return Err(format!("{name} must be 1 to {ceiling}"));
            }
        }
        Ok(())
    }
}

/// The quotas of `user`: the server's, with the per-user ones a facilitator set (a stored
/// value that no longer parses or passes [`UserQuotas::check`] is ignored).
pub async fn quotas_for(state: &AppState, user: &UserId) -> Result<Quotas, store::StoreError> {
    let mut quotas = state.config.quotas.clone();
    if let Some(set) = state
        .store
        .user_quotas(user)
        .await?
        .and_then(|value| serde_json::from_value::<UserQuotas>(value).ok())
        .filter(|set| set.check().is_ok())
    {
        quotas.runs_per_user = set.runs_per_user;
        quotas.models_per_run = set.models_per_run;
        quotas.concurrency_per_run = set.concurrency_per_run;
        quotas.datasets_per_user = set.datasets_per_user;
        quotas.dataset_bytes_per_user = set.dataset_bytes_per_user;
    }
    Ok(quotas)
}

/// Runs of one user looked at for their usage (newest first).
pub const USAGE_LOOKBACK: usize = 200;

/// What one user has used, over their newest [`USAGE_LOOKBACK`] runs (the facilitator's view).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    /// Runs stored.
    pub runs: usize,
    /// Of which running.
    pub running: usize,
    /// Records evaluated (succeeded or failed, every model).
    pub records: usize,
    /// Model calls paid for (records evaluated less answers reused from a cache).
    pub model_calls: usize,
    /// What the calls of ended runs cost, in USD, where the catalog has prices.
    pub cost_usd: f64,
    /// What the running runs have cost so far, estimated: each run's estimate before it started
    /// (prompt characters ÷ 4, catalog prices) times the share of its records done. Measured
    /// costs are summed when a run ends.
    pub running_cost_estimate_usd: f64,
    /// Datasets kept.
    pub datasets: usize,
    /// Their bytes.
    pub dataset_bytes: u64,
}

/// The usage of `user` ([`Usage`]).
pub async fn usage_of(state: &AppState, user: &UserId) -> Result<Usage, store::StoreError> {
    let mut usage = Usage::default();
    for run in state.store.runs(user, USAGE_LOOKBACK).await? {
        usage.runs += 1;
        let summary = run
            .summary
            .as_ref()
            .filter(|_| run.status != store::RunStatus::Running)
            .and_then(|value| {
                serde_json::from_value::<engine::output::Summary>(value.clone()).ok()
            });
        match summary {
            Some(summary) => {
                usage.records += summary.done + summary.failed;
                usage.model_calls += summary
                    .models
                    .iter()
                    .map(|line| line.n_records.saturating_sub(line.n_cached))
                    .sum::<usize>();
                usage.cost_usd += summary.total_cost_usd().unwrap_or(0.0);
            }
            None => {
                if run.status == store::RunStatus::Running {
                    usage.running += 1;
                }
                let counts = state.store.record_counts(user, &run.id).await?;
                let done = counts.ok + counts.failed;
                usage.records += done;
                usage.model_calls += done;
                let estimate = run
                    .config
                    .get("estimated_cost_usd")
                    .and_then(serde_json::Value::as_f64);
                if let (Some(estimate), Some(total)) = (estimate, run.total.filter(|n| *n > 0)) {
                    usage.running_cost_estimate_usd +=
                        estimate * done.min(total) as f64 / total as f64;
                }
            }
        }
    }
    let datasets = state.store.datasets(user).await?;
    usage.datasets = datasets.len();
    usage.dataset_bytes = datasets.iter().map(|dataset| dataset.size_bytes).sum();
    Ok(usage)
}

/// Whether `owner` may start `request` now: the part of the form at fault and why not. Checked
/// before anything is planned or stored, so a refused run leaves nothing behind. Runs in flight
/// are those this task runs, or the store's running runs among the user's newest
/// [`RUNNING_LOOKBACK`], whichever is more.
pub async fn check_run_quota(
    state: &AppState,
    owner: &UserId,
    request: &EvalRequest,
) -> Result<Result<(), (Field, String)>, store::StoreError> {
    let quotas = quotas_for(state, owner).await?;
    Ok(match check_run_shape(&quotas, request) {
        Err(refused) => Err(refused),
        Ok(()) => {
            let stored = state
                .store
                .runs(owner, RUNNING_LOOKBACK)
                .await?
                .iter()
                .filter(|run| run.status == store::RunStatus::Running)
                .count();
            let running = stored.max(state.runs.active_runs_of(owner));
            if running >= quotas.runs_per_user {
                Err((
                    Field::Runner,
                    format!(
                        "you have {running} runs going, the most this server runs at once for one user (LLM_EVAL_MAX_RUNS_PER_USER); wait for one to end or stop one"
                    ),
                ))
            } else {
                Ok(())
            }
        }
    })
}

/// The quotas on one run's size: models, judges, concurrency.
fn check_run_shape(quotas: &Quotas, request: &EvalRequest) -> Result<(), (Field, String)> {
    let count = |specs: &[String]| specs.iter().filter(|spec| !spec.trim().is_empty()).count();
    if count(&request.models) > quotas.models_per_run {
        return Err((
            Field::Models,
            format!(
                "this server evaluates at most {} models per run; choose fewer (LLM_EVAL_MAX_MODELS_PER_RUN)",
                quotas.models_per_run
            ),
        ));
    }
    if count(&request.judges) > quotas.models_per_run {
        return Err((
            Field::Judges,
            format!(
                "this server allows at most {} judge models per run; choose fewer (LLM_EVAL_MAX_MODELS_PER_RUN)",
                quotas.models_per_run
            ),
        ));
    }
    if request.concurrency > quotas.concurrency_per_run {
        return Err((
            Field::Runner,
            format!(
                "this server allows a concurrency of at most {} per model (LLM_EVAL_MAX_RUN_CONCURRENCY)",
                quotas.concurrency_per_run
            ),
        ));
    }
    Ok(())
}

/// Whether `owner` may keep one more dataset of `size` bytes: `Err` says why not.
pub async fn check_dataset_quota(
    state: &AppState,
    owner: &UserId,
    size: u64,
) -> Result<Result<(), String>, store::StoreError> {
    let quotas = &quotas_for(state, owner).await?;
    let datasets = state.store.datasets(owner).await?;
    if datasets.len() >= quotas.datasets_per_user {
        return Ok(Err(format!(
            "You keep {} datasets, the most this server keeps for one user (LLM_EVAL_MAX_DATASETS_PER_USER); delete one first.",
            datasets.len()
        )));
    }
    let used: u64 = datasets.iter().map(|dataset| dataset.size_bytes).sum();
    if used.saturating_add(size) > quotas.dataset_bytes_per_user {
        return Ok(Err(format!(
            "This dataset ({}) does not fit in your storage quota: {} of {} used (LLM_EVAL_MAX_DATASET_BYTES_PER_USER); delete a dataset first.",
            engine::limits::ByteSize(size),
            engine::limits::ByteSize(used),
            engine::limits::ByteSize(quotas.dataset_bytes_per_user)
        )));
    }
    Ok(Ok(()))
}

/// `request` within the server's ceilings: a stored run's or a form's limit is kept only when
/// it is lower than the server's.
pub fn within_server_limits(state: &AppState, mut request: EvalRequest) -> EvalRequest {
    request.max_prompt_size = request.max_prompt_size.min(state.config.max_prompt_size);
    request
}

/// The host name of a `Host` header value or URI authority: lower case, without the port and
/// the trailing dot; IPv6 addresses without their brackets.
fn host_name(authority: &str) -> String {
    let authority = authority.trim();
    let name = if let Some(rest) = authority.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        authority
            .rsplit_once(':')
            .filter(|(_, port)| port.bytes().all(|byte| byte.is_ascii_digit()))
            .map_or(authority, |(name, _)| name)
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether `name` (from [`host_name`]) is a loopback name or address.
fn is_loopback_name(name: &str) -> bool {
    name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

/// Whether local mode answers a request for `name`.
pub fn host_allowed(config: &WebConfig, name: &str) -> bool {
    is_loopback_name(name)
        || config
            .allowed_hosts
            .iter()
            .any(|allowed| host_name(allowed) == name)
}

/// The request's host: the `Host` header, or the URI's authority (HTTP/2).
fn request_host(request: &Request) -> Option<String> {
    request
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string)
        .or_else(|| request.uri().authority().map(|a| a.as_str().to_string()))
}

/// Whether the `Origin` of a state-changing request is this server's own (same scheme-less
/// host and port as the request's `Host`). A request without `Origin` (not a browser, or an
/// old one) passes here: the CSRF token still guards it.
fn origin_allowed(headers: &HeaderMap, host: Option<&str>) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    // `null` (a sandboxed frame, a file) is never this server.
    let Some((_, authority)) = origin.split_once("://") else {
        return false;
    };
    host.is_some_and(|host| authority.eq_ignore_ascii_case(host.trim()))
}

fn refused(message: String) -> Response {
    (
        StatusCode::FORBIDDEN,
        super::page::error_page(StatusCode::FORBIDDEN, &message),
    )
        .into_response()
}

/// Middleware, local mode only: refuses requests for a host that is not this machine (DNS
/// rebinding), and state-changing requests from another origin.
pub async fn local_mode_guard(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if !state.is_local_mode() {
        return next.run(request).await;
    }
    let host = request_host(&request);
    // A browser always sends `Host`; a request without one cannot come from a rebound name.
    if let Some(host) = &host {
        let name = host_name(host);
        if !host_allowed(&state.config, &name) {
            tracing::warn!(host = %loggable(&name), "refused a request for another host name");
            return refused(format!(
                "This local server answers only requests for localhost or a loopback address, not for \u{201c}{}\u{201d}. To reach it under another name, add the name to LLM_EVAL_ALLOWED_HOSTS.",
                loggable(&name)
            ));
        }
    }
    let unsafe_method = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if unsafe_method && !origin_allowed(request.headers(), host.as_deref()) {
        return refused(
            "This form was sent from another site; local mode accepts forms from its own pages only."
                .to_string(),
        );
    }
    next.run(request).await
}

/// `text` (an AWS error as the SDK words it) without what identifies the deployment: ARNs
/// (`arn:…`, which name the account, roles and resources) and 12-digit account ids become `…`.
/// The whole text stays in the server log or the store.
pub fn redact_aws_details(text: &str) -> String {
    static PATTERN: std::sync::LazyLock<regex_lite::Regex> = std::sync::LazyLock::new(|| {
        regex_lite::Regex::new(r#"arn:aws[a-zA-Z-]*:[^\s"'<>,;()]*|\b[0-9]{12}\b"#)
            .expect("a valid pattern")
    });
    PATTERN.replace_all(text, "…").into_owned()
}

/// At most 100 characters of `text`, control characters escaped, for logs and pages.
fn loggable(text: &str) -> String {
    engine::limits::excerpt(text, 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_details_are_redacted() {
        assert_eq!(
            redact_aws_details(
                "AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/llm-eval-task/abc is not authorized to perform: bedrock:InvokeModel on resource: arn:aws:bedrock:us-east-1::foundation-model/x (account 123456789012)"
            ),
            "AccessDeniedException: User: … is not authorized to perform: bedrock:InvokeModel on resource: … (account …)"
        );
        assert_eq!(redact_aws_details("HTTP 500: busy"), "HTTP 500: busy");
        assert_eq!(
            redact_aws_details("1234567890123 tokens"),
            "1234567890123 tokens"
        );
    }

    #[test]
    fn host_names() {
        assert_eq!(host_name("LocalHost:8080"), "localhost");
        assert_eq!(host_name("127.0.0.1:8080"), "127.0.0.1");
        assert_eq!(host_name("[::1]:8080"), "::1");
        assert_eq!(host_name("example.com."), "example.com");
        assert_eq!(host_name("evil.example"), "evil.example");
    }

    #[test]
    fn only_loopback_names_and_configured_ones_are_allowed() {
        let mut config = WebConfig::local(std::path::PathBuf::new());
        for name in [
            "localhost",
            "app.localhost",
            "127.0.0.1",
            "127.3.2.1",
            "::1",
        ] {
            assert!(host_allowed(&config, name), "{name}");
        }
        for name in [
            "evil.example",
            "localhost.evil.example",
            "10.0.0.1",
            "0.0.0.0",
            "",
        ] {
            assert!(!host_allowed(&config, name), "{name}");
        }
        config.allowed_hosts = vec!["My-Laptop.lan".to_string()];
        assert!(host_allowed(&config, "my-laptop.lan"));
    }

    #[test]
    fn origins() {
        let mut headers = HeaderMap::new();
        assert!(origin_allowed(&headers, Some("127.0.0.1:8080")));
        headers.insert(
            header::ORIGIN,
            axum::http::HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(origin_allowed(&headers, Some("127.0.0.1:8080")));
        assert!(!origin_allowed(&headers, Some("127.0.0.1:9090")));
        assert!(!origin_allowed(&headers, None));
        headers.insert(header::ORIGIN, axum::http::HeaderValue::from_static("null"));
        assert!(!origin_allowed(&headers, Some("127.0.0.1:8080")));
    }
}
