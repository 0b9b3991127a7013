//! Bedrock batch inference in the control-plane double: the four REST-JSON operations of
//! `aws-sdk-bedrock` (field names, paths, status values and error codes as botocore's service
//! model and the SDK's deserializers define them):
//!
//! - `POST /model-invocation-job` (`CreateModelInvocationJob`): idempotent on
//!   `clientRequestToken` (the same token gives the same `jobArn`, never a second job);
//!   `ServiceQuotaExceededException` when more than [`BatchBehavior::max_active_jobs`] are
//!   not yet ended; `ValidationException` for missing fields;
//! - `GET /model-invocation-job/{jobIdentifier}` (`GetModelInvocationJob`): status, message,
//!   record counters, times;
//! - `GET /model-invocation-jobs` (`ListModelInvocationJobs`): `statusEquals`, `nameContains`,
//!   `maxResults`, `nextToken`;
//! - `POST /model-invocation-job/{jobIdentifier}/stop` (`StopModelInvocationJob`).
//!
//! A job reads its input JSONL (`recordId`, `modelInput` = a Converse body) from S3 (moto),
//! answers each record like the model double ([`Answer`]), and writes `{output}/{jobId}/{file}.out`
//! (records in a seeded shuffled order, as Bedrock gives no order) and `manifest.json.out`.
//! Statuses advance every [`BatchBehavior::step`]: Submitted → Validating → Scheduled →
//! InProgress → Completed (PartiallyCompleted when some records carry an `error`), or Failed
//! (fewer than 100 or more than 50,000 records, a bad line, a model in
//! [`BatchBehavior::fail_models`]), Expired ([`BatchBehavior::expire_models`], after half the
//! records), Stopping → Stopped (after a stop; processed records are written).
//! Every [`BatchBehavior::throttle_every`]-th batch request is refused with
//! `ThrottlingException` (HTTP 429).
//!
//! It depends on nothing of the app: only the wire formats of the model double and an S3 client.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_s3::Client as S3Client;
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::behavior::{Answer, Prompt};
use crate::{Protocol, wire};

/// Bedrock's limits on records per job.
const MIN_RECORDS: u64 = 100;
const MAX_RECORDS: u64 = 50_000;
/// The most input bytes one job reads (Bedrock: 1 GB per file).
const MAX_INPUT_BYTES: usize = 1 << 30;

/// How the batch operations behave.
#[derive(Debug, Clone)]
pub struct BatchBehavior {
    /// moto's URL: where inputs are read and outputs written.
    pub s3_endpoint: String,
    /// Time between two status changes (and between progress updates while in progress).
    pub step: Duration,
    /// The model's answer to each record.
    pub answer: Answer,
    /// Every n-th record of a job (1-based, input order) gets an `error` instead of an answer.
    pub record_error_every: Option<u64>,
    /// Jobs of these model ids end `Failed`.
    pub fail_models: Vec<String>,
    /// Jobs of these model ids end `Expired` after half their records.
    pub expire_models: Vec<String>,
    /// Jobs not yet ended at most; one more is refused with `ServiceQuotaExceededException`.
    pub max_active_jobs: usize,
    /// Every n-th batch request (1-based) is refused with `ThrottlingException`.
    pub throttle_every: Option<u64>,
    /// Seed of the output order.
    pub seed: u64,
}

impl BatchBehavior {
    /// Fast jobs (10 ms steps) answering `answer`, reading and writing through moto at
    /// `s3_endpoint`, with no faults.
    pub fn new(s3_endpoint: &str, answer: Answer) -> BatchBehavior {
        BatchBehavior {
            s3_endpoint: s3_endpoint.to_owned(),
            step: Duration::from_millis(10),
            answer,
            record_error_every: None,
            fail_models: Vec::new(),
            expire_models: Vec::new(),
            max_active_jobs: 20,
            throttle_every: None,
            seed: 7,
        }
    }
}

#[derive(Debug, Clone)]
struct Job {
    arn: String,
    id: String,
    name: String,
    model_id: String,
    role_arn: String,
    token: Option<String>,
    invocation_type: Option<String>,
    input_uri: String,
    output_uri: String,
    status: &'static str,
    message: Option<String>,
    submit_time: SystemTime,
    last_modified: SystemTime,
    end_time: Option<SystemTime>,
    total: u64,
    processed: u64,
    success: u64,
    errors: u64,
    stop_requested: bool,
}

