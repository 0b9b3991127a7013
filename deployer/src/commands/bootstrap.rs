//! `deployer bootstrap up | down | status | run | respond`.
//!
//! `up`, `down` and `status` drive the one-click install from a terminal: they deploy, delete or
//! show `cfn_bootstrap.yaml` as a stack of the current account (see [`crate::bootstrap::stack`])
//! and follow the CodeBuild build it starts. `run` and `respond` are what that build runs:
//!
//! `run` is the build phase of `buildspec.yml`: it runs `deployer up` (or `down`, per
//! `DEPLOYER_ACTION`) and, when CloudFormation waits for the build (`CFN_RESPONSE_URL` and the
//! other `CFN_*` variables, set by the bootstrap Lambda), sends it SUCCESS with the app's URL
//! and user pool id, or FAILED with the deployer's root-cause line. Settings that cannot be used
//! are reported to CloudFormation the same way, so a stack never waits for an answer that will
//! not come. `respond` sends one answer by hand, for other buildspecs and for scripts.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Map, Value as Json};

use crate::bootstrap::response::{self, Request, SendPolicy, Status};
use crate::bootstrap::run::{self, Action, Options, Verdict};
use crate::bootstrap::stack;
use crate::cfn::StackState;
use crate::codebuild::Project;
use crate::config::{self, ConfigArgs};
use crate::deployment::Deployment;
use crate::outcome::{Outcome, usage};
use crate::output::Stdout;

/// Arguments of `deployer bootstrap`.
#[derive(Debug, Args)]
pub struct BootstrapArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: BootstrapCommand,
}

/// Subcommands of `deployer bootstrap`.
#[derive(Debug, Subcommand)]
pub enum BootstrapCommand {
    /// Deploy cfn_bootstrap.yaml into this account (the console form's parameters) and follow
    /// the CodeBuild build that runs `deployer up`.
    Up(UpArgs),
    /// Delete the bootstrap stack and follow the build that runs `deployer down`.
    Down(DownArgs),
    /// Show the bootstrap stack and its project's latest build.
    Status(StatusArgs),
    /// Run `deployer up` or `down` (DEPLOYER_ACTION) and report the result to CloudFormation
    /// when the build answers a custom-resource request (CFN_* variables).
    ///
    /// Besides the settings below it reads DEPLOYER_ACTION (up | down, default up),
    /// DEPLOY_ADMIN_EMAIL (`up --admin-email`), DEPLOY_PURGE_ON_DELETE (yes: `down --purge`),
    /// CODEBUILD_BUILD_ID (named in the reason) and the request: CFN_RESPONSE_URL, CFN_STACK_ID,
    /// CFN_REQUEST_ID, CFN_LOGICAL_RESOURCE_ID, CFN_PHYSICAL_RESOURCE_ID.
    Run(RunArgs),
    /// Send one custom-resource response to CFN_RESPONSE_URL (request from the CFN_* variables).
    Respond(RespondArgs),
}

/// The bootstrap stack: which one, in which account and region.
#[derive(Debug, Args)]
pub struct StackArgs {
    /// Settings (prefix, region, what to deploy; the template's StackPrefix, DeployPromptApp,
    /// DeploySageMakerDomain and StudioGitRepo).
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Name of the bootstrap stack [default: <prefix>-bootstrap].
    #[arg(long, value_name = "NAME", env = "DEPLOY_BOOTSTRAP_STACK")]
    pub stack_name: Option<String>,
}

