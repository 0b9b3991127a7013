//! The bootstrap's CodeBuild project from a terminal: which builds it has, following one phase
//! by phase (`BatchGetBuilds`), and the tail of a build's log (CloudWatch Logs `GetLogEvents`).
//!
//! Limits: at most [`RECENT_BUILDS`] build ids are read per look, the log tail is at most
//! [`LOG_TAIL_LINES`] lines of at most [`LOG_LINE_CHARS`] characters, and a follow ends at most
//! [`FINISH_TIMEOUT`] after it was told to finish, so nothing here waits or grows unbounded.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::Context;
use aws_sdk_codebuild::types::{Build, SortOrderType};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use tokio::sync::watch;

/// Build ids read per look at the project (newest first).
pub const RECENT_BUILDS: usize = 20;
/// Lines of the build log shown when a build failed.
pub const LOG_TAIL_LINES: usize = 40;
/// Longest log line shown (cut beyond).
pub const LOG_LINE_CHARS: usize = 500;
/// Longest wait for a build to end once the stack operation ended.
pub const FINISH_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// One phase of a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phase {
    /// `SUBMITTED`, `DOWNLOAD_SOURCE`, `BUILD`, ...
    pub kind: String,
    /// `SUCCEEDED`, `FAILED`, ...; `None` while it runs.
    pub status: Option<String>,
    /// How long it took, when it ended.
    pub seconds: Option<i64>,
    /// CodeBuild's messages about it (`YAML_FILE_ERROR: ...`).
    pub contexts: Vec<String>,
}

/// A build as CodeBuild describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildState {
    /// `project:uuid`.
    pub id: String,
    /// `IN_PROGRESS`, `SUCCEEDED`, `FAILED`, `FAULT`, `TIMED_OUT`, `STOPPED`.
    pub status: String,
    /// The `DEPLOYER_ACTION` it was started with (`up`, `down`), when it has one.
    pub action: Option<String>,
    /// Its phases so far, in order.
    pub phases: Vec<Phase>,
    /// CloudWatch Logs group and stream of its log.
    pub log: Option<(String, String)>,
    /// Console link to its log.
    pub deep_link: Option<String>,
}

impl BuildState {
    /// Whether the build has ended.
    pub fn ended(&self) -> bool {
        self.status != "IN_PROGRESS"
    }

    fn from_sdk(build: &Build) -> BuildState {
        let phases = build
            .phases()
            .iter()
            .map(|phase| Phase {
                kind: phase
                    .phase_type()
                    .map(|kind| kind.as_str().to_owned())
                    .unwrap_or_default(),
                status: phase
                    .phase_status()
                    .map(|status| status.as_str().to_owned()),
                seconds: phase.duration_in_seconds(),
                contexts: phase
                    .contexts()
                    .iter()
                    .map(|context| {
                        format!(
                            "{} {}",
                            context.status_code().unwrap_or_default(),
                            context.message().unwrap_or_default()
                        )
                        .trim()
                        .to_owned()
                    })
                    .filter(|text| !text.is_empty())
                    .collect(),
            })
            .collect();
        let log = build.logs().and_then(|logs| {
            Some((
                logs.group_name()?.to_owned(),
                logs.stream_name()?.to_owned(),
            ))
        });
        let action = build
            .environment()
            .map(|environment| environment.environment_variables())
            .unwrap_or_default()
            .iter()
            .find(|variable| variable.name() == "DEPLOYER_ACTION")
            .map(|variable| variable.value().to_owned());
        BuildState {
            id: build.id().unwrap_or_default().to_owned(),
            status: build
                .build_status()
                .map(|status| status.as_str().to_owned())
                .unwrap_or_else(|| "IN_PROGRESS".to_owned()),
            action,
            phases,
            log,
            deep_link: build
                .logs()
                .and_then(|logs| logs.deep_link())
                .map(str::to_owned),
        }
    }
}

/// The clients for one project.
#[derive(Debug, Clone)]
pub struct Project {
    codebuild: aws_sdk_codebuild::Client,
    logs: aws_sdk_cloudwatchlogs::Client,
    name: String,
}

