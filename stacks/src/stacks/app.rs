//! The app stack: the `llm-eval` web app on ECS Fargate behind an internal ALB that only
//! CloudFront can reach (through a CloudFront VPC origin), a Cognito user pool with a
//! confidential app client, the data bucket, and the secrets the task reads.
//!
//! Security invariants, each checked by the tests and the cfn-lint run:
//! - nothing accepts traffic from `0.0.0.0/0`: the ALB is `internal` and its security group only
//!   admits CloudFront's origin-facing prefix list; tasks only admit the ALB;
//! - the Cognito client secret never appears in the template or its outputs: CloudFormation
//!   copies it at deploy time (`Fn::GetAtt Client.ClientSecret`) into a Secrets Manager secret
//!   that ECS injects into the container (`Secrets`), so it only lives in Cognito, Secrets
//!   Manager and the task's environment;
//! - the task role holds exactly the actions the app calls (see [`TASK_ACTIONS`]);
//! - the ALB writes access logs to the (SSE-S3, TLS-only) logs bucket under [`ALB_LOG_PREFIX`],
//!   and is created only after the bucket policy that lets ELB write there;
//! - no value is random at synth time, so a re-synth never shows drift.

use crate::config::StackConfig;
use crate::model::{
    Expr, Output, Parameter, Policy as Retention, Pseudo, Template, Value, s, strs,
};
use crate::nag::{NagSuppress, NagSuppression};
use crate::resources::cloudfront::{
    DefaultCacheBehavior, Distribution, DistributionAttr, DistributionConfig, Logging, Origin,
    ViewerCertificate, VpcOrigin, VpcOriginAttr, VpcOriginConfig, VpcOriginEndpointConfig,
};
use crate::resources::cognito::{
    AccountRecoverySetting, AdminCreateUserConfig, PasswordPolicy, Policies, RecoveryOption,
    TokenValidityUnits, UserPool, UserPoolAddOns, UserPoolClient, UserPoolClientAttr,
    UsernameConfiguration,
};
use crate::resources::ec2::{
    Egress, Ingress, SecurityGroup, SecurityGroupAttr, SecurityGroupIngress,
};
use crate::resources::ecs::{
    AwsVpcConfiguration, Cluster, ClusterSettings, ContainerDefinition, DeploymentCircuitBreaker,
    DeploymentConfiguration, HealthCheck, KeyValuePair, LoadBalancer as ServiceLoadBalancer,
    LogConfiguration, NetworkConfiguration, PortMapping, RuntimePlatform, Secret as EcsSecret,
    Service, ServiceAttr, TaskDefinition,
};
use crate::resources::elbv2::{
    Action, Attribute, Listener, LoadBalancer, LoadBalancerAttr, Matcher, TargetGroup,
};
use crate::resources::iam::{Effect, Policy, PolicyDocument, Principal, Role, RoleAttr, Statement};
use crate::resources::logs::{LogGroup, LogGroupAttr};
use crate::resources::s3::{
    AbortIncompleteMultipartUpload, Bucket, BucketAttr, BucketEncryption, BucketPolicy,
    LifecycleConfiguration, LoggingConfiguration, NoncurrentVersionExpiration, OwnershipControls,
    OwnershipControlsRule, PublicAccessBlockConfiguration, Rule, VersioningConfiguration,
};
use crate::resources::secretsmanager::Secret;
use crate::stacks::network::NetworkExports;
use crate::stacks::{StackKind, tags};

/// Port the app listens on inside the container.
pub const APP_PORT: i64 = 8080;

/// Health endpoint of the app (target group and container health checks).
pub const HEALTH_PATH: &str = "/healthz";

/// Numeric user and group the container runs as (not root).
pub const APP_USER: &str = "10001:10001";

/// Managed cache policy `Managed-CachingDisabled`.
pub const CACHING_DISABLED: &str = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad";

/// Managed origin request policy `Managed-AllViewerExceptHostHeader`: forwards every viewer
/// header, cookie and query string except `Host`, so the app sees what the browser sent
/// (including WebSocket upgrade headers) and the ALB sees its own host name.
pub const ALL_VIEWER_EXCEPT_HOST_HEADER: &str = "b689b0a8-53d0-40ab-baf2-68738e2966ac";

