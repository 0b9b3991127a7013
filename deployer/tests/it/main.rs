//! Integration tests of the `deployer` binary: each test runs the real executable in a fresh
//! temporary directory with a controlled environment.
#![allow(clippy::unwrap_used)] // Tests fail loudly on unexpected errors; that is the point.

mod cfn_double;
mod helpers;
mod lifecycle;
mod nag;
mod synth;
