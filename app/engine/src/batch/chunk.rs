//! The pure rules of batch jobs: Bedrock's quotas on a job's records and file size, how a
//! model's selected records are cut into jobs, and the names a run gives its jobs, their
//! records and their idempotency tokens (all derived from the run, never random, so a
//! restarted process names the same jobs). No IO, no clock.

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

/// The name of job `chunk` of model `model_order` (at most 63 characters, Bedrock's pattern).
pub fn job_name(run_id: &str, model_order: usize, chunk: usize) -> String {
    let suffix = format!("-m{model_order}-c{chunk}");
    let mut base = format!("llm-eval-{}", clean(run_id));
    base.truncate(63 - suffix.len().min(40));
    format!("{}{suffix}", base.trim_end_matches('-'))
}

/// The `clientRequestToken` of job `chunk` of model `model_order`: the same (run, model,
/// chunk) always gives the same token, so a create that is retried (after a timeout, a
/// throttle, or a restart) returns the job already created instead of starting a second one.
pub fn client_request_token(
    run_id: &str,
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
    let mut token = format!("{}-m{model_order}-{hash:016x}-c{chunk}", clean(run_id));
    token.truncate(256);
    token
}

/// The S3 key prefix of a run's batch objects: `{prefix}/{run_id}`.
pub fn run_prefix(prefix: &str, run_id: &str) -> String {
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        clean(run_id)
    } else {
        format!("{prefix}/{}", clean(run_id))
    }
}

/// The input object key of job `chunk` of model `model_order`.
pub fn input_key(run_prefix: &str, model_order: usize, chunk: usize) -> String {
    format!("{run_prefix}/m{model_order}/c{chunk}/input.jsonl")
}

/// The output prefix (ends in `/`) of job `chunk` of model `model_order`.
pub fn output_prefix(run_prefix: &str, model_order: usize, chunk: usize) -> String {
    format!("{run_prefix}/m{model_order}/c{chunk}/output/")
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
        let name = job_name(run, 1, 3);
        assert_eq!(name, "llm-eval-20261207T015510Z-ab12-m1-c3");
        assert_eq!(job_name(&"x".repeat(200), 12, 345).len(), 63);
        let token = client_request_token(run, 0, "anthropic.claude-3-haiku-20240307-v1:0", 0);
        assert_eq!(
            token,
            client_request_token(run, 0, "anthropic.claude-3-haiku-20240307-v1:0", 0)
        );
        assert_ne!(
            token,
            client_request_token(run, 0, "amazon.nova-lite-v1:0", 0)
        );
        assert_ne!(
            token,
            client_request_token(run, 0, "anthropic.claude-3-haiku-20240307-v1:0", 1)
        );
        assert!(token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        assert_eq!(run_prefix("/batch/", run), "batch/20261207T015510Z-ab12");
        assert_eq!(input_key("p/r", 0, 2), "p/r/m0/c2/input.jsonl".to_string());
    }
}
