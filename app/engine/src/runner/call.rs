//! One model as the runner drives it: an adaptive concurrency window (AIMD), retries with
//! jittered exponential back-off, a per-attempt timeout, the response cache and cancellation.
//!
//! Invariants: at most `window` attempts of one model are in flight at any time, and the window
//! never exceeds the configured limit nor drops below 1; a throttled attempt halves the window
//! and pauses new attempts of that model until Retry-After (capped at `max_retry_wait`) or the
//! back-off has passed; the window grows back by one per `window` consecutive successes;
//! `Permanent` errors are never retried; every attempt, throttled or not, counts against
//! `max_attempts`; no call lasts longer than `record_timeout` from its first attempt, waits
//! included; a cancelled call returns at once, abandoning the in-flight attempt.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, broadcast};
// Tokio's clock, so that tests can run the waits on paused time.
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cache::{ResponseCache, cache_key};
use crate::progress::ProgressEvent;
use crate::providers::{
    ErrorKind, GenerateRequest, Generation, InferenceParams, ModelProvider, ProviderError,
};

/// How the runner calls models.
#[derive(Debug, Clone, PartialEq)]
pub struct RunnerConfig {
    /// Maximum concurrent requests per model (the window's ceiling).
    pub concurrency: usize,
    /// Attempts per call, throttled ones included, at least 1.
    pub max_attempts: u32,
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// The longest wait before a retry, whatever Retry-After asks for.
    pub max_retry_wait: Duration,
    /// The longest one call may take from its first attempt, every attempt and wait included.
    pub record_timeout: Duration,
    /// First back-off delay; doubles per attempt, with full jitter.
    pub backoff_base: Duration,
    /// Ceiling of the back-off delay.
    pub backoff_max: Duration,
}

/// Default [`RunnerConfig::max_retry_wait`].
pub const DEFAULT_MAX_RETRY_WAIT: Duration = Duration::from_secs(60);
/// Default [`RunnerConfig::record_timeout`].
pub const DEFAULT_RECORD_TIMEOUT: Duration = Duration::from_secs(600);

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            concurrency: 8,
            max_attempts: 5,
            timeout: Duration::from_secs(60),
            max_retry_wait: DEFAULT_MAX_RETRY_WAIT,
            record_timeout: DEFAULT_RECORD_TIMEOUT,
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(20),
        }
    }
}

/// A model the runner can call, with what it needs to price the calls.
#[derive(Clone)]
pub struct ModelClient {
    /// How records and summaries name the model (what the user wrote).
    pub label: String,
    /// The API client.
    pub provider: Arc<dyn ModelProvider>,
    /// The provider-specific model id.
    pub model_id: String,
    /// Inference parameters sent with every request.
    pub params: InferenceParams,
    /// USD per 1,000 input tokens, if known.
    pub price_per_1k_input: Option<f64>,
    /// USD per 1,000 output tokens, if known.
    pub price_per_1k_output: Option<f64>,
}

impl std::fmt::Debug for ModelClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelClient")
            .field("label", &self.label)
            .field("provider", &self.provider.name())
            .field("model_id", &self.model_id)
            .finish()
    }
}

impl ModelClient {
    /// The cost of a generation in USD, when prices and token counts are known.
    pub fn cost(&self, generation: &Generation) -> Option<f64> {
        let input = self.price_per_1k_input? * generation.input_tokens? as f64 / 1000.0;
        let output = self.price_per_1k_output? * generation.output_tokens? as f64 / 1000.0;
        Some(input + output)
    }
}

/// A successful call.
#[derive(Debug, Clone, PartialEq)]
pub struct CallOutcome {
    /// What the model returned.
    pub generation: Generation,
    /// Latency of the successful attempt (zero for a cache hit).
    pub latency: Duration,
    /// Whether the answer came from the response cache.
    pub cached: bool,
    /// Attempts made (0 for a cache hit).
    pub attempts: u32,
}

