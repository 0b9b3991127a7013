//! One target of a fleet run: assume its role (STS `AssumeRole`), then run this binary as a
//! child process with the role's temporary credentials and the target's region, its stdout and
//! stderr written to the target's log file (mode 0600), and its root cause (the child's final
//! `error: ...` line) and app URL kept for the table.
//!
//! The credentials reach the child only through its environment; they are never written to a
//! log, the state file or an error. The child's output is read line by line into the log file,
//! and only its last lines and at most [`MAX_STDOUT`] bytes of its stdout are kept in memory.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use aws_config::{Region, SdkConfig};
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::bootstrap::run::{ChildEnd, StderrSummary};
use crate::fleet::targets::Target;

/// Stdout kept of a child (where the app URL is read from).
pub const MAX_STDOUT: usize = 64 * 1024;
/// Longest a target's child may run (a first `up` with Studio takes about 40 minutes).
pub const CHILD_TIMEOUT: Duration = Duration::from_secs(3 * 60 * 60);
/// The role session's duration: the longest a chained role session may have.
const SESSION_SECONDS: i32 = 3600;

/// Variables of the parent's environment that would give the child other credentials or
/// another region.
const REPLACED_VARS: &[&str] = &[
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
];

/// Temporary credentials of an assumed role.
pub struct Credentials {
    access_key_id: String,
    secret_access_key: SecretString,
    session_token: SecretString,
}

/// Assumes `target`'s role with the caller's credentials (`base`), through STS in the target's
/// region.
pub async fn assume(base: &SdkConfig, target: &Target) -> anyhow::Result<Credentials> {
    let config = aws_sdk_sts::config::Builder::from(base)
        .region(Region::new(target.region.clone()))
        .build();
    let sts = aws_sdk_sts::Client::from_conf(config);
    let assumed = sts
        .assume_role()
        .role_arn(target.role_arn())
        .role_session_name("deployer-fleet")
        .duration_seconds(SESSION_SECONDS)
        .send()
        .await
        .map_err(|err| anyhow::Error::new(aws_sdk_sts::Error::from(err)))
        .with_context(|| format!("assuming role {}", target.role_arn()))?;
    let credentials = assumed
        .credentials()
        .with_context(|| format!("STS returned no credentials for {}", target.role_arn()))?;
    Ok(Credentials {
        access_key_id: credentials.access_key_id().to_owned(),
        secret_access_key: SecretString::from(credentials.secret_access_key().to_owned()),
        session_token: SecretString::from(credentials.session_token().to_owned()),
    })
}

/// How a child ended.
#[derive(Debug)]
pub struct Finished {
    /// Exit code and root cause.
    pub end: ChildEnd,
    /// The start of its stdout.
    pub stdout: String,
}

/// Opens `path` for writing with mode 0600 (logs may name users).
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// Runs `exe args` as `target` with `credentials`, writing its output to `log`; `on_line`
/// gets each stderr line (for the progress display).
pub async fn run_child(
    exe: &Path,
    args: &[OsString],
    target: &Target,
    credentials: &Credentials,
    log: &Path,
    on_line: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<Finished> {
    let log_file = private_file(log).with_context(|| format!("creating {}", log.display()))?;
    let mut log_file = tokio::fs::File::from_std(log_file);
    let mut command = tokio::process::Command::new(exe);
    command.args(args);
    for var in REPLACED_VARS {
        command.env_remove(var);
    }
    command
        .env("AWS_ACCESS_KEY_ID", &credentials.access_key_id)
        .env(
            "AWS_SECRET_ACCESS_KEY",
            credentials.secret_access_key.expose_secret(),
        )
        .env(
            "AWS_SESSION_TOKEN",
            credentials.session_token.expose_secret(),
        )
        .env("AWS_REGION", &target.region)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {}", exe.display()))?;
    let mut stdout_lines = BufReader::new(child.stdout.take().context("child stdout")?).lines();
    let mut stderr_lines = BufReader::new(child.stderr.take().context("child stderr")?).lines();
    let mut summary = StderrSummary::default();
    let mut stdout = String::new();
    let (mut stdout_open, mut stderr_open) = (true, true);
    let relay = async {
        while stdout_open || stderr_open {
            tokio::select! {
                line = stdout_lines.next_line(), if stdout_open => match line? {
                    Some(line) => {
                        log_file.write_all(format!("{line}\n").as_bytes()).await?;
                        if stdout.len() + line.len() < MAX_STDOUT {
                            stdout.push_str(&line);
                            stdout.push('\n');
                        }
                    }
                    None => stdout_open = false,
                },
                line = stderr_lines.next_line(), if stderr_open => match line? {
                    Some(line) => {
                        log_file.write_all(format!("{line}\n").as_bytes()).await?;
                        on_line(&line);
                        summary.push(&line);
                    }
                    None => stderr_open = false,
                },
            }
        }
        log_file.flush().await?;
        child.wait().await
    };
    let status = match tokio::time::timeout(CHILD_TIMEOUT, relay).await {
        Ok(status) => status.with_context(|| format!("running {}", exe.display()))?,
        Err(_) => anyhow::bail!(
            "still running after {} minutes (stopped); see {}",
            CHILD_TIMEOUT.as_secs() / 60,
            log.display()
        ),
    };
    Ok(Finished {
        end: summary.finish(status.code()),
        stdout,
    })
}

/// The app URL a child's stdout shows: the app stack's `Url` output (`deployer up`, `status`)
/// or the bootstrap stack's `AppUrl` (`deployer bootstrap up`, `status`).
pub fn app_url(stdout: &str) -> Option<String> {
    stdout.lines().find_map(|line| {
        let line = line.trim();
        line.strip_prefix("Url = ")
            .or_else(|| line.strip_prefix("AppUrl = "))
            .map(str::to_owned)
    })
}

/// The log file of `target` for `command` in `dir`.
pub fn log_path(dir: &Path, target: &Target, command: &str) -> PathBuf {
    dir.join(format!(
        "{}-{}-{command}.log",
        target.account, target.region
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_url_from_up_status_and_bootstrap() {
        assert_eq!(
            app_url("llm-eval-app\n  UserPoolId = x\n  Url = https://d.cloudfront.net\n")
                .as_deref(),
            Some("https://d.cloudfront.net")
        );
        assert_eq!(
            app_url("AppUrl = https://e.cloudfront.net\n").as_deref(),
            Some("https://e.cloudfront.net")
        );
        assert_eq!(app_url("  DomainUrl = https://studio\n"), None);
    }
}