/// Managed response headers policy `Managed-SecurityHeadersPolicy` (HSTS, nosniff, frame
/// options, XSS protection, referrer policy).
pub const SECURITY_HEADERS: &str = "67f7725c-6f97-4210-82d7-5512b31e9d03";

/// Key prefix of the internal ALB's access logs in the logs bucket. ELB appends
/// `AWSLogs/<account>/elasticloadbalancing/<region>/...`; the prefix must not contain `AWSLogs`.
pub const ALB_LOG_PREFIX: &str = "alb";

/// Service principal that delivers ELB access logs to S3. AWS's page "Enable access logs for
/// your Application Load Balancer" recommends it for every Region; the older per-Region ELB
/// account policy (`arn:aws:iam::<elb-account-id>:root`, Regions available before August 2022)
/// is still supported but documented as legacy, so no Region → account table is needed and the
/// template stays Region-agnostic.
pub const ELB_LOG_DELIVERY: &str = "logdelivery.elasticloadbalancing.amazonaws.com";

/// The task role's actions: model invocation (these also authorize the Converse APIs),
/// model and endpoint listing, and reading the OpenAI key.
pub const TASK_ACTIONS: &[&str] = &[
    "bedrock:InvokeModel",
    "bedrock:InvokeModelWithResponseStream",
    "bedrock:ListFoundationModels",
    "sagemaker:InvokeEndpoint",
    "sagemaker:ListEndpoints",
    "secretsmanager:GetSecretValue",
];

fn arn(path: &str) -> Value<String> {
    Expr::sub(format!("arn:${{AWS::Partition}}:{path}")).into()
}

/// Denies every S3 request that does not use TLS.
fn tls_only(bucket_arn: Expr) -> Statement {
    Statement {
        sid: Some("DenyInsecureTransport".into()),
        effect: Effect::Deny,
        principal: Some(Principal::All),
        action: vec!["s3:*".into()],
        resource: vec![
            bucket_arn.clone().into(),
            Expr::join("", vec![bucket_arn, Expr::str("/*")]).into(),
        ],
        condition: Some(serde_json::json!({"Bool": {"aws:SecureTransport": "false"}})),
    }
}

