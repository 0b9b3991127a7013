//! The app's users in its Cognito user pool, through Cognito's admin APIs: create (with a
//! generated temporary password that meets the pool's policy), list, delete, reset.
//!
//! Every operation is idempotent per user: creating a user that exists reports it as existing
//! and changes nothing (its password is not reset), deleting one that is gone reports it gone.
//! Passwords are [`SecretString`]s; they leave this module only for the caller to write where
//! the user asked (a 0600 file, or stdout with `--show-passwords`), never to logs or errors.

use std::fmt;

use anyhow::Context;
use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::types::{AttributeType, MessageActionType};
use secrecy::{ExposeSecret, SecretString};

/// Longest password generated (Cognito allows up to 256).
const MAX_PASSWORD_LENGTH: usize = 64;
/// Length of a generated password unless the policy wants more.
const DEFAULT_PASSWORD_LENGTH: usize = 20;
/// Most users `list` reads (60 a page), so a huge pool cannot exhaust memory.
pub const MAX_LISTED: usize = 10_000;

const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
const DIGITS: &[u8] = b"23456789";
/// Symbols Cognito accepts, minus the comma and quotes so a CSV cell needs no quoting.
const SYMBOLS: &[u8] = b"^$*.[]{}()?!@#%&/<>:;|_~=+-";

/// An email address checked well enough to be a Cognito username and an invitation address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Email(String);

impl Email {
    /// Parses `value` (trimmed, lowercased: the pool's usernames are case-insensitive).
    pub fn parse(value: &str) -> Result<Email, String> {
        let value = value.trim();
        let invalid = |why: &str| Err(format!("`{value}` is not an email address: {why}"));
        if value.is_empty() {
            return invalid("empty");
        }
        if value.len() > 254 {
            return invalid("longer than 254 characters");
        }
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return invalid("contains a space or control character");
        }
        let Some((local, domain)) = value.split_once('@') else {
            return invalid("no @");
        };
        if local.is_empty() || domain.contains('@') {
            return invalid("needs exactly one @ with a name before it");
        }
        if !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains("..")
        {
            return invalid("the domain needs a dot between names");
        }
        Ok(Email(value.to_lowercase()))
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a pool's password policy requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// Minimum length.
    pub minimum_length: usize,
}

/// Generates a password of at least `policy.minimum_length` characters (at least 20) holding
/// a lowercase letter, an uppercase letter, a digit and a symbol, so it meets any Cognito
/// policy of that length. Uses the operating system's random source.
pub fn generate_password(policy: PasswordPolicy) -> anyhow::Result<SecretString> {
    let length = policy
        .minimum_length
        .clamp(DEFAULT_PASSWORD_LENGTH, MAX_PASSWORD_LENGTH);
    let all: Vec<u8> = [LOWER, UPPER, DIGITS, SYMBOLS].concat();
    let mut password: Vec<u8> = Vec::with_capacity(length);
    for class in [LOWER, UPPER, DIGITS, SYMBOLS] {
        password.push(class[random_below(class.len())?]);
    }
    while password.len() < length {
        password.push(all[random_below(all.len())?]);
    }
    // Fisher-Yates, so the required classes are not always the first four characters.
    for idx in (1..password.len()).rev() {
        let other = random_below(idx + 1)?;
        password.swap(idx, other);
    }
    let text = String::from_utf8(password).context("internal: password characters are ASCII")?;
    Ok(SecretString::from(text))
}

/// A uniform random number in `0..bound` (`bound` at most 256), by rejection sampling.
fn random_below(bound: usize) -> anyhow::Result<usize> {
    let limit = 256 - 256 % bound;
    loop {
        let mut byte = [0u8; 1];
        getrandom::fill(&mut byte)
            .map_err(|err| anyhow::anyhow!("reading the system's random source: {err}"))?;
        if usize::from(byte[0]) < limit {
            return Ok(usize::from(byte[0]) % bound);
        }
    }
}

/// What happened to one user.
#[derive(Debug)]
pub enum Created {
    /// Created, with this temporary password (the user sets their own at first login).
    New(SecretString),
    /// The user already existed; nothing was changed.
    Exists,
}

/// One user as `list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Username (the email address).
    pub username: String,
    /// `email` attribute, when set.
    pub email: Option<String>,
    /// `FORCE_CHANGE_PASSWORD`, `CONFIRMED`, ...
    pub status: String,
    /// Whether the user may sign in.
    pub enabled: bool,
}