impl Job {
    fn ended(&self) -> bool {
        matches!(
            self.status,
            "Completed" | "PartiallyCompleted" | "Failed" | "Stopped" | "Expired"
        )
    }

    fn to_json(&self) -> Value {
        let mut body = json!({
            "jobArn": self.arn,
            "jobName": self.name,
            "modelId": self.model_id,
            "roleArn": self.role_arn,
            "status": self.status,
            "submitTime": timestamp(self.submit_time),
            "lastModifiedTime": timestamp(self.last_modified),
            "inputDataConfig": {"s3InputDataConfig": {"s3Uri": self.input_uri, "s3InputFormat": "JSONL"}},
            "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": self.output_uri}},
            "timeoutDurationInHours": 24,
            "totalRecordCount": self.total,
            "processedRecordCount": self.processed,
            "successRecordCount": self.success,
            "errorRecordCount": self.errors,
        });
        let extra = [
            ("clientRequestToken", self.token.clone().map(Value::from)),
            ("message", self.message.clone().map(Value::from)),
            (
                "modelInvocationType",
                self.invocation_type.clone().map(Value::from),
            ),
            ("endTime", self.end_time.map(|end| timestamp(end).into())),
        ];
        for (key, value) in extra {
            if let (Some(value), Some(object)) = (value, body.as_object_mut()) {
                object.insert(key.to_owned(), value);
            }
        }
        body
    }
}

#[derive(Debug, Default)]
struct Jobs {
    jobs: Vec<Job>,
    requests: u64,
}

/// The batch half of the double's state.
#[derive(Debug)]
pub(crate) struct BatchShared {
    behavior: BatchBehavior,
    region: String,
    s3: S3Client,
    jobs: Mutex<Jobs>,
}

impl BatchShared {
    pub(crate) fn new(region: &str, behavior: BatchBehavior) -> BatchShared {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new(region.to_owned()))
            .endpoint_url(&behavior.s3_endpoint)
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "double", "double", None, None, "double",
            ))
            .force_path_style(true)
            .build();
        BatchShared {
            behavior,
            region: region.to_owned(),
            s3: S3Client::from_conf(config),
            jobs: Mutex::new(Jobs::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Jobs> {
        self.jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts a request; `Some` refusal when it is a throttled one.
    fn throttled(&self) -> Option<Response> {
        let mut jobs = self.lock();
        jobs.requests += 1;
        let every = self.behavior.throttle_every?;
        (every > 0 && jobs.requests.is_multiple_of(every)).then(|| {
            wire::aws_error(
                StatusCode::TOO_MANY_REQUESTS,
                "ThrottlingException",
                "Rate exceeded",
            )
        })
    }

    /// The jobs created so far (for tests): (name, model id, status).
    pub(crate) fn summary(&self) -> Vec<(String, String, String)> {
        self.lock()
            .jobs
            .iter()
            .map(|job| {
                (
                    job.name.clone(),
                    job.model_id.clone(),
                    job.status.to_owned(),
                )
            })
            .collect()
    }

    /// The jobs created so far (for tests): (name, input URI, token).
    pub(crate) fn inputs(&self) -> Vec<(String, String, Option<String>)> {
        self.lock()
            .jobs
            .iter()
            .map(|job| (job.name.clone(), job.input_uri.clone(), job.token.clone()))
            .collect()
    }

    fn update(&self, job_id: &str, change: impl FnOnce(&mut Job)) -> Option<Job> {
        let mut jobs = self.lock();
        let job = jobs.jobs.iter_mut().find(|job| job.id == job_id)?;
        change(job);
        job.last_modified = SystemTime::now();
        Some(job.clone())
    }

    fn set_status(&self, job_id: &str, status: &'static str) -> Option<Job> {
        self.update(job_id, |job| {
            if !job.ended() {
                job.status = status;
            }
        })
    }

    fn end(&self, job_id: &str, status: &'static str, message: Option<String>) {
        self.update(job_id, |job| {
            job.status = status;
            job.message = message;
            job.end_time = Some(SystemTime::now());
        });
    }
}

/// The batch routes, added to the control-plane router.
pub(crate) fn routes(router: axum::Router<Arc<BatchShared>>) -> axum::Router<Arc<BatchShared>> {
    router
        .route("/model-invocation-job", post(create_job))
        .route("/model-invocation-jobs", get(list_jobs))
        .route("/model-invocation-job/{job}", get(get_job))
        .route("/model-invocation-job/{job}/stop", post(stop_job))
}

fn timestamp(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    DateTime::from_secs(i64::try_from(since.as_secs()).unwrap_or(i64::MAX))
        .fmt(aws_sdk_s3::primitives::DateTimeFormat::DateTime)
        .unwrap_or_default()
}

fn validation(message: impl Into<String>) -> Response {
    wire::aws_error(
        StatusCode::BAD_REQUEST,
        "ValidationException",
        &message.into(),
    )
}

fn ok(body: Value) -> Response {
    wire::json_response(StatusCode::OK, &body)
}

fn str_at<'a>(body: &'a Value, pointer: &str) -> Option<&'a str> {
    body.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|text| !text.is_empty())
}

