//! `AwsSolutions-ECS4`: clusters have CloudWatch Container Insights enabled.

use crate::nag::rules::{field, verdict};
use crate::nag::{CheckResult, Compliance, Level, Resource, Rule};

/// cdk-nag `ECSClusterCloudWatchContainerInsights`.
pub const ECS_CLUSTER_CONTAINER_INSIGHTS: Rule = Rule {
    id: "AwsSolutions-ECS4",
    name: "ECSClusterCloudWatchContainerInsights",
    level: Level::Error,
    info: "Container Insights is not enabled on this ECS cluster.",
    explanation: "Container Insights collects per-task and per-service CPU, memory, network and restart metrics that show how the application behaves. \
Add `ClusterSettings: [{Name: containerInsights, Value: enabled}]` (or `enhanced`).",
    check: Some(check),
};

fn check(res: &Resource<'_>) -> CheckResult {
    if res.resource_type != "AWS::ECS::Cluster" {
        return Ok(Compliance::NotApplicable);
    }
    // Every variant of the settings list must enable insights.
    for list in res.lists(res.prop("ClusterSettings"), "ClusterSettings")? {
        let Some(list) = list else {
            return verdict(true);
        };
        let mut enabled = false;
        for (setting_idx, setting) in list.iter().enumerate() {
            let path = format!("ClusterSettings[{setting_idx}]");
            // The setting enables insights only if it does so in every branch.
            let mut setting_enables = true;
            for setting in res.objects(Some(setting), &path)? {
                let Some(setting) = setting else {
                    setting_enables = false;
                    continue;
                };
                let names = field(res, Some(setting), "Name", &path)?;
                let values = field(res, Some(setting), "Value", &path)?;
                let is_insights = names
                    .iter()
                    .all(|name| name.is_some_and(|name| name.text() == "containerInsights"));
                let is_on = values.iter().all(|value| {
                    value.is_some_and(|value| {
                        matches!(value.text().as_str(), "enabled" | "enhanced")
                    })
                });
                setting_enables &= is_insights && is_on;
            }
            enabled |= setting_enables;
        }
        if !enabled {
            return verdict(true);
        }
    }
    verdict(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nag::testing::{assert_suppressible, status};

    fn cluster(props: &str) -> String {
        format!(
            "Parameters: {{P: {{Type: String, Default: enhanced}}, Q: {{Type: String}}}}\nConditions: {{C: !Equals [a, b]}}\nResources: {{R: {{Type: AWS::ECS::Cluster, Properties: {props}}}}}"
        )
    }

    #[test]
    fn cases() {
        assert_eq!(
            status(
                &cluster("{ClusterSettings: [{Name: containerInsights, Value: enabled}]}"),
                &ECS_CLUSTER_CONTAINER_INSIGHTS
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &cluster("{ClusterSettings: [{Name: containerInsights, Value: !Ref P}]}"),
                &ECS_CLUSTER_CONTAINER_INSIGHTS
            ),
            "compliant"
        );
        assert_eq!(
            status(&cluster("{}"), &ECS_CLUSTER_CONTAINER_INSIGHTS),
            "non-compliant"
        );
        assert_eq!(
            status(
                &cluster("{ClusterSettings: [{Name: containerInsights, Value: disabled}]}"),
                &ECS_CLUSTER_CONTAINER_INSIGHTS
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &cluster(
                    "{ClusterSettings: !If [C, [{Name: containerInsights, Value: enabled}], []]}"
                ),
                &ECS_CLUSTER_CONTAINER_INSIGHTS
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &cluster("{ClusterSettings: [{Name: containerInsights, Value: !Ref Q}]}"),
                &ECS_CLUSTER_CONTAINER_INSIGHTS
            ),
            "unresolved: ClusterSettings[0].Value"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::ECS::Service}}",
                &ECS_CLUSTER_CONTAINER_INSIGHTS
            ),
            "n/a"
        );
        assert_eq!(
            status(
                &cluster(
                    "{ClusterSettings: [!If [C, {Name: containerInsights, Value: enabled}, {Name: containerInsights, Value: disabled}]]}"
                ),
                &ECS_CLUSTER_CONTAINER_INSIGHTS
            ),
            "non-compliant"
        );
        assert_suppressible(&cluster("{}"), "AwsSolutions-ECS4");
    }
}
