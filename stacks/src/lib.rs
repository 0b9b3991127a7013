//! Typed CloudFormation for the LLM-evaluation deployment.
//!
//! Filled in by the foundation issue: `model` (templates and intrinsics), `resources` (typed
//! resource structs), `stacks` (our stack definitions) and `nag` (the security rule pack).

pub mod nag;
