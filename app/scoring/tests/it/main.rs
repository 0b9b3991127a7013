//! The integration tests of `fmeval-scoring`: one binary, one module per file.

mod metrics;
