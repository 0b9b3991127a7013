//! `AWS::EC2::*`: VPC, subnets, gateways, routes, flow logs, security groups.

use serde::Serialize;

use crate::model::Value;
use crate::resources::{Tag, resource};

/// `AWS::EC2::VPC`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Vpc {
    /// IPv4 CIDR block.
    #[serde(rename = "CidrBlock", skip_serializing_if = "Option::is_none")]
    pub cidr_block: Option<Value<String>>,
    /// DNS hostnames for instances.
    #[serde(rename = "EnableDnsHostnames", skip_serializing_if = "Option::is_none")]
    pub enable_dns_hostnames: Option<Value<bool>>,
    /// Amazon DNS resolver.
    #[serde(rename = "EnableDnsSupport", skip_serializing_if = "Option::is_none")]
    pub enable_dns_support: Option<Value<bool>>,
    /// Tags.
    #[serde(rename = "Tags", skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}
resource!(Vpc, "AWS::EC2::VPC", VpcAttr {
    CidrBlock => "CidrBlock",
    DefaultSecurityGroup => "DefaultSecurityGroup",
    DefaultNetworkAcl => "DefaultNetworkAcl",
    VpcId => "VpcId",
});

/// `AWS::EC2::Subnet`.
#[derive(Debug, Clone, Serialize)]
pub struct Subnet {
    /// The VPC.
    #[serde(rename = "VpcId")]
    pub vpc_id: Value<String>,
    /// Availability zone.
    #[serde(rename = "AvailabilityZone", skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<Value<String>>,
    /// IPv4 CIDR block.
    #[serde(rename = "CidrBlock", skip_serializing_if = "Option::is_none")]
    pub cidr_block: Option<Value<String>>,
    /// Give instances a public IP.
    #[serde(
        rename = "MapPublicIpOnLaunch",
        skip_serializing_if = "Option::is_none"
    )]
    pub map_public_ip_on_launch: Option<Value<bool>>,
    /// Tags.
    #[serde(rename = "Tags", skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}
resource!(Subnet, "AWS::EC2::Subnet", SubnetAttr {
    AvailabilityZone => "AvailabilityZone",
    CidrBlock => "CidrBlock",
    SubnetId => "SubnetId",
    VpcId => "VpcId",
});

/// `AWS::EC2::InternetGateway`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InternetGateway {
    /// Tags.
    #[serde(rename = "Tags", skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}
resource!(InternetGateway, "AWS::EC2::InternetGateway", InternetGatewayAttr {
    InternetGatewayId => "InternetGatewayId",
});

/// `AWS::EC2::VPCGatewayAttachment`.
#[derive(Debug, Clone, Serialize)]
pub struct VpcGatewayAttachment {
    /// The VPC.
    #[serde(rename = "VpcId")]
    pub vpc_id: Value<String>,
    /// The internet gateway.
    #[serde(rename = "InternetGatewayId", skip_serializing_if = "Option::is_none")]
    pub internet_gateway_id: Option<Value<String>>,
}
resource!(VpcGatewayAttachment, "AWS::EC2::VPCGatewayAttachment");

/// `AWS::EC2::RouteTable`.
#[derive(Debug, Clone, Serialize)]
pub struct RouteTable {
    /// The VPC.
    #[serde(rename = "VpcId")]
    pub vpc_id: Value<String>,
    /// Tags.
    #[serde(rename = "Tags", skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}
resource!(RouteTable, "AWS::EC2::RouteTable", RouteTableAttr {
    RouteTableId => "RouteTableId",
});

/// `AWS::EC2::Route`.
#[derive(Debug, Clone, Serialize)]
pub struct Route {
    /// The route table.
    #[serde(rename = "RouteTableId")]
    pub route_table_id: Value<String>,
    /// Destination IPv4 range.
    #[serde(
        rename = "DestinationCidrBlock",
        skip_serializing_if = "Option::is_none"
    )]
    pub destination_cidr_block: Option<Value<String>>,
    /// Internet gateway target.
    #[serde(rename = "GatewayId", skip_serializing_if = "Option::is_none")]
    pub gateway_id: Option<Value<String>>,
    /// NAT gateway target.
    #[serde(rename = "NatGatewayId", skip_serializing_if = "Option::is_none")]
    pub nat_gateway_id: Option<Value<String>>,
}
resource!(Route, "AWS::EC2::Route");

