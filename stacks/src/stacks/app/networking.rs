//! Networking of the app stack: the security groups (CloudFront's prefix list -> ALB :80 ->
//! tasks :8080 -> HTTPS out) and the internal ALB with its target group and listener.
//!
//! Invariant: no rule admits `0.0.0.0/0`; the ALB is `internal` and only admits CloudFront's
//! origin-facing prefix list, the tasks only admit the ALB.
//!
//! The load balancer, its target group and its listener carry the condition `Running`: they
//! cost by the hour (the load balancer) or need it (the others), so `deployer pause` deletes
//! them and `deployer resume` creates them again. The security groups are free and stay.

use crate::config::StackConfig;
use crate::model::{Handle, Template, s};
use crate::resources::ec2::{
    Egress, Ingress, SecurityGroup, SecurityGroupAttr, SecurityGroupIngress,
};
use crate::resources::elbv2::{Action, Attribute, Listener, LoadBalancer, Matcher, TargetGroup};
use crate::stacks::app::buckets::Buckets;
use crate::stacks::app::{ALB_LOG_PREFIX, APP_PORT, HEALTH_PATH, Imports, Parameters, app_tags};
use crate::stacks::checkov;

/// Handles of the load balancer and the security groups.
pub(super) struct Networking {
    pub task_sg: Handle<SecurityGroup>,
    pub alb: Handle<LoadBalancer>,
    pub target_group: Handle<TargetGroup>,
    /// The service depends on it: a target group must be attached to a load balancer before a
    /// service registers in it.
    pub listener: Handle<Listener>,
}

pub(super) fn add(
    t: &mut Template,
    cfg: &StackConfig,
    imports: &Imports,
    params: &Parameters,
    buckets: &Buckets,
) -> Networking {
    let vpc_id = &imports.vpc_id;
    let private_subnets = &imports.private_subnets;
    let prefix_list = &params.prefix_list;
    let logs_bucket = &buckets.logs_bucket;
    let logs_bucket_policy = &buckets.logs_bucket_policy;
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
            tags: app_tags(cfg),
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
            tags: app_tags(cfg),
        },
    );
    // A separate rule resource, so the two groups do not reference each other inline.
    t.add(
        "TaskIngressFromAlb",
        SecurityGroupIngress {
            group_id: Some(task_sg.get_att(SecurityGroupAttr::GroupId).into()),
            rule: Ingress {
                ip_protocol: s("tcp"),
                description: Some(s("from the ALB")),
                from_port: Some(APP_PORT.into()),
                to_port: Some(APP_PORT.into()),
                source_prefix_list_id: None,
                source_security_group_id: Some(alb_sg.get_att(SecurityGroupAttr::GroupId).into()),
                cidr_ip: None,
            },
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
            tags: app_tags(cfg),
        },
    );
    // ELB writes a test object when access logs are switched on, so the bucket policy that
    // allows it must exist first.
    t.depends_on(&alb, logs_bucket_policy);
    t.set_condition(&alb, &params.running);
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
            tags: app_tags(cfg),
        },
    );
    t.set_condition(&target_group, &params.running);
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
    t.set_condition(&listener, &params.running);
    let plain_http = "the internal ALB is reachable only from CloudFront's VPC origin inside the VPC, which terminates TLS for viewers; HTTPS on this hop would need a certificate for a private name";
    checkov::skip(
        t,
        &listener,
        &[("CKV_AWS_2", plain_http), ("CKV_AWS_103", plain_http)],
    );
    Networking {
        task_sg,
        alb,
        target_group,
        listener,
    }
}
