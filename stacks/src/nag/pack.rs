//! The pack: which rules run, under which ids and levels, and how a template is checked.
//!
//! Ids and levels follow cdk-nag's AwsSolutions pack, so suppressions written for cdk-nag keep
//! working. `Nag-SUP1`/`Nag-SUP2` are ours: they report suppressions that are themselves wrong.
//! Invariant: [`check_template`] never panics; findings come out in template order, rule order.

use super::resolve::Resource;
use super::rules::{
    cloudfront, codebuild, cognito, dynamodb, ec2, ecs, elb, iam, lambda, s3, sagemaker,
    secretsmanager, vpc,
};
use super::suppress::{self, MALFORMED_ID, NO_REASON_ID};
use super::{Compliance, Finding, Level, ParsedTemplate, Rule};

/// A suppression without a long enough reason.
pub const SUPPRESSION_WITHOUT_REASON: Rule = Rule {
    id: NO_REASON_ID,
    name: "SuppressionWithoutReason",
    level: Level::Error,
    info: "A cdk_nag suppression has no reason of at least 10 characters, so it is ignored.",
    explanation: "A suppression is a recorded decision to accept a risk; without a reason nobody can review it later. \
Write why the finding is acceptable here (e.g. which control replaces the missing one) in `reason`.",
    check: None,
};

/// A malformed suppression entry.
pub const MALFORMED_SUPPRESSION: Rule = Rule {
    id: MALFORMED_ID,
    name: "MalformedSuppression",
    level: Level::Error,
    info: "A cdk_nag suppression entry is malformed (no id, bad applies_to or invalid regex), so it is ignored.",
    explanation: "Entries of `Metadata.cdk_nag.rules_to_suppress` need a string `id`, a `reason`, and optionally an \
`applies_to` list of strings or `{regex: \"/pattern/flags\"}` objects. Fix the entry so it suppresses what you meant.",
    check: None,
};

/// Every rule of the pack, in report order.
pub const RULES: &[Rule] = &[
    // Compute.
    ec2::EC2_RESTRICTED_INBOUND,
    ec2::EC2_EBS_VOLUME_ENCRYPTED,
    ec2::EC2_SECURITY_GROUP_DESCRIPTION,
    ec2::EC2_INSTANCE_DETAILED_MONITORING,
    ec2::EC2_INSTANCE_TERMINATION_PROTECTION,
    ecs::ECS_TASK_DEFINITION_NO_ENVIRONMENT_VARIABLES,
    ecs::ECS_CLUSTER_CONTAINER_INSIGHTS,
    ecs::ECS_TASK_DEFINITION_CONTAINER_LOGGING,
    elb::CLB_NO_INBOUND_HTTP_HTTPS,
    elb::ELB_LOGGING_ENABLED,
    elb::CLB_CONNECTION_DRAINING,
    elb::ELB_CROSS_ZONE_LOAD_BALANCING,
    elb::ELB_TLS_HTTPS_LISTENERS_ONLY,
    // Storage.
    s3::S3_BUCKET_LOGGING_ENABLED,
    s3::S3_BUCKET_PUBLIC_ACCESS_BLOCKED,
    s3::S3_WEB_BUCKET_OAI_ACCESS,
    s3::S3_BUCKET_TLS_ONLY,
    // Network and delivery.
    vpc::VPC_NO_NACLS,
    vpc::VPC_FLOW_LOGS_ENABLED,
    cloudfront::CLOUDFRONT_GEO_RESTRICTIONS,
    cloudfront::CLOUDFRONT_WAF_INTEGRATION,
    cloudfront::CLOUDFRONT_ACCESS_LOGGING,
    cloudfront::CLOUDFRONT_VIEWER_NO_OUTDATED_TLS,
    cloudfront::CLOUDFRONT_ORIGIN_NO_OUTDATED_TLS,
    cloudfront::CLOUDFRONT_S3_ORIGIN_ACCESS_IDENTITY,
    cloudfront::CLOUDFRONT_S3_ORIGIN_ACCESS_CONTROL,
    // Machine learning.
    sagemaker::SAGEMAKER_NOTEBOOK_IN_VPC,
    sagemaker::SAGEMAKER_NOTEBOOK_KMS_KEY,
    sagemaker::SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET,
    // Security and compliance.
    iam::IAM_NO_MANAGED_POLICIES,
    iam::IAM_NO_WILDCARD_PERMISSIONS,
    cognito::COGNITO_STRONG_PASSWORD_POLICY,
    cognito::COGNITO_MFA,
    cognito::COGNITO_API_GATEWAY_AUTHORIZER,
    cognito::COGNITO_NO_UNAUTHENTICATED_LOGINS,
    cognito::COGNITO_PLUS_TIER,
    secretsmanager::SECRETS_MANAGER_ROTATION_ENABLED,
    // Databases.
    dynamodb::DYNAMODB_PITR_ENABLED,
    // Developer tools.
    codebuild::CODEBUILD_KMS_ENCRYPTED_ARTIFACTS,
    codebuild::CODEBUILD_MANAGED_IMAGES,
    // Serverless.
    lambda::LAMBDA_LATEST_VERSION,
    // Suppression hygiene (ours).
    SUPPRESSION_WITHOUT_REASON,
    MALFORMED_SUPPRESSION,
];

