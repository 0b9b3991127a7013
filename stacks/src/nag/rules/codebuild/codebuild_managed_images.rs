//! `AwsSolutions-CB5`: projects build on AWS managed images (warning).

use crate::nag::rules::{field, verdict};
use crate::nag::{CheckResult, Compliance, Level, Resource, Rule};

/// cdk-nag `CodeBuildProjectManagedImages`.
pub const CODEBUILD_MANAGED_IMAGES: Rule = Rule {
    id: "AwsSolutions-CB5",
    name: "CodeBuildProjectManagedImages",
    level: Level::Warning,
    info: "This CodeBuild project builds on a custom image instead of an AWS managed one.",
    explanation: "AWS managed build images are patched and cached by CodeBuild; a custom image is a supply-chain component you must scan and update yourself. \
Use an `aws/codebuild/...` image, or suppress with how the custom image is maintained.",
    check: Some(check),
};

fn check(res: &Resource<'_>) -> CheckResult {
    if res.resource_type != "AWS::CodeBuild::Project" {
        return Ok(Compliance::NotApplicable);
    }
    for environment in res.objects(res.prop("Environment"), "Environment")? {
        let images = field(res, environment, "Image", "Environment")?;
        if images
            .into_iter()
            .any(|image| image.is_none_or(|image| !image.text().starts_with("aws/codebuild/")))
        {
            return verdict(true);
        }
    }
    verdict(false)
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
                &project("{Environment: {Image: 'aws/codebuild/standard:7.0'}}"),
                &CODEBUILD_MANAGED_IMAGES
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &project("{Environment: {Image: !Ref Img}}"),
                &CODEBUILD_MANAGED_IMAGES
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &project("{Environment: {Image: 'public.ecr.aws/x/y:1'}}"),
                &CODEBUILD_MANAGED_IMAGES
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &project("{Environment: {Image: !Ref P}}"),
                &CODEBUILD_MANAGED_IMAGES
            ),
            "unresolved: Environment.Image"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::CodeBuild::ReportGroup}}",
                &CODEBUILD_MANAGED_IMAGES
            ),
            "n/a"
        );
        assert_suppressible(
            &project("{Environment: {Image: 'ubuntu:24.04'}}"),
            "AwsSolutions-CB5",
        );
    }
}