/// `AWS::EC2::SubnetRouteTableAssociation`.
#[derive(Debug, Clone, Serialize)]
pub struct SubnetRouteTableAssociation {
    /// The route table.
    #[serde(rename = "RouteTableId")]
    pub route_table_id: Value<String>,
    /// The subnet.
    #[serde(rename = "SubnetId")]
    pub subnet_id: Value<String>,
}
resource!(
    SubnetRouteTableAssociation,
    "AWS::EC2::SubnetRouteTableAssociation"
);

/// `AWS::EC2::EIP`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Eip {
    /// `vpc` for VPC addresses.
    #[serde(rename = "Domain", skip_serializing_if = "Option::is_none")]
    pub domain: Option<Value<String>>,
    /// Tags.
    #[serde(rename = "Tags", skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}
resource!(Eip, "AWS::EC2::EIP", EipAttr {
    AllocationId => "AllocationId",
    PublicIp => "PublicIp",
});

/// `AWS::EC2::NatGateway`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NatGateway {
    /// Elastic IP allocation.
    #[serde(rename = "AllocationId", skip_serializing_if = "Option::is_none")]
    pub allocation_id: Option<Value<String>>,
    /// Public subnet it lives in.
    #[serde(rename = "SubnetId", skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<Value<String>>,
    /// Tags.
    #[serde(rename = "Tags", skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}
resource!(NatGateway, "AWS::EC2::NatGateway", NatGatewayAttr {
    NatGatewayId => "NatGatewayId",
});

/// `AWS::EC2::VPCEndpoint` (here only the free `Gateway` type, for S3 and DynamoDB).
#[derive(Debug, Clone, Serialize)]
pub struct VpcEndpoint {
    /// `com.amazonaws.<region>.<service>`.
    #[serde(rename = "ServiceName")]
    pub service_name: Value<String>,
    /// The VPC.
    #[serde(rename = "VpcId")]
    pub vpc_id: Value<String>,
    /// `Gateway`, `Interface`, ...
    #[serde(rename = "VpcEndpointType", skip_serializing_if = "Option::is_none")]
    pub vpc_endpoint_type: Option<Value<String>>,
    /// Route tables that get a route to the service's prefix list (gateway endpoints).
    #[serde(rename = "RouteTableIds", skip_serializing_if = "Vec::is_empty")]
    pub route_table_ids: Vec<Value<String>>,
}
resource!(VpcEndpoint, "AWS::EC2::VPCEndpoint", VpcEndpointAttr {
    Id => "Id",
});

/// `AWS::EC2::FlowLog`.
#[derive(Debug, Clone, Serialize)]
pub struct FlowLog {
    /// The VPC, subnet or interface id.
    #[serde(rename = "ResourceId")]
    pub resource_id: Value<String>,
    /// `VPC`, `Subnet`, `NetworkInterface`, ...
    #[serde(rename = "ResourceType")]
    pub resource_type: Value<String>,
    /// `ACCEPT`, `REJECT` or `ALL`.
    #[serde(rename = "TrafficType", skip_serializing_if = "Option::is_none")]
    pub traffic_type: Option<Value<String>>,
    /// `cloud-watch-logs` or `s3`.
    #[serde(rename = "LogDestinationType", skip_serializing_if = "Option::is_none")]
    pub log_destination_type: Option<Value<String>>,
    /// Log group ARN (or bucket ARN).
    #[serde(rename = "LogDestination", skip_serializing_if = "Option::is_none")]
    pub log_destination: Option<Value<String>>,
    /// Role that may write to the log group.
    #[serde(
        rename = "DeliverLogsPermissionArn",
        skip_serializing_if = "Option::is_none"
    )]
    pub deliver_logs_permission_arn: Option<Value<String>>,
    /// Tags.
    #[serde(rename = "Tags", skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}
resource!(FlowLog, "AWS::EC2::FlowLog", FlowLogAttr { Id => "Id" });

