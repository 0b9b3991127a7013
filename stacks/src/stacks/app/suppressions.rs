//! Findings of the security rule pack (`deployer nag`) accepted for the app stack's design,
//! each with its reason, written next to its resource. A test fails when one no longer matches
//! a finding, so this list cannot go stale.

use crate::checkov::CheckovSkip;
use crate::config::StackConfig;
use crate::model::Template;
use crate::nag::{NagSuppress, NagSuppression};
use crate::stacks::app::buckets::Buckets;
use crate::stacks::app::cloudfront::Edge;
use crate::stacks::app::cognito::Auth;
use crate::stacks::app::ecs::Compute;
use crate::stacks::app::networking::Networking;

pub(super) fn add(
    t: &mut Template,
    cfg: &StackConfig,
    auth: &Auth,
    compute: &Compute,
    edge: &Edge,
) {
    let Auth {
        user_pool,
        client_secret,
        ..
    } = auth;
    let Compute {
        execution_role,
        task_role,
        task_definition,
        ..
    } = compute;
    let distribution = &edge.distribution;
    let accept = |id: &str, reason: &str| NagSuppression::new(id, reason);
    t.nag_suppress(
        user_pool,
        &[accept(
            "AwsSolutions-COG2",
            "MFA is optional (TOTP) so administrators can onboard workshop users without a device; threat protection is ENFORCED on the Plus tier",
        )],
    );
    t.nag_suppress(
        client_secret,
        &[accept(
            "AwsSolutions-SMG4",
            "holds the Cognito app client id and secret, which Cognito issues and cannot rotate through Secrets Manager; replace the client to rotate",
        )],
    );
    t.nag_suppress(
        execution_role,
        &[accept(
            "AwsSolutions-IAM5",
            "ecr:GetAuthorizationToken has no resource-level permissions",
        )
        .applies_to(["Resource::*"])],
    );
    t.nag_suppress(
        task_role,
        &[
            accept(
                "AwsSolutions-IAM5",
                "users pick any Bedrock model or cross-region inference profile to evaluate; only the invoke actions are allowed",
            )
            .applies_to([
                "Resource::arn:<AWS::Partition>:bedrock:*::foundation-model/*",
                "Resource::arn:<AWS::Partition>:bedrock:*:<AWS::AccountId>:inference-profile/*",
            ]),
            accept(
                "AwsSolutions-IAM5",
                "users pick any SageMaker endpoint of this account and region to evaluate; only InvokeEndpoint is allowed",
            )
            .applies_to(["Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:endpoint/*"]),
            accept(
                "AwsSolutions-IAM5",
                "bedrock:ListFoundationModels and sagemaker:ListEndpoints have no resource-level permissions",
            )
            .applies_to(["Resource::*"]),
            accept(
                "AwsSolutions-IAM5",
                "the store reads, writes and deletes objects of the app's own data bucket only (uploaded datasets, records too large for one DynamoDB item), and object ARNs are only known at run time",
            )
            .applies_to(["Resource::<DataBucket.Arn>/*"]),
        ],
    );
    t.nag_suppress(
        task_definition,
        &[accept(
            "AwsSolutions-ECS2",
            "the environment holds only non-secret identifiers (bind address, region, pool and client ids, bucket, table and secret names); the client secret comes from Secrets",
        )],
    );
    let mut distribution_accepted = vec![
        accept(
            "AwsSolutions-CFR1",
            "the evaluation app serves its users worldwide; access is controlled by Cognito sign-in, not by country",
        ),
        accept(
            "AwsSolutions-CFR2",
            "no WAF web ACL by default to keep the demo's fixed cost low; every page requires a Cognito session and the origin is private",
        ),
        accept(
            "AwsSolutions-CFR4",
            "without CertificateArn/DomainAlias only the default cloudfront.net certificate is possible; with them the distribution enforces TLSv1.2_2021 with sni-only",
        ),
    ];
    if !cfg.cloudfront_access_logs {
        distribution_accepted.push(accept(
            "AwsSolutions-CFR3",
            "access logs are opt-in (DEPLOY_CLOUDFRONT_ACCESS_LOGS=yes) to avoid log storage for short-lived demo deployments",
        ));
    }
    t.nag_suppress(distribution, &distribution_accepted);
}

/// checkov's failed checks that stay, each with its reason next to the resource (README.md,
/// "Security checks", lists them).
#[allow(clippy::too_many_arguments)]
pub(super) fn checkov(
    t: &mut Template,
    cfg: &StackConfig,
    buckets: &Buckets,
    table: &crate::model::Handle<crate::resources::dynamodb::Table>,
    net: &Networking,
    auth: &Auth,
    compute: &Compute,
    edge: &Edge,
) {
    const NO_CMK: &str = "a customer-managed KMS key (DEPLOY_KMS_KEY) is not implemented yet; a key costs money every month";
    t.checkov_skip(
        &buckets.logs_bucket,
        &[(
            "CKV_AWS_18",
            "the logs bucket receives the other buckets' access logs; logging it into itself would log forever",
        )],
    );
    t.checkov_skip(
        table,
        &[(
            "CKV_AWS_119",
            &format!("encrypted with the aws/dynamodb AWS managed KMS key (SSEEnabled); {NO_CMK}"),
        )],
    );
    t.checkov_skip(
        &auth.client_secret,
        &[(
            "CKV_AWS_149",
            &format!("encrypted with the aws/secretsmanager AWS managed key; {NO_CMK}"),
        )],
    );
    t.checkov_skip(
        &compute.log_group,
        &[(
            "CKV_AWS_158",
            &format!("CloudWatch Logs encrypts log groups with its own keys; {NO_CMK}"),
        )],
    );
    let internal_http = "plain HTTP between CloudFront's VPC origin and the internal ALB: the hop stays inside AWS's network and the VPC, the ALB admits only CloudFront's origin-facing prefix list, and HTTPS here would need a certificate for a private name";
    t.checkov_skip(
        &net.listener,
        &[("CKV_AWS_2", internal_http), ("CKV_AWS_103", internal_http)],
    );
    let mut distribution = vec![
        (
            "CKV_AWS_68",
            "no WAF web ACL by default to keep the demo's fixed cost low; every page requires a Cognito session and the origin is private".to_string(),
        ),
        (
            "CKV_AWS_174",
            "without CertificateArn/DomainAlias only the default cloudfront.net certificate is possible (checkov cannot see the Fn::If); with them the distribution enforces TLSv1.2_2021".to_string(),
        ),
    ];
    if !cfg.cloudfront_access_logs {
        distribution.push((
            "CKV_AWS_86",
            "access logs are opt-in (DEPLOY_CLOUDFRONT_ACCESS_LOGS=yes) to avoid log storage for short-lived demo deployments".to_string(),
        ));
    }
    let distribution: Vec<(&str, &str)> = distribution
        .iter()
        .map(|(id, comment)| (*id, comment.as_str()))
        .collect();
    t.checkov_skip(&edge.distribution, &distribution);
}
