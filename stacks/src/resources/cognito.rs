//! `AWS::Cognito::*`: user pool and app client.

use serde::Serialize;

use crate::model::Value;
use crate::resources::resource;

/// Password rules.
#[derive(Debug, Clone, Serialize)]
pub struct PasswordPolicy {
    /// Minimum length.
    #[serde(rename = "MinimumLength", skip_serializing_if = "Option::is_none")]
    pub minimum_length: Option<Value<i64>>,
    /// Require a lowercase letter.
    #[serde(rename = "RequireLowercase", skip_serializing_if = "Option::is_none")]
    pub require_lowercase: Option<Value<bool>>,
    /// Require a digit.
    #[serde(rename = "RequireNumbers", skip_serializing_if = "Option::is_none")]
    pub require_numbers: Option<Value<bool>>,
    /// Require a symbol.
    #[serde(rename = "RequireSymbols", skip_serializing_if = "Option::is_none")]
    pub require_symbols: Option<Value<bool>>,
    /// Require an uppercase letter.
    #[serde(rename = "RequireUppercase", skip_serializing_if = "Option::is_none")]
    pub require_uppercase: Option<Value<bool>>,
    /// Days an admin-set temporary password stays valid.
    #[serde(
        rename = "TemporaryPasswordValidityDays",
        skip_serializing_if = "Option::is_none"
    )]
    pub temporary_password_validity_days: Option<Value<i64>>,
    /// Previous passwords that cannot be reused (Essentials/Plus tiers).
    #[serde(
        rename = "PasswordHistorySize",
        skip_serializing_if = "Option::is_none"
    )]
    pub password_history_size: Option<Value<i64>>,
}

/// Pool policies.
#[derive(Debug, Clone, Serialize)]
pub struct Policies {
    /// Password rules.
    #[serde(rename = "PasswordPolicy", skip_serializing_if = "Option::is_none")]
    pub password_policy: Option<PasswordPolicy>,
}

/// Who may create users.
#[derive(Debug, Clone, Serialize)]
pub struct AdminCreateUserConfig {
    /// True: no self sign-up.
    #[serde(
        rename = "AllowAdminCreateUserOnly",
        skip_serializing_if = "Option::is_none"
    )]
    pub allow_admin_create_user_only: Option<Value<bool>>,
}

/// Threat protection.
#[derive(Debug, Clone, Serialize)]
pub struct UserPoolAddOns {
    /// `OFF`, `AUDIT` or `ENFORCED`.
    #[serde(
        rename = "AdvancedSecurityMode",
        skip_serializing_if = "Option::is_none"
    )]
    pub advanced_security_mode: Option<Value<String>>,
}

/// An account recovery channel.
#[derive(Debug, Clone, Serialize)]
pub struct RecoveryOption {
    /// `verified_email`, `verified_phone_number` or `admin_only`.
    #[serde(rename = "Name", skip_serializing_if = "Option::is_none")]
    pub name: Option<Value<String>>,
    /// Priority (1 first).
    #[serde(rename = "Priority", skip_serializing_if = "Option::is_none")]
    pub priority: Option<Value<i64>>,
}

/// Account recovery.
#[derive(Debug, Clone, Serialize)]
pub struct AccountRecoverySetting {
    /// Channels.
    #[serde(rename = "RecoveryMechanisms", skip_serializing_if = "Vec::is_empty")]
    pub recovery_mechanisms: Vec<RecoveryOption>,
}

/// Username case sensitivity.
#[derive(Debug, Clone, Serialize)]
pub struct UsernameConfiguration {
    /// Case-sensitive usernames.
    #[serde(rename = "CaseSensitive", skip_serializing_if = "Option::is_none")]
    pub case_sensitive: Option<Value<bool>>,
}

/// `AWS::Cognito::UserPool`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct UserPool {
    /// Pool name.
    #[serde(rename = "UserPoolName", skip_serializing_if = "Option::is_none")]
    pub user_pool_name: Option<Value<String>>,
    /// `LITE`, `ESSENTIALS` or `PLUS` (threat protection needs `PLUS`).
    #[serde(rename = "UserPoolTier", skip_serializing_if = "Option::is_none")]
    pub user_pool_tier: Option<Value<String>>,
    /// Who may create users.
    #[serde(
        rename = "AdminCreateUserConfig",
        skip_serializing_if = "Option::is_none"
    )]
    pub admin_create_user_config: Option<AdminCreateUserConfig>,
    /// Policies.
    #[serde(rename = "Policies", skip_serializing_if = "Option::is_none")]
    pub policies: Option<Policies>,
    /// `OFF`, `ON` or `OPTIONAL`.
    #[serde(rename = "MfaConfiguration", skip_serializing_if = "Option::is_none")]
    pub mfa_configuration: Option<Value<String>>,
    /// `SOFTWARE_TOKEN_MFA`, `SMS_MFA`, `EMAIL_OTP`.
    #[serde(rename = "EnabledMfas", skip_serializing_if = "Vec::is_empty")]
    pub enabled_mfas: Vec<Value<String>>,
    /// Threat protection.
    #[serde(rename = "UserPoolAddOns", skip_serializing_if = "Option::is_none")]
    pub user_pool_add_ons: Option<UserPoolAddOns>,
    /// Attributes used as the username (`email`, `phone_number`).
    #[serde(rename = "UsernameAttributes", skip_serializing_if = "Vec::is_empty")]
    pub username_attributes: Vec<Value<String>>,
    /// Attributes verified automatically.
    #[serde(
        rename = "AutoVerifiedAttributes",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub auto_verified_attributes: Vec<Value<String>>,
    /// Account recovery.
    #[serde(
        rename = "AccountRecoverySetting",
        skip_serializing_if = "Option::is_none"
    )]
    pub account_recovery_setting: Option<AccountRecoverySetting>,
    /// Username case sensitivity.
    #[serde(
        rename = "UsernameConfiguration",
        skip_serializing_if = "Option::is_none"
    )]
    pub username_configuration: Option<UsernameConfiguration>,
    /// `ACTIVE` or `INACTIVE`.
    #[serde(rename = "DeletionProtection", skip_serializing_if = "Option::is_none")]
    pub deletion_protection: Option<Value<String>>,
}
resource!(UserPool, "AWS::Cognito::UserPool", UserPoolAttr {
    Arn => "Arn",
    ProviderName => "ProviderName",
    ProviderUrl => "ProviderURL",
    UserPoolId => "UserPoolId",
});

