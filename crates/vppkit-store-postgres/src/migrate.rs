//! Embedded, versioned migrations and the schema version check.

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::PgPool;
use vppkit_store::StoreError;

use crate::error::db_error;

/// Every migration of this build, embedded at compile time from `migrations/`.
pub(crate) static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The newest schema version this build knows.
pub(crate) fn latest_version() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

/// The newest migration applied to the database (0 for an empty schema).
pub(crate) async fn applied_version(pool: &PgPool) -> Result<i64, StoreError> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(pool)
        .await
        .map_err(|e| db_error(e, "reading the schema version"))?;
    if !exists {
        return Ok(0);
    }
    let version: Option<i64> =
        sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(pool)
            .await
            .map_err(|e| db_error(e, "reading the schema version"))?;
    Ok(version.unwrap_or(0))
}

/// Brings the schema to this build's version (when `apply`), or checks it is there.
/// A schema newer than this build is [`StoreError::SchemaTooNew`], never touched.
pub(crate) async fn prepare(pool: &PgPool, apply: bool) -> Result<i64, StoreError> {
    let supported = latest_version();
    let found = applied_version(pool).await?;
    if found > supported {
        return Err(StoreError::SchemaTooNew { found, supported });
    }
    if !apply {
        if found != supported {
            return Err(StoreError::migration(
                format!(
                    "the schema is at version {found}, this build needs {supported}; \
                     connect with migrations enabled to upgrade it"
                ),
                None,
            ));
        }
        return Ok(found);
    }
    if found < supported {
        tracing::info!(from = found, to = supported, "migrating the vppkit schema");
    }
    MIGRATOR.run(pool).await.map_err(|e| match e {
        // Another instance, newer than this one, migrated meanwhile.
        MigrateError::VersionMissing(v) if v > supported => StoreError::SchemaTooNew {
            found: v,
            supported,
        },
        MigrateError::VersionMismatch(v) => StoreError::migration(
            format!("migration {v} applied to the database differs from this build's"),
            Some(Box::new(e) as _),
        ),
        other => StoreError::migration("applying migrations failed", Some(Box::new(other) as _)),
    })?;
    Ok(supported)
}
