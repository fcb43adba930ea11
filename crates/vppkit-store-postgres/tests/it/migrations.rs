//! Versioned migrations: an older schema upgrades, a newer one is refused.

use std::str::FromStr;
use vppkit_store::prelude::*;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use vppkit_core::HoldingStatus;
use vppkit_store::testkit::{app, device, loc_id, t};
use vppkit_store::{ErrorKind, JournalQuery, NewJournalRecord, Reservation, StoreError};
use vppkit_store_postgres::PostgresStore;

use crate::support::{cipher, raw, schema};

/// Applies only migration 1 to the test schema, as a database created by the
/// first release would be.
async fn migrate_to_v1(url: &str, schema: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/0001_initial.sql"),
        dir.path().join("0001_initial.sql"),
    )
    .expect("copy migration 1");
    let options = PgConnectOptions::from_str(url)
        .expect("url")
        .options([("search_path", schema)]);
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .expect("pool");
    let v1 = sqlx::migrate::Migrator::new(dir.path())
        .await
        .expect("read migration 1");
    v1.run(&pool).await.expect("apply migration 1");
    pool.close().await;
}

#[tokio::test]
async fn an_older_schema_is_upgraded_with_its_data() {
    let Some(schema) = schema().await else { return };
    migrate_to_v1(schema.url(), schema.name()).await;
    let mut conn = raw(&schema).await;
    // A location with an app of 5 licences, 3 of them held, written by version 1.
    sqlx::raw_sql(
        "INSERT INTO locations (id, name, token_sealed, token_expires_at, token_state, \
           created_at, updated_at, revision) \
         VALUES ('old', 'Old', '\\x00', now(), 'valid', now(), now(), 1); \
         INSERT INTO journal_heads (location_id, last_seq) VALUES ('old', 2); \
         INSERT INTO journal (location_id, seq, at, adam_id, pricing_param, holder, cause, \
           kind, body) \
         VALUES ('old', 1, '2017-07-14 02:40:00.123456+00', '7', 'STDQ', 'device:D00000001', \
                 'sync:v1', 'ledger', '{\"n\": 1}'), \
                ('old', 2, '2017-07-14 02:40:01+00', NULL, NULL, NULL, 'operator:x', 'token', \
                 '[2]'); \
         INSERT INTO sync_state (location_id) VALUES ('old'); \
         INSERT INTO assets (location_id, adam_id, pricing_param, product_type, \
           device_assignable, revocable, platforms, total_count, assigned_count, \
           available_count, retired_count, updated_at) \
         VALUES ('old', '7', 'STDQ', 'App', true, true, '[\"iOS\"]', 5, 3, 2, 0, now()); \
         INSERT INTO holdings (location_id, adam_id, pricing_param, holder, status, updated_at) \
         VALUES ('old', '7', 'STDQ', 'device:D00000001', 'active', now()), \
                ('old', '7', 'STDQ', 'device:D00000002', 'adopted', now()), \
                ('old', '7', 'STDQ', 'device:D00000003', 'releasing', now());",
    )
    .execute(&mut conn)
    .await
    .expect("version 1 data");

    let store = schema.open(cipher()).await.expect("open upgrades");
    assert_eq!(
        store.schema_version().await.unwrap(),
        PostgresStore::supported_schema_version()
    );
    assert!(PostgresStore::supported_schema_version() >= 4);
    // Migration 4 dropped the sync-generation columns.
    let dropped: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = $1 \
         AND ((table_name = 'holdings' AND column_name = 'seen_generation') \
           OR (table_name = 'sync_state' AND column_name = 'generation'))",
    )
    .bind(schema.name())
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(dropped, 0);

    // The holding count added by migration 2 was backfilled: 2 licences are left.
    let id = loc_id("old");
    let key = app(7);
    let left = store
        .reserve(&Reservation::new(
            id.clone(),
            key.clone(),
            vec![device(4)],
            "op",
            t(1),
        ))
        .await
        .unwrap();
    assert_eq!(left, 1);
    let e = store
        .reserve(&Reservation::new(
            id.clone(),
            key.clone(),
            vec![device(5), device(6)],
            "op2",
            t(1),
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::InsufficientLicences {
                available: 1,
                requested: 2,
                ..
            }
        ),
        "{e:?}"
    );
    let h = store.holding(&id, &key, &device(2)).await.unwrap().unwrap();
    assert_eq!(h.status, HoldingStatus::Adopted);
    // Migration 5 packed the journal: the old records read back unchanged, found
    // by holder, and the next append continues their sequence.
    let all = store
        .read_journal(&JournalQuery::new(id.clone(), 10))
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(
        all[0].at,
        chrono::DateTime::from_timestamp_nanos(1_500_000_000_123_456_000)
    );
    assert_eq!(all[0].asset, Some(key.clone()));
    assert_eq!(all[0].body, serde_json::json!({"n": 1}));
    assert_eq!((all[1].seq, all[1].holder.clone()), (2, None));
    assert_eq!(all[1].body, serde_json::json!([2]));
    let by_holder = store
        .read_journal(&JournalQuery::new(id.clone(), 10).holder(device(1)))
        .await
        .unwrap();
    assert_eq!(by_holder, all[..1]);
    let next = NewJournalRecord::new(t(9), "c", "k", serde_json::json!(3));
    assert_eq!(store.append_journal(&id, &[next]).await.unwrap(), 3);
    schema.drop_schema().await.unwrap();
}

#[tokio::test]
async fn a_newer_schema_is_refused_and_left_alone() {
    let Some(schema) = schema().await else { return };
    let store = schema.open(cipher()).await.unwrap();
    let supported = PostgresStore::supported_schema_version();
    assert_eq!(store.schema_version().await.unwrap(), supported);
    store.close().await;

    // A later vppkit added migration 9999.
    let mut conn = raw(&schema).await;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from the future', true, '\\x00', 0)",
    )
    .execute(&mut conn)
    .await
    .unwrap();

    let e = schema.open(cipher()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Migration);
    assert!(
        matches!(e, StoreError::SchemaTooNew { found: 9999, supported: s } if s == supported),
        "{e:?}"
    );
    assert!(e.to_string().contains("9999"), "{e}");
    // Also without migrating.
    let e = PostgresStore::connect(schema.options(cipher()).unwrap().migrate(false))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::SchemaTooNew { .. }), "{e:?}");
    // Nothing was touched.
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(n, supported + 1);
    schema.drop_schema().await.unwrap();
}

#[tokio::test]
async fn without_migrating_only_the_current_version_opens() {
    let Some(schema) = schema().await else { return };
    let e = PostgresStore::connect(schema.options(cipher()).unwrap().migrate(false))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Migration);
    assert!(e.to_string().contains("version 0"), "{e}");

    // Migrating twice (two instances starting) is harmless.
    let (a, b) = tokio::join!(schema.open(cipher()), schema.open(cipher()));
    a.unwrap();
    b.unwrap();
    let c = PostgresStore::connect(schema.options(cipher()).unwrap().migrate(false))
        .await
        .unwrap();
    assert_eq!(
        c.schema_version().await.unwrap(),
        PostgresStore::supported_schema_version()
    );
    assert!(c.locations().await.unwrap().is_empty());
    schema.drop_schema().await.unwrap();
}