/// One user pool.
#[derive(Debug, Clone)]
pub struct Pool {
    client: Client,
    id: String,
}

fn service_error<E>(err: aws_sdk_cognitoidentityprovider::error::SdkError<E>) -> anyhow::Error
where
    E: std::error::Error + Send + Sync + 'static,
    aws_sdk_cognitoidentityprovider::Error:
        From<aws_sdk_cognitoidentityprovider::error::SdkError<E>>,
{
    anyhow::Error::new(aws_sdk_cognitoidentityprovider::Error::from(err))
}

impl Pool {
    /// The pool `id`, through `config`.
    pub fn new(config: &aws_config::SdkConfig, id: &str) -> Pool {
        Pool {
            client: Client::new(config),
            id: id.to_owned(),
        }
    }

    /// The pool's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The pool's password policy (DescribeUserPool); also checks that the pool exists.
    pub async fn password_policy(&self) -> anyhow::Result<PasswordPolicy> {
        let described = self
            .client
            .describe_user_pool()
            .user_pool_id(&self.id)
            .send()
            .await
            .map_err(service_error)
            .with_context(|| format!("reading user pool {}", self.id))?;
        let minimum_length = described
            .user_pool()
            .and_then(|pool| pool.policies())
            .and_then(|policies| policies.password_policy())
            .and_then(|policy| policy.minimum_length())
            .and_then(|length| usize::try_from(length).ok())
            .unwrap_or(8);
        Ok(PasswordPolicy { minimum_length })
    }

    /// Creates `email` with a new temporary password. With `send_invitation`, Cognito emails
    /// the invitation (holding the password); otherwise the caller must hand it over.
    pub async fn create(
        &self,
        email: &Email,
        policy: PasswordPolicy,
        send_invitation: bool,
    ) -> anyhow::Result<Created> {
        let password = generate_password(policy)?;
        let mut request = self
            .client
            .admin_create_user()
            .user_pool_id(&self.id)
            .username(email.as_str())
            .temporary_password(password.expose_secret())
            .user_attributes(attribute("email", email.as_str())?)
            .user_attributes(attribute("email_verified", "true")?)
            .desired_delivery_mediums(
                aws_sdk_cognitoidentityprovider::types::DeliveryMediumType::Email,
            );
        if !send_invitation {
            request = request.message_action(MessageActionType::Suppress);
        }
        match request.send().await {
            Ok(_) => Ok(Created::New(password)),
            Err(err) => {
                if err
                    .as_service_error()
                    .is_some_and(|service| service.is_username_exists_exception())
                {
                    return Ok(Created::Exists);
                }
                Err(service_error(err)).with_context(|| format!("creating user {email}"))
            }
        }
    }

    /// Deletes `email`; `false` when there was no such user.
    pub async fn delete(&self, email: &Email) -> anyhow::Result<bool> {
        match self
            .client
            .admin_delete_user()
            .user_pool_id(&self.id)
            .username(email.as_str())
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(err) => {
                if err
                    .as_service_error()
                    .is_some_and(|service| service.is_user_not_found_exception())
                {
                    return Ok(false);
                }
                Err(service_error(err)).with_context(|| format!("deleting user {email}"))
            }
        }
    }

    /// Gives `email` a new temporary password (they set their own at next login); `None` when
    /// there is no such user.
    pub async fn reset_password(
        &self,
        email: &Email,
        policy: PasswordPolicy,
    ) -> anyhow::Result<Option<SecretString>> {
        let password = generate_password(policy)?;
        match self
            .client
            .admin_set_user_password()
            .user_pool_id(&self.id)
            .username(email.as_str())
            .password(password.expose_secret())
            .permanent(false)
            .send()
            .await
        {
            Ok(_) => Ok(Some(password)),
            Err(err) => {
                if err
                    .as_service_error()
                    .is_some_and(|service| service.is_user_not_found_exception())
                {
                    return Ok(None);
                }
                Err(service_error(err))
                    .with_context(|| format!("resetting the password of {email}"))
            }
        }
    }

    /// Every user (at most [`MAX_LISTED`]), in Cognito's order.
    pub async fn list(&self) -> anyhow::Result<Vec<User>> {
        let mut users = Vec::new();
        let mut pages = self
            .client
            .list_users()
            .user_pool_id(&self.id)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page
                .map_err(service_error)
                .with_context(|| format!("listing the users of {}", self.id))?;
            for user in page.users() {
                if users.len() >= MAX_LISTED {
                    return Ok(users);
                }
                users.push(User {
                    username: user.username().unwrap_or_default().to_owned(),
                    email: user
                        .attributes()
                        .iter()
                        .find(|attribute| attribute.name() == "email")
                        .and_then(|attribute| attribute.value())
                        .map(str::to_owned),
                    status: user
                        .user_status()
                        .map(|status| status.as_str().to_owned())
                        .unwrap_or_default(),
                    enabled: user.enabled(),
                });
            }
        }
        Ok(users)
    }
}

