//! Typed CloudFormation resources, one module per CloudFormation namespace.
//!
//! Hand-written from the CloudFormation resource provider schemas (the copies cfn-lint ships),
//! limited to the types and properties our stacks deploy. Every field carries an explicit
//! `#[serde(rename)]` with the schema's spelling; properties the schema marks required are
//! plain fields, optional ones are `Option` (or a `Vec` skipped when empty). The cfn-lint test
//! over every synthesized template keeps names and shapes honest.

pub mod cloudfront;
pub mod cognito;
pub mod ec2;
pub mod ecs;
pub mod elbv2;
pub mod iam;
pub mod logs;
pub mod s3;
pub mod sagemaker;
pub mod secretsmanager;

use serde::Serialize;

use crate::model::Value;

/// A resource tag (`Key`/`Value`), shared by most namespaces.
#[derive(Debug, Clone, Serialize)]
pub struct Tag {
    /// Tag key.
    #[serde(rename = "Key")]
    pub key: Value<String>,
    /// Tag value.
    #[serde(rename = "Value")]
    pub value: Value<String>,
}

impl Tag {
    /// A tag from two values.
    pub fn new(key: impl Into<Value<String>>, value: impl Into<Value<String>>) -> Tag {
        Tag {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// Implements [`crate::model::Resource`] for a properties struct, with its attribute enum.
macro_rules! resource {
    ($name:ident, $cfn:literal) => {
        impl $crate::model::Resource for $name {
            const TYPE: &'static str = $cfn;
            type Attr = $crate::model::NoAttr;
        }
    };
    ($name:ident, $cfn:literal, $attr:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        #[doc = concat!("`Fn::GetAtt` attributes of `", $cfn, "`.")]
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $attr {
            $(
                #[doc = concat!("`", $text, "`.")]
                $variant,
            )+
        }

        impl $crate::model::Attribute for $attr {
            const ALL: &'static [&'static str] = &[$($text),+];
            fn name(self) -> &'static str {
                match self {
                    $($attr::$variant => $text,)+
                }
            }
        }

        impl $crate::model::Resource for $name {
            const TYPE: &'static str = $cfn;
            type Attr = $attr;
        }
    };
}
pub(crate) use resource;
