//! One `SdkConfig` for every AWS call the deployer makes, from aws-config's standard chain.
//!
//! Credentials: environment, shared config and credentials files (profiles, SSO), web identity,
//! container and instance roles, as every AWS tool. Region: the `--region` setting when one was
//! given (flag, `AWS_REGION`, `--config` file), else `AWS_REGION`, `AWS_DEFAULT_REGION` or the
//! profile's region. Endpoints: aws-config itself honours `AWS_ENDPOINT_URL` and the
//! per-service `AWS_ENDPOINT_URL_<SERVICE>` variables (and `endpoint_url` in a profile), which
//! is how the tests point the real clients at a local moto server.
//!
//! Invariant: every call has a timeout (connect, per attempt, per operation) and the SDK's
//! standard retry policy (3 attempts, transient errors only), so no command hangs on a network
//! that never answers.

use std::time::Duration;

use anyhow::Context;
use aws_config::{BehaviorVersion, Region, SdkConfig, retry::RetryConfig, timeout::TimeoutConfig};

/// How long to wait for a TCP/TLS connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one attempt of one call may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one call may take, retries included.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(180);

/// Loads the SDK configuration; `region` is the region setting when the user gave one.
pub async fn load(region: Option<&str>) -> anyhow::Result<SdkConfig> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        );
    if let Some(region) = region {
        loader = loader.region(Region::new(region.to_owned()));
    }
    let config = loader.load().await;
    if config.region().is_none() {
        anyhow::bail!(
            "no AWS region: pass --region, or set AWS_REGION, AWS_DEFAULT_REGION or a region in your AWS profile"
        );
    }
    Ok(config)
}

/// The account the credentials belong to (STS `GetCallerIdentity`); a clear error when there
/// are no credentials, naming how to provide them.
pub async fn account_id(config: &SdkConfig) -> anyhow::Result<String> {
    let identity = aws_sdk_sts::Client::new(config)
        .get_caller_identity()
        .send()
        .await
        .map_err(|err| anyhow::Error::new(aws_sdk_sts::Error::from(err)))
        .context(
            "cannot find out which AWS account to use (STS GetCallerIdentity failed); provide credentials with `aws configure`, `aws sso login`, AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        )?;
    identity
        .account()
        .map(str::to_owned)
        .context("STS GetCallerIdentity returned no account")
}

/// The region of `config` (always set: [`load`] refuses a config without one).
pub fn region(config: &SdkConfig) -> String {
    config.region().map(ToString::to_string).unwrap_or_default()
}
