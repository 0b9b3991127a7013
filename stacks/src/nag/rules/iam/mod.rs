//! IAM rules: AWS managed policies and wildcard permissions (granular findings).

mod iam_no_managed_policies;
mod iam_no_wildcard_permissions;

pub use iam_no_managed_policies::IAM_NO_MANAGED_POLICIES;
pub use iam_no_wildcard_permissions::IAM_NO_WILDCARD_PERMISSIONS;

/// Principals that carry inline policies and managed policy attachments.
pub(crate) const PRINCIPALS: [&str; 3] = ["AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group"];
