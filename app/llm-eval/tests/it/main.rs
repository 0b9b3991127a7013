//! The `llm-eval` binary's integration tests: each runs the real binary. One test binary,
//! one module per file.

mod amplification;
mod aws_errors;
mod batch;
mod batch_phases;
mod batch_web;
mod cli;
mod field;
mod helpers;
mod hostile;
mod repository;
mod shared_store;
mod tasks;
mod variants;
