//! `AwsSolutions-S10`: bucket policies deny requests that do not use TLS.

use serde_json::{Map, Value};

use super::{bucket_name_text, candidate_policies, policy_targets};
use crate::nag::resolve::{is_intrinsic, one_or_many, referenced_id};
use crate::nag::rules::verdict;
use crate::nag::{CheckResult, Compliance, Level, Resource, Rule, Unresolved};

/// cdk-nag `S3BucketSSLRequestsOnly`.
pub const S3_BUCKET_TLS_ONLY: Rule = Rule {
    id: "AwsSolutions-S10",
    name: "S3BucketSSLRequestsOnly",
    level: Level::Error,
    info: "No bucket policy denies plain-HTTP (non-TLS) requests to this S3 bucket.",
    explanation: "Without TLS, requests can be read or altered by anyone on the network path. \
Attach a bucket policy with a statement that denies `s3:*` (or `*`) to every principal when `aws:SecureTransport` is false, on both the bucket ARN and `<bucket ARN>/*`.",
    check: Some(check),
};

fn check(res: &Resource<'_>) -> CheckResult {
    match res.resource_type {
        "AWS::S3::Bucket" => {
            let name = res.prop("BucketName").and_then(bucket_name_text);
            for policy in candidate_policies(res) {
                if policy_targets(res, &policy) && denies_plain_http(&policy, res.logical_id, name)?
                {
                    return verdict(false);
                }
            }
            verdict(true)
        }
        "AWS::S3::BucketPolicy" => {
            let Some(bucket) = res.prop("Bucket") else {
                return verdict(true);
            };
            let logical_id = referenced_id(bucket).unwrap_or("");
            verdict(!denies_plain_http(
                res,
                logical_id,
                bucket_name_text(bucket),
            )?)
        }
        _ => Ok(Compliance::NotApplicable),
    }
}

