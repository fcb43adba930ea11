//! The store's error type and its stable classification.

use std::error::Error as StdError;
use std::fmt;

use vppkit_core::{AssetKey, Holder};

/// A boxed error from a backend (a database driver error, an I/O error).
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// The result of a store operation.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A stable classification of a [`StoreError`], for callers that branch on what
/// went wrong rather than on how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The record (or the location it belongs to) does not exist.
    NotFound,
    /// The write conflicts with what is stored: it already exists, or the holder
    /// already holds the asset, or another owner holds the lease.
    Conflict,
    /// An optimistic check failed: the record changed since it was read.
    VersionMismatch,
    /// Apple's counts leave too few licences for the reservation.
    InsufficientLicences,
    /// The caller passed a value the store cannot accept (an empty name, a zero limit).
    Invalid,
    /// The backend cannot be reached or is overloaded; retrying later may work.
    Unavailable,
    /// A stored value cannot be read back (bad text in a column, a broken document).
    Corrupt,
    /// A stored secret cannot be decrypted: wrong key, or tampered or mis-typed data.
    Crypto,
    /// The database schema cannot be brought to the version this code needs.
    Migration,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// Whether retrying the same call later may succeed.
    pub fn is_transient(self) -> bool {
        matches!(self, ErrorKind::Unavailable)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::VersionMismatch => "version mismatch",
            ErrorKind::InsufficientLicences => "insufficient licences",
            ErrorKind::Invalid => "invalid input",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Corrupt => "corrupt data",
            ErrorKind::Crypto => "secret decryption failed",
            ErrorKind::Migration => "migration",
            ErrorKind::Other => "other",
        };
        f.write_str(s)
    }
}

/// An error from a [`Store`](crate::Store).
///
/// Messages name records by their ids (location ids, asset keys, holders,
/// operation ids), never by a secret: a content token or a notification auth
/// token never reaches an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A record does not exist.
    #[error("{what} {key} not found")]
    NotFound {
        /// What kind of record ("location", "asset", "operation", ...).
        what: &'static str,
        /// Its key, as text.
        key: String,
    },
    /// A record with the same key already exists.
    #[error("{what} {key} already exists")]
    AlreadyExists {
        /// What kind of record.
        what: &'static str,
        /// Its key, as text.
        key: String,
    },
    /// A holder already holds the asset in this location (one holding per holder and asset).
    #[error("{holder} already holds {asset}")]
    AlreadyHeld {
        /// The asset.
        asset: AssetKey,
        /// The holder.
        holder: Holder,
    },
    /// A lease is held by another owner and has not expired.
    #[error("lease {name} is held by another owner until {expires_at}")]
    LeaseHeld {
        /// The lease name.
        name: String,
        /// When the other owner's lease ends unless renewed.
        expires_at: chrono::DateTime<chrono::Utc>,
    },
    /// A write carried a lease's fencing token, and that lease is no longer held
    /// with it: another instance took over, so the write is refused.
    #[error("lease {name} was taken over by another instance; the write is refused")]
    Fenced {
        /// The lease name.
        name: String,
    },
    /// An optimistic check failed.
    #[error("{what} {key} changed: expected {expected}, found {found}")]
    VersionMismatch {
        /// What kind of record.
        what: &'static str,
        /// Its key.
        key: String,
        /// What the caller expected (a revision or a status).
        expected: String,
        /// What is stored.
        found: String,
    },
    /// Too few licences are left to reserve.
    #[error("cannot reserve {requested} licence(s) of {asset}: only {available} left")]
    InsufficientLicences {
        /// The asset.
        asset: AssetKey,
        /// How many the call asked for.
        requested: u32,
        /// How many are left (holdable minus every holding).
        available: u32,
    },
    /// The caller passed a value the store cannot accept.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// The argument or field.
        what: &'static str,
        /// Why it is rejected.
        reason: String,
    },
    /// A stored value cannot be read back.
    #[error("stored {what} is corrupt: {detail}")]
    Corrupt {
        /// What was being read.
        what: &'static str,
        /// Why it cannot be read (never contains secret material).
        detail: String,
    },
    /// A stored secret cannot be decrypted.
    #[error("cannot decrypt the stored {what}: {reason}")]
    Crypto {
        /// Which secret ("content token", "notification auth token").
        what: &'static str,
        /// Why (wrong key, tampered value, encrypted value but no key, ...).
        reason: &'static str,
    },
    /// The database was written by a newer version of vppkit than this one.
    #[error(
        "the database schema is at version {found}, newer than the newest this build knows \
         ({supported}); upgrade vppkit or open another database"
    )]
    SchemaTooNew {
        /// The newest migration applied to the database.
        found: i64,
        /// The newest migration this build carries.
        supported: i64,
    },
    /// Migrating the schema failed.
    #[error("migration failed: {message}")]
    Migration {
        /// What failed.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<BoxError>,
    },
    /// A backend error, classified by the backend.
    #[error("{kind}: {message}")]
    Backend {
        /// The classification.
        kind: ErrorKind,
        /// What failed.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<BoxError>,
    },
}

