//! `AwsSolutions-COG4`: API Gateway methods use a Cognito user pool authorizer.

use crate::nag::rules::any_prop;
use crate::nag::{CheckResult, Compliance, Level, Resource, Rule};

/// cdk-nag `CognitoUserPoolAPIGWAuthorizer`.
pub const COGNITO_API_GATEWAY_AUTHORIZER: Rule = Rule {
    id: "AwsSolutions-COG4",
    name: "CognitoUserPoolAPIGWAuthorizer",
    level: Level::Error,
    info: "This API Gateway method is not protected by a Cognito user pool authorizer.",
    explanation: "A user pool authorizer makes API Gateway validate the caller's token before the backend runs, so unauthenticated calls never reach it. \
Set `AuthorizationType: COGNITO_USER_POOLS` with an `AuthorizerId` (CORS preflight `OPTIONS` methods are exempt).",
    check: Some(check),
};

fn check(res: &Resource<'_>) -> CheckResult {
    if res.resource_type != "AWS::ApiGateway::Method" {
        return Ok(Compliance::NotApplicable);
    }
    let methods = res.prop_scalars("HttpMethod")?;
    if methods
        .iter()
        .all(|method| method.is_some_and(|method| method.text() == "OPTIONS"))
    {
        return Ok(Compliance::NotApplicable);
    }
    any_prop(res, "AuthorizationType", |kind| {
        kind.is_none_or(|kind| kind.text() != "COGNITO_USER_POOLS")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nag::testing::{assert_suppressible, status};

    fn method(props: &str) -> String {
        format!(
            "Parameters: {{P: {{Type: String}}}}\nResources: {{R: {{Type: AWS::ApiGateway::Method, Properties: {props}}}}}"
        )
    }

    #[test]
    fn cases() {
        assert_eq!(
            status(
                &method(
                    "{HttpMethod: GET, AuthorizationType: COGNITO_USER_POOLS, AuthorizerId: !Ref A}"
                ),
                &COGNITO_API_GATEWAY_AUTHORIZER
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &method("{HttpMethod: GET, AuthorizationType: NONE}"),
                &COGNITO_API_GATEWAY_AUTHORIZER
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &method("{HttpMethod: OPTIONS, AuthorizationType: NONE}"),
                &COGNITO_API_GATEWAY_AUTHORIZER
            ),
            "n/a"
        );
        assert_eq!(
            status(
                &method("{HttpMethod: !Ref P}"),
                &COGNITO_API_GATEWAY_AUTHORIZER
            ),
            "unresolved: HttpMethod"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::ApiGateway::RestApi}}",
                &COGNITO_API_GATEWAY_AUTHORIZER
            ),
            "n/a"
        );
        assert_suppressible(
            &method("{HttpMethod: POST, AuthorizationType: AWS_IAM}"),
            "AwsSolutions-COG4",
        );
    }
}
