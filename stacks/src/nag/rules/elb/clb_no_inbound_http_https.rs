//! `AwsSolutions-ELB1`: classic load balancers do not serve HTTP/HTTPS (use an ALB).

use super::{CLB, listeners};
use crate::nag::rules::{field, verdict};
use crate::nag::{CheckResult, Compliance, Level, Resource, Rule};

/// cdk-nag `CLBNoInboundHttpHttps`.
pub const CLB_NO_INBOUND_HTTP_HTTPS: Rule = Rule {
    id: "AwsSolutions-ELB1",
    name: "CLBNoInboundHttpHttps",
    level: Level::Error,
    info: "This classic load balancer carries HTTP/HTTPS, which belongs on an Application Load Balancer.",
    explanation: "Application Load Balancers route HTTP by host and path, support modern TLS policies, WAF and authentication, and cost less per request. \
Move HTTP/HTTPS listeners to an AWS::ElasticLoadBalancingV2::LoadBalancer of type application.",
    check: Some(check),
};

fn check(res: &Resource<'_>) -> CheckResult {
    if res.resource_type != CLB {
        return Ok(Compliance::NotApplicable);
    }
    for (path, listener) in listeners(res)? {
        let protocols = field(res, Some(listener), "Protocol", &path)?;
        if protocols
            .into_iter()
            .flatten()
            .any(|protocol| matches!(protocol.text().to_lowercase().as_str(), "http" | "https"))
        {
            return verdict(true);
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
                &clb_listener("{Protocol: TCP, LoadBalancerPort: 22, InstancePort: 22}"),
                &CLB_NO_INBOUND_HTTP_HTTPS
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &clb_listener("{Protocol: HTTP, LoadBalancerPort: 80, InstancePort: 80}"),
                &CLB_NO_INBOUND_HTTP_HTTPS
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &clb_listener("{Protocol: !Ref P}"),
                &CLB_NO_INBOUND_HTTP_HTTPS
            ),
            "unresolved: Listeners[0].Protocol"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::ElasticLoadBalancingV2::LoadBalancer}}",
                &CLB_NO_INBOUND_HTTP_HTTPS
            ),
            "n/a"
        );
        assert_suppressible(&clb_listener("{Protocol: https}"), "AwsSolutions-ELB1");
    }
}
