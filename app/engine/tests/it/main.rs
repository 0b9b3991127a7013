//! The engine's integration tests: one binary, one module per file.

mod batch;
mod dataset;
mod estimate;
mod helpers;
mod metrics;
mod providers;
mod runs;
mod tasks;
mod template;
