//! `AwsSolutions-SM2`: notebook instances set `KmsKeyId`.

use super::NOTEBOOK;
use crate::nag::rules::verdict;
use crate::nag::{CheckResult, Compliance, Level, Resource, Rule};

/// cdk-nag `SageMakerNotebookInstanceKMSKeyConfigured`.
pub const SAGEMAKER_NOTEBOOK_KMS_KEY: Rule = Rule {
    id: "AwsSolutions-SM2",
    name: "SageMakerNotebookInstanceKMSKeyConfigured",
    level: Level::Error,
    info: "This SageMaker notebook instance's storage is not encrypted with your KMS key.",
    explanation: "The notebook's ML storage volume holds data and credentials; a customer managed KMS key lets you control and audit who can decrypt it. Set `KmsKeyId` to a KMS key.",
    check: Some(check),
};

fn check(res: &Resource<'_>) -> CheckResult {
    if res.resource_type != NOTEBOOK {
        return Ok(Compliance::NotApplicable);
    }
    verdict(res.may_be_absent(res.prop("KmsKeyId")))
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
                &notebook("KmsKeyId: !GetAtt Key.Arn"),
                &SAGEMAKER_NOTEBOOK_KMS_KEY
            ),
            "compliant"
        );
        assert_eq!(
            status(&notebook("Tags: []"), &SAGEMAKER_NOTEBOOK_KMS_KEY),
            "non-compliant"
        );
        assert_eq!(
            status(
                &notebook("KmsKeyId: !If [C, !Ref AWS::NoValue, key]"),
                &SAGEMAKER_NOTEBOOK_KMS_KEY
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::SageMaker::Domain}}",
                &SAGEMAKER_NOTEBOOK_KMS_KEY
            ),
            "n/a"
        );
        assert_suppressible(&notebook("Tags: []"), "AwsSolutions-SM2");
    }
}
