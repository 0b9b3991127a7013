//! Runs the real `deployer` binary with a clean environment, and the AWS settings that point it
//! (and the tests' own SDK clients) at a moto server.

use std::path::Path;
use std::process::{Command, Output};

use model_doubles::moto::Moto;

/// Environment variables the deployer reads; cleared so the host environment cannot leak in.
const CONFIG_VARS: &[&str] = &[
    "DEPLOY_STACK_PREFIX",
    "AWS_REGION",
    "DEPLOY_SAGEMAKER_DOMAIN",
    "DEPLOY_PROMPT_APP",
    "CDK_NAG",
    "DEPLOY_CLOUDFRONT_ACCESS_LOGS",
    "DEPLOY_TASK_CPU",
    "DEPLOY_TASK_MEMORY",
    "DEPLOY_STUDIO_GIT_REPO",
    "DEPLOY_OPENAI_SECRET_NAME",
    "DEPLOY_TASK_COUNT",
    "DEPLOY_KMS_KEY",
    "DEPLOY_LEAN_NETWORK",
    "DEPLOY_FARGATE_SPOT",
    "DEPLOY_BUDGET_USD",
    "DEPLOY_BUDGET_EMAIL",
    // deployer bootstrap up's form.
    "DEPLOY_BOOTSTRAP_STACK",
    "DEPLOY_SOURCE_REPOSITORY_URL",
    "DEPLOY_SOURCE_VERSION",
    "DEPLOY_SOURCE_S3_LOCATION",
    "DEPLOY_ADMIN_EMAIL",
    "DEPLOY_BUILD_COMPUTE_TYPE",
    "DEPLOY_PURGE_ON_DELETE",
    "DEPLOY_REDEPLOY_TOKEN",
    // AWS access: tests that need it point at a moto server of their own.
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_BEDROCK",
    "AWS_ENDPOINT_URL_SERVICE_QUOTAS",
    "REGISTRY_USER",
    "REGISTRY_PASSWORD",
    "DOCKER_CONFIG",
    "DEPLOY_REGISTRY_ENDPOINT",
];

/// Result of one run.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub raw_stdout: Vec<u8>,
}

/// Runs `deployer args...` in `dir` with `env` set and every config variable otherwise unset.
pub fn deployer(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_deployer"));
    command.current_dir(dir).args(args);
    for var in CONFIG_VARS {
        command.env_remove(var);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().expect("deployer binary runs");
    Run {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        raw_stdout: stdout,
    }
}

/// Environment pointing the real SDK clients at `moto` with fake credentials and no profile.
pub fn aws_env(moto: &Moto) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", moto.url().to_owned()),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ("AWS_CONFIG_FILE", "/nonexistent/config".to_owned()),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/credentials".to_owned(),
        ),
    ]
}

/// [`deployer`] with an owned environment such as [`aws_env`]'s.
pub fn run_with(dir: &Path, env: &[(&'static str, String)], args: &[&str]) -> Run {
    let env: Vec<(&str, &str)> = env
        .iter()
        .map(|(key, value)| (*key, value.as_str()))
        .collect();
    deployer(dir, args, &env)
}

/// Runs `work` on a runtime of its own, with an SDK config for `moto` (for the tests' own
/// setup and checks through the real SDK clients).
pub fn with_sdk<T>(moto: &Moto, work: impl AsyncFnOnce(aws_config::SdkConfig) -> T) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(moto.url())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_cognitoidentityprovider::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .load()
            .await;
        work(config).await
    })
}
