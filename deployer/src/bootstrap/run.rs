//! What `deployer bootstrap run` does inside the build: runs `deployer up` or `deployer down`
//! as a child process (the same binary), passes its output through, and turns its end into a
//! [`Verdict`]: on failure the deployer's root-cause line (its final `error: ...` line), on a
//! successful `up` the stack outputs CloudFormation's template exposes (`AppUrl`, `UserPoolId`,
//! `StudioUrl`), read from the outputs file `up` writes.
//!
//! The child's stderr is read line by line and only its last lines are kept, so a long deploy
//! log costs bounded memory.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Map, Value as Json};
use stacks::StackConfig;
use stacks::stacks::{StackKind, stack_name};

/// Lines of the child's stderr kept for the reason when it printed no `error:` line.
const TAIL_LINES: usize = 5;
/// Longest line kept (a line is cut beyond it).
const MAX_LINE_CHARS: usize = 2_000;

/// Which lifecycle command the build runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `deployer up`.
    Up,
    /// `deployer down`.
    Down,
}

impl Action {
    /// Reads `DEPLOYER_ACTION` (`up` or `down`; unset means `up`).
    pub fn parse(value: Option<&str>) -> Result<Action, String> {
        match value.map(str::trim) {
            None | Some("") | Some("up") => Ok(Action::Up),
            Some("down") => Ok(Action::Down),
            Some(other) => Err(format!(
                "DEPLOYER_ACTION: `{other}` is not an action; expected up or down"
            )),
        }
    }

    /// The subcommand's name.
    pub fn name(self) -> &'static str {
        match self {
            Action::Up => "up",
            Action::Down => "down",
        }
    }
}

/// The options the build passes to the lifecycle command.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `up --admin-email` (`DEPLOY_ADMIN_EMAIL`).
    pub admin_email: Option<String>,
    /// `down --purge` (`DEPLOY_PURGE_ON_DELETE`).
    pub purge: bool,
}

/// The arguments of the child command.
pub fn child_args(action: Action, options: &Options, outputs_file: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![action.name().into()];
    match action {
        Action::Up => {
            args.extend(["--require-approval".into(), "never".into()]);
            args.extend(["--outputs-file".into(), outputs_file.as_os_str().to_owned()]);
            if let Some(email) = &options.admin_email {
                args.extend(["--admin-email".into(), email.into()]);
            }
        }
        Action::Down => {
            args.push("--force".into());
            if options.purge {
                args.push("--purge".into());
            }
        }
    }
    args
}

/// How the run ended, as CloudFormation will be told.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Done; `data` becomes the response's `Data`.
    Success {
        /// What happened, one line.
        summary: String,
        /// Attributes for `Fn::GetAtt`.
        data: Map<String, Json>,
    },
    /// Failed; `reason` is shown by CloudFormation.
    Failure {
        /// Why, starting with the root cause.
        reason: String,
    },
}

/// How the child ended: its exit code and what its stderr said last.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChildEnd {
    /// Exit code (`None` when a signal ended it).
    pub code: Option<i32>,
    /// The last `error: ...` line, without `error: `.
    pub error_line: Option<String>,
    /// The last lines of stderr.
    pub tail: Vec<String>,
}

impl ChildEnd {
    /// The root cause of a failure: the deployer's own error line, else the end of its output,
    /// else the exit status.
    pub fn root_cause(&self) -> String {
        if let Some(line) = &self.error_line {
            return line.clone();
        }
        let tail: Vec<&str> = self
            .tail
            .iter()
            .map(|line| line.trim())
            .filter(|line| !line.is_empty())
            .collect();
        if !tail.is_empty() {
            return tail.join(" | ");
        }
        match self.code {
            Some(code) => format!("exited with status {code} and printed no error"),
            None => "was ended by a signal".to_owned(),
        }
    }
}

/// Keeps what [`ChildEnd`] needs of a stream of stderr lines.
#[derive(Debug, Default)]
pub struct StderrSummary {
    error_line: Option<String>,
    tail: VecDeque<String>,
}

impl StderrSummary {
    /// Takes one line.
    pub fn push(&mut self, line: &str) {
        let line: String = line.chars().take(MAX_LINE_CHARS).collect();
        if let Some(message) = line.strip_prefix("error: ") {
            self.error_line = Some(message.trim_end().to_owned());
        }
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line);
    }

    /// The summary, with the child's exit code.
    pub fn finish(self, code: Option<i32>) -> ChildEnd {
        ChildEnd {
            code,
            error_line: self.error_line,
            tail: self.tail.into(),
        }
    }
}

