//! The app's one integration test binary: each file is a module.

mod auth;
mod browser;
mod cli;
mod dataset;
mod field;
mod helpers;
mod hostile;
mod login;
mod metrics;
mod providers;
mod repository;
mod runs;
mod shared_store;
mod template;
mod web;
