//! `AwsSolutions-ECS7`: every container has a log driver.

use super::{TASK_DEFINITION, containers};
use crate::nag::rules::verdict;
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
    if res.resource_type != TASK_DEFINITION {
        return Ok(Compliance::NotApplicable);
    }
    for (path, container) in containers(res)? {
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
    use crate::nag::rules::ecs::task_definition;
    use crate::nag::testing::{assert_suppressible, status};

    #[test]
    fn cases() {
        assert_eq!(
            status(
                &task_definition("{Name: a, LogConfiguration: {LogDriver: awslogs}}"),
                &ECS_TASK_DEFINITION_CONTAINER_LOGGING
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &task_definition("{Name: a}"),
                &ECS_TASK_DEFINITION_CONTAINER_LOGGING
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &task_definition(
                    "{Name: a, LogConfiguration: !If [C, {LogDriver: awslogs}, !Ref AWS::NoValue]}"
                ),
                &ECS_TASK_DEFINITION_CONTAINER_LOGGING
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &task_definition("{Name: a, LogConfiguration: !GetAtt X.Y}"),
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
        assert_suppressible(&task_definition("{Name: a}"), "AwsSolutions-ECS7");
    }
}
