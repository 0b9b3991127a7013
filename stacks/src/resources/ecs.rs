//! `AWS::ECS::*`: cluster, Fargate task definition and service.

use serde::Serialize;

use crate::model::Value;
use crate::resources::{Tag, resource};

/// A cluster setting (`containerInsights`).
#[derive(Debug, Clone, Serialize)]
pub struct ClusterSettings {
    /// Setting name.
    #[serde(rename = "Name", skip_serializing_if = "Option::is_none")]
    pub name: Option<Value<String>>,
    /// Setting value.
    #[serde(rename = "Value", skip_serializing_if = "Option::is_none")]
    pub value: Option<Value<String>>,
}

/// `AWS::ECS::Cluster`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Cluster {
    /// Cluster settings.
    #[serde(rename = "ClusterSettings", skip_serializing_if = "Vec::is_empty")]
    pub cluster_settings: Vec<ClusterSettings>,
    /// Capacity providers the cluster's services may use (`FARGATE`, `FARGATE_SPOT`).
    #[serde(rename = "CapacityProviders", skip_serializing_if = "Vec::is_empty")]
    pub capacity_providers: Vec<Value<String>>,
    /// Tags.
    #[serde(rename = "Tags", skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}
resource!(Cluster, "AWS::ECS::Cluster", ClusterAttr { Arn => "Arn" });

/// A container port.
#[derive(Debug, Clone, Serialize)]
pub struct PortMapping {
    /// Port inside the container.
    #[serde(rename = "ContainerPort", skip_serializing_if = "Option::is_none")]
    pub container_port: Option<Value<i64>>,
    /// `tcp` or `udp`.
    #[serde(rename = "Protocol", skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Value<String>>,
    /// Name of the mapping.
    #[serde(rename = "Name", skip_serializing_if = "Option::is_none")]
    pub name: Option<Value<String>>,
    /// `http`, `http2` or `grpc`.
    #[serde(rename = "AppProtocol", skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<Value<String>>,
}

/// An environment variable.
#[derive(Debug, Clone, Serialize)]
pub struct KeyValuePair {
    /// Variable name.
    #[serde(rename = "Name", skip_serializing_if = "Option::is_none")]
    pub name: Option<Value<String>>,
    /// Variable value.
    #[serde(rename = "Value", skip_serializing_if = "Option::is_none")]
    pub value: Option<Value<String>>,
}

impl KeyValuePair {
    /// `name=value`.
    pub fn new(name: &str, value: impl Into<Value<String>>) -> KeyValuePair {
        KeyValuePair {
            name: Some(name.into()),
            value: Some(value.into()),
        }
    }
}

/// A secret injected as an environment variable.
#[derive(Debug, Clone, Serialize)]
pub struct Secret {
    /// Variable name.
    #[serde(rename = "Name")]
    pub name: Value<String>,
    /// Secret ARN, optionally `arn:json-key:version-stage:version-id`.
    #[serde(rename = "ValueFrom")]
    pub value_from: Value<String>,
}

/// Container log configuration.
#[derive(Debug, Clone, Serialize)]
pub struct LogConfiguration {
    /// `awslogs`.
    #[serde(rename = "LogDriver")]
    pub log_driver: Value<String>,
    /// Driver options (`awslogs-group`, `awslogs-region`, `awslogs-stream-prefix`).
    #[serde(
        rename = "Options",
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "pairs"
    )]
    pub options: Vec<(String, Value<String>)>,
}

fn pairs<S: serde::Serializer>(
    items: &[(String, Value<String>)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = serializer.serialize_map(Some(items.len()))?;
    for (key, value) in items {
        map.serialize_entry(key, value)?;
    }
    map.end()
}

/// Container health check.
#[derive(Debug, Clone, Serialize)]
pub struct HealthCheck {
    /// `["CMD", ...]` or `["CMD-SHELL", "..."]`.
    #[serde(rename = "Command", skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<Value<String>>,
    /// Seconds between checks.
    #[serde(rename = "Interval", skip_serializing_if = "Option::is_none")]
    pub interval: Option<Value<i64>>,
    /// Seconds before a check fails.
    #[serde(rename = "Timeout", skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Value<i64>>,
    /// Failures before unhealthy.
    #[serde(rename = "Retries", skip_serializing_if = "Option::is_none")]
    pub retries: Option<Value<i64>>,
    /// Grace period in seconds.
    #[serde(rename = "StartPeriod", skip_serializing_if = "Option::is_none")]
    pub start_period: Option<Value<i64>>,
}

/// One container of a task definition.
#[derive(Debug, Clone, Serialize)]
pub struct ContainerDefinition {
    /// Container name.
    #[serde(rename = "Name")]
    pub name: Value<String>,
    /// Image URI.
    #[serde(rename = "Image")]
    pub image: Value<String>,
    /// The task stops when this container stops.
    #[serde(rename = "Essential", skip_serializing_if = "Option::is_none")]
    pub essential: Option<Value<bool>>,
    /// Ports.
    #[serde(rename = "PortMappings", skip_serializing_if = "Vec::is_empty")]
    pub port_mappings: Vec<PortMapping>,
    /// Plain environment.
    #[serde(rename = "Environment", skip_serializing_if = "Vec::is_empty")]
    pub environment: Vec<KeyValuePair>,
    /// Secret environment.
    #[serde(rename = "Secrets", skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<Secret>,
    /// Logging.
    #[serde(rename = "LogConfiguration", skip_serializing_if = "Option::is_none")]
    pub log_configuration: Option<LogConfiguration>,
    /// Health check.
    #[serde(rename = "HealthCheck", skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    /// User (`uid:gid`) the process runs as.
    #[serde(rename = "User", skip_serializing_if = "Option::is_none")]
    pub user: Option<Value<String>>,
    /// Read-only root file system.
    #[serde(
        rename = "ReadonlyRootFilesystem",
        skip_serializing_if = "Option::is_none"
    )]
    pub readonly_root_filesystem: Option<Value<bool>>,
    /// Extended privileges (never true here).
    #[serde(rename = "Privileged", skip_serializing_if = "Option::is_none")]
    pub privileged: Option<Value<bool>>,
    /// Command override.
    #[serde(rename = "Command", skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<Value<String>>,
    /// Seconds to wait after SIGTERM before SIGKILL.
    #[serde(rename = "StopTimeout", skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<Value<i64>>,
}

