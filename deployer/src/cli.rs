//! Command-line interface: clap definitions only, no behaviour.
//!
//! Every setting of [`ConfigArgs`] is also an environment variable and a key of the optional
//! `--config` TOML file; `config::resolve` applies the precedence flag > env > file > default.
//! Values stay strings here so all three sources share one parser and one error format.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Synthesizes, checks and deploys the LLM-evaluation stacks.
#[derive(Debug, Parser)]
#[command(name = "deployer", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write the CloudFormation templates and a manifest (no AWS access needed).
    Synth(SynthArgs),
    /// Check templates (ours, or any given with --template) against the security rule pack.
    Nag(crate::commands::nag::NagArgs),
    /// Build the app image without a Docker daemon, or push it to a registry.
    Image(crate::commands::image::ImageArgs),
}

/// Settings shared by every command that synthesizes stacks.
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigArgs {
    /// TOML file with any of the settings below (keys in snake_case).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Stack name prefix [env: DEPLOY_STACK_PREFIX] [default: llm-eval].
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,
    /// Region [env: AWS_REGION] [default: us-east-1].
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Deploy the SageMaker Studio domain: yes/no [env: DEPLOY_SAGEMAKER_DOMAIN] [default: yes].
    #[arg(long, value_name = "BOOL")]
    pub deploy_sagemaker_domain: Option<String>,
    /// Deploy the web app: yes/no [env: DEPLOY_PROMPT_APP] [default: yes].
    #[arg(long, value_name = "BOOL")]
    pub deploy_prompt_app: Option<String>,
    /// Run the security rule pack at synth: yes/no [env: CDK_NAG] [default: no].
    #[arg(long, value_name = "BOOL")]
    pub cdk_nag: Option<String>,
    /// CloudFront access logs to the logs bucket: yes/no [env: DEPLOY_CLOUDFRONT_ACCESS_LOGS] [default: no].
    #[arg(long, value_name = "BOOL")]
    pub cloudfront_access_logs: Option<String>,
    /// Fargate task CPU units [env: DEPLOY_TASK_CPU] [default: 512].
    #[arg(long, value_name = "UNITS")]
    pub task_cpu: Option<String>,
    /// Fargate task memory MiB [env: DEPLOY_TASK_MEMORY] [default: 1024].
    #[arg(long, value_name = "MIB")]
    pub task_memory: Option<String>,
    /// Git repository the Studio lifecycle configuration clones [env: DEPLOY_STUDIO_GIT_REPO].
    #[arg(long, value_name = "URL")]
    pub studio_git_repo: Option<String>,
    /// Secrets Manager name of the OpenAI key [env: DEPLOY_OPENAI_SECRET_NAME] [default: openai_key].
    #[arg(long, value_name = "NAME")]
    pub openai_secret_name: Option<String>,
}

/// Template output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Pretty-printed JSON.
    Json,
    /// YAML with long-form intrinsics (`Fn::Sub:`).
    Yaml,
}

/// Arguments of `deployer synth`.
#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Settings.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Directory for the templates and manifest.json; without it, templates go to stdout.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Template format.
    #[arg(long, value_enum, default_value = "json")]
    pub format: Format,
    /// Only this stack (full name like `llm-eval-app`, or `network`, `app`, `studio`).
    #[arg(long, value_name = "NAME")]
    pub stack: Option<String>,
}
