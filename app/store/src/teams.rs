//! The row types of workshops as teams (issue 22): read-only grants on runs and datasets, the
//! directory of users who signed in, per-user quota overrides, the audit of what a facilitator
//! did to another user's data, and challenges with their submitted runs.
//!
//! Invariants: a grant names one item of its owner and one grantee (a user or everyone); only
//! the owner adds or removes grants, and a grant is read only (nothing here lets a grantee
//! change or delete an item). Every list is bounded by a limit of this module.
//!
//! This module holds plain data and the limits; it must not depend on a backend, on HTTP or on
//! the login: the backends (`sqlite`, `dynamo`) store these rows and the web layer decides who
//! may call what.

use serde::{Deserialize, Serialize};

use super::UserId;

/// Grants one item may carry (users plus everyone).
pub const MAX_GRANTS_PER_ITEM: usize = 50;
/// Items listed as shared with one user at most.
pub const MAX_SHARED_LISTED: usize = 500;
/// Users the directory lists at most.
pub const MAX_USERS_LISTED: usize = 1000;
/// Audit entries kept and shown per item (the newest).
pub const MAX_AUDIT_SHOWN: usize = 50;
/// Challenges listed at most (newest first).
pub const MAX_CHALLENGES: usize = 100;
/// Challenges open at once at most.
pub const MAX_OPEN_CHALLENGES: usize = 20;
/// Runs one challenge accepts in all.
pub const MAX_SUBMISSIONS: usize = 1000;
/// The longest challenge title, in characters.
pub const MAX_CHALLENGE_TITLE_CHARS: usize = 200;
/// The most fixed models one challenge names.
pub const MAX_CHALLENGE_MODELS: usize = 20;

/// The grantee that stands for every user of the deployment.
pub const EVERYONE: &str = "*";

/// Which kind of item a grant or an audit entry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemKind {
    /// A run (its configuration, summary and records).
    Run,
    /// An uploaded dataset.
    Dataset,
}

impl ItemKind {
    /// The word stored.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Run => "run",
            ItemKind::Dataset => "dataset",
        }
    }

    /// The kind of a stored word.
    pub fn parse(text: &str) -> Option<ItemKind> {
        match text {
            "run" => Some(ItemKind::Run),
            "dataset" => Some(ItemKind::Dataset),
            _ => None,
        }
    }
}

/// Who a grant lets read an item.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Grantee {
    /// Every signed-in user of the deployment.
    Everyone,
    /// One user (by id).
    User(UserId),
}

impl Grantee {
    /// The stored form: the user's id, or [`EVERYONE`].
    pub fn as_stored(&self) -> &str {
        match self {
            Grantee::Everyone => EVERYONE,
            Grantee::User(user) => user.as_str(),
        }
    }

    /// The grantee of a stored form.
    pub fn from_stored(text: &str) -> Grantee {
        if text == EVERYONE {
            Grantee::Everyone
        } else {
            Grantee::User(UserId::new(text))
        }
    }

    /// Whether this grant lets `viewer` read.
    pub fn covers(&self, viewer: &UserId) -> bool {
        match self {
            Grantee::Everyone => true,
            Grantee::User(user) => user == viewer,
        }
    }
}

/// An item shared with a user: what, whose, and through which grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SharedItem {
    /// Run or dataset.
    pub kind: ItemKind,
    /// The item's owner.
    pub owner: UserId,
    /// The run's or dataset's id.
    pub id: String,
    /// The grant that shares it (the user, or everyone).
    pub grantee: Grantee,
}

/// A user as the directory knows them (written at sign-in).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KnownUser {
    /// The stable id.
    pub id: UserId,
    /// The user name the pages show and sharing names.
    pub name: String,
}

/// One thing a facilitator did to another user's item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// Who did it (id).
    pub actor: UserId,
    /// Who did it (name, as shown).
    pub actor_name: String,
    /// What was done, in words (`cancelled the run`).
    pub action: String,
    /// When (RFC 3339, UTC), set by the store.
    pub at: String,
}

/// What a facilitator publishes: a challenge on a shared dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeSpec {
    /// The title shown.
    pub title: String,
    /// The dataset's owner.
    pub dataset_owner: UserId,
    /// The dataset's id.
    pub dataset_id: String,
    /// The task type's name (`qa`, `classification`, ...).
    pub task: String,
    /// The score runs are ranked by (`f1_score`, ...), highest first.
    pub metric: String,
    /// When not empty, submitted runs must use exactly these models.
    pub models: Vec<String>,
}

impl ChallengeSpec {
    /// Why the spec cannot be kept (too long a title, too many models, empty fields).
    pub fn check(&self) -> Result<(), String> {
        if self.title.trim().is_empty() {
            return Err("a challenge needs a title".to_string());
        }
        if self.title.chars().count() > MAX_CHALLENGE_TITLE_CHARS {
            return Err(format!(
                "the title is longer than {MAX_CHALLENGE_TITLE_CHARS} characters"
            ));
        }
        if self.title.contains(['\n', '\r']) {
            return Err("the title must be one line".to_string());
        }
        if self.metric.is_empty() || self.task.is_empty() || self.dataset_id.is_empty() {
            return Err("a challenge needs a dataset, a task type and a metric".to_string());
        }
        if self.models.len() > MAX_CHALLENGE_MODELS {
            return Err(format!(
                "a challenge names at most {MAX_CHALLENGE_MODELS} models"
            ));
        }
        Ok(())
    }
}

/// A challenge as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChallengeRow {
    /// Its id (random).
    pub id: String,
    /// The facilitator who published it.
    pub owner: UserId,
    /// When (RFC 3339, UTC).
    pub created: String,
    /// Whether runs are still accepted.
    pub open: bool,
    /// What it asks for.
    pub spec: ChallengeSpec,
}

/// A run submitted to a challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Submission {
    /// The participant (the run's owner).
    pub participant: UserId,
    /// The run.
    pub run_id: String,
    /// When it was submitted (RFC 3339, UTC).
    pub submitted: String,
}

/// Why a grant or a submission was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The owner has no such item (or the challenge or run does not exist).
    NotFound,
    /// The item carries [`MAX_GRANTS_PER_ITEM`] grants, or the challenge
    /// [`MAX_SUBMISSIONS`] runs.
    Full,
    /// The challenge is closed.
    Closed,
}
