//! Progress of a stack operation: a bar (resources done / total, current resource, elapsed)
//! on a terminal, plain timestamped lines otherwise (CI logs, CodeBuild). Both go to stderr, so
//! stdout stays for results.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// One resource event of the operation.
#[derive(Debug)]
pub struct Event<'a> {
    /// Logical id.
    pub logical_id: &'a str,
    /// Resource type.
    pub resource_type: &'a str,
    /// `CREATE_IN_PROGRESS`, `CREATE_FAILED`, ...
    pub status: &'a str,
    /// CloudFormation's reason, often empty.
    pub reason: &'a str,
    /// Resources finished so far.
    pub done: usize,
}

/// Receives the events of one stack operation at a time (`Send`: stacks deploy on tasks).
pub trait Progress: Send {
    /// An operation on `stack` that touches about `total` resources starts.
    fn start(&mut self, stack: &str, total: usize);
    /// A resource event arrived.
    fn event(&mut self, event: &Event<'_>);
    /// The operation ended in `status`.
    fn finish(&mut self, status: &str);
}

/// The progress display for this process: a bar when stderr is a terminal, else lines.
pub fn for_stderr() -> Box<dyn Progress> {
    if std::io::stderr().is_terminal() {
        Box::new(Bar::default())
    } else {
        Box::new(Lines::default())
    }
}

/// Plain lines: `[  12.3s] llm-eval-network Vpc AWS::EC2::VPC CREATE_COMPLETE`.
#[derive(Debug, Default)]
pub struct Lines {
    stack: String,
    started: Option<Instant>,
}

impl Lines {
    fn elapsed(&self) -> Duration {
        self.started.map(|at| at.elapsed()).unwrap_or_default()
    }
}

impl Progress for Lines {
    fn start(&mut self, stack: &str, _total: usize) {
        self.stack = stack.to_owned();
        self.started = Some(Instant::now());
    }

    fn event(&mut self, event: &Event<'_>) {
        let reason = if event.reason.is_empty() {
            String::new()
        } else {
            format!(": {}", event.reason)
        };
        eprintln!(
            "[{:>7.1}s] {} {} {} {}{reason}",
            self.elapsed().as_secs_f64(),
            self.stack,
            event.logical_id,
            event.resource_type,
            event.status
        );
    }

    fn finish(&mut self, status: &str) {
        eprintln!(
            "[{:>7.1}s] {} {status}",
            self.elapsed().as_secs_f64(),
            self.stack
        );
    }
}

/// An indicatif bar per operation; failures are printed above it as lines.
#[derive(Debug, Default)]
pub struct Bar {
    bar: Option<ProgressBar>,
    stack: String,
}

impl Progress for Bar {
    fn start(&mut self, stack: &str, total: usize) {
        let bar = ProgressBar::new(total.max(1) as u64);
        if let Ok(style) =
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {elapsed_precise} {msg}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(stack.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        self.stack = stack.to_owned();
        self.bar = Some(bar);
    }

    fn event(&mut self, event: &Event<'_>) {
        let Some(bar) = &self.bar else { return };
        bar.set_position(event.done as u64);
        bar.set_message(format!("{} {}", event.logical_id, event.status));
        if event.status.ends_with("_FAILED") {
            bar.println(format!(
                "{} {} {}: {}",
                self.stack, event.logical_id, event.status, event.reason
            ));
        }
    }

    /// Clears the bar: the caller prints the stack's final state on a line of its own (a bar
    /// left drawn keeps the cursor at its end, and that line would run on after it).
    fn finish(&mut self, _status: &str) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
