//! Integration tests of the `deployer` binary (one binary, modules per command).

mod nag;
