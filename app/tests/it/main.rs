//! The app's one integration test binary: each file is a module.

mod cli;
mod dataset;
mod field;
mod helpers;
mod hostile;
mod metrics;
mod providers;
mod repository;
mod runs;
mod template;
