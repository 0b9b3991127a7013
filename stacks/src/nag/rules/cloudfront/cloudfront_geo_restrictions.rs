//! `AwsSolutions-CFR1`: distributions consider geo restrictions (warning).

use super::{DISTRIBUTION, configs};
use crate::nag::rules::{field, nested, verdict};
use crate::nag::{CheckResult, Compliance, Level, Resource, Rule};

/// cdk-nag `CloudFrontDistributionGeoRestrictions`.
pub const CLOUDFRONT_GEO_RESTRICTIONS: Rule = Rule {
    id: "AwsSolutions-CFR1",
    name: "CloudFrontDistributionGeoRestrictions",
    level: Level::Warning,
    info: "This CloudFront distribution serves every country (no geo restriction).",
    explanation: "Legal, licensing or threat-model reasons sometimes require serving content only in (or never in) certain countries. \
Set `Restrictions.GeoRestriction` to a whitelist or blacklist, or suppress this warning saying why worldwide access is intended.",
    check: Some(check),
};

fn check(res: &Resource<'_>) -> CheckResult {
    if res.resource_type != DISTRIBUTION {
        return Ok(Compliance::NotApplicable);
    }
    for config in configs(res)? {
        for restrictions in nested(res, config, "Restrictions", "DistributionConfig")? {
            let Some(restrictions) = restrictions else {
                return verdict(true);
            };
            for geo in nested(
                res,
                Some(restrictions),
                "GeoRestriction",
                "DistributionConfig.Restrictions",
            )? {
                let kinds = field(
                    res,
                    geo,
                    "RestrictionType",
                    "DistributionConfig.Restrictions.GeoRestriction",
                )?;
                if kinds
                    .into_iter()
                    .any(|kind| kind.is_some_and(|kind| kind.text() == "none"))
                {
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
    use crate::nag::rules::cloudfront::distribution;
    use crate::nag::testing::{assert_suppressible, status};

    #[test]
    fn cases() {
        assert_eq!(
            status(
                &distribution(
                    "{Restrictions: {GeoRestriction: {RestrictionType: whitelist, Locations: [DE]}}}"
                ),
                &CLOUDFRONT_GEO_RESTRICTIONS
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &distribution("{Restrictions: {GeoRestriction: {RestrictionType: none}}}"),
                &CLOUDFRONT_GEO_RESTRICTIONS
            ),
            "non-compliant"
        );
        assert_eq!(
            status(&distribution("{}"), &CLOUDFRONT_GEO_RESTRICTIONS),
            "non-compliant"
        );
        assert_eq!(
            status(
                &distribution(
                    "{Restrictions: !If [C, {GeoRestriction: {RestrictionType: none}}, !Ref AWS::NoValue]}"
                ),
                &CLOUDFRONT_GEO_RESTRICTIONS
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &distribution("{Restrictions: {GeoRestriction: {RestrictionType: !Ref P}}}"),
                &CLOUDFRONT_GEO_RESTRICTIONS
            ),
            "unresolved: DistributionConfig.Restrictions.GeoRestriction.RestrictionType"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::S3::Bucket}}",
                &CLOUDFRONT_GEO_RESTRICTIONS
            ),
            "n/a"
        );
        assert_suppressible(&distribution("{}"), "AwsSolutions-CFR1");
    }
}
