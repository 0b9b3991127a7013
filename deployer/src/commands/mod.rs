//! One module per subcommand, each with a `run` function.

pub mod diff;
pub mod down;
pub mod nag;
pub mod status;
pub mod synth;
pub mod up;