async fn create_job(State(shared): State<Arc<BatchShared>>, body: axum::body::Bytes) -> Response {
    if let Some(refusal) = shared.throttled() {
        return refusal;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return validation("The request body is not valid JSON");
    };
    let required = [
        ("jobName", "/jobName"),
        ("roleArn", "/roleArn"),
        ("modelId", "/modelId"),
        (
            "inputDataConfig.s3InputDataConfig.s3Uri",
            "/inputDataConfig/s3InputDataConfig/s3Uri",
        ),
        (
            "outputDataConfig.s3OutputDataConfig.s3Uri",
            "/outputDataConfig/s3OutputDataConfig/s3Uri",
        ),
    ];
    for (name, pointer) in required {
        if str_at(&body, pointer).is_none() {
            return validation(format!(
                "1 validation error detected: Value at '{name}' failed to satisfy constraint: Member must not be null"
            ));
        }
    }
    let name = str_at(&body, "/jobName").unwrap_or_default().to_owned();
    if name.len() > 63
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '+' || c == '.')
    {
        return validation(format!(
            "1 validation error detected: Value '{name}' at 'jobName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9]{{1,63}}(-*[a-zA-Z0-9\\+\\-\\.]){{0,63}}"
        ));
    }
    for (name, pointer) in [
        (
            "inputDataConfig",
            "/inputDataConfig/s3InputDataConfig/s3Uri",
        ),
        (
            "outputDataConfig",
            "/outputDataConfig/s3OutputDataConfig/s3Uri",
        ),
    ] {
        if !str_at(&body, pointer).is_some_and(|uri| uri.starts_with("s3://")) {
            return validation(format!("{name}: the S3 URI must start with s3://"));
        }
    }
    let token = str_at(&body, "/clientRequestToken").map(str::to_owned);
    let job = {
        let mut jobs = shared.lock();
        if let Some(token) = &token
            && let Some(existing) = jobs
                .jobs
                .iter()
                .find(|job| job.token.as_deref() == Some(token.as_str()))
        {
            return ok(json!({"jobArn": existing.arn}));
        }
        if jobs.jobs.iter().any(|job| job.name == name) {
            return wire::aws_error(
                StatusCode::CONFLICT,
                "ConflictException",
                &format!("A job with the name {name} already exists"),
            );
        }
        let active = jobs.jobs.iter().filter(|job| !job.ended()).count();
        if active >= shared.behavior.max_active_jobs {
            return wire::aws_error(
                StatusCode::BAD_REQUEST,
                "ServiceQuotaExceededException",
                &format!(
                    "You have reached the quota of {} in-progress and submitted batch inference jobs",
                    shared.behavior.max_active_jobs
                ),
            );
        }
        let id = format!("{:012x}", 0x5eed_0000_0000_u64 + jobs.jobs.len() as u64);
        let now = SystemTime::now();
        let job = Job {
            arn: format!(
                "arn:aws:bedrock:{}:123456789012:model-invocation-job/{id}",
                shared.region
            ),
            id,
            name,
            model_id: str_at(&body, "/modelId").unwrap_or_default().to_owned(),
            role_arn: str_at(&body, "/roleArn").unwrap_or_default().to_owned(),
            token,
            invocation_type: str_at(&body, "/modelInvocationType").map(str::to_owned),
            input_uri: str_at(&body, "/inputDataConfig/s3InputDataConfig/s3Uri")
                .unwrap_or_default()
                .to_owned(),
            output_uri: str_at(&body, "/outputDataConfig/s3OutputDataConfig/s3Uri")
                .unwrap_or_default()
                .to_owned(),
            status: "Submitted",
            message: None,
            submit_time: now,
            last_modified: now,
            end_time: None,
            total: 0,
            processed: 0,
            success: 0,
            errors: 0,
            stop_requested: false,
        };
        jobs.jobs.push(job.clone());
        job
    };
    tokio::spawn(drive(shared.clone(), job.id.clone()));
    ok(json!({"jobArn": job.arn}))
}

