//! Findings of the security rule pack (`deployer nag`) accepted for the app stack's design,
//! each with its reason, written next to its resource. A test fails when one no longer matches
//! a finding, so this list cannot go stale.

use crate::config::StackConfig;
use crate::model::{Handle, Template};
use crate::nag::{NagSuppress, NagSuppression};
use crate::resources::iam::Role;
use crate::stacks::app::cloudfront::Edge;
use crate::stacks::app::cognito::Auth;
use crate::stacks::app::ecs::Compute;

pub(super) fn add(
    t: &mut Template,
    cfg: &StackConfig,
    auth: &Auth,
    compute: &Compute,
    edge: &Edge,
    batch_role: &Handle<Role>,
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
                "the List actions have no resource-level permissions",
            )
            .applies_to(["Resource::*"]),
            accept(
                "AwsSolutions-IAM5",
                "the store reads, writes and deletes objects of the app's own data bucket only (uploaded datasets, records too large for one DynamoDB item), and object ARNs are only known at run time",
            )
            .applies_to(["Resource::<DataBucket.Arn>/*"]),
            accept(
                "AwsSolutions-IAM5",
                "batch jobs get run-derived names",
            )
            .applies_to([
                "Resource::arn:<AWS::Partition>:bedrock:<AWS::Region>:<AWS::AccountId>:model-invocation-job/*",
            ]),
        ],
    );
    t.nag_suppress(
        batch_role,
        &[
            accept(
                "AwsSolutions-IAM5",
                "batch objects: per-run names, batch prefix only",
            )
            .applies_to([format!(
                "Resource::<DataBucket.Arn>/{}/*",
                crate::stacks::app::BATCH_PREFIX
            )
            .as_str()]),
            accept("AwsSolutions-IAM5", "jobs invoke the model the user picks").applies_to([
                "Resource::arn:<AWS::Partition>:bedrock:*::foundation-model/*",
                "Resource::arn:<AWS::Partition>:bedrock:*:<AWS::AccountId>:inference-profile/*",
            ]),
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
