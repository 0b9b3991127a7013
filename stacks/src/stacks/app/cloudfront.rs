//! CloudFront in front of the app: a VPC origin for the internal ALB and the distribution
//! (HTTPS only, managed no-cache, all-viewer and security-headers policies, optional custom
//! domain and access logs), and the paused page.
//!
//! While `deployer pause` holds the stack (`Paused=true`) the load balancer and the VPC origin
//! are deleted (condition `Running`), but the distribution, and so the app's URL, stays: its
//! origin becomes a placeholder that is never contacted, and the CloudFront Function
//! [`PAUSED_PAGE_CODE`] answers every viewer request with a 503 page that says the app is
//! paused and who can resume it. Resume restores the VPC origin and removes the function from
//! the behaviour.

use crate::config::StackConfig;
use crate::model::Expr;
use crate::model::{Handle, Template, Value, s, strs};
use crate::resources::cloudfront::{
    CustomOriginConfig, DefaultCacheBehavior, Distribution, DistributionConfig, Function,
    FunctionAssociation, FunctionAttr, FunctionConfig, Logging, Origin, ViewerCertificate,
    VpcOrigin, VpcOriginAttr, VpcOriginConfig, VpcOriginEndpointConfig,
};
use crate::resources::elbv2::LoadBalancerAttr;
use crate::resources::s3::BucketAttr;
use crate::stacks::app::buckets::Buckets;
use crate::stacks::app::networking::Networking;
use crate::stacks::app::{Parameters, app_tags};
use crate::stacks::checkov;

/// Managed cache policy `Managed-CachingDisabled`.
pub const CACHING_DISABLED: &str = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad";

/// Managed origin request policy `Managed-AllViewerExceptHostHeader`: forwards every viewer
/// header, cookie and query string except `Host`, so the app sees what the browser sent
/// (including WebSocket upgrade headers) and the ALB sees its own host name.
pub const ALL_VIEWER_EXCEPT_HOST_HEADER: &str = "b689b0a8-53d0-40ab-baf2-68738e2966ac";

/// Managed response headers policy `Managed-SecurityHeadersPolicy` (HSTS, nosniff, frame
/// options, XSS protection, referrer policy).
pub const SECURITY_HEADERS: &str = "67f7725c-6f97-4210-82d7-5512b31e9d03";

/// The CloudFront Function (runtime `cloudfront-js-2.0`) that answers every request while the
/// app is paused: 503, not cached, with a page naming the way back. It reads nothing from the
/// request and holds no secret.
pub const PAUSED_PAGE_CODE: &str = r#"function handler(event) {
  return {
    statusCode: 503,
    statusDescription: 'Service Unavailable',
    headers: {
      'content-type': { value: 'text/html; charset=utf-8' },
      'cache-control': { value: 'no-store' },
      'retry-after': { value: '3600' }
    },
    body: {
      encoding: 'text',
      data: '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Paused</title></head><body><h1>This evaluation app is paused</h1><p>Its data and users are kept. Ask your workshop facilitator to run <code>deployer resume</code>; the app is back at this address a few minutes later.</p></body></html>'
    }
  };
}
"#;

/// Host of the distribution's origin while paused. Never contacted: the paused page's function
/// answers every viewer request before CloudFront picks an origin. A distribution needs an
/// origin, and this one is AWS's own regional S3 endpoint, which would refuse an anonymous
/// request anyway.
pub const PAUSED_ORIGIN_HOST: &str = "s3.${AWS::Region}.amazonaws.com";

/// Handles of the CloudFront resources.
pub(super) struct Edge {
    pub distribution: Handle<Distribution>,
}

