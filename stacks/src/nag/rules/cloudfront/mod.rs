//! CloudFront rules: geo restriction, WAF, access logs, TLS versions, S3 origin access.

mod cloudfront_access_logging;
mod cloudfront_geo_restrictions;
mod cloudfront_origin_no_outdated_tls;
mod cloudfront_s3_origin_access_control;
mod cloudfront_s3_origin_access_identity;
mod cloudfront_viewer_no_outdated_tls;
mod cloudfront_waf_integration;

pub use cloudfront_access_logging::CLOUDFRONT_ACCESS_LOGGING;
pub use cloudfront_geo_restrictions::CLOUDFRONT_GEO_RESTRICTIONS;
pub use cloudfront_origin_no_outdated_tls::CLOUDFRONT_ORIGIN_NO_OUTDATED_TLS;
pub use cloudfront_s3_origin_access_control::CLOUDFRONT_S3_ORIGIN_ACCESS_CONTROL;
pub use cloudfront_s3_origin_access_identity::CLOUDFRONT_S3_ORIGIN_ACCESS_IDENTITY;
pub use cloudfront_viewer_no_outdated_tls::CLOUDFRONT_VIEWER_NO_OUTDATED_TLS;
pub use cloudfront_waf_integration::CLOUDFRONT_WAF_INTEGRATION;

use serde_json::{Map, Value};

use crate::nag::{Resource, Unresolved};

/// CloudFormation type of a distribution.
pub(crate) const DISTRIBUTION: &str = "AWS::CloudFront::Distribution";

/// The variants of a distribution's `DistributionConfig` (absent counts as an empty config).
pub(crate) fn configs<'a>(
    res: &Resource<'a>,
) -> Result<Vec<Option<&'a Map<String, Value>>>, Unresolved> {
    res.objects(res.prop("DistributionConfig"), "DistributionConfig")
}

/// CloudFormation type of a streaming (RTMP) distribution.
pub(crate) const STREAMING_DISTRIBUTION: &str = "AWS::CloudFront::StreamingDistribution";

/// The variants of a streaming distribution's `StreamingDistributionConfig`.
pub(crate) fn streaming_configs<'a>(
    res: &Resource<'a>,
) -> Result<Vec<Option<&'a Map<String, Value>>>, Unresolved> {
    res.objects(
        res.prop("StreamingDistributionConfig"),
        "StreamingDistributionConfig",
    )
}

#[cfg(test)]
pub(crate) fn distribution(config: &str) -> String {
    format!(
        "Parameters: {{P: {{Type: String}}}}\nConditions: {{C: !Equals [a, b]}}\nResources: {{R: {{Type: AWS::CloudFront::Distribution, Properties: {{DistributionConfig: {config}}}}}}}"
    )
}