impl StoreError {
    /// The stable classification of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::NotFound { .. } => ErrorKind::NotFound,
            StoreError::AlreadyExists { .. }
            | StoreError::AlreadyHeld { .. }
            | StoreError::LeaseHeld { .. }
            | StoreError::Fenced { .. } => ErrorKind::Conflict,
            StoreError::VersionMismatch { .. } => ErrorKind::VersionMismatch,
            StoreError::InsufficientLicences { .. } => ErrorKind::InsufficientLicences,
            StoreError::Invalid { .. } => ErrorKind::Invalid,
            StoreError::Corrupt { .. } => ErrorKind::Corrupt,
            StoreError::Crypto { .. } => ErrorKind::Crypto,
            StoreError::SchemaTooNew { .. } | StoreError::Migration { .. } => ErrorKind::Migration,
            StoreError::Backend { kind, .. } => *kind,
        }
    }

    /// A record was not found.
    pub fn not_found(what: &'static str, key: impl fmt::Display) -> Self {
        StoreError::NotFound {
            what,
            key: key.to_string(),
        }
    }

    /// A record already exists.
    pub fn already_exists(what: &'static str, key: impl fmt::Display) -> Self {
        StoreError::AlreadyExists {
            what,
            key: key.to_string(),
        }
    }

    /// The optimistic-revision rule every backend applies to revisioned records (policies):
    /// `expected` 0 means "must not exist yet", any other value must equal the stored
    /// revision (`current`, 0 when absent). `None` skips the check.
    pub fn check_revision(
        what: &'static str,
        key: &str,
        expected: Option<u64>,
        current: u64,
    ) -> Result<(), StoreError> {
        match expected {
            Some(expected) if expected != current => Err(if expected == 0 {
                StoreError::already_exists(what, key)
            } else if current == 0 {
                StoreError::not_found(what, key)
            } else {
                StoreError::version_mismatch(what, key, expected, current)
            }),
            _ => Ok(()),
        }
    }

    /// An optimistic check failed.
    pub fn version_mismatch(
        what: &'static str,
        key: impl fmt::Display,
        expected: impl fmt::Display,
        found: impl fmt::Display,
    ) -> Self {
        StoreError::VersionMismatch {
            what,
            key: key.to_string(),
            expected: expected.to_string(),
            found: found.to_string(),
        }
    }

    /// An argument is not acceptable.
    pub fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        StoreError::Invalid {
            what,
            reason: reason.into(),
        }
    }

    /// A stored value cannot be read back.
    pub fn corrupt(what: &'static str, detail: impl fmt::Display) -> Self {
        StoreError::Corrupt {
            what,
            detail: detail.to_string(),
        }
    }

    /// A backend error with a classification chosen by the backend.
    pub fn backend(
        kind: ErrorKind,
        message: impl Into<String>,
        source: impl Into<Option<BoxError>>,
    ) -> Self {
        StoreError::Backend {
            kind,
            message: message.into(),
            source: source.into(),
        }
    }

    /// The backend is unreachable or overloaded.
    pub fn unavailable(message: impl Into<String>, source: impl Into<Option<BoxError>>) -> Self {
        Self::backend(ErrorKind::Unavailable, message, source)
    }

    /// A migration failed.
    pub fn migration(message: impl Into<String>, source: impl Into<Option<BoxError>>) -> Self {
        StoreError::Migration {
            message: message.into(),
            source: source.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vppkit_core::{AdamId, PricingParam, SerialNumber};

    #[test]
    fn kinds_are_stable() {
        let asset = AssetKey::new(AdamId::from(1), PricingParam::Stdq);
        let holder = Holder::Device(SerialNumber::new("C02").unwrap());
        assert_eq!(
            StoreError::AlreadyHeld {
                asset: asset.clone(),
                holder
            }
            .kind(),
            ErrorKind::Conflict
        );
        let e = StoreError::InsufficientLicences {
            asset,
            requested: 3,
            available: 1,
        };
        assert_eq!(e.kind(), ErrorKind::InsufficientLicences);
        assert!(e.to_string().contains("only 1 left"));
        assert_eq!(
            StoreError::SchemaTooNew {
                found: 9,
                supported: 3
            }
            .kind(),
            ErrorKind::Migration
        );
        assert!(StoreError::unavailable("down", None).kind().is_transient());
        assert_eq!(
            StoreError::backend(ErrorKind::Corrupt, "x", None).kind(),
            ErrorKind::Corrupt
        );
    }
}