/// `AWS::Cognito::UserPoolClient`.
#[derive(Debug, Clone, Serialize)]
pub struct UserPoolClient {
    /// The pool.
    #[serde(rename = "UserPoolId")]
    pub user_pool_id: Value<String>,
    /// Client name.
    #[serde(rename = "ClientName", skip_serializing_if = "Option::is_none")]
    pub client_name: Option<Value<String>>,
    /// Generate a client secret (confidential client).
    #[serde(rename = "GenerateSecret", skip_serializing_if = "Option::is_none")]
    pub generate_secret: Option<Value<bool>>,
    /// `ALLOW_USER_PASSWORD_AUTH`, `ALLOW_USER_SRP_AUTH`, `ALLOW_REFRESH_TOKEN_AUTH`, ...
    #[serde(rename = "ExplicitAuthFlows", skip_serializing_if = "Vec::is_empty")]
    pub explicit_auth_flows: Vec<Value<String>>,
    /// `ENABLED`: do not reveal whether a user exists.
    #[serde(
        rename = "PreventUserExistenceErrors",
        skip_serializing_if = "Option::is_none"
    )]
    pub prevent_user_existence_errors: Option<Value<String>>,
    /// Allow revoking refresh tokens.
    #[serde(
        rename = "EnableTokenRevocation",
        skip_serializing_if = "Option::is_none"
    )]
    pub enable_token_revocation: Option<Value<bool>>,
    /// Access token validity (units per `TokenValidityUnits`).
    #[serde(
        rename = "AccessTokenValidity",
        skip_serializing_if = "Option::is_none"
    )]
    pub access_token_validity: Option<Value<i64>>,
    /// Id token validity.
    #[serde(rename = "IdTokenValidity", skip_serializing_if = "Option::is_none")]
    pub id_token_validity: Option<Value<i64>>,
    /// Refresh token validity.
    #[serde(
        rename = "RefreshTokenValidity",
        skip_serializing_if = "Option::is_none"
    )]
    pub refresh_token_validity: Option<Value<i64>>,
    /// Units of the validities.
    #[serde(rename = "TokenValidityUnits", skip_serializing_if = "Option::is_none")]
    pub token_validity_units: Option<TokenValidityUnits>,
}
resource!(UserPoolClient, "AWS::Cognito::UserPoolClient", UserPoolClientAttr {
    ClientId => "ClientId",
    ClientSecret => "ClientSecret",
    Name => "Name",
});

/// `AWS::Cognito::UserPoolGroup`.
#[derive(Debug, Clone, Serialize)]
pub struct UserPoolGroup {
    /// The pool.
    #[serde(rename = "UserPoolId")]
    pub user_pool_id: Value<String>,
    /// The group's name (what the `cognito:groups` claim carries).
    #[serde(rename = "GroupName", skip_serializing_if = "Option::is_none")]
    pub group_name: Option<Value<String>>,
    /// What the group is for.
    #[serde(rename = "Description", skip_serializing_if = "Option::is_none")]
    pub description: Option<Value<String>>,
    /// Lower is stronger when a user's groups name IAM roles (unused here).
    #[serde(rename = "Precedence", skip_serializing_if = "Option::is_none")]
    pub precedence: Option<Value<i64>>,
}
resource!(UserPoolGroup, "AWS::Cognito::UserPoolGroup");

/// Units of token validities.
#[derive(Debug, Clone, Serialize)]
pub struct TokenValidityUnits {
    /// `seconds`, `minutes`, `hours` or `days`.
    #[serde(rename = "AccessToken", skip_serializing_if = "Option::is_none")]
    pub access_token: Option<Value<String>>,
    /// Unit of the id token validity.
    #[serde(rename = "IdToken", skip_serializing_if = "Option::is_none")]
    pub id_token: Option<Value<String>>,
    /// Unit of the refresh token validity.
    #[serde(rename = "RefreshToken", skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<Value<String>>,
}
