//! The AWS calls of batch runs: Bedrock's `CreateModelInvocationJob`, `GetModelInvocationJob`
//! and `StopModelInvocationJob` (`aws-sdk-bedrock`), and S3 uploads, listings and streamed
//! reads (`aws-sdk-s3`). Endpoints come from the SDK's standard variables
//! (`AWS_ENDPOINT_URL_BEDROCK`, `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`), so the same code
//! runs against AWS and against local doubles. Every call has the store's bounded retries
//! (throttling included) and per-attempt timeouts. Counts S3 requests for the benchmark.
//!
//! Depends on nothing of the engine but the settings' types.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_bedrock::types::{
    ModelInvocationJobInputDataConfig, ModelInvocationJobOutputDataConfig,
    ModelInvocationJobS3InputDataConfig, ModelInvocationJobS3OutputDataConfig, ModelInvocationType,
    S3InputFormat,
};
use aws_sdk_s3::primitives::ByteStream;

/// The Bedrock control-plane and S3 clients of batch runs.
#[derive(Debug, Clone)]
pub struct BatchClients {
    bedrock: aws_sdk_bedrock::Client,
    s3: aws_sdk_s3::Client,
    s3_requests: Arc<AtomicU64>,
}

/// One job to create.
#[derive(Debug, Clone)]
pub(super) struct CreateJob {
    pub(super) name: String,
    pub(super) token: String,
    pub(super) model_id: String,
    pub(super) role_arn: String,
    pub(super) input_uri: String,
    pub(super) output_uri: String,
}

/// Why a create failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum CreateError {
    /// The account's job quota is full: wait and try again.
    #[error("{0}")]
    QuotaFull(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// What `GetModelInvocationJob` says of a job.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct SeenJob {
    pub(super) status: String,
    pub(super) message: Option<String>,
    pub(super) processed: u64,
    pub(super) errors: u64,
}

