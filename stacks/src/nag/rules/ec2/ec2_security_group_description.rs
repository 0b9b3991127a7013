//! `AwsSolutions-EC27`: security groups carry a description.

use crate::nag::rules::any_prop;
use crate::nag::{CheckResult, Compliance, Level, Resource, Rule};

/// cdk-nag `EC2SecurityGroupDescription`.
pub const EC2_SECURITY_GROUP_DESCRIPTION: Rule = Rule {
    id: "AwsSolutions-EC27",
    name: "EC2SecurityGroupDescription",
    level: Level::Error,
    info: "The security group has no meaningful description.",
    explanation: "Operators decide whether a rule is safe to change from the group's description; a missing one invites mistakes. \
Set `GroupDescription` to at least two characters saying what the group protects.",
    check: Some(check),
};

fn check(res: &Resource<'_>) -> CheckResult {
    if res.resource_type != "AWS::EC2::SecurityGroup" {
        return Ok(Compliance::NotApplicable);
    }
    any_prop(res, "GroupDescription", |value| {
        value.is_none_or(|text| text.text().chars().count() < 2)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nag::testing::{assert_suppressible, status};

    fn sg(props: &str) -> String {
        format!(
            "Parameters: {{D: {{Type: String, Default: x}}}}\nResources: {{R: {{Type: AWS::EC2::SecurityGroup, Properties: {props}}}}}"
        )
    }

    #[test]
    fn cases() {
        assert_eq!(
            status(
                &sg("{GroupDescription: web tier}"),
                &EC2_SECURITY_GROUP_DESCRIPTION
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &sg("{GroupDescription: x}"),
                &EC2_SECURITY_GROUP_DESCRIPTION
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &sg("{GroupDescription: !Ref D}"),
                &EC2_SECURITY_GROUP_DESCRIPTION
            ),
            "non-compliant"
        );
        assert_eq!(
            status(&sg("{}"), &EC2_SECURITY_GROUP_DESCRIPTION),
            "non-compliant"
        );
        assert_eq!(
            status(
                &sg("{GroupDescription: !Sub '${AWS::StackName} web'}"),
                &EC2_SECURITY_GROUP_DESCRIPTION
            ),
            "unresolved: GroupDescription"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::EC2::VPC}}",
                &EC2_SECURITY_GROUP_DESCRIPTION
            ),
            "n/a"
        );
        assert_suppressible(&sg("{GroupDescription: x}"), "AwsSolutions-EC27");
    }
}
