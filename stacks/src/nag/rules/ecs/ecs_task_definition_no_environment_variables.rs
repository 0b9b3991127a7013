//! `AwsSolutions-ECS2`: container definitions do not set `Environment` directly.

use super::{TASK_DEFINITION, containers};
use crate::nag::rules::verdict;
use crate::nag::{CheckResult, Compliance, Level, Resource, Rule};

/// cdk-nag `ECSTaskDefinitionNoEnvironmentVariables`.
pub const ECS_TASK_DEFINITION_NO_ENVIRONMENT_VARIABLES: Rule = Rule {
    id: "AwsSolutions-ECS2",
    name: "ECSTaskDefinitionNoEnvironmentVariables",
    level: Level::Error,
    info: "A container of this task definition gets plain environment variables.",
    explanation: "Plain `Environment` values are visible to anyone who can describe the task definition, and changing one needs a new revision and deployment. \
Inject configuration and secrets with `Secrets` (from Secrets Manager or SSM Parameter Store) instead; any `Environment` key, even an empty list, is flagged.",
    check: Some(check),
};

fn check(res: &Resource<'_>) -> CheckResult {
    if res.resource_type != TASK_DEFINITION {
        return Ok(Compliance::NotApplicable);
    }
    verdict(containers(res)?.iter().any(|(_, container)| {
        res.variants(container.get("Environment"))
            .into_iter()
            .any(|variant| variant.is_some())
    }))
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
                &task_definition("{Name: app, Secrets: [{Name: K, ValueFrom: arn}]}"),
                &ECS_TASK_DEFINITION_NO_ENVIRONMENT_VARIABLES
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &task_definition("{Name: app, Environment: [{Name: A, Value: b}]}"),
                &ECS_TASK_DEFINITION_NO_ENVIRONMENT_VARIABLES
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &task_definition(
                    "{Name: app, Environment: !If [C, [{Name: A, Value: b}], !Ref AWS::NoValue]}"
                ),
                &ECS_TASK_DEFINITION_NO_ENVIRONMENT_VARIABLES
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &task_definition(
                    "{Name: app, Environment: !If [C, !Ref AWS::NoValue, !Ref AWS::NoValue]}"
                ),
                &ECS_TASK_DEFINITION_NO_ENVIRONMENT_VARIABLES
            ),
            "compliant"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::ECS::TaskDefinition, Properties: {ContainerDefinitions: !GetAtt X.Y}}}",
                &ECS_TASK_DEFINITION_NO_ENVIRONMENT_VARIABLES
            ),
            "unresolved: ContainerDefinitions"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::ECS::Cluster}}",
                &ECS_TASK_DEFINITION_NO_ENVIRONMENT_VARIABLES
            ),
            "n/a"
        );
        assert_suppressible(
            &task_definition("{Name: app, Environment: []}"),
            "AwsSolutions-ECS2",
        );
    }
}
