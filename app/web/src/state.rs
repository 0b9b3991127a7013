//! What every handler shares: the store, the model catalog and providers, the runs this
//! process executes, the configuration and the optional login layer.
//!
//! Invariant: `AppState` is cheap to clone (everything behind `Arc`), built once by
//! [`super::serve`] or a test, and given to [`super::router`]; handlers never reach for
//! globals or the environment.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use engine::cache::ResponseCache;
use engine::catalog::Catalog;
use engine::limits::ByteSize;
use engine::providers::Providers;
use store::SharedStore;

use super::Authenticator;
use super::registry::RunRegistry;

/// The facilitators' Cognito group unless `LLM_EVAL_FACILITATOR_GROUP` names another.
pub const DEFAULT_FACILITATOR_GROUP: &str = "facilitators";

/// Settings of the web app.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Whether the session cookie is `Secure` (false only in local mode on a loopback
    /// address, where the browser talks plain HTTP).
    pub secure_cookies: bool,
    /// The largest dataset upload, in bytes.
    pub max_upload_bytes: usize,
    /// The largest form or JSON body, in bytes.
    pub max_form_bytes: usize,
    /// How long a request may take before it is answered 408 (server-sent event streams are
    /// exempt: they last as long as the run).
    pub request_timeout: Duration,
    /// How long a session lasts without use.
    pub session_ttl: Duration,
    /// The most records a run started from the web may evaluate.
    pub max_run_records: usize,
    /// Where the data lives (shown on the pages in local mode).
    pub data_dir: PathBuf,
    /// The largest rendered prompt or judge prompt of a preview or a run
    /// (`LLM_EVAL_MAX_PROMPT_SIZE`); no form or stored run can raise it.
    pub max_prompt_size: ByteSize,
    /// Host names local mode answers besides loopback ones (`LLM_EVAL_ALLOWED_HOSTS`).
    pub allowed_hosts: Vec<String>,
    /// How long a connection may take to send a request's headers (slowloris): past it, the
    /// connection is closed.
    pub header_read_timeout: Duration,
    /// How many times tasks may die running one run before it is marked failed instead of
    /// resumed again (`LLM_EVAL_MAX_RUN_RESTARTS`, shared stores only).
    pub max_run_restarts: u32,
    /// Per-user quotas (the defaults; a facilitator may set a user's own, kept in the store).
    pub quotas: super::safety::Quotas,
    /// The Cognito group whose members are facilitators (`LLM_EVAL_FACILITATOR_GROUP`,
    /// default `facilitators`), read from the verified token's `cognito:groups` claim.
    pub facilitator_group: String,
}

impl WebConfig {
    /// Defaults for a data directory (local mode: cookies without `Secure`).
    pub fn local(data_dir: PathBuf) -> WebConfig {
        WebConfig {
            secure_cookies: false,
            max_upload_bytes: 50 * 1024 * 1024,
            max_form_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            session_ttl: Duration::from_secs(12 * 3600),
            max_run_records: 100_000,
            data_dir,
            max_prompt_size: engine::limits::DEFAULT_MAX_PROMPT,
            allowed_hosts: Vec::new(),
            header_read_timeout: Duration::from_secs(10),
            max_run_restarts: 3,
            quotas: super::safety::Quotas::default(),
            facilitator_group: DEFAULT_FACILITATOR_GROUP.to_string(),
        }
    }
}

/// The state shared by all handlers.
#[derive(Clone)]
pub struct AppState {
    /// Runs, records, datasets, settings, sessions.
    pub store: SharedStore,
    /// The response cache shared by the runs (`None`: no cache).
    pub cache: Option<ResponseCache>,
    /// Model aliases, default parameters and prices.
    pub catalog: Arc<Catalog>,
    /// The model clients, built once per process.
    pub providers: Arc<Providers>,
    /// Runs executing in this process: progress, cancel.
    pub runs: RunRegistry,
    /// Settings.
    pub config: Arc<WebConfig>,
    /// The login layer; `None` in local mode.
    pub authenticator: Option<Arc<dyn Authenticator>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store)
            .field("config", &self.config)
            .field("local_mode", &self.is_local_mode())
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Whether no login is configured: one local user, and a notice on every page.
    pub fn is_local_mode(&self) -> bool {
        self.authenticator.is_none()
    }
}
