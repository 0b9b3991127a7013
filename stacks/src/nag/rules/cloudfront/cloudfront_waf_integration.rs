//! `AwsSolutions-CFR2`: distributions consider a WAF web ACL (warning).

use super::{DISTRIBUTION, configs};
use crate::nag::rules::verdict;
use crate::nag::{CheckResult, Compliance, Level, Resource, Rule};

/// cdk-nag `CloudFrontDistributionWAFIntegration`.
pub const CLOUDFRONT_WAF_INTEGRATION: Rule = Rule {
    id: "AwsSolutions-CFR2",
    name: "CloudFrontDistributionWAFIntegration",
    level: Level::Warning,
    info: "No WAF web ACL filters requests to this CloudFront distribution.",
    explanation: "A web ACL at the edge filters common exploits, bots and floods before they reach the origin. \
Set `WebACLId` to a WAFv2 web ACL (scope CLOUDFRONT), or suppress this warning with the reason WAF is not needed.",
    check: Some(check),
};

fn check(res: &Resource<'_>) -> CheckResult {
    if res.resource_type != DISTRIBUTION {
        return Ok(Compliance::NotApplicable);
    }
    for config in configs(res)? {
        if config.is_none_or(|config| res.may_be_absent(config.get("WebACLId"))) {
            return verdict(true);
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
                &distribution("{WebACLId: !GetAtt Acl.Arn}"),
                &CLOUDFRONT_WAF_INTEGRATION
            ),
            "compliant"
        );
        assert_eq!(
            status(&distribution("{}"), &CLOUDFRONT_WAF_INTEGRATION),
            "non-compliant"
        );
        assert_eq!(
            status(
                &distribution("{WebACLId: !If [C, arn, !Ref AWS::NoValue]}"),
                &CLOUDFRONT_WAF_INTEGRATION
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::WAFv2::WebACL}}",
                &CLOUDFRONT_WAF_INTEGRATION
            ),
            "n/a"
        );
        assert_suppressible(&distribution("{}"), "AwsSolutions-CFR2");
    }
}
