//! `AwsSolutions-ELB5`: classic load balancer listeners keep TLS end to end.

use super::{CLB, listeners};
use crate::nag::rules::{field, verdict};
use crate::nag::{CheckResult, Compliance, Level, Resource, Rule};

/// cdk-nag `ELBTlsHttpsListenersOnly`.
pub const ELB_TLS_HTTPS_LISTENERS_ONLY: Rule = Rule {
    id: "AwsSolutions-ELB5",
    name: "ELBTlsHttpsListenersOnly",
    level: Level::Error,
    info: "A classic load balancer listener downgrades a secure (HTTPS or SSL) client protocol towards the instances.",
    explanation: "A listener that accepts HTTPS or SSL but forwards in plain text exposes the traffic inside the network. \
For an SSL listener use `InstanceProtocol: SSL`, for an HTTPS listener `InstanceProtocol: HTTPS` (or leave it unset).",
    check: Some(check),
};

fn check(res: &Resource<'_>) -> CheckResult {
    if res.resource_type != CLB {
        return Ok(Compliance::NotApplicable);
    }
    for (path, listener) in listeners(res)? {
        let protocols = field(res, Some(listener), "Protocol", &path)?;
        let instance_protocols = field(res, Some(listener), "InstanceProtocol", &path)?;
        for protocol in protocols.into_iter().flatten() {
            let protocol = protocol.text().to_lowercase();
            if protocol != "ssl" && protocol != "https" {
                continue;
            }
            let downgraded = instance_protocols.iter().any(|instance| {
                instance.is_some_and(|instance| instance.text().to_lowercase() != protocol)
            });
            if downgraded {
                return verdict(true);
            }
        }
    }
    verdict(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nag::rules::elb::clb_listener;
    use crate::nag::testing::{assert_suppressible, status};

    #[test]
    fn cases() {
        assert_eq!(
            status(
                &clb_listener("{Protocol: HTTPS, InstanceProtocol: HTTPS}"),
                &ELB_TLS_HTTPS_LISTENERS_ONLY
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &clb_listener("{Protocol: SSL}"),
                &ELB_TLS_HTTPS_LISTENERS_ONLY
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &clb_listener("{Protocol: TCP, InstanceProtocol: TCP}"),
                &ELB_TLS_HTTPS_LISTENERS_ONLY
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &clb_listener("{Protocol: HTTPS, InstanceProtocol: HTTP}"),
                &ELB_TLS_HTTPS_LISTENERS_ONLY
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &clb_listener("{Protocol: SSL, InstanceProtocol: TCP}"),
                &ELB_TLS_HTTPS_LISTENERS_ONLY
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &clb_listener("{Protocol: HTTPS, InstanceProtocol: !Ref P}"),
                &ELB_TLS_HTTPS_LISTENERS_ONLY
            ),
            "unresolved: Listeners[0].InstanceProtocol"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::EC2::Subnet}}",
                &ELB_TLS_HTTPS_LISTENERS_ONLY
            ),
            "n/a"
        );
        assert_suppressible(
            &clb_listener("{Protocol: SSL, InstanceProtocol: TCP}"),
            "AwsSolutions-ELB5",
        );
    }
}
