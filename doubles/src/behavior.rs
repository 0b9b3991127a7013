//! What a [`crate::ModelServer`] does with a request: how long it waits, what it answers and
//! which requests fail how.
//!
//! Invariant: everything here is deterministic. Faults are chosen by request number (1-based, in
//! arrival order) or by prompt content, and latency jitter comes from a seeded hash of the
//! request number, so a test that sends requests one at a time sees the same behaviour every run.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// The server's configuration. `Behavior::default()` answers instantly by echoing the prompt.
#[derive(Debug, Clone, Default)]
pub struct Behavior {
    /// Fixed delay before every response.
    pub latency: Duration,
    /// Extra random delay in `0..=jitter`, derived from `seed` and the request number.
    pub jitter: Duration,
    /// Seed of the jitter.
    pub seed: u64,
    /// What to reply.
    pub answer: Answer,
    /// Which requests fail and how.
    pub faults: FaultPlan,
    /// When set, OpenAI requests must carry `Authorization: Bearer <key>`; others get a 401.
    pub api_key: Option<String>,
    /// Endpoint names returned by SageMaker `ListEndpoints`.
    pub endpoints: Vec<String>,
}

impl Behavior {
    /// Echo with a fixed latency (what benchmarks use).
    pub fn with_latency(latency: Duration) -> Behavior {
        Behavior {
            latency,
            ..Behavior::default()
        }
    }

    /// The delay before answering request number `seq`.
    pub(crate) fn delay(&self, seq: u64) -> Duration {
        if self.jitter.is_zero() {
            return self.latency;
        }
        let jitter_nanos = u64::try_from(self.jitter.as_nanos()).unwrap_or(u64::MAX);
        let extra = splitmix64(self.seed ^ seq) % jitter_nanos.saturating_add(1);
        self.latency + Duration::from_nanos(extra)
    }
}

/// SplitMix64: a tiny, well-distributed hash for deterministic jitter.
fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// What the model sees of a request, for [`Answer::Fn`].
#[derive(Debug, Clone, Copy)]
pub struct Prompt<'a> {
    /// The model id (OpenAI `model`, Bedrock model id, SageMaker endpoint name).
    pub model: &'a str,
    /// The prompt text: the last user message of a chat request, `inputs` of a text-generation
    /// request, or the whole body otherwise.
    pub text: &'a str,
    /// The system prompt, if the request had one.
    pub system: Option<&'a str>,
}

/// How the server computes its reply.
#[derive(Clone, Default)]
pub enum Answer {
    /// Reply with the prompt text.
    #[default]
    Echo,
    /// Always the same reply.
    Fixed(String),
    /// The reply of the first rule whose substring occurs in the prompt, else `default`.
    Map {
        /// `(substring, reply)` pairs, tried in order.
        rules: Vec<(String, String)>,
        /// The reply when no rule matches.
        default: String,
    },
    /// Any function of the prompt.
    Fn(Arc<dyn Fn(&Prompt<'_>) -> String + Send + Sync>),
}

impl Answer {
    /// Builds an [`Answer::Fn`].
    pub fn from_fn(answer: impl Fn(&Prompt<'_>) -> String + Send + Sync + 'static) -> Answer {
        Answer::Fn(Arc::new(answer))
    }

    pub(crate) fn reply(&self, prompt: &Prompt<'_>) -> String {
        match self {
            Answer::Echo => prompt.text.to_owned(),
            Answer::Fixed(reply) => reply.clone(),
            Answer::Map { rules, default } => rules
                .iter()
                .find(|(needle, _)| prompt.text.contains(needle.as_str()))
                .map_or_else(|| default.clone(), |(_, reply)| reply.clone()),
            Answer::Fn(answer) => answer(prompt),
        }
    }
}

impl fmt::Debug for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Answer::Echo => f.write_str("Echo"),
            Answer::Fixed(reply) => f.debug_tuple("Fixed").field(reply).finish(),
            Answer::Map { rules, default } => f
                .debug_struct("Map")
                .field("rules", rules)
                .field("default", default)
                .finish(),
            Answer::Fn(_) => f.write_str("Fn(..)"),
        }
    }
}

/// One way a request can fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Throttling: OpenAI 429 `rate_limit_exceeded`, Bedrock 429 `ThrottlingException`,
    /// SageMaker 400 `ThrottlingException`. `retry_after` is sent verbatim as the `Retry-After`
    /// header (seconds or an HTTP date).
    Throttle {
        /// The `Retry-After` header value.
        retry_after: Option<String>,
    },
    /// An error status with the protocol's error body and type for that status (400 validation,
    /// 401/403 auth, 404 not found, 408 model timeout, 424 SageMaker model error, 500 internal,
    /// 503 unavailable).
    Status(u16),
    /// Waits this long (after the latency), then answers normally: longer than the client's
    /// timeout, the client sees a timeout.
    Hang(Duration),
    /// Closes the connection without a complete response.
    Drop,
    /// Answers 200 with the start of the protocol's JSON and then an endless body (chunked,
    /// no `Content-Length`), produced as the client reads it: a client without a response
    /// limit reads until its memory runs out.
    EndlessBody,
    /// Answers 200 with an HTML page (`text/html`), as a wrong base URL or a login portal does.
    HtmlPage,
    /// Answers 401 with an error message that repeats the `Authorization` header it got, as
    /// some gateways do with a wrong key.
    EchoKey,
}

impl Fault {
    /// A throttle with `Retry-After: <seconds>`.
    pub fn throttle_secs(seconds: u64) -> Fault {
        Fault::Throttle {
            retry_after: Some(seconds.to_string()),
        }
    }
}

