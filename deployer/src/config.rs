//! Resolves a [`StackConfig`] from flags, environment variables, an optional TOML file and
//! defaults, in that order of precedence.
//!
//! [`resolve`] is pure apart from reading the `--config` file: the environment is passed in as
//! a lookup function, so tests need not touch the process environment. Every error names the
//! source (flag, variable, or file and key) and, for toggles, the accepted spellings.

use std::path::Path;

use anyhow::{Context, bail};
use stacks::config::{ConfigError, StackConfig, TaskSize, parse_bool, parse_u32};

use crate::cli::ConfigArgs;

/// One setting: its flag value, environment variable and file key.
struct Setting<'a> {
    flag: &'a Option<String>,
    flag_name: &'static str,
    env: &'static str,
    key: &'static str,
}

/// Settings and their sources, in the order they are documented.
fn settings(args: &ConfigArgs) -> [Setting<'_>; 10] {
    [
        Setting {
            flag: &args.prefix,
            flag_name: "--prefix",
            env: "DEPLOY_STACK_PREFIX",
            key: "prefix",
        },
        Setting {
            flag: &args.region,
            flag_name: "--region",
            env: "AWS_REGION",
            key: "region",
        },
        Setting {
            flag: &args.deploy_sagemaker_domain,
            flag_name: "--deploy-sagemaker-domain",
            env: "DEPLOY_SAGEMAKER_DOMAIN",
            key: "deploy_sagemaker_domain",
        },
        Setting {
            flag: &args.deploy_prompt_app,
            flag_name: "--deploy-prompt-app",
            env: "DEPLOY_PROMPT_APP",
            key: "deploy_prompt_app",
        },
        Setting {
            flag: &args.cdk_nag,
            flag_name: "--cdk-nag",
            env: "CDK_NAG",
            key: "cdk_nag",
        },
        Setting {
            flag: &args.cloudfront_access_logs,
            flag_name: "--cloudfront-access-logs",
            env: "DEPLOY_CLOUDFRONT_ACCESS_LOGS",
            key: "cloudfront_access_logs",
        },
        Setting {
            flag: &args.task_cpu,
            flag_name: "--task-cpu",
            env: "DEPLOY_TASK_CPU",
            key: "task_cpu",
        },
        Setting {
            flag: &args.task_memory,
            flag_name: "--task-memory",
            env: "DEPLOY_TASK_MEMORY",
            key: "task_memory",
        },
        Setting {
            flag: &args.studio_git_repo,
            flag_name: "--studio-git-repo",
            env: "DEPLOY_STUDIO_GIT_REPO",
            key: "studio_git_repo",
        },
        Setting {
            flag: &args.openai_secret_name,
            flag_name: "--openai-secret-name",
            env: "DEPLOY_OPENAI_SECRET_NAME",
            key: "openai_secret_name",
        },
    ]
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

/// Reads a `--config` file; errors name the file and, where there is one, the line.
fn read_file(path: &Path) -> anyhow::Result<Vec<FileEntry>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    parse_file(&text).with_context(|| format!("config file {}", path.display()))
}

/// 1-based line of byte offset `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text.get(..at).unwrap_or(text).matches('\n').count() + 1
}