/// Builds the app template.
pub fn build(cfg: &StackConfig, network: &NetworkExports) -> Template {
    let prefix = cfg.prefix.as_str();
    let stack_tags = || tags(cfg, StackKind::App);
    let mut t = Template::new(format!(
        "{prefix} app: llm-eval on ECS Fargate behind an internal ALB reachable only via CloudFront, Cognito, data bucket"
    ));
    let vpc_id: Value<String> = NetworkExports::import(&network.vpc_id).into();
    let private_subnets: Vec<Value<String>> = network
        .private_subnets
        .iter()
        .map(|name| NetworkExports::import(name).into())
        .collect();

    // Parameters.
    let mut image = Parameter::string("container image URI of the app, set by the deployer");
    image.allowed_pattern = Some(r"^\S+$".into());
    image.constraint_description = Some("an image URI without spaces".into());
    let image = t.add_parameter("ImageUri", image);
    let mut prefix_list = Parameter::string(
        "id of the managed prefix list com.amazonaws.global.cloudfront.origin-facing in this region, resolved by the deployer",
    );
    prefix_list.allowed_pattern = Some("^pl-[0-9a-f]{8,17}$".into());
    prefix_list.constraint_description = Some("a prefix list id, pl-...".into());
    let prefix_list = t.add_parameter("CloudFrontPrefixListId", prefix_list);
    let mut certificate = Parameter::string(
        "optional ACM certificate ARN (us-east-1) for DomainAlias; used only when DomainAlias is set too, otherwise the cloudfront.net certificate",
    );
    certificate.default = Some(String::new());
    let certificate = t.add_parameter("CertificateArn", certificate);
    let mut alias = Parameter::string(
        "optional domain name served with CertificateArn; used only when CertificateArn is set too",
    );
    alias.default = Some(String::new());
    let alias = t.add_parameter("DomainAlias", alias);
    // Both or neither: with only a certificate the distribution would get `Aliases: [""]`, and
    // with only an alias an empty `AcmCertificateArn`; CloudFront rejects both at deploy time.
    let custom_domain = t.add_condition(
        "HasCustomDomain",
        Expr::And(vec![
            Expr::negate(Expr::equals(certificate.r#ref(), Expr::str(""))),
            Expr::negate(Expr::equals(alias.r#ref(), Expr::str(""))),
        ]),
    );

    // Buckets: server access logs, the ALB's access logs (and optionally CloudFront logs) go to
    // the logs bucket. ELB log delivery only supports SSE-S3 (not KMS), which this bucket uses.
    let logs_bucket = t.add(
        "LogsBucket",
        Bucket {
            bucket_encryption: Some(BucketEncryption::sse_s3()),
            public_access_block_configuration: Some(PublicAccessBlockConfiguration::all()),
            versioning_configuration: None,
            // Access logs of the logs bucket itself would log forever.
            logging_configuration: None,
            ownership_controls: Some(OwnershipControls {
                rules: vec![OwnershipControlsRule {
                    // CloudFront standard logging writes with ACLs, so it needs
                    // BucketOwnerPreferred; without it ACLs stay disabled.
                    object_ownership: Some(s(if cfg.cloudfront_access_logs {
                        "BucketOwnerPreferred"
                    } else {
                        "BucketOwnerEnforced"
                    })),
                }],
            }),
            lifecycle_configuration: Some(LifecycleConfiguration {
                rules: vec![Rule {
                    status: s("Enabled"),
                    id: Some(s("expire-logs")),
                    expiration_in_days: Some(90.into()),
                    abort_incomplete_multipart_upload: None,
                    noncurrent_version_expiration: None,
                }],
            }),
            tags: stack_tags(),
        },
    );
    t.set_policies(&logs_bucket, Retention::Retain, Retention::Retain);
    let logs_arn = logs_bucket.get_att(BucketAttr::Arn);
    let logs_bucket_policy = t.add(
        "LogsBucketPolicy",
        BucketPolicy {
            bucket: logs_bucket.r#ref().into(),
            policy_document: PolicyDocument::new(vec![
                tls_only(logs_arn.clone()),
                Statement {
                    sid: Some("AllowServerAccessLogs".into()),
                    effect: Effect::Allow,
                    principal: Some(Principal::Service(vec!["logging.s3.amazonaws.com".into()])),
                    action: vec!["s3:PutObject".into()],
                    resource: vec![
                        Expr::join("", vec![logs_arn.clone(), Expr::str("/s3-access/*")]).into(),
                    ],
                    condition: Some(serde_json::json!({
                        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
                    })),
                },
                // The account id in the object path (never a wildcard) is what limits
                // delivery to load balancers of this account, as the ELB guide prescribes.
                Statement {
                    sid: Some("AllowAlbAccessLogs".into()),
                    effect: Effect::Allow,
                    principal: Some(Principal::Service(vec![ELB_LOG_DELIVERY.into()])),
                    action: vec!["s3:PutObject".into()],
                    resource: vec![
                        Expr::join(
                            "",
                            vec![
                                logs_arn,
                                Expr::str(format!("/{ALB_LOG_PREFIX}/AWSLogs/")),
                                Pseudo::AccountId.into(),
                                Expr::str("/*"),
                            ],
                        )
                        .into(),
                    ],
                    condition: None,
                },
            ]),
        },
    );

    let data_bucket = t.add(
        "DataBucket",
        Bucket {
            bucket_encryption: Some(BucketEncryption::sse_s3()),
            public_access_block_configuration: Some(PublicAccessBlockConfiguration::all()),
            versioning_configuration: Some(VersioningConfiguration {
                status: s("Enabled"),
            }),
            logging_configuration: Some(LoggingConfiguration {
                destination_bucket_name: Some(logs_bucket.r#ref().into()),
                log_file_prefix: Some(s("s3-access/data/")),
            }),
            ownership_controls: Some(OwnershipControls {
                rules: vec![OwnershipControlsRule {
                    object_ownership: Some(s("BucketOwnerEnforced")),
                }],
            }),
            lifecycle_configuration: Some(LifecycleConfiguration {
                rules: vec![Rule {
                    status: s("Enabled"),
                    id: Some(s("tidy-versions-and-uploads")),
                    expiration_in_days: None,
                    abort_incomplete_multipart_upload: Some(AbortIncompleteMultipartUpload {
                        days_after_initiation: 7.into(),
                    }),
                    noncurrent_version_expiration: Some(NoncurrentVersionExpiration {
                        noncurrent_days: 90.into(),
                    }),
                }],
            }),
            tags: stack_tags(),
        },
    );
    // Datasets and results outlive the stack.
    t.set_policies(&data_bucket, Retention::Retain, Retention::Retain);
    t.add(
        "DataBucketPolicy",
        BucketPolicy {
            bucket: data_bucket.r#ref().into(),
            policy_document: PolicyDocument::new(vec![tls_only(
                data_bucket.get_att(BucketAttr::Arn),
            )]),
        },
    );

    // Cognito: administrators create users; threat protection needs the Plus tier.
    let user_pool = t.add(
        "UserPool",
        UserPool {
            user_pool_name: Some(s(format!("{prefix}-users"))),
            user_pool_tier: Some(s("PLUS")),
            admin_create_user_config: Some(AdminCreateUserConfig {
                allow_admin_create_user_only: Some(true.into()),
            }),
            policies: Some(Policies {
                password_policy: Some(PasswordPolicy {
                    minimum_length: Some(14.into()),
                    require_lowercase: Some(true.into()),
                    require_numbers: Some(true.into()),
                    require_symbols: Some(true.into()),
                    require_uppercase: Some(true.into()),
                    temporary_password_validity_days: Some(3.into()),
                    password_history_size: Some(5.into()),
                }),
            }),
            mfa_configuration: Some(s("OPTIONAL")),
            enabled_mfas: strs(&["SOFTWARE_TOKEN_MFA"]),
            user_pool_add_ons: Some(UserPoolAddOns {
                advanced_security_mode: Some(s("ENFORCED")),
            }),
            username_attributes: Vec::new(),
            auto_verified_attributes: strs(&["email"]),
            account_recovery_setting: Some(AccountRecoverySetting {
                recovery_mechanisms: vec![RecoveryOption {
                    name: Some(s("verified_email")),
                    priority: Some(1.into()),
                }],
            }),
            username_configuration: Some(UsernameConfiguration {
                case_sensitive: Some(false.into()),
            }),
            deletion_protection: Some(s("ACTIVE")),
        },
    );
    // Users and their MFA devices are not recreatable; deletion protection needs Retain to let
    // the stack itself be deleted.
    t.set_policies(&user_pool, Retention::Retain, Retention::Retain);
    let client = t.add(
        "UserPoolClient",
        UserPoolClient {
            user_pool_id: user_pool.r#ref().into(),
            client_name: Some(s(format!("{prefix}-app"))),
            generate_secret: Some(true.into()),
            explicit_auth_flows: strs(&[
                "ALLOW_USER_PASSWORD_AUTH",
                "ALLOW_USER_SRP_AUTH",
                "ALLOW_REFRESH_TOKEN_AUTH",
            ]),
            prevent_user_existence_errors: Some(s("ENABLED")),
            enable_token_revocation: Some(true.into()),
            access_token_validity: Some(60.into()),
            id_token_validity: Some(60.into()),
            refresh_token_validity: Some(12.into()),
            token_validity_units: Some(TokenValidityUnits {
                access_token: Some(s("minutes")),
                id_token: Some(s("minutes")),
                refresh_token: Some(s("hours")),
            }),
        },
    );
    // The client secret is copied by CloudFormation at deploy time; it never appears in the
    // template. `ClientSecret` is a documented return value of AWS::Cognito::UserPoolClient.
    let client_secret = t.add(
        "CognitoClientSecret",
        Secret {
            name: Some(s(format!("{prefix}/cognito-app-client"))),
            description: Some(s("Cognito app client of the llm-eval web app (pool id, client id, client secret)")),
            secret_string: Some(
                Expr::sub_with(
                    r#"{"user_pool_id":"${Pool}","client_id":"${Client}","client_secret":"${Secret}"}"#,
                    vec![
                        ("Pool", user_pool.r#ref()),
                        ("Client", client.r#ref()),
                        ("Secret", client.get_att(UserPoolClientAttr::ClientSecret)),
                    ],
                )
                .into(),
            ),
            kms_key_id: None,
            tags: stack_tags(),
        },
    );

    // Networking: CloudFront prefix list -> ALB :80 -> tasks :8080 -> HTTPS out via NAT.
    let task_sg = t.add(
        "TaskSecurityGroup",
        SecurityGroup {
            group_description: s("llm-eval tasks: HTTP from the ALB only, HTTPS out"),
            vpc_id: Some(vpc_id.clone()),
            security_group_ingress: Vec::new(),
            security_group_egress: vec![Egress {
                ip_protocol: s("tcp"),
                description: Some(s(
                    "HTTPS to Bedrock, SageMaker, OpenAI, ECR, Secrets Manager",
                )),
                from_port: Some(443.into()),
                to_port: Some(443.into()),
                cidr_ip: Some(s("0.0.0.0/0")),
                destination_security_group_id: None,
            }],
            tags: stack_tags(),
        },
    );
    // A rule that references the CloudFront prefix list counts as one rule per prefix list
    // entry (about 55) against the quota of 60 rules per security group, so this group holds
    // only that rule and one egress rule.
    let alb_sg = t.add(
        "AlbSecurityGroup",
        SecurityGroup {
            group_description: s("llm-eval internal ALB: HTTP from CloudFront only"),
            vpc_id: Some(vpc_id.clone()),
            security_group_ingress: vec![Ingress {
                ip_protocol: s("tcp"),
                description: Some(s("CloudFront origin-facing addresses (VPC origin)")),
                from_port: Some(80.into()),
                to_port: Some(80.into()),
                cidr_ip: None,
                source_prefix_list_id: Some(prefix_list.r#ref().into()),
                source_security_group_id: None,
            }],
            security_group_egress: vec![Egress {
                ip_protocol: s("tcp"),
                description: Some(s("to the tasks")),
                from_port: Some(APP_PORT.into()),
                to_port: Some(APP_PORT.into()),
                cidr_ip: None,
                destination_security_group_id: Some(
                    task_sg.get_att(SecurityGroupAttr::GroupId).into(),
                ),
            }],
            tags: stack_tags(),
        },
    );
    // A separate rule resource, so the two groups do not reference each other inline.
    t.add(
        "TaskIngressFromAlb",
        SecurityGroupIngress {
            group_id: Some(task_sg.get_att(SecurityGroupAttr::GroupId).into()),
            ip_protocol: s("tcp"),
            description: Some(s("from the ALB")),
            from_port: Some(APP_PORT.into()),
            to_port: Some(APP_PORT.into()),
            source_prefix_list_id: None,
            source_security_group_id: Some(alb_sg.get_att(SecurityGroupAttr::GroupId).into()),
        },
    );

    let alb = t.add(
        "LoadBalancer",
        LoadBalancer {
            scheme: Some(s("internal")),
            load_balancer_type: Some(s("application")),
            subnets: private_subnets.clone(),
            security_groups: vec![alb_sg.get_att(SecurityGroupAttr::GroupId).into()],
            load_balancer_attributes: vec![
                Attribute::new("routing.http.drop_invalid_header_fields.enabled", "true"),
                // Long enough for server-sent events between keep-alive comments.
                Attribute::new("idle_timeout.timeout_seconds", "300"),
                Attribute::new("access_logs.s3.enabled", "true"),
                Attribute {
                    key: Some(s("access_logs.s3.bucket")),
                    value: Some(logs_bucket.r#ref().into()),
                },
                Attribute::new("access_logs.s3.prefix", ALB_LOG_PREFIX),
            ],
            tags: stack_tags(),
        },
    );
    // ELB writes a test object when access logs are switched on, so the bucket policy that
    // allows it must exist first.
    t.depends_on(&alb, &logs_bucket_policy);
    let target_group = t.add(
        "TargetGroup",
        TargetGroup {
            target_type: Some(s("ip")),
            port: Some(APP_PORT.into()),
            protocol: Some(s("HTTP")),
            protocol_version: Some(s("HTTP1")),
            vpc_id: Some(vpc_id.clone()),
            health_check_enabled: Some(true.into()),
            health_check_path: Some(s(HEALTH_PATH)),
            health_check_protocol: Some(s("HTTP")),
            health_check_interval_seconds: Some(15.into()),
            health_check_timeout_seconds: Some(5.into()),
            healthy_threshold_count: Some(2.into()),
            unhealthy_threshold_count: Some(3.into()),
            matcher: Some(Matcher {
                http_code: Some(s("200")),
            }),
            target_group_attributes: vec![Attribute::new(
                "deregistration_delay.timeout_seconds",
                "30",
            )],
            tags: stack_tags(),
        },
    );
    // Plain HTTP between CloudFront's VPC origin and the internal ALB: the hop stays inside
    // AWS's network and the VPC; HTTPS here would need a certificate for a private name.
    let listener = t.add(
        "HttpListener",
        Listener {
            load_balancer_arn: alb.r#ref().into(),
            default_actions: vec![Action {
                action_type: s("forward"),
                target_group_arn: Some(target_group.r#ref().into()),
                fixed_response_config: None,
            }],
            port: Some(80.into()),
            protocol: Some(s("HTTP")),
        },
    );

    // ECS.
    let log_group = t.add(
        "AppLogGroup",
        LogGroup {
            log_group_name: Some(s(format!("/ecs/{prefix}-app"))),
            retention_in_days: Some(30.into()),
            kms_key_id: None,
            tags: stack_tags(),
        },
    );
    let cluster = t.add(
        "Cluster",
        Cluster {
            cluster_settings: vec![ClusterSettings {
                name: Some(s("containerInsights")),
                value: Some(s("enabled")),
            }],
            tags: stack_tags(),
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
                policy_document: PolicyDocument::new(vec![
                    // GetAuthorizationToken has no resource-level permissions.
                    Statement::allow(&["ecr:GetAuthorizationToken"], strs(&["*"]))
                        .with_sid("EcrLogin"),
                    Statement::allow(
                        &[
                            "ecr:BatchCheckLayerAvailability",
                            "ecr:BatchGetImage",
                            "ecr:GetDownloadUrlForLayer",
                        ],
                        vec![arn("ecr:${AWS::Region}:${AWS::AccountId}:repository/*")],
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
                ]),
            }],
            tags: stack_tags(),
        },
    );
    let task_role = t.add(
        "TaskRole",
        Role {
            assume_role_policy_document: PolicyDocument::assume_by_service_for_this_account(
                "ecs-tasks.amazonaws.com",
            ),
            description: Some(s(
                "llm-eval app: invoke models, list models and endpoints, read the OpenAI key",
            )),
            managed_policy_arns: Vec::new(),
            policies: vec![Policy {
                policy_name: s("llm-eval-app"),
                policy_document: PolicyDocument::new(vec![
                    // Any region: cross-region inference profiles route to foundation models
                    // in other regions of the same geography.
                    Statement::allow(
                        &TASK_ACTIONS[0..2],
                        vec![
                            arn("bedrock:*::foundation-model/*"),
                            arn("bedrock:*:${AWS::AccountId}:inference-profile/*"),
                        ],
                    )
                    .with_sid("InvokeBedrock"),
                    // These list actions do not support resource-level permissions.
                    Statement::allow(&[TASK_ACTIONS[2], TASK_ACTIONS[4]], strs(&["*"]))
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
                ]),
            }],
            tags: stack_tags(),
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
            KeyValuePair::new("OPENAI_SECRET_NAME", cfg.openai_secret_name.as_str()),
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
            tags: stack_tags(),
        },
    );
    let service = t.add(
        "Service",
        Service {
            cluster: Some(cluster.r#ref().into()),
            task_definition: Some(task_definition.r#ref().into()),
            launch_type: Some(s("FARGATE")),
            desired_count: Some(1.into()),
            health_check_grace_period_seconds: Some(60.into()),
            load_balancers: vec![ServiceLoadBalancer {
                container_name: Some(s("app")),
                container_port: Some(APP_PORT.into()),
                target_group_arn: Some(target_group.r#ref().into()),
            }],
            network_configuration: Some(NetworkConfiguration {
                awsvpc_configuration: Some(AwsVpcConfiguration {
                    assign_public_ip: Some(s("DISABLED")),
                    security_groups: vec![task_sg.get_att(SecurityGroupAttr::GroupId).into()],
                    subnets: private_subnets,
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
            tags: stack_tags(),
        },
    );
    // The target group must be attached to the load balancer before a service registers in it.
    t.depends_on(&service, &listener);

    // CloudFront -> VPC origin -> internal ALB.
    let vpc_origin = t.add(
        "AlbVpcOrigin",
        VpcOrigin {
            vpc_origin_endpoint_config: VpcOriginEndpointConfig {
                arn: alb.r#ref().into(),
                name: s(format!("{prefix}-alb")),
                http_port: Some(80.into()),
                https_port: Some(443.into()),
                origin_protocol_policy: Some(s("http-only")),
            },
            tags: stack_tags(),
        },
    );
    let viewer_certificate = Value::if_(
        &custom_domain,
        Value::Lit(ViewerCertificate {
            acm_certificate_arn: Some(certificate.r#ref().into()),
            cloud_front_default_certificate: None,
            minimum_protocol_version: Some(s("TLSv1.2_2021")),
            ssl_support_method: Some(s("sni-only")),
        }),
        // The default *.cloudfront.net certificate cannot pin a minimum TLS version; browsers
        // negotiate TLS 1.2/1.3 with it. Set CertificateArn to enforce TLSv1.2_2021.
        Value::Lit(ViewerCertificate {
            acm_certificate_arn: None,
            cloud_front_default_certificate: Some(true.into()),
            minimum_protocol_version: None,
            ssl_support_method: None,
        }),
    );
    let distribution = t.add(
        "Distribution",
        Distribution {
            distribution_config: DistributionConfig {
                enabled: true.into(),
                comment: Some(s(format!("{prefix}: evaluation web app"))),
                aliases: Some(Value::if_(
                    &custom_domain,
                    Value::Lit(vec![alias.r#ref().into()]),
                    Value::no_value(),
                )),
                http_version: Some(s("http2and3")),
                ipv6_enabled: Some(true.into()),
                logging: cfg.cloudfront_access_logs.then(|| Logging {
                    bucket: Some(logs_bucket.get_att(BucketAttr::DomainName).into()),
                    prefix: Some(s("cloudfront/")),
                    include_cookies: Some(false.into()),
                }),
                origins: vec![Origin {
                    domain_name: alb.get_att(LoadBalancerAttr::DnsName).into(),
                    id: s("alb"),
                    vpc_origin_config: Some(VpcOriginConfig {
                        vpc_origin_id: vpc_origin.get_att(VpcOriginAttr::Id).into(),
                        origin_keepalive_timeout: Some(60.into()),
                        // Maximum without a quota increase; streaming responses reset it with
                        // every chunk.
                        origin_read_timeout: Some(60.into()),
                    }),
                }],
                price_class: Some(s("PriceClass_100")),
                viewer_certificate: Some(viewer_certificate),
                web_acl_id: None,
                default_cache_behavior: DefaultCacheBehavior {
                    target_origin_id: s("alb"),
                    viewer_protocol_policy: s("redirect-to-https"),
                    allowed_methods: strs(&[
                        "GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE",
                    ]),
                    cached_methods: strs(&["GET", "HEAD"]),
                    cache_policy_id: Some(s(CACHING_DISABLED)),
                    origin_request_policy_id: Some(s(ALL_VIEWER_EXCEPT_HOST_HEADER)),
                    response_headers_policy_id: Some(s(SECURITY_HEADERS)),
                    // Compression would buffer server-sent events.
                    compress: Some(false.into()),
                },
            },
            tags: stack_tags(),
        },
    );

    let outputs = [
        (
            "Url",
            "URL of the web app",
            Expr::sub_with(
                "https://${Domain}",
                vec![("Domain", distribution.get_att(DistributionAttr::DomainName))],
            ),
        ),
        (
            "DistributionId",
            "CloudFront distribution id",
            distribution.r#ref(),
        ),
        ("UserPoolId", "Cognito user pool id", user_pool.r#ref()),
        (
            "UserPoolClientId",
            "Cognito app client id (its secret stays in Secrets Manager)",
            client.r#ref(),
        ),
        (
            "CognitoClientSecretArn",
            "ARN of the secret holding the app client credentials",
            client_secret.r#ref(),
        ),
        (
            "DataBucketName",
            "bucket for datasets and results",
            data_bucket.r#ref(),
        ),
        (
            "LogsBucketName",
            "bucket for access logs",
            logs_bucket.r#ref(),
        ),
        ("ClusterName", "ECS cluster", cluster.r#ref()),
        (
            "ServiceName",
            "ECS service",
            service.get_att(ServiceAttr::Name),
        ),
        (
            "LogGroupName",
            "CloudWatch log group of the app",
            log_group.r#ref(),
        ),
    ];
    for (id, description, value) in outputs {
        t.add_output(
            id,
            Output {
                description: description.into(),
                value,
                export: None,
                condition: None,
            },
        );
    }

    // Findings of the security rule pack (`deployer nag`) accepted for this design, each with
    // its reason, next to the resource.
    let accept = |id: &str, reason: &str| NagSuppression::new(id, reason);
    t.nag_suppress(
        &user_pool,
        &[accept(
            "AwsSolutions-COG2",
            "MFA is optional (TOTP) so administrators can onboard workshop users without a device; threat protection is ENFORCED on the Plus tier",
        )],
    );
    t.nag_suppress(
        &client_secret,
        &[accept(
            "AwsSolutions-SMG4",
            "holds the Cognito app client id and secret, which Cognito issues and cannot rotate through Secrets Manager; replace the client to rotate",
        )],
    );
    t.nag_suppress(
        &execution_role,
        &[
            accept("AwsSolutions-IAM5", "ecr:GetAuthorizationToken has no resource-level permissions")
                .applies_to(["Resource::*"]),
            accept(
                "AwsSolutions-IAM5",
                "the image repository is chosen by the deployer at deploy time (ImageUri); pulls are limited to this account and region",
            )
            .applies_to(["Resource::arn:<AWS::Partition>:ecr:<AWS::Region>:<AWS::AccountId>:repository/*"]),
        ],
    );
    t.nag_suppress(
        &task_role,
        &[
            accept(
                "AwsSolutions-IAM5",
                "users pick any Bedrock model or cross-region inference profile to evaluate; only the invoke actions are allowed",
            )
            .applies_to([
                "Resource::arn:<AWS::Partition>:bedrock:*::foundation-model/*",
                "Resource::arn:<AWS::Partition>:bedrock:*:<AWS::AccountId>:inference-profile/*",
            ]),
            accept(
                "AwsSolutions-IAM5",
                "users pick any SageMaker endpoint of this account and region to evaluate; only InvokeEndpoint is allowed",
            )
            .applies_to(["Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:endpoint/*"]),
            accept(
                "AwsSolutions-IAM5",
                "bedrock:ListFoundationModels and sagemaker:ListEndpoints have no resource-level permissions",
            )
            .applies_to(["Resource::*"]),
        ],
    );
    t.nag_suppress(
        &task_definition,
        &[accept(
            "AwsSolutions-ECS2",
            "the environment holds only non-secret identifiers (bind address, region, pool and client ids, bucket and secret names); the client secret comes from Secrets",
        )],
    );
    let mut distribution_accepted = vec![
        accept(
            "AwsSolutions-CFR1",
            "the evaluation app serves its users worldwide; access is controlled by Cognito sign-in, not by country",
        ),
        accept(
            "AwsSolutions-CFR2",
            "no WAF web ACL by default to keep the demo's fixed cost low; every page requires a Cognito session and the origin is private",
        ),
        accept(
            "AwsSolutions-CFR4",
            "without CertificateArn/DomainAlias only the default cloudfront.net certificate is possible; with them the distribution enforces TLSv1.2_2021 with sni-only",
        ),
    ];
    if !cfg.cloudfront_access_logs {
        distribution_accepted.push(accept(
            "AwsSolutions-CFR3",
            "access logs are opt-in (DEPLOY_CLOUDFRONT_ACCESS_LOGS=yes) to avoid log storage for short-lived demo deployments",
        ));
    }
    t.nag_suppress(&distribution, &distribution_accepted);
    t
}