impl BatchClients {
    /// Clients from `sdk_config` (S3 in path style when an S3 endpoint is overridden: local
    /// servers have no per-bucket host names).
    pub fn new(sdk_config: &aws_config::SdkConfig) -> BatchClients {
        let local_s3 = sdk_config.endpoint_url().is_some()
            || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some_and(|url| !url.is_empty());
        let s3 = aws_sdk_s3::config::Builder::from(sdk_config)
            .force_path_style(local_s3)
            .build();
        BatchClients {
            bedrock: aws_sdk_bedrock::Client::new(sdk_config),
            s3: aws_sdk_s3::Client::from_conf(s3),
            s3_requests: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Clients from `sdk_config` with Bedrock at `bedrock_url` and S3 (path style) at `s3_url`:
    /// two local servers, as the tests' Bedrock double and moto.
    pub fn with_endpoints(
        sdk_config: &aws_config::SdkConfig,
        bedrock_url: &str,
        s3_url: &str,
    ) -> BatchClients {
        let bedrock = aws_sdk_bedrock::config::Builder::from(sdk_config)
            .endpoint_url(bedrock_url)
            .build();
        let s3 = aws_sdk_s3::config::Builder::from(sdk_config)
            .endpoint_url(s3_url)
            .force_path_style(true)
            .build();
        BatchClients {
            bedrock: aws_sdk_bedrock::Client::from_conf(bedrock),
            s3: aws_sdk_s3::Client::from_conf(s3),
            s3_requests: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Clients from the environment (region, credentials, endpoints), with bounded retries
    /// and timeouts.
    pub async fn from_env() -> BatchClients {
        BatchClients::new(&store::dynamo::sdk_config().await)
    }

    /// S3 requests made so far (uploads, listings, reads).
    pub fn s3_requests(&self) -> u64 {
        self.s3_requests.load(Ordering::Relaxed)
    }

    fn count_s3(&self) {
        self.s3_requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) async fn create_job(&self, job: &CreateJob) -> Result<String, CreateError> {
        let other = |error: String| CreateError::Other(error);
        let input = ModelInvocationJobS3InputDataConfig::builder()
            .s3_uri(&job.input_uri)
            .s3_input_format(S3InputFormat::Jsonl)
            .build()
            .map_err(|error| other(error.to_string()))?;
        let output = ModelInvocationJobS3OutputDataConfig::builder()
            .s3_uri(&job.output_uri)
            .build()
            .map_err(|error| other(error.to_string()))?;
        let result = self
            .bedrock
            .create_model_invocation_job()
            .job_name(&job.name)
            .client_request_token(&job.token)
            .model_id(&job.model_id)
            .role_arn(&job.role_arn)
            .model_invocation_type(ModelInvocationType::Converse)
            .input_data_config(ModelInvocationJobInputDataConfig::S3InputDataConfig(input))
            .output_data_config(ModelInvocationJobOutputDataConfig::S3OutputDataConfig(
                output,
            ))
            .send()
            .await;
        match result {
            Ok(created) => Ok(created.job_arn().to_owned()),
            Err(error) => {
                let message = sdk_message(&error);
                if error
                    .as_service_error()
                    .is_some_and(|error| error.is_service_quota_exceeded_exception())
                {
                    Err(CreateError::QuotaFull(message))
                } else {
                    Err(CreateError::Other(message))
                }
            }
        }
    }

    pub(super) async fn get_job(&self, job_arn: &str) -> Result<SeenJob, String> {
        let job = self
            .bedrock
            .get_model_invocation_job()
            .job_identifier(job_arn)
            .send()
            .await
            .map_err(|error| sdk_message(&error))?;
        let count = |value: Option<i64>| value.and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
        Ok(SeenJob {
            status: job.status().map_or_else(
                || "Submitted".to_owned(),
                |status| status.as_str().to_owned(),
            ),
            message: job.message().map(str::to_owned),
            processed: count(job.processed_record_count()),
            errors: count(job.error_record_count()),
        })
    }

    /// The ARN of the job named `name`, if there is one (`ListModelInvocationJobs`).
    pub(super) async fn find_job(&self, name: &str) -> Result<Option<String>, String> {
        let listed = self
            .bedrock
            .list_model_invocation_jobs()
            .name_contains(name)
            .max_results(100)
            .send()
            .await
            .map_err(|error| sdk_message(&error))?;
        Ok(listed
            .invocation_job_summaries()
            .iter()
            .find(|job| job.job_name() == name)
            .map(|job| job.job_arn().to_owned()))
    }

    pub(super) async fn stop_job(&self, job_arn: &str) -> Result<(), String> {
        match self
            .bedrock
            .stop_model_invocation_job()
            .job_identifier(job_arn)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // A job that ended meanwhile cannot be stopped, and need not be.
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|error| error.is_validation_exception()) =>
            {
                Ok(())
            }
            Err(error) => Err(sdk_message(&error)),
        }
    }

    /// Uploads a local file (streamed from disk, never held in memory).
    pub(super) async fn put_file(
        &self,
        bucket: &str,
        key: &str,
        path: &Path,
    ) -> Result<(), String> {
        let body = ByteStream::from_path(path)
            .await
            .map_err(|error| format!("{}: {error}", path.display()))?;
        self.count_s3();
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body)
            .send()
            .await
            .map(|_| ())
            .map_err(|error| sdk_message(&error))
    }

    /// The keys under `prefix` ending in `suffix` (at most `limit`).
    pub(super) async fn list(
        &self,
        bucket: &str,
        prefix: &str,
        suffix: &str,
        limit: usize,
    ) -> Result<Vec<String>, String> {
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            self.count_s3();
            let page = self
                .s3
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|error| sdk_message(&error))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|object| object.key())
                    .filter(|key| key.ends_with(suffix))
                    .map(str::to_owned),
            );
            if keys.len() > limit {
                return Err(format!(
                    "more than {limit} objects under s3://{bucket}/{prefix}"
                ));
            }
            token = page.next_continuation_token().map(str::to_owned);
            if token.is_none() {
                return Ok(keys);
            }
        }
    }

    /// The object's body as a stream of chunks.
    pub(super) async fn get(&self, bucket: &str, key: &str) -> Result<ByteStream, String> {
        self.count_s3();
        self.s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map(|object| object.body)
            .map_err(|error| sdk_message(&error))
    }
}

/// An SDK error as one line: the service's code and message, or the transport's cause.
fn sdk_message<E, R>(error: &aws_sdk_bedrock::error::SdkError<E, R>) -> String
where
    E: aws_sdk_bedrock::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    match error.as_service_error() {
        Some(service) => match (service.code(), service.message()) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.to_owned(),
            _ => store::error_chain(service),
        },
        None => store::error_chain(error),
    }
}
