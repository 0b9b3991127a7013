//! Typed CloudFormation resources, one module per CloudFormation namespace.
//!
//! Hand-written from the CloudFormation resource provider schemas (the copies cfn-lint ships),
//! limited to the types and properties our stacks deploy. Every field carries an explicit
//! `#[serde(rename)]` with the schema's spelling; properties the schema marks required are
//! plain fields, optional ones are `Option` (or a `Vec` skipped when empty). The cfn-lint test
//! over every synthesized template keeps names and shapes honest.

pub mod budgets;
pub mod cloudfront;
pub mod cognito;
pub mod dynamodb;
pub mod ec2;
pub mod ecr;
pub mod ecs;
pub mod elbv2;
pub mod iam;
pub mod kms;
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde::Serialize;

    use crate::model::{Expr, Pseudo, s};
    use crate::resources::{cloudfront, ecs, s3};

    /// Serializes `value` and compares with the exact JSON CloudFormation expects.
    fn check<T: Serialize>(value: T, expected: &str) {
        assert_eq!(serde_json::to_string(&value).unwrap(), expected);
    }

    #[test]
    fn s3_names_keep_their_acronyms() {
        check(
            s3::ServerSideEncryptionByDefault {
                sse_algorithm: s("aws:kms"),
                kms_master_key_id: Some(s("k")),
            },
            r#"{"SSEAlgorithm":"aws:kms","KMSMasterKeyID":"k"}"#,
        )
    }

    #[test]
    fn ecs_awsvpc_configuration_spelling() {
        check(
            ecs::NetworkConfiguration {
                awsvpc_configuration: Some(ecs::AwsVpcConfiguration {
                    assign_public_ip: Some(s("DISABLED")),
                    security_groups: Vec::new(),
                    subnets: Vec::new(),
                }),
            },
            r#"{"AwsvpcConfiguration":{"AssignPublicIp":"DISABLED"}}"#,
        )
    }

    #[test]
    fn ecs_log_options_are_a_map() {
        check(
            ecs::LogConfiguration {
                log_driver: s("awslogs"),
                options: vec![(
                    "awslogs-group".into(),
                    Expr::pseudo(Pseudo::StackName).into(),
                )],
            },
            r#"{"LogDriver":"awslogs","Options":{"awslogs-group":{"Ref":"AWS::StackName"}}}"#,
        )
    }

    #[test]
    fn cloudfront_vpc_origin_ports() {
        check(
            cloudfront::VpcOriginEndpointConfig {
                arn: s("a"),
                name: s("n"),
                http_port: Some(80.into()),
                https_port: Some(443.into()),
                origin_protocol_policy: None,
            },
            r#"{"Arn":"a","Name":"n","HTTPPort":80,"HTTPSPort":443}"#,
        )
    }

    #[test]
    fn empty_optionals_are_omitted() {
        check(s3::Bucket::default(), "{}")
    }
}
