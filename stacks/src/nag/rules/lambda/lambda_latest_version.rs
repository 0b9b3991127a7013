//! `AwsSolutions-L1`: functions use the latest runtime of their language family.

use crate::nag::rules::verdict;
use crate::nag::{CheckResult, Compliance, Level, Resource, Rule, Unresolved};

/// cdk-nag `LambdaLatestVersion`.
pub const LAMBDA_LATEST_VERSION: Rule = Rule {
    id: "AwsSolutions-L1",
    name: "LambdaLatestVersion",
    level: Level::Error,
    info: "This Lambda function runs an older runtime than the newest of its language family.",
    explanation: "Older runtimes stop receiving security patches and are eventually blocked from updates. \
Use the newest runtime of the language family (see LATEST in the rule's source); container images and `provided` runtimes are not checked.",
    check: Some(check),
};

/// The newest runtime of each family Lambda offers (docs.aws.amazon.com lambda-runtimes, 2026).
/// Retired families point at their successor: `dotnetcore3.1` became `dotnet*`, and Go moved
/// from `go1.x` to the OS-only `provided.al2023` runtime.
const LATEST: [(&str, &str); 7] = [
    ("nodejs", "nodejs24.x"),
    ("python", "python3.14"),
    ("java", "java25"),
    ("dotnet", "dotnet10"),
    ("ruby", "ruby3.4"),
    ("dotnetcore", "dotnet10"),
    ("go", "provided.al2023"),
];

fn check(res: &Resource<'_>) -> CheckResult {
    if res.resource_type != "AWS::Lambda::Function" {
        return Ok(Compliance::NotApplicable);
    }
    let runtimes = res.prop_scalars("Runtime")?;
    let mut outdated = false;
    let mut checked = false;
    for runtime in runtimes.into_iter().flatten() {
        let runtime = runtime.text();
        let family: String = runtime
            .chars()
            .take_while(|c| c.is_ascii_lowercase())
            .collect();
        if family.is_empty() {
            return Err(Unresolved::new(
                "Runtime",
                format!("`{runtime}` is not a Lambda runtime identifier"),
            ));
        }
        if family == "provided" {
            continue;
        }
        let Some((_, latest)) = LATEST.iter().find(|(known, _)| *known == family) else {
            return Err(Unresolved::new(
                "Runtime",
                format!("`{runtime}` belongs to no known runtime family"),
            ));
        };
        checked = true;
        outdated |= runtime != *latest;
    }
    if !checked {
        // Container images have no runtime; custom runtimes are not versioned by Lambda.
        return Ok(Compliance::NotApplicable);
    }
    verdict(outdated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nag::testing::{assert_suppressible, status};

    fn function(runtime: &str) -> String {
        format!(
            "Parameters: {{P: {{Type: String}}}}\nConditions: {{C: !Equals [a, b]}}\nResources: {{R: {{Type: AWS::Lambda::Function, Properties: {{Handler: index.handler, {runtime}}}}}}}"
        )
    }

    #[test]
    fn cases() {
        assert_eq!(
            status(&function("Runtime: python3.14"), &LAMBDA_LATEST_VERSION),
            "compliant"
        );
        assert_eq!(
            status(&function("Runtime: nodejs24.x"), &LAMBDA_LATEST_VERSION),
            "compliant"
        );
        assert_eq!(
            status(&function("Runtime: python3.9"), &LAMBDA_LATEST_VERSION),
            "non-compliant"
        );
        assert_eq!(
            status(
                &function("Runtime: !If [C, python3.14, python3.12]"),
                &LAMBDA_LATEST_VERSION
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &function("Runtime: provided.al2023"),
                &LAMBDA_LATEST_VERSION
            ),
            "n/a"
        );
        assert_eq!(
            status(&function("PackageType: Image"), &LAMBDA_LATEST_VERSION),
            "n/a"
        );
        assert_eq!(
            status(&function("Runtime: !Ref P"), &LAMBDA_LATEST_VERSION),
            "unresolved: Runtime"
        );
        assert_eq!(
            status(&function("Runtime: cobol85"), &LAMBDA_LATEST_VERSION),
            "unresolved: Runtime"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::Lambda::Permission}}",
                &LAMBDA_LATEST_VERSION
            ),
            "n/a"
        );
        assert_suppressible(&function("Runtime: nodejs18.x"), "AwsSolutions-L1");
    }

    /// `dotnetcore3.1` and `go1.x` were reported as "could not validate" instead of outdated.
    #[test]
    fn regression_retired_runtime_families_are_outdated() {
        for runtime in ["dotnetcore3.1", "go1.x"] {
            assert_eq!(
                status(
                    &function(&format!("Runtime: {runtime}")),
                    &LAMBDA_LATEST_VERSION
                ),
                "non-compliant",
                "{runtime}"
            );
        }
    }
}
