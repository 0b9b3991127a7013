//! `AwsSolutions-COG7`: identity pools do not hand out unauthenticated identities.

use crate::nag::rules::any_prop;
use crate::nag::{CheckResult, Compliance, Level, Resource, Rule};

/// cdk-nag `CognitoUserPoolNoUnauthenticatedLogins`.
pub const COGNITO_NO_UNAUTHENTICATED_LOGINS: Rule = Rule {
    id: "AwsSolutions-COG7",
    name: "CognitoUserPoolNoUnauthenticatedLogins",
    level: Level::Error,
    info: "This Cognito identity pool hands out guest (unauthenticated) identities.",
    explanation: "Guest identities get AWS credentials without signing in, so anything their role allows is open to everyone. \
Set `AllowUnauthenticatedIdentities: false`, or suppress with the reason and keep the unauthenticated role minimal.",
    check: Some(check),
};

fn check(res: &Resource<'_>) -> CheckResult {
    if res.resource_type != "AWS::Cognito::IdentityPool" {
        return Ok(Compliance::NotApplicable);
    }
    any_prop(res, "AllowUnauthenticatedIdentities", |value| {
        value.and_then(|flag| flag.as_bool()) == Some(true)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nag::testing::{assert_suppressible, status};

    fn pool(flag: &str) -> String {
        format!(
            "Parameters: {{P: {{Type: String}}}}\nResources: {{R: {{Type: AWS::Cognito::IdentityPool, Properties: {{AllowUnauthenticatedIdentities: {flag}}}}}}}"
        )
    }

    #[test]
    fn cases() {
        assert_eq!(
            status(&pool("false"), &COGNITO_NO_UNAUTHENTICATED_LOGINS),
            "compliant"
        );
        assert_eq!(
            status(&pool("true"), &COGNITO_NO_UNAUTHENTICATED_LOGINS),
            "non-compliant"
        );
        assert_eq!(
            status(&pool("!Ref P"), &COGNITO_NO_UNAUTHENTICATED_LOGINS),
            "unresolved: AllowUnauthenticatedIdentities"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::Cognito::UserPool}}",
                &COGNITO_NO_UNAUTHENTICATED_LOGINS
            ),
            "n/a"
        );
        assert_suppressible(&pool("'true'"), "AwsSolutions-COG7");
    }
}
