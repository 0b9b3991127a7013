//! LLM evaluation: the engine, the headless CLI and the web app.

pub mod dataset;
pub mod metrics;
pub mod providers;
pub mod sample;
pub mod template;
pub mod web;
