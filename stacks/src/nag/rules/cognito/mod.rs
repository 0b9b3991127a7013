//! Cognito rules: password policy, MFA, Plus tier, API Gateway authorizers, identity pools.

mod cognito_api_gateway_authorizer;
mod cognito_mfa;
mod cognito_no_unauthenticated_logins;
mod cognito_plus_tier;
mod cognito_strong_password_policy;

pub use cognito_api_gateway_authorizer::COGNITO_API_GATEWAY_AUTHORIZER;
pub use cognito_mfa::COGNITO_MFA;
pub use cognito_no_unauthenticated_logins::COGNITO_NO_UNAUTHENTICATED_LOGINS;
pub use cognito_plus_tier::COGNITO_PLUS_TIER;
pub use cognito_strong_password_policy::COGNITO_STRONG_PASSWORD_POLICY;

/// CloudFormation type of a user pool.
pub(crate) const USER_POOL: &str = "AWS::Cognito::UserPool";

#[cfg(test)]
pub(crate) fn pool(props: &str) -> String {
    format!(
        "Parameters: {{P: {{Type: String}}, Mfa: {{Type: String, Default: 'ON'}}}}\nConditions: {{C: !Equals [a, b]}}\nResources: {{R: {{Type: AWS::Cognito::UserPool, Properties: {props}}}}}"
    )
}