/// A job id from a `jobIdentifier` (the ARN or the id).
fn job_id(identifier: &str) -> &str {
    identifier.rsplit('/').next().unwrap_or(identifier)
}

async fn get_job(State(shared): State<Arc<BatchShared>>, Path(job): Path<String>) -> Response {
    if let Some(refusal) = shared.throttled() {
        return refusal;
    }
    let id = job_id(&job);
    match shared.lock().jobs.iter().find(|job| job.id == id) {
        Some(job) => ok(job.to_json()),
        None => not_found(&job),
    }
}

fn not_found(job: &str) -> Response {
    wire::aws_error(
        StatusCode::NOT_FOUND,
        "ResourceNotFoundException",
        &format!("The model invocation job {job} was not found"),
    )
}

async fn stop_job(State(shared): State<Arc<BatchShared>>, Path(job): Path<String>) -> Response {
    if let Some(refusal) = shared.throttled() {
        return refusal;
    }
    let id = job_id(&job).to_owned();
    let mut jobs = shared.lock();
    let Some(job) = jobs.jobs.iter_mut().find(|job| job.id == id) else {
        return not_found(&id);
    };
    if job.ended() {
        return validation(format!(
            "The job {} cannot be stopped: it is {}",
            job.arn, job.status
        ));
    }
    job.stop_requested = true;
    job.status = "Stopping";
    job.last_modified = SystemTime::now();
    ok(json!({}))
}

async fn list_jobs(
    State(shared): State<Arc<BatchShared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(refusal) = shared.throttled() {
        return refusal;
    }
    let max = query
        .get("maxResults")
        .and_then(|max| max.parse::<usize>().ok())
        .unwrap_or(1000)
        .clamp(1, 1000);
    let start = query
        .get("nextToken")
        .and_then(|token| token.parse::<usize>().ok())
        .unwrap_or(0);
    let jobs = shared.lock();
    let matching: Vec<&Job> = jobs
        .jobs
        .iter()
        .filter(|job| {
            query
                .get("statusEquals")
                .is_none_or(|status| job.status == status.as_str())
                && query
                    .get("nameContains")
                    .is_none_or(|part| job.name.contains(part.as_str()))
        })
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(max)
        .map(|job| job.to_json())
        .collect();
    let mut body = json!({"invocationJobSummaries": page});
    if start + max < matching.len()
        && let Some(object) = body.as_object_mut()
    {
        object.insert("nextToken".into(), (start + max).to_string().into());
    }
    ok(body)
}

/// An `s3://bucket/key` URI split.
fn split_uri(uri: &str) -> Option<(&str, &str)> {
    uri.strip_prefix("s3://")?.split_once('/')
}

/// One input record.
struct InputRecord {
    file: String,
    record_id: String,
    model_input: Value,
}

/// Reads a job's input: one `.jsonl` object, or every `.jsonl` object under a prefix.
async fn read_input(shared: &BatchShared, uri: &str) -> Result<Vec<InputRecord>, String> {
    let (bucket, key) =
        split_uri(uri).ok_or_else(|| format!("The input S3 URI {uri} is not valid"))?;
    let keys = if key.ends_with(".jsonl") {
        vec![key.to_owned()]
    } else {
        let listed = shared
            .s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(key)
            .send()
            .await
            .map_err(|error| format!("Cannot list {uri}: {error:?}"))?;
        listed
            .contents()
            .iter()
            .filter_map(|object| object.key())
            .filter(|key| key.ends_with(".jsonl"))
            .map(str::to_owned)
            .collect()
    };
    let mut records = Vec::new();
    let mut bytes = 0;
    for key in keys {
        let object = shared
            .s3
            .get_object()
            .bucket(bucket)
            .key(&key)
            .send()
            .await
            .map_err(|error| format!("Cannot read s3://{bucket}/{key}: {error:?}"))?;
        let body = object
            .body
            .collect()
            .await
            .map_err(|error| format!("Cannot read s3://{bucket}/{key}: {error}"))?
            .into_bytes();
        bytes += body.len();
        if bytes > MAX_INPUT_BYTES {
            return Err("The input files exceed 1 GB".to_owned());
        }
        let file = key.rsplit('/').next().unwrap_or(&key).to_owned();
        for (line_idx, line) in body.split(|byte| *byte == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let value: Value = serde_json::from_slice(line).map_err(|error| {
                format!("{file}: line {}: not a JSON object: {error}", line_idx + 1)
            })?;
            let model_input = value
                .get("modelInput")
                .cloned()
                .ok_or_else(|| format!("{file}: line {}: `modelInput` is missing", line_idx + 1))?;
            let record_id = value
                .get("recordId")
                .and_then(Value::as_str)
                .map_or_else(|| format!("{:011}", records.len()), str::to_owned);
            records.push(InputRecord {
                file: file.clone(),
                record_id,
                model_input,
            });
        }
    }
    Ok(records)
}

