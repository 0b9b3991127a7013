//! `AwsSolutions-CFR4`: viewers connect with TLS 1.1 or newer.

use super::{DISTRIBUTION, configs};
use crate::nag::rules::{field, nested, verdict};
use crate::nag::{CheckResult, Compliance, Level, Resource, Rule};

/// cdk-nag `CloudFrontDistributionHttpsViewerNoOutdatedSSL`.
pub const CLOUDFRONT_VIEWER_NO_OUTDATED_TLS: Rule = Rule {
    id: "AwsSolutions-CFR4",
    name: "CloudFrontDistributionHttpsViewerNoOutdatedSSL",
    level: Level::Error,
    info: "Viewers can reach this CloudFront distribution with SSLv3 or TLS 1.0.",
    explanation: "SSLv3 and TLS 1.0 have known attacks; viewers should negotiate TLS 1.2. \
Use your own ACM certificate with `SslSupportMethod: sni-only` and `MinimumProtocolVersion: TLSv1.2_2021`; the default CloudFront certificate and `vip` always allow TLSv1, whatever the minimum says.",
    check: Some(check),
};

const OUTDATED: [&str; 3] = ["sslv3", "tlsv1", "tlsv1_2016"];

fn check(res: &Resource<'_>) -> CheckResult {
    if res.resource_type != DISTRIBUTION {
        return Ok(Compliance::NotApplicable);
    }
    for config in configs(res)? {
        for certificate in nested(res, config, "ViewerCertificate", "DistributionConfig")? {
            let Some(certificate) = certificate else {
                return verdict(true);
            };
            let path = "DistributionConfig.ViewerCertificate";
            let default_cert = field(res, Some(certificate), "CloudFrontDefaultCertificate", path)?;
            let method = field(res, Some(certificate), "SslSupportMethod", path)?;
            let minimum = field(res, Some(certificate), "MinimumProtocolVersion", path)?;
            let bad = default_cert
                .iter()
                .any(|value| value.and_then(|flag| flag.as_bool()) == Some(true))
                || method.iter().any(|value| {
                    value.is_none_or(|method| method.text().eq_ignore_ascii_case("vip"))
                })
                || minimum.iter().any(|value| {
                    value.is_none_or(|version| {
                        OUTDATED.contains(&version.text().to_lowercase().as_str())
                    })
                });
            if bad {
                return verdict(true);
            }
        }
    }
    verdict(false)
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
                &distribution(
                    "{ViewerCertificate: {AcmCertificateArn: arn, SslSupportMethod: sni-only, MinimumProtocolVersion: TLSv1.2_2021}}"
                ),
                &CLOUDFRONT_VIEWER_NO_OUTDATED_TLS
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &distribution("{ViewerCertificate: {CloudFrontDefaultCertificate: true}}"),
                &CLOUDFRONT_VIEWER_NO_OUTDATED_TLS
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &distribution(
                    "{ViewerCertificate: {AcmCertificateArn: arn, SslSupportMethod: vip, MinimumProtocolVersion: TLSv1.2_2021}}"
                ),
                &CLOUDFRONT_VIEWER_NO_OUTDATED_TLS
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &distribution(
                    "{ViewerCertificate: {AcmCertificateArn: arn, SslSupportMethod: sni-only, MinimumProtocolVersion: TLSv1}}"
                ),
                &CLOUDFRONT_VIEWER_NO_OUTDATED_TLS
            ),
            "non-compliant"
        );
        assert_eq!(
            status(&distribution("{}"), &CLOUDFRONT_VIEWER_NO_OUTDATED_TLS),
            "non-compliant"
        );
        assert_eq!(
            status(
                &distribution(
                    "{ViewerCertificate: {AcmCertificateArn: arn, SslSupportMethod: sni-only, MinimumProtocolVersion: !Ref P}}"
                ),
                &CLOUDFRONT_VIEWER_NO_OUTDATED_TLS
            ),
            "unresolved: DistributionConfig.ViewerCertificate.MinimumProtocolVersion"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::S3::Bucket}}",
                &CLOUDFRONT_VIEWER_NO_OUTDATED_TLS
            ),
            "n/a"
        );
        assert_suppressible(&distribution("{}"), "AwsSolutions-CFR4");
    }
}
