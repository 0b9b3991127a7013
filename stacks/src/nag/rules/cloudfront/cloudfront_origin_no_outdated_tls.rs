//! `AwsSolutions-CFR5`: custom origins are reached over HTTPS with TLS 1.1 or newer only.

use super::{DISTRIBUTION, configs};
use crate::nag::rules::{field, items, verdict};
use crate::nag::{CheckResult, Compliance, Level, Resource, Rule};

/// cdk-nag `CloudFrontDistributionNoOutdatedSSL`.
pub const CLOUDFRONT_ORIGIN_NO_OUTDATED_TLS: Rule = Rule {
    id: "AwsSolutions-CFR5",
    name: "CloudFrontDistributionNoOutdatedSSL",
    level: Level::Error,
    info: "The CloudFront distribution uses plain HTTP, SSLv3 or TLSv1 to reach a custom origin.",
    explanation: "Traffic between CloudFront and the origin crosses the internet; it needs the same protection as the viewer side. \
Give every custom origin `OriginProtocolPolicy: https-only` and `OriginSSLProtocols` without SSLv3 and TLSv1 (e.g. [TLSv1.2]).",
    check: Some(check),
};

fn check(res: &Resource<'_>) -> CheckResult {
    if res.resource_type != DISTRIBUTION {
        return Ok(Compliance::NotApplicable);
    }
    for config in configs(res)?.into_iter().flatten() {
        for (path, origin) in items(res, config.get("Origins"), "DistributionConfig.Origins")? {
            let custom_path = format!("{path}.CustomOriginConfig");
            for custom in res
                .objects(origin.get("CustomOriginConfig"), &custom_path)?
                .into_iter()
                .flatten()
            {
                let policy = field(res, Some(custom), "OriginProtocolPolicy", &custom_path)?;
                if policy
                    .iter()
                    .any(|value| value.is_none_or(|policy| policy.text() != "https-only"))
                {
                    return verdict(true);
                }
                for protocols in res.lists(
                    custom.get("OriginSSLProtocols"),
                    &format!("{custom_path}.OriginSSLProtocols"),
                )? {
                    let Some(protocols) = protocols else {
                        return verdict(true);
                    };
                    for (protocol_idx, protocol) in protocols.iter().enumerate() {
                        let values = res.scalars(
                            Some(protocol),
                            &format!("{custom_path}.OriginSSLProtocols[{protocol_idx}]"),
                        )?;
                        if values.into_iter().flatten().any(|value| {
                            matches!(value.text().to_lowercase().as_str(), "sslv3" | "tlsv1")
                        }) {
                            return verdict(true);
                        }
                    }
                }
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

    fn origin(custom: &str) -> String {
        distribution(&format!(
            "{{Origins: [{{Id: alb, DomainName: x.example.com, CustomOriginConfig: {custom}}}]}}"
        ))
    }

    #[test]
    fn cases() {
        assert_eq!(
            status(
                &origin("{OriginProtocolPolicy: https-only, OriginSSLProtocols: [TLSv1.2]}"),
                &CLOUDFRONT_ORIGIN_NO_OUTDATED_TLS
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &origin("{OriginProtocolPolicy: http-only}"),
                &CLOUDFRONT_ORIGIN_NO_OUTDATED_TLS
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &origin("{OriginProtocolPolicy: https-only}"),
                &CLOUDFRONT_ORIGIN_NO_OUTDATED_TLS
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &origin("{OriginProtocolPolicy: https-only, OriginSSLProtocols: [TLSv1, TLSv1.2]}"),
                &CLOUDFRONT_ORIGIN_NO_OUTDATED_TLS
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &origin(
                    "{OriginProtocolPolicy: !If [C, https-only, match-viewer], OriginSSLProtocols: [TLSv1.2]}"
                ),
                &CLOUDFRONT_ORIGIN_NO_OUTDATED_TLS
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &origin("{OriginProtocolPolicy: !Ref P}"),
                &CLOUDFRONT_ORIGIN_NO_OUTDATED_TLS
            ),
            "unresolved: DistributionConfig.Origins[0].CustomOriginConfig.OriginProtocolPolicy"
        );
        assert_eq!(
            status(
                &distribution(
                    "{Origins: [{Id: s3, DomainName: b.s3.amazonaws.com, S3OriginConfig: {}}]}"
                ),
                &CLOUDFRONT_ORIGIN_NO_OUTDATED_TLS
            ),
            "compliant"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::S3::Bucket}}",
                &CLOUDFRONT_ORIGIN_NO_OUTDATED_TLS
            ),
            "n/a"
        );
        assert_suppressible(
            &origin("{OriginProtocolPolicy: http-only}"),
            "AwsSolutions-CFR5",
        );
    }
}
