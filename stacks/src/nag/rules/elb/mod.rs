//! Elastic Load Balancing rules (classic load balancers and ELBv2 access logs).

mod clb_connection_draining;
mod clb_no_inbound_http_https;
mod elb_cross_zone_load_balancing;
mod elb_logging_enabled;
mod elb_tls_https_listeners_only;

pub use clb_connection_draining::CLB_CONNECTION_DRAINING;
pub use clb_no_inbound_http_https::CLB_NO_INBOUND_HTTP_HTTPS;
pub use elb_cross_zone_load_balancing::ELB_CROSS_ZONE_LOAD_BALANCING;
pub use elb_logging_enabled::ELB_LOGGING_ENABLED;
pub use elb_tls_https_listeners_only::ELB_TLS_HTTPS_LISTENERS_ONLY;

use crate::nag::rules::{Located, items};
use crate::nag::{Resource, Unresolved};

/// CloudFormation type of a classic load balancer.
pub(crate) const CLB: &str = "AWS::ElasticLoadBalancing::LoadBalancer";

/// Every listener of a classic load balancer, with its path (`Listeners[0]`).
pub(crate) fn listeners<'a>(res: &Resource<'a>) -> Result<Vec<Located<'a>>, Unresolved> {
    items(res, res.prop("Listeners"), "Listeners")
}

/// A classic load balancer `R` with one listener, for the listener rules' tests.
#[cfg(test)]
pub(crate) fn clb_listener(listener: &str) -> String {
    format!(
        "Parameters: {{P: {{Type: String}}}}\nResources: {{R: {{Type: AWS::ElasticLoadBalancing::LoadBalancer, Properties: {{Listeners: [{listener}]}}}}}}"
    )
}