/// Parses config file text; unknown keys and non-scalar values are errors naming the line.
pub fn parse_file(text: &str) -> anyhow::Result<Vec<FileEntry>> {
    let table: toml::Table = text.parse().context("invalid TOML")?;
    // The same text parsed again with spans, only to find each key's line.
    let spanned = toml::de::DeTable::parse(text).context("invalid TOML")?;
    let line = |key: &str| {
        spanned
            .get_ref()
            .iter()
            .find(|(name, _)| name.get_ref().as_ref() == key)
            .map_or(1, |(name, _)| line_of(text, name.span().start))
    };
    let known = settings(&ConfigArgs::default()).map(|setting| setting.key);
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
    let mut cfg = StackConfig::default();
    let mut cpu = cfg.task_size.cpu();
    let mut memory = cfg.task_size.memory();
    // Where each setting that was given came from, for validation errors.
    let mut sources: Vec<(&'static str, String)> = Vec::new();
    let mut cpu_source = "default".to_owned();
    let mut memory_source = "default".to_owned();
    for setting in settings(args) {
        let (value, source) = if let Some(value) = setting.flag {
            (value.clone(), setting.flag_name.to_owned())
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
        sources.push((setting.key, source.clone()));
        match setting.key {
            "prefix" => cfg.prefix = value,
            "region" => cfg.region = value,
            "deploy_sagemaker_domain" => cfg.deploy_sagemaker_domain = parse_bool(&source, &value)?,
            "deploy_prompt_app" => cfg.deploy_prompt_app = parse_bool(&source, &value)?,
            "cdk_nag" => cfg.cdk_nag = parse_bool(&source, &value)?,
            "cloudfront_access_logs" => cfg.cloudfront_access_logs = parse_bool(&source, &value)?,
            "task_cpu" => {
                cpu = parse_u32(&source, &value)?;
                cpu_source = source;
            }
            "task_memory" => {
                memory = parse_u32(&source, &value)?;
                memory_source = source;
            }
            "studio_git_repo" => cfg.studio_git_repo = value,
            "openai_secret_name" => cfg.openai_secret_name = value,
            other => bail!("internal: setting `{other}` has no field"),
        }
    }
    cfg.task_size = TaskSize::new(cpu, memory)
        .with_context(|| format!("CPU from {cpu_source}, memory from {memory_source}"))?;
    if let Err(err) = cfg.validate() {
        let key = match err {
            ConfigError::InvalidPrefix(_) | ConfigError::ReservedPrefix(_) => "prefix",
            ConfigError::InvalidRegion(_) | ConfigError::UnsupportedPartition(_) => "region",
            ConfigError::InvalidGitRepo(_) | ConfigError::GitRepoCredentials => "studio_git_repo",
            ConfigError::InvalidSecretName(_) => "openai_secret_name",
            _ => "",
        };
        return match sources.iter().find(|(name, _)| *name == key) {
            Some((_, source)) => Err(anyhow::Error::new(err).context(source.clone())),
            None => Err(err.into()),
        };
    }
    Ok(cfg)
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
            |a| a.cdk_nag = Some("no".into()),
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
            |a| a.region = Some("eu-west-2".into()),
            &[("AWS_REGION", "eu-west-1")],
            |c| c.region == "eu-west-2",
        )
    }
    #[test]
    fn task_size() {
        check(
            |a| a.task_cpu = Some("1024".into()),
            &[("DEPLOY_TASK_MEMORY", "2048")],
            |c| c.task_size == TaskSize::new(1024, 2048).unwrap(),
        )
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
            |a| a.deploy_sagemaker_domain = Some("on".into()),
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
            |a| a.task_memory = Some("512".into()),
            &[],
            "CPU from default, memory from --task-memory: task size 512 CPU units / 512 MiB is not a Fargate size; e.g. 256/512, 512/1024, 1024/2048, 2048/4096, 4096/8192",
        )
    }
    #[test]
    fn bad_prefix() {
        check_err(
            |a| a.prefix = Some("My_App".into()),
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
                "line 3: unknown key `prefx`; known keys: prefix, region, deploy_sagemaker_domain, deploy_prompt_app, cdk_nag, cloudfront_access_logs, task_cpu, task_memory, studio_git_repo, openai_secret_name",
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
                "line 2: unknown key `sec`; known keys: prefix, region, deploy_sagemaker_domain, deploy_prompt_app, cdk_nag, cloudfront_access_logs, task_cpu, task_memory, studio_git_repo, openai_secret_name",
            ),
        )
    }
    #[test]
    fn file_bad_toml() {
        assert!(
            parse_file("prefix = ")
                .unwrap_err()
                .to_string()
                .starts_with("invalid TOML")
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
        args.cdk_nag = Some("0".into());
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

    proptest::proptest! {
        #[test]
        fn parse_file_never_panics(text in ".*") {
            let _ = parse_file(&text);
        }

        #[test]
        fn resolve_never_panics(value in ".*") {
            let args = ConfigArgs { prefix: Some(value.clone()), task_cpu: Some(value.clone()), ..ConfigArgs::default() };
            let env = |_: &str| Some(value.clone());
            let _ = resolve(&args, &env);
        }
    }
}