/// CPU architecture and OS.
#[derive(Debug, Clone, Serialize)]
pub struct RuntimePlatform {
    /// `X86_64` or `ARM64`.
    #[serde(rename = "CpuArchitecture", skip_serializing_if = "Option::is_none")]
    pub cpu_architecture: Option<Value<String>>,
    /// `LINUX`, ...
    #[serde(
        rename = "OperatingSystemFamily",
        skip_serializing_if = "Option::is_none"
    )]
    pub operating_system_family: Option<Value<String>>,
}

/// `AWS::ECS::TaskDefinition`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TaskDefinition {
    /// Family name.
    #[serde(rename = "Family", skip_serializing_if = "Option::is_none")]
    pub family: Option<Value<String>>,
    /// Task CPU units, e.g. `512`.
    #[serde(rename = "Cpu", skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Value<String>>,
    /// Task memory MiB, e.g. `1024`.
    #[serde(rename = "Memory", skip_serializing_if = "Option::is_none")]
    pub memory: Option<Value<String>>,
    /// `awsvpc` for Fargate.
    #[serde(rename = "NetworkMode", skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<Value<String>>,
    /// `FARGATE`.
    #[serde(
        rename = "RequiresCompatibilities",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub requires_compatibilities: Vec<Value<String>>,
    /// Role the ECS agent uses (pull image, write logs, read secrets).
    #[serde(rename = "ExecutionRoleArn", skip_serializing_if = "Option::is_none")]
    pub execution_role_arn: Option<Value<String>>,
    /// Role the application uses.
    #[serde(rename = "TaskRoleArn", skip_serializing_if = "Option::is_none")]
    pub task_role_arn: Option<Value<String>>,
    /// Containers.
    #[serde(rename = "ContainerDefinitions", skip_serializing_if = "Vec::is_empty")]
    pub container_definitions: Vec<ContainerDefinition>,
    /// Platform.
    #[serde(rename = "RuntimePlatform", skip_serializing_if = "Option::is_none")]
    pub runtime_platform: Option<RuntimePlatform>,
    /// Tags.
    #[serde(rename = "Tags", skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}
resource!(TaskDefinition, "AWS::ECS::TaskDefinition", TaskDefinitionAttr {
    TaskDefinitionArn => "TaskDefinitionArn",
});

/// Subnets and security groups of an `awsvpc` service.
#[derive(Debug, Clone, Serialize)]
pub struct AwsVpcConfiguration {
    /// `ENABLED` or `DISABLED`.
    #[serde(rename = "AssignPublicIp", skip_serializing_if = "Option::is_none")]
    pub assign_public_ip: Option<Value<String>>,
    /// Security groups.
    #[serde(rename = "SecurityGroups", skip_serializing_if = "Vec::is_empty")]
    pub security_groups: Vec<Value<String>>,
    /// Subnets.
    #[serde(rename = "Subnets", skip_serializing_if = "Vec::is_empty")]
    pub subnets: Vec<Value<String>>,
}

/// Network configuration of a service.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkConfiguration {
    /// The `awsvpc` settings (the schema spells it `AwsvpcConfiguration`).
    #[serde(
        rename = "AwsvpcConfiguration",
        skip_serializing_if = "Option::is_none"
    )]
    pub awsvpc_configuration: Option<AwsVpcConfiguration>,
}

