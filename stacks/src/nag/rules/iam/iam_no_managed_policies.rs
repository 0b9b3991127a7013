//! `AwsSolutions-IAM4`: principals do not attach AWS managed policies (granular findings
//! `Policy::<arn>`).

use super::PRINCIPALS;
use crate::nag::resolve::flatten;
use crate::nag::{CheckResult, Compliance, Level, Resource, Rule};

/// cdk-nag `IAMNoManagedPolicies`.
pub const IAM_NO_MANAGED_POLICIES: Rule = Rule {
    id: "AwsSolutions-IAM4",
    name: "IAMNoManagedPolicies",
    level: Level::Error,
    info: "This IAM role, user or group attaches an AWS managed policy.",
    explanation: "AWS managed policies are broad, change without notice and cannot be narrowed to your resources. \
Replace them with customer managed or inline policies scoped to what the principal needs. Findings are `Policy::<arn>` and can be suppressed one by one with `applies_to` (e.g. `Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole`).",
    check: Some(check),
};

fn check(res: &Resource<'_>) -> CheckResult {
    if !PRINCIPALS.contains(&res.resource_type) {
        return Ok(Compliance::NotApplicable);
    }
    let mut findings = Vec::new();
    for list in res
        .lists(res.prop("ManagedPolicyArns"), "ManagedPolicyArns")?
        .into_iter()
        .flatten()
    {
        for arn in list {
            for variant in res.variants(Some(arn)).into_iter().flatten() {
                let flat = flatten(variant);
                let finding = format!("Policy::{flat}");
                if flat.contains(":iam::aws:") && !findings.contains(&finding) {
                    findings.push(finding);
                }
            }
        }
    }
    Ok(Compliance::Findings(findings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nag::testing::{assert_suppressible, open, status};

    fn role(arns: &str) -> String {
        format!(
            "Resources: {{R: {{Type: AWS::IAM::Role, Properties: {{AssumeRolePolicyDocument: {{}}, ManagedPolicyArns: {arns}}}}}}}"
        )
    }

    #[test]
    fn cases() {
        assert_eq!(
            status(&role("[!Ref MyPolicy]"), &IAM_NO_MANAGED_POLICIES),
            "compliant"
        );
        assert_eq!(
            status(
                &role("['arn:aws:iam::aws:policy/AdministratorAccess']"),
                &IAM_NO_MANAGED_POLICIES
            ),
            "findings: Policy::arn:aws:iam::aws:policy/AdministratorAccess"
        );
        assert_eq!(
            status(
                &role("[!Sub 'arn:${AWS::Partition}:iam::aws:policy/ReadOnlyAccess']"),
                &IAM_NO_MANAGED_POLICIES
            ),
            "findings: Policy::arn:<AWS::Partition>:iam::aws:policy/ReadOnlyAccess"
        );
        assert_eq!(
            status(&role("!Ref Arns"), &IAM_NO_MANAGED_POLICIES),
            "unresolved: ManagedPolicyArns"
        );
        assert_eq!(
            open(
                &role("['arn:aws:iam::aws:policy/ReadOnlyAccess']"),
                "AwsSolutions-IAM4"
            ),
            ["R:AwsSolutions-IAM4[Policy::arn:aws:iam::aws:policy/ReadOnlyAccess]"]
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::IAM::Policy}}",
                &IAM_NO_MANAGED_POLICIES
            ),
            "n/a"
        );
        assert_suppressible(
            &role("['arn:aws:iam::aws:policy/ReadOnlyAccess']"),
            "AwsSolutions-IAM4",
        );
    }

    #[test]
    fn applies_to_suppresses_one_policy() {
        let template = "Resources: {R: {Type: AWS::IAM::Role, Metadata: {cdk_nag: {rules_to_suppress: [{id: AwsSolutions-IAM4, reason: basic execution role is fine, applies_to: ['Policy::arn:aws:iam::aws:policy/A']}]}}, Properties: {ManagedPolicyArns: ['arn:aws:iam::aws:policy/A', 'arn:aws:iam::aws:policy/B']}}}";
        assert_eq!(
            open(template, "AwsSolutions-IAM4"),
            ["R:AwsSolutions-IAM4[Policy::arn:aws:iam::aws:policy/B]"]
        );
    }
}