/// The rule with this id (case-insensitive; the `AwsSolutions-` prefix may be left out).
pub fn find_rule(id: &str) -> Option<&'static Rule> {
    let base = id.split('[').next().unwrap_or(id);
    RULES.iter().find(|rule| {
        rule.id.eq_ignore_ascii_case(base)
            || rule
                .id
                .strip_prefix("AwsSolutions-")
                .is_some_and(|short| short.eq_ignore_ascii_case(base))
    })
}

/// Runs every rule over every resource of a template and applies the suppressions.
/// Returns all findings, suppressed ones included (with their reason).
pub fn check_template(template: &ParsedTemplate) -> Vec<Finding> {
    let mut findings = Vec::new();
    let template_metadata = template.root().get("Metadata");
    let (template_suppressions, template_problems) = suppress::read(template_metadata);
    for problem in template_problems {
        findings.push(problem_finding(template, "(template)", "", problem));
    }
    for (logical_id, body) in template.resources() {
        let resource = Resource::new(template, logical_id, body);
        let (suppressions, problems) = suppress::read(body.get("Metadata"));
        for problem in problems {
            findings.push(problem_finding(
                template,
                logical_id,
                resource.resource_type,
                problem,
            ));
        }
        for rule in RULES {
            let Some(check) = rule.check else { continue };
            let base = |finding: Option<String>, message: String, unresolved: bool| {
                let rule_id = match &finding {
                    Some(part) => format!("{}[{part}]", rule.id),
                    None => rule.id.to_owned(),
                };
                // The resource's own suppressions first, then the template's.
                let suppressed =
                    suppress::find(&suppressions, rule.id, finding.as_deref(), unresolved)
                        .or_else(|| {
                            suppress::find(
                                &template_suppressions,
                                rule.id,
                                finding.as_deref(),
                                unresolved,
                            )
                        })
                        .map(|suppression| suppression.reason.clone());
                Finding {
                    rule_id,
                    base_id: rule.id,
                    finding,
                    level: rule.level,
                    file: template.file.clone(),
                    logical_id: logical_id.to_owned(),
                    resource_type: resource.resource_type.to_owned(),
                    message,
                    position: template.position_of(logical_id),
                    suppressed,
                }
            };
            match check(&resource) {
                Ok(Compliance::Compliant | Compliance::NotApplicable) => {}
                Ok(Compliance::NonCompliant) => {
                    findings.push(base(None, rule.info.to_owned(), false))
                }
                Ok(Compliance::Findings(parts)) => {
                    for part in parts {
                        findings.push(base(Some(part), rule.info.to_owned(), false));
                    }
                }
                Err(unresolved) => findings.push(base(
                    None,
                    format!("the rule could not validate the resource: {unresolved}"),
                    true,
                )),
            }
        }
    }
    findings
}

fn problem_finding(
    template: &ParsedTemplate,
    logical_id: &str,
    resource_type: &str,
    problem: suppress::Problem,
) -> Finding {
    let rule = if problem.rule_id == NO_REASON_ID {
        &SUPPRESSION_WITHOUT_REASON
    } else {
        &MALFORMED_SUPPRESSION
    };
    Finding {
        rule_id: rule.id.to_owned(),
        base_id: rule.id,
        finding: None,
        level: rule.level,
        file: template.file.clone(),
        logical_id: logical_id.to_owned(),
        resource_type: resource_type.to_owned(),
        message: problem.message,
        position: template.position_of(logical_id),
        suppressed: None,
    }
}

