//! One module per subcommand, each exposing its clap args and a `run` function.

pub mod nag;