/// The console form's other parameters (same names, in kebab case).
#[derive(Debug, Args)]
pub struct FormArgs {
    /// SourceRepositoryUrl: public GitHub repository of the deployer (or use --source-s3-location).
    #[arg(
        long,
        value_name = "URL",
        env = "DEPLOY_SOURCE_REPOSITORY_URL",
        default_value = ""
    )]
    pub source_repository_url: String,
    /// SourceVersion: branch, tag or commit of the repository.
    #[arg(
        long,
        value_name = "REF",
        env = "DEPLOY_SOURCE_VERSION",
        default_value = "main"
    )]
    pub source_version: String,
    /// SourceS3Location: BUCKET/KEY.zip of the repository in this region.
    #[arg(
        long,
        value_name = "BUCKET/KEY",
        env = "DEPLOY_SOURCE_S3_LOCATION",
        default_value = ""
    )]
    pub source_s3_location: String,
    /// AdminEmail: first app user; Cognito emails them a temporary password.
    #[arg(
        long,
        value_name = "ADDRESS",
        env = "DEPLOY_ADMIN_EMAIL",
        default_value = ""
    )]
    pub admin_email: String,
    /// BuildComputeType: BUILD_GENERAL1_MEDIUM or BUILD_GENERAL1_LARGE.
    #[arg(
        long,
        value_name = "TYPE",
        env = "DEPLOY_BUILD_COMPUTE_TYPE",
        default_value = "BUILD_GENERAL1_LARGE"
    )]
    pub build_compute_type: String,
    /// PurgeOnDelete: deleting the stack also deletes the data bucket and images.
    #[arg(
        long,
        value_name = "BOOL",
        env = "DEPLOY_PURGE_ON_DELETE",
        default_value = "no"
    )]
    pub purge_on_delete: String,
    /// RedeployToken: change it to run the deployment again with unchanged settings.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "DEPLOY_REDEPLOY_TOKEN",
        default_value = "1"
    )]
    pub redeploy_token: String,
}

/// Arguments of `deployer bootstrap up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// The stack.
    #[command(flatten)]
    pub stack: StackArgs,
    /// The form.
    #[command(flatten)]
    pub form: FormArgs,
    /// Deploy this template instead of the built-in copy of cfn_bootstrap.yaml.
    #[arg(long, value_name = "FILE")]
    pub template: Option<PathBuf>,
}

/// Arguments of `deployer bootstrap down`.
#[derive(Debug, Args)]
pub struct DownArgs {
    /// The stack.
    #[command(flatten)]
    pub stack: StackArgs,
    /// Delete without asking.
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `deployer bootstrap status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The stack.
    #[command(flatten)]
    pub stack: StackArgs,
}

/// How the response is delivered.
#[derive(Debug, Clone, Args)]
pub struct DeliveryArgs {
    /// Limit of one attempt to deliver the response, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub response_timeout: u64,
    /// Attempts to deliver the response (1 s, 2 s, 4 s, ... apart).
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub response_attempts: u32,
}

impl DeliveryArgs {
    fn policy(&self) -> SendPolicy {
        SendPolicy {
            attempt_timeout: Duration::from_secs(self.response_timeout),
            attempts: self.response_attempts,
        }
    }
}

/// Arguments of `deployer bootstrap run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Settings (the same as `deployer up`'s; normally from DEPLOY_* variables).
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Delivery of the response.
    #[command(flatten)]
    pub delivery: DeliveryArgs,
}

/// Response status given to `respond`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusArg {
    /// SUCCESS.
    Success,
    /// FAILED (needs --reason).
    Failed,
}

/// Arguments of `deployer bootstrap respond`.
#[derive(Debug, Args)]
pub struct RespondArgs {
    /// SUCCESS or FAILED.
    #[arg(long, value_enum)]
    pub status: StatusArg,
    /// Why (shown by CloudFormation; shortened to fit its 4096-byte limit).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// An attribute for Fn::GetAtt (repeatable).
    #[arg(long = "data", value_name = "KEY=VALUE")]
    pub data: Vec<String>,
    /// Delivery of the response.
    #[command(flatten)]
    pub delivery: DeliveryArgs,
}

/// Runs `deployer bootstrap ...`.
pub fn run(
    args: &BootstrapArgs,
    env: &dyn Fn(&str) -> Option<String>,
    stdout: &mut Stdout,
) -> anyhow::Result<Outcome> {
    match &args.command {
        BootstrapCommand::Up(args) => crate::runtime()?.block_on(up(args, env, stdout)),
        BootstrapCommand::Down(args) => crate::runtime()?.block_on(down(args, env, stdout)),
        BootstrapCommand::Status(args) => crate::runtime()?.block_on(status(args, env, stdout)),
        BootstrapCommand::Run(args) => run_lifecycle(args, env),
        BootstrapCommand::Respond(args) => respond(args, env),
    }
}

