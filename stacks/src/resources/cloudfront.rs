//! `AWS::CloudFront::*`: distribution, VPC origin and function.

use serde::Serialize;

use crate::model::Value;
use crate::resources::{Tag, resource};

/// The behaviour for requests no other behaviour matches.
#[derive(Debug, Clone, Serialize)]
pub struct DefaultCacheBehavior {
    /// Origin id the behaviour routes to.
    #[serde(rename = "TargetOriginId")]
    pub target_origin_id: Value<String>,
    /// `allow-all`, `redirect-to-https` or `https-only`.
    #[serde(rename = "ViewerProtocolPolicy")]
    pub viewer_protocol_policy: Value<String>,
    /// Methods CloudFront forwards.
    #[serde(rename = "AllowedMethods", skip_serializing_if = "Vec::is_empty")]
    pub allowed_methods: Vec<Value<String>>,
    /// Methods whose responses are cached.
    #[serde(rename = "CachedMethods", skip_serializing_if = "Vec::is_empty")]
    pub cached_methods: Vec<Value<String>>,
    /// Cache policy id.
    #[serde(rename = "CachePolicyId", skip_serializing_if = "Option::is_none")]
    pub cache_policy_id: Option<Value<String>>,
    /// Origin request policy id.
    #[serde(
        rename = "OriginRequestPolicyId",
        skip_serializing_if = "Option::is_none"
    )]
    pub origin_request_policy_id: Option<Value<String>>,
    /// Response headers policy id.
    #[serde(
        rename = "ResponseHeadersPolicyId",
        skip_serializing_if = "Option::is_none"
    )]
    pub response_headers_policy_id: Option<Value<String>>,
    /// Compress responses.
    #[serde(rename = "Compress", skip_serializing_if = "Option::is_none")]
    pub compress: Option<Value<bool>>,
    /// CloudFront Functions run on this behaviour's requests or responses.
    #[serde(
        rename = "FunctionAssociations",
        skip_serializing_if = "Option::is_none"
    )]
    pub function_associations: Option<Value<Vec<FunctionAssociation>>>,
}

/// A CloudFront Function on a cache behaviour.
#[derive(Debug, Clone, Serialize)]
pub struct FunctionAssociation {
    /// `viewer-request` or `viewer-response`.
    #[serde(rename = "EventType")]
    pub event_type: Value<String>,
    /// The function's ARN (`Fn::GetAtt Function.FunctionARN`).
    #[serde(rename = "FunctionARN")]
    pub function_arn: Value<String>,
}

/// Settings of a custom (non-S3, non-VPC) origin.
#[derive(Debug, Clone, Serialize)]
pub struct CustomOriginConfig {
    /// HTTP port.
    #[serde(rename = "HTTPPort", skip_serializing_if = "Option::is_none")]
    pub http_port: Option<Value<i64>>,
    /// HTTPS port.
    #[serde(rename = "HTTPSPort", skip_serializing_if = "Option::is_none")]
    pub https_port: Option<Value<i64>>,
    /// `http-only`, `https-only` or `match-viewer`.
    #[serde(rename = "OriginProtocolPolicy")]
    pub origin_protocol_policy: Value<String>,
    /// TLS versions CloudFront may use with the origin.
    #[serde(rename = "OriginSSLProtocols", skip_serializing_if = "Vec::is_empty")]
    pub origin_ssl_protocols: Vec<Value<String>>,
}

/// Settings of an origin reached through a VPC origin.
#[derive(Debug, Clone, Serialize)]
pub struct VpcOriginConfig {
    /// The `AWS::CloudFront::VpcOrigin` id.
    #[serde(rename = "VpcOriginId")]
    pub vpc_origin_id: Value<String>,
    /// Seconds to keep an idle origin connection.
    #[serde(
        rename = "OriginKeepaliveTimeout",
        skip_serializing_if = "Option::is_none"
    )]
    pub origin_keepalive_timeout: Option<Value<i64>>,
    /// Seconds to wait for (the next chunk of) a response.
    #[serde(rename = "OriginReadTimeout", skip_serializing_if = "Option::is_none")]
    pub origin_read_timeout: Option<Value<i64>>,
}

