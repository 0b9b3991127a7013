//! The app stack: the `llm-eval` web app on ECS Fargate behind an internal ALB that only
//! CloudFront can reach (through a CloudFront VPC origin), a Cognito user pool with a
//! confidential app client, the data bucket, the store table (DynamoDB: runs, results, settings,
//! sessions, leases; shared by every task), and the secrets the task reads.
//!
//! Security invariants, each checked by the tests and the cfn-lint run:
//! - nothing accepts traffic from `0.0.0.0/0`: the ALB is `internal` and its security group only
//!   admits CloudFront's origin-facing prefix list; tasks only admit the ALB (also with
//!   `DEPLOY_TASK_EGRESS=public-ip`, where they have a public address for their way out);
//! - while paused (`Paused=true`) nothing costs by the hour: no task, no load balancer, no VPC
//!   origin; the distribution (and so the URL) stays and a CloudFront Function answers;
//! - the Cognito client secret never appears in the template or its outputs: CloudFormation
//!   copies it at deploy time (`Fn::GetAtt Client.ClientSecret`) into a Secrets Manager secret
//!   that ECS injects into the container (`Secrets`), so it only lives in Cognito, Secrets
//!   Manager and the task's environment;
//! - the task role holds exactly the actions the app calls (see [`TASK_ACTIONS`],
//!   [`TABLE_ACTIONS`] on the table and its indexes, [`BUCKET_ACTIONS`] on the data bucket's
//!   objects);
//! - the ALB writes access logs to the (SSE-S3, TLS-only) logs bucket under [`ALB_LOG_PREFIX`],
//!   and is created only after the bucket policy that lets ELB write there;
//! - no value is random at synth time, so a re-synth never shows drift.
//!
//! The template is built in parts, in this order, each in its own module returning the handles
//! later parts need (as [`NetworkExports`] does between stacks): [`Parameters`] (here),
//! `buckets`, `table`, `cognito`, `networking` (security groups and the internal ALB), `ecs`,
//! `cloudfront`, then the outputs (here) and `suppressions` (accepted nag findings).

mod batch;
mod buckets;
mod cloudfront;
mod cognito;
mod ecs;
mod networking;
mod suppressions;
mod table;

use crate::config::StackConfig;
use crate::model::{CondHandle, Expr, Output, ParamHandle, Parameter, Template, Value};
use crate::resources::Tag;
use crate::resources::cloudfront::DistributionAttr;
use crate::resources::ecs::ServiceAttr;
use crate::stacks::network::NetworkExports;
use crate::stacks::{StackKind, tags};

pub use cloudfront::{ALL_VIEWER_EXCEPT_HOST_HEADER, CACHING_DISABLED, SECURITY_HEADERS};
pub use table::{TABLE_INDEXES, table_name};

/// Port the app listens on inside the container.
pub const APP_PORT: i64 = 8080;

/// Health endpoint of the app (target group and container health checks).
pub const HEALTH_PATH: &str = "/healthz";

/// Numeric user and group the container runs as (not root).
pub const APP_USER: &str = "10001:10001";

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
/// model and endpoint listing, reading the OpenAI key, and Bedrock batch inference jobs with
/// the batch service role passed to Bedrock.
pub const TASK_ACTIONS: &[&str] = &[
    "bedrock:InvokeModel",
    "bedrock:InvokeModelWithResponseStream",
    "bedrock:ListFoundationModels",
    "sagemaker:InvokeEndpoint",
    "sagemaker:ListEndpoints",
    "secretsmanager:GetSecretValue",
    "bedrock:CreateModelInvocationJob",
    "bedrock:GetModelInvocationJob",
    "bedrock:ListModelInvocationJobs",
    "bedrock:StopModelInvocationJob",
    "iam:PassRole",
];

/// Key prefix of Bedrock batch inference objects in the data bucket (the app's default
/// `--batch-prefix`); the batch service role reaches only this prefix, and a lifecycle rule
/// expires it after `DEPLOY_BATCH_EXPIRY_DAYS`.
pub const BATCH_PREFIX: &str = "llm-eval-batch";

/// The task role's store actions on the table and its indexes (`DynamoStore`; transactions
/// are authorized by the `PutItem` and `UpdateItem` they contain).
pub const TABLE_ACTIONS: &[&str] = &[
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:DeleteItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:UpdateItem",
];

