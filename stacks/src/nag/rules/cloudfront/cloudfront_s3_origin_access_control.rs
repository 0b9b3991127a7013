//! `AwsSolutions-CFR7`: S3 origins of a distribution use origin access control.

use super::{DISTRIBUTION, configs};
use crate::nag::resolve::referenced_id;
use crate::nag::rules::{items, verdict};
use crate::nag::{CheckResult, Compliance, Level, Resource, Rule};

/// cdk-nag `CloudFrontDistributionS3OriginAccessControl`.
pub const CLOUDFRONT_S3_ORIGIN_ACCESS_CONTROL: Rule = Rule {
    id: "AwsSolutions-CFR7",
    name: "CloudFrontDistributionS3OriginAccessControl",
    level: Level::Error,
    info: "The CloudFront distribution does not use an origin access control with an S3 origin.",
    explanation: "Origin access control (the successor of OAI) signs CloudFront's requests so the bucket can stay private and accept only this distribution, including for SSE-KMS objects. \
For every origin whose domain refers to a bucket in the template, set `OriginAccessControlId` to an AWS::CloudFront::OriginAccessControl.",
    check: Some(check),
};

fn check(res: &Resource<'_>) -> CheckResult {
    if res.resource_type != DISTRIBUTION {
        return Ok(Compliance::NotApplicable);
    }
    for config in configs(res)?.into_iter().flatten() {
        for (_, origin) in items(res, config.get("Origins"), "DistributionConfig.Origins")? {
            let Some(target) = origin.get("DomainName").and_then(referenced_id) else {
                continue;
            };
            let is_bucket = res
                .lookup(target)
                .is_some_and(|bucket| bucket.resource_type == "AWS::S3::Bucket");
            if !is_bucket {
                continue;
            }
            for control in res.variants(origin.get("OriginAccessControlId")) {
                let missing = match control {
                    None => true,
                    Some(value) => match value.as_str() {
                        Some(text) => text.trim().is_empty(),
                        None => referenced_id(value).is_none_or(|id| id.trim().is_empty()),
                    },
                };
                if missing {
                    return verdict(true);
                }
            }
        }
    }
    verdict(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nag::testing::{assert_suppressible, status};

    fn tpl(origin: &str) -> String {
        format!(
            "Conditions: {{C: !Equals [a, b]}}\nResources: {{Site: {{Type: AWS::S3::Bucket}}, R: {{Type: AWS::CloudFront::Distribution, Properties: {{DistributionConfig: {{Origins: [{origin}]}}}}}}}}"
        )
    }

    #[test]
    fn cases() {
        assert_eq!(
            status(
                &tpl(
                    "{Id: s3, DomainName: !GetAtt Site.RegionalDomainName, OriginAccessControlId: !GetAtt Oac.Id}"
                ),
                &CLOUDFRONT_S3_ORIGIN_ACCESS_CONTROL
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &tpl("{Id: s3, DomainName: !GetAtt Site.RegionalDomainName}"),
                &CLOUDFRONT_S3_ORIGIN_ACCESS_CONTROL
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &tpl(
                    "{Id: s3, DomainName: !GetAtt Site.RegionalDomainName, OriginAccessControlId: !If [C, oac-1, !Ref AWS::NoValue]}"
                ),
                &CLOUDFRONT_S3_ORIGIN_ACCESS_CONTROL
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &tpl("{Id: alb, DomainName: !GetAtt Alb.DNSName}"),
                &CLOUDFRONT_S3_ORIGIN_ACCESS_CONTROL
            ),
            "compliant"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::S3::Bucket}}",
                &CLOUDFRONT_S3_ORIGIN_ACCESS_CONTROL
            ),
            "n/a"
        );
        assert_suppressible(
            &tpl("{Id: s3, DomainName: !GetAtt Site.RegionalDomainName}"),
            "AwsSolutions-CFR7",
        );
    }
}
