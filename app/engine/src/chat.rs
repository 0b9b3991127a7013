//! Chat messages: what a rendered prompt becomes and what a model or judge is sent.
//!
//! A neutral module below both the prompt template and the model clients, so reading a dataset,
//! rendering a template or scoring never depends on `providers/`. The providers re-export these
//! types for their callers.

use serde::{Deserialize, Serialize};

/// Who speaks a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions for the model; at most one, first.
    System,
    /// The human turn.
    User,
    /// A prior model turn (few-shot examples).
    Assistant,
}

/// One chat message of a rendered prompt.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who speaks.
    pub role: Role,
    /// What is said.
    pub content: String,
}
