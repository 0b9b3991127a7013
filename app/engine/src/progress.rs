//! Progress of a run: the events the runner emits and a small tracker that turns them into
//! done/failed/total, rate and ETA.
//!
//! Invariant: events go out on a `tokio::sync::broadcast` channel, so sending never blocks the
//! runner and any number of observers (the CLI bar, web UI streams) can subscribe; a slow
//! observer loses old events (it lags), it never slows the run down.

use std::time::{Duration, Instant};

use serde::Serialize;

/// One thing that happened during a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ProgressEvent {
    /// The run started; `total` is the number of (record, model) evaluations planned.
    Started {
        /// The run's id.
        run_id: String,
        /// Planned evaluations (selected records × models).
        total: usize,
    },
    /// One (record, model) evaluation finished.
    RecordDone {
        /// The record's 0-based index in the dataset.
        index: usize,
        /// The model label.
        model: String,
        /// Whether it succeeded (false: it is recorded with its error).
        ok: bool,
    },
    /// A model throttled us; its concurrency window is now `window`.
    Throttled {
        /// The model label.
        model: String,
        /// The new window size.
        window: usize,
    },
    /// Bedrock batch jobs' progress (from `GetModelInvocationJob`'s counters).
    BatchJobs {
        /// The jobs' statuses, e.g. `2 jobs: 1 InProgress, 1 Completed`.
        status: String,
        /// Records the jobs processed so far.
        processed: usize,
        /// Records in the jobs.
        records: usize,
    },
    /// The run finished (all planned evaluations are recorded).
    Finished {
        /// Evaluations that succeeded.
        done: usize,
        /// Evaluations that failed.
        failed: usize,
    },
    /// The run was cancelled; finished evaluations are kept.
    Cancelled {
        /// Evaluations that succeeded before the cancel.
        done: usize,
        /// Evaluations that failed before the cancel.
        failed: usize,
    },
}

/// Counts of a run in progress, with rate and ETA.
#[derive(Debug, Clone)]
pub struct Progress {
    started: Instant,
    /// Planned evaluations.
    pub total: usize,
    /// Succeeded so far.
    pub done: usize,
    /// Failed so far.
    pub failed: usize,
}

impl Progress {
    /// A tracker for `total` evaluations, starting now.
    pub fn new(total: usize) -> Progress {
        Progress {
            started: Instant::now(),
            total,
            done: 0,
            failed: 0,
        }
    }

    /// Updates the counts from one event.
    pub fn apply(&mut self, event: &ProgressEvent) {
        match event {
            ProgressEvent::Started { total, .. } => {
                *self = Progress::new(*total);
            }
            ProgressEvent::RecordDone { ok: true, .. } => self.done += 1,
            ProgressEvent::RecordDone { ok: false, .. } => self.failed += 1,
            ProgressEvent::Finished { done, failed }
            | ProgressEvent::Cancelled { done, failed } => {
                self.done = *done;
                self.failed = *failed;
            }
            ProgressEvent::Throttled { .. } | ProgressEvent::BatchJobs { .. } => {}
        }
    }

    /// Evaluations finished (succeeded or failed).
    pub fn finished(&self) -> usize {
        self.done + self.failed
    }

    /// Finished evaluations per second since the start.
    pub fn rate(&self) -> f64 {
        rate(self.finished(), self.started.elapsed())
    }

    /// Estimated time left at the current rate; `None` before the first evaluation finishes.
    pub fn eta(&self) -> Option<Duration> {
        eta(self.total, self.finished(), self.started.elapsed())
    }
}

fn rate(n_finished: usize, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        return 0.0;
    }
    n_finished as f64 / secs
}

fn eta(total: usize, n_finished: usize, elapsed: Duration) -> Option<Duration> {
    if n_finished == 0 {
        return None;
    }
    let left = total.saturating_sub(n_finished) as f64;
    let per_item = elapsed.as_secs_f64() / n_finished as f64;
    Some(Duration::from_secs_f64(left * per_item))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn check_eta(total: usize, n_finished: usize, elapsed_ms: u64, expected_ms: Option<u64>) {
        let got =
            eta(total, n_finished, Duration::from_millis(elapsed_ms)).map(|d| d.as_millis() as u64);
        assert_eq!(got, expected_ms);
    }

    #[test]
    fn eta_cases() {
        check_eta(10, 0, 1000, None);
        check_eta(10, 5, 1000, Some(1000));
        check_eta(10, 10, 1000, Some(0));
        check_eta(10, 12, 1000, Some(0));
        check_eta(100, 1, 10, Some(990));
    }

    #[test]
    fn rate_cases() {
        assert_eq!(rate(10, Duration::from_secs(2)), 5.0);
        assert_eq!(rate(10, Duration::ZERO), 0.0);
    }

    #[test]
    fn apply_counts_events() {
        let mut progress = Progress::new(0);
        progress.apply(&ProgressEvent::Started {
            run_id: "r".into(),
            total: 3,
        });
        progress.apply(&ProgressEvent::RecordDone {
            index: 0,
            model: "m".into(),
            ok: true,
        });
        progress.apply(&ProgressEvent::RecordDone {
            index: 1,
            model: "m".into(),
            ok: false,
        });
        progress.apply(&ProgressEvent::Throttled {
            model: "m".into(),
            window: 2,
        });
        assert_eq!((progress.total, progress.done, progress.failed), (3, 1, 1));
        progress.apply(&ProgressEvent::Finished { done: 2, failed: 1 });
        assert_eq!(progress.finished(), 3);
    }
}
