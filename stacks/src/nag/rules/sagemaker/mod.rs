//! SageMaker notebook instance rules: VPC placement, KMS key, no direct internet access.

mod sagemaker_notebook_in_vpc;
mod sagemaker_notebook_kms_key;
mod sagemaker_notebook_no_direct_internet;

pub use sagemaker_notebook_in_vpc::SAGEMAKER_NOTEBOOK_IN_VPC;
pub use sagemaker_notebook_kms_key::SAGEMAKER_NOTEBOOK_KMS_KEY;
pub use sagemaker_notebook_no_direct_internet::SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET;

/// CloudFormation type of a notebook instance.
pub(crate) const NOTEBOOK: &str = "AWS::SageMaker::NotebookInstance";

#[cfg(test)]
pub(crate) fn notebook(props: &str) -> String {
    format!(
        "Parameters: {{P: {{Type: String}}}}\nConditions: {{C: !Equals [a, b]}}\nResources: {{R: {{Type: AWS::SageMaker::NotebookInstance, Properties: {{InstanceType: ml.t3.medium, RoleArn: arn, {props}}}}}}}"
    )
}
