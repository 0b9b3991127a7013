//! `AwsSolutions-COG1`: user pools require strong passwords.

use super::USER_POOL;
use crate::nag::rules::{field, nested, verdict};
use crate::nag::{CheckResult, Compliance, Level, Resource, Rule};

/// cdk-nag `CognitoUserPoolStrongPasswordPolicy`.
pub const COGNITO_STRONG_PASSWORD_POLICY: Rule = Rule {
    id: "AwsSolutions-COG1",
    name: "CognitoUserPoolStrongPasswordPolicy",
    level: Level::Error,
    info: "The password policy of this Cognito user pool is weaker than 8+ characters with uppercase letters, digits and symbols.",
    explanation: "Short or simple passwords fall to guessing and credential stuffing. \
Set `Policies.PasswordPolicy` with `MinimumLength` of 8 or more and `RequireUppercase`, `RequireNumbers` and `RequireSymbols` all true.",
    check: Some(check),
};

fn check(res: &Resource<'_>) -> CheckResult {
    if res.resource_type != USER_POOL {
        return Ok(Compliance::NotApplicable);
    }
    for policies in res.objects(res.prop("Policies"), "Policies")? {
        let Some(policies) = policies else {
            return verdict(true);
        };
        for password in nested(res, Some(policies), "PasswordPolicy", "Policies")? {
            let Some(password) = password else {
                return verdict(true);
            };
            let path = "Policies.PasswordPolicy";
            let lengths = field(res, Some(password), "MinimumLength", path)?;
            if lengths.into_iter().any(|length| {
                length
                    .and_then(|length| length.as_f64())
                    .is_none_or(|length| length < 8.0)
            }) {
                return verdict(true);
            }
            for key in ["RequireUppercase", "RequireNumbers", "RequireSymbols"] {
                let flags = field(res, Some(password), key, path)?;
                if flags
                    .into_iter()
                    .any(|flag| flag.and_then(|flag| flag.as_bool()) != Some(true))
                {
                    return verdict(true);
                }
            }
        }
    }
    verdict(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nag::rules::cognito::pool;
    use crate::nag::testing::{assert_suppressible, status};

    #[test]
    fn cases() {
        let strong = "{Policies: {PasswordPolicy: {MinimumLength: LEN, RequireUppercase: true, RequireNumbers: true, RequireSymbols: true}}}";
        assert_eq!(
            status(
                &pool(&strong.replace("LEN", "12")),
                &COGNITO_STRONG_PASSWORD_POLICY
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &pool(&strong.replace("LEN", "6")),
                &COGNITO_STRONG_PASSWORD_POLICY
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &pool(&strong.replace("LEN", "!If [C, 12, 6]")),
                &COGNITO_STRONG_PASSWORD_POLICY
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &pool(
                    &strong
                        .replace("RequireSymbols: true", "RequireSymbols: false")
                        .replace("LEN", "8")
                ),
                &COGNITO_STRONG_PASSWORD_POLICY
            ),
            "non-compliant"
        );
        assert_eq!(
            status(&pool("{}"), &COGNITO_STRONG_PASSWORD_POLICY),
            "non-compliant"
        );
        assert_eq!(
            status(
                &pool(&strong.replace("LEN", "!Ref P")),
                &COGNITO_STRONG_PASSWORD_POLICY
            ),
            "unresolved: Policies.PasswordPolicy.MinimumLength"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::Cognito::UserPoolClient}}",
                &COGNITO_STRONG_PASSWORD_POLICY
            ),
            "n/a"
        );
        assert_suppressible(&pool("{}"), "AwsSolutions-COG1");
    }
}
