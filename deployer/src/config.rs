//! Resolves a [`StackConfig`] from flags, environment variables, an optional TOML file and
//! defaults, in that order of precedence.
//!
//! Each setting is one row of [`SETTINGS`]: its file key (the flag is the key in kebab case),
//! environment variable, help, default and parser. The clap flags (`cli.rs`), the config file's
//! known keys and the settings table of `docs/deploying.md` are all generated from those rows, so a new
//! setting is written once.
//!
//! [`resolve`] is pure apart from reading the `--config` file: the environment is passed in as
//! a lookup function, so tests need not touch the process environment. Every error names the
//! source (flag, variable, or file and line) and, for toggles, the accepted spellings.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use stacks::config::{
    ConfigError, StackConfig, TaskSize, check_batch_expiry_days, check_budget_email,
    check_git_repo, check_group_name, check_kms_key, check_prefix, check_region, check_secret_name,
    check_task_count, parse_bool, parse_kms_key, parse_u32,
};

/// A configuration being resolved: the stack config, plus the task size's two halves, which
/// are only checked as a pair once every setting has been read.
#[derive(Debug)]
pub struct Draft {
    cfg: StackConfig,
    cpu: u32,
    memory: u32,
}

/// One setting, written once.
pub struct Setting {
    /// Key in a `--config` file; the flag is `--<key with - for _>`.
    pub key: &'static str,
    /// Environment variable.
    pub env: &'static str,
    /// Placeholder of the flag's value in `--help`.
    pub value_name: &'static str,
    /// What it does (one line, no trailing period).
    pub help: &'static str,
    /// The default, as a user would write it, read from [`StackConfig::default`].
    pub default: fn(&StackConfig) -> String,
    /// Checks a value and stores it in the draft.
    pub apply: fn(&mut Draft, &str) -> Result<(), ConfigError>,
}

impl Setting {
    /// The flag's long name (`task-cpu`).
    pub fn flag(&self) -> String {
        self.key.replace('_', "-")
    }

    /// The default value shown in `--help` and in `docs/deploying.md`.
    pub fn default_text(&self) -> String {
        (self.default)(&StackConfig::default())
    }
}

fn yes_no(on: bool) -> String {
    if on { "yes" } else { "no" }.to_owned()
}

