//! The app stack's buckets: the logs bucket (S3 server access logs, the ALB's access logs and
//! optionally CloudFront's) and the versioned data bucket, both SSE-S3 and TLS-only, both kept
//! when the stack is deleted.

use crate::config::StackConfig;
use crate::model::{Expr, Handle, Policy as Retention, Pseudo, Template, s};
use crate::resources::iam::{Effect, PolicyDocument, Principal, Statement};
use crate::resources::s3::{
    AbortIncompleteMultipartUpload, Bucket, BucketAttr, BucketEncryption, BucketPolicy,
    LifecycleConfiguration, LoggingConfiguration, NoncurrentVersionExpiration, OwnershipControls,
    OwnershipControlsRule, PublicAccessBlockConfiguration, Rule, VersioningConfiguration,
};
use crate::stacks::app::{ALB_LOG_PREFIX, BATCH_PREFIX, ELB_LOG_DELIVERY, app_tags};
use crate::stacks::{checkov, tls_only};

/// Handles of the buckets.
pub(super) struct Buckets {
    pub logs_bucket: Handle<Bucket>,
    /// The ALB depends on it: ELB writes a test object when access logs are switched on.
    pub logs_bucket_policy: Handle<BucketPolicy>,
    pub data_bucket: Handle<Bucket>,
}

pub(super) fn add(t: &mut Template, cfg: &StackConfig) -> Buckets {
    // Buckets: server access logs, the ALB's access logs (and optionally CloudFront logs) go to
    // the logs bucket. ELB log delivery only supports SSE-S3 (not KMS), which this bucket uses.
    let logs_bucket = t.add(
        "LogsBucket",
        Bucket {
            bucket_encryption: Some(BucketEncryption::sse_s3()),
            public_access_block_configuration: Some(PublicAccessBlockConfiguration::all()),
            // Versioned (checkov CKV_AWS_21): a log object overwritten or deleted by mistake
            // stays recoverable for a day; expired logs leave no versions behind.
            versioning_configuration: Some(VersioningConfiguration {
                status: s("Enabled"),
            }),
            // Access logs of the logs bucket itself would log forever.
            logging_configuration: None,
            ownership_controls: Some(OwnershipControls {
                rules: vec![OwnershipControlsRule {
                    // CloudFront standard logging writes with ACLs, so it needs
                    // BucketOwnerPreferred; without it ACLs stay disabled.
                    object_ownership: Some(s(if cfg.cloudfront_access_logs {
                        "BucketOwnerPreferred"
                    } else {
                        "BucketOwnerEnforced"
                    })),
                }],
            }),
            lifecycle_configuration: Some(LifecycleConfiguration {
                rules: vec![Rule {
                    status: s("Enabled"),
                    id: Some(s("expire-logs")),
                    prefix: None,
                    expiration_in_days: Some(90.into()),
                    abort_incomplete_multipart_upload: None,
                    noncurrent_version_expiration: Some(NoncurrentVersionExpiration {
                        noncurrent_days: 1.into(),
                    }),
                }],
            }),
            tags: app_tags(cfg),
        },
    );
    t.set_policies(&logs_bucket, Retention::Retain, Retention::Retain);
    checkov::skip(
        t,
        &logs_bucket,
        &[(
            "CKV_AWS_18",
            "this is the access-log destination of the other buckets; logging it into itself would log its own log deliveries without end",
        )],
    );
    let logs_arn = logs_bucket.get_att(BucketAttr::Arn);
    let logs_bucket_policy = t.add(
        "LogsBucketPolicy",
        BucketPolicy {
            bucket: logs_bucket.r#ref().into(),
            policy_document: PolicyDocument::new(vec![
                tls_only(logs_arn.clone()),
                Statement {
                    sid: Some("AllowServerAccessLogs".into()),
                    effect: Effect::Allow,
                    principal: Some(Principal::Service(vec!["logging.s3.amazonaws.com".into()])),
                    action: vec!["s3:PutObject".into()],
                    resource: vec![
                        Expr::join("", vec![logs_arn.clone(), Expr::str("/s3-access/*")]).into(),
                    ],
                    condition: Some(serde_json::json!({
                        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
                    })),
                },
                // The account id in the object path (never a wildcard) is what limits
                // delivery to load balancers of this account, as the ELB guide prescribes.
                Statement {
                    sid: Some("AllowAlbAccessLogs".into()),
                    effect: Effect::Allow,
                    principal: Some(Principal::Service(vec![ELB_LOG_DELIVERY.into()])),
                    action: vec!["s3:PutObject".into()],
                    resource: vec![
                        Expr::join(
                            "",
                            vec![
                                logs_arn,
                                Expr::str(format!("/{ALB_LOG_PREFIX}/AWSLogs/")),
                                Pseudo::AccountId.into(),
                                Expr::str("/*"),
                            ],
                        )
                        .into(),
                    ],
                    condition: None,
                },
            ]),
        },
    );

    let data_bucket = t.add(
        "DataBucket",
        Bucket {
            bucket_encryption: Some(BucketEncryption::sse_s3()),
            public_access_block_configuration: Some(PublicAccessBlockConfiguration::all()),
            versioning_configuration: Some(VersioningConfiguration {
                status: s("Enabled"),
            }),
            logging_configuration: Some(LoggingConfiguration {
                destination_bucket_name: Some(logs_bucket.r#ref().into()),
                log_file_prefix: Some(s("s3-access/data/")),
            }),
            ownership_controls: Some(OwnershipControls {
                rules: vec![OwnershipControlsRule {
                    object_ownership: Some(s("BucketOwnerEnforced")),
                }],
            }),
            lifecycle_configuration: Some(LifecycleConfiguration {
                rules: vec![
                    Rule {
                        status: s("Enabled"),
                        id: Some(s("tidy-versions-and-uploads")),
                        prefix: None,
                        expiration_in_days: None,
                        abort_incomplete_multipart_upload: Some(AbortIncompleteMultipartUpload {
                            days_after_initiation: 7.into(),
                        }),
                        noncurrent_version_expiration: Some(NoncurrentVersionExpiration {
                            noncurrent_days: 90.into(),
                        }),
                    },
                    // Bedrock batch inputs and outputs are only read once a job ends.
                    Rule {
                        status: s("Enabled"),
                        id: Some(s("expire-batch-objects")),
                        prefix: Some(s(format!("{BATCH_PREFIX}/"))),
                        expiration_in_days: Some(i64::from(cfg.batch_expiry_days).into()),
                        abort_incomplete_multipart_upload: None,
                        noncurrent_version_expiration: None,
                    },
                ],
            }),
            tags: app_tags(cfg),
        },
    );
    // Datasets and results outlive the stack.
    t.set_policies(&data_bucket, Retention::Retain, Retention::Retain);
    t.add(
        "DataBucketPolicy",
        BucketPolicy {
            bucket: data_bucket.r#ref().into(),
            policy_document: PolicyDocument::new(vec![tls_only(
                data_bucket.get_att(BucketAttr::Arn),
            )]),
        },
    );
    Buckets {
        logs_bucket,
        logs_bucket_policy,
        data_bucket,
    }
}
