//! LLM evaluation: the engine, the headless CLI and the web app.

pub mod auth;
pub mod cache;
pub mod catalog;
pub mod chat;
pub mod cli;
pub mod dataset;
pub mod limits;
pub mod metrics;
pub mod output;
pub mod plan;
pub mod private_fs;
pub mod progress;
pub mod providers;
pub mod runner;
pub mod sample;
pub mod sample_data;
pub mod store;
pub mod template;
pub mod web;