/// True when every variant of the policy document holds a statement that is a TLS-only deny
/// in every one of its own variants (a conditional deny does not protect the other branch).
fn denies_plain_http(
    policy: &Resource<'_>,
    logical_id: &str,
    name: Option<&str>,
) -> Result<bool, Unresolved> {
    for document in policy.objects(policy.prop("PolicyDocument"), "PolicyDocument")? {
        let Some(document) = document else {
            return Ok(false);
        };
        let statement_lists: Vec<Vec<&Value>> = match document.get("Statement") {
            Some(single @ Value::Object(object)) if !is_intrinsic(object) => vec![vec![single]],
            other => policy
                .lists(other, "PolicyDocument.Statement")?
                .into_iter()
                .map(|list| list.map(|list| list.iter().collect()).unwrap_or_default())
                .collect(),
        };
        for statements in statement_lists {
            let mut found = false;
            for (statement_idx, statement) in statements.into_iter().enumerate() {
                let path = format!("PolicyDocument.Statement[{statement_idx}]");
                let variants = policy.objects(Some(statement), &path)?;
                found |= variants.iter().all(|variant| {
                    variant.is_some_and(|statement| is_tls_deny(statement, logical_id, name))
                });
            }
            if !found {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

fn is_tls_deny(statement: &Map<String, Value>, logical_id: &str, name: Option<&str>) -> bool {
    let effect_deny = statement.get("Effect").and_then(Value::as_str) == Some("Deny");
    let all_actions = statement.get("Action").is_some_and(|actions| {
        one_or_many(actions).iter().any(|action| {
            action
                .as_str()
                .is_some_and(|a| a == "*" || a.eq_ignore_ascii_case("s3:*"))
        })
    });
    let everyone = statement.get("Principal").is_some_and(|principal| {
        principal.as_str() == Some("*")
            || principal
                .get("AWS")
                .is_some_and(|aws| one_or_many(aws).iter().any(|p| p.as_str() == Some("*")))
    });
    let insecure = statement
        .get("Condition")
        .and_then(|condition| condition.get("Bool"))
        .and_then(|condition| condition.get("aws:SecureTransport"))
        .is_some_and(|value| value == &Value::Bool(false) || value.as_str() == Some("false"));
    effect_deny
        && all_actions
        && everyone
        && insecure
        && covers_bucket_and_objects(statement.get("Resource"), logical_id, name)
}

/// cdk-nag requires a list holding both the bucket itself and its objects (`.../*`).
fn covers_bucket_and_objects(
    resources: Option<&Value>,
    logical_id: &str,
    name: Option<&str>,
) -> bool {
    let Some(Value::Array(resources)) = resources else {
        return false;
    };
    let ids: Vec<&str> = [Some(logical_id), name]
        .into_iter()
        .flatten()
        .filter(|id| !id.is_empty())
        .collect();
    let mut bucket = false;
    let mut objects = false;
    for resource in resources {
        let text = resource.to_string();
        let slashes = text.matches('/').count();
        for id in &ids {
            for (start, _) in text.match_indices(id) {
                let rest = &text[start + id.len()..];
                if rest
                    .chars()
                    .next()
                    .is_some_and(|next| next.is_alphanumeric() || next == '_' || next == '-')
                {
                    continue;
                }
                if slashes == 0 {
                    bucket = true;
                } else if slashes == 1 && rest.contains("/*") {
                    objects = true;
                }
            }
        }
    }
    bucket && objects
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nag::testing::{assert_suppressible, status};

    const DENY: &str = "{Effect: Deny, Action: 's3:*', Principal: {AWS: '*'}, Condition: {Bool: {'aws:SecureTransport': 'false'}}, Resource: [!GetAtt R.Arn, !Join ['', [!GetAtt R.Arn, '/*']]]}";

    fn tpl(statement: &str) -> String {
        format!(
            "Conditions: {{C: !Equals [a, b]}}\nResources: {{R: {{Type: AWS::S3::Bucket}}, P: {{Type: AWS::S3::BucketPolicy, Properties: {{Bucket: !Ref R, PolicyDocument: {{Statement: [{statement}]}}}}}}}}"
        )
    }

    #[test]
    fn buckets() {
        assert_eq!(status(&tpl(DENY), &S3_BUCKET_TLS_ONLY), "compliant");
        assert_eq!(
            status(&tpl(&DENY.replace("'false'", "false")), &S3_BUCKET_TLS_ONLY),
            "compliant"
        );
        assert_eq!(
            status(&tpl(&DENY.replace("Deny", "Allow")), &S3_BUCKET_TLS_ONLY),
            "non-compliant"
        );
        assert_eq!(
            status(
                &tpl(&DENY.replace("'s3:*'", "'s3:GetObject'")),
                &S3_BUCKET_TLS_ONLY
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &tpl(&DENY.replace(", !Join ['', [!GetAtt R.Arn, '/*']]", "")),
                &S3_BUCKET_TLS_ONLY
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &tpl(&format!("!If [C, {DENY}, !Ref AWS::NoValue]")),
                &S3_BUCKET_TLS_ONLY
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::S3::Bucket}}",
                &S3_BUCKET_TLS_ONLY
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::S3::Bucket}, P: {Type: AWS::S3::BucketPolicy, Properties: {Bucket: !Ref R, PolicyDocument: !GetAtt X.Doc}}}",
                &S3_BUCKET_TLS_ONLY
            ),
            "unresolved: PolicyDocument"
        );
        assert_eq!(
            status(
                &tpl(&format!(
                    "!If [C, {DENY}, {}]",
                    DENY.replace("'s3:*'", "'*'")
                )),
                &S3_BUCKET_TLS_ONLY
            ),
            "compliant"
        );
        let single = format!(
            "Resources: {{R: {{Type: AWS::S3::Bucket}}, P: {{Type: AWS::S3::BucketPolicy, Properties: {{Bucket: !Ref R, PolicyDocument: {{Statement: {DENY}}}}}}}}}"
        );
        assert_eq!(status(&single, &S3_BUCKET_TLS_ONLY), "compliant");
        assert_suppressible(
            "Resources: {R: {Type: AWS::S3::Bucket}}",
            "AwsSolutions-S10",
        );
    }

    #[test]
    fn bucket_policies_and_other_types() {
        let policy = |statement: &str| {
            format!(
                "Resources: {{R: {{Type: AWS::S3::BucketPolicy, Properties: {{Bucket: !Ref B, PolicyDocument: {{Statement: [{statement}]}}}}}}}}"
            )
        };
        assert_eq!(
            status(
                &policy(&DENY.replace("R.Arn", "B.Arn")),
                &S3_BUCKET_TLS_ONLY
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &policy("{Effect: Allow, Action: 's3:GetObject', Principal: '*', Resource: '*'}"),
                &S3_BUCKET_TLS_ONLY
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::SNS::Topic}}",
                &S3_BUCKET_TLS_ONLY
            ),
            "n/a"
        );
    }

    /// AWS's own samples name a bucket `!Sub ${App}-data` and give its policy the same `Bucket`
    /// and `!Sub arn:...:${App}-data` resources; that policy was not recognized.
    #[test]
    fn regression_bucket_named_by_sub_matches_its_policy() {
        let deny = "{Effect: Deny, Action: 's3:*', Principal: {AWS: '*'}, Condition: {Bool: {'aws:SecureTransport': false}}, Resource: [!Sub 'arn:${AWS::Partition}:s3:::${App}-data', !Sub 'arn:${AWS::Partition}:s3:::${App}-data/*']}";
        let tpl = |bucket: &str, name: &str| {
            format!(
                "Resources: {{R: {{Type: AWS::S3::Bucket, Properties: {{BucketName: {name}}}}}, P: {{Type: AWS::S3::BucketPolicy, Properties: {{Bucket: {bucket}, PolicyDocument: {{Statement: [{deny}]}}}}}}}}"
            )
        };
        let sub = "!Sub '${App}-data'";
        assert_eq!(status(&tpl(sub, sub), &S3_BUCKET_TLS_ONLY), "compliant");
        assert_eq!(
            status(&tpl(sub, "!Sub '${App}-data-2'"), &S3_BUCKET_TLS_ONLY),
            "non-compliant"
        );
        assert_eq!(
            status(
                &tpl("!Sub '${App}-logs'", "!Sub '${App}-logs'"),
                &S3_BUCKET_TLS_ONLY
            ),
            "non-compliant"
        );
    }
}
