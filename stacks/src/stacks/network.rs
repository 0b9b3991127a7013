//! The network stack: a VPC over two availability zones with public and private subnets, one
//! NAT gateway per zone (or one for both with `DEPLOY_LEAN_NETWORK`, plus free gateway endpoints
//! for S3 and DynamoDB; or none with `DEPLOY_TASK_EGRESS=public-ip`, where the app's tasks sit
//! in the public subnets and the gateway endpoints serve the public route table), VPC flow logs to CloudWatch, the opt-in customer managed key
//! (`DEPLOY_KMS_KEY=yes`, see [`crate::stacks::kms`]) and the opt-in cost budget
//! (`DEPLOY_BUDGET_USD`).
//!
//! The NAT gateways, their Elastic IPs and the private default routes carry the condition
//! `Running`: `deployer pause` sets the `Paused` parameter and CloudFormation deletes them (they
//! cost by the hour and are recreated by `deployer resume`); nothing else depends on them.
//!
//! Everything other stacks need leaves through exports named in [`NetworkExports`]; nothing
//! else about this stack is visible to them.

use crate::config::{KmsKey, StackConfig, TaskEgress};
use crate::model::{Expr, Output, Pseudo, Template, s};
use crate::resources::Tag;
use crate::resources::budgets::{
    Budget, BudgetData, Notification, NotificationWithSubscribers, Spend, Subscriber,
};
use crate::resources::ec2::{
    Eip, EipAttr, FlowLog, InternetGateway, NatGateway, Route, RouteTable, Subnet,
    SubnetRouteTableAssociation, Vpc, VpcAttr, VpcEndpoint, VpcGatewayAttachment,
};
use crate::resources::iam::{Policy, PolicyDocument, Role, RoleAttr, Statement};
use crate::resources::kms::KeyAttr;
use crate::resources::logs::{LogGroup, LogGroupAttr};
use crate::stacks::{StackKind, checkov, kms, tags};

/// Address range of the VPC; subnets are the first four /20 blocks of it.
pub const VPC_CIDR: &str = "10.0.0.0/16";

/// Network address of [`VPC_CIDR`] and its prefix length.
const VPC_BASE: ([u8; 4], u32) = ([10, 0, 0, 0], 16);

/// Prefix length of each subnet (4,096 addresses, as `Fn::Cidr` with 12 bits would give).
const SUBNET_PREFIX: u32 = 20;

/// The `index`-th /[`SUBNET_PREFIX`] block of the VPC range, e.g. `10.0.16.0/20` for 1.
///
/// Computed here rather than with `Fn::Cidr`: the VPC range is a synth-time constant (cdk
/// writes literals too), the template shows the real ranges, and CloudFormation emulators
/// that do not evaluate `Fn::Cidr` (moto) can create the stack.
pub fn subnet_cidr(index: u32) -> String {
    let (octets, vpc_prefix) = VPC_BASE;
    let base = u32::from_be_bytes(octets);
    let block = index << (32 - SUBNET_PREFIX);
    debug_assert!(
        index < 1 << (SUBNET_PREFIX - vpc_prefix),
        "subnet outside the VPC"
    );
    let address = std::net::Ipv4Addr::from(base | block);
    format!("{address}/{SUBNET_PREFIX}")
}

/// Export names of the network stack (what other stacks may import).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkExports {
    /// The VPC id.
    pub vpc_id: String,
    /// The VPC CIDR block.
    pub vpc_cidr: String,
    /// Public subnet ids, one per zone.
    pub public_subnets: [String; 2],
    /// Private subnet ids, one per zone.
    pub private_subnets: [String; 2],
    /// ARN of the customer managed key (exported only with `DEPLOY_KMS_KEY=yes`).
    pub kms_key_arn: String,
}

