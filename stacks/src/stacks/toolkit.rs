//! The toolkit stack `<prefix>-toolkit`: what the deployer itself needs before the other
//! stacks can deploy, like `cdk bootstrap`'s stack but only for this deployment.
//!
//! - The ECR repository the app image is pushed to ([`repository_name`]): scanned on push,
//!   immutable tags (the deployer tags each image with its digest), and a lifecycle rule that
//!   keeps the last [`KEEP_IMAGES`] images. The app stack's pull permission names exactly this
//!   repository.
//! - Only when a template exceeds CloudFormation's 51,200-byte `TemplateBody` limit: a bucket
//!   the deployer uploads such templates to, to pass them as `TemplateURL`.
//!
//! Invariant: both resources are retained when the stack is deleted (images and templates are
//! removed by `deployer down --purge`, never by accident).

use crate::config::StackConfig;
use crate::model::{Output, Policy as Retention, Template, s};
use crate::nag::{NagSuppress, NagSuppression};
use crate::resources::ecr::{
    EncryptionConfiguration, ImageScanningConfiguration, LifecyclePolicy, Repository,
    RepositoryAttr,
};
use crate::resources::iam::PolicyDocument;
use crate::resources::s3::{
    AbortIncompleteMultipartUpload, Bucket, BucketAttr, BucketEncryption, BucketPolicy,
    LifecycleConfiguration, OwnershipControls, OwnershipControlsRule,
    PublicAccessBlockConfiguration, Rule,
};
use crate::stacks::{StackKind, checkov, tags, tls_only};

/// How many images the repository keeps; older ones expire.
pub const KEEP_IMAGES: u32 = 10;

/// Output with the repository URI (`<account>.dkr.ecr.<region>.amazonaws.com/<name>`).
pub const REPOSITORY_URI_OUTPUT: &str = "RepositoryUri";

/// Output with the repository name.
pub const REPOSITORY_NAME_OUTPUT: &str = "RepositoryName";

/// Output with the templates bucket's name (only when the bucket exists).
pub const TEMPLATES_BUCKET_OUTPUT: &str = "TemplatesBucketName";

/// Name of the app image repository of `prefix`.
pub fn repository_name(prefix: &str) -> String {
    format!("{prefix}-app")
}

/// The lifecycle policy: expire images beyond the newest [`KEEP_IMAGES`], tagged or not.
fn lifecycle_policy_text() -> String {
    serde_json::json!({
        "rules": [{
            "rulePriority": 1,
            "description": format!("keep the last {KEEP_IMAGES} images"),
            "selection": {
                "tagStatus": "any",
                "countType": "imageCountMoreThan",
                "countNumber": KEEP_IMAGES,
            },
            "action": {"type": "expire"},
        }]
    })
    .to_string()
}

/// What the toolkit stack holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolkitParts {
    /// The app image repository (when the app stack is deployed).
    pub repository: bool,
    /// The bucket for templates over the `TemplateBody` limit.
    pub templates_bucket: bool,
}

