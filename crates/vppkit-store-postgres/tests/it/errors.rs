//! Errors: an unreachable server is unavailable; deadlocks are retried.

use std::time::Duration;
use vppkit_store::prelude::*;

use serde_json::json;
use sqlx::Connection;
use vppkit_store::testkit::{device, location_with_app, t};
use vppkit_store::{ErrorKind, NewJournalRecord, Reservation, SecretCipher, Store};
use vppkit_store_postgres::{PostgresOptions, PostgresStore};

use crate::support::{cipher, schema};

#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    // Nothing listens on port 1.
    let options = PostgresOptions::from_url(
        "postgres://nobody@127.0.0.1:1/none",
        SecretCipher::plaintext(),
    )
    .unwrap()
    .acquire_timeout(Duration::from_secs(2));
    let e = PostgresStore::connect(options).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e:?}");
    assert!(e.kind().is_transient());
}

#[tokio::test]
async fn a_closed_store_is_unavailable() {
    let Some(schema) = schema().await else { return };
    let store = schema.open(cipher()).await.unwrap();
    store.close().await;
    let e = store.locations().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e:?}");
    schema.drop_schema().await.unwrap();
}

/// Makes the store's reservation the victim of a deadlock with another session,
/// and returns what the reservation answered.
async fn reserve_into_a_deadlock(
    store: PostgresStore,
    url: &str,
    schema_name: &str,
) -> vppkit_store::Result<u32> {
    let shared: std::sync::Arc<dyn Store> = std::sync::Arc::new(store.clone());
    let (id, key) = location_with_app(&shared, "dl", 5, 10).await;
    let mut other = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::raw_sql(&format!(
        "SET search_path = \"{schema_name}\"; SET deadlock_timeout = '20s'; BEGIN; \
         UPDATE journal_heads SET last_seq = last_seq WHERE location_id = 'dl';"
    ))
    .execute(&mut other)
    .await
    .unwrap();
    let reservation = Reservation::new(id, key, vec![device(1)], "op", t(5)).with_journal(vec![
        NewJournalRecord::new(t(5), "policy:p", "reserved", json!({})),
    ]);
    let task = tokio::spawn(async move { store.reserve(&reservation).await });
    // The reservation holds the asset's row and waits for the journal head.
    tokio::time::sleep(Duration::from_millis(400)).await;
    // This session now waits for the asset's row: a deadlock, which the store's
    // session (shorter deadlock_timeout) detects and loses.
    sqlx::query("SELECT 1 FROM assets WHERE adam_id = '5' FOR UPDATE")
        .execute(&mut other)
        .await
        .expect("the other session wins");
    sqlx::query("COMMIT").execute(&mut other).await.unwrap();
    task.await.unwrap()
}

#[tokio::test]
async fn a_deadlocked_reservation_is_retried() {
    let Some(schema) = schema().await else { return };
    let store = schema.open(cipher()).await.unwrap();
    let left = reserve_into_a_deadlock(store.clone(), schema.url(), schema.name())
        .await
        .expect("retried after the deadlock");
    assert_eq!(left, 9);
    schema.drop_schema().await.unwrap();
}

#[tokio::test]
async fn without_retries_a_deadlock_is_unavailable() {
    let Some(schema) = schema().await else { return };
    let store = PostgresStore::connect(schema.options(cipher()).unwrap().max_conflict_retries(0))
        .await
        .unwrap();
    let e = reserve_into_a_deadlock(store.clone(), schema.url(), schema.name())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e:?}");
    assert!(e.to_string().contains("concurrent"), "{e}");
    // Nothing of the failed reservation was written.
    let shared: &dyn Store = &store;
    let id = vppkit_store::testkit::loc_id("dl");
    assert_eq!(
        shared
            .holding_counts(&id, &vppkit_store::testkit::app(5))
            .await
            .unwrap()
            .total(),
        0
    );
    schema.drop_schema().await.unwrap();
}
