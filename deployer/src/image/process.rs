//! Runs the external programs the image builder needs (cargo, the dynamic loader, docker,
//! Docker credential helpers) with a time limit and bounded output.
//!
//! Invariant: every child is waited for or killed before `run` returns; captured stdout is
//! capped at [`MAX_STDOUT`] and stderr keeps its last [`STDERR_TAIL`] bytes, so a chatty or
//! hung program can neither exhaust memory nor block the deployer forever.

use std::io::{Read, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::ImageError;

/// Most stdout kept (cargo's JSON messages for a cold workspace build are a few MB).
const MAX_STDOUT: usize = 64 << 20;
/// How much of stderr is kept for the error message.
const STDERR_TAIL: usize = 8 << 10;

/// How a child's stderr is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stderr {
    /// Shown to the user as it comes (cargo's and docker's progress).
    Inherit,
    /// Captured; its end goes into the error message on failure.
    Capture,
}

/// What a successful run printed.
#[derive(Debug)]
pub struct Finished {
    /// Everything on stdout (up to [`MAX_STDOUT`]).
    pub stdout: Vec<u8>,
}

/// The command line, for messages.
pub fn describe(command: &Command) -> String {
    let mut words = vec![command.get_program().to_string_lossy().into_owned()];
    words.extend(
        command
            .get_args()
            .map(|arg| arg.to_string_lossy().into_owned()),
    );
    words.join(" ")
}

/// Runs `command` to completion within `limit`, feeding it `stdin`; a non-zero exit, a start
/// failure or the limit passing is an [`ImageError::Command`].
pub fn run(
    command: &mut Command,
    stdin: Option<Vec<u8>>,
    stderr: Stderr,
    limit: Duration,
) -> Result<Finished, ImageError> {
    let outcome = run_unchecked(command, stdin, stderr, limit)?;
    match outcome.status {
        Some(status) if status.success() => Ok(Finished {
            stdout: outcome.stdout,
        }),
        _ => Err(outcome.failure(command)),
    }
}

/// How a run ended, success or not.
#[derive(Debug)]
pub struct Outcome {
    /// The exit status; `None` when the limit passed and the child was stopped.
    pub status: Option<ExitStatus>,
    /// Everything on stdout (up to [`MAX_STDOUT`]).
    pub stdout: Vec<u8>,
    /// The end of stderr (empty when inherited).
    pub stderr_tail: String,
    limit: Duration,
}

impl Outcome {
    /// The error for a run that did not succeed.
    pub fn failure(&self, command: &Command) -> ImageError {
        let head = match self.status {
            Some(status) => match status.code() {
                Some(code) => format!("failed (exit status {code})"),
                None => "was killed by a signal".to_owned(),
            },
            None => format!(
                "did not finish within {} s and was stopped",
                self.limit.as_secs()
            ),
        };
        ImageError::Command {
            command: describe(command),
            problem: if self.stderr_tail.is_empty() {
                head
            } else {
                format!("{head}: {}", self.stderr_tail)
            },
        }
    }
}

/// Like [`run`], but a non-zero exit or the limit is reported in the [`Outcome`]; only a
/// program that cannot start is an error.
pub fn run_unchecked(
    command: &mut Command,
    stdin: Option<Vec<u8>>,
    stderr: Stderr,
    limit: Duration,
) -> Result<Outcome, ImageError> {
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(match stderr {
            Stderr::Inherit => Stdio::inherit(),
            Stderr::Capture => Stdio::piped(),
        });
    let mut child = command.spawn().map_err(|err| ImageError::Command {
        command: describe(command),
        problem: if err.kind() == std::io::ErrorKind::NotFound {
            "could not start: program not found (is it installed and on PATH?)".to_owned()
        } else {
            format!("could not start: {err}")
        },
    })?;
    if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A child that exits without reading its input closes the pipe; that is its answer.
        thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        });
    }
    let stdout_reader = child
        .stdout
        .take()
        .map(|pipe| thread::spawn(move || read_capped(pipe)));
    let stderr_reader = child
        .stderr
        .take()
        .map(|pipe| thread::spawn(move || read_tail(pipe)));
    let status = match wait_within(&mut child, limit) {
        Some(Ok(status)) => Some(status),
        Some(Err(err)) => {
            return Err(ImageError::Command {
                command: describe(command),
                problem: format!("could not be waited for: {err}"),
            });
        }
        None => None,
    };
    // After a stop, a grandchild may still hold the pipes open: do not wait for the readers.
    let (stdout, stderr_tail) = if status.is_some() {
        (
            stdout_reader
                .and_then(|reader| reader.join().ok())
                .unwrap_or_default(),
            stderr_reader
                .and_then(|reader| reader.join().ok())
                .unwrap_or_default(),
        )
    } else {
        (Vec::new(), Vec::new())
    };
    Ok(Outcome {
        status,
        stdout,
        stderr_tail: String::from_utf8_lossy(&stderr_tail).trim().to_owned(),
        limit,
    })
}

/// Waits until the child exits or `limit` passes (then kills it); `None` on the limit.
fn wait_within(
    child: &mut std::process::Child,
    limit: Duration,
) -> Option<std::io::Result<ExitStatus>> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(Ok(status)),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            Ok(None) => thread::sleep(Duration::from_millis(20)),
            Err(err) => return Some(Err(err)),
        }
    }
}

fn read_capped(mut pipe: impl Read) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buffer = [0u8; 64 << 10];
    loop {
        match pipe.read(&mut buffer) {
            Ok(0) | Err(_) => return kept,
            Ok(n_read) => {
                let room = MAX_STDOUT.saturating_sub(kept.len());
                kept.extend_from_slice(&buffer[..n_read.min(room)]);
            }
        }
    }
}

fn read_tail(mut pipe: impl Read) -> Vec<u8> {
    let mut tail = Vec::new();
    let mut buffer = [0u8; 8 << 10];
    loop {
        match pipe.read(&mut buffer) {
            Ok(0) | Err(_) => return tail,
            Ok(n_read) => {
                tail.extend_from_slice(&buffer[..n_read]);
                if tail.len() > STDERR_TAIL {
                    tail.drain(..tail.len() - STDERR_TAIL);
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests fail loudly on unexpected errors; that is the point.
mod tests {
    use super::*;

    #[test]
    fn success_returns_stdout() {
        let finished = run(
            Command::new("cat").arg("-"),
            Some(b"hello".to_vec()),
            Stderr::Capture,
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(finished.stdout, b"hello");
    }

    #[test]
    fn failure_names_command_status_and_stderr() {
        let err = run(
            Command::new("sh").args(["-c", "echo broken >&2; exit 3"]),
            None,
            Stderr::Capture,
            Duration::from_secs(10),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("sh -c") && text.contains("exit status 3") && text.contains("broken"),
            "{text}"
        );
    }

    #[test]
    fn a_hung_child_is_stopped_at_the_limit() {
        let started = Instant::now();
        let err = run(
            Command::new("sleep").arg("30"),
            None,
            Stderr::Capture,
            Duration::from_millis(300),
        )
        .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(err.to_string().contains("did not finish within"), "{err}");
    }

    #[test]
    fn a_missing_program_says_so() {
        let err = run(
            &mut Command::new("no-such-program-for-deployer-tests"),
            None,
            Stderr::Capture,
            Duration::from_secs(10),
        )
        .unwrap_err();
        assert!(err.to_string().contains("program not found"), "{err}");
    }
}