/// A target group registration of a service.
#[derive(Debug, Clone, Serialize)]
pub struct LoadBalancer {
    /// Container to register.
    #[serde(rename = "ContainerName", skip_serializing_if = "Option::is_none")]
    pub container_name: Option<Value<String>>,
    /// Its port.
    #[serde(rename = "ContainerPort", skip_serializing_if = "Option::is_none")]
    pub container_port: Option<Value<i64>>,
    /// Target group.
    #[serde(rename = "TargetGroupArn", skip_serializing_if = "Option::is_none")]
    pub target_group_arn: Option<Value<String>>,
}

/// Roll back a deployment that never becomes healthy.
#[derive(Debug, Clone, Serialize)]
pub struct DeploymentCircuitBreaker {
    /// Turn the breaker on.
    #[serde(rename = "Enable")]
    pub enable: Value<bool>,
    /// Roll back when it trips.
    #[serde(rename = "Rollback")]
    pub rollback: Value<bool>,
}

/// Deployment settings.
#[derive(Debug, Clone, Serialize)]
pub struct DeploymentConfiguration {
    /// Circuit breaker.
    #[serde(
        rename = "DeploymentCircuitBreaker",
        skip_serializing_if = "Option::is_none"
    )]
    pub deployment_circuit_breaker: Option<DeploymentCircuitBreaker>,
    /// Upper bound of running tasks during a deployment, in percent.
    #[serde(rename = "MaximumPercent", skip_serializing_if = "Option::is_none")]
    pub maximum_percent: Option<Value<i64>>,
    /// Lower bound of healthy tasks during a deployment, in percent.
    #[serde(
        rename = "MinimumHealthyPercent",
        skip_serializing_if = "Option::is_none"
    )]
    pub minimum_healthy_percent: Option<Value<i64>>,
}

/// One entry of a service's capacity provider strategy.
#[derive(Debug, Clone, Serialize)]
pub struct CapacityProviderStrategyItem {
    /// `FARGATE` or `FARGATE_SPOT`.
    #[serde(rename = "CapacityProvider", skip_serializing_if = "Option::is_none")]
    pub capacity_provider: Option<Value<String>>,
    /// Share of the tasks beyond the bases.
    #[serde(rename = "Weight", skip_serializing_if = "Option::is_none")]
    pub weight: Option<Value<i64>>,
    /// Tasks that always run on this provider.
    #[serde(rename = "Base", skip_serializing_if = "Option::is_none")]
    pub base: Option<Value<i64>>,
}

/// `AWS::ECS::Service`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Service {
    /// Cluster.
    #[serde(rename = "Cluster", skip_serializing_if = "Option::is_none")]
    pub cluster: Option<Value<String>>,
    /// Task definition ARN.
    #[serde(rename = "TaskDefinition", skip_serializing_if = "Option::is_none")]
    pub task_definition: Option<Value<String>>,
    /// `FARGATE`.
    #[serde(rename = "LaunchType", skip_serializing_if = "Option::is_none")]
    pub launch_type: Option<Value<String>>,
    /// Capacity providers instead of a launch type (Fargate Spot).
    #[serde(
        rename = "CapacityProviderStrategy",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub capacity_provider_strategy: Vec<CapacityProviderStrategyItem>,
    /// `ENABLED`: ECS keeps the tasks balanced across the subnets' Availability Zones.
    #[serde(
        rename = "AvailabilityZoneRebalancing",
        skip_serializing_if = "Option::is_none"
    )]
    pub availability_zone_rebalancing: Option<Value<String>>,
    /// Number of tasks.
    #[serde(rename = "DesiredCount", skip_serializing_if = "Option::is_none")]
    pub desired_count: Option<Value<i64>>,
    /// Seconds to ignore failing load balancer health checks after start.
    #[serde(
        rename = "HealthCheckGracePeriodSeconds",
        skip_serializing_if = "Option::is_none"
    )]
    pub health_check_grace_period_seconds: Option<Value<i64>>,
    /// Target group registrations.
    #[serde(rename = "LoadBalancers", skip_serializing_if = "Option::is_none")]
    pub load_balancers: Option<Value<Vec<LoadBalancer>>>,
    /// Networking.
    #[serde(
        rename = "NetworkConfiguration",
        skip_serializing_if = "Option::is_none"
    )]
    pub network_configuration: Option<NetworkConfiguration>,
    /// Deployment settings.
    #[serde(
        rename = "DeploymentConfiguration",
        skip_serializing_if = "Option::is_none"
    )]
    pub deployment_configuration: Option<DeploymentConfiguration>,
    /// `SERVICE` or `TASK_DEFINITION`.
    #[serde(rename = "PropagateTags", skip_serializing_if = "Option::is_none")]
    pub propagate_tags: Option<Value<String>>,
    /// ECS-managed tags on tasks.
    #[serde(
        rename = "EnableECSManagedTags",
        skip_serializing_if = "Option::is_none"
    )]
    pub enable_ecs_managed_tags: Option<Value<bool>>,
    /// Tags.
    #[serde(rename = "Tags", skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}
resource!(Service, "AWS::ECS::Service", ServiceAttr { Name => "Name", ServiceArn => "ServiceArn" });
