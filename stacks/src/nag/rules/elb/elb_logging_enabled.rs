//! `AwsSolutions-ELB2`: load balancers (classic and v2) write access logs.

use super::CLB;
use crate::nag::rules::verdict;
use crate::nag::{CheckResult, Compliance, Level, Resource, Rule};

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
                let enabled = res.scalars(policy.get("Enabled"), "AccessLoggingPolicy.Enabled")?;
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
                for (attribute_idx, item) in list.iter().enumerate() {
                    let path = format!("LoadBalancerAttributes[{attribute_idx}]");
                    // The attribute enables logging only if it does so in every branch.
                    let mut item_enables = true;
                    for attribute in res.objects(Some(item), &path)? {
                        let Some(attribute) = attribute else {
                            item_enables = false;
                            continue;
                        };
                        let keys = res.scalars(attribute.get("Key"), &format!("{path}.Key"))?;
                        let values =
                            res.scalars(attribute.get("Value"), &format!("{path}.Value"))?;
                        let is_access_logs = keys.iter().all(|key| {
                            key.is_some_and(|key| key.text() == "access_logs.s3.enabled")
                        });
                        let is_true = values
                            .iter()
                            .all(|value| value.and_then(|flag| flag.as_bool()) == Some(true));
                        item_enables &= is_access_logs && is_true;
                    }
                    enabled |= item_enables;
                }
                if !enabled {
                    return verdict(true);
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
