//! `AwsSolutions-SM1`: notebook instances set `SubnetId`.

use super::NOTEBOOK;
use crate::nag::rules::verdict;
use crate::nag::{CheckResult, Compliance, Level, Resource, Rule};

/// cdk-nag `SageMakerNotebookInVPC`.
pub const SAGEMAKER_NOTEBOOK_IN_VPC: Rule = Rule {
    id: "AwsSolutions-SM1",
    name: "SageMakerNotebookInVPC",
    level: Level::Error,
    info: "This SageMaker notebook instance runs outside your VPC (no subnet).",
    explanation: "A notebook outside a VPC cannot be reached by your security groups, VPC endpoints or flow logs. Set `SubnetId` (and `SecurityGroupIds`) so the instance runs in one of your subnets.",
    check: Some(check),
};

fn check(res: &Resource<'_>) -> CheckResult {
    if res.resource_type != NOTEBOOK {
        return Ok(Compliance::NotApplicable);
    }
    verdict(res.may_be_absent(res.prop("SubnetId")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nag::rules::sagemaker::notebook;
    use crate::nag::testing::{assert_suppressible, status};

    #[test]
    fn cases() {
        assert_eq!(
            status(
                &notebook("SubnetId: !Ref Subnet"),
                &SAGEMAKER_NOTEBOOK_IN_VPC
            ),
            "compliant"
        );
        assert_eq!(
            status(&notebook("Tags: []"), &SAGEMAKER_NOTEBOOK_IN_VPC),
            "non-compliant"
        );
        assert_eq!(
            status(
                &notebook("SubnetId: !If [C, subnet-1, !Ref AWS::NoValue]"),
                &SAGEMAKER_NOTEBOOK_IN_VPC
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::SageMaker::Domain}}",
                &SAGEMAKER_NOTEBOOK_IN_VPC
            ),
            "n/a"
        );
        assert_suppressible(&notebook("Tags: []"), "AwsSolutions-SM1");
    }
}
