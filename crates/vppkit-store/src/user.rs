//! VPP users of a location.

use chrono::{DateTime, Utc};
use vppkit_core::VppUser;

/// A VPP user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserRecord {
    /// The user as Apple knows it.
    pub user: VppUser,
    /// Whether this manager created the user (and may retire it).
    pub managed_by_us: bool,
    /// When it was last written.
    pub updated_at: DateTime<Utc>,
}

impl UserRecord {
    /// Builds a user record.
    pub fn new(user: VppUser, managed_by_us: bool, updated_at: DateTime<Utc>) -> Self {
        Self {
            user,
            managed_by_us,
            updated_at,
        }
    }
}
