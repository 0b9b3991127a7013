//! `AwsSolutions-S5`: website buckets are read through a CloudFront origin access identity only.

use serde_json::Value;

use super::{candidate_policies, policy_targets};
use crate::nag::resolve::one_or_many;
use crate::nag::rules::{statements, verdict};
use crate::nag::{CheckResult, Compliance, Level, Resource, Rule, Unresolved};

/// cdk-nag `S3WebBucketOAIAccess`.
pub const S3_WEB_BUCKET_OAI_ACCESS: Rule = Rule {
    id: "AwsSolutions-S5",
    name: "S3WebBucketOAIAccess",
    level: Level::Error,
    info: "This S3 website bucket is open to everyone or not read through a CloudFront origin access identity.",
    explanation: "Serving a website bucket through CloudFront with an origin access identity keeps the bucket private while the content stays reachable. \
Give the bucket a policy whose Allow statements name no `*` principal and grant only s3:GetObject/s3:PutObject to the CloudFront identity (or canonical user).",
    check: Some(check),
};

fn check(res: &Resource<'_>) -> CheckResult {
    if res.resource_type != "AWS::S3::Bucket" {
        return Ok(Compliance::NotApplicable);
    }
    if res.prop("WebsiteConfiguration").is_none() {
        return verdict(false);
    }
    for policy in candidate_policies(res) {
        if policy_targets(res, &policy) && grants_oai_only(&policy)? {
            return verdict(false);
        }
    }
    verdict(true)
}

fn grants_oai_only(policy: &Resource<'_>) -> Result<bool, Unresolved> {
    let mut found = false;
    for document in policy
        .objects(policy.prop("PolicyDocument"), "PolicyDocument")?
        .into_iter()
        .flatten()
    {
        for (_, statement) in statements(policy, document, "PolicyDocument")? {
            if statement.get("Effect").and_then(Value::as_str) != Some("Allow") {
                continue;
            }
            let principal = statement.get("Principal").cloned().unwrap_or(Value::Null);
            if principal.to_string().contains('*') {
                return Ok(false);
            }
            let oai = principal.get("AWS").is_some_and(|aws| {
                aws.to_string()
                    .contains("CloudFront Origin Access Identity")
            }) || principal.get("CanonicalUser").is_some();
            if !oai {
                continue;
            }
            let actions_ok = statement.get("Action").is_some_and(|actions| {
                one_or_many(actions).iter().all(|action| {
                    action.as_str().is_some_and(|a| {
                        a.eq_ignore_ascii_case("s3:GetObject")
                            || a.eq_ignore_ascii_case("s3:PutObject")
                    })
                })
            });
            if !actions_ok {
                return Ok(false);
            }
            found = true;
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nag::testing::{assert_suppressible, status};

    fn tpl(statement: &str) -> String {
        format!(
            "Resources: {{R: {{Type: AWS::S3::Bucket, Properties: {{WebsiteConfiguration: {{IndexDocument: index.html}}}}}}, P: {{Type: AWS::S3::BucketPolicy, Properties: {{Bucket: !Ref R, PolicyDocument: {{Statement: [{statement}]}}}}}}}}"
        )
    }

    #[test]
    fn cases() {
        assert_eq!(
            status(
                &tpl(
                    "{Effect: Allow, Action: 's3:GetObject', Principal: {CanonicalUser: !GetAtt OAI.S3CanonicalUserId}, Resource: x}"
                ),
                &S3_WEB_BUCKET_OAI_ACCESS
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &tpl(
                    "{Effect: Allow, Action: 's3:GetObject', Principal: {AWS: 'arn:aws:iam::cloudfront:user/CloudFront Origin Access Identity E1'}, Resource: x}"
                ),
                &S3_WEB_BUCKET_OAI_ACCESS
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &tpl("{Effect: Allow, Action: 's3:GetObject', Principal: '*', Resource: x}"),
                &S3_WEB_BUCKET_OAI_ACCESS
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &tpl(
                    "{Effect: Allow, Action: 's3:*', Principal: {CanonicalUser: abc}, Resource: x}"
                ),
                &S3_WEB_BUCKET_OAI_ACCESS
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::S3::Bucket, Properties: {WebsiteConfiguration: {}}}}",
                &S3_WEB_BUCKET_OAI_ACCESS
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::S3::Bucket, Properties: {WebsiteConfiguration: {}}}, P: {Type: AWS::S3::BucketPolicy, Properties: {Bucket: !Ref R, PolicyDocument: !Ref Doc}}}",
                &S3_WEB_BUCKET_OAI_ACCESS
            ),
            "unresolved: PolicyDocument"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::S3::Bucket}}",
                &S3_WEB_BUCKET_OAI_ACCESS
            ),
            "compliant"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::S3::BucketPolicy}}",
                &S3_WEB_BUCKET_OAI_ACCESS
            ),
            "n/a"
        );
        assert_suppressible(
            "Resources: {R: {Type: AWS::S3::Bucket, Properties: {WebsiteConfiguration: {}}}}",
            "AwsSolutions-S5",
        );
    }
}
