//! Leases: one owner at a time for a named piece of work (a location's sync).

use chrono::{DateTime, Utc};

/// A lease as held.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Lease {
    /// The lease name (for example `sync:<location>`).
    pub name: String,
    /// The owner (an instance id).
    pub owner: String,
    /// The fencing token: incremented every time the lease changes owner or is
    /// taken again after release or expiry; unchanged by a renewal.
    pub token: u64,
    /// When the current owner acquired it.
    pub acquired_at: DateTime<Utc>,
    /// When it expires unless renewed.
    pub expires_at: DateTime<Utc>,
}

impl Lease {
    /// Whether it has expired at `now`.
    pub fn is_expired_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at <= now
    }
}
