//! Stores in different schemas of one database never see each other.

use vppkit_store::prelude::*;
use vppkit_store::testkit::{add_location, loc_id};
use vppkit_store::Store;
use vppkit_store_postgres::PostgresStore;

use crate::support::{cipher, schema};

#[tokio::test]
async fn schemas_are_isolated_and_dropped() {
    let Some(one) = schema().await else { return };
    let two = schema().await.expect("second schema");
    assert_ne!(one.name(), two.name());
    let a: std::sync::Arc<dyn Store> = std::sync::Arc::new(one.open(cipher()).await.unwrap());
    let b = two.open(cipher()).await.unwrap();
    add_location(&a, "only-in-one").await;
    assert!(b.location(&loc_id("only-in-one")).await.unwrap().is_none());
    assert!(b.locations().await.unwrap().is_empty());
    assert_eq!(a.locations().await.unwrap().len(), 1);

    // The public helper used by other crates' tests: a store in a named schema.
    let again = PostgresStore::connect_in_schema(one.url(), one.name(), cipher())
        .await
        .unwrap();
    assert_eq!(again.schema(), Some(one.name()));
    assert_eq!(again.locations().await.unwrap().len(), 1);
    again.close().await;

    let (url, name) = (one.url().to_owned(), one.name().to_owned());
    drop(a);
    one.drop_schema().await.unwrap();
    let mut conn = {
        use sqlx::Connection;
        sqlx::PgConnection::connect(&url).await.unwrap()
    };
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_namespace WHERE nspname = $1")
        .bind(&name)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, 0, "the schema is gone");
    two.drop_schema().await.unwrap();
}

#[tokio::test]
async fn durable_sync_pages_apply_the_same() {
    use vppkit_core::HoldingStatus;
    use vppkit_store::testkit::{app, app_asset, device, put_assets, put_holdings, t};
    use vppkit_store::HoldingUpsert;

    let Some(schema) = schema().await else { return };
    let store: std::sync::Arc<dyn Store> = std::sync::Arc::new(
        PostgresStore::connect(schema.options(cipher()).unwrap().durable_sync_pages(true))
            .await
            .unwrap(),
    );
    let id = add_location(&store, "durable").await;
    put_assets(&*store, &id, vec![app_asset(&app(1), 5, 0)], t(1))
        .await
        .unwrap();
    put_holdings(
        &*store,
        &id,
        vec![HoldingUpsert::new(app(1), device(1), HoldingStatus::Active)],
        t(2),
    )
    .await
    .unwrap();
    assert_eq!(store.holding_counts(&id, &app(1)).await.unwrap().active, 1);
    schema.drop_schema().await.unwrap();
}
