//! The CloudFormation template model: templates, intrinsics, values, logical ids, validation.
//!
//! Nothing here knows about any specific AWS service; typed resources live in
//! [`crate::resources`] and implement [`Resource`].

pub mod expr;
pub mod logical_id;
pub mod template;
pub mod validate;
pub mod value;

pub use expr::{Expr, Pseudo, Target};
pub use logical_id::{LogicalId, LogicalIdError};
pub use template::{
    Attribute, CondHandle, Handle, HasLogicalId, NoAttr, Output, ParamHandle, ParamType, Parameter,
    Policy, Resource, ResourceEntry, Template,
};
pub use validate::{ValidateError, ValidateErrors};
pub use value::{Value, s, strs};
