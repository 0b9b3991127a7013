//! One module per subcommand, each with a `run` function.

pub mod bootstrap;
pub mod image;
pub mod nag;
pub mod synth;
