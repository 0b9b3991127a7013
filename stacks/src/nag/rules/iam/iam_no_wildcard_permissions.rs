//! `AwsSolutions-IAM5`: allow statements name no wildcard actions or resources (granular
//! findings `Action::<action>` and `Resource::<resource>`).

use serde_json::Value;

use super::PRINCIPALS;
use crate::nag::resolve::{flatten, one_or_many};
use crate::nag::rules::{items, statements};
use crate::nag::{CheckResult, Compliance, Level, Resource, Rule, Unresolved};

/// cdk-nag `IAMNoWildcardPermissions`.
pub const IAM_NO_WILDCARD_PERMISSIONS: Rule = Rule {
    id: "AwsSolutions-IAM5",
    name: "IAMNoWildcardPermissions",
    level: Level::Error,
    info: "A policy of this IAM entity allows a wildcard action or resource.",
    explanation: "A `*` in an allowed action or resource grants more than the workload needs (least privilege), including actions added to the service later. \
Name the actions and resource ARNs; where a wildcard is really needed (e.g. objects under a prefix), suppress that one finding with `applies_to` (`Action::s3:Get*`, `Resource::<Bucket.Arn>/*`) and the evidence. Inline policies of roles, users and groups, and AWS::IAM::Policy, ManagedPolicy, RolePolicy, UserPolicy and GroupPolicy documents are checked.",
    check: Some(check),
};

const POLICIES: [&str; 5] = [
    "AWS::IAM::Policy",
    "AWS::IAM::ManagedPolicy",
    "AWS::IAM::RolePolicy",
    "AWS::IAM::UserPolicy",
    "AWS::IAM::GroupPolicy",
];

fn check(res: &Resource<'_>) -> CheckResult {
    let mut findings = Vec::new();
    if PRINCIPALS.contains(&res.resource_type) {
        for (path, policy) in items(res, res.prop("Policies"), "Policies")? {
            analyze(
                res,
                policy.get("PolicyDocument"),
                &format!("{path}.PolicyDocument"),
                &mut findings,
            )?;
        }
    } else if POLICIES.contains(&res.resource_type) {
        analyze(
            res,
            res.prop("PolicyDocument"),
            "PolicyDocument",
            &mut findings,
        )?;
    } else {
        return Ok(Compliance::NotApplicable);
    }
    Ok(Compliance::Findings(findings))
}

fn analyze<'a>(
    res: &Resource<'a>,
    document: Option<&'a Value>,
    path: &str,
    findings: &mut Vec<String>,
) -> Result<(), Unresolved> {
    let mut add = |finding: String| {
        if !findings.contains(&finding) {
            findings.push(finding);
        }
    };
    for document in res.objects(document, path)?.into_iter().flatten() {
        for (_, statement) in statements(res, document, path)? {
            // Deny statements restrict, so wildcards there are fine.
            if statement.get("Effect").and_then(Value::as_str) != Some("Allow") {
                continue;
            }
            for action in statement.get("Action").map(one_or_many).unwrap_or_default() {
                for variant in res.variants(Some(action)).into_iter().flatten() {
                    let flat = flatten(variant);
                    if flat.contains('*') {
                        add(format!("Action::{flat}"));
                    }
                }
            }
            for resource in statement
                .get("Resource")
                .map(one_or_many)
                .unwrap_or_default()
            {
                for variant in res.variants(Some(resource)).into_iter().flatten() {
                    let flat = flatten(variant);
                    if flat.contains('*') {
                        add(format!("Resource::{flat}"));
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nag::testing::{assert_suppressible, open, status};

    fn policy(statement: &str) -> String {
        format!(
            "Conditions: {{C: !Equals [a, b]}}\nResources: {{R: {{Type: AWS::IAM::Policy, Properties: {{PolicyName: p, PolicyDocument: {{Version: '2012-10-17', Statement: [{statement}]}}}}}}}}"
        )
    }

    #[test]
    fn policies() {
        assert_eq!(
            status(
                &policy(
                    "{Effect: Allow, Action: 's3:GetObject', Resource: !Sub '${B.Arn}/data.json'}"
                ),
                &IAM_NO_WILDCARD_PERMISSIONS
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &policy("{Effect: Allow, Action: ['s3:Get*', 'sqs:SendMessage'], Resource: '*'}"),
                &IAM_NO_WILDCARD_PERMISSIONS
            ),
            "findings: Action::s3:Get*, Resource::*"
        );
        assert_eq!(
            status(
                &policy(
                    "{Effect: Allow, Action: 's3:GetObject', Resource: !Join ['', [!GetAtt B.Arn, '/*']]}"
                ),
                &IAM_NO_WILDCARD_PERMISSIONS
            ),
            "findings: Resource::<B.Arn>/*"
        );
        assert_eq!(
            status(
                &policy("{Effect: Deny, Action: '*', Resource: '*'}"),
                &IAM_NO_WILDCARD_PERMISSIONS
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &policy(
                    "!If [C, {Effect: Allow, Action: 'ec2:*', Resource: x}, !Ref AWS::NoValue]"
                ),
                &IAM_NO_WILDCARD_PERMISSIONS
            ),
            "findings: Action::ec2:*"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::IAM::ManagedPolicy, Properties: {PolicyDocument: !Ref Doc}}}",
                &IAM_NO_WILDCARD_PERMISSIONS
            ),
            "unresolved: PolicyDocument"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::S3::Bucket}}",
                &IAM_NO_WILDCARD_PERMISSIONS
            ),
            "n/a"
        );
        assert_suppressible(
            &policy("{Effect: Allow, Action: '*', Resource: '*'}"),
            "AwsSolutions-IAM5",
        );
    }

    #[test]
    fn role_inline_policies_and_applies_to() {
        let role = "Resources: {R: {Type: AWS::IAM::Role, Metadata: {cdk_nag: {rules_to_suppress: [{id: AwsSolutions-IAM5, reason: objects under the data prefix only, applies_to: [{regex: '/^Resource::<Data.Arn>\\/.*$/g'}]}]}}, Properties: {Policies: [{PolicyName: p, PolicyDocument: {Statement: {Effect: Allow, Action: 's3:*', Resource: !Sub '${Data.Arn}/*'}}}]}}}";
        assert_eq!(
            open(role, "AwsSolutions-IAM5"),
            ["R:AwsSolutions-IAM5[Action::s3:*]"]
        );
    }
}
