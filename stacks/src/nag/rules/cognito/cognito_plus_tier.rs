//! `AwsSolutions-COG8`: user pools use the Plus feature plan (threat protection).

use super::USER_POOL;
use crate::nag::rules::any_prop;
use crate::nag::{CheckResult, Compliance, Level, Resource, Rule};

/// cdk-nag `CognitoUserPoolPlusTier`.
pub const COGNITO_PLUS_TIER: Rule = Rule {
    id: "AwsSolutions-COG8",
    name: "CognitoUserPoolPlusTier",
    level: Level::Error,
    info: "This Cognito user pool is not on the Plus feature plan (no threat protection).",
    explanation: "Threat protection (compromised-credential checks and adaptive, risk-based authentication) is only available on the Plus plan. \
Set `UserPoolTier: PLUS`, or suppress with the reason the cost is not justified and which control replaces it.",
    check: Some(check),
};

fn check(res: &Resource<'_>) -> CheckResult {
    if res.resource_type != USER_POOL {
        return Ok(Compliance::NotApplicable);
    }
    any_prop(res, "UserPoolTier", |value| {
        value.is_none_or(|tier| tier.text() != "PLUS")
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
            status(&pool("{UserPoolTier: PLUS}"), &COGNITO_PLUS_TIER),
            "compliant"
        );
        assert_eq!(
            status(&pool("{UserPoolTier: ESSENTIALS}"), &COGNITO_PLUS_TIER),
            "non-compliant"
        );
        assert_eq!(
            status(
                &pool("{UserPoolTier: !If [C, PLUS, LITE]}"),
                &COGNITO_PLUS_TIER
            ),
            "non-compliant"
        );
        assert_eq!(status(&pool("{}"), &COGNITO_PLUS_TIER), "non-compliant");
        assert_eq!(
            status(&pool("{UserPoolTier: !Ref P}"), &COGNITO_PLUS_TIER),
            "unresolved: UserPoolTier"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::Cognito::UserPoolDomain}}",
                &COGNITO_PLUS_TIER
            ),
            "n/a"
        );
        assert_suppressible(&pool("{}"), "AwsSolutions-COG8");
    }
}
