//! `AwsSolutions-COG2`: user pools require MFA (warning).

use super::USER_POOL;
use crate::nag::rules::any_prop;
use crate::nag::{CheckResult, Compliance, Level, Resource, Rule};

/// cdk-nag `CognitoUserPoolMFA`.
pub const COGNITO_MFA: Rule = Rule {
    id: "AwsSolutions-COG2",
    name: "CognitoUserPoolMFA",
    level: Level::Warning,
    info: "Users of this Cognito user pool can sign in without a second factor.",
    explanation: "A second factor stops most account takeovers that start with a phished or reused password. \
Set `MfaConfiguration: 'ON'` with TOTP or SMS enabled; `OPTIONAL` leaves it to each user and is flagged.",
    check: Some(check),
};

fn check(res: &Resource<'_>) -> CheckResult {
    if res.resource_type != USER_POOL {
        return Ok(Compliance::NotApplicable);
    }
    any_prop(res, "MfaConfiguration", |value| {
        value.is_none_or(|mfa| mfa.text() != "ON")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nag::rules::cognito::pool;
    use crate::nag::testing::{assert_suppressible, status};

    #[test]
    fn cases() {
        assert_eq!(
            status(&pool("{MfaConfiguration: 'ON'}"), &COGNITO_MFA),
            "compliant"
        );
        assert_eq!(
            status(&pool("{MfaConfiguration: !Ref Mfa}"), &COGNITO_MFA),
            "compliant"
        );
        assert_eq!(
            status(&pool("{MfaConfiguration: OPTIONAL}"), &COGNITO_MFA),
            "non-compliant"
        );
        assert_eq!(status(&pool("{}"), &COGNITO_MFA), "non-compliant");
        assert_eq!(
            status(&pool("{MfaConfiguration: !Ref P}"), &COGNITO_MFA),
            "unresolved: MfaConfiguration"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::Cognito::IdentityPool}}",
                &COGNITO_MFA
            ),
            "n/a"
        );
        assert_suppressible(&pool("{}"), "AwsSolutions-COG2");
    }
}
