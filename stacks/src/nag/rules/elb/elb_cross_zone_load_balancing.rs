//! `AwsSolutions-ELB4`: classic load balancers span two or more zones with cross-zone balancing.

use super::CLB;
use crate::nag::rules::{any_prop, verdict};
use crate::nag::{CheckResult, Compliance, Level, Resource, Rule};

/// cdk-nag `ELBCrossZoneLoadBalancingEnabled`.
pub const ELB_CROSS_ZONE_LOAD_BALANCING: Rule = Rule {
    id: "AwsSolutions-ELB4",
    name: "ELBCrossZoneLoadBalancingEnabled",
    level: Level::Error,
    info: "This classic load balancer lacks cross-zone balancing over two or more zones.",
    explanation: "Spreading traffic evenly over instances in several zones keeps the service up when one zone fails and avoids hot spots. \
Set `CrossZone: true` and list at least two `Subnets` (or `AvailabilityZones`).",
    check: Some(check),
};

fn check(res: &Resource<'_>) -> CheckResult {
    if res.resource_type != CLB {
        return Ok(Compliance::NotApplicable);
    }
    if res.prop("CrossZone").is_none() {
        return verdict(true);
    }
    let zones = if res.prop("Subnets").is_some() {
        "Subnets"
    } else {
        "AvailabilityZones"
    };
    for list in res.lists(res.prop(zones), zones)? {
        if list.is_none_or(|list| list.len() < 2) {
            return verdict(true);
        }
    }
    any_prop(res, "CrossZone", |value| {
        value.and_then(|flag| flag.as_bool()) != Some(true)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nag::testing::{assert_suppressible, status};

    fn clb(props: &str) -> String {
        format!(
            "Parameters: {{Subnets: {{Type: 'List<AWS::EC2::Subnet::Id>'}}}}\nResources: {{R: {{Type: AWS::ElasticLoadBalancing::LoadBalancer, Properties: {props}}}}}"
        )
    }

    #[test]
    fn cases() {
        assert_eq!(
            status(
                &clb("{CrossZone: true, Subnets: [a, b]}"),
                &ELB_CROSS_ZONE_LOAD_BALANCING
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &clb("{CrossZone: true, AvailabilityZones: [a, b]}"),
                &ELB_CROSS_ZONE_LOAD_BALANCING
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &clb("{CrossZone: true, Subnets: [a]}"),
                &ELB_CROSS_ZONE_LOAD_BALANCING
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &clb("{CrossZone: false, Subnets: [a, b]}"),
                &ELB_CROSS_ZONE_LOAD_BALANCING
            ),
            "non-compliant"
        );
        assert_eq!(
            status(&clb("{Subnets: [a, b]}"), &ELB_CROSS_ZONE_LOAD_BALANCING),
            "non-compliant"
        );
        assert_eq!(
            status(
                &clb("{CrossZone: true, Subnets: !Ref Subnets}"),
                &ELB_CROSS_ZONE_LOAD_BALANCING
            ),
            "unresolved: Subnets"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::EC2::Subnet}}",
                &ELB_CROSS_ZONE_LOAD_BALANCING
            ),
            "n/a"
        );
        assert_suppressible(&clb("{Subnets: [a, b]}"), "AwsSolutions-ELB4");
    }
}
