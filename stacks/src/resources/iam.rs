//! `AWS::IAM::*`: roles with inline policies, and a typed IAM policy document.
//!
//! Policy documents are typed (not free JSON) so the nag rules and tests can read actions and
//! resources without parsing.

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use crate::model::Value;
use crate::resources::{Tag, resource};

/// `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Effect {
    /// `Allow`.
    Allow,
    /// `Deny`.
    Deny,
}

/// The `Principal` of a statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Principal {
    /// `{"Service": [...]}` (a regional service principal may need `Fn::Sub`).
    Service(Vec<Value<String>>),
    /// `{"AWS": [...]}`.
    Aws(Vec<Value<String>>),
    /// `"*"`: anyone (only sensible with a `Deny` or a condition).
    All,
}

impl Serialize for Principal {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Principal::All => serializer.serialize_str("*"),
            Principal::Service(services) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("Service", services)?;
                map.end()
            }
            Principal::Aws(arns) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("AWS", arns)?;
                map.end()
            }
        }
    }
}

/// One statement of a policy document.
#[derive(Debug, Clone, Serialize)]
pub struct Statement {
    /// Statement id.
    #[serde(rename = "Sid", skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Allow or deny.
    #[serde(rename = "Effect")]
    pub effect: Effect,
    /// Who (resource policies and trust policies only).
    #[serde(rename = "Principal", skip_serializing_if = "Option::is_none")]
    pub principal: Option<Principal>,
    /// IAM actions, e.g. `s3:GetObject`.
    #[serde(rename = "Action")]
    pub action: Vec<String>,
    /// Resource ARNs (empty for trust policies).
    #[serde(rename = "Resource", skip_serializing_if = "Vec::is_empty")]
    pub resource: Vec<Value<String>>,
    /// Condition block, e.g. `{"Bool": {"aws:SecureTransport": "false"}}`.
    #[serde(rename = "Condition", skip_serializing_if = "Option::is_none")]
    pub condition: Option<serde_json::Value>,
}

impl Statement {
    /// An `Allow` of `actions` on `resources`.
    pub fn allow(actions: &[&str], resources: Vec<Value<String>>) -> Statement {
        Statement {
            sid: None,
            effect: Effect::Allow,
            principal: None,
            action: actions.iter().map(|action| (*action).to_owned()).collect(),
            resource: resources,
            condition: None,
        }
    }

    /// Sets the statement id.
    pub fn with_sid(mut self, sid: &str) -> Statement {
        self.sid = Some(sid.to_owned());
        self
    }
}

/// An IAM policy document (version 2012-10-17).
#[derive(Debug, Clone, Serialize)]
pub struct PolicyDocument {
    /// Always `2012-10-17`.
    #[serde(rename = "Version")]
    pub version: &'static str,
    /// Statements.
    #[serde(rename = "Statement")]
    pub statement: Vec<Statement>,
}

impl PolicyDocument {
    /// A document with the current policy language version.
    pub fn new(statement: Vec<Statement>) -> PolicyDocument {
        PolicyDocument {
            version: "2012-10-17",
            statement,
        }
    }

    /// A trust policy letting `service` assume the role only on behalf of this account
    /// (`aws:SourceAccount`), which prevents the confused-deputy problem.
    pub fn assume_by_service_for_this_account(service: &str) -> PolicyDocument {
        let mut document = PolicyDocument::assume_by_service(service);
        for statement in &mut document.statement {
            statement.condition = Some(serde_json::json!({
                "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
            }));
        }
        document
    }

    /// A trust policy letting `service` (e.g. `ecs-tasks.amazonaws.com`) assume the role.
    pub fn assume_by_service(service: &str) -> PolicyDocument {
        PolicyDocument::new(vec![Statement {
            sid: None,
            effect: Effect::Allow,
            principal: Some(Principal::Service(vec![service.into()])),
            action: vec!["sts:AssumeRole".to_owned()],
            resource: Vec::new(),
            condition: None,
        }])
    }
}

/// An inline policy of a role.
#[derive(Debug, Clone, Serialize)]
pub struct Policy {
    /// Policy name, unique within the role.
    #[serde(rename = "PolicyName")]
    pub policy_name: Value<String>,
    /// The document.
    #[serde(rename = "PolicyDocument")]
    pub policy_document: PolicyDocument,
}

/// `AWS::IAM::Role`.
#[derive(Debug, Clone, Serialize)]
pub struct Role {
    /// Trust policy.
    #[serde(rename = "AssumeRolePolicyDocument")]
    pub assume_role_policy_document: PolicyDocument,
    /// What the role is for.
    #[serde(rename = "Description", skip_serializing_if = "Option::is_none")]
    pub description: Option<Value<String>>,
    /// Attached managed policies.
    #[serde(rename = "ManagedPolicyArns", skip_serializing_if = "Vec::is_empty")]
    pub managed_policy_arns: Vec<Value<String>>,
    /// Inline policies.
    #[serde(rename = "Policies", skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<Policy>,
    /// Tags.
    #[serde(rename = "Tags", skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}
resource!(Role, "AWS::IAM::Role", RoleAttr { Arn => "Arn", RoleId => "RoleId" });
