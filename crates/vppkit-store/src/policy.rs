//! Policies, stored as named JSON documents.

use chrono::{DateTime, Utc};

/// A stored policy.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PolicyRecord {
    /// The unique name.
    pub name: String,
    /// The document (the rules crate's serialized policy).
    pub document: serde_json::Value,
    /// Starts at 1, incremented by every write.
    pub revision: u64,
    /// When it was last written.
    pub updated_at: DateTime<Utc>,
}

impl PolicyRecord {
    /// Builds a policy record.
    pub fn new(
        name: impl Into<String>,
        document: serde_json::Value,
        revision: u64,
        updated_at: DateTime<Utc>,
    ) -> Self {
        Self {
            name: name.into(),
            document,
            revision,
            updated_at,
        }
    }
}
