//! Integration tests of the `stacks` crate: snapshots of every template, determinism, the
//! security invariants of the synthesized stacks, cfn-lint over every toggle combination, and
//! the nag pack (never panics; our stacks pass it), and the paused page's CloudFront Function run
//! in headless Chromium.
#![allow(clippy::unwrap_used)] // Tests fail loudly on unexpected errors; that is the point.

mod cfn_lint;
mod checkov;
mod determinism;
mod helpers;
mod kms;
mod nag;
mod paused_page;
mod security;
mod snapshots;
