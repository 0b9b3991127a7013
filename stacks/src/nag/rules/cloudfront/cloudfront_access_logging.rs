//! `AwsSolutions-CFR3`: distributions write access logs.

use super::{DISTRIBUTION, STREAMING_DISTRIBUTION, configs, streaming_configs};
use crate::nag::rules::{field, nested, verdict};
use crate::nag::{CheckResult, Compliance, Level, Resource, Rule};

/// cdk-nag `CloudFrontDistributionAccessLogging`.
pub const CLOUDFRONT_ACCESS_LOGGING: Rule = Rule {
    id: "AwsSolutions-CFR3",
    name: "CloudFrontDistributionAccessLogging",
    level: Level::Error,
    info: "This CloudFront distribution writes no access logs.",
    explanation: "Edge access logs are the only record of which viewers requested what, from where, and with which result. \
Set `DistributionConfig.Logging` with a log bucket (for streaming distributions, an enabled `Logging`).",
    check: Some(check),
};

fn check(res: &Resource<'_>) -> CheckResult {
    match res.resource_type {
        DISTRIBUTION => {
            for config in configs(res)? {
                if config.is_none_or(|config| res.may_be_absent(config.get("Logging"))) {
                    return verdict(true);
                }
            }
            verdict(false)
        }
        STREAMING_DISTRIBUTION => {
            for config in streaming_configs(res)? {
                for logging in nested(res, config, "Logging", "StreamingDistributionConfig")? {
                    let Some(logging) = logging else {
                        return verdict(true);
                    };
                    let enabled = field(
                        res,
                        Some(logging),
                        "Enabled",
                        "StreamingDistributionConfig.Logging",
                    )?;
                    if enabled
                        .into_iter()
                        .any(|value| value.and_then(|flag| flag.as_bool()) != Some(true))
                    {
                        return verdict(true);
                    }
                }
            }
            verdict(false)
        }
        _ => Ok(Compliance::NotApplicable),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nag::rules::cloudfront::distribution;
    use crate::nag::testing::{assert_suppressible, status};

    #[test]
    fn cases() {
        assert_eq!(
            status(
                &distribution("{Logging: {Bucket: logs.s3.amazonaws.com}}"),
                &CLOUDFRONT_ACCESS_LOGGING
            ),
            "compliant"
        );
        assert_eq!(
            status(&distribution("{}"), &CLOUDFRONT_ACCESS_LOGGING),
            "non-compliant"
        );
        assert_eq!(
            status(
                &distribution("{Logging: !If [C, {Bucket: b}, !Ref AWS::NoValue]}"),
                &CLOUDFRONT_ACCESS_LOGGING
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::CloudFront::StreamingDistribution, Properties: {StreamingDistributionConfig: {Logging: {Enabled: true}}}}}",
                &CLOUDFRONT_ACCESS_LOGGING
            ),
            "compliant"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::CloudFront::StreamingDistribution, Properties: {StreamingDistributionConfig: {Logging: {Enabled: false}}}}}",
                &CLOUDFRONT_ACCESS_LOGGING
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::CloudFront::Distribution, Properties: {DistributionConfig: !Ref Cfg}}}",
                &CLOUDFRONT_ACCESS_LOGGING
            ),
            "unresolved: DistributionConfig"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::S3::Bucket}}",
                &CLOUDFRONT_ACCESS_LOGGING
            ),
            "n/a"
        );
        assert_suppressible(&distribution("{}"), "AwsSolutions-CFR3");
    }
}