impl Pool {
    /// Puts `email` in `group` (AdminAddUserToGroup; again: no change). The group must exist:
    /// the app stack creates the facilitators' group with the pool.
    pub async fn add_to_group(&self, email: &Email, group: &str) -> anyhow::Result<()> {
        match self
            .client
            .admin_add_user_to_group()
            .user_pool_id(&self.id)
            .username(email.as_str())
            .group_name(group)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|service| service.is_resource_not_found_exception()) =>
            {
                Err(anyhow::anyhow!(
                    "user pool {} has no group `{group}`: deploy the app stack with this facilitator group (`deployer up`), or set DEPLOY_FACILITATOR_GROUP to the group it has",
                    self.id
                ))
            }
            Err(err) => Err(service_error(err))
                .with_context(|| format!("adding {email} to the group {group}")),
        }
    }

    /// The usernames in `group` (at most [`MAX_LISTED`]); empty when the pool has no such group.
    pub async fn group_members(&self, group: &str) -> anyhow::Result<Vec<String>> {
        let mut members = Vec::new();
        let mut pages = self
            .client
            .list_users_in_group()
            .user_pool_id(&self.id)
            .group_name(group)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(page) => page,
                Err(err)
                    if err
                        .as_service_error()
                        .is_some_and(|service| service.is_resource_not_found_exception()) =>
                {
                    return Ok(Vec::new());
                }
                Err(err) => {
                    return Err(service_error(err))
                        .with_context(|| format!("listing the group {group} of {}", self.id));
                }
            };
            for user in page.users() {
                if members.len() >= MAX_LISTED {
                    return Ok(members);
                }
                members.push(user.username().unwrap_or_default().to_owned());
            }
        }
        Ok(members)
    }
}

fn attribute(name: &str, value: &str) -> anyhow::Result<AttributeType> {
    AttributeType::builder()
        .name(name)
        .value(value)
        .build()
        .with_context(|| format!("internal: building the {name} attribute"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn check_email(input: &str, expected: Result<&str, &str>) {
        let got = Email::parse(input);
        match expected {
            Ok(address) => assert_eq!(got.unwrap().as_str(), address),
            Err(fragment) => assert!(got.unwrap_err().contains(fragment), "{input}"),
        }
    }

    #[test]
    fn emails() {
        check_email(" Ada@Example.COM ", Ok("ada@example.com"));
        check_email("a@b.c", Ok("a@b.c"));
        check_email("", Err("empty"));
        check_email("ada", Err("no @"));
        check_email("@example.com", Err("exactly one @"));
        check_email("a@b@c.d", Err("exactly one @"));
        check_email("a@localhost", Err("dot"));
        check_email("a@b..c", Err("dot"));
        check_email("a b@c.d", Err("space"));
    }

    #[test]
    fn passwords_meet_the_policy() {
        for minimum_length in [8, 14, 30, 500] {
            let password = generate_password(PasswordPolicy { minimum_length }).unwrap();
            let text = password.expose_secret();
            assert_eq!(text.len(), minimum_length.clamp(20, 64));
            assert!(text.bytes().any(|b| LOWER.contains(&b)));
            assert!(text.bytes().any(|b| UPPER.contains(&b)));
            assert!(text.bytes().any(|b| DIGITS.contains(&b)));
            assert!(text.bytes().any(|b| SYMBOLS.contains(&b)));
            assert!(!text.contains([',', '"', '\'']));
        }
        let a = generate_password(PasswordPolicy { minimum_length: 8 }).unwrap();
        let b = generate_password(PasswordPolicy { minimum_length: 8 }).unwrap();
        assert_ne!(a.expose_secret(), b.expose_secret());
    }
}
