//! Integration tests of the `stacks` crate: snapshots of every template, determinism, the
//! security invariants of the synthesized stacks, and cfn-lint over every toggle combination.

mod cfn_lint;
mod determinism;
mod helpers;
mod security;
mod snapshots;