/// Runs `exe args...`, with stdout passed through and stderr passed through line by line.
pub fn run_child(exe: &Path, args: &[OsString]) -> std::io::Result<ChildEnd> {
    let mut child = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut summary = StderrSummary::default();
    if let Some(stderr) = child.stderr.take() {
        let mut reader = BufReader::new(stderr);
        let mut buffer = Vec::new();
        let mut own_stderr = std::io::stderr();
        loop {
            buffer.clear();
            // Lines are read as bytes: a child's non-UTF-8 output must not stop the relay.
            if reader.read_until(b'\n', &mut buffer)? == 0 {
                break;
            }
            // The build log is best effort; a closed stderr must not stop the run.
            let _ = own_stderr.write_all(&buffer);
            summary.push(String::from_utf8_lossy(&buffer).trim_end_matches(['\n', '\r']));
        }
    }
    let status = child.wait()?;
    Ok(summary.finish(status.code()))
}

/// The verdict on a finished child: success needs exit code 0 and, for `up`, the outputs the
/// bootstrap template reads for every stack the configuration deploys.
pub fn verdict(
    action: Action,
    end: &ChildEnd,
    cfg: &StackConfig,
    outputs: Option<&Json>,
    build: &str,
) -> Verdict {
    if end.code != Some(0) {
        return Verdict::Failure {
            reason: format!(
                "deployer {} failed: {} ({build})",
                action.name(),
                end.root_cause()
            ),
        };
    }
    let summary = format!("deployer {} succeeded ({build})", action.name());
    if action == Action::Down {
        return Verdict::Success {
            summary,
            data: Map::new(),
        };
    }
    let mut wanted: Vec<(StackKind, &str, &str)> = Vec::new();
    if cfg.deploy_prompt_app {
        wanted.push((StackKind::App, "Url", "AppUrl"));
        wanted.push((StackKind::App, "UserPoolId", "UserPoolId"));
    }
    if cfg.deploy_sagemaker_domain {
        wanted.push((StackKind::Studio, "DomainUrl", "StudioUrl"));
    }
    let mut data = Map::new();
    for (kind, output, attribute) in wanted {
        let stack = stack_name(cfg, kind);
        let value = outputs
            .and_then(|outputs| outputs.get(&stack))
            .and_then(|stack_outputs| stack_outputs.get(output))
            .and_then(Json::as_str);
        let Some(value) = value else {
            return Verdict::Failure {
                reason: format!(
                    "deployer up succeeded but its outputs file has no {output} for stack {stack} ({build})"
                ),
            };
        };
        data.insert(attribute.to_owned(), Json::String(value.to_owned()));
    }
    Verdict::Success { summary, data }
}

/// Reads the outputs file `up` wrote; a missing or unreadable file is `None` (the verdict then
/// names the first output it lacks).
pub fn read_outputs(path: &Path) -> Option<Json> {
    let text = std::fs::read(path).ok()?;
    serde_json::from_slice(&text).ok()
}

/// A private directory for the outputs file, removed when dropped.
#[derive(Debug)]
pub struct WorkDir(PathBuf);