impl NetworkExports {
    /// The export names for `cfg`.
    pub fn new(cfg: &StackConfig) -> NetworkExports {
        let name = |suffix: &str| format!("{}-network-{suffix}", cfg.prefix);
        NetworkExports {
            vpc_id: name("VpcId"),
            vpc_cidr: name("VpcCidr"),
            public_subnets: [name("PublicSubnet1Id"), name("PublicSubnet2Id")],
            private_subnets: [name("PrivateSubnet1Id"), name("PrivateSubnet2Id")],
            kms_key_arn: name("KmsKeyArn"),
        }
    }

    /// `Fn::ImportValue` of one of these export names.
    pub fn import(export_name: &str) -> Expr {
        Expr::import_value(Expr::str(export_name))
    }
}

fn named(cfg: &StackConfig, name: &str) -> Vec<Tag> {
    let mut all = tags(cfg, StackKind::Network);
    all.push(Tag::new("Name", format!("{}-{name}", cfg.prefix)));
    all
}

/// Builds the network template and the names of its exports.
pub fn build(cfg: &StackConfig) -> (Template, NetworkExports) {
    let exports = NetworkExports::new(cfg);
    let mut t = Template::new(format!(
        "{} network: VPC with public and private subnets in two AZs, NAT, flow logs",
        cfg.prefix
    ));

    let vpc = t.add(
        "Vpc",
        Vpc {
            cidr_block: Some(s(VPC_CIDR)),
            enable_dns_hostnames: Some(true.into()),
            enable_dns_support: Some(true.into()),
            tags: named(cfg, "vpc"),
        },
    );
    let igw = t.add(
        "InternetGateway",
        InternetGateway {
            tags: named(cfg, "igw"),
        },
    );
    let attachment = t.add(
        "InternetGatewayAttachment",
        VpcGatewayAttachment {
            vpc_id: vpc.r#ref().into(),
            internet_gateway_id: Some(igw.r#ref().into()),
        },
    );

    let public_table = t.add(
        "PublicRouteTable",
        RouteTable {
            vpc_id: vpc.r#ref().into(),
            tags: named(cfg, "public"),
        },
    );
    let default_public = t.add(
        "PublicDefaultRoute",
        Route {
            route_table_id: public_table.r#ref().into(),
            destination_cidr_block: Some(s("0.0.0.0/0")),
            gateway_id: Some(igw.r#ref().into()),
            nat_gateway_id: None,
        },
    );
    // The route can only be created once the gateway is attached to the VPC.
    t.depends_on(&default_public, &attachment);

    let running = crate::stacks::add_paused_parameter(&mut t);
    // With a lean network the first zone's NAT gateway serves both zones.
    let mut nat_gateways = Vec::with_capacity(2);
    let mut private_tables = Vec::with_capacity(2);
    // Subnets are /20 blocks carved from the VPC range: public 0-1, private 2-3.
    for zone in 0..2u32 {
        let n = zone + 1;
        let az = Expr::select(zone, Expr::get_azs());
        let public = t.add(
            &format!("PublicSubnet{n}"),
            Subnet {
                vpc_id: vpc.r#ref().into(),
                availability_zone: Some(az.clone().into()),
                cidr_block: Some(s(subnet_cidr(zone))),
                // Nothing in the public subnets needs a public address except the NAT gateway,
                // which has its own Elastic IP.
                map_public_ip_on_launch: Some(false.into()),
                tags: named(cfg, &format!("public-{n}")),
            },
        );
        t.add(
            &format!("PublicSubnet{n}RouteTableAssociation"),
            SubnetRouteTableAssociation {
                route_table_id: public_table.r#ref().into(),
                subnet_id: public.r#ref().into(),
            },
        );
        if zone < cfg.nat_gateways() {
            let eip = t.add(
                &format!("NatEip{n}"),
                Eip {
                    domain: Some(s("vpc")),
                    tags: named(cfg, &format!("nat-{n}")),
                },
            );
            t.depends_on(&eip, &attachment);
            t.set_condition(&eip, &running);
            let nat = t.add(
                &format!("NatGateway{n}"),
                NatGateway {
                    allocation_id: Some(eip.get_att(EipAttr::AllocationId).into()),
                    subnet_id: Some(public.r#ref().into()),
                    tags: named(cfg, &format!("nat-{n}")),
                },
            );
            t.set_condition(&nat, &running);
            nat_gateways.push(nat);
        }
        // Without a NAT gateway (public task egress) the private subnets keep only the VPC's
        // local route: the internal load balancer lives there and needs no other.
        let nat = nat_gateways.last().cloned();
        let private = t.add(
            &format!("PrivateSubnet{n}"),
            Subnet {
                vpc_id: vpc.r#ref().into(),
                availability_zone: Some(az.into()),
                cidr_block: Some(s(subnet_cidr(zone + 2))),
                map_public_ip_on_launch: Some(false.into()),
                tags: named(cfg, &format!("private-{n}")),
            },
        );
        let private_table = t.add(
            &format!("PrivateRouteTable{n}"),
            RouteTable {
                vpc_id: vpc.r#ref().into(),
                tags: named(cfg, &format!("private-{n}")),
            },
        );
        if let Some(nat) = nat {
            let route = t.add(
                &format!("PrivateDefaultRoute{n}"),
                Route {
                    route_table_id: private_table.r#ref().into(),
                    destination_cidr_block: Some(s("0.0.0.0/0")),
                    gateway_id: None,
                    nat_gateway_id: Some(nat.r#ref().into()),
                },
            );
            t.set_condition(&route, &running);
        }
        private_tables.push(private_table.clone());
        t.add(
            &format!("PrivateSubnet{n}RouteTableAssociation"),
            SubnetRouteTableAssociation {
                route_table_id: private_table.r#ref().into(),
                subnet_id: private.r#ref().into(),
            },
        );
        let idx = zone as usize;
        t.add_output(
            &format!("PublicSubnet{n}Id"),
            Output {
                description: format!("public subnet {n}"),
                value: public.r#ref(),
                export: Some(Expr::str(&exports.public_subnets[idx])),
                condition: None,
            },
        );
        t.add_output(
            &format!("PrivateSubnet{n}Id"),
            Output {
                description: format!("private subnet {n}"),
                value: private.r#ref(),
                export: Some(Expr::str(&exports.private_subnets[idx])),
                condition: None,
            },
        );
    }

    let public_egress = cfg.task_egress == TaskEgress::PublicIp;
    if cfg.lean_network || public_egress {
        // Gateway endpoints cost nothing and keep S3 (image layers from ECR, the data bucket)
        // and DynamoDB (the store) traffic off the single NAT gateway, or with public task
        // egress on AWS's network rather than the tasks' public addresses.
        let tables = if public_egress {
            vec![public_table.clone()]
        } else {
            private_tables.clone()
        };
        for (id, service) in [("S3Endpoint", "s3"), ("DynamoDbEndpoint", "dynamodb")] {
            t.add(
                id,
                VpcEndpoint {
                    service_name: Expr::sub(format!("com.amazonaws.${{AWS::Region}}.{service}"))
                        .into(),
                    vpc_id: vpc.r#ref().into(),
                    vpc_endpoint_type: Some(s("Gateway")),
                    route_table_ids: tables.iter().map(|table| table.r#ref().into()).collect(),
                },
            );
        }
    }
    if cfg.has_budget() {
        add_budget(&mut t, cfg);
    }

    let key = kms::add(&mut t, cfg, &exports);
    let flow_log_group = t.add(
        "FlowLogGroup",
        LogGroup {
            log_group_name: None,
            retention_in_days: Some(90.into()),
            kms_key_id: match (&key, &cfg.kms_key) {
                (Some(key), _) => Some(key.get_att(KeyAttr::Arn).into()),
                (None, KmsKey::Existing(arn)) => Some(s(arn.as_str())),
                (None, _) => None,
            },
            tags: tags(cfg, StackKind::Network),
        },
    );
    checkov::skip_without_cmk(&mut t, cfg, &flow_log_group, "CKV_AWS_158");
    let flow_log_role = t.add(
        "FlowLogRole",
        Role {
            assume_role_policy_document: PolicyDocument::assume_by_service_for_this_account(
                "vpc-flow-logs.amazonaws.com",
            ),
            description: Some(s("lets VPC flow logs write to their log group")),
            managed_policy_arns: Vec::new(),
            policies: vec![Policy {
                policy_name: s("flow-logs"),
                policy_document: PolicyDocument::new(vec![Statement::allow(
                    &[
                        "logs:CreateLogStream",
                        "logs:PutLogEvents",
                        "logs:DescribeLogGroups",
                        "logs:DescribeLogStreams",
                    ],
                    vec![flow_log_group.get_att(LogGroupAttr::Arn).into()],
                )]),
            }],
            tags: tags(cfg, StackKind::Network),
        },
    );
    t.add(
        "FlowLog",
        FlowLog {
            resource_id: vpc.r#ref().into(),
            resource_type: s("VPC"),
            traffic_type: Some(s("ALL")),
            log_destination_type: Some(s("cloud-watch-logs")),
            log_destination: Some(flow_log_group.get_att(LogGroupAttr::Arn).into()),
            deliver_logs_permission_arn: Some(flow_log_role.get_att(RoleAttr::Arn).into()),
            tags: named(cfg, "flow-log"),
        },
    );

    t.add_output(
        "VpcId",
        Output {
            description: "the VPC".into(),
            value: vpc.r#ref(),
            export: Some(Expr::str(&exports.vpc_id)),
            condition: None,
        },
    );
    t.add_output(
        "VpcCidr",
        Output {
            description: "the VPC address range".into(),
            value: vpc.get_att(VpcAttr::CidrBlock),
            export: Some(Expr::str(&exports.vpc_cidr)),
            condition: None,
        },
    );
    // Whether `deployer pause` holds the stack; it also keeps `Paused` and `Running` in use when
    // no resource carries the condition (no NAT gateway with public task egress).
    t.add_output(
        "PauseState",
        Output {
            description: "running, or paused by deployer pause".into(),
            value: running.if_(Expr::str("running"), Expr::str("paused")),
            export: None,
            condition: None,
        },
    );
    t.add_output(
        "Region",
        Output {
            description: "region of the stack".into(),
            value: Pseudo::Region.into(),
            export: None,
            condition: None,
        },
    );
    (t, exports)
}

/// A monthly cost budget of the account with two email alerts: 80% of the amount spent, and
/// 100% forecast (AWS Budgets itself is free for the first two budgets of an account).
fn add_budget(t: &mut Template, cfg: &StackConfig) {
    let alert = |kind: &str, threshold: f64| NotificationWithSubscribers {
        notification: Notification {
            notification_type: s(kind),
            comparison_operator: s("GREATER_THAN"),
            threshold,
            threshold_type: Some(s("PERCENTAGE")),
        },
        subscribers: vec![Subscriber {
            subscription_type: s("EMAIL"),
            address: s(cfg.budget_email.as_str()),
        }],
    };
    t.add(
        "MonthlyBudget",
        Budget {
            budget: BudgetData {
                budget_name: Some(s(format!("{}-monthly", cfg.prefix))),
                budget_limit: Some(Spend {
                    amount: f64::from(cfg.budget_usd),
                    unit: s("USD"),
                }),
                time_unit: s("MONTHLY"),
                budget_type: s("COST"),
            },
            notifications_with_subscribers: vec![alert("ACTUAL", 80.0), alert("FORECASTED", 100.0)],
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(index: u32, expected: &str) {
        assert_eq!(subnet_cidr(index), expected);
    }

    // The same blocks `Fn::Cidr: [10.0.0.0/16, 4, 12]` returns.
    #[test]
    fn first() {
        check(0, "10.0.0.0/20")
    }
    #[test]
    fn second() {
        check(1, "10.0.16.0/20")
    }
    #[test]
    fn fourth() {
        check(3, "10.0.48.0/20")
    }
    #[test]
    fn base_matches_the_constant() {
        let (octets, prefix) = VPC_BASE;
        let text = format!("{}/{prefix}", std::net::Ipv4Addr::from(octets));
        assert_eq!(text, VPC_CIDR);
    }
}
