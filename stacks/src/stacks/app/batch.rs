//! Bedrock batch inference: the service role Bedrock assumes to run the app's batch jobs
//! (`llm-eval eval --mode batch` and batch runs of the web app). Bedrock reads the jobs' inputs
//! and writes their outputs under [`BATCH_PREFIX`] of the data bucket, and invokes the models.
//!
//! Invariants: only `bedrock.amazonaws.com` acting for this account's model-invocation jobs
//! may assume it (`aws:SourceAccount`, `aws:SourceArn`: the confused-deputy guard Bedrock's
//! guide prescribes); its S3 access is the batch prefix only; the task role may pass it to
//! Bedrock alone (`iam:PassedToService`, in `ecs`).

use crate::config::StackConfig;
use crate::model::template::HasLogicalId;
use crate::model::{Expr, Handle, Template, s};
use crate::resources::iam::{Effect, Policy, PolicyDocument, Principal, Role, Statement};
use crate::stacks::app::buckets::Buckets;
use crate::stacks::app::{BATCH_PREFIX, Imports, app_tags, arn};
use crate::stacks::kms;

/// The actions of the batch service role on the customer managed key, when there is one.
pub const BATCH_KEY_ACTIONS: &[&str] = &["kms:Decrypt", "kms:GenerateDataKey"];

pub(super) fn add(
    t: &mut Template,
    cfg: &StackConfig,
    imports: &Imports,
    buckets: &Buckets,
) -> Handle<Role> {
    let bucket = buckets.data_bucket.logical_id().as_str().to_owned();
    let trust = PolicyDocument::new(vec![Statement {
        sid: None,
        effect: Effect::Allow,
        principal: Some(Principal::Service(vec!["bedrock.amazonaws.com".into()])),
        action: vec!["sts:AssumeRole".to_owned()],
        resource: Vec::new(),
        condition: Some(serde_json::json!({
            "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
            "ArnLike": {"aws:SourceArn": {"Fn::Sub": "arn:${AWS::Partition}:bedrock:${AWS::Region}:${AWS::AccountId}:model-invocation-job/*"}},
        })),
    }]);
    let statements = vec![
        Statement::allow(
            &["s3:GetObject", "s3:PutObject"],
            // The bucket's logical id appears in the nag suppression of this wildcard.
            vec![Expr::sub(format!("${{{bucket}.Arn}}/{BATCH_PREFIX}/*")).into()],
        )
        .with_sid("BatchObjects"),
        Statement {
            condition: Some(serde_json::json!({
                "StringLike": {"s3:prefix": [format!("{BATCH_PREFIX}/*")]}
            })),
            ..Statement::allow(
                &["s3:ListBucket"],
                vec![Expr::sub(format!("${{{bucket}.Arn}}")).into()],
            )
            .with_sid("ListBatchPrefix")
        },
        // Any region: cross-region inference profiles route to foundation models in other
        // regions of the same geography.
        Statement::allow(
            &["bedrock:InvokeModel"],
            vec![
                arn("bedrock:*::foundation-model/*"),
                arn("bedrock:*:${AWS::AccountId}:inference-profile/*"),
            ],
        )
        .with_sid("InvokeModels"),
    ];
    t.add(
        "BatchServiceRole",
        Role {
            assume_role_policy_document: trust,
            description: Some(s("Bedrock batch jobs of the app")),
            managed_policy_arns: Vec::new(),
            policies: vec![Policy {
                policy_name: s("bedrock-batch"),
                policy_document: PolicyDocument::new(
                    statements
                        .into_iter()
                        .chain(
                            imports
                                .kms_key
                                .clone()
                                .map(|key| kms::use_statement(BATCH_KEY_ACTIONS, key)),
                        )
                        .collect(),
                ),
            }],
            tags: app_tags(cfg),
        },
    )
}