/// The deployment, stack name and project of `args`.
async fn open(
    args: &StackArgs,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<(Deployment, String, Project)> {
    let deployment = Deployment::open(&args.config, env).await?;
    let name = args
        .stack_name
        .clone()
        .unwrap_or_else(|| stack::default_stack_name(&deployment.cfg.prefix));
    let project = Project::new(
        &deployment.sdk,
        &stack::project_name(&deployment.cfg.prefix),
    );
    Ok((deployment, name, project))
}

/// `key = value` lines of a stack's outputs.
fn outputs_text(state: &StackState) -> String {
    state
        .outputs
        .iter()
        .map(|(key, value)| format!("{key} = {value}\n"))
        .collect()
}

async fn up(
    args: &UpArgs,
    env: &dyn Fn(&str) -> Option<String>,
    stdout: &mut Stdout,
) -> anyhow::Result<Outcome> {
    let purge_on_delete =
        stacks::config::parse_bool(&args.form.purge_on_delete).map_err(|err| {
            usage(anyhow::anyhow!(
                "--purge-on-delete (DEPLOY_PURGE_ON_DELETE): {err}"
            ))
        })?;
    let template = match &args.template {
        Some(path) => stack::read_template(path)?,
        None => stack::TEMPLATE.to_owned(),
    };
    let (deployment, name, project) = open(&args.stack, env).await?;
    let form = stack::Form {
        source_repository_url: args.form.source_repository_url.clone(),
        source_version: args.form.source_version.clone(),
        source_s3_location: args.form.source_s3_location.clone(),
        admin_email: args.form.admin_email.clone(),
        build_compute_type: args.form.build_compute_type.clone(),
        purge_on_delete,
        redeploy_token: args.form.redeploy_token.clone(),
    };
    let parameters = stack::parameters(&deployment.cfg, &form)?;
    let account = crate::aws::account_id(&deployment.sdk).await?;
    eprintln!(
        "deploying bootstrap stack {name} to account {account}, region {}",
        deployment.cfg.region
    );
    match stack::deploy(&deployment.cfn, &project, &name, &template, &parameters).await? {
        stack::Deployed::Unchanged(state) => {
            eprintln!(
                "{name}: unchanged (change --redeploy-token to run the deployment again with the same settings)"
            );
            stdout.print(outputs_text(&state))?;
            Ok(Outcome::Done)
        }
        stack::Deployed::Operated(ended) => {
            if !ended.succeeded() {
                stack::show_log_tail(&ended);
                bail!("{}", ended.failure(&name));
            }
            let state = ended.state.as_ref().map(outputs_text).unwrap_or_default();
            stdout.print(state)?;
            Ok(Outcome::Done)
        }
    }
}

async fn down(
    args: &DownArgs,
    env: &dyn Fn(&str) -> Option<String>,
    stdout: &mut Stdout,
) -> anyhow::Result<Outcome> {
    let (deployment, name, project) = open(&args.stack, env).await?;
    if !args.force {
        if !std::io::stdin().is_terminal() {
            return Err(usage(anyhow::anyhow!(
                "`deployer bootstrap down` would delete {name} and, through its build, every {}-* stack; without a terminal to confirm, pass --force",
                deployment.cfg.prefix
            )));
        }
        eprint!(
            "delete {name} and every {}-* stack in {}? [y/N] ",
            deployment.cfg.prefix, deployment.cfg.region
        );
        std::io::stderr().flush().ok();
        let mut answer = String::new();
        std::io::stdin().lock().take(16).read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            stdout.print("nothing deleted\n")?;
            return Ok(Outcome::Done);
        }
    }
    match stack::delete(&deployment.cfn, &project, &name).await? {
        None => {
            stdout.print(format!(
                "nothing to delete: no stack {name} in {}\n",
                deployment.cfg.region
            ))?;
            Ok(Outcome::Done)
        }
        Some(ended) if ended.succeeded() => {
            stdout.print(format!("deleted {name}\n"))?;
            Ok(Outcome::Done)
        }
        Some(ended) => {
            stack::show_log_tail(&ended);
            bail!("{}", ended.failure(&name));
        }
    }
}

async fn status(
    args: &StatusArgs,
    env: &dyn Fn(&str) -> Option<String>,
    stdout: &mut Stdout,
) -> anyhow::Result<Outcome> {
    let (deployment, name, project) = open(&args.stack, env).await?;
    let text = stack::status(&deployment.cfn, &project, &name).await?;
    stdout.print(format!("region {}\n{text}", deployment.cfg.region))?;
    Ok(Outcome::Done)
}

