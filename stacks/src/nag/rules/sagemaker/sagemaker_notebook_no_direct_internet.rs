//! `AwsSolutions-SM3`: notebook instances have direct internet access disabled.

use super::NOTEBOOK;
use crate::nag::rules::any_prop;
use crate::nag::{CheckResult, Compliance, Level, Resource, Rule};

/// cdk-nag `SageMakerNotebookNoDirectInternetAccess`.
pub const SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET: Rule = Rule {
    id: "AwsSolutions-SM3",
    name: "SageMakerNotebookNoDirectInternetAccess",
    level: Level::Error,
    info: "This SageMaker notebook instance has its own route to the internet.",
    explanation: "With direct access SageMaker gives the notebook its own route to the internet, bypassing your VPC controls and making data exfiltration easy. \
Set `DirectInternetAccess: Disabled` and reach the internet (if needed) through your VPC's NAT and endpoints.",
    check: Some(check),
};

fn check(res: &Resource<'_>) -> CheckResult {
    if res.resource_type != NOTEBOOK {
        return Ok(Compliance::NotApplicable);
    }
    any_prop(res, "DirectInternetAccess", |value| {
        value.is_none_or(|access| access.text() != "Disabled")
    })
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
                &notebook("DirectInternetAccess: Disabled"),
                &SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &notebook("DirectInternetAccess: Enabled"),
                &SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &notebook("Tags: []"),
                &SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &notebook("DirectInternetAccess: !Ref P"),
                &SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET
            ),
            "unresolved: DirectInternetAccess"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::SageMaker::Endpoint}}",
                &SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET
            ),
            "n/a"
        );
        assert_suppressible(&notebook("Tags: []"), "AwsSolutions-SM3");
    }
}