/// Builds the toolkit template.
pub fn build(cfg: &StackConfig, parts: ToolkitParts) -> Template {
    let prefix = cfg.prefix.as_str();
    let stack_tags = || tags(cfg, StackKind::Toolkit);
    let mut t = Template::new(format!(
        "{prefix} toolkit: the app image repository and, for templates over 51,200 bytes, their upload bucket"
    ));
    if parts.repository {
        let repository = t.add(
            "AppRepository",
            Repository {
                repository_name: Some(s(repository_name(prefix))),
                image_scanning_configuration: Some(ImageScanningConfiguration {
                    scan_on_push: Some(true.into()),
                }),
                image_tag_mutability: Some(s("IMMUTABLE")),
                lifecycle_policy: Some(LifecyclePolicy {
                    lifecycle_policy_text: Some(s(lifecycle_policy_text())),
                }),
                encryption_configuration: Some(EncryptionConfiguration {
                    encryption_type: s("AES256"),
                }),
                empty_on_delete: None,
                tags: stack_tags(),
            },
        );
        // The running service pulls from it until the app stack is gone.
        t.set_policies(&repository, Retention::Retain, Retention::Retain);
        checkov::skip(
            &mut t,
            &repository,
            &[(
                "CKV_AWS_136",
                "images are encrypted at rest with AES-256; they hold the public app build, no data, and the toolkit is deployed before the network stack's optional customer-managed key",
            )],
        );
        t.add_output(
            REPOSITORY_URI_OUTPUT,
            Output {
                description: "URI of the app image repository".into(),
                value: repository.get_att(RepositoryAttr::RepositoryUri),
                export: None,
                condition: None,
            },
        );
        t.add_output(
            REPOSITORY_NAME_OUTPUT,
            Output {
                description: "name of the app image repository".into(),
                value: repository.r#ref(),
                export: None,
                condition: None,
            },
        );
    }
    if parts.templates_bucket {
        let bucket = t.add(
            "TemplatesBucket",
            Bucket {
                bucket_encryption: Some(BucketEncryption::sse_s3()),
                public_access_block_configuration: Some(PublicAccessBlockConfiguration::all()),
                versioning_configuration: None,
                logging_configuration: None,
                ownership_controls: Some(OwnershipControls {
                    rules: vec![OwnershipControlsRule {
                        object_ownership: Some(s("BucketOwnerEnforced")),
                    }],
                }),
                // CloudFormation reads a template once, when the change set is created.
                lifecycle_configuration: Some(LifecycleConfiguration {
                    rules: vec![Rule {
                        prefix: None,
                        status: s("Enabled"),
                        id: Some(s("expire-templates")),
                        expiration_in_days: Some(7.into()),
                        abort_incomplete_multipart_upload: Some(AbortIncompleteMultipartUpload {
                            days_after_initiation: 1.into(),
                        }),
                        noncurrent_version_expiration: None,
                    }],
                }),
                tags: stack_tags(),
            },
        );
        t.set_policies(&bucket, Retention::Retain, Retention::Retain);
        // Since the app stack grew past 51,200 bytes (the batch service role), the bucket is
        // part of the default deployment and checkov sees it.
        checkov::skip(
            &mut t,
            &bucket,
            &[
                (
                    "CKV_AWS_18",
                    "holds only templates the deployer uploads for CloudFormation, which records every stack operation itself; objects expire after 7 days",
                ),
                (
                    "CKV_AWS_21",
                    "a template is written once per deploy and read once by CloudFormation; objects expire after 7 days, so versions would keep nothing worth restoring",
                ),
            ],
        );
        t.add(
            "TemplatesBucketPolicy",
            BucketPolicy {
                bucket: bucket.r#ref().into(),
                policy_document: PolicyDocument::new(vec![tls_only(
                    bucket.get_att(BucketAttr::Arn),
                )]),
            },
        );
        t.nag_suppress(
            &bucket,
            &[NagSuppression::new(
                "AwsSolutions-S1",
                "holds only templates the deployer uploads for CloudFormation, which records every stack operation itself; objects expire after 7 days",
            )],
        );
        t.add_output(
            TEMPLATES_BUCKET_OUTPUT,
            Output {
                description: "bucket for templates over the 51,200-byte TemplateBody limit".into(),
                value: bucket.r#ref(),
                export: None,
                condition: None,
            },
        );
    }
    t
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The templates bucket only appears for oversized templates, so no default synth has it:
    /// check that variant here (validation and the rule pack; cfn-lint runs over it too).
    #[test]
    fn bucket_variant_validates_and_passes_nag() {
        let parts = ToolkitParts {
            repository: true,
            templates_bucket: true,
        };
        let template = build(&StackConfig::default(), parts);
        template.validate("llm-eval-toolkit").unwrap();
        let text = String::from_utf8(template.to_json_bytes()).unwrap();
        let parsed = crate::nag::parse_template("toolkit.json", &text).unwrap();
        let open: Vec<String> = crate::nag::check_template(&parsed)
            .into_iter()
            .filter(|finding| finding.suppressed.is_none())
            .map(|finding| format!("{} {}", finding.rule_id, finding.logical_id))
            .collect();
        assert!(open.is_empty(), "{open:?}");
        assert!(text.contains(TEMPLATES_BUCKET_OUTPUT));
    }

    #[test]
    fn lifecycle_keeps_the_last_images() {
        let policy: serde_json::Value = serde_json::from_str(&lifecycle_policy_text()).unwrap();
        assert_eq!(policy["rules"][0]["selection"]["countNumber"], KEEP_IMAGES);
    }
}