/// Every setting, in the order they are documented.
pub const SETTINGS: &[Setting] = &[
    Setting {
        key: "prefix",
        env: "DEPLOY_STACK_PREFIX",
        value_name: "PREFIX",
        help: "prefix of stack, export and resource names",
        default: |cfg| cfg.prefix.clone(),
        apply: |draft, value| {
            check_prefix(value)?;
            draft.cfg.prefix = value.to_owned();
            Ok(())
        },
    },
    Setting {
        key: "region",
        env: "AWS_REGION",
        value_name: "REGION",
        help: "region of the stacks (and of the cfn-lint run); a region of the commercial `aws` partition",
        default: |cfg| cfg.region.clone(),
        apply: |draft, value| {
            check_region(value)?;
            draft.cfg.region = value.to_owned();
            Ok(())
        },
    },
    Setting {
        key: "deploy_sagemaker_domain",
        env: "DEPLOY_SAGEMAKER_DOMAIN",
        value_name: "BOOL",
        help: "synthesize the Studio stack",
        default: |cfg| yes_no(cfg.deploy_sagemaker_domain),
        apply: |draft, value| {
            draft.cfg.deploy_sagemaker_domain = parse_bool(value)?;
            Ok(())
        },
    },
    Setting {
        key: "deploy_prompt_app",
        env: "DEPLOY_PROMPT_APP",
        value_name: "BOOL",
        help: "synthesize the app stack",
        default: |cfg| yes_no(cfg.deploy_prompt_app),
        apply: |draft, value| {
            draft.cfg.deploy_prompt_app = parse_bool(value)?;
            Ok(())
        },
    },
    Setting {
        key: "cdk_nag",
        env: "CDK_NAG",
        value_name: "BOOL",
        help: "run the security rule pack at synth (templates unchanged)",
        default: |cfg| yes_no(cfg.cdk_nag),
        apply: |draft, value| {
            draft.cfg.cdk_nag = parse_bool(value)?;
            Ok(())
        },
    },
    Setting {
        key: "cloudfront_access_logs",
        env: "DEPLOY_CLOUDFRONT_ACCESS_LOGS",
        value_name: "BOOL",
        help: "CloudFront access logs to the logs bucket",
        default: |cfg| yes_no(cfg.cloudfront_access_logs),
        apply: |draft, value| {
            draft.cfg.cloudfront_access_logs = parse_bool(value)?;
            Ok(())
        },
    },
    Setting {
        key: "task_cpu",
        env: "DEPLOY_TASK_CPU",
        value_name: "UNITS",
        help: "Fargate CPU units (512 = 0.5 vCPU)",
        default: |cfg| cfg.task_size.cpu().to_string(),
        apply: |draft, value| {
            draft.cpu = parse_u32(value)?;
            Ok(())
        },
    },
    Setting {
        key: "task_memory",
        env: "DEPLOY_TASK_MEMORY",
        value_name: "MIB",
        help: "Fargate memory MiB; must pair with the CPU as Fargate allows",
        default: |cfg| cfg.task_size.memory().to_string(),
        apply: |draft, value| {
            draft.memory = parse_u32(value)?;
            Ok(())
        },
    },
    Setting {
        key: "task_count",
        env: "DEPLOY_TASK_COUNT",
        value_name: "N",
        help: "app tasks behind the load balancer (1-10; two or more are spread over both Availability Zones and share the DynamoDB store)",
        default: |cfg| cfg.task_count.to_string(),
        apply: |draft, value| {
            let count = parse_u32(value)?;
            check_task_count(count)?;
            draft.cfg.task_count = count;
            Ok(())
        },
    },
    Setting {
        key: "batch_expiry_days",
        env: "DEPLOY_BATCH_EXPIRY_DAYS",
        value_name: "DAYS",
        help: "days after which Bedrock batch inference inputs and outputs (the data bucket's llm-eval-batch/ prefix) expire (1-3650)",
        default: |cfg| cfg.batch_expiry_days.to_string(),
        apply: |draft, value| {
            let days = parse_u32(value)?;
            check_batch_expiry_days(days)?;
            draft.cfg.batch_expiry_days = days;
            Ok(())
        },
    },
    Setting {
        key: "studio_git_repo",
        env: "DEPLOY_STUDIO_GIT_REPO",
        value_name: "URL",
        help: "repository the Studio lifecycle configuration clones (https only)",
        default: |cfg| cfg.studio_git_repo.clone(),
        apply: |draft, value| {
            check_git_repo(value)?;
            draft.cfg.studio_git_repo = value.to_owned();
            Ok(())
        },
    },
    Setting {
        key: "openai_secret_name",
        env: "DEPLOY_OPENAI_SECRET_NAME",
        value_name: "NAME",
        help: "the only Secrets Manager secret the task may read besides its own",
        default: |cfg| cfg.openai_secret_name.clone(),
        apply: |draft, value| {
            check_secret_name(value)?;
            draft.cfg.openai_secret_name = value.to_owned();
            Ok(())
        },
    },
    Setting {
        key: "facilitator_group",
        env: "DEPLOY_FACILITATOR_GROUP",
        value_name: "NAME",
        help: "the user pool group whose members are the web app's facilitators (users add --facilitator puts a user in it)",
        default: |cfg| cfg.facilitator_group.clone(),
        apply: |draft, value| {
            check_group_name(value)?;
            draft.cfg.facilitator_group = value.to_owned();
            Ok(())
        },
    },
    Setting {
        key: "kms_key",
        env: "DEPLOY_KMS_KEY",
        value_name: "no|yes|ARN",
        help: "customer managed KMS key of the store table, log groups, secrets and Studio domain: no (AWS managed keys), yes (create one with rotation; about 1 USD a month) or an existing key's ARN in the stacks' region",
        default: |cfg| cfg.kms_key.to_string(),
        apply: |draft, value| {
            draft.cfg.kms_key = parse_kms_key(value)?;
            Ok(())
        },
    },
    Setting {
        key: "lean_network",
        env: "DEPLOY_LEAN_NETWORK",
        value_name: "BOOL",
        help: "one NAT gateway for both zones (not one per zone) and free S3 and DynamoDB gateway endpoints: about 36 USD a month less, but an outage of the NAT's zone also cuts the other zone's way out (docs/economics.md)",
        default: |cfg| yes_no(cfg.lean_network),
        apply: |draft, value| {
            draft.cfg.lean_network = parse_bool(value)?;
            Ok(())
        },
    },
    Setting {
        key: "fargate_spot",
        env: "DEPLOY_FARGATE_SPOT",
        value_name: "BOOL",
        help: "run the app tasks on Fargate Spot (about 70% cheaper, interruptible with 2 minutes' notice; runs resume on the next task through the store's lease)",
        default: |cfg| yes_no(cfg.fargate_spot),
        apply: |draft, value| {
            draft.cfg.fargate_spot = parse_bool(value)?;
            Ok(())
        },
    },
    Setting {
        key: "task_egress",
        env: "DEPLOY_TASK_EGRESS",
        value_name: "nat|public-ip",
        help: "how the app's tasks reach Bedrock, ECR and the internet: nat (private subnets behind NAT gateways) or public-ip (public subnets, a public address per task that only the load balancer may reach, no NAT gateway: saves 73.00 USD a month, 36.50 with DEPLOY_LEAN_NETWORK, for 3.65 a task; needs DEPLOY_SAGEMAKER_DOMAIN=no; docs/economics.md)",
        default: |cfg| cfg.task_egress.to_string(),
        apply: |draft, value| {
            draft.cfg.task_egress = stacks::config::parse_task_egress(value)?;
            Ok(())
        },
    },
    Setting {
        key: "budget_usd",
        env: "DEPLOY_BUDGET_USD",
        value_name: "USD",
        help: "monthly AWS Budgets cost budget of the account, alerting DEPLOY_BUDGET_EMAIL at 80% spent and 100% forecast (0: no budget)",
        default: |cfg| cfg.budget_usd.to_string(),
        apply: |draft, value| {
            draft.cfg.budget_usd = parse_u32(value)?;
            Ok(())
        },
    },
    Setting {
        key: "budget_email",
        env: "DEPLOY_BUDGET_EMAIL",
        value_name: "ADDRESS",
        help: "who the budget alerts go to (needed with DEPLOY_BUDGET_USD)",
        default: |cfg| cfg.budget_email.clone(),
        apply: |draft, value| {
            if !value.is_empty() {
                check_budget_email(value)?;
            }
            draft.cfg.budget_email = value.to_owned();
            Ok(())
        },
    },
];

