//! Integration tests of the `stacks` crate (one binary, modules per area).

mod nag;
