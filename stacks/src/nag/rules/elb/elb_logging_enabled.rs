//! `AwsSolutions-ELB2`: load balancers (classic and v2) write access logs.

use super::CLB;
use crate::nag::rules::{field, verdict};
use serde_json::Value;

use crate::nag::{CheckResult, Compliance, Level, Resource, Rule, Unresolved};

/// cdk-nag `ELBLoggingEnabled`.
pub const ELB_LOGGING_ENABLED: Rule = Rule {
    id: "AwsSolutions-ELB2",
    name: "ELBLoggingEnabled",
    level: Level::Error,
    info: "Access logging is off for this load balancer.",
    explanation: "Access logs record every request (client, path, latency, status) and are the primary evidence when investigating abuse or failures. \
For ALB/NLB set the attribute `access_logs.s3.enabled` to `true` (with a bucket); for a classic load balancer set an enabled `AccessLoggingPolicy`.",
    check: Some(check),
};

fn check(res: &Resource<'_>) -> CheckResult {
    match res.resource_type {
        CLB => {
            for policy in res.objects(res.prop("AccessLoggingPolicy"), "AccessLoggingPolicy")? {
                let Some(policy) = policy else {
                    return verdict(true);
                };
                let enabled = field(res, Some(policy), "Enabled", "AccessLoggingPolicy")?;
                if enabled
                    .into_iter()
                    .any(|value| value.and_then(|flag| flag.as_bool()) == Some(false))
                {
                    return verdict(true);
                }
            }
            verdict(false)
        }
        "AWS::ElasticLoadBalancingV2::LoadBalancer" => {
            // Every variant of the attribute list must turn access logs on.
            for list in res.lists(res.prop("LoadBalancerAttributes"), "LoadBalancerAttributes")? {
                let Some(list) = list else {
                    return verdict(true);
                };
                let mut enabled = false;
                let mut unresolved = None;
                for (attribute_idx, item) in list.iter().enumerate() {
                    let path = format!("LoadBalancerAttributes[{attribute_idx}]");
                    match enables_access_logs(res, item, &path) {
                        Ok(item_enables) => enabled |= item_enables,
                        Err(error) => {
                            unresolved.get_or_insert(error);
                        }
                    }
                }
                // A value that cannot be resolved only matters when no other attribute
                // settles the question.
                if !enabled {
                    return match unresolved {
                        Some(error) => Err(error),
                        None => verdict(true),
                    };
                }
            }
            verdict(false)
        }
        _ => Ok(Compliance::NotApplicable),
    }
}

/// Whether the attribute at `path` is `access_logs.s3.enabled` = `true` in every branch. The
/// value of any other attribute (the bucket is usually a `Ref`) is never resolved.
fn enables_access_logs(res: &Resource<'_>, item: &Value, path: &str) -> Result<bool, Unresolved> {
    for attribute in res.objects(Some(item), path)? {
        let Some(attribute) = attribute else {
            return Ok(false);
        };
        let keys = field(res, Some(attribute), "Key", path)?;
        if !keys
            .iter()
            .all(|key| key.is_some_and(|key| key.text() == "access_logs.s3.enabled"))
        {
            return Ok(false);
        }
        let values = field(res, Some(attribute), "Value", path)?;
        if !values
            .iter()
            .all(|value| value.and_then(|flag| flag.as_bool()) == Some(true))
        {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nag::testing::{assert_suppressible, status};

    fn alb(attributes: &str) -> String {
        format!(
            "Parameters: {{On: {{Type: String, Default: 'true'}}, Free: {{Type: String}}}}\nConditions: {{C: !Equals [a, b]}}\nResources: {{R: {{Type: AWS::ElasticLoadBalancingV2::LoadBalancer, Properties: {{LoadBalancerAttributes: {attributes}}}}}}}"
        )
    }

    fn clb(policy: &str) -> String {
        format!(
            "Resources: {{R: {{Type: AWS::ElasticLoadBalancing::LoadBalancer, Properties: {{Listeners: [], {policy}}}}}}}"
        )
    }

    #[test]
    fn application_load_balancers() {
        assert_eq!(
            status(
                &alb(
                    "[{Key: access_logs.s3.enabled, Value: 'true'}, {Key: access_logs.s3.bucket, Value: logs}]"
                ),
                &ELB_LOGGING_ENABLED
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &alb("[{Key: access_logs.s3.enabled, Value: !Ref On}]"),
                &ELB_LOGGING_ENABLED
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &alb("[{Key: access_logs.s3.enabled, Value: 'false'}]"),
                &ELB_LOGGING_ENABLED
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &alb("!If [C, [{Key: access_logs.s3.enabled, Value: 'true'}], []]"),
                &ELB_LOGGING_ENABLED
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &alb("[{Key: access_logs.s3.enabled, Value: !Ref Free}]"),
                &ELB_LOGGING_ENABLED
            ),
            "unresolved: LoadBalancerAttributes[0].Value"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::ElasticLoadBalancingV2::LoadBalancer}}",
                &ELB_LOGGING_ENABLED
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &alb("[!If [C, {Key: access_logs.s3.enabled, Value: 'true'}, !Ref AWS::NoValue]]"),
                &ELB_LOGGING_ENABLED
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &alb(
                    "[!If [C, {Key: access_logs.s3.enabled, Value: 'true'}, {Key: access_logs.s3.enabled, Value: !Ref On}]]"
                ),
                &ELB_LOGGING_ENABLED
            ),
            "compliant"
        );
        // The bucket is usually a `Ref`: only the `enabled` attribute's value is resolved.
        assert_eq!(
            status(
                &alb(
                    "[{Key: access_logs.s3.enabled, Value: 'true'}, {Key: access_logs.s3.bucket, Value: !Ref Free}, {Key: access_logs.s3.prefix, Value: !GetAtt X.Y}]"
                ),
                &ELB_LOGGING_ENABLED
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &alb("[{Key: !Ref Free, Value: x}, {Key: access_logs.s3.enabled, Value: 'true'}]"),
                &ELB_LOGGING_ENABLED
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &alb(
                    "[{Key: !Ref Free, Value: 'true'}, {Key: idle_timeout.timeout_seconds, Value: '60'}]"
                ),
                &ELB_LOGGING_ENABLED
            ),
            "unresolved: LoadBalancerAttributes[0].Key"
        );
        assert_eq!(
            status(
                &alb("[{Key: access_logs.s3.bucket, Value: !Ref Free}]"),
                &ELB_LOGGING_ENABLED
            ),
            "non-compliant"
        );
        assert_suppressible(&alb("[]"), "AwsSolutions-ELB2");
    }

    #[test]
    fn classic_load_balancers() {
        assert_eq!(
            status(
                &clb("AccessLoggingPolicy: {Enabled: true, S3BucketName: logs}"),
                &ELB_LOGGING_ENABLED
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &clb("AccessLoggingPolicy: {Enabled: false, S3BucketName: logs}"),
                &ELB_LOGGING_ENABLED
            ),
            "non-compliant"
        );
        assert_eq!(
            status(&clb("Scheme: internal"), &ELB_LOGGING_ENABLED),
            "non-compliant"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::ElasticLoadBalancingV2::Listener}}",
                &ELB_LOGGING_ENABLED
            ),
            "n/a"
        );
    }
}