/// The app's roles' actions on the customer managed key, when there is one: the task role
/// reads and writes the store table and reads secrets, the execution role reads the client
/// secret. Only on that key.
pub const KEY_ACTIONS: &[&str] = &[
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey",
];

/// The task role's store actions on the data bucket's objects (datasets, spilled records).
pub const BUCKET_ACTIONS: &[&str] = &["s3:DeleteObject", "s3:GetObject", "s3:PutObject"];

fn arn(path: &str) -> Value<String> {
    Expr::sub(format!("arn:${{AWS::Partition}}:{path}")).into()
}

fn app_tags(cfg: &StackConfig) -> Vec<Tag> {
    tags(cfg, StackKind::App)
}

/// What the app stack imports from the network stack.
struct Imports {
    vpc_id: Value<String>,
    private_subnets: Vec<Value<String>>,
    /// Where the tasks run with `DEPLOY_TASK_EGRESS=public-ip`.
    public_subnets: Vec<Value<String>>,
    /// The customer managed key (`DEPLOY_KMS_KEY`), if any.
    kms_key: Option<Value<String>>,
}

impl Imports {
    fn new(cfg: &StackConfig, network: &NetworkExports) -> Imports {
        Imports {
            kms_key: crate::stacks::kms::key_arn(cfg, network),
            vpc_id: NetworkExports::import(&network.vpc_id).into(),
            private_subnets: network
                .private_subnets
                .iter()
                .map(|name| NetworkExports::import(name).into())
                .collect(),
            public_subnets: network
                .public_subnets
                .iter()
                .map(|name| NetworkExports::import(name).into())
                .collect(),
        }
    }
}

/// The template's parameters and the condition derived from them.
struct Parameters {
    image: ParamHandle,
    prefix_list: ParamHandle,
    certificate: ParamHandle,
    alias: ParamHandle,
    custom_domain: CondHandle,
    /// False while `deployer pause` holds the app: the service runs no task, the load balancer,
    /// its listener and target group and the CloudFront VPC origin are deleted, and the
    /// distribution answers every request with the paused page.
    running: CondHandle,
}

fn parameters(t: &mut Template) -> Parameters {
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
    let running = crate::stacks::add_paused_parameter(t);
    Parameters {
        image,
        prefix_list,
        certificate,
        alias,
        custom_domain,
        running,
    }
}

/// Builds the app template.
pub fn build(cfg: &StackConfig, network: &NetworkExports) -> Template {
    let mut t = Template::new(format!(
        "{} app: llm-eval on ECS Fargate behind an internal ALB reachable only via CloudFront, Cognito, data bucket",
        cfg.prefix
    ));
    let imports = Imports::new(cfg, network);
    let params = parameters(&mut t);
    let buckets = buckets::add(&mut t, cfg);
    let table = table::add(&mut t, cfg, &imports);
    let auth = cognito::add(&mut t, cfg, &imports);
    let net = networking::add(&mut t, cfg, &imports, &params, &buckets);
    let batch_role = batch::add(&mut t, cfg, &imports, &buckets);
    let compute = ecs::add(
        &mut t,
        cfg,
        &imports,
        &params,
        &buckets,
        &table,
        &auth,
        &net,
        &batch_role,
    );
    let edge = cloudfront::add(&mut t, cfg, &params, &buckets, &net);
    outputs(&mut t, &buckets, &table, &auth, &compute, &edge);
    suppressions::add(&mut t, cfg, &auth, &compute, &edge, &batch_role);
    t
}

/// The stack's outputs: where the app is, and the names other tools (`deployer status`,
/// `deployer users`) look up.
fn outputs(
    t: &mut Template,
    buckets: &buckets::Buckets,
    table: &crate::model::Handle<crate::resources::dynamodb::Table>,
    auth: &cognito::Auth,
    compute: &ecs::Compute,
    edge: &cloudfront::Edge,
) {
    let buckets::Buckets {
        logs_bucket,
        data_bucket,
        ..
    } = buckets;
    let cognito::Auth {
        user_pool,
        client,
        client_secret,
    } = auth;
    let ecs::Compute {
        log_group,
        cluster,
        service,
        ..
    } = compute;
    let distribution = &edge.distribution;
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
            "StoreTableName",
            "DynamoDB table of runs, records, datasets and settings",
            table.r#ref(),
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
}