impl WorkDir {
    /// Creates `$TMPDIR/deployer-bootstrap-<pid>-<n>` with mode 0700.
    pub fn create() -> std::io::Result<WorkDir> {
        let base = std::env::temp_dir();
        for attempt in 0..100u32 {
            let path = base.join(format!(
                "deployer-bootstrap-{}-{attempt}",
                std::process::id()
            ));
            let mut builder = std::fs::DirBuilder::new();
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            match builder.create(&path) {
                Ok(()) => return Ok(WorkDir(path)),
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(err) => return Err(err),
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "no free name for a work directory",
        ))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn end(code: i32, lines: &[&str]) -> ChildEnd {
        let mut summary = StderrSummary::default();
        for line in lines {
            summary.push(line);
        }
        summary.finish(Some(code))
    }

    fn check(
        action: Action,
        end: ChildEnd,
        cfg: StackConfig,
        outputs: Option<Json>,
        expected: Verdict,
    ) {
        assert_eq!(
            verdict(action, &end, &cfg, outputs.as_ref(), "build b-1"),
            expected
        );
    }

    fn failure(reason: &str) -> Verdict {
        Verdict::Failure {
            reason: reason.to_owned(),
        }
    }

    #[test]
    fn error_line_is_the_root_cause() {
        check(
            Action::Up,
            end(
                1,
                &[
                    "creating llm-eval-network",
                    "error: stack llm-eval-network: NatGateway1 CREATE_FAILED: limit exceeded",
                    "hint: see the console",
                ],
            ),
            StackConfig::default(),
            None,
            failure(
                "deployer up failed: stack llm-eval-network: NatGateway1 CREATE_FAILED: limit exceeded (build b-1)",
            ),
        )
    }
    #[test]
    fn without_error_line_the_tail_explains() {
        check(
            Action::Down,
            end(101, &["a", "", "thread 'main' panicked at src/x.rs:1:1"]),
            StackConfig::default(),
            None,
            failure("deployer down failed: a | thread 'main' panicked at src/x.rs:1:1 (build b-1)"),
        )
    }
    #[test]
    fn silent_failure_names_the_status() {
        check(
            Action::Up,
            end(3, &[]),
            StackConfig::default(),
            None,
            failure("deployer up failed: exited with status 3 and printed no error (build b-1)"),
        )
    }
    #[test]
    fn up_success_needs_outputs() {
        check(
            Action::Up,
            end(0, &[]),
            StackConfig::default(),
            Some(json!({"llm-eval-app": {"Url": "https://d.cloudfront.net"}})),
            failure(
                "deployer up succeeded but its outputs file has no UserPoolId for stack llm-eval-app (build b-1)",
            ),
        )
    }
    #[test]
    fn up_success_carries_outputs() {
        let outputs = json!({"llm-eval-app": {"Url": "https://d.cloudfront.net", "UserPoolId": "us-east-1_x"},
            "llm-eval-studio": {"DomainUrl": "https://d-1.studio.sagemaker.aws"}});
        let mut data = Map::new();
        data.insert("AppUrl".into(), "https://d.cloudfront.net".into());
        data.insert("UserPoolId".into(), "us-east-1_x".into());
        data.insert(
            "StudioUrl".into(),
            "https://d-1.studio.sagemaker.aws".into(),
        );
        check(
            Action::Up,
            end(0, &[]),
            StackConfig::default(),
            Some(outputs),
            Verdict::Success {
                summary: "deployer up succeeded (build b-1)".into(),
                data,
            },
        )
    }
    #[test]
    fn up_without_app_or_studio_needs_nothing() {
        let cfg = StackConfig {
            deploy_prompt_app: false,
            deploy_sagemaker_domain: false,
            ..StackConfig::default()
        };
        check(
            Action::Up,
            end(0, &[]),
            cfg,
            None,
            Verdict::Success {
                summary: "deployer up succeeded (build b-1)".into(),
                data: Map::new(),
            },
        )
    }
    #[test]
    fn tail_is_bounded() {
        let lines: Vec<String> = (0..1000)
            .map(|n| format!("line {n} {}", "x".repeat(5000)))
            .collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let got = end(1, &refs);
        assert_eq!(got.tail.len(), TAIL_LINES);
        assert!(
            got.tail
                .iter()
                .all(|line| line.chars().count() <= MAX_LINE_CHARS)
        );
    }
    #[test]
    fn actions() {
        assert_eq!(Action::parse(None), Ok(Action::Up));
        assert_eq!(Action::parse(Some("down")), Ok(Action::Down));
        assert_eq!(
            Action::parse(Some("destroy")),
            Err("DEPLOYER_ACTION: `destroy` is not an action; expected up or down".into())
        );
        let args = child_args(
            Action::Up,
            &Options {
                admin_email: Some("a@b.c".into()),
                purge: true,
            },
            Path::new("/o.json"),
        );
        assert_eq!(
            args,
            [
                "up",
                "--require-approval",
                "never",
                "--outputs-file",
                "/o.json",
                "--admin-email",
                "a@b.c"
            ]
            .map(OsString::from)
        );
        let args = child_args(
            Action::Down,
            &Options {
                admin_email: None,
                purge: true,
            },
            Path::new("/o.json"),
        );
        assert_eq!(args, ["down", "--force", "--purge"].map(OsString::from));
    }
}