/// When a fault rule applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum When {
    /// Request number `n` (1-based, counted over all protocols in arrival order).
    Request(u64),
    /// Requests `from..=to` (1-based, inclusive).
    Requests {
        /// First request number.
        from: u64,
        /// Last request number.
        to: u64,
    },
    /// Every `n`-th request (n, 2n, 3n ...).
    Every(u64),
    /// Requests whose prompt text contains this substring.
    PromptContains(String),
    /// Requests for this model id (OpenAI `model`, Bedrock model id, SageMaker endpoint), so
    /// that one of several models side by side can be made to fail.
    Model(String),
    /// Every request.
    Always,
}

impl When {
    fn matches(&self, seq: u64, model: &str, prompt: &str) -> bool {
        match self {
            When::Model(id) => model == id,
            When::Request(n) => seq == *n,
            When::Requests { from, to } => (*from..=*to).contains(&seq),
            When::Every(n) => *n > 0 && seq.is_multiple_of(*n),
            When::PromptContains(needle) => prompt.contains(needle.as_str()),
            When::Always => true,
        }
    }
}

/// A rule of a [`FaultPlan`]: when it matches, how often it may fire, and the fault.
#[derive(Debug)]
struct FaultRule {
    when: When,
    fault: Fault,
    /// How many more times the rule may fire; `None` is unlimited.
    remaining: Option<AtomicU32>,
}

/// Scripted faults; the first matching rule that still has firings left wins. Clones share the
/// firing counters of [`FaultPlan::on_times`] rules (a cloned [`Behavior`] is the same script).
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    rules: Arc<Vec<FaultRule>>,
}

impl FaultPlan {
    /// No faults.
    pub fn none() -> FaultPlan {
        FaultPlan::default()
    }

    /// Adds a rule that fires every time it matches.
    pub fn on(self, when: When, fault: Fault) -> FaultPlan {
        self.push(when, fault, None)
    }

    /// Adds a rule that fires on the first `times` matching requests only (for example "the
    /// first two requests for this prompt are throttled, then it succeeds").
    pub fn on_times(self, when: When, times: u32, fault: Fault) -> FaultPlan {
        self.push(when, fault, Some(times))
    }

    fn push(self, when: When, fault: Fault, times: Option<u32>) -> FaultPlan {
        let mut rules: Vec<FaultRule> = Arc::try_unwrap(self.rules).unwrap_or_else(|shared| {
            shared
                .iter()
                .map(|rule| FaultRule {
                    when: rule.when.clone(),
                    fault: rule.fault.clone(),
                    remaining: rule
                        .remaining
                        .as_ref()
                        .map(|left| AtomicU32::new(left.load(Ordering::SeqCst))),
                })
                .collect()
        });
        rules.push(FaultRule {
            when,
            fault,
            remaining: times.map(AtomicU32::new),
        });
        FaultPlan {
            rules: Arc::new(rules),
        }
    }

    /// The fault for request `seq` for `model` with this prompt, consuming one firing of the
    /// rule.
    pub(crate) fn pick(&self, seq: u64, model: &str, prompt: &str) -> Option<Fault> {
        self.rules.iter().find_map(|rule| {
            if !rule.when.matches(seq, model, prompt) {
                return None;
            }
            match &rule.remaining {
                None => Some(rule.fault.clone()),
                Some(left) => left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .ok()
                    .map(|_| rule.fault.clone()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(plan: &FaultPlan, requests: &[(u64, &str)], expected: &[Option<Fault>]) {
        let got: Vec<Option<Fault>> = requests
            .iter()
            .map(|(seq, prompt)| plan.pick(*seq, "m", prompt))
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn request_number_rules() {
        let plan = FaultPlan::none()
            .on(When::Request(2), Fault::Status(500))
            .on(When::Every(3), Fault::Drop);
        check(
            &plan,
            &[(1, "a"), (2, "a"), (3, "a"), (6, "a")],
            &[
                None,
                Some(Fault::Status(500)),
                Some(Fault::Drop),
                Some(Fault::Drop),
            ],
        );
    }

    #[test]
    fn limited_prompt_rule_fires_then_stops() {
        let plan = FaultPlan::none().on_times(
            When::PromptContains("x".into()),
            2,
            Fault::throttle_secs(1),
        );
        let throttle = Some(Fault::throttle_secs(1));
        check(
            &plan,
            &[(1, "x"), (2, "y"), (3, "x"), (4, "x")],
            &[throttle.clone(), None, throttle, None],
        );
    }

    #[test]
    fn model_rule_matches_one_model_only() {
        let plan = FaultPlan::none().on(When::Model("bad".into()), Fault::Status(500));
        assert_eq!(plan.pick(1, "bad", "p"), Some(Fault::Status(500)));
        assert_eq!(plan.pick(2, "good", "p"), None);
        assert_eq!(plan.pick(3, "bad-2", "p"), None);
    }

    #[test]
    fn jitter_is_deterministic_and_bounded() {
        let behavior = Behavior {
            latency: Duration::from_millis(10),
            jitter: Duration::from_millis(5),
            seed: 7,
            ..Behavior::default()
        };
        for seq in 0..100 {
            let delay = behavior.delay(seq);
            assert_eq!(delay, behavior.delay(seq));
            assert!(delay >= Duration::from_millis(10) && delay <= Duration::from_millis(15));
        }
    }

    #[test]
    fn answers() {
        let prompt = Prompt {
            model: "m",
            text: "what is 2+2",
            system: None,
        };
        let map = Answer::Map {
            rules: vec![("2+2".into(), "4".into())],
            default: "?".into(),
        };
        assert_eq!(map.reply(&prompt), "4");
        assert_eq!(Answer::Echo.reply(&prompt), "what is 2+2");
        assert_eq!(Answer::from_fn(|p| p.model.to_owned()).reply(&prompt), "m");
    }
}