impl Project {
    /// The project `name`, through clients built from `config`.
    pub fn new(config: &aws_config::SdkConfig, name: &str) -> Project {
        Project {
            codebuild: aws_sdk_codebuild::Client::new(config),
            logs: aws_sdk_cloudwatchlogs::Client::new(config),
            name: name.to_owned(),
        }
    }

    /// The project's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Ids of the newest builds (at most [`RECENT_BUILDS`]); none when the project does not
    /// exist (yet, or any more).
    pub async fn recent_builds(&self) -> anyhow::Result<Vec<String>> {
        match self
            .codebuild
            .list_builds_for_project()
            .project_name(&self.name)
            .sort_order(SortOrderType::Descending)
            .send()
            .await
        {
            Ok(listed) => Ok(listed.ids().iter().take(RECENT_BUILDS).cloned().collect()),
            Err(err) => {
                if err
                    .as_service_error()
                    .is_some_and(|service| service.code() == Some("ResourceNotFoundException"))
                {
                    return Ok(Vec::new());
                }
                Err(anyhow::Error::new(aws_sdk_codebuild::Error::from(err))).with_context(|| {
                    format!("listing the builds of CodeBuild project {}", self.name)
                })
            }
        }
    }

    /// The build `id`, or `None` when CodeBuild does not know it.
    pub async fn build(&self, id: &str) -> anyhow::Result<Option<BuildState>> {
        let got = self
            .codebuild
            .batch_get_builds()
            .ids(id)
            .send()
            .await
            .map_err(|err| anyhow::Error::new(aws_sdk_codebuild::Error::from(err)))
            .with_context(|| format!("reading CodeBuild build {id}"))?;
        Ok(got.builds().first().map(BuildState::from_sdk))
    }

    /// The last lines of the build's log ([`LOG_TAIL_LINES`], each cut to [`LOG_LINE_CHARS`]).
    pub async fn log_tail(&self, build: &BuildState) -> anyhow::Result<Vec<String>> {
        let Some((group, stream)) = &build.log else {
            return Ok(Vec::new());
        };
        let events = self
            .logs
            .get_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .start_from_head(false)
            .limit(LOG_TAIL_LINES as i32)
            .send()
            .await
            .map_err(|err| anyhow::Error::new(aws_sdk_cloudwatchlogs::Error::from(err)))
            .with_context(|| format!("reading the log of build {} ({group} {stream})", build.id))?;
        let lines: Vec<String> = events
            .events()
            .iter()
            .flat_map(|event| event.message().unwrap_or_default().lines())
            .map(|line| line.chars().take(LOG_LINE_CHARS).collect::<String>())
            .collect();
        let skip = lines.len().saturating_sub(LOG_TAIL_LINES);
        Ok(lines.into_iter().skip(skip).collect())
    }
}

/// Prints a build's progress: one line when a phase starts and one when it ends.
#[derive(Debug, Default)]
pub struct PhasePrinter {
    /// Phases already shown as started / as ended.
    started: usize,
    ended: usize,
}

impl PhasePrinter {
    /// The lines `build` adds to what was already shown.
    pub fn lines(&mut self, build: &BuildState) -> Vec<String> {
        let mut lines = Vec::new();
        for (index, phase) in build.phases.iter().enumerate() {
            if index >= self.started {
                self.started = index + 1;
                if phase.status.is_none() {
                    lines.push(format!("build {}: {} ...", build.id, phase.kind));
                }
            }
            if index >= self.ended
                && let Some(status) = &phase.status
            {
                self.ended = index + 1;
                let seconds = phase
                    .seconds
                    .map(|seconds| format!(" ({seconds} s)"))
                    .unwrap_or_default();
                let contexts = if phase.contexts.is_empty() {
                    String::new()
                } else {
                    format!(": {}", phase.contexts.join("; "))
                };
                lines.push(format!(
                    "build {}: {} {status}{seconds}{contexts}",
                    build.id, phase.kind
                ));
            }
        }
        lines
    }
}

/// Delay before the `attempt`-th look: 0.5 s, 1 s, 2 s, then 4 s.
fn poll_delay(attempt: u32) -> Duration {
    Duration::from_millis(500u64 << attempt.min(3))
}

