//! `AwsSolutions-ELB3`: classic load balancers drain connections.

use super::CLB;
use crate::nag::rules::{field, verdict};
use crate::nag::{CheckResult, Compliance, Level, Resource, Rule};

/// cdk-nag `CLBConnectionDraining`.
pub const CLB_CONNECTION_DRAINING: Rule = Rule {
    id: "AwsSolutions-ELB3",
    name: "CLBConnectionDraining",
    level: Level::Error,
    info: "Connection draining is off for this classic load balancer.",
    explanation: "With draining, an instance that leaves service (failed health check, scale-in, deploy) finishes its in-flight requests instead of dropping them. \
Set `ConnectionDrainingPolicy: {Enabled: true, Timeout: ...}`.",
    check: Some(check),
};

fn check(res: &Resource<'_>) -> CheckResult {
    if res.resource_type != CLB {
        return Ok(Compliance::NotApplicable);
    }
    for policy in res.objects(
        res.prop("ConnectionDrainingPolicy"),
        "ConnectionDrainingPolicy",
    )? {
        let Some(policy) = policy else {
            return verdict(true);
        };
        let enabled = field(res, Some(policy), "Enabled", "ConnectionDrainingPolicy")?;
        if enabled
            .into_iter()
            .any(|value| value.and_then(|flag| flag.as_bool()) != Some(true))
        {
            return verdict(true);
        }
    }
    verdict(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nag::testing::{assert_suppressible, status};

    fn clb(props: &str) -> String {
        format!(
            "Parameters: {{P: {{Type: String}}}}\nResources: {{R: {{Type: AWS::ElasticLoadBalancing::LoadBalancer, Properties: {props}}}}}"
        )
    }

    #[test]
    fn cases() {
        assert_eq!(
            status(
                &clb("{ConnectionDrainingPolicy: {Enabled: true, Timeout: 60}}"),
                &CLB_CONNECTION_DRAINING
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &clb("{ConnectionDrainingPolicy: {Enabled: false}}"),
                &CLB_CONNECTION_DRAINING
            ),
            "non-compliant"
        );
        assert_eq!(
            status(&clb("{}"), &CLB_CONNECTION_DRAINING),
            "non-compliant"
        );
        assert_eq!(
            status(
                &clb("{ConnectionDrainingPolicy: {Enabled: !Ref P}}"),
                &CLB_CONNECTION_DRAINING
            ),
            "unresolved: ConnectionDrainingPolicy.Enabled"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::EC2::Instance}}",
                &CLB_CONNECTION_DRAINING
            ),
            "n/a"
        );
        assert_suppressible(&clb("{}"), "AwsSolutions-ELB3");
    }
}
