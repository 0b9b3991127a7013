//! `AwsSolutions-VPC7`: every VPC has a flow log.

use serde_json::Value;

use crate::nag::resolve::referenced_id;
use crate::nag::rules::verdict;
use crate::nag::{CheckResult, Compliance, Level, Resource, Rule};

/// cdk-nag `VPCFlowLogsEnabled`.
pub const VPC_FLOW_LOGS_ENABLED: Rule = Rule {
    id: "AwsSolutions-VPC7",
    name: "VPCFlowLogsEnabled",
    level: Level::Error,
    info: "No flow log records the traffic of this VPC.",
    explanation: "Flow logs record accepted and rejected connections, which is how unexpected traffic, blocked requests and exfiltration are found. \
Add an AWS::EC2::FlowLog with `ResourceType: VPC` and `ResourceId: !Ref <the VPC>` in the same template.",
    check: Some(check),
};

fn check(res: &Resource<'_>) -> CheckResult {
    if res.resource_type != "AWS::EC2::VPC" {
        return Ok(Compliance::NotApplicable);
    }
    let logged = res.referrers(&["AWS::EC2::FlowLog"]).any(|flow_log| {
        flow_log.prop("ResourceType").and_then(Value::as_str) == Some("VPC")
            && flow_log.prop("ResourceId").and_then(referenced_id) == Some(res.logical_id)
    });
    verdict(!logged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nag::testing::{assert_suppressible, status};

    fn tpl(flow_log: &str) -> String {
        format!(
            "Resources: {{R: {{Type: AWS::EC2::VPC, Properties: {{CidrBlock: 10.0.0.0/16}}}}, F: {{Type: AWS::EC2::FlowLog, Properties: {flow_log}}}}}"
        )
    }

    #[test]
    fn cases() {
        assert_eq!(
            status(
                &tpl("{ResourceType: VPC, ResourceId: !Ref R, TrafficType: ALL}"),
                &VPC_FLOW_LOGS_ENABLED
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &tpl("{ResourceType: VPC, ResourceId: !GetAtt R.VpcId}"),
                &VPC_FLOW_LOGS_ENABLED
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &tpl("{ResourceType: Subnet, ResourceId: !Ref R}"),
                &VPC_FLOW_LOGS_ENABLED
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &tpl("{ResourceType: VPC, ResourceId: vpc-123}"),
                &VPC_FLOW_LOGS_ENABLED
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::EC2::Subnet}}",
                &VPC_FLOW_LOGS_ENABLED
            ),
            "n/a"
        );
        assert_suppressible("Resources: {R: {Type: AWS::EC2::VPC}}", "AwsSolutions-VPC7");
    }
}
