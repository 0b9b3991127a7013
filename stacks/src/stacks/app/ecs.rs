//! ECS: the cluster, the app's log group, the task execution role (image pull, logs, the
//! Cognito client secret), the task role (exactly [`TASK_ACTIONS`]), the Fargate task
//! definition and the service behind the ALB.

use crate::config::StackConfig;
use crate::model::template::HasLogicalId;
use crate::model::{Expr, Handle, Pseudo, Template, Value, s, strs};
use crate::resources::dynamodb::{Table, TableAttr};
use crate::resources::ec2::SecurityGroupAttr;
use crate::resources::ecs::{
    AwsVpcConfiguration, CapacityProviderStrategyItem, Cluster, ClusterSettings,
    ContainerDefinition, DeploymentCircuitBreaker, DeploymentConfiguration, HealthCheck,
    KeyValuePair, LoadBalancer as ServiceLoadBalancer, LogConfiguration, NetworkConfiguration,
    PortMapping, RuntimePlatform, Secret as EcsSecret, Service, TaskDefinition,
};
use crate::resources::iam::{Policy, PolicyDocument, Role, RoleAttr, Statement};
use crate::resources::logs::{LogGroup, LogGroupAttr};
use crate::stacks::app::buckets::Buckets;
use crate::stacks::app::cognito::Auth;
use crate::stacks::app::networking::Networking;
use crate::stacks::app::{
    APP_PORT, APP_USER, BATCH_PREFIX, BUCKET_ACTIONS, Imports, KEY_ACTIONS, Parameters,
    TABLE_ACTIONS, TABLE_INDEXES, TASK_ACTIONS, app_tags, arn,
};
use crate::stacks::toolkit::repository_name;
use crate::stacks::{checkov, kms};

/// Key of the service's metadata entry that makes it wait for the listener while running.
pub const LISTENER_DEPENDENCY: &str = "ListenerWhenRunning";

/// Handles of the ECS resources and their roles.
pub(super) struct Compute {
    pub log_group: Handle<LogGroup>,
    pub cluster: Handle<Cluster>,
    pub execution_role: Handle<Role>,
    pub task_role: Handle<Role>,
    pub task_definition: Handle<TaskDefinition>,
    pub service: Handle<Service>,
}

