//! The pure rules of batch jobs: Bedrock's quotas on a job's records and file size, how a
//! model's selected records are cut into jobs, and the names a run gives its jobs, their
//! records and their idempotency tokens (all derived from the run, the phase (answers or a
//! judge's verdicts) and the retry attempt, never random, so a restarted process names the
//! same jobs). No IO, no clock.

/// The fewest records a Bedrock batch job takes (fewer: the model runs online).
pub const MIN_RECORDS_PER_JOB: usize = 100;
/// The most records a Bedrock batch job takes.
pub const MAX_RECORDS_PER_JOB: usize = 50_000;
/// The largest input file of a job (Bedrock: 1 GB).
pub const MAX_FILE_BYTES: u64 = 1_000_000_000;

/// How many records go into each job when a model has `n` selected records and a job takes at
/// most `max`: the fewest jobs, balanced (100,001 records → 3 jobs of 33,334, never a job of
/// 1). `n` is at least [`MIN_RECORDS_PER_JOB`] in batch mode, so each job gets at least that
/// many when `max ≥ 2 × MIN_RECORDS_PER_JOB`.
pub fn records_per_job(n: usize, max: usize) -> usize {
    let max = max.max(1);
    let jobs = n.div_ceil(max).max(1);
    n.div_ceil(jobs).max(1)
}

/// The `recordId` of the record at selection `position`: 11 digits, like Bedrock's own ids.
pub fn record_id(position: usize) -> String {
    format!("{position:011}")
}

/// The selection position of a `recordId` this run wrote; `None` for anything else.
pub fn parse_record_id(record_id: &str) -> Option<usize> {
    (record_id.len() == 11 && record_id.bytes().all(|byte| byte.is_ascii_digit()))
        .then(|| record_id.parse().ok())
        .flatten()
}

/// The run id in the characters job names and tokens allow (`[a-zA-Z0-9-]`).
fn clean(run_id: &str) -> String {
    run_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// What a job's requests are: the models' answers, or judge `judge`'s verdicts on them (a
/// batch run's second phase). Part of every name, token and key of the job, so the phases of a
/// run never share one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Phase {
    /// The models' answers.
    #[default]
    Answers,
    /// The verdicts of the run's judge at this position.
    Judge {
        /// The judge's position in the run.
        judge: usize,
    },
}

impl Phase {
    /// The part of names and keys that tells the phase: empty for answers (the names runs had
    /// before judges ran in batch), `j{judge}` for a judge.
    fn tag(self) -> String {
        match self {
            Phase::Answers => String::new(),
            Phase::Judge { judge } => format!("j{judge}"),
        }
    }

    /// `answers` or `judges`, for progress lines.
    pub fn label(self) -> &'static str {
        match self {
            Phase::Answers => "answers",
            Phase::Judge { .. } => "judges",
        }
    }
}

/// The scope a retry's jobs are named in: `{root}-r{attempt}`, where `root` is the run the
/// retries started from. Two retries of the same attempt (a retry created twice) name the same
/// jobs, so the second create gets the first's job; the next attempt names new ones.
pub fn retry_scope(root: &str, attempt: u32) -> String {
    format!("{root}-r{attempt}")
}

/// The name of job `chunk` of column `model_order` in `phase` of the run (or retry) `scope`
/// (at most 63 characters, Bedrock's pattern).
pub fn job_name(scope: &str, phase: Phase, model_order: usize, chunk: usize) -> String {
    let tag = phase.tag();
    let tag = if tag.is_empty() {
        tag
    } else {
        format!("-{tag}")
    };
    let suffix = format!("{tag}-m{model_order}-c{chunk}");
    let mut base = format!("llm-eval-{}", clean(scope));
    base.truncate(63 - suffix.len().min(40));
    format!("{}{suffix}", base.trim_end_matches('-'))
}

/// The `clientRequestToken` of job `chunk` of column `model_order` in `phase` of `scope`: the
/// same (scope, phase, column, model, chunk) always gives the same token, so a create that is
/// retried (after a timeout, a throttle, or a restart) returns the job already created instead
/// of starting a second one.
pub fn client_request_token(
    scope: &str,
    phase: Phase,
    model_order: usize,
    model_id: &str,
    chunk: usize,
) -> String {
    // FNV-1a of the model id keeps the token short and within `[a-zA-Z0-9-]`.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in model_id.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let tag = phase.tag();
    let tag = if tag.is_empty() {
        tag
    } else {
        format!("-{tag}")
    };
    let mut token = format!("{}{tag}-m{model_order}-{hash:016x}-c{chunk}", clean(scope));
    token.truncate(256);
    token
}