/// A record's output line: the model's Converse answer, or an `error`.
fn output_line(
    shared: &BatchShared,
    model_id: &str,
    number: u64,
    record: &InputRecord,
) -> (Value, bool) {
    let failing = shared
        .behavior
        .record_error_every
        .is_some_and(|every| every > 0 && number.is_multiple_of(every));
    let raw = record.model_input.to_string();
    let parsed = wire::parse(Protocol::BedrockConverse, raw.as_bytes());
    let mut line = json!({"recordId": record.record_id, "modelInput": record.model_input});
    let result = match parsed {
        Ok(parsed) if !failing => {
            let reply = shared.behavior.answer.reply(&Prompt {
                model: model_id,
                text: &parsed.prompt,
                system: parsed.system.as_deref(),
            });
            let input_tokens = wire::count_tokens(&parsed.prompt)
                + parsed.system.as_deref().map_or(0, wire::count_tokens);
            let output_tokens = wire::count_tokens(&reply);
            Ok(json!({
                "output": {"message": {"role": "assistant", "content": [{"text": reply}]}},
                "stopReason": "end_turn",
                "usage": {
                    "inputTokens": input_tokens,
                    "outputTokens": output_tokens,
                    "totalTokens": input_tokens + output_tokens,
                },
                "metrics": {"latencyMs": 0},
            }))
        }
        Ok(_) => Err(
            json!({"errorCode": 500, "errorMessage": format!("ModelErrorException: the model could not answer record {}", record.record_id)}),
        ),
        Err(wire::BadRequest(message)) => Err(
            json!({"errorCode": 400, "errorMessage": format!("ValidationException: {message}")}),
        ),
    };
    let ok = result.is_ok();
    if let Some(object) = line.as_object_mut() {
        match result {
            Ok(output) => object.insert("modelOutput".into(), output),
            Err(error) => object.insert("error".into(), error),
        };
    }
    (line, ok)
}

/// A seeded Fisher-Yates shuffle (splitmix64).
fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut state = seed;
    for idx in (1..items.len()).rev() {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let pick = usize::try_from(z % (idx as u64 + 1)).unwrap_or(0);
        items.swap(idx, pick);
    }
}

/// Writes the processed records' outputs (shuffled) and the manifest.
async fn write_outputs(
    shared: &BatchShared,
    job: &Job,
    lines: Vec<(String, Value)>,
) -> Result<(), String> {
    let (bucket, prefix) = split_uri(&job.output_uri)
        .ok_or_else(|| format!("The output S3 URI {} is not valid", job.output_uri))?;
    let prefix = prefix.trim_end_matches('/');
    let mut by_file: Vec<(String, Vec<Value>)> = Vec::new();
    for (file, line) in lines {
        match by_file.iter_mut().find(|(name, _)| *name == file) {
            Some((_, file_lines)) => file_lines.push(line),
            None => by_file.push((file, vec![line])),
        }
    }
    let mut input_tokens = 0;
    let mut output_tokens = 0;
    for (file, mut file_lines) in by_file {
        shuffle(&mut file_lines, shared.behavior.seed ^ job.total);
        let mut body = Vec::new();
        for line in &file_lines {
            input_tokens += line
                .pointer("/modelOutput/usage/inputTokens")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            output_tokens += line
                .pointer("/modelOutput/usage/outputTokens")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            body.extend_from_slice(line.to_string().as_bytes());
            body.push(b'\n');
        }
        put(
            shared,
            bucket,
            &format!("{prefix}/{}/{file}.out", job.id),
            body,
        )
        .await?;
    }
    let manifest = json!({
        "totalRecordCount": job.total,
        "processedRecordCount": job.processed,
        "successRecordCount": job.success,
        "errorRecordCount": job.errors,
        "inputTokenCount": input_tokens,
        "outputTokenCount": output_tokens,
    });
    put(
        shared,
        bucket,
        &format!("{prefix}/{}/manifest.json.out", job.id),
        manifest.to_string().into_bytes(),
    )
    .await
}