/// An origin.
#[derive(Debug, Clone, Serialize)]
pub struct Origin {
    /// Origin DNS name.
    #[serde(rename = "DomainName")]
    pub domain_name: Value<String>,
    /// Id the behaviours refer to.
    #[serde(rename = "Id")]
    pub id: Value<String>,
    /// VPC origin settings.
    #[serde(rename = "VpcOriginConfig", skip_serializing_if = "Option::is_none")]
    pub vpc_origin_config: Option<Value<VpcOriginConfig>>,
    /// Custom origin settings.
    #[serde(rename = "CustomOriginConfig", skip_serializing_if = "Option::is_none")]
    pub custom_origin_config: Option<Value<CustomOriginConfig>>,
}

/// Viewer TLS settings.
#[derive(Debug, Clone, Serialize)]
pub struct ViewerCertificate {
    /// ACM certificate in us-east-1.
    #[serde(rename = "AcmCertificateArn", skip_serializing_if = "Option::is_none")]
    pub acm_certificate_arn: Option<Value<String>>,
    /// Use the `*.cloudfront.net` certificate.
    #[serde(
        rename = "CloudFrontDefaultCertificate",
        skip_serializing_if = "Option::is_none"
    )]
    pub cloud_front_default_certificate: Option<Value<bool>>,
    /// e.g. `TLSv1.2_2021`.
    #[serde(
        rename = "MinimumProtocolVersion",
        skip_serializing_if = "Option::is_none"
    )]
    pub minimum_protocol_version: Option<Value<String>>,
    /// `sni-only`.
    #[serde(rename = "SslSupportMethod", skip_serializing_if = "Option::is_none")]
    pub ssl_support_method: Option<Value<String>>,
}

/// Standard (legacy) access logging to an S3 bucket.
#[derive(Debug, Clone, Serialize)]
pub struct Logging {
    /// Bucket domain name, `bucket.s3.amazonaws.com`.
    #[serde(rename = "Bucket", skip_serializing_if = "Option::is_none")]
    pub bucket: Option<Value<String>>,
    /// Key prefix.
    #[serde(rename = "Prefix", skip_serializing_if = "Option::is_none")]
    pub prefix: Option<Value<String>>,
    /// Log cookies.
    #[serde(rename = "IncludeCookies", skip_serializing_if = "Option::is_none")]
    pub include_cookies: Option<Value<bool>>,
}

/// The configuration of a distribution.
#[derive(Debug, Clone, Serialize)]
pub struct DistributionConfig {
    /// Serve traffic.
    #[serde(rename = "Enabled")]
    pub enabled: Value<bool>,
    /// Default behaviour.
    #[serde(rename = "DefaultCacheBehavior")]
    pub default_cache_behavior: DefaultCacheBehavior,
    /// Comment.
    #[serde(rename = "Comment", skip_serializing_if = "Option::is_none")]
    pub comment: Option<Value<String>>,
    /// Alternate domain names.
    #[serde(rename = "Aliases", skip_serializing_if = "Option::is_none")]
    pub aliases: Option<Value<Vec<Value<String>>>>,
    /// `http1.1`, `http2`, `http3` or `http2and3`.
    #[serde(rename = "HttpVersion", skip_serializing_if = "Option::is_none")]
    pub http_version: Option<Value<String>>,
    /// IPv6.
    #[serde(rename = "IPV6Enabled", skip_serializing_if = "Option::is_none")]
    pub ipv6_enabled: Option<Value<bool>>,
    /// Access logs.
    #[serde(rename = "Logging", skip_serializing_if = "Option::is_none")]
    pub logging: Option<Logging>,
    /// Origins.
    #[serde(rename = "Origins", skip_serializing_if = "Vec::is_empty")]
    pub origins: Vec<Origin>,
    /// `PriceClass_100`, `PriceClass_200` or `PriceClass_All`.
    #[serde(rename = "PriceClass", skip_serializing_if = "Option::is_none")]
    pub price_class: Option<Value<String>>,
    /// Viewer TLS.
    #[serde(rename = "ViewerCertificate", skip_serializing_if = "Option::is_none")]
    pub viewer_certificate: Option<Value<ViewerCertificate>>,
    /// AWS WAF web ACL ARN.
    #[serde(rename = "WebACLId", skip_serializing_if = "Option::is_none")]
    pub web_acl_id: Option<Value<String>>,
}

