//! `deployer bootstrap run | respond`: what the one-click install's build runs.
//!
//! `run` is the build phase of `buildspec.yml`: it runs `deployer up` (or `down`, per
//! `DEPLOYER_ACTION`) and, when CloudFormation waits for the build (`CFN_RESPONSE_URL` and the
//! other `CFN_*` variables, set by the bootstrap Lambda), sends it SUCCESS with the app's URL
//! and user pool id, or FAILED with the deployer's root-cause line. Settings that cannot be used
//! are reported to CloudFormation the same way, so a stack never waits for an answer that will
//! not come. `respond` sends one answer by hand, for other buildspecs and for scripts.

use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Map, Value as Json};

use crate::bootstrap::response::{self, Request, SendPolicy, Status};
use crate::bootstrap::run::{self, Action, Options, Verdict};
use crate::config::{self, ConfigArgs};
use crate::outcome::{Outcome, usage};

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
pub fn run(args: &BootstrapArgs, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Outcome> {
    match &args.command {
        BootstrapCommand::Run(args) => run_lifecycle(args, env),
        BootstrapCommand::Respond(args) => respond(args, env),
    }
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
