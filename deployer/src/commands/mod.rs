//! One module per subcommand, each with a `run` function.

pub mod image;
pub mod nag;
pub mod synth;
