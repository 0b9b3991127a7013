//! `AwsSolutions-ECS7`: every container has a log driver.

use crate::nag::rules::{items, verdict};
use crate::nag::{CheckResult, Compliance, Level, Resource, Rule};

/// cdk-nag `ECSTaskDefinitionContainerLogging`.
pub const ECS_TASK_DEFINITION_CONTAINER_LOGGING: Rule = Rule {
    id: "AwsSolutions-ECS7",
    name: "ECSTaskDefinitionContainerLogging",
    level: Level::Error,
    info: "A container of this task definition has no log driver.",
    explanation: "Without a log driver a container's output is lost when the task stops, and incidents cannot be investigated. \
Give every container definition a `LogConfiguration` with a `LogDriver` (at least `awslogs`).",
    check: Some(check),
};

fn check(res: &Resource<'_>) -> CheckResult {
    if res.resource_type != "AWS::ECS::TaskDefinition" {
        return Ok(Compliance::NotApplicable);
    }
    for (path, container) in items(
        res,
        res.prop("ContainerDefinitions"),
        "ContainerDefinitions",
    )? {
        let config_path = format!("{path}.LogConfiguration");
        for config in res.objects(container.get("LogConfiguration"), &config_path)? {
            if config.is_none_or(|config| res.may_be_absent(config.get("LogDriver"))) {
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

    fn td(container: &str) -> String {
        format!(
            "Conditions: {{C: !Equals [a, b]}}\nResources: {{R: {{Type: AWS::ECS::TaskDefinition, Properties: {{ContainerDefinitions: [{container}]}}}}}}"
        )
    }

    #[test]
    fn cases() {
        assert_eq!(
            status(
                &td("{Name: a, LogConfiguration: {LogDriver: awslogs}}"),
                &ECS_TASK_DEFINITION_CONTAINER_LOGGING
            ),
            "compliant"
        );
        assert_eq!(
            status(&td("{Name: a}"), &ECS_TASK_DEFINITION_CONTAINER_LOGGING),
            "non-compliant"
        );
        assert_eq!(
            status(
                &td(
                    "{Name: a, LogConfiguration: !If [C, {LogDriver: awslogs}, !Ref AWS::NoValue]}"
                ),
                &ECS_TASK_DEFINITION_CONTAINER_LOGGING
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &td("{Name: a, LogConfiguration: !GetAtt X.Y}"),
                &ECS_TASK_DEFINITION_CONTAINER_LOGGING
            ),
            "unresolved: ContainerDefinitions[0].LogConfiguration"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::ECS::Service}}",
                &ECS_TASK_DEFINITION_CONTAINER_LOGGING
            ),
            "n/a"
        );
        assert_suppressible(&td("{Name: a}"), "AwsSolutions-ECS7");
    }
}
