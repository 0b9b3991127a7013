//! The one-click install (`cfn_bootstrap.yaml` + `buildspec.yml`) from the build's side.
//!
//! [`response`] speaks CloudFormation's custom-resource response protocol; [`run`] runs the
//! lifecycle command inside the build and decides what CloudFormation is told. The template's
//! Lambda only starts builds and answers for builds that end before the deployer could; the
//! deployer itself answers everything else, with its own root cause.

pub mod response;
pub mod run;
pub mod stack;
