//! The integration tests of `fmeval-scoring`: one binary, one module per file.

mod classification;
mod metrics;
mod perturbation;
mod rouge;