/// `AWS::CloudFront::Distribution`.
#[derive(Debug, Clone, Serialize)]
pub struct Distribution {
    /// The configuration.
    #[serde(rename = "DistributionConfig")]
    pub distribution_config: DistributionConfig,
    /// Tags.
    #[serde(rename = "Tags", skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}
resource!(Distribution, "AWS::CloudFront::Distribution", DistributionAttr {
    DomainName => "DomainName",
    Id => "Id",
});

/// Where a VPC origin points.
#[derive(Debug, Clone, Serialize)]
pub struct VpcOriginEndpointConfig {
    /// Load balancer (or instance) ARN.
    #[serde(rename = "Arn")]
    pub arn: Value<String>,
    /// VPC origin name.
    #[serde(rename = "Name")]
    pub name: Value<String>,
    /// HTTP port.
    #[serde(rename = "HTTPPort", skip_serializing_if = "Option::is_none")]
    pub http_port: Option<Value<i64>>,
    /// HTTPS port.
    #[serde(rename = "HTTPSPort", skip_serializing_if = "Option::is_none")]
    pub https_port: Option<Value<i64>>,
    /// `http-only`, `https-only` or `match-viewer`.
    #[serde(
        rename = "OriginProtocolPolicy",
        skip_serializing_if = "Option::is_none"
    )]
    pub origin_protocol_policy: Option<Value<String>>,
}

/// `AWS::CloudFront::VpcOrigin`: lets CloudFront reach an internal load balancer.
#[derive(Debug, Clone, Serialize)]
pub struct VpcOrigin {
    /// Endpoint.
    #[serde(rename = "VpcOriginEndpointConfig")]
    pub vpc_origin_endpoint_config: VpcOriginEndpointConfig,
    /// Tags.
    #[serde(rename = "Tags", skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}
resource!(VpcOrigin, "AWS::CloudFront::VpcOrigin", VpcOriginAttr {
    Arn => "Arn",
    Id => "Id",
});

/// The configuration of a CloudFront Function.
#[derive(Debug, Clone, Serialize)]
pub struct FunctionConfig {
    /// Comment.
    #[serde(rename = "Comment")]
    pub comment: Value<String>,
    /// `cloudfront-js-1.0` or `cloudfront-js-2.0`.
    #[serde(rename = "Runtime")]
    pub runtime: Value<String>,
}

/// `AWS::CloudFront::Function`: JavaScript run at CloudFront's edge on viewer requests or
/// responses.
#[derive(Debug, Clone, Serialize)]
pub struct Function {
    /// Name (letters, digits, `-` and `_`, at most 64).
    #[serde(rename = "Name")]
    pub name: Value<String>,
    /// Publish to the LIVE stage on create and update (only a live function can be associated).
    #[serde(rename = "AutoPublish", skip_serializing_if = "Option::is_none")]
    pub auto_publish: Option<Value<bool>>,
    /// The code (at most 10 KB).
    #[serde(rename = "FunctionCode")]
    pub function_code: Value<String>,
    /// Comment and runtime.
    #[serde(rename = "FunctionConfig")]
    pub function_config: FunctionConfig,
}
resource!(Function, "AWS::CloudFront::Function", FunctionAttr {
    FunctionArn => "FunctionARN",
    Stage => "Stage",
});
