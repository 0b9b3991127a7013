//! Integration tests of the `deployer` binary: each test runs the real executable in a fresh
//! temporary directory with a controlled environment.
#![allow(clippy::unwrap_used)] // Tests fail loudly on unexpected errors; that is the point.

mod bootstrap;
mod bootstrap_stack;
mod cfn_double;
mod cost;
mod doctor;
mod fleet;
mod helpers;
mod image;
mod lifecycle;
mod nag;
mod pause;
mod sagemaker_double;
mod servers;
mod synth;
mod up_app;
mod users;