/// A failed call.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The run was cancelled while the call waited or ran.
    #[error("cancelled")]
    Cancelled,
    /// The model kept failing or failed permanently.
    #[error("{model}: {source} ({})", .stop.describe(*.attempts, .source, *.max_retry_wait))]
    Provider {
        /// The model label.
        model: String,
        /// Attempts made.
        attempts: u32,
        /// The cap on waits between attempts (`--max-retry-wait`).
        max_retry_wait: Duration,
        /// Why no further attempt was made.
        stop: Stop,
        /// The last error.
        #[source]
        source: ProviderError,
    },
    /// The prompt could not be built: a judge prompt over the rendered-prompt limit (no call
    /// is made).
    #[error("prompt: {0}")]
    Prompt(#[from] crate::template::TemplateError),
}

/// Why a call made no further attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The error is not worth retrying.
    Permanent,
    /// `--max-attempts` attempts were made.
    Attempts,
    /// The next attempt would end after `--record-timeout`.
    Deadline {
        /// The limit.
        limit: Duration,
    },
}

impl Stop {
    /// `after 3 attempts, the limit of --max-attempts; the endpoint asked to wait 86400 s,
    /// waits are capped at 60 s by --max-retry-wait`.
    fn describe(self, attempts: u32, last: &ProviderError, max_retry_wait: Duration) -> String {
        let noun = if attempts == 1 { "attempt" } else { "attempts" };
        let mut text = match self {
            Stop::Permanent => format!("after {attempts} {noun}"),
            Stop::Attempts => format!("after {attempts} {noun}, the limit of --max-attempts"),
            Stop::Deadline { limit } => format!(
                "after {attempts} {noun}: the next would end past the {} s of --record-timeout",
                limit.as_secs_f64()
            ),
        };
        if let Some(asked) = last.retry_after() {
            text.push_str(&format!(
                "; the endpoint asked to wait {} s before retrying",
                asked.as_secs_f64()
            ));
            if asked > max_retry_wait {
                text.push_str(&format!(
                    ", more than the {} s of --max-retry-wait",
                    max_retry_wait.as_secs_f64()
                ));
            }
        }
        text
    }
}

#[derive(Debug)]
struct WindowState {
    limit: usize,
    window: usize,
    in_flight: usize,
    successes: usize,
    paused_until: Option<Instant>,
}

/// An AIMD concurrency window shared by all calls to one model.
#[derive(Debug)]
pub struct Window {
    state: Mutex<WindowState>,
    changed: Notify,
}

/// A slot in the window, released on drop.
#[derive(Debug)]
pub struct Slot<'a> {
    window: &'a Window,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut state = self.window.lock();
        state.in_flight = state.in_flight.saturating_sub(1);
        drop(state);
        self.window.changed.notify_waiters();
    }
}