async fn put(shared: &BatchShared, bucket: &str, key: &str, body: Vec<u8>) -> Result<(), String> {
    shared
        .s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body))
        .send()
        .await
        .map(|_| ())
        .map_err(|error| format!("Cannot write s3://{bucket}/{key}: {error:?}"))
}

/// Runs a job through its statuses.
async fn drive(shared: Arc<BatchShared>, job_id: String) {
    let step = shared.behavior.step;
    tokio::time::sleep(step).await;
    let Some(job) = shared.set_status(&job_id, "Validating") else {
        return;
    };
    let records = match read_input(&shared, &job.input_uri).await {
        Ok(records) => records,
        Err(message) => return shared.end(&job_id, "Failed", Some(message)),
    };
    let total = records.len() as u64;
    shared.update(&job_id, |job| job.total = total);
    if !(MIN_RECORDS..=MAX_RECORDS).contains(&total) {
        let message = format!(
            "The job has {total} records; a batch inference job takes at least {MIN_RECORDS} and at most {MAX_RECORDS}"
        );
        return shared.end(&job_id, "Failed", Some(message));
    }
    if shared.behavior.fail_models.contains(&job.model_id) {
        tokio::time::sleep(step).await;
        let message = format!(
            "Internal Server Error: the job for model {} failed",
            job.model_id
        );
        return shared.end(&job_id, "Failed", Some(message));
    }
    for status in ["Scheduled", "InProgress"] {
        tokio::time::sleep(step).await;
        if stopping(&shared, &job_id) {
            return finish(&shared, &job_id, Vec::new(), "Stopped", None).await;
        }
        shared.set_status(&job_id, status);
    }
    let expire = shared.behavior.expire_models.contains(&job.model_id);
    let slices = 4;
    let per_slice = records.len().div_ceil(slices).max(1);
    let mut lines = Vec::with_capacity(records.len());
    for (slice_idx, slice) in records.chunks(per_slice).enumerate() {
        if stopping(&shared, &job_id) {
            return finish(&shared, &job_id, lines, "Stopped", None).await;
        }
        if expire && slice_idx * 2 >= slices {
            let message = "The job did not finish within its timeout and expired".to_owned();
            return finish(&shared, &job_id, lines, "Expired", Some(message)).await;
        }
        let (mut ok, mut failed) = (0, 0);
        for record in slice {
            let number = lines.len() as u64 + 1;
            let (line, success) = output_line(&shared, &job.model_id, number, record);
            if success {
                ok += 1;
            } else {
                failed += 1;
            }
            lines.push((record.file.clone(), line));
        }
        shared.update(&job_id, |job| {
            job.processed += ok + failed;
            job.success += ok;
            job.errors += failed;
        });
        tokio::time::sleep(step).await;
    }
    let status = if shared
        .lock()
        .jobs
        .iter()
        .any(|job| job.id == job_id && job.errors > 0)
    {
        "PartiallyCompleted"
    } else {
        "Completed"
    };
    finish(&shared, &job_id, lines, status, None).await;
}

fn stopping(shared: &BatchShared, job_id: &str) -> bool {
    shared
        .lock()
        .jobs
        .iter()
        .any(|job| job.id == job_id && job.stop_requested)
}

async fn finish(
    shared: &BatchShared,
    job_id: &str,
    lines: Vec<(String, Value)>,
    status: &'static str,
    message: Option<String>,
) {
    let Some(job) = shared.update(job_id, |_| {}) else {
        return;
    };
    match write_outputs(shared, &job, lines).await {
        Ok(()) => shared.end(job_id, status, message),
        Err(message) => shared.end(job_id, "Failed", Some(message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffle_is_a_seeded_permutation() {
        let mut items: Vec<u32> = (0..100).collect();
        shuffle(&mut items, 7);
        let mut again: Vec<u32> = (0..100).collect();
        shuffle(&mut again, 7);
        assert_eq!(items, again);
        assert_ne!(items, (0..100).collect::<Vec<_>>());
        items.sort_unstable();
        assert_eq!(items, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn job_ids_come_from_arns_or_ids() {
        assert_eq!(
            job_id("arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/abc123"),
            "abc123"
        );
        assert_eq!(job_id("abc123"), "abc123");
        assert_eq!(split_uri("s3://b/k/x.jsonl"), Some(("b", "k/x.jsonl")));
        assert_eq!(split_uri("https://b/k"), None);
    }
}
