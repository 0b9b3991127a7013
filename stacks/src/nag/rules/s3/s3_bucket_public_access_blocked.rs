//! `AwsSolutions-S2`: buckets keep all four public access block settings on.

use crate::nag::rules::{field, verdict};
use crate::nag::{CheckResult, Compliance, Level, Resource, Rule};

/// cdk-nag `S3BucketLevelPublicAccessProhibited`.
pub const S3_BUCKET_PUBLIC_ACCESS_BLOCKED: Rule = Rule {
    id: "AwsSolutions-S2",
    name: "S3BucketLevelPublicAccessProhibited",
    level: Level::Error,
    info: "This S3 bucket's public access block is not fully on.",
    explanation: "Block Public Access stops ACLs and bucket policies from ever making objects public, whatever later changes are made. \
Either leave `PublicAccessBlockConfiguration` unset (new buckets block everything by default) or set all four of BlockPublicAcls, BlockPublicPolicy, IgnorePublicAcls and RestrictPublicBuckets to true.",
    check: Some(check),
};

fn check(res: &Resource<'_>) -> CheckResult {
    if res.resource_type != "AWS::S3::Bucket" {
        return Ok(Compliance::NotApplicable);
    }
    for config in res.objects(
        res.prop("PublicAccessBlockConfiguration"),
        "PublicAccessBlockConfiguration",
    )? {
        // An absent configuration means S3's default: everything blocked.
        let Some(config) = config else { continue };
        for key in [
            "BlockPublicAcls",
            "BlockPublicPolicy",
            "IgnorePublicAcls",
            "RestrictPublicBuckets",
        ] {
            let values = field(res, Some(config), key, "PublicAccessBlockConfiguration")?;
            if values
                .into_iter()
                .any(|value| value.and_then(|flag| flag.as_bool()) != Some(true))
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

    fn bucket(props: &str) -> String {
        format!(
            "Parameters: {{P: {{Type: String}}}}\nConditions: {{C: !Equals [a, b]}}\nResources: {{R: {{Type: AWS::S3::Bucket, Properties: {props}}}}}"
        )
    }

    const ALL: &str = "{BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true}";

    #[test]
    fn cases() {
        assert_eq!(
            status(&bucket("{}"), &S3_BUCKET_PUBLIC_ACCESS_BLOCKED),
            "compliant"
        );
        assert_eq!(
            status(
                &bucket(&format!("{{PublicAccessBlockConfiguration: {ALL}}}")),
                &S3_BUCKET_PUBLIC_ACCESS_BLOCKED
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &bucket("{PublicAccessBlockConfiguration: {BlockPublicAcls: true}}"),
                &S3_BUCKET_PUBLIC_ACCESS_BLOCKED
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &bucket(&format!(
                    "{{PublicAccessBlockConfiguration: !If [C, {ALL}, {{BlockPublicAcls: false}}]}}"
                )),
                &S3_BUCKET_PUBLIC_ACCESS_BLOCKED
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &bucket(&format!(
                    "{{PublicAccessBlockConfiguration: !If [C, {ALL}, !Ref AWS::NoValue]}}"
                )),
                &S3_BUCKET_PUBLIC_ACCESS_BLOCKED
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &bucket("{PublicAccessBlockConfiguration: {BlockPublicAcls: !Ref P}}"),
                &S3_BUCKET_PUBLIC_ACCESS_BLOCKED
            ),
            "unresolved: PublicAccessBlockConfiguration.BlockPublicAcls"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::S3::BucketPolicy}}",
                &S3_BUCKET_PUBLIC_ACCESS_BLOCKED
            ),
            "n/a"
        );
        assert_suppressible(
            &bucket("{PublicAccessBlockConfiguration: {}}"),
            "AwsSolutions-S2",
        );
    }
}
