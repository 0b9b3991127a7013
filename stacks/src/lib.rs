//! Typed CloudFormation for the LLM-evaluation deployment.
//!
//! - [`model`]: templates, intrinsic functions ([`model::Expr`]), typed values, logical ids and
//!   synth-time validation. Resources are added to a [`Template`] and come back as typed
//!   [`model::Handle`]s, so a `Ref`/`GetAtt` to a missing resource or attribute cannot be written.
//! - [`resources`]: one module per CloudFormation namespace, one struct per resource type.
//! - [`stacks`]: our stacks (network, app, studio) and [`synth_all`].
//! - [`config`]: [`StackConfig`] and pure parsers for its settings.
//! - [`nag`]: the cdk-nag-style security rule pack, for any CloudFormation template.
//!
//! This crate does no IO and knows nothing about AWS credentials: synthesis is a pure
//! `StackConfig -> Vec<SynthStack>`; the same config always gives byte-identical output.
//!
//! ```
//! let stacks = stacks::synth_all(&stacks::StackConfig::default()).unwrap();
//! assert_eq!(stacks[0].name, "llm-eval-toolkit");
//! let json = stacks[0].template.to_json_bytes();
//! assert!(json.starts_with(b"{"));
//! ```
#![warn(missing_docs)]

pub mod config;
pub mod model;
pub mod nag;
pub mod resources;
pub mod stacks;

pub use config::{ConfigError, StackConfig, TaskSize};
pub use model::Template;
pub use stacks::{StackKind, SynthError, SynthStack, synth_all};
