//! Command-line interface: clap definitions only, no behaviour.
//!
//! The settings flags ([`ConfigArgs`]) are generated from the rows of `config::SETTINGS`; each
//! is also an environment variable and a key of the optional `--config` TOML file, and
//! `config::resolve` applies the precedence flag > env > file > default. Values stay strings
//! here so all three sources share one parser and one error format.

use std::path::PathBuf;

use clap::{Arg, ArgMatches, Args, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::config::SETTINGS;

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
    /// Read-only preflight of the account: credentials, region, model access and quotas, an
    /// existing Studio domain, service-linked roles, VPC and address headroom.
    Doctor(crate::commands::doctor::DoctorArgs),
    /// Estimate the monthly cost of the configuration: idle (running and paused) and per 1,000
    /// evaluated records, line by line, from the shipped price table (no AWS access needed).
    Cost(crate::commands::cost::CostArgs),
    /// Deploy every stack (toolkit, network, app, studio), in dependency order.
    Up(crate::commands::up::UpArgs),
    /// Show what `up` would change: template differences and change sets (deleted again).
    Diff(crate::commands::diff::DiffArgs),
    /// Show each stack's state and outputs, and the app service's tasks and image.
    Status(crate::commands::status::StatusArgs),
    /// Stop paying by the hour: scale the app service to zero, remove the load balancer, the
    /// CloudFront VPC origin, the NAT gateways and their addresses; the URL shows a paused page
    /// (data, users and stacks are kept).
    Pause(crate::commands::pause::PauseArgs),
    /// Bring a paused deployment back (NAT gateways, then load balancer, VPC origin and app
    /// tasks).
    Resume(crate::commands::pause::PauseArgs),
    /// Delete the stacks, in reverse dependency order.
    Down(crate::commands::down::DownArgs),
    /// Manage the app's users (Cognito): add, list, remove, reset-password.
    Users(crate::commands::users::UsersArgs),
    /// The one-click install: deploy cfn_bootstrap.yaml and follow its build (up, down, status),
    /// and the build's own side (run, respond).
    Bootstrap(crate::commands::bootstrap::BootstrapArgs),
    /// The lifecycle in many accounts (workshops): up, down, status, users --targets FILE.
    Fleet(crate::commands::fleet::FleetArgs),
    /// Build the app image without a Docker daemon, or push it to a registry.
    Image(crate::commands::image::ImageArgs),
}

pub use crate::config::ConfigArgs;

/// Clap id of the `--config` flag.
const CONFIG_FILE_ID: &str = "config";

// `ConfigArgs` is built from the rows of `config::SETTINGS` rather than derived, so a setting
// is written once: its flag, help, `[env: ...]` and `[default: ...]` all come from its row.
impl Args for ConfigArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        let cmd = cmd.arg(
            Arg::new(CONFIG_FILE_ID)
                .long("config")
                .value_name("FILE")
                .value_parser(clap::value_parser!(PathBuf))
                .help("TOML file with any of the settings below (keys in snake_case)"),
        );
        SETTINGS.iter().fold(cmd, |cmd, setting| {
            cmd.arg(
                Arg::new(setting.key)
                    .long(setting.flag())
                    .value_name(setting.value_name)
                    .help(format!(
                        "{} [env: {}] [default: {}]",
                        setting.help,
                        setting.env,
                        setting.default_text()
                    )),
            )
        })
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        ConfigArgs::augment_args(cmd)
    }
}

impl FromArgMatches for ConfigArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<ConfigArgs, clap::Error> {
        let mut args = ConfigArgs::default();
        args.update_from_arg_matches(matches)?;
        Ok(args)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        if let Some(path) = matches.get_one::<PathBuf>(CONFIG_FILE_ID) {
            self.config = Some(path.clone());
        }
        for setting in SETTINGS {
            if let Some(value) = matches.get_one::<String>(setting.key) {
                self.set_flag(setting.key, value.clone());
            }
        }
        Ok(())
    }
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
