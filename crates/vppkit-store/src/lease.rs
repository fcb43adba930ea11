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
    /// Builds a lease.
    pub fn new(
        name: impl Into<String>,
        owner: impl Into<String>,
        token: u64,
        acquired_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Self {
        Self {
            name: name.into(),
            owner: owner.into(),
            token,
            acquired_at,
            expires_at,
        }
    }

    /// Whether it has expired at `now`.
    pub fn is_expired_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at <= now
    }
}

/// The lease rules every backend applies, as pure functions over the stored row,
/// so that backends agree (a backend reads the row under its lock, calls these,
/// writes the result).
impl Lease {
    /// Checks the arguments of an acquire or renew.
    pub fn check_args(name: &str, owner: &str, ttl: chrono::Duration) -> crate::Result<()> {
        if name.is_empty() {
            return Err(crate::StoreError::invalid(
                "lease name",
                "must not be empty",
            ));
        }
        if owner.is_empty() {
            return Err(crate::StoreError::invalid(
                "lease owner",
                "must not be empty",
            ));
        }
        if ttl <= chrono::Duration::zero() {
            return Err(crate::StoreError::invalid("lease ttl", "must be positive"));
        }
        Ok(())
    }

    /// What [`LeaseStore::acquire_lease`](crate::LeaseStore::acquire_lease) writes, given the stored row.
    pub fn acquire(
        existing: Option<&Lease>,
        name: &str,
        owner: &str,
        ttl: chrono::Duration,
        now: DateTime<Utc>,
    ) -> crate::Result<Lease> {
        Self::check_args(name, owner, ttl)?;
        match existing {
            Some(l) if !l.is_expired_at(now) && l.owner != owner => {
                Err(crate::StoreError::LeaseHeld {
                    name: name.to_owned(),
                    expires_at: l.expires_at,
                })
            }
            Some(l) if !l.is_expired_at(now) => Ok(Lease {
                expires_at: now + ttl,
                ..l.clone()
            }),
            other => Ok(Lease {
                name: name.to_owned(),
                owner: owner.to_owned(),
                token: other.map_or(0, |l| l.token) + 1,
                acquired_at: now,
                expires_at: now + ttl,
            }),
        }
    }

    /// What [`LeaseStore::renew_lease`](crate::LeaseStore::renew_lease) writes, given the stored row.
    pub fn renew(
        existing: Option<&Lease>,
        name: &str,
        owner: &str,
        token: u64,
        ttl: chrono::Duration,
        now: DateTime<Utc>,
    ) -> crate::Result<Lease> {
        Self::check_args(name, owner, ttl)?;
        match existing {
            Some(l) if l.owner == owner && l.token == token && !l.is_expired_at(now) => Ok(Lease {
                expires_at: now + ttl,
                ..l.clone()
            }),
            Some(l) if !l.is_expired_at(now) => Err(crate::StoreError::LeaseHeld {
                name: name.to_owned(),
                expires_at: l.expires_at,
            }),
            _ => Err(crate::StoreError::not_found("lease", name)),
        }
    }

    /// Whether [`LeaseStore::release_lease`](crate::LeaseStore::release_lease) may release the stored row.
    pub fn is_held_by(&self, owner: &str, token: u64) -> bool {
        self.owner == owner && self.token == token
    }
}

/// A lease's fencing token, carried by a write: the store refuses the write
/// ([`StoreError::Fenced`](crate::StoreError::Fenced)) when the lease named here
/// is now held with another token (another instance took over). A lease that
/// expired but that nobody took since still fences with its old token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Fence {
    /// The lease name.
    pub lease: String,
    /// The token the writer holds it with.
    pub token: u64,
}

impl Fence {
    /// A fence for a lease held with `token`.
    pub fn new(lease: impl Into<String>, token: u64) -> Self {
        Self {
            lease: lease.into(),
            token,
        }
    }

    /// The fence of a lease.
    pub fn of(lease: &Lease) -> Self {
        Self::new(lease.name.clone(), lease.token)
    }

    /// Checks the fence against the lease as stored (`None`: never taken).
    pub fn check(&self, stored: Option<&Lease>) -> crate::Result<()> {
        match stored {
            Some(l) if l.token == self.token => Ok(()),
            _ => Err(crate::StoreError::Fenced {
                name: self.lease.clone(),
            }),
        }
    }
}
