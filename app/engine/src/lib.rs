//! The evaluation engine of `llm-eval`: datasets (JSON Lines and CSV, streamed), prompt templates
//! and chat messages, the model catalog, the providers (Bedrock Converse, SageMaker
//! InvokeEndpoint, OpenAI-compatible chat), the LLM judge, the runner (bounded concurrency,
//! retries, timeouts, cancellation, progress events), plans (the one check of an evaluation
//! request, shared by the CLI and the web form), exports and the response cache.
//!
//! Data flows one way: dataset → template → runner → providers → metrics → store → output.
//! The engine depends on `fmeval-scoring` for the scores and on `store` for where rows go; it
//! knows nothing about HTTP routes, pages, sessions or the login (the `web` crate is built on
//! it, never the reverse), because the headless CLI and the web app must evaluate alike.
//!
//! Start with [`plan::build_plan`] (an [`plan::EvalRequest`] checked into a
//! [`runner::EvalPlan`]) and [`runner::run`].

pub mod batch;
pub mod cache;
pub mod catalog;
pub mod chat;
pub mod dataset;
pub mod estimate;
pub mod judge;
pub mod limits;
pub mod output;
pub mod plan;
pub mod progress;
pub mod providers;
pub mod runner;
pub mod sample_data;
pub mod task;
pub mod template;