// The handles of every earlier part the service uses, like the other parts' `add`.
#[allow(clippy::too_many_arguments)]
pub(super) fn add(
    t: &mut Template,
    cfg: &StackConfig,
    imports: &Imports,
    params: &Parameters,
    buckets: &Buckets,
    table: &Handle<Table>,
    auth: &Auth,
    net: &Networking,
    batch_role: &Handle<Role>,
) -> Compute {
    let prefix = cfg.prefix.as_str();
    let private_subnets = imports.private_subnets.clone();
    let public_egress = cfg.task_egress == crate::config::TaskEgress::PublicIp;
    let image = &params.image;
    let data_bucket = &buckets.data_bucket;
    let Auth {
        user_pool,
        client,
        client_secret,
    } = auth;
    let Networking {
        task_sg,
        target_group,
        listener,
        ..
    } = net;
    // ECS.
    let log_group = t.add(
        "AppLogGroup",
        LogGroup {
            log_group_name: Some(s(format!("/ecs/{prefix}-app"))),
            retention_in_days: Some(30.into()),
            kms_key_id: imports.kms_key.clone(),
            tags: app_tags(cfg),
        },
    );
    checkov::skip_without_cmk(t, cfg, &log_group, "CKV_AWS_158");
    let cluster = t.add(
        "Cluster",
        Cluster {
            cluster_settings: vec![ClusterSettings {
                name: Some(s("containerInsights")),
                value: Some(s("enabled")),
            }],
            capacity_providers: if cfg.fargate_spot {
                vec![s("FARGATE"), s("FARGATE_SPOT")]
            } else {
                Vec::new()
            },
            tags: app_tags(cfg),
        },
    );
    let execution_role = t.add(
        "TaskExecutionRole",
        Role {
            assume_role_policy_document: PolicyDocument::assume_by_service_for_this_account(
                "ecs-tasks.amazonaws.com",
            ),
            description: Some(s(
                "ECS agent: pull the image, write logs, read the Cognito client secret",
            )),
            managed_policy_arns: Vec::new(),
            policies: vec![Policy {
                policy_name: s("task-execution"),
                policy_document: PolicyDocument::new(
                    vec![
                        // GetAuthorizationToken has no resource-level permissions.
                        Statement::allow(&["ecr:GetAuthorizationToken"], strs(&["*"]))
                            .with_sid("EcrLogin"),
                        Statement::allow(
                            &[
                                "ecr:BatchCheckLayerAvailability",
                                "ecr:BatchGetImage",
                                "ecr:GetDownloadUrlForLayer",
                            ],
                            // Only the toolkit stack's repository, where the deployer pushes.
                            vec![arn(&format!(
                                "ecr:${{AWS::Region}}:${{AWS::AccountId}}:repository/{}",
                                repository_name(prefix)
                            ))],
                        )
                        .with_sid("EcrPull"),
                        Statement::allow(
                            &["logs:CreateLogStream", "logs:PutLogEvents"],
                            vec![log_group.get_att(LogGroupAttr::Arn).into()],
                        )
                        .with_sid("Logs"),
                        Statement::allow(
                            &["secretsmanager:GetSecretValue"],
                            vec![client_secret.r#ref().into()],
                        )
                        .with_sid("CognitoClientSecret"),
                    ]
                    .into_iter()
                    .chain(
                        imports
                            .kms_key
                            .clone()
                            .map(|key| kms::use_statement(&KEY_ACTIONS[0..1], key)),
                    )
                    .collect(),
                ),
            }],
            tags: app_tags(cfg),
        },
    );
    let task_role = t.add(
        "TaskRole",
        Role {
            assume_role_policy_document: PolicyDocument::assume_by_service_for_this_account(
                "ecs-tasks.amazonaws.com",
            ),
            description: Some(s(
                "llm-eval app: invoke models, list models and endpoints, read the OpenAI key, use its store table and data bucket",
            )),
            managed_policy_arns: Vec::new(),
            policies: vec![Policy {
                policy_name: s("llm-eval-app"),
                policy_document: PolicyDocument::new(vec![
                    // Any region: cross-region inference profiles route to foundation models
                    // in other regions of the same geography.
                    // CreateModelInvocationJob is also authorized on the model a job names.
                    Statement::allow(
                        &[TASK_ACTIONS[0], TASK_ACTIONS[1], TASK_ACTIONS[6]],
                        vec![
                            arn("bedrock:*::foundation-model/*"),
                            arn("bedrock:*:${AWS::AccountId}:inference-profile/*"),
                        ],
                    )
                    .with_sid("InvokeBedrock"),
                    // These list actions do not support resource-level permissions.
                    Statement::allow(
                        &[TASK_ACTIONS[2], TASK_ACTIONS[4], TASK_ACTIONS[8]],
                        strs(&["*"]),
                    )
                    .with_sid("ListModelsAndEndpoints"),
                    Statement::allow(
                        &[TASK_ACTIONS[3]],
                        vec![arn("sagemaker:${AWS::Region}:${AWS::AccountId}:endpoint/*")],
                    )
                    .with_sid("InvokeSageMaker"),
                    // Secrets Manager appends a 6-character suffix to secret ARNs.
                    Statement::allow(
                        &[TASK_ACTIONS[5]],
                        vec![arn(&format!(
                            "secretsmanager:${{AWS::Region}}:${{AWS::AccountId}}:secret:{}-??????",
                            cfg.openai_secret_name
                        ))],
                    )
                    .with_sid("ReadOpenAiKey"),
                    // The store: the table and its indexes, the data bucket's objects.
                    Statement::allow(
                        TABLE_ACTIONS,
                        std::iter::once(table.get_att(TableAttr::Arn).into())
                            .chain(TABLE_INDEXES.iter().map(|index| {
                                Expr::sub_with(
                                    format!("${{Table}}/index/{index}"),
                                    vec![("Table", table.get_att(TableAttr::Arn))],
                                )
                                .into()
                            }))
                            .collect(),
                    )
                    .with_sid("Store"),
                    Statement::allow(
                        BUCKET_ACTIONS,
                        // The bucket's logical id appears in the nag suppression of this wildcard.
                        vec![
                            Expr::sub(format!("${{{}.Arn}}/*", data_bucket.logical_id().as_str())).into(),
                        ],
                    )
                    .with_sid("DataObjects"),
                    // Batch inference: jobs of this account and region, on the models the
                    // jobs name (CreateModelInvocationJob is authorized on both).
                    Statement::allow(
                        &[TASK_ACTIONS[6], TASK_ACTIONS[7], TASK_ACTIONS[9]],
                        vec![arn(
                            "bedrock:${AWS::Region}:${AWS::AccountId}:model-invocation-job/*",
                        )],
                    )
                    .with_sid("BatchJobs"),
                    Statement {
                        condition: Some(serde_json::json!({
                            "StringEquals": {"iam:PassedToService": "bedrock.amazonaws.com"}
                        })),
                        ..Statement::allow(
                            &[TASK_ACTIONS[10]],
                            vec![batch_role.get_att(RoleAttr::Arn).into()],
                        )
                        .with_sid("PassBatchRole")
                    },
                    // Reading a job's outputs lists its output prefix.
                    Statement {
                        condition: Some(serde_json::json!({
                            "StringLike": {"s3:prefix": [format!("{BATCH_PREFIX}/*")]}
                        })),
                        ..Statement::allow(
                            &["s3:ListBucket"],
                            vec![data_bucket.get_att(crate::resources::s3::BucketAttr::Arn).into()],
                        )
                        .with_sid("ListBatchPrefix")
                    },
                ]
                .into_iter()
                .chain(
                    imports
                        .kms_key
                        .clone()
                        .map(|key| kms::use_statement(KEY_ACTIONS, key)),
                )
                .collect()),
            }],
            tags: app_tags(cfg),
        },
    );
    let container = ContainerDefinition {
        name: s("app"),
        image: image.r#ref().into(),
        essential: Some(true.into()),
        port_mappings: vec![PortMapping {
            container_port: Some(APP_PORT.into()),
            protocol: Some(s("tcp")),
            name: Some(s("http")),
            app_protocol: Some(s("http")),
        }],
        environment: vec![
            KeyValuePair::new("LLM_EVAL_BIND", format!("0.0.0.0:{APP_PORT}")),
            KeyValuePair::new("AWS_REGION", Value::from(Pseudo::Region)),
            KeyValuePair::new("COGNITO_USER_POOL_ID", Value::from(user_pool.r#ref())),
            KeyValuePair::new("COGNITO_CLIENT_ID", Value::from(client.r#ref())),
            KeyValuePair::new("DATA_BUCKET", Value::from(data_bucket.r#ref())),
            KeyValuePair::new(
                "LLM_EVAL_STORE",
                Value::from(Expr::sub_with(
                    "dynamodb:${Table}",
                    vec![("Table", table.r#ref())],
                )),
            ),
            KeyValuePair::new("OPENAI_SECRET_NAME", cfg.openai_secret_name.as_str()),
            // Batch runs: the bucket and prefix of the jobs' objects, the role Bedrock assumes.
            KeyValuePair::new("LLM_EVAL_BATCH_BUCKET", Value::from(data_bucket.r#ref())),
            KeyValuePair::new(
                "LLM_EVAL_BATCH_ROLE_ARN",
                Value::from(batch_role.get_att(RoleAttr::Arn)),
            ),
            // CloudFront appends the viewer's address to X-Forwarded-For and the ALB appends
            // CloudFront's: the login's attempt limits count the viewer, two hops out.
            KeyValuePair::new("LLM_EVAL_TRUSTED_PROXIES", "2"),
            // The Cognito group of facilitators (the user pool's `FacilitatorsGroup`).
            KeyValuePair::new("LLM_EVAL_FACILITATOR_GROUP", cfg.facilitator_group.as_str()),
        ],
        secrets: vec![EcsSecret {
            name: s("COGNITO_CLIENT_SECRET"),
            value_from: Expr::sub_with(
                "${Secret}:client_secret::",
                vec![("Secret", client_secret.r#ref())],
            )
            .into(),
        }],
        log_configuration: Some(LogConfiguration {
            log_driver: s("awslogs"),
            options: vec![
                ("awslogs-group".into(), log_group.r#ref().into()),
                ("awslogs-region".into(), Pseudo::Region.into()),
                ("awslogs-stream-prefix".into(), s("app")),
            ],
        }),
        // The image ships `llm-eval healthcheck`, which GETs /healthz on the local port, so
        // the check needs no curl or shell in the image.
        health_check: Some(HealthCheck {
            command: strs(&["CMD", "llm-eval", "healthcheck"]),
            interval: Some(15.into()),
            timeout: Some(5.into()),
            retries: Some(3.into()),
            start_period: Some(20.into()),
        }),
        user: Some(s(APP_USER)),
        readonly_root_filesystem: None,
        // Not set at all: `privileged` is one of the parameters ECS documents as not valid in
        // Fargate task definitions (containers there are never privileged).
        privileged: None,
        command: Vec::new(),
        stop_timeout: Some(30.into()),
    };
    let task_definition = t.add(
        "TaskDefinition",
        TaskDefinition {
            family: Some(s(format!("{prefix}-app"))),
            cpu: Some(s(cfg.task_size.cpu().to_string())),
            memory: Some(s(cfg.task_size.memory().to_string())),
            network_mode: Some(s("awsvpc")),
            requires_compatibilities: strs(&["FARGATE"]),
            execution_role_arn: Some(execution_role.get_att(RoleAttr::Arn).into()),
            task_role_arn: Some(task_role.get_att(RoleAttr::Arn).into()),
            container_definitions: vec![container],
            runtime_platform: Some(RuntimePlatform {
                cpu_architecture: Some(s("X86_64")),
                operating_system_family: Some(s("LINUX")),
            }),
            tags: app_tags(cfg),
        },
    );
    let service = t.add(
        "Service",
        Service {
            cluster: Some(cluster.r#ref().into()),
            task_definition: Some(task_definition.r#ref().into()),
            // Fargate Spot is a capacity provider, which excludes a launch type. An interrupted
            // task's runs are taken over by the next task through the store's run lease.
            launch_type: (!cfg.fargate_spot).then(|| s("FARGATE")),
            capacity_provider_strategy: if cfg.fargate_spot {
                vec![CapacityProviderStrategyItem {
                    capacity_provider: Some(s("FARGATE_SPOT")),
                    weight: Some(1.into()),
                    base: None,
                }]
            } else {
                Vec::new()
            },
            // No task while `deployer pause` holds the stack.
            desired_count: Some(
                params
                    .running
                    .if_(Expr::Int(i64::from(cfg.task_count)), Expr::Int(0))
                    .into(),
            ),
            // The subnets are in two Availability Zones; Fargate spreads the tasks over them
            // and rebalancing keeps them spread after a zone recovers.
            availability_zone_rebalancing: Some(s("ENABLED")),
            // The load balancer exists only while running (pause deletes it): ECS adds and
            // removes a rolling-update service's load balancers in place, and the grace period
            // is valid only with one.
            health_check_grace_period_seconds: Some(Value::if_(
                &params.running,
                Value::Lit(60),
                Value::no_value(),
            )),
            load_balancers: Some(Value::if_(
                &params.running,
                Value::Lit(vec![ServiceLoadBalancer {
                    container_name: Some(s("app")),
                    container_port: Some(APP_PORT.into()),
                    target_group_arn: Some(target_group.r#ref().into()),
                }]),
                Value::no_value(),
            )),
            network_configuration: Some(NetworkConfiguration {
                awsvpc_configuration: Some(AwsVpcConfiguration {
                    // With public egress the task's own public address is its way out; its
                    // security group still admits only the load balancer.
                    assign_public_ip: Some(s(if public_egress { "ENABLED" } else { "DISABLED" })),
                    security_groups: vec![task_sg.get_att(SecurityGroupAttr::GroupId).into()],
                    subnets: if public_egress {
                        imports.public_subnets.clone()
                    } else {
                        private_subnets
                    },
                }),
            }),
            deployment_configuration: Some(DeploymentConfiguration {
                deployment_circuit_breaker: Some(DeploymentCircuitBreaker {
                    enable: true.into(),
                    rollback: true.into(),
                }),
                maximum_percent: Some(200.into()),
                minimum_healthy_percent: Some(100.into()),
            }),
            propagate_tags: Some(s("SERVICE")),
            enable_ecs_managed_tags: Some(true.into()),
            tags: app_tags(cfg),
        },
    );
    // The target group must be attached to the load balancer before a service registers in it.
    // The listener exists only while running, and a `DependsOn` on a resource whose condition
    // is false fails the template, so the dependency is a reference in the service's metadata
    // under the same condition (CloudFormation orders resources by every reference).
    if let Some(metadata) = t.metadata_mut(&service) {
        metadata.insert(
            LISTENER_DEPENDENCY.to_owned(),
            params
                .running
                .if_(listener.r#ref(), Expr::str(""))
                .to_json(),
        );
    }
    Compute {
        log_group,
        cluster,
        execution_role,
        task_role,
        task_definition,
        service,
    }
}
