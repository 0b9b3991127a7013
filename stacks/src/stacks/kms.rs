//! The opt-in customer managed key (`DEPLOY_KMS_KEY`): its key policy, where it lives, and how
//! the other stacks name it.
//!
//! With `yes` the network stack (which every other stack depends on, and which holds the flow
//! log group) creates one symmetric key with yearly rotation and exports its ARN; with a key
//! ARN that key is used as is. The store table, the log groups, the secrets and the Studio
//! domain then use it, and the app's roles may use it only through the services that need it.
//!
//! The key policy grants exactly:
//! - the account (IAM) administration of the key, but no cryptographic use of it;
//! - CloudWatch Logs of this region (`logs.<region>.amazonaws.com`) the use of the key for log
//!   groups of this account and region (`kms:EncryptionContext:aws:logs:arn`);
//! - principals of this account the use of the key only through DynamoDB, Secrets Manager,
//!   SageMaker and EFS (the Studio domain's home volume) of this region
//!   (`kms:ViaService`, `kms:CallerAccount`), as AWS managed keys of those services allow.
//!
//! The key is retained when the network stack is deleted: the retained store table stays
//! readable only with it.

use serde_json::json;

use crate::config::{KmsKey, StackConfig};
use crate::model::{Expr, Handle, Output, Policy as Retention, Template, Value, s};
use crate::resources::iam::{Effect, PolicyDocument, Principal, Statement};
use crate::resources::kms::{Key, KeyAttr};
use crate::stacks::network::NetworkExports;
use crate::stacks::{StackKind, tags};

/// Services that may use the key on behalf of this account's principals (`kms:ViaService`,
/// without the `.<region>.amazonaws.com`).
pub const VIA_SERVICES: &[&str] = &[
    "dynamodb",
    "secretsmanager",
    "sagemaker",
    "elasticfilesystem",
];

/// Key actions the account may perform: administration, no cryptographic use, and no
/// `kms:CreateGrant`, which would let a principal grant itself that use.
pub const ADMIN_ACTIONS: &[&str] = &[
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:Delete*",
    "kms:Describe*",
    "kms:Disable*",
    "kms:Enable*",
    "kms:Get*",
    "kms:List*",
    "kms:Put*",
    "kms:Revoke*",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:Update*",
];

/// Actions services use on behalf of the account's principals.
const USE_ACTIONS: &[&str] = &[
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey*",
    "kms:ReEncrypt*",
];

/// Actions CloudWatch Logs needs on a key of encrypted log groups.
const LOGS_ACTIONS: &[&str] = &[
    "kms:Decrypt*",
    "kms:Describe*",
    "kms:Encrypt*",
    "kms:GenerateDataKey*",
    "kms:ReEncrypt*",
];

/// The key policy described in the module documentation.
pub fn key_policy() -> PolicyDocument {
    let account_root: Value<String> =
        Expr::sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root").into();
    let via: Vec<serde_json::Value> = VIA_SERVICES
        .iter()
        .map(|service| json!({"Fn::Sub": format!("{service}.${{AWS::Region}}.amazonaws.com")}))
        .collect();
    let statement = |sid: &str, principal, actions: &[&str], condition| Statement {
        sid: Some(sid.to_owned()),
        effect: Effect::Allow,
        principal: Some(principal),
        action: actions.iter().map(|a| (*a).to_owned()).collect(),
        resource: vec![s("*")],
        condition,
    };
    PolicyDocument::new(vec![
        statement(
            "AccountAdministersKey",
            Principal::Aws(vec![account_root.clone()]),
            ADMIN_ACTIONS,
            None,
        ),
        statement(
            "CloudWatchLogsEncryptsLogGroups",
            Principal::Service(vec![Expr::sub("logs.${AWS::Region}.amazonaws.com").into()]),
            LOGS_ACTIONS,
            Some(json!({"ArnLike": {"kms:EncryptionContext:aws:logs:arn": {
                "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:*"
            }}})),
        ),
        statement(
            "UseThroughStoreSecretsAndStudio",
            Principal::Aws(vec![account_root]),
            USE_ACTIONS,
            Some(json!({"StringEquals": {
                "kms:CallerAccount": {"Ref": "AWS::AccountId"},
                "kms:ViaService": via,
            }})),
        ),
    ])
}

/// Adds the key to the network template when `cfg` asks to create one, with its export.
pub(crate) fn add(
    t: &mut Template,
    cfg: &StackConfig,
    exports: &NetworkExports,
) -> Option<Handle<Key>> {
    if cfg.kms_key != KmsKey::Create {
        return None;
    }
    let key = t.add(
        "EncryptionKey",
        Key {
            description: Some(s(format!(
                "{}: store table, log groups, secrets and Studio domain",
                cfg.prefix
            ))),
            enable_key_rotation: Some(true.into()),
            key_policy: key_policy(),
            pending_window_in_days: Some(30.into()),
            tags: tags(cfg, StackKind::Network),
        },
    );
    t.set_policies(&key, Retention::Retain, Retention::Retain);
    t.add_output(
        "KmsKeyArn",
        Output {
            description: "customer managed key of the store, logs, secrets and Studio".into(),
            value: key.get_att(KeyAttr::Arn),
            export: Some(Expr::str(&exports.kms_key_arn)),
            condition: None,
        },
    );
    Some(key)
}

/// The key ARN the app and studio stacks use: the network stack's export, the configured
/// ARN, or `None` for AWS managed keys.
pub fn key_arn(cfg: &StackConfig, exports: &NetworkExports) -> Option<Value<String>> {
    match &cfg.kms_key {
        KmsKey::AwsManaged => None,
        KmsKey::Create => Some(NetworkExports::import(&exports.kms_key_arn).into()),
        KmsKey::Existing(arn) => Some(s(arn.as_str())),
    }
}

/// An IAM statement allowing `actions` on the key only (for the app's roles).
pub fn use_statement(actions: &[&str], key: Value<String>) -> Statement {
    Statement::allow(actions, vec![key]).with_sid("UseCustomerManagedKey")
}