/// The settings as given on the command line: the `--config` file and the flags that were set.
/// Built by clap from [`SETTINGS`] (see `cli.rs`).
#[derive(Debug, Clone, Default)]
pub struct ConfigArgs {
    /// TOML file with any of the settings.
    pub config: Option<PathBuf>,
    /// Flags given, by setting key.
    flags: Vec<(&'static str, String)>,
}

impl ConfigArgs {
    /// The value of the flag of setting `key`, if it was given.
    pub fn flag(&self, key: &str) -> Option<&str> {
        self.flags
            .iter()
            .find(|(name, _)| *name == key)
            .map(|(_, value)| value.as_str())
    }

    /// Records the flag of setting `key` (a later value replaces an earlier one).
    pub fn set_flag(&mut self, key: &'static str, value: String) {
        self.flags.retain(|(name, _)| *name != key);
        self.flags.push((key, value));
    }
}

/// One entry of a `--config` file: key, value as text (booleans and numbers as written) and
/// the 1-based line of the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Setting key.
    pub key: String,
    /// Value as text.
    pub value: String,
    /// Line of the key in the file.
    pub line: usize,
}

/// The largest `--config` file read: a deploy.toml holds a dozen short settings, so anything
/// near this is not one (`/dev/zero` used to be read until memory ran out).
pub const MAX_CONFIG_SIZE: crate::input::ByteSize = crate::input::ByteSize(1 << 20);

/// The longest setting value, from any source; longer values are refused without being echoed
/// (a 1 GB line used to be copied into the error).
pub const MAX_SETTING_CHARS: usize = 1024;

