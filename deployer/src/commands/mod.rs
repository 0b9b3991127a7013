//! One module per subcommand, each with a `run` function.

pub mod bootstrap;
pub mod cost;
pub mod diff;
pub mod doctor;
pub mod down;
pub mod fleet;
pub mod image;
pub mod nag;
pub mod pause;
pub mod status;
pub mod synth;
pub mod up;
pub mod users;