fn request_from(env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Option<Request>> {
    Request::from_env(env).context("reading the CloudFormation request")
}

/// Sends one response, on a runtime of its own (the rest of the command is synchronous).
fn deliver(
    request: &Request,
    status: Status,
    reason: &str,
    data: &Map<String, Json>,
    policy: SendPolicy,
) -> anyhow::Result<()> {
    let body = response::body(request, status, reason, data);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the HTTP runtime")?;
    runtime
        .block_on(response::send(request, body, policy))
        .context("reporting to CloudFormation")?;
    eprintln!(
        "reported {} to CloudFormation ({} {})",
        match status {
            Status::Success => "SUCCESS",
            Status::Failed => "FAILED",
        },
        request.logical_resource_id,
        request.request_id
    );
    Ok(())
}

fn run_lifecycle(args: &RunArgs, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Outcome> {
    let request = request_from(env)?;
    let build = env("CODEBUILD_BUILD_ID")
        .map(|id| format!("CodeBuild build {id}"))
        .unwrap_or_else(|| "not in CodeBuild".to_owned());
    let verdict = execute(args, env, &build);
    if let Some(request) = &request {
        let (status, reason, data) = match &verdict {
            Verdict::Success { summary, data } => (Status::Success, summary.as_str(), data.clone()),
            Verdict::Failure { reason } => (Status::Failed, reason.as_str(), Map::new()),
        };
        deliver(request, status, reason, &data, args.delivery.policy())?;
    }
    match verdict {
        Verdict::Success { summary, .. } => {
            eprintln!("{summary}");
            Ok(Outcome::Done)
        }
        Verdict::Failure { reason } => bail!(reason),
    }
}

/// Everything that can fail before or while the lifecycle command runs ends in a verdict, so
/// that CloudFormation hears about it.
fn execute(args: &RunArgs, env: &dyn Fn(&str) -> Option<String>, build: &str) -> Verdict {
    let fail = |reason: String| Verdict::Failure {
        reason: format!("{reason} ({build})"),
    };
    let action = match Action::parse(env("DEPLOYER_ACTION").as_deref()) {
        Ok(action) => action,
        Err(message) => return fail(message),
    };
    let cfg = match config::resolve(&args.config, env) {
        Ok(cfg) => cfg,
        Err(err) => return fail(format!("invalid setting: {err:#}")),
    };
    let purge = match env("DEPLOY_PURGE_ON_DELETE").filter(|value| !value.is_empty()) {
        None => false,
        Some(value) => match stacks::config::parse_bool(&value) {
            Ok(purge) => purge,
            Err(err) => return fail(format!("DEPLOY_PURGE_ON_DELETE: {err}")),
        },
    };
    let options = Options {
        admin_email: env("DEPLOY_ADMIN_EMAIL").filter(|email| !email.is_empty()),
        purge,
    };
    let work = match run::WorkDir::create() {
        Ok(work) => work,
        Err(err) => return fail(format!("creating a work directory: {err}")),
    };
    let outputs_file = work.path().join("outputs.json");
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(err) => return fail(format!("finding the deployer binary: {err}")),
    };
    let child_args = run::child_args(action, &options, &outputs_file);
    eprintln!("running deployer {}", action.name());
    let end = match run::run_child(&exe, &child_args) {
        Ok(end) => end,
        Err(err) => return fail(format!("running deployer {}: {err}", action.name())),
    };
    let outputs = run::read_outputs(&outputs_file);
    run::verdict(action, &end, &cfg, outputs.as_ref(), build)
}

fn respond(args: &RespondArgs, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Outcome> {
    let Some(request) = request_from(env)? else {
        return Err(usage(anyhow::anyhow!(
            "{} is not set: there is no CloudFormation request to answer",
            response::RESPONSE_URL_VAR
        )));
    };
    let status = match args.status {
        StatusArg::Success => Status::Success,
        StatusArg::Failed => Status::Failed,
    };
    let reason = match (&args.reason, status) {
        (Some(reason), _) => reason.clone(),
        (None, Status::Success) => "done".to_owned(),
        (None, Status::Failed) => {
            return Err(usage(anyhow::anyhow!("--status failed needs --reason")));
        }
    };
    let mut data = Map::new();
    for pair in &args.data {
        let Some((key, value)) = pair.split_once('=').filter(|(key, _)| !key.is_empty()) else {
            return Err(usage(anyhow::anyhow!(
                "--data `{pair}`: expected KEY=VALUE"
            )));
        };
        data.insert(key.to_owned(), Json::String(value.to_owned()));
    }
    deliver(&request, status, &reason, &data, args.delivery.policy())?;
    Ok(Outcome::Done)
}
