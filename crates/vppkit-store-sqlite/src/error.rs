//! sqlx errors to store errors (sqlx types never leave this crate).

use sqlx::error::ErrorKind as DbKind;
use vppkit_store::{ErrorKind, StoreError};

/// Classifies a sqlx error; the driver error is kept as the source.
pub(crate) fn db(e: sqlx::Error) -> StoreError {
    let kind = match &e {
        sqlx::Error::Database(d) => match d.kind() {
            DbKind::UniqueViolation => ErrorKind::Conflict,
            DbKind::ForeignKeyViolation => ErrorKind::NotFound,
            DbKind::NotNullViolation | DbKind::CheckViolation => ErrorKind::Invalid,
            _ => match d.code().as_deref() {
                // SQLITE_BUSY, SQLITE_LOCKED and their extended codes.
                Some(c) if is_busy(c) => ErrorKind::Unavailable,
                // SQLITE_CORRUPT, SQLITE_NOTADB.
                Some("11") | Some("26") => ErrorKind::Corrupt,
                _ => ErrorKind::Other,
            },
        },
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => ErrorKind::Unavailable,
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_) => ErrorKind::Corrupt,
        _ => ErrorKind::Other,
    };
    let message = match &e {
        sqlx::Error::Database(d) => format!("sqlite: {}", d.message()),
        other => format!("sqlite: {other}"),
    };
    StoreError::backend(kind, message, Some(Box::new(e) as vppkit_store::BoxError))
}

fn is_busy(code: &str) -> bool {
    code.parse::<i64>()
        .map(|c| matches!(c & 0xff, 5 | 6))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_codes() {
        assert!(is_busy("5"));
        assert!(is_busy("517")); // SQLITE_BUSY_SNAPSHOT
        assert!(is_busy("6"));
        assert!(!is_busy("19"));
        assert!(!is_busy("x"));
        assert_eq!(db(sqlx::Error::PoolTimedOut).kind(), ErrorKind::Unavailable);
        assert_eq!(
            db(sqlx::Error::ColumnNotFound("x".into())).kind(),
            ErrorKind::Corrupt
        );
    }
}
