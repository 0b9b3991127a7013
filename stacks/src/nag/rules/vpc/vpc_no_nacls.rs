//! `AwsSolutions-VPC3`: network ACLs are flagged (prefer security groups).

use crate::nag::rules::verdict;
use crate::nag::{CheckResult, Compliance, Level, Resource, Rule};

/// cdk-nag `VPCNoNACLs`.
pub const VPC_NO_NACLS: Rule = Rule {
    id: "AwsSolutions-VPC3",
    name: "VPCNoNACLs",
    level: Level::Warning,
    info: "This template uses a network ACL (or ACL entry).",
    explanation: "Network ACLs are stateless, apply to whole subnets and need every return path opened by hand, which makes them easy to get wrong. \
Prefer stateful security groups; keep a NACL only when a control really needs subnet-wide deny rules, and suppress this warning with that reason.",
    check: Some(check),
};

fn check(res: &Resource<'_>) -> CheckResult {
    match res.resource_type {
        "AWS::EC2::NetworkAcl" | "AWS::EC2::NetworkAclEntry" => verdict(true),
        _ => Ok(Compliance::NotApplicable),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nag::testing::{assert_suppressible, status};

    #[test]
    fn cases() {
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::EC2::NetworkAcl, Properties: {VpcId: !Ref V}}}",
                &VPC_NO_NACLS
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::EC2::NetworkAclEntry}}",
                &VPC_NO_NACLS
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::EC2::SecurityGroup}}",
                &VPC_NO_NACLS
            ),
            "n/a"
        );
        assert_suppressible(
            "Resources: {R: {Type: AWS::EC2::NetworkAcl}}",
            "AwsSolutions-VPC3",
        );
    }
}
