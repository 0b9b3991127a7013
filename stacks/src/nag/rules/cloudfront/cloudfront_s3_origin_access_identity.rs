//! `AwsSolutions-CFR6`: streaming distributions read their S3 origin through an OAI.

use super::{STREAMING_DISTRIBUTION, streaming_configs};
use crate::nag::rules::{field, nested, verdict};
use crate::nag::{CheckResult, Compliance, Level, Resource, Rule};

/// cdk-nag `CloudFrontDistributionS3OriginAccessIdentity`.
pub const CLOUDFRONT_S3_ORIGIN_ACCESS_IDENTITY: Rule = Rule {
    id: "AwsSolutions-CFR6",
    name: "CloudFrontDistributionS3OriginAccessIdentity",
    level: Level::Error,
    info: "The CloudFront streaming distribution does not use an origin access identity for its S3 origin.",
    explanation: "Without an origin access identity the bucket must be public for CloudFront to read it, which lets anyone bypass the distribution. \
Set `S3Origin.OriginAccessIdentity` and grant that identity read access in the bucket policy.",
    check: Some(check),
};

fn check(res: &Resource<'_>) -> CheckResult {
    if res.resource_type != STREAMING_DISTRIBUTION {
        return Ok(Compliance::NotApplicable);
    }
    for config in streaming_configs(res)? {
        for origin in nested(res, config, "S3Origin", "StreamingDistributionConfig")? {
            let identities = field(
                res,
                origin,
                "OriginAccessIdentity",
                "StreamingDistributionConfig.S3Origin",
            )?;
            if identities
                .into_iter()
                .any(|value| value.is_none_or(|identity| identity.text().trim().is_empty()))
            {
                return verdict(true);
            }
        }
    }
    verdict(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nag::testing::{assert_suppressible, status};

    fn streaming(identity: &str) -> String {
        format!(
            "Resources: {{R: {{Type: AWS::CloudFront::StreamingDistribution, Properties: {{StreamingDistributionConfig: {{S3Origin: {{DomainName: b, OriginAccessIdentity: {identity}}}}}}}}}}}"
        )
    }

    #[test]
    fn cases() {
        assert_eq!(
            status(
                &streaming("origin-access-identity/cloudfront/E1"),
                &CLOUDFRONT_S3_ORIGIN_ACCESS_IDENTITY
            ),
            "compliant"
        );
        assert_eq!(
            status(&streaming("' '"), &CLOUDFRONT_S3_ORIGIN_ACCESS_IDENTITY),
            "non-compliant"
        );
        assert_eq!(
            status(
                &streaming("!Sub 'origin-access-identity/cloudfront/${Oai}'"),
                &CLOUDFRONT_S3_ORIGIN_ACCESS_IDENTITY
            ),
            "unresolved: StreamingDistributionConfig.S3Origin.OriginAccessIdentity"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::CloudFront::Distribution}}",
                &CLOUDFRONT_S3_ORIGIN_ACCESS_IDENTITY
            ),
            "n/a"
        );
        assert_suppressible(&streaming("''"), "AwsSolutions-CFR6");
    }
}