pub(super) fn add(
    t: &mut Template,
    cfg: &StackConfig,
    params: &Parameters,
    buckets: &Buckets,
    net: &Networking,
) -> Edge {
    let prefix = cfg.prefix.as_str();
    let Parameters {
        certificate,
        alias,
        custom_domain,
        running,
        ..
    } = params;
    let logs_bucket = &buckets.logs_bucket;
    let alb = &net.alb;
    // CloudFront -> VPC origin -> internal ALB.
    let vpc_origin = t.add(
        "AlbVpcOrigin",
        VpcOrigin {
            vpc_origin_endpoint_config: VpcOriginEndpointConfig {
                arn: alb.r#ref().into(),
                name: s(format!("{prefix}-alb")),
                http_port: Some(80.into()),
                https_port: Some(443.into()),
                origin_protocol_policy: Some(s("http-only")),
            },
            tags: app_tags(cfg),
        },
    );
    t.set_condition(&vpc_origin, running);
    let paused_page = t.add(
        "PausedPageFunction",
        Function {
            // CloudFront Function names are unique per account, across regions: at most
            // 20 + 1 + 14 + 7 = 42 of the 64 characters allowed.
            name: Expr::sub(format!("{prefix}-${{AWS::Region}}-paused")).into(),
            auto_publish: Some(true.into()),
            function_code: s(PAUSED_PAGE_CODE),
            function_config: FunctionConfig {
                comment: s("answers every request while deployer pause holds the app"),
                runtime: s("cloudfront-js-2.0"),
            },
        },
    );
    let viewer_certificate = Value::if_(
        custom_domain,
        Value::Lit(ViewerCertificate {
            acm_certificate_arn: Some(certificate.r#ref().into()),
            cloud_front_default_certificate: None,
            minimum_protocol_version: Some(s("TLSv1.2_2021")),
            ssl_support_method: Some(s("sni-only")),
        }),
        // The default *.cloudfront.net certificate cannot pin a minimum TLS version; browsers
        // negotiate TLS 1.2/1.3 with it. Set CertificateArn to enforce TLSv1.2_2021.
        Value::Lit(ViewerCertificate {
            acm_certificate_arn: None,
            cloud_front_default_certificate: Some(true.into()),
            minimum_protocol_version: None,
            ssl_support_method: None,
        }),
    );
    let distribution = t.add(
        "Distribution",
        Distribution {
            distribution_config: DistributionConfig {
                enabled: true.into(),
                comment: Some(s(format!("{prefix}: evaluation web app"))),
                aliases: Some(Value::if_(
                    custom_domain,
                    Value::Lit(vec![alias.r#ref().into()]),
                    Value::no_value(),
                )),
                http_version: Some(s("http2and3")),
                ipv6_enabled: Some(true.into()),
                logging: cfg.cloudfront_access_logs.then(|| Logging {
                    bucket: Some(logs_bucket.get_att(BucketAttr::DomainName).into()),
                    prefix: Some(s("cloudfront/")),
                    include_cookies: Some(false.into()),
                }),
                // One origin whose settings follow `Running`: the load balancer through the
                // VPC origin, or while paused the placeholder (never contacted).
                origins: vec![Origin {
                    domain_name: running
                        .if_(
                            alb.get_att(LoadBalancerAttr::DnsName),
                            Expr::sub(PAUSED_ORIGIN_HOST),
                        )
                        .into(),
                    id: s("alb"),
                    vpc_origin_config: Some(Value::if_(
                        running,
                        Value::Lit(VpcOriginConfig {
                            vpc_origin_id: vpc_origin.get_att(VpcOriginAttr::Id).into(),
                            origin_keepalive_timeout: Some(60.into()),
                            // Maximum without a quota increase; streaming responses reset it
                            // with every chunk.
                            origin_read_timeout: Some(60.into()),
                        }),
                        Value::no_value(),
                    )),
                    custom_origin_config: Some(Value::if_(
                        running,
                        Value::no_value(),
                        Value::Lit(CustomOriginConfig {
                            http_port: Some(80.into()),
                            https_port: Some(443.into()),
                            origin_protocol_policy: s("https-only"),
                            origin_ssl_protocols: strs(&["TLSv1.2"]),
                        }),
                    )),
                }],
                price_class: Some(s("PriceClass_100")),
                viewer_certificate: Some(viewer_certificate),
                web_acl_id: None,
                default_cache_behavior: DefaultCacheBehavior {
                    target_origin_id: s("alb"),
                    viewer_protocol_policy: s("redirect-to-https"),
                    allowed_methods: strs(&[
                        "GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE",
                    ]),
                    cached_methods: strs(&["GET", "HEAD"]),
                    cache_policy_id: Some(s(CACHING_DISABLED)),
                    origin_request_policy_id: Some(s(ALL_VIEWER_EXCEPT_HOST_HEADER)),
                    response_headers_policy_id: Some(s(SECURITY_HEADERS)),
                    // Compression would buffer server-sent events.
                    compress: Some(false.into()),
                    function_associations: Some(Value::if_(
                        running,
                        Value::no_value(),
                        Value::Lit(vec![FunctionAssociation {
                            event_type: s("viewer-request"),
                            function_arn: paused_page.get_att(FunctionAttr::FunctionArn).into(),
                        }]),
                    )),
                },
            },
            tags: app_tags(cfg),
        },
    );
    let mut skips = vec![
        (
            "CKV_AWS_68",
            "no WAF web ACL by default: it has a fixed monthly cost; every page requires a Cognito session and the origin is private",
        ),
        (
            "CKV_AWS_174",
            "without CertificateArn/DomainAlias only the default cloudfront.net certificate is possible, which fixes TLSv1; with them the distribution enforces TLSv1.2_2021",
        ),
    ];
    if !cfg.cloudfront_access_logs {
        skips.push((
            "CKV_AWS_86",
            "access logs are opt-in (DEPLOY_CLOUDFRONT_ACCESS_LOGS=yes) to avoid log storage for short-lived demo deployments",
        ));
    }
    checkov::skip(t, &distribution, &skips);
    Edge { distribution }
}