/// An inline ingress rule of `AWS::EC2::SecurityGroup`.
#[derive(Debug, Clone, Serialize)]
pub struct Ingress {
    /// `tcp`, `udp`, `icmp` or `-1`.
    #[serde(rename = "IpProtocol")]
    pub ip_protocol: Value<String>,
    /// What the rule is for.
    #[serde(rename = "Description", skip_serializing_if = "Option::is_none")]
    pub description: Option<Value<String>>,
    /// First port.
    #[serde(rename = "FromPort", skip_serializing_if = "Option::is_none")]
    pub from_port: Option<Value<i64>>,
    /// Last port.
    #[serde(rename = "ToPort", skip_serializing_if = "Option::is_none")]
    pub to_port: Option<Value<i64>>,
    /// Source IPv4 range.
    #[serde(rename = "CidrIp", skip_serializing_if = "Option::is_none")]
    pub cidr_ip: Option<Value<String>>,
    /// Source managed prefix list.
    #[serde(rename = "SourcePrefixListId", skip_serializing_if = "Option::is_none")]
    pub source_prefix_list_id: Option<Value<String>>,
    /// Source security group.
    #[serde(
        rename = "SourceSecurityGroupId",
        skip_serializing_if = "Option::is_none"
    )]
    pub source_security_group_id: Option<Value<String>>,
}

/// An inline egress rule of `AWS::EC2::SecurityGroup`.
#[derive(Debug, Clone, Serialize)]
pub struct Egress {
    /// `tcp`, `udp`, `icmp` or `-1`.
    #[serde(rename = "IpProtocol")]
    pub ip_protocol: Value<String>,
    /// What the rule is for.
    #[serde(rename = "Description", skip_serializing_if = "Option::is_none")]
    pub description: Option<Value<String>>,
    /// First port.
    #[serde(rename = "FromPort", skip_serializing_if = "Option::is_none")]
    pub from_port: Option<Value<i64>>,
    /// Last port.
    #[serde(rename = "ToPort", skip_serializing_if = "Option::is_none")]
    pub to_port: Option<Value<i64>>,
    /// Destination IPv4 range.
    #[serde(rename = "CidrIp", skip_serializing_if = "Option::is_none")]
    pub cidr_ip: Option<Value<String>>,
    /// Destination security group.
    #[serde(
        rename = "DestinationSecurityGroupId",
        skip_serializing_if = "Option::is_none"
    )]
    pub destination_security_group_id: Option<Value<String>>,
}

/// `AWS::EC2::SecurityGroup`.
#[derive(Debug, Clone, Serialize)]
pub struct SecurityGroup {
    /// Description (required by EC2).
    #[serde(rename = "GroupDescription")]
    pub group_description: Value<String>,
    /// The VPC.
    #[serde(rename = "VpcId", skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<Value<String>>,
    /// Inline ingress rules.
    #[serde(rename = "SecurityGroupIngress", skip_serializing_if = "Vec::is_empty")]
    pub security_group_ingress: Vec<Ingress>,
    /// Inline egress rules (empty: the EC2 default allow-all egress).
    #[serde(rename = "SecurityGroupEgress", skip_serializing_if = "Vec::is_empty")]
    pub security_group_egress: Vec<Egress>,
    /// Tags.
    #[serde(rename = "Tags", skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}
resource!(SecurityGroup, "AWS::EC2::SecurityGroup", SecurityGroupAttr {
    GroupId => "GroupId",
    VpcId => "VpcId",
});

/// `AWS::EC2::SecurityGroupIngress`: a standalone rule (breaks reference cycles between groups).
#[derive(Debug, Clone, Serialize)]
pub struct SecurityGroupIngress {
    /// The group the rule belongs to.
    #[serde(rename = "GroupId", skip_serializing_if = "Option::is_none")]
    pub group_id: Option<Value<String>>,
    /// The rule, with the same properties as an inline one.
    #[serde(flatten)]
    pub rule: Ingress,
}
resource!(SecurityGroupIngress, "AWS::EC2::SecurityGroupIngress", SecurityGroupIngressAttr {
    Id => "Id",
});