/// Renders the rule table written to `stacks/RULES.md`.
pub fn rules_markdown() -> String {
    let mut out = String::from(
        "# Nag rules\n\n\
<!-- Generated by `cargo test -p stacks rules_md`; do not edit by hand. -->\n\n\
The security rule pack run by `deployer nag` and `CDK_NAG=true deployer synth`.\n\
Ids and levels follow cdk-nag's AwsSolutions pack, so existing `cdk_nag` suppressions keep working.\n\
`Nag-*` rules are ours and their ids are stable.\n\n\
| Id | Level | cdk-nag rule | Finding | Why and how to fix |\n|---|---|---|---|---|\n",
    );
    for rule in RULES {
        let cell = |text: &str| text.replace('|', "\\|").replace('\n', " ");
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            rule.id,
            rule.level,
            rule.name,
            cell(rule.info),
            cell(rule.explanation)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nag::testing::open;

    #[test]
    fn rule_ids_are_unique_and_well_formed() {
        let mut ids: Vec<&str> = RULES.iter().map(|rule| rule.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), RULES.len());
        for rule in RULES {
            assert!(
                rule.id.starts_with("AwsSolutions-") || rule.id.starts_with("Nag-"),
                "{}",
                rule.id
            );
            assert!(rule.info.ends_with('.'), "{} info is a sentence", rule.id);
            assert!(
                rule.explanation.len() > 40,
                "{} explanation says why and how",
                rule.id
            );
        }
    }

    #[test]
    fn find_rule_accepts_short_ids() {
        assert_eq!(
            find_rule("AwsSolutions-S10").map(|rule| rule.id),
            Some("AwsSolutions-S10")
        );
        assert_eq!(
            find_rule("s10").map(|rule| rule.id),
            Some("AwsSolutions-S10")
        );
        assert_eq!(
            find_rule("AwsSolutions-IAM5[Action::s3:*]").map(|rule| rule.id),
            Some("AwsSolutions-IAM5")
        );
        assert_eq!(find_rule("nag-sup1").map(|rule| rule.id), Some("Nag-SUP1"));
        assert!(find_rule("AwsSolutions-XYZ").is_none());
    }

    #[test]
    fn template_level_suppressions_apply_to_every_resource() {
        let template = "Metadata: {cdk_nag: {rules_to_suppress: [{id: AwsSolutions-VPC3, reason: we need NACLs for compliance}]}}\nResources: {A: {Type: AWS::EC2::NetworkAcl}, B: {Type: AWS::EC2::NetworkAclEntry}}";
        assert_eq!(open(template, "AwsSolutions-VPC3"), Vec::<String>::new());
    }

    #[test]
    fn bad_suppressions_are_errors_and_suppress_nothing() {
        let template = "Resources: {A: {Type: AWS::EC2::NetworkAcl, Metadata: {cdk_nag: {rules_to_suppress: [{id: AwsSolutions-VPC3, reason: short}]}}}}";
        assert_eq!(open(template, "AwsSolutions-VPC3"), ["A:AwsSolutions-VPC3"]);
        assert_eq!(open(template, "Nag-SUP1"), ["A:Nag-SUP1"]);
        let template = "Metadata: {cdk_nag: {rules_to_suppress: [{reason: a reason that is long}]}}\nResources: {A: {Type: X}}";
        assert_eq!(open(template, "Nag-SUP2"), ["(template):Nag-SUP2"]);
    }

    #[test]
    fn unresolvable_values_are_findings_and_can_be_suppressed() {
        let template = "Parameters: {P: {Type: String}}\nResources: {R: {Type: AWS::EC2::SecurityGroupIngress, Properties: {CidrIp: !Ref P}}}";
        assert_eq!(open(template, "AwsSolutions-EC23"), ["R:AwsSolutions-EC23"]);
        let suppressed = "Parameters: {P: {Type: String}}\nResources: {R: {Type: AWS::EC2::SecurityGroupIngress, Properties: {CidrIp: !Ref P}, Metadata: {cdk_nag: {rules_to_suppress: [{id: CdkNagValidationFailure, reason: the CIDR is a reviewed deploy parameter, applies_to: [AwsSolutions-EC23]}]}}}}";
        assert_eq!(open(suppressed, "AwsSolutions-EC23"), Vec::<String>::new());
    }

    #[test]
    fn rules_md_is_up_to_date() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("RULES.md");
        let expected = rules_markdown();
        let actual = std::fs::read_to_string(&path).unwrap_or_default();
        if actual != expected {
            std::fs::write(&path, &expected).expect("write RULES.md");
            panic!("RULES.md was stale and has been regenerated; commit it and rerun");
        }
    }
}