/// The S3 key prefix of a run's (or retry's) batch objects: `{prefix}/{scope}`.
pub fn run_prefix(prefix: &str, scope: &str) -> String {
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        clean(scope)
    } else {
        format!("{prefix}/{}", clean(scope))
    }
}

fn phase_dir(run_prefix: &str, phase: Phase) -> String {
    match phase {
        Phase::Answers => run_prefix.to_owned(),
        phase => format!("{run_prefix}/{}", phase.tag()),
    }
}

/// The input object key of job `chunk` of column `model_order` in `phase`.
pub fn input_key(run_prefix: &str, phase: Phase, model_order: usize, chunk: usize) -> String {
    format!(
        "{}/m{model_order}/c{chunk}/input.jsonl",
        phase_dir(run_prefix, phase)
    )
}

/// The output prefix (ends in `/`) of job `chunk` of column `model_order` in `phase`.
pub fn output_prefix(run_prefix: &str, phase: Phase, model_order: usize, chunk: usize) -> String {
    format!(
        "{}/m{model_order}/c{chunk}/output/",
        phase_dir(run_prefix, phase)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_are_balanced_within_quotas() {
        for (n, expected) in [
            (100, 100),
            (1_000, 1_000),
            (50_000, 50_000),
            (50_001, 25_001),
            (100_000, 50_000),
            (100_001, 33_334),
        ] {
            let per_job = records_per_job(n, MAX_RECORDS_PER_JOB);
            assert_eq!(per_job, expected, "{n} records");
            assert!(per_job <= MAX_RECORDS_PER_JOB);
            let last = n - (n.div_ceil(per_job) - 1) * per_job;
            assert!(last >= MIN_RECORDS_PER_JOB, "{n}: last job has {last}");
        }
        assert_eq!(records_per_job(250, 100), 84);
        assert_eq!(records_per_job(0, 100), 1);
    }

    #[test]
    fn record_ids_round_trip() {
        assert_eq!(record_id(42), "00000000042");
        assert_eq!(parse_record_id(&record_id(99_999)), Some(99_999));
        assert_eq!(parse_record_id("3223593EFGH"), None);
        assert_eq!(parse_record_id("42"), None);
    }

    #[test]
    fn names_are_deterministic_and_valid() {
        let run = "20261207T015510Z-ab12";
        let answers = Phase::Answers;
        let judge = Phase::Judge { judge: 1 };
        let name = job_name(run, answers, 1, 3);
        assert_eq!(name, "llm-eval-20261207T015510Z-ab12-m1-c3");
        assert_eq!(
            job_name(&retry_scope(run, 2), judge, 1, 3),
            "llm-eval-20261207T015510Z-ab12-r2-j1-m1-c3"
        );
        assert_eq!(job_name(&"x".repeat(200), answers, 12, 345).len(), 63);
        assert_eq!(job_name(&"x".repeat(200), judge, 12, 345).len(), 63);
        let haiku = "anthropic.claude-3-haiku-20240307-v1:0";
        let token = client_request_token(run, answers, 0, haiku, 0);
        assert_eq!(token, client_request_token(run, answers, 0, haiku, 0));
        let others = [
            client_request_token(run, answers, 0, "amazon.nova-lite-v1:0", 0),
            client_request_token(run, answers, 0, haiku, 1),
            client_request_token(run, judge, 0, haiku, 0),
            client_request_token(&retry_scope(run, 1), answers, 0, haiku, 0),
            client_request_token(&retry_scope(run, 2), answers, 0, haiku, 0),
        ];
        for (i, other) in others.iter().enumerate() {
            assert_ne!(&token, other);
            assert!(
                others[i + 1..].iter().all(|later| later != other),
                "{other}"
            );
        }
        assert!(token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        assert_eq!(run_prefix("/batch/", run), "batch/20261207T015510Z-ab12");
        assert_eq!(
            input_key("p/r", answers, 0, 2),
            "p/r/m0/c2/input.jsonl".to_string()
        );
        assert_eq!(input_key("p/r", judge, 0, 2), "p/r/j1/m0/c2/input.jsonl");
        assert_eq!(output_prefix("p/r", judge, 0, 2), "p/r/j1/m0/c2/output/");
    }
}
