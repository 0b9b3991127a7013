//! CodeBuild rules: KMS-encrypted artifacts and AWS managed build images.

mod codebuild_kms_encrypted_artifacts;
mod codebuild_managed_images;

pub use codebuild_kms_encrypted_artifacts::CODEBUILD_KMS_ENCRYPTED_ARTIFACTS;
pub use codebuild_managed_images::CODEBUILD_MANAGED_IMAGES;

#[cfg(test)]
pub(crate) fn project(props: &str) -> String {
    format!(
        "Parameters: {{P: {{Type: String}}, Img: {{Type: String, Default: 'aws/codebuild/standard:7.0'}}}}\nConditions: {{C: !Equals [a, b]}}\nResources: {{R: {{Type: AWS::CodeBuild::Project, Properties: {props}}}}}"
    )
}
