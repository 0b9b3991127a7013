//! LLM evaluation: the engine, the headless CLI and the web app.

pub mod providers;
pub mod web;
