//! ECS rules: container insights, container logging, no plaintext environment variables.

mod ecs_cluster_container_insights;
mod ecs_task_definition_container_logging;
mod ecs_task_definition_no_environment_variables;

pub use ecs_cluster_container_insights::ECS_CLUSTER_CONTAINER_INSIGHTS;
pub use ecs_task_definition_container_logging::ECS_TASK_DEFINITION_CONTAINER_LOGGING;
pub use ecs_task_definition_no_environment_variables::ECS_TASK_DEFINITION_NO_ENVIRONMENT_VARIABLES;

use crate::nag::rules::{Located, items};
use crate::nag::{Resource, Unresolved};

/// CloudFormation type of a task definition.
pub(crate) const TASK_DEFINITION: &str = "AWS::ECS::TaskDefinition";

/// Every container definition of a task definition, with its path (`ContainerDefinitions[0]`).
pub(crate) fn containers<'a>(res: &Resource<'a>) -> Result<Vec<Located<'a>>, Unresolved> {
    items(
        res,
        res.prop("ContainerDefinitions"),
        "ContainerDefinitions",
    )
}

/// A task definition `R` with one container definition, for the container rules' tests.
#[cfg(test)]
pub(crate) fn task_definition(container: &str) -> String {
    format!(
        "Conditions: {{C: !Equals [a, b]}}\nResources: {{R: {{Type: AWS::ECS::TaskDefinition, Properties: {{ContainerDefinitions: [{container}]}}}}}}"
    )
}
