//! `AWS::ElasticLoadBalancingV2::*`: application load balancer, listener, target group.

use serde::Serialize;

use crate::model::Value;
use crate::resources::{Tag, resource};

/// A `Key`/`Value` attribute of a load balancer or target group.
#[derive(Debug, Clone, Serialize)]
pub struct Attribute {
    /// Attribute key, e.g. `idle_timeout.timeout_seconds`.
    #[serde(rename = "Key", skip_serializing_if = "Option::is_none")]
    pub key: Option<Value<String>>,
    /// Attribute value (always a string).
    #[serde(rename = "Value", skip_serializing_if = "Option::is_none")]
    pub value: Option<Value<String>>,
}

impl Attribute {
    /// `key=value`.
    pub fn new(key: &str, value: &str) -> Attribute {
        Attribute {
            key: Some(key.into()),
            value: Some(value.into()),
        }
    }
}

/// `AWS::ElasticLoadBalancingV2::LoadBalancer`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadBalancer {
    /// `internal` or `internet-facing`.
    #[serde(rename = "Scheme", skip_serializing_if = "Option::is_none")]
    pub scheme: Option<Value<String>>,
    /// `application`, `network` or `gateway`.
    #[serde(rename = "Type", skip_serializing_if = "Option::is_none")]
    pub load_balancer_type: Option<Value<String>>,
    /// Subnets (one per AZ).
    #[serde(rename = "Subnets", skip_serializing_if = "Vec::is_empty")]
    pub subnets: Vec<Value<String>>,
    /// Security groups.
    #[serde(rename = "SecurityGroups", skip_serializing_if = "Vec::is_empty")]
    pub security_groups: Vec<Value<String>>,
    /// Attributes.
    #[serde(
        rename = "LoadBalancerAttributes",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub load_balancer_attributes: Vec<Attribute>,
    /// Tags.
    #[serde(rename = "Tags", skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}
resource!(LoadBalancer, "AWS::ElasticLoadBalancingV2::LoadBalancer", LoadBalancerAttr {
    CanonicalHostedZoneId => "CanonicalHostedZoneID",
    DnsName => "DNSName",
    LoadBalancerArn => "LoadBalancerArn",
    LoadBalancerFullName => "LoadBalancerFullName",
    LoadBalancerName => "LoadBalancerName",
    SecurityGroups => "SecurityGroups",
});

/// A fixed response.
#[derive(Debug, Clone, Serialize)]
pub struct FixedResponseConfig {
    /// HTTP status code.
    #[serde(rename = "StatusCode")]
    pub status_code: Value<String>,
    /// Content type.
    #[serde(rename = "ContentType", skip_serializing_if = "Option::is_none")]
    pub content_type: Option<Value<String>>,
    /// Body.
    #[serde(rename = "MessageBody", skip_serializing_if = "Option::is_none")]
    pub message_body: Option<Value<String>>,
}

/// A listener action.
#[derive(Debug, Clone, Serialize)]
pub struct Action {
    /// `forward`, `fixed-response`, `redirect`, ...
    #[serde(rename = "Type")]
    pub action_type: Value<String>,
    /// Target group for `forward`.
    #[serde(rename = "TargetGroupArn", skip_serializing_if = "Option::is_none")]
    pub target_group_arn: Option<Value<String>>,
    /// Response for `fixed-response`.
    #[serde(
        rename = "FixedResponseConfig",
        skip_serializing_if = "Option::is_none"
    )]
    pub fixed_response_config: Option<FixedResponseConfig>,
}

/// `AWS::ElasticLoadBalancingV2::Listener`.
#[derive(Debug, Clone, Serialize)]
pub struct Listener {
    /// The load balancer.
    #[serde(rename = "LoadBalancerArn")]
    pub load_balancer_arn: Value<String>,
    /// What happens to requests no rule matches.
    #[serde(rename = "DefaultActions")]
    pub default_actions: Vec<Action>,
    /// Port.
    #[serde(rename = "Port", skip_serializing_if = "Option::is_none")]
    pub port: Option<Value<i64>>,
    /// `HTTP` or `HTTPS`.
    #[serde(rename = "Protocol", skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Value<String>>,
}
resource!(Listener, "AWS::ElasticLoadBalancingV2::Listener", ListenerAttr {
    ListenerArn => "ListenerArn",
});

/// Healthy HTTP codes.
#[derive(Debug, Clone, Serialize)]
pub struct Matcher {
    /// e.g. `200` or `200-299`.
    #[serde(rename = "HttpCode", skip_serializing_if = "Option::is_none")]
    pub http_code: Option<Value<String>>,
}

/// `AWS::ElasticLoadBalancingV2::TargetGroup`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TargetGroup {
    /// `ip` for Fargate.
    #[serde(rename = "TargetType", skip_serializing_if = "Option::is_none")]
    pub target_type: Option<Value<String>>,
    /// Target port.
    #[serde(rename = "Port", skip_serializing_if = "Option::is_none")]
    pub port: Option<Value<i64>>,
    /// `HTTP`.
    #[serde(rename = "Protocol", skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Value<String>>,
    /// `HTTP1`, `HTTP2` or `GRPC`.
    #[serde(rename = "ProtocolVersion", skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<Value<String>>,
    /// The VPC.
    #[serde(rename = "VpcId", skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<Value<String>>,
    /// Health checks on.
    #[serde(rename = "HealthCheckEnabled", skip_serializing_if = "Option::is_none")]
    pub health_check_enabled: Option<Value<bool>>,
    /// Health check path.
    #[serde(rename = "HealthCheckPath", skip_serializing_if = "Option::is_none")]
    pub health_check_path: Option<Value<String>>,
    /// Health check protocol.
    #[serde(
        rename = "HealthCheckProtocol",
        skip_serializing_if = "Option::is_none"
    )]
    pub health_check_protocol: Option<Value<String>>,
    /// Seconds between checks.
    #[serde(
        rename = "HealthCheckIntervalSeconds",
        skip_serializing_if = "Option::is_none"
    )]
    pub health_check_interval_seconds: Option<Value<i64>>,
    /// Seconds before a check fails.
    #[serde(
        rename = "HealthCheckTimeoutSeconds",
        skip_serializing_if = "Option::is_none"
    )]
    pub health_check_timeout_seconds: Option<Value<i64>>,
    /// Successes before healthy.
    #[serde(
        rename = "HealthyThresholdCount",
        skip_serializing_if = "Option::is_none"
    )]
    pub healthy_threshold_count: Option<Value<i64>>,
    /// Failures before unhealthy.
    #[serde(
        rename = "UnhealthyThresholdCount",
        skip_serializing_if = "Option::is_none"
    )]
    pub unhealthy_threshold_count: Option<Value<i64>>,
    /// Healthy codes.
    #[serde(rename = "Matcher", skip_serializing_if = "Option::is_none")]
    pub matcher: Option<Matcher>,
    /// Attributes.
    #[serde(
        rename = "TargetGroupAttributes",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub target_group_attributes: Vec<Attribute>,
    /// Tags.
    #[serde(rename = "Tags", skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}
resource!(TargetGroup, "AWS::ElasticLoadBalancingV2::TargetGroup", TargetGroupAttr {
    LoadBalancerArns => "LoadBalancerArns",
    TargetGroupArn => "TargetGroupArn",
    TargetGroupFullName => "TargetGroupFullName",
    TargetGroupName => "TargetGroupName",
});
