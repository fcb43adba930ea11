//! Embedded, versioned migrations.

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::SqlitePool;
use vppkit_store::{Result, StoreError};

use crate::error::db;

/// The migrations in `migrations/`, embedded at build time.
pub(crate) static MIGRATOR: Migrator = sqlx::migrate!();

/// The newest schema version this build knows.
pub(crate) fn latest_version() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

/// The newest migration applied to the database (0 for a new one).
pub(crate) async fn applied_version(pool: &SqlitePool) -> Result<i64> {
    let has_table: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_optional(pool)
    .await
    .map_err(db)?;
    if has_table.is_none() {
        return Ok(0);
    }
    let v: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success = 1")
            .fetch_one(pool)
            .await
            .map_err(db)?;
    Ok(v.unwrap_or(0))
}

/// Refuses a database written by a newer build, then applies missing migrations.
pub(crate) async fn migrate(pool: &SqlitePool) -> Result<()> {
    let found = applied_version(pool).await?;
    let supported = latest_version();
    if found > supported {
        return Err(StoreError::SchemaTooNew { found, supported });
    }
    MIGRATOR.run(pool).await.map_err(|e| match e {
        MigrateError::VersionMissing(found) => StoreError::SchemaTooNew { found, supported },
        MigrateError::VersionMismatch(v) => StoreError::migration(
            format!("migration {v} was changed after it was applied to this database"),
            Some(Box::new(e) as vppkit_store::BoxError),
        ),
        other => StoreError::migration(
            "applying the embedded migrations failed",
            Some(Box::new(other) as vppkit_store::BoxError),
        ),
    })
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use sqlx::sqlite::SqliteConnectOptions;
    use vppkit_store::prelude::*;
    use vppkit_store::{ErrorKind, SecretCipher};

    use super::*;
    use crate::SqliteStoreOptions;

    async fn raw_pool(path: &std::path::Path) -> SqlitePool {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .foreign_keys(true);
        SqlitePool::connect_with(opts).await.unwrap()
    }

    fn url(path: &std::path::Path) -> String {
        format!("sqlite://{}?mode=rwc", path.display())
    }

    #[tokio::test]
    async fn opening_a_version_1_database_upgrades_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            // A database as version 1 left it, with data.
            let pool = raw_pool(&path).await;
            let v1 = Migrator {
                migrations: Cow::Owned(
                    MIGRATOR
                        .iter()
                        .filter(|m| m.version == 1)
                        .cloned()
                        .collect(),
                ),
                ..Migrator::DEFAULT
            };
            v1.run(&pool).await.unwrap();
            assert_eq!(applied_version(&pool).await.unwrap(), 1);
            let token = SecretCipher::plaintext()
                .seal(&vppkit_core::Secret::new("tok"), "location:old:token");
            sqlx::query(
                "INSERT INTO locations (id, name, token, token_expires_at, token_state, \
                 created_at, updated_at, revision) VALUES ('old', 'Old', ?, 0, 'valid', 0, 0, 1)",
            )
            .bind(token)
            .execute(&pool)
            .await
            .unwrap();
            sqlx::query(
                "INSERT INTO assets (location_id, adam_id, pricing_param, product_type, \
                 device_assignable, revocable, platforms, total_count, assigned_count, \
                 available_count, retired_count, updated_at) \
                 VALUES ('old', '1', 'STDQ', 'App', 1, 1, '[]', 3, 2, 1, 0, 0)",
            )
            .execute(&pool)
            .await
            .unwrap();
            // Two journal records of version 1's one-row-per-record journal.
            sqlx::query(
                "INSERT INTO journal (location_id, seq, at, adam_id, pricing_param, holder, \
                 cause, kind, body) VALUES \
                 ('old', 1, 1500000000123456789, '1', 'STDQ', 'device:A', 'sync:v1', 'ledger', \
                  '{\"n\":1}'), \
                 ('old', 2, 1500000001000000000, NULL, NULL, NULL, 'operator:x', 'token', '[2]')",
            )
            .execute(&pool)
            .await
            .unwrap();
            sqlx::query("UPDATE locations SET journal_seq = 2 WHERE id = 'old'")
                .execute(&pool)
                .await
                .unwrap();
            for h in ["device:A", "device:B"] {
                sqlx::query(
                    "INSERT INTO holdings (location_id, adam_id, pricing_param, holder, status, \
                     updated_at) VALUES ('old', '1', 'STDQ', ?, 'active', 0)",
                )
                .bind(h)
                .execute(&pool)
                .await
                .unwrap();
            }
            pool.close().await;
        }
        let store = SqliteStoreOptions::new(url(&path))
            .connect(SecretCipher::plaintext())
            .await
            .unwrap();
        assert_eq!(store.schema_version().await.unwrap(), latest_version());
        assert!(latest_version() >= 4);
        // Version 4 dropped the sync-generation columns, keeping the rows.
        let pool = raw_pool(&path).await;
        let dropped: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM pragma_table_info('holdings') \
             WHERE name = 'seen_generation') + (SELECT COUNT(*) FROM \
             pragma_table_info('locations') WHERE name = 'sync_generation')",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(dropped, 0);
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM holdings")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(rows, 2);
        pool.close().await;
        let loc = vppkit_core::LocationId::new("old").unwrap();
        let rec = store.location(&loc).await.unwrap().unwrap();
        assert_eq!(rec.token.expose(), "tok");
        // The held count was back-filled: one licence left of 3.
        let key = vppkit_core::AssetKey::new(
            vppkit_core::AdamId::from(1),
            vppkit_core::PricingParam::Stdq,
        );
        let holder = vppkit_core::Holder::Device(vppkit_core::SerialNumber::new("C").unwrap());
        let left = store
            .reserve(&vppkit_store::Reservation::new(
                loc.clone(),
                key.clone(),
                vec![holder],
                "op",
                chrono::Utc::now(),
            ))
            .await
            .unwrap();
        assert_eq!(left, 0);
        // Version 5 packed the journal: the old records read back unchanged, found
        // by holder, and the next append continues their sequence.
        let all = store
            .read_journal(&vppkit_store::JournalQuery::new(loc.clone(), 10))
            .await
            .unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(
            all[0].at,
            chrono::DateTime::from_timestamp_nanos(1_500_000_000_123_456_789)
        );
        assert_eq!(all[0].asset, Some(key.clone()));
        assert_eq!(all[0].body, serde_json::json!({"n": 1}));
        assert_eq!((all[1].seq, all[1].holder.clone()), (2, None));
        assert_eq!(all[1].body, serde_json::json!([2]));
        let by_holder = store
            .read_journal(
                &vppkit_store::JournalQuery::new(loc.clone(), 10)
                    .holder("device:A".parse().unwrap()),
            )
            .await
            .unwrap();
        assert_eq!(by_holder, all[..1]);
        let next =
            vppkit_store::NewJournalRecord::new(chrono::Utc::now(), "c", "k", serde_json::json!(3));
        assert_eq!(store.append_journal(&loc, &[next]).await.unwrap(), 3);
    }

    #[tokio::test]
    async fn opening_a_newer_database_fails_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.db");
        let store = SqliteStoreOptions::new(url(&path))
            .connect(SecretCipher::plaintext())
            .await
            .unwrap();
        drop(store);
        {
            let pool = raw_pool(&path).await;
            sqlx::query(
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, \
                 execution_time) VALUES (9999, 'from the future', 1, x'00', 0)",
            )
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
        }
        let e = SqliteStoreOptions::new(url(&path))
            .connect(SecretCipher::plaintext())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Migration);
        assert!(matches!(e, StoreError::SchemaTooNew { found: 9999, .. }));
        assert!(e.to_string().contains("newer"), "{e}");
    }

    #[tokio::test]
    async fn reopening_is_a_no_op() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("again.db");
        for _ in 0..2 {
            let store = SqliteStoreOptions::new(url(&path))
                .connect(SecretCipher::plaintext())
                .await
                .unwrap();
            assert_eq!(store.schema_version().await.unwrap(), latest_version());
        }
    }
}
