//! `AwsSolutions-EC29`: instances have termination protection.

use crate::nag::rules::any_prop;
use crate::nag::{CheckResult, Compliance, Level, Resource, Rule};

/// cdk-nag `EC2InstanceTerminationProtection`.
pub const EC2_INSTANCE_TERMINATION_PROTECTION: Rule = Rule {
    id: "AwsSolutions-EC29",
    name: "EC2InstanceTerminationProtection",
    level: Level::Error,
    info: "This stand-alone EC2 instance can be terminated through the API (termination protection is off).",
    explanation: "A stand-alone instance is usually a pet: terminating it by accident loses its state. \
Set `DisableApiTermination: true`, or run the workload in an Auto Scaling group where instances are replaceable.",
    check: Some(check),
};

fn check(res: &Resource<'_>) -> CheckResult {
    if res.resource_type != "AWS::EC2::Instance" {
        return Ok(Compliance::NotApplicable);
    }
    any_prop(res, "DisableApiTermination", |value| {
        value.and_then(|flag| flag.as_bool()) != Some(true)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nag::testing::{assert_suppressible, status};

    fn res(props: &str) -> String {
        format!(
            "Parameters: {{P: {{Type: String, Default: 'true'}}, Q: {{Type: String}}}}\nResources: {{R: {{Type: AWS::EC2::Instance, Properties: {props}}}}}"
        )
    }

    #[test]
    fn cases() {
        assert_eq!(
            status(
                &res("{DisableApiTermination: true}"),
                &EC2_INSTANCE_TERMINATION_PROTECTION
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &res("{DisableApiTermination: !Ref P}"),
                &EC2_INSTANCE_TERMINATION_PROTECTION
            ),
            "compliant"
        );
        assert_eq!(
            status(&res("{}"), &EC2_INSTANCE_TERMINATION_PROTECTION),
            "non-compliant"
        );
        assert_eq!(
            status(
                &res("{DisableApiTermination: !Ref Q}"),
                &EC2_INSTANCE_TERMINATION_PROTECTION
            ),
            "unresolved: DisableApiTermination"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::EC2::Volume}}",
                &EC2_INSTANCE_TERMINATION_PROTECTION
            ),
            "n/a"
        );
        assert_suppressible(&res("{}"), "AwsSolutions-EC29");
    }
}
