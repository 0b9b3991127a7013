//! Integration tests of the `stacks` crate: snapshots of every template, determinism, the
//! security invariants of the synthesized stacks, and cfn-lint over every toggle combination.
#![allow(clippy::unwrap_used)] // Tests fail loudly on unexpected errors; that is the point.

mod cfn_lint;
mod determinism;
mod helpers;
mod security;
mod snapshots;
