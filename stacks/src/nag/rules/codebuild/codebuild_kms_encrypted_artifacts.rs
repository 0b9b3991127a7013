//! `AwsSolutions-CB4`: build artifacts are encrypted with a customer managed KMS key.

use crate::nag::rules::verdict;
use crate::nag::{CheckResult, Compliance, Level, Resource, Rule};

/// cdk-nag `CodeBuildProjectKMSEncryptedArtifacts`.
pub const CODEBUILD_KMS_ENCRYPTED_ARTIFACTS: Rule = Rule {
    id: "AwsSolutions-CB4",
    name: "CodeBuildProjectKMSEncryptedArtifacts",
    level: Level::Error,
    info: "This CodeBuild project's artifacts are not encrypted with a customer managed KMS key.",
    explanation: "Build output often holds deployable code and configuration; a key you manage lets you restrict and audit who can read it. \
Set `EncryptionKey` to a customer managed key (the AWS managed `alias/aws/s3` is flagged).",
    check: Some(check),
};

fn check(res: &Resource<'_>) -> CheckResult {
    if res.resource_type != "AWS::CodeBuild::Project" {
        return Ok(Compliance::NotApplicable);
    }
    verdict(
        res.variants(res.prop("EncryptionKey"))
            .into_iter()
            .any(|key| key.is_none_or(|key| key.as_str() == Some("alias/aws/s3"))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nag::rules::codebuild::project;
    use crate::nag::testing::{assert_suppressible, status};

    #[test]
    fn cases() {
        assert_eq!(
            status(
                &project("{EncryptionKey: !GetAtt Key.Arn}"),
                &CODEBUILD_KMS_ENCRYPTED_ARTIFACTS
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &project("{EncryptionKey: alias/aws/s3}"),
                &CODEBUILD_KMS_ENCRYPTED_ARTIFACTS
            ),
            "non-compliant"
        );
        assert_eq!(
            status(&project("{}"), &CODEBUILD_KMS_ENCRYPTED_ARTIFACTS),
            "non-compliant"
        );
        assert_eq!(
            status(
                &project("{EncryptionKey: !If [C, key, !Ref AWS::NoValue]}"),
                &CODEBUILD_KMS_ENCRYPTED_ARTIFACTS
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::KMS::Key}}",
                &CODEBUILD_KMS_ENCRYPTED_ARTIFACTS
            ),
            "n/a"
        );
        assert_suppressible(&project("{}"), "AwsSolutions-CB4");
    }
}