/// Follows the first build of `project` that is not in `known` (the builds that existed before
/// the stack operation started), printing its phases to stderr, until `finish` says the stack
/// operation ended and then the build ended too (or [`FINISH_TIMEOUT`] passed). Returns the
/// build's last state, or `None` when no new build was started.
pub async fn follow(
    project: Project,
    known: BTreeSet<String>,
    mut finish: watch::Receiver<bool>,
) -> anyhow::Result<Option<BuildState>> {
    let mut printer = PhasePrinter::default();
    let mut current: Option<BuildState> = None;
    let mut finishing_since: Option<Instant> = None;
    let mut attempt = 0;
    loop {
        let finishing = *finish.borrow();
        if finishing && finishing_since.is_none() {
            finishing_since = Some(Instant::now());
        }
        // The newest build the operation started: a build that failed for want of a
        // buildspec is followed by one with the inline copy, which is then followed instead.
        let newest = project
            .recent_builds()
            .await?
            .into_iter()
            .find(|id| !known.contains(id));
        if let Some(id) = newest
            && let Some(build) = project.build(&id).await?
        {
            if current.as_ref().is_none_or(|seen| seen.id != build.id) {
                eprintln!("following CodeBuild build {}", build.id);
                if let Some(link) = &build.deep_link {
                    eprintln!("  its log: {link}");
                }
                printer = PhasePrinter::default();
            }
            for line in printer.lines(&build) {
                eprintln!("{line}");
            }
            current = Some(build);
        }
        if finishing {
            let ended = current.as_ref().is_some_and(BuildState::ended);
            let waited = finishing_since.map(|at| at.elapsed()).unwrap_or_default();
            // Without a build by the end of the operation, the operation started none.
            if ended || current.is_none() || waited > FINISH_TIMEOUT {
                break;
            }
        }
        // Sleeps until the next look, or until told to finish (then looks once more at once).
        let delay = poll_delay(attempt);
        attempt += 1;
        if finishing {
            tokio::time::sleep(delay).await;
        } else {
            let _ = tokio::time::timeout(delay, finish.changed()).await;
        }
    }
    if let Some(build) = &current {
        eprintln!("build {}: {}", build.id, build.status);
    }
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(kind: &str, status: Option<&str>) -> Phase {
        Phase {
            kind: kind.to_owned(),
            status: status.map(str::to_owned),
            seconds: status.map(|_| 2),
            contexts: if status == Some("FAILED") {
                vec!["COMMAND_EXECUTION_ERROR exit status 1".to_owned()]
            } else {
                Vec::new()
            },
        }
    }

    fn build(phases: Vec<Phase>) -> BuildState {
        BuildState {
            id: "p:1".to_owned(),
            status: "IN_PROGRESS".to_owned(),
            action: None,
            phases,
            log: None,
            deep_link: None,
        }
    }

    #[test]
    fn each_phase_is_shown_when_it_starts_and_when_it_ends() {
        let mut printer = PhasePrinter::default();
        assert_eq!(
            printer.lines(&build(vec![
                phase("SUBMITTED", Some("SUCCEEDED")),
                phase("QUEUED", None)
            ])),
            [
                "build p:1: SUBMITTED SUCCEEDED (2 s)",
                "build p:1: QUEUED ..."
            ]
        );
        // Nothing new: nothing shown.
        assert!(
            printer
                .lines(&build(vec![
                    phase("SUBMITTED", Some("SUCCEEDED")),
                    phase("QUEUED", None)
                ]))
                .is_empty()
        );
        assert_eq!(
            printer.lines(&build(vec![
                phase("SUBMITTED", Some("SUCCEEDED")),
                phase("QUEUED", Some("SUCCEEDED")),
                phase("BUILD", Some("FAILED")),
            ])),
            [
                "build p:1: QUEUED SUCCEEDED (2 s)",
                "build p:1: BUILD FAILED (2 s): COMMAND_EXECUTION_ERROR exit status 1"
            ]
        );
    }

    #[test]
    fn looks_slow_down_to_four_seconds() {
        assert_eq!(poll_delay(0), Duration::from_millis(500));
        assert_eq!(poll_delay(10), Duration::from_secs(4));
    }
}
