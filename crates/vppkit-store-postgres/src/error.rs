//! Mapping of PostgreSQL and driver errors to the store's error kinds.

use vppkit_store::{ErrorKind, StoreError};

/// SQLSTATE `serialization_failure`.
const SERIALIZATION_FAILURE: &str = "40001";
/// SQLSTATE `deadlock_detected`.
const DEADLOCK_DETECTED: &str = "40P01";
/// SQLSTATE `unique_violation`.
pub(crate) const UNIQUE_VIOLATION: &str = "23505";
/// SQLSTATE `foreign_key_violation`.
pub(crate) const FOREIGN_KEY_VIOLATION: &str = "23503";

/// What a transaction body can fail with: a driver error (classified, and retried
/// when PostgreSQL rolled the transaction back for a concurrency conflict) or a
/// store error decided by the body itself.
#[derive(Debug)]
pub(crate) enum Failure {
    Db(sqlx::Error),
    Store(StoreError),
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        Failure::Db(e)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

/// The result of a transaction body.
pub(crate) type TxResult<T> = Result<T, Failure>;

/// The SQLSTATE of a database error, if it is one.
pub(crate) fn sqlstate(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// Whether PostgreSQL aborted the transaction because of concurrent ones
/// (serialization failure, deadlock): running it again is safe and may succeed.
pub(crate) fn is_retryable(e: &sqlx::Error) -> bool {
    matches!(
        sqlstate(e).as_deref(),
        Some(SERIALIZATION_FAILURE | DEADLOCK_DETECTED)
    )
}

/// The store's classification of a driver error.
pub(crate) fn classify(e: &sqlx::Error) -> ErrorKind {
    match e {
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some(UNIQUE_VIOLATION) => ErrorKind::Conflict,
            Some(FOREIGN_KEY_VIOLATION) => ErrorKind::NotFound,
            Some(SERIALIZATION_FAILURE | DEADLOCK_DETECTED) => ErrorKind::Unavailable,
            // integrity constraint (not null, check) and data exceptions (out of range, bad text)
            Some(c) if c.starts_with("23") || c.starts_with("22") => ErrorKind::Invalid,
            // connection exception, insufficient resources, operator intervention
            // (shutdown, cannot connect now, query canceled), lock not available
            Some(c)
                if c.starts_with("08")
                    || c.starts_with("53")
                    || c.starts_with("57")
                    || c == "55P03" =>
            {
                ErrorKind::Unavailable
            }
            _ => ErrorKind::Other,
        },
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => ErrorKind::Unavailable,
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::TypeNotFound { .. } => ErrorKind::Corrupt,
        sqlx::Error::RowNotFound => ErrorKind::NotFound,
        sqlx::Error::Configuration(_) => ErrorKind::Invalid,
        sqlx::Error::Migrate(_) => ErrorKind::Migration,
        _ => ErrorKind::Other,
    }
}

/// Converts a driver error into a store error; `what` names the operation. The
/// driver's message never carries bound values, so no secret reaches it.
pub(crate) fn db_error(e: sqlx::Error, what: &'static str) -> StoreError {
    let kind = classify(&e);
    let message = match kind {
        ErrorKind::Unavailable if is_retryable(&e) => {
            format!("{what}: gave up after repeated conflicts with concurrent transactions")
        }
        ErrorKind::Unavailable => format!("{what}: PostgreSQL is unavailable"),
        _ => format!("{what} failed"),
    };
    if kind == ErrorKind::Migration {
        return StoreError::migration(message, Some(Box::new(e) as _));
    }
    StoreError::backend(kind, message, Some(Box::new(e) as _))
}

impl Failure {
    /// Whether running the transaction again is safe and may succeed.
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            Failure::Db(e) => is_retryable(e),
            Failure::Store(_) => false,
        }
    }

    /// The store error for this failure.
    pub(crate) fn into_store(self, what: &'static str) -> StoreError {
        match self {
            Failure::Db(e) => db_error(e, what),
            Failure::Store(e) => e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_errors_are_classified() {
        assert_eq!(classify(&sqlx::Error::PoolTimedOut), ErrorKind::Unavailable);
        assert_eq!(classify(&sqlx::Error::PoolClosed), ErrorKind::Unavailable);
        assert_eq!(
            classify(&sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "refused"
            ))),
            ErrorKind::Unavailable
        );
        assert_eq!(
            classify(&sqlx::Error::ColumnNotFound("x".into())),
            ErrorKind::Corrupt
        );
        assert_eq!(classify(&sqlx::Error::RowNotFound), ErrorKind::NotFound);
        let e = db_error(sqlx::Error::PoolTimedOut, "reserve");
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.to_string().contains("reserve"));
        assert!(!is_retryable(&sqlx::Error::PoolTimedOut));
    }
}
