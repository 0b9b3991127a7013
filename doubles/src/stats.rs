//! Counters a [`crate::ModelServer`] keeps: requests, concurrency and per-prompt counts, plus a
//! bounded log of the last requests received.
//!
//! Invariant: memory stays bounded by the number of distinct prompts (16 bytes each: prompts are
//! keyed by a 64-bit hash, not stored) plus [`RECEIVED_LOG_CAPACITY`] logged requests, so the
//! server can sit in the same process as a 100,000-record memory benchmark.

use std::collections::{HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// How many received requests are kept for inspection (the oldest are dropped).
pub const RECEIVED_LOG_CAPACITY: usize = 256;

/// Which wire protocol a request used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// OpenAI `POST /v1/chat/completions`.
    OpenAiChat,
    /// Bedrock Runtime `POST /model/{modelId}/converse`.
    BedrockConverse,
    /// Bedrock Runtime `POST /model/{modelId}/invoke` (Anthropic messages body).
    BedrockInvoke,
    /// SageMaker Runtime `POST /endpoints/{EndpointName}/invocations`.
    SageMakerInvoke,
    /// SageMaker `ListEndpoints` (awsJson1_1).
    SageMakerListEndpoints,
}

/// One request as the server received it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedRequest {
    /// 1-based request number.
    pub seq: u64,
    /// The protocol.
    pub protocol: Protocol,
    /// Model id, endpoint name, or empty for `ListEndpoints`.
    pub model: String,
    /// The prompt text as the answer function saw it.
    pub prompt: String,
    /// The system prompt, if any.
    pub system: Option<String>,
    /// `Content-Type` header.
    pub content_type: Option<String>,
    /// `Accept` header.
    pub accept: Option<String>,
    /// `Authorization` header (tests use fake keys only).
    pub authorization: Option<String>,
    /// The body parsed as JSON (`Null` if it was not JSON).
    pub body: serde_json::Value,
}

/// Per-prompt counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PromptCount {
    /// Requests received with this prompt.
    pub requests: u64,
    /// Requests with this prompt that got a successful answer.
    pub successes: u64,
}

/// A snapshot of the server's counters.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Requests received (all protocols).
    pub requests: u64,
    /// Requests answered successfully.
    pub successes: u64,
    /// Requests that got an injected fault.
    pub faults: u64,
    /// Requests being handled at the time of the snapshot (a [`crate::Fault::Hang`] stops
    /// counting when the hang starts, since its client has timed out by design).
    pub in_flight: u64,
    /// The most requests ever handled at the same time (same rule).
    pub max_in_flight: u64,
    per_prompt: HashMap<u64, PromptCount>,
}

impl Stats {
    /// Counters for one prompt text (zero if never seen).
    pub fn prompt(&self, prompt: &str) -> PromptCount {
        self.per_prompt
            .get(&prompt_key(prompt))
            .copied()
            .unwrap_or_default()
    }

    /// How many distinct prompts were received.
    pub fn distinct_prompts(&self) -> usize {
        self.per_prompt.len()
    }

    /// How many distinct prompts were answered successfully more than once.
    pub fn prompts_answered_more_than_once(&self) -> usize {
        self.per_prompt
            .values()
            .filter(|count| count.successes > 1)
            .count()
    }
}

fn prompt_key(prompt: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    prompt.hash(&mut hasher);
    hasher.finish()
}

/// The live counters behind [`Stats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    requests: AtomicU64,
    successes: AtomicU64,
    faults: AtomicU64,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    per_prompt: Mutex<HashMap<u64, PromptCount>>,
    received: Mutex<VecDeque<ReceivedRequest>>,
}

/// Decrements the in-flight count when a request ends, however it ends (including when the
/// client goes away and the handler is dropped).
pub(crate) struct InFlight<'a>(&'a Counters);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Counters {
    /// Counts a new request; returns its 1-based number and the in-flight guard.
    pub(crate) fn begin(&self) -> (u64, InFlight<'_>) {
        let seq = self.requests.fetch_add(1, Ordering::SeqCst) + 1;
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        (seq, InFlight(self))
    }

    pub(crate) fn record(&self, request: ReceivedRequest) {
        self.prompt_counts(&request.prompt, |count| count.requests += 1);
        let mut log = lock(&self.received);
        if log.len() == RECEIVED_LOG_CAPACITY {
            log.pop_front();
        }
        log.push_back(request);
    }

    pub(crate) fn success(&self, prompt: &str) {
        self.successes.fetch_add(1, Ordering::SeqCst);
        self.prompt_counts(prompt, |count| count.successes += 1);
    }

    pub(crate) fn fault(&self) {
        self.faults.fetch_add(1, Ordering::SeqCst);
    }

    fn prompt_counts(&self, prompt: &str, update: impl FnOnce(&mut PromptCount)) {
        update(
            lock(&self.per_prompt)
                .entry(prompt_key(prompt))
                .or_default(),
        );
    }

    pub(crate) fn snapshot(&self) -> Stats {
        Stats {
            requests: self.requests.load(Ordering::SeqCst),
            successes: self.successes.load(Ordering::SeqCst),
            faults: self.faults.load(Ordering::SeqCst),
            in_flight: self.in_flight.load(Ordering::SeqCst),
            max_in_flight: self.max_in_flight.load(Ordering::SeqCst),
            per_prompt: lock(&self.per_prompt).clone(),
        }
    }

    pub(crate) fn received(&self) -> Vec<ReceivedRequest> {
        lock(&self.received).iter().cloned().collect()
    }
}

/// Locks a mutex, recovering the data if a holder panicked (counters stay usable).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