impl Window {
    /// A window starting fully open at `limit` (at least 1).
    pub fn new(limit: usize) -> Window {
        let limit = limit.max(1);
        Window {
            state: Mutex::new(WindowState {
                limit,
                window: limit,
                in_flight: 0,
                successes: 0,
                paused_until: None,
            }),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WindowState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The current window size.
    pub fn size(&self) -> usize {
        self.lock().window
    }

    /// Waits for a free slot (and for any throttling pause to end).
    pub async fn acquire(&self) -> Slot<'_> {
        loop {
            // Register interest before checking, so a release between the check and the wait
            // is not missed.
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let pause = {
                let mut state = self.lock();
                match state.paused_until {
                    Some(until) if until > Instant::now() => Some(until),
                    _ => {
                        state.paused_until = None;
                        if state.in_flight < state.window {
                            state.in_flight += 1;
                            return Slot { window: self };
                        }
                        None
                    }
                }
            };
            match pause {
                Some(until) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(until) => {}
                        _ = &mut notified => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// A success: after `window` consecutive successes the window grows by one.
    pub fn on_success(&self) {
        let mut state = self.lock();
        state.successes += 1;
        if state.successes >= state.window && state.window < state.limit {
            state.window += 1;
            state.successes = 0;
            drop(state);
            self.changed.notify_waiters();
        }
    }

    /// A throttle: halve the window (at least 1) and pause new attempts for `wait`.
    /// Returns the new window size.
    pub fn on_throttle(&self, wait: Duration) -> usize {
        let mut state = self.lock();
        state.window = (state.window / 2).max(1);
        state.successes = 0;
        let until = Instant::now() + wait;
        state.paused_until = Some(
            state
                .paused_until
                .map_or(until, |current| current.max(until)),
        );
        state.window
    }
}

/// Drives the calls to one model.
#[derive(Debug)]
pub struct Caller {
    client: ModelClient,
    config: RunnerConfig,
    window: Window,
    cache: Option<ResponseCache>,
    events: Option<broadcast::Sender<ProgressEvent>>,
    jitter: AtomicU64,
}

impl Caller {
    /// A caller for `client`, with an optional response cache and event channel.
    pub fn new(
        client: ModelClient,
        config: RunnerConfig,
        cache: Option<ResponseCache>,
        events: Option<broadcast::Sender<ProgressEvent>>,
    ) -> Caller {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9_7f4a_7c15);
        Caller {
            window: Window::new(config.concurrency),
            client,
            config,
            cache,
            events,
            jitter: AtomicU64::new(seed),
        }
    }

    /// The model this caller drives.
    pub fn client(&self) -> &ModelClient {
        &self.client
    }

    /// The concurrency window.
    pub fn window(&self) -> &Window {
        &self.window
    }

    /// The request for a rendered prompt.
    pub fn request(
        &self,
        messages: Vec<crate::providers::ChatMessage>,
        prompt_text: String,
    ) -> GenerateRequest {
        GenerateRequest {
            model_id: self.client.model_id.clone(),
            messages,
            prompt_text,
            params: self.client.params.clone(),
        }
    }

    /// Calls the model once for `request`, retrying as configured; answers from the cache when
    /// it can and caches successful answers.
    pub async fn call(
        &self,
        request: &GenerateRequest,
        cancel: &CancellationToken,
    ) -> Result<CallOutcome, CallError> {
        let key = self
            .cache
            .as_ref()
            .map(|_| cache_key(&self.client.provider.cache_scope(), request));
        if let (Some(cache), Some(key)) = (&self.cache, &key) {
            match cache.get(key.clone()).await {
                Ok(Some(generation)) => {
                    return Ok(CallOutcome {
                        generation,
                        latency: Duration::ZERO,
                        cached: true,
                        attempts: 0,
                    });
                }
                Ok(None) => {}
                Err(error) => tracing::warn!(error = %error, "response cache read failed"),
            }
        }
        let outcome = self.call_uncached(request, cancel).await?;
        if let (Some(cache), Some(key)) = (&self.cache, key)
            && let Err(error) = cache.put(key, outcome.generation.clone()).await
        {
            tracing::warn!(error = %error, "response cache write failed");
        }
        Ok(outcome)
    }

    async fn call_uncached(
        &self,
        request: &GenerateRequest,
        cancel: &CancellationToken,
    ) -> Result<CallOutcome, CallError> {
        let mut attempts = 0u32;
        // Set at the first attempt: time spent queueing for the window is not this record's.
        let mut deadline: Option<Instant> = None;
        let mut last_error: Option<ProviderError> = None;
        loop {
            let slot = {
                tokio::select! {
                    _ = cancel.cancelled() => return Err(CallError::Cancelled),
                    slot = self.window.acquire() => slot,
                    // The window may stay paused (throttling) past the deadline.
                    _ = sleep_until_or_forever(deadline) => {
                        return Err(self.give_up(attempts, Stop::Deadline { limit: self.config.record_timeout }, last_error));
                    }
                }
            };
            attempts += 1;
            let started = Instant::now();
            let deadline_at = *deadline.get_or_insert(started + self.config.record_timeout);
            let attempt_timeout = self
                .config
                .timeout
                .min(deadline_at.saturating_duration_since(started));
            let result = tokio::select! {
                _ = cancel.cancelled() => return Err(CallError::Cancelled),
                result = tokio::time::timeout(attempt_timeout, self.client.provider.generate(request)) => result,
            };
            let latency = started.elapsed();
            drop(slot);
            let error = match result {
                Ok(Ok(generation)) => {
                    self.window.on_success();
                    return Ok(CallOutcome {
                        generation,
                        latency,
                        cached: false,
                        attempts,
                    });
                }
                Ok(Err(error)) => error,
                Err(_elapsed) => ProviderError::Transient {
                    provider: self.client.provider.name(),
                    message: format!("timed out after {:?}", attempt_timeout),
                },
            };
            if error.kind() == ErrorKind::Permanent {
                return Err(self.give_up(attempts, Stop::Permanent, Some(error)));
            }
            if attempts >= self.config.max_attempts.max(1) {
                return Err(self.give_up(attempts, Stop::Attempts, Some(error)));
            }
            let wait = match error.kind() {
                ErrorKind::Throttled => error
                    .retry_after()
                    .unwrap_or_else(|| self.backoff(attempts)),
                _ => self.backoff(attempts),
            }
            // Retry-After is obeyed up to a cap: a day-long wait would stall the run, and the
            // window still protects the API (further throttles keep it small).
            .min(self.config.max_retry_wait);
            if Instant::now() + wait >= deadline_at {
                return Err(self.give_up(
                    attempts,
                    Stop::Deadline {
                        limit: self.config.record_timeout,
                    },
                    Some(error),
                ));
            }
            let wait = if error.kind() == ErrorKind::Throttled {
                let window = self.window.on_throttle(wait);
                tracing::debug!(model = %self.client.label, window, ?wait, "throttled");
                if let Some(events) = &self.events {
                    let _ = events.send(ProgressEvent::Throttled {
                        model: self.client.label.clone(),
                        window,
                    });
                }
                // The window's pause makes every attempt of this model wait; this one too.
                Duration::ZERO
            } else {
                tracing::debug!(model = %self.client.label, attempt = attempts, error = %error, "retrying");
                wait
            };
            last_error = Some(error);
            tokio::select! {
                _ = cancel.cancelled() => return Err(CallError::Cancelled),
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// The error of a call that stops after `attempts` attempts.
    fn give_up(&self, attempts: u32, stop: Stop, last: Option<ProviderError>) -> CallError {
        CallError::Provider {
            model: self.client.label.clone(),
            attempts,
            max_retry_wait: self.config.max_retry_wait,
            stop,
            source: last.unwrap_or_else(|| ProviderError::Transient {
                provider: self.client.provider.name(),
                message: "no attempt could start before --record-timeout".to_owned(),
            }),
        }
    }

    /// Full-jitter exponential back-off for the `n`th failed attempt (1-based).
    fn backoff(&self, n: u32) -> Duration {
        let exponent = n.saturating_sub(1).min(20);
        let ceiling = self
            .config
            .backoff_base
            .saturating_mul(1u32 << exponent)
            .min(self.config.backoff_max);
        let fraction = (self.next_random() >> 11) as f64 / (1u64 << 53) as f64;
        ceiling.mul_f64(fraction)
    }

    /// splitmix64: jitter needs spread, not cryptographic quality.
    fn next_random(&self) -> u64 {
        let mut z = self
            .jitter
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until_or_forever(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::providers::{BoxFuture, ChatMessage, Role};

    /// A provider that plays a script of outcomes by call number, then succeeds.
    struct Scripted {
        script: Vec<Option<ProviderError>>,
        calls: AtomicUsize,
        in_flight: AtomicUsize,
        max_in_flight: AtomicUsize,
        latency: Duration,
    }

    impl Scripted {
        fn new(script: Vec<Option<ProviderError>>, latency: Duration) -> Arc<Scripted> {
            Arc::new(Scripted {
                script,
                calls: AtomicUsize::new(0),
                in_flight: AtomicUsize::new(0),
                max_in_flight: AtomicUsize::new(0),
                latency,
            })
        }
    }

    impl ModelProvider for Scripted {
        fn name(&self) -> &'static str {
            "scripted"
        }
        fn generate<'a>(
            &'a self,
            request: &'a GenerateRequest,
        ) -> BoxFuture<'a, Result<Generation, ProviderError>> {
            Box::pin(async move {
                let n = self.calls.fetch_add(1, Ordering::SeqCst);
                let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                self.max_in_flight.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(self.latency).await;
                self.in_flight.fetch_sub(1, Ordering::SeqCst);
                match self.script.get(n) {
                    Some(Some(error)) => Err(clone_error(error)),
                    _ => Ok(Generation {
                        text: format!("echo {}", request.prompt_text),
                        input_tokens: Some(10),
                        output_tokens: Some(5),
                    }),
                }
            })
        }
    }

    fn clone_error(error: &ProviderError) -> ProviderError {
        match error {
            ProviderError::Throttled {
                message,
                retry_after,
                ..
            } => ProviderError::Throttled {
                provider: "scripted",
                message: message.clone(),
                retry_after: *retry_after,
            },
            ProviderError::Transient { message, .. } => ProviderError::Transient {
                provider: "scripted",
                message: message.clone(),
            },
            ProviderError::Permanent { message, .. } => ProviderError::Permanent {
                provider: "scripted",
                message: message.clone(),
            },
            ProviderError::InvalidResponse { message, .. } => ProviderError::InvalidResponse {
                provider: "scripted",
                message: message.clone(),
            },
        }
    }

    fn transient() -> Option<ProviderError> {
        Some(ProviderError::Transient {
            provider: "scripted",
            message: "503".into(),
        })
    }
    fn permanent() -> Option<ProviderError> {
        Some(ProviderError::Permanent {
            provider: "scripted",
            message: "400".into(),
        })
    }
    fn throttled() -> Option<ProviderError> {
        Some(ProviderError::Throttled {
            provider: "scripted",
            message: "429".into(),
            retry_after: Some(Duration::from_millis(5)),
        })
    }

    fn fast_config(concurrency: usize) -> RunnerConfig {
        RunnerConfig {
            concurrency,
            max_attempts: 3,
            timeout: Duration::from_millis(200),
            max_retry_wait: Duration::from_secs(60),
            record_timeout: Duration::from_secs(600),
            backoff_base: Duration::from_millis(1),
            backoff_max: Duration::from_millis(5),
        }
    }

    fn caller(
        provider: Arc<Scripted>,
        config: RunnerConfig,
        cache: Option<ResponseCache>,
    ) -> Caller {
        let client = ModelClient {
            label: "scripted:m".into(),
            provider,
            model_id: "m".into(),
            params: InferenceParams::default(),
            price_per_1k_input: Some(1.0),
            price_per_1k_output: Some(2.0),
        };
        Caller::new(client, config, cache, None)
    }

    fn request(prompt: &str) -> GenerateRequest {
        GenerateRequest {
            model_id: "m".into(),
            messages: vec![ChatMessage {
                role: Role::User,
                content: prompt.into(),
            }],
            prompt_text: prompt.into(),
            params: InferenceParams::default(),
        }
    }

    /// Runs one call against a script; returns (ok, provider calls made).
    async fn check(script: Vec<Option<ProviderError>>, expected_ok: bool, expected_calls: usize) {
        let provider = Scripted::new(script, Duration::ZERO);
        let caller = caller(provider.clone(), fast_config(4), None);
        let res = caller.call(&request("p"), &CancellationToken::new()).await;
        assert_eq!(res.is_ok(), expected_ok, "{res:?}");
        assert_eq!(provider.calls.load(Ordering::SeqCst), expected_calls);
    }

    #[tokio::test]
    async fn retry_rules() {
        check(vec![], true, 1).await;
        check(vec![transient()], true, 2).await;
        check(vec![transient(), transient()], true, 3).await;
        check(vec![transient(), transient(), transient()], false, 3).await;
        check(vec![permanent()], false, 1).await;
        // Throttled attempts count against the attempts like any other.
        check(vec![throttled(), throttled()], true, 3).await;
        check(vec![throttled(), transient(), throttled()], false, 3).await;
        check((0..6).map(|_| throttled()).collect(), false, 3).await;
    }

    fn throttled_for(retry_after: Duration) -> Option<ProviderError> {
        Some(ProviderError::Throttled {
            provider: "scripted",
            message: "HTTP 429: slow down".into(),
            retry_after: Some(retry_after),
        })
    }

    /// Runs one call on paused time; returns how long it took (tokio's clock) and its result.
    async fn timed(
        script: Vec<Option<ProviderError>>,
        latency: Duration,
        config: RunnerConfig,
    ) -> (Duration, Result<CallOutcome, CallError>, usize) {
        let provider = Scripted::new(script, latency);
        let caller = caller(provider.clone(), config, None);
        let started = Instant::now();
        let res = caller.call(&request("p"), &CancellationToken::new()).await;
        (
            started.elapsed(),
            res,
            provider.calls.load(Ordering::SeqCst),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn regression_retry_after_is_capped_and_counted() {
        // `Retry-After: 5` with two attempts: one wait of 5 s, then the record fails (it used
        // to take 21 attempts and 100 s, throttles not counting against the attempts).
        let config = RunnerConfig {
            max_attempts: 2,
            ..fast_config(1)
        };
        let script = (0..30)
            .map(|_| throttled_for(Duration::from_secs(5)))
            .collect();
        let (elapsed, res, calls) = timed(script, Duration::ZERO, config.clone()).await;
        assert_eq!(calls, 2);
        assert!(elapsed < Duration::from_secs(6), "{elapsed:?}");
        assert_eq!(
            res.unwrap_err().to_string(),
            "scripted:m: throttled by scripted: HTTP 429: slow down (after 2 attempts, the limit of --max-attempts; the endpoint asked to wait 5 s before retrying)"
        );
        // `Retry-After: 86400`: each wait is capped, and the error says what was asked.
        let config = RunnerConfig {
            max_attempts: 3,
            max_retry_wait: Duration::from_secs(60),
            ..fast_config(1)
        };
        let script = (0..30)
            .map(|_| throttled_for(Duration::from_secs(86_400)))
            .collect();
        let (elapsed, res, calls) = timed(script, Duration::ZERO, config).await;
        assert_eq!(calls, 3);
        assert!(elapsed <= Duration::from_secs(121), "{elapsed:?}");
        assert!(
            res.unwrap_err().to_string().ends_with(
                "(after 3 attempts, the limit of --max-attempts; the endpoint asked to wait 86400 s before retrying, more than the 60 s of --max-retry-wait)"
            )
        );
    }

    #[tokio::test(start_paused = true)]
    async fn regression_a_call_never_outlasts_the_record_timeout() {
        let config = RunnerConfig {
            max_attempts: 100,
            timeout: Duration::from_secs(60),
            record_timeout: Duration::from_secs(90),
            ..fast_config(1)
        };
        // A hanging endpoint: the second attempt is cut at the deadline, not after 60 s more.
        let (elapsed, res, calls) =
            timed(Vec::new(), Duration::from_secs(3600), config.clone()).await;
        assert!(elapsed <= Duration::from_secs(91), "{elapsed:?}");
        assert_eq!(calls, 2);
        let message = res.unwrap_err().to_string();
        assert!(
            message.ends_with(
                "(after 2 attempts: the next would end past the 90 s of --record-timeout)"
            ),
            "{message}"
        );
        // A wait that would end past the deadline is not started.
        let script = (0..10)
            .map(|_| throttled_for(Duration::from_secs(50)))
            .collect();
        let (elapsed, res, calls) = timed(script, Duration::ZERO, config).await;
        assert_eq!(calls, 2, "{res:?}");
        assert!(elapsed <= Duration::from_secs(51), "{elapsed:?}");
        assert!(matches!(
            res,
            Err(CallError::Provider {
                stop: Stop::Deadline { .. },
                ..
            })
        ));
    }

    #[tokio::test]
    async fn timeout_is_transient_and_retried() {
        let provider = Scripted::new(vec![], Duration::from_millis(300));
        let caller = caller(provider.clone(), fast_config(1), None);
        let res = caller.call(&request("p"), &CancellationToken::new()).await;
        assert!(
            matches!(res, Err(CallError::Provider { attempts: 3, .. })),
            "{res:?}"
        );
        assert!(res.unwrap_err().to_string().contains("timed out"));
    }

    #[tokio::test]
    async fn concurrency_never_exceeds_the_window() {
        let provider = Scripted::new(vec![], Duration::from_millis(10));
        let caller = Arc::new(caller(provider.clone(), fast_config(3), None));
        let cancel = CancellationToken::new();
        let calls = (0..20).map(|i| {
            let caller = caller.clone();
            let cancel = cancel.clone();
            async move { caller.call(&request(&i.to_string()), &cancel).await.is_ok() }
        });
        let results = futures::future::join_all(calls).await;
        assert!(results.into_iter().all(|ok| ok));
        assert_eq!(provider.max_in_flight.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn window_is_aimd() {
        let window = Window::new(8);
        assert_eq!(window.on_throttle(Duration::ZERO), 4);
        assert_eq!(window.on_throttle(Duration::ZERO), 2);
        assert_eq!(window.on_throttle(Duration::ZERO), 1);
        assert_eq!(window.on_throttle(Duration::ZERO), 1);
        window.on_success();
        assert_eq!(window.size(), 2);
        window.on_success();
        assert_eq!(window.size(), 2);
        window.on_success();
        assert_eq!(window.size(), 3);
        for _ in 0..100 {
            window.on_success();
        }
        assert_eq!(window.size(), 8);
    }

    #[tokio::test]
    async fn cache_answers_second_call() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ResponseCache::open_dir(dir.path()).unwrap();
        let provider = Scripted::new(vec![], Duration::ZERO);
        let caller = caller(provider.clone(), fast_config(2), Some(cache));
        let cancel = CancellationToken::new();
        let first = caller.call(&request("p"), &cancel).await.unwrap();
        let second = caller.call(&request("p"), &cancel).await.unwrap();
        assert!(!first.cached && second.cached);
        assert_eq!(first.generation, second.generation);
        assert_eq!(provider.calls.load(Ordering::SeqCst), 1);
        assert_eq!(caller.client().cost(&first.generation), Some(0.02));
    }

    #[tokio::test]
    async fn errors_are_not_cached() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ResponseCache::open_dir(dir.path()).unwrap();
        let provider = Scripted::new(vec![permanent()], Duration::ZERO);
        let caller = caller(provider.clone(), fast_config(2), Some(cache));
        let cancel = CancellationToken::new();
        assert!(caller.call(&request("p"), &cancel).await.is_err());
        assert!(caller.call(&request("p"), &cancel).await.is_ok());
        assert_eq!(provider.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn cancel_abandons_in_flight_call() {
        let provider = Scripted::new(vec![], Duration::from_secs(30));
        let caller = caller(provider, fast_config(1), None);
        let cancel = CancellationToken::new();
        let trigger = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            trigger.cancel();
        });
        let res = caller.call(&request("p"), &cancel).await;
        assert!(matches!(res, Err(CallError::Cancelled)));
    }

    fn check_call_error(attempts: u32, expected: &str) {
        let error = CallError::Provider {
            model: "m".into(),
            attempts,
            max_retry_wait: DEFAULT_MAX_RETRY_WAIT,
            stop: Stop::Permanent,
            source: ProviderError::Permanent {
                provider: "openai",
                message: "HTTP 400".into(),
            },
        };
        assert_eq!(error.to_string(), expected);
    }

    #[test]
    fn regression_one_attempt_is_singular() {
        check_call_error(
            1,
            "m: openai rejected the request: HTTP 400 (after 1 attempt)",
        );
        check_call_error(
            3,
            "m: openai rejected the request: HTTP 400 (after 3 attempts)",
        );
    }
}
