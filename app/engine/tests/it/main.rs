//! The engine's integration tests: one binary, one module per file.

mod batch;
mod dataset;
mod helpers;
mod metrics;
mod providers;
mod runs;
mod template;
