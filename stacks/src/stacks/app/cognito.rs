//! Cognito: the user pool (administrators create users, Plus tier with threat protection
//! enforced), its confidential app client, the facilitators' group (`DEPLOY_FACILITATOR_GROUP`:
//! members get the web app's facilitator view through their tokens' `cognito:groups` claim),
//! and the Secrets Manager secret CloudFormation copies the client secret into, so the secret
//! never appears in the template or an output.

use crate::config::StackConfig;
use crate::model::{Expr, Handle, Policy as Retention, Template, s, strs};
use crate::resources::cognito::{
    AccountRecoverySetting, AdminCreateUserConfig, PasswordPolicy, Policies, RecoveryOption,
    TokenValidityUnits, UserPool, UserPoolAddOns, UserPoolClient, UserPoolClientAttr,
    UserPoolGroup, UsernameConfiguration,
};
use crate::resources::secretsmanager::Secret;
use crate::stacks::app::{Imports, app_tags};
use crate::stacks::checkov;

/// Handles of the sign-in resources.
pub(super) struct Auth {
    pub user_pool: Handle<UserPool>,
    pub client: Handle<UserPoolClient>,
    /// Holds the pool id, client id and client secret.
    pub client_secret: Handle<Secret>,
}

pub(super) fn add(t: &mut Template, cfg: &StackConfig, imports: &Imports) -> Auth {
    let prefix = cfg.prefix.as_str();
    // Cognito: administrators create users; threat protection needs the Plus tier.
    let user_pool = t.add(
        "UserPool",
        UserPool {
            user_pool_name: Some(s(format!("{prefix}-users"))),
            user_pool_tier: Some(s("PLUS")),
            admin_create_user_config: Some(AdminCreateUserConfig {
                allow_admin_create_user_only: Some(true.into()),
            }),
            policies: Some(Policies {
                password_policy: Some(PasswordPolicy {
                    minimum_length: Some(14.into()),
                    require_lowercase: Some(true.into()),
                    require_numbers: Some(true.into()),
                    require_symbols: Some(true.into()),
                    require_uppercase: Some(true.into()),
                    temporary_password_validity_days: Some(3.into()),
                    password_history_size: Some(5.into()),
                }),
            }),
            mfa_configuration: Some(s("OPTIONAL")),
            enabled_mfas: strs(&["SOFTWARE_TOKEN_MFA"]),
            user_pool_add_ons: Some(UserPoolAddOns {
                advanced_security_mode: Some(s("ENFORCED")),
            }),
            username_attributes: Vec::new(),
            auto_verified_attributes: strs(&["email"]),
            account_recovery_setting: Some(AccountRecoverySetting {
                recovery_mechanisms: vec![RecoveryOption {
                    name: Some(s("verified_email")),
                    priority: Some(1.into()),
                }],
            }),
            username_configuration: Some(UsernameConfiguration {
                case_sensitive: Some(false.into()),
            }),
            deletion_protection: Some(s("ACTIVE")),
        },
    );
    // Users and their MFA devices are not recreatable; deletion protection needs Retain to let
    // the stack itself be deleted.
    t.set_policies(&user_pool, Retention::Retain, Retention::Retain);
    let client = t.add(
        "UserPoolClient",
        UserPoolClient {
            user_pool_id: user_pool.r#ref().into(),
            client_name: Some(s(format!("{prefix}-app"))),
            generate_secret: Some(true.into()),
            explicit_auth_flows: strs(&[
                "ALLOW_USER_PASSWORD_AUTH",
                "ALLOW_USER_SRP_AUTH",
                "ALLOW_REFRESH_TOKEN_AUTH",
            ]),
            prevent_user_existence_errors: Some(s("ENABLED")),
            enable_token_revocation: Some(true.into()),
            access_token_validity: Some(60.into()),
            id_token_validity: Some(60.into()),
            refresh_token_validity: Some(12.into()),
            token_validity_units: Some(TokenValidityUnits {
                access_token: Some(s("minutes")),
                id_token: Some(s("minutes")),
                refresh_token: Some(s("hours")),
            }),
        },
    );
    // Facilitators: `deployer users add --facilitator` puts a user in this group; the app reads
    // it from the verified token, never from the browser.
    t.add(
        "FacilitatorsGroup",
        UserPoolGroup {
            user_pool_id: user_pool.r#ref().into(),
            group_name: Some(s(cfg.facilitator_group.as_str())),
            description: Some(s(
                "Facilitators of the llm-eval web app: see every user's runs and datasets, cancel runs, set quotas, publish challenges",
            )),
            precedence: None,
        },
    );
    // The client secret is copied by CloudFormation at deploy time; it never appears in the
    // template. `ClientSecret` is a documented return value of AWS::Cognito::UserPoolClient.
    let client_secret = t.add(
        "CognitoClientSecret",
        Secret {
            name: Some(s(format!("{prefix}/cognito-app-client"))),
            description: Some(s("Cognito app client of the llm-eval web app (pool id, client id, client secret)")),
            secret_string: Some(
                Expr::sub_with(
                    r#"{"user_pool_id":"${Pool}","client_id":"${Client}","client_secret":"${Secret}"}"#,
                    vec![
                        ("Pool", user_pool.r#ref()),
                        ("Client", client.r#ref()),
                        ("Secret", client.get_att(UserPoolClientAttr::ClientSecret)),
                    ],
                )
                .into(),
            ),
            kms_key_id: imports.kms_key.clone(),
            tags: app_tags(cfg),
        },
    );
    checkov::skip_without_cmk(t, cfg, &client_secret, "CKV_AWS_149");
    Auth {
        user_pool,
        client,
        client_secret,
    }
}