/// Reads a `--config` file; errors name the file and, where there is one, the line.
fn read_file(path: &Path) -> anyhow::Result<Vec<FileEntry>> {
    let bytes = match crate::input::read_capped(path, MAX_CONFIG_SIZE, "--config") {
        Ok(bytes) => bytes,
        Err(crate::input::InputError::TooLarge { limit, .. }) => bail!(
            "config file {} is larger than {limit}, far more than a deploy.toml holds; is it the right file?",
            path.display()
        ),
        Err(crate::input::InputError::Io { source, .. }) => {
            return Err(anyhow::Error::new(source)
                .context(format!("reading config file {}", path.display())));
        }
    };
    let text = String::from_utf8(bytes).map_err(|error| {
        let valid = &error.as_bytes()[..error.utf8_error().valid_up_to()];
        anyhow::anyhow!(
            "config file {}:{}: not valid UTF-8",
            path.display(),
            valid.iter().filter(|byte| **byte == b'\n').count() + 1
        )
    })?;
    parse_file(&text).with_context(|| format!("config file {}", path.display()))
}

/// At most `max_chars` characters of `text`, control characters escaped, a cut marked `…`.
fn excerpt(text: &str, max_chars: usize) -> String {
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n == max_chars {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// A TOML error as `line L, column C: message`, without the source line toml quotes (which
/// may be a megabyte long).
fn toml_error(text: &str, error: &toml::de::Error) -> anyhow::Error {
    let message = excerpt(error.message().trim(), 200);
    match error.span() {
        Some(span) => {
            let line = line_of(text, span.start);
            let line_start = text
                .get(..span.start)
                .and_then(|before| before.rfind('\n'))
                .map_or(0, |at| at + 1);
            let column = text
                .get(line_start..span.start)
                .map_or(1, |part| part.chars().count() + 1);
            anyhow::anyhow!("line {line}, column {column}: invalid TOML: {message}")
        }
        None => anyhow::anyhow!("invalid TOML: {message}"),
    }
}

/// 1-based line of byte offset `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text.get(..at).unwrap_or(text).matches('\n').count() + 1
}

/// Parses config file text; unknown keys and non-scalar values are errors naming the line.
pub fn parse_file(text: &str) -> anyhow::Result<Vec<FileEntry>> {
    let table: toml::Table = text.parse().map_err(|error| toml_error(text, &error))?;
    // The same text parsed again with spans, only to find each key's line.
    let spanned = toml::de::DeTable::parse(text).map_err(|error| toml_error(text, &error))?;
    let line = |key: &str| {
        spanned
            .get_ref()
            .iter()
            .find(|(name, _)| name.get_ref().as_ref() == key)
            .map_or(1, |(name, _)| line_of(text, name.span().start))
    };
    let known: Vec<&str> = SETTINGS.iter().map(|setting| setting.key).collect();
    let mut entries = Vec::with_capacity(table.len());
    for (key, value) in table {
        let line = line(&key);
        if !known.contains(&key.as_str()) {
            bail!(
                "line {line}: unknown key `{key}`; known keys: {}",
                known.join(", ")
            );
        }
        let value = match value {
            toml::Value::String(text) => text,
            toml::Value::Boolean(flag) => flag.to_string(),
            toml::Value::Integer(number) => number.to_string(),
            other => bail!(
                "line {line}: {key}: expected a string, boolean or integer, got {}",
                other.type_str()
            ),
        };
        entries.push(FileEntry { key, value, line });
    }
    Ok(entries)
}

/// Builds the config from flags > environment > file > defaults.
pub fn resolve(
    args: &ConfigArgs,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<StackConfig> {
    let file = match &args.config {
        Some(path) => read_file(path)?,
        None => Vec::new(),
    };
    let file_name = args
        .config
        .as_ref()
        .map(|path| path.display().to_string())
        .unwrap_or_default();
    let defaults = StackConfig::default();
    let mut draft = Draft {
        cpu: defaults.task_size.cpu(),
        memory: defaults.task_size.memory(),
        cfg: defaults,
    };
    // Where each given setting came from: the task size's two halves are checked as a pair
    // at the end.
    let mut sources: Vec<(&str, String)> = Vec::new();
    for setting in SETTINGS {
        let (value, source) = if let Some(value) = args.flag(setting.key) {
            (value.to_owned(), format!("--{}", setting.flag()))
        } else if let Some(value) = env(setting.env) {
            (value, setting.env.to_owned())
        } else if let Some(entry) = file.iter().find(|entry| entry.key == setting.key) {
            (
                entry.value.clone(),
                format!("{file_name}:{}: {}", entry.line, setting.key),
            )
        } else {
            continue;
        };
        if value.chars().count() > MAX_SETTING_CHARS {
            bail!(
                "{source}: the value is {} characters long; no setting takes more than {MAX_SETTING_CHARS}",
                value.chars().count()
            );
        }
        (setting.apply)(&mut draft, &value).with_context(|| source.clone())?;
        sources.push((setting.key, source));
    }
    let source_of = |key: &str| {
        sources
            .iter()
            .find(|(name, _)| *name == key)
            .map_or("default", |(_, source)| source.as_str())
    };
    draft.cfg.task_size = TaskSize::new(draft.cpu, draft.memory).with_context(|| {
        format!(
            "CPU from {}, memory from {}",
            source_of("task_cpu"),
            source_of("task_memory")
        )
    })?;
    check_kms_key(&draft.cfg.kms_key, &draft.cfg.region).with_context(|| {
        format!(
            "KMS key from {}, region from {}",
            source_of("kms_key"),
            source_of("region")
        )
    })?;
    // Every row checked its own value; this also covers the defaults.
    draft.cfg.validate()?;
    Ok(draft.cfg)
}

/// True when setting `key` was given by a flag, its variable or the `--config` file (not
/// defaulted).
pub fn is_given(
    args: &ConfigArgs,
    env: &dyn Fn(&str) -> Option<String>,
    key: &str,
) -> anyhow::Result<bool> {
    let Some(setting) = SETTINGS.iter().find(|setting| setting.key == key) else {
        bail!("internal: no setting `{key}`");
    };
    if args.flag(key).is_some() || env(setting.env).is_some() {
        return Ok(true);
    }
    let file = match &args.config {
        Some(path) => read_file(path)?,
        None => Vec::new(),
    };
    Ok(file.iter().any(|entry| entry.key == key))
}

/// The settings table of `docs/deploying.md` (flag, environment, file key, default, effect),
/// generated from [`SETTINGS`]; a test keeps the page's copy current.
#[cfg(test)]
fn settings_table() -> String {
    let mut table = String::from(
        "| flag | environment | file key | default | effect |\n|---|---|---|---|---|\n",
    );
    for setting in SETTINGS {
        let default = setting.default_text();
        let default = if default.is_empty() {
            "(none)".to_string()
        } else if default.parse::<u32>().is_ok() || ["yes", "no"].contains(&default.as_str()) {
            default
        } else {
            format!("`{default}`")
        };
        table.push_str(&format!(
            "| `--{}` | `{}` | `{}` | {default} | {} |\n",
            setting.flag(),
            setting.env,
            setting.key,
            setting.help
        ));
    }
    table
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Resolves with `flags` applied to default args and `env` as the environment.
    fn run(edit: fn(&mut ConfigArgs), env: &[(&str, &str)]) -> Result<StackConfig, String> {
        let mut args = ConfigArgs::default();
        edit(&mut args);
        let lookup = |name: &str| {
            env.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        };
        resolve(&args, &lookup).map_err(|err| format!("{err:#}"))
    }

    fn check(edit: fn(&mut ConfigArgs), env: &[(&str, &str)], expected: fn(&StackConfig) -> bool) {
        let cfg = run(edit, env).unwrap();
        assert!(expected(&cfg), "{cfg:?}");
    }

    fn check_err(edit: fn(&mut ConfigArgs), env: &[(&str, &str)], expected: &str) {
        assert_eq!(run(edit, env).unwrap_err(), expected);
    }

    #[test]
    fn defaults() {
        check(|_| {}, &[], |c| *c == StackConfig::default())
    }
    #[test]
    fn env_no_studio() {
        check(
            |_| {},
            &[("DEPLOY_SAGEMAKER_DOMAIN", "no")],
            |c| !c.deploy_sagemaker_domain,
        )
    }
    #[test]
    fn env_false_app() {
        check(
            |_| {},
            &[("DEPLOY_PROMPT_APP", "FALSE")],
            |c| !c.deploy_prompt_app,
        )
    }
    #[test]
    fn env_nag_true() {
        check(|_| {}, &[("CDK_NAG", "True")], |c| c.cdk_nag)
    }
    #[test]
    fn env_nag_one() {
        check(|_| {}, &[("CDK_NAG", "1")], |c| c.cdk_nag)
    }
    #[test]
    fn flag_beats_env() {
        check(
            |a| a.set_flag("cdk_nag", "no".into()),
            &[("CDK_NAG", "yes")],
            |c| !c.cdk_nag,
        )
    }
    #[test]
    fn env_region() {
        check(
            |_| {},
            &[("AWS_REGION", "eu-west-1")],
            |c| c.region == "eu-west-1",
        )
    }
    #[test]
    fn flag_region() {
        check(
            |a| a.set_flag("region", "eu-west-2".into()),
            &[("AWS_REGION", "eu-west-1")],
            |c| c.region == "eu-west-2",
        )
    }
    #[test]
    fn task_size() {
        check(
            |a| a.set_flag("task_cpu", "1024".into()),
            &[("DEPLOY_TASK_MEMORY", "2048")],
            |c| c.task_size == TaskSize::new(1024, 2048).unwrap(),
        )
    }
    #[test]
    fn task_count() {
        check(|_| {}, &[], |c| c.task_count == 1);
        check(
            |a| a.set_flag("task_count", "3".into()),
            &[("DEPLOY_TASK_COUNT", "2")],
            |c| c.task_count == 3,
        );
        check(|_| {}, &[("DEPLOY_TASK_COUNT", "2")], |c| c.task_count == 2);
        check_err(
            |_| {},
            &[("DEPLOY_TASK_COUNT", "0")],
            "DEPLOY_TASK_COUNT: task count 0 is out of range; run 1 to 10 tasks",
        );
        check_err(
            |a| a.set_flag("task_count", "many".into()),
            &[],
            "--task-count: `many` is not a whole number",
        );
    }
    #[test]
    fn batch_expiry_days() {
        check(|_| {}, &[], |c| c.batch_expiry_days == 30);
        check(
            |_| {},
            &[("DEPLOY_BATCH_EXPIRY_DAYS", "7")],
            |c| c.batch_expiry_days == 7,
        );
        check_err(
            |_| {},
            &[("DEPLOY_BATCH_EXPIRY_DAYS", "0")],
            "DEPLOY_BATCH_EXPIRY_DAYS: batch expiry of 0 days is out of range; use 1 to 3650 days",
        );
    }
    #[test]
    fn kms_key() {
        use stacks::config::KmsKey;
        const ARN: &str =
            "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        check(|_| {}, &[], |c| c.kms_key == KmsKey::AwsManaged);
        check(
            |_| {},
            &[("DEPLOY_KMS_KEY", "yes")],
            |c| c.kms_key == KmsKey::Create,
        );
        check(
            |a| a.set_flag("kms_key", ARN.into()),
            &[("DEPLOY_KMS_KEY", "yes")],
            |c| c.kms_key == KmsKey::Existing(ARN.into()),
        );
        check_err(
            |_| {},
            &[("DEPLOY_KMS_KEY", "alias/mine")],
            "DEPLOY_KMS_KEY: KMS key `alias/mine` is invalid; use no (default), yes (create a key) or a key ARN like arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        );
        check_err(
            |_| {},
            &[("DEPLOY_KMS_KEY", ARN), ("AWS_REGION", "eu-west-1")],
            &format!(
                "KMS key from DEPLOY_KMS_KEY, region from AWS_REGION: KMS key `{ARN}` is in region us-east-1, but the stacks deploy to eu-west-1; use a key of eu-west-1"
            ),
        );
    }
    #[test]
    fn bad_env_bool() {
        check_err(
            |_| {},
            &[("DEPLOY_PROMPT_APP", "maybe")],
            "DEPLOY_PROMPT_APP: `maybe` is not a boolean; accepted values: yes, no, true, false, 1, 0 (case-insensitive)",
        )
    }
    #[test]
    fn bad_flag_bool() {
        check_err(
            |a| a.set_flag("deploy_sagemaker_domain", "on".into()),
            &[],
            "--deploy-sagemaker-domain: `on` is not a boolean; accepted values: yes, no, true, false, 1, 0 (case-insensitive)",
        )
    }
    #[test]
    fn bad_number() {
        check_err(
            |_| {},
            &[("DEPLOY_TASK_CPU", "half")],
            "DEPLOY_TASK_CPU: `half` is not a whole number",
        )
    }
    #[test]
    fn bad_size() {
        check_err(
            |a| a.set_flag("task_memory", "512".into()),
            &[],
            "CPU from default, memory from --task-memory: task size 512 CPU units / 512 MiB is not a Fargate size; e.g. 256/512, 512/1024, 1024/2048, 2048/4096, 4096/8192",
        )
    }
    #[test]
    fn bad_prefix() {
        check_err(
            |a| a.set_flag("prefix", "My_App".into()),
            &[],
            "--prefix: stack prefix `My_App` is invalid; use 1-20 lowercase letters, digits and `-`, starting with a letter",
        )
    }

    fn check_file(text: &str, expected: Result<&[(&str, &str)], &str>) {
        let actual = parse_file(text).map_err(|err| format!("{err:#}"));
        match expected {
            Ok(pairs) => {
                let pairs: Vec<(String, String)> = pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect();
                let got: Vec<(String, String)> = actual
                    .unwrap()
                    .into_iter()
                    .map(|entry| (entry.key, entry.value))
                    .collect();
                assert_eq!(got, pairs);
            }
            Err(message) => assert_eq!(actual.unwrap_err(), message),
        }
    }

    #[test]
    fn file_scalars() {
        check_file(
            "prefix = \"demo\"\ncdk_nag = true\ntask_cpu = 1024\ndeploy_prompt_app = \"no\"\n",
            // Keys come back sorted (toml tables are ordered maps).
            Ok(&[
                ("cdk_nag", "true"),
                ("deploy_prompt_app", "no"),
                ("prefix", "demo"),
                ("task_cpu", "1024"),
            ]),
        )
    }
    #[test]
    fn file_unknown_key() {
        check_file(
            "prefix = \"demo\"\n\nprefx = \"demo\"",
            Err(
                "line 3: unknown key `prefx`; known keys: prefix, region, deploy_sagemaker_domain, deploy_prompt_app, cdk_nag, cloudfront_access_logs, task_cpu, task_memory, task_count, batch_expiry_days, studio_git_repo, openai_secret_name, facilitator_group, kms_key, lean_network, fargate_spot, task_egress, budget_usd, budget_email",
            ),
        )
    }
    #[test]
    fn file_array_value() {
        check_file(
            "region = [\"a\"]",
            Err("line 1: region: expected a string, boolean or integer, got array"),
        )
    }
    #[test]
    fn file_float_value_names_line() {
        check_file(
            "prefix = \"a\"\ntask_cpu = 1.5\n",
            Err("line 2: task_cpu: expected a string, boolean or integer, got float"),
        )
    }
    #[test]
    fn file_table_names_line() {
        check_file(
            "prefix = \"a\"\n[sec]\nx = 1\n",
            Err(
                "line 2: unknown key `sec`; known keys: prefix, region, deploy_sagemaker_domain, deploy_prompt_app, cdk_nag, cloudfront_access_logs, task_cpu, task_memory, task_count, batch_expiry_days, studio_git_repo, openai_secret_name, facilitator_group, kms_key, lean_network, fargate_spot, task_egress, budget_usd, budget_email",
            ),
        )
    }
    #[test]
    fn file_bad_toml() {
        let error = parse_file("prefix = ").unwrap_err().to_string();
        assert!(
            error.starts_with("line 1, column 10: invalid TOML: "),
            "{error}"
        );
    }

    #[test]
    fn regression_hostile_config_files_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let run = |path: &Path| {
            let args = ConfigArgs {
                config: Some(path.to_path_buf()),
                ..ConfigArgs::default()
            };
            format!("{:#}", resolve(&args, &|_: &str| None).unwrap_err())
        };
        // An endless file stops at the limit.
        let error = run(Path::new("/dev/zero"));
        assert!(
            error.starts_with("config file /dev/zero is larger than 1 MiB"),
            "{error}"
        );
        // A long broken line is not copied into the error.
        let path = dir.path().join("deploy.toml");
        std::fs::write(&path, format!("prefix = \"{}", "x".repeat(500_000))).unwrap();
        let error = run(&path);
        assert!(
            error.len() < 600,
            "{} bytes: {}",
            error.len(),
            &error[..600]
        );
        assert!(error.contains("deploy.toml: line 1, column "), "{error}");
        // Nor is a long value.
        std::fs::write(&path, format!("prefix = \"{}\"\n", "x".repeat(500_000))).unwrap();
        let error = run(&path);
        assert!(error.len() < 300, "{error}");
        assert!(
            error.ends_with("deploy.toml:1: prefix: the value is 500000 characters long; no setting takes more than 1024"),
            "{error}"
        );
    }

    #[test]
    fn precedence_file_env_flag() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deploy.toml");
        std::fs::write(&path, "prefix = \"fromfile\"\nregion = \"eu-north-1\"\ncdk_nag = \"yes\"\ndeploy_prompt_app = \"maybe\"\n").unwrap();
        let mut args = ConfigArgs {
            config: Some(path.clone()),
            ..ConfigArgs::default()
        };
        let env = |name: &str| match name {
            "AWS_REGION" => Some("ap-south-1".to_owned()),
            "DEPLOY_PROMPT_APP" => Some("no".to_owned()),
            _ => None,
        };
        args.set_flag("cdk_nag", "0".into());
        let cfg = resolve(&args, &env).unwrap();
        assert_eq!(cfg.prefix, "fromfile");
        assert_eq!(cfg.region, "ap-south-1");
        assert!(!cfg.cdk_nag);
        // The file's bad value is never parsed because the environment wins.
        assert!(!cfg.deploy_prompt_app);

        let no_env = |_: &str| None;
        let err = format!(
            "{:#}",
            resolve(
                &ConfigArgs {
                    config: Some(path.clone()),
                    ..ConfigArgs::default()
                },
                &no_env
            )
            .unwrap_err()
        );
        assert_eq!(
            err,
            format!(
                "{}:4: deploy_prompt_app: `maybe` is not a boolean; accepted values: yes, no, true, false, 1, 0 (case-insensitive)",
                path.display()
            )
        );
    }

    #[test]
    fn missing_file() {
        let args = ConfigArgs {
            config: Some("/nonexistent/deploy.toml".into()),
            ..ConfigArgs::default()
        };
        let err = format!("{:#}", resolve(&args, &|_: &str| None).unwrap_err());
        assert!(
            err.starts_with("reading config file /nonexistent/deploy.toml: "),
            "{err}"
        );
    }

    /// The settings table of `docs/deploying.md` is generated from [`SETTINGS`]; `UPDATE_DOCS=1`
    /// rewrites it. (The test keeps its old name, so `cargo test -p deployer readme_settings_table`
    /// still selects it.)
    #[test]
    fn readme_settings_table_is_current() {
        const START: &str = "<!-- generated: settings-table (by `cargo test -p deployer readme_settings_table`; UPDATE_DOCS=1 rewrites it) -->\n";
        const END: &str = "<!-- end: settings-table -->";
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/deploying.md");
        let page = std::fs::read_to_string(&path).unwrap();
        let start = page
            .find(START)
            .expect("docs/deploying.md has the settings-table start marker")
            + START.len();
        let end = start
            + page[start..]
                .find(END)
                .expect("docs/deploying.md has the settings-table end marker");
        let table = settings_table();
        if page[start..end] != table {
            if std::env::var_os("UPDATE_DOCS").is_some() {
                let updated = format!("{}{table}{}", &page[..start], &page[end..]);
                std::fs::write(&path, updated).unwrap();
            } else {
                panic!(
                    "the settings table in docs/deploying.md is stale; run `UPDATE_DOCS=1 cargo test -p deployer readme_settings_table`:\n{table}"
                );
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn parse_file_never_panics(text in ".*") {
            let _ = parse_file(&text);
        }

        #[test]
        fn resolve_never_panics(value in ".*") {
            let mut args = ConfigArgs::default();
            args.set_flag("prefix", value.clone());
            args.set_flag("task_cpu", value.clone());
            let env = |_: &str| Some(value.clone());
            let _ = resolve(&args, &env);
        }
    }
}
