//! `AwsSolutions-EC28`: instances and launch configurations use detailed monitoring.

use crate::nag::rules::any_prop;
use crate::nag::{CheckResult, Compliance, Level, Resource, Rule};

/// cdk-nag `EC2InstanceDetailedMonitoringEnabled`.
pub const EC2_INSTANCE_DETAILED_MONITORING: Rule = Rule {
    id: "AwsSolutions-EC28",
    name: "EC2InstanceDetailedMonitoringEnabled",
    level: Level::Error,
    info: "Detailed (one-minute) monitoring is off for this EC2 instance or launch configuration.",
    explanation: "One-minute metrics make scaling and incident decisions faster and better informed than five-minute ones. \
Set `Monitoring: true` on instances; launch configurations enable it by default, so only an explicit `InstanceMonitoring: false` fails.",
    check: Some(check),
};

fn check(res: &Resource<'_>) -> CheckResult {
    match res.resource_type {
        "AWS::EC2::Instance" => any_prop(res, "Monitoring", |value| {
            value.and_then(|flag| flag.as_bool()) != Some(true)
        }),
        "AWS::AutoScaling::LaunchConfiguration" => any_prop(res, "InstanceMonitoring", |value| {
            value.and_then(|flag| flag.as_bool()) == Some(false)
        }),
        _ => Ok(Compliance::NotApplicable),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nag::testing::{assert_suppressible, status};

    fn res(kind: &str, props: &str) -> String {
        format!(
            "Conditions: {{C: !Equals [a, b]}}\nResources: {{R: {{Type: {kind}, Properties: {props}}}}}"
        )
    }

    #[test]
    fn cases() {
        assert_eq!(
            status(
                &res("AWS::EC2::Instance", "{Monitoring: true}"),
                &EC2_INSTANCE_DETAILED_MONITORING
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &res("AWS::EC2::Instance", "{}"),
                &EC2_INSTANCE_DETAILED_MONITORING
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &res("AWS::EC2::Instance", "{Monitoring: !If [C, true, false]}"),
                &EC2_INSTANCE_DETAILED_MONITORING
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &res("AWS::EC2::Instance", "{Monitoring: !GetAtt X.Y}"),
                &EC2_INSTANCE_DETAILED_MONITORING
            ),
            "unresolved: Monitoring"
        );
        assert_eq!(
            status(
                &res("AWS::AutoScaling::LaunchConfiguration", "{}"),
                &EC2_INSTANCE_DETAILED_MONITORING
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &res(
                    "AWS::AutoScaling::LaunchConfiguration",
                    "{InstanceMonitoring: 'false'}"
                ),
                &EC2_INSTANCE_DETAILED_MONITORING
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &res("AWS::S3::Bucket", "{}"),
                &EC2_INSTANCE_DETAILED_MONITORING
            ),
            "n/a"
        );
        assert_suppressible(&res("AWS::EC2::Instance", "{}"), "AwsSolutions-EC28");
    }
}
