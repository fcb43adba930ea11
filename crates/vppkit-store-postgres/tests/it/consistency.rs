//! Invariants of this backend's own design: the per-asset holding count, the
//! journal sequence, and leases shared by several instances.

use std::sync::Arc;

use chrono::Duration;
use serde_json::json;
use sqlx::PgConnection;
use vppkit_core::HoldingStatus;
use vppkit_store::testkit::{
    add_location, app, app_asset, device, put_assets, put_holdings, t, user,
};
use vppkit_store::{
    ErrorKind, HoldingKey, HoldingTransition, HoldingUpsert, JournalQuery, NewJournalRecord,
    Reservation, Store, SyncPage,
};

use crate::support::{cipher, raw, schema};

/// The triggers' count equals the rows, for every asset.
async fn assert_counts_exact(conn: &mut PgConnection) {
    let wrong: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT a.adam_id, a.held_count, \
                (SELECT count(*) FROM holdings h WHERE h.location_id = a.location_id \
                   AND h.adam_id = a.adam_id AND h.pricing_param = a.pricing_param) AS n \
         FROM assets a",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap()
    .into_iter()
    .filter(|(_, held, n)| held != n)
    .collect();
    assert!(
        wrong.is_empty(),
        "held_count differs from the rows: {wrong:?}"
    );
}

#[tokio::test]
async fn holding_counts_stay_exact_through_every_write() {
    let Some(schema) = schema().await else { return };
    let store: Arc<dyn Store> = Arc::new(schema.open(cipher()).await.unwrap());
    let mut conn = raw(&schema).await;
    let id = add_location(&store, "cnt").await;
    let (a, b) = (app(1), app(2));
    put_assets(
        &*store,
        &id,
        vec![app_asset(&a, 100, 0), app_asset(&b, 100, 0)],
        t(1),
    )
    .await
    .unwrap();

    // A page with duplicates (the last one wins) and two assets.
    let mut page = SyncPage::new(t(2));
    page.upsert_holdings = (0..30)
        .map(|n| {
            HoldingUpsert::new(
                if n % 2 == 0 { a.clone() } else { b.clone() },
                device(n % 20),
                HoldingStatus::Active,
            )
        })
        .collect();
    page.upsert_holdings.push(HoldingUpsert::new(
        a.clone(),
        device(0),
        HoldingStatus::Adopted,
    ));
    store.apply_sync_page(&id, &page).await.unwrap();
    assert_eq!(
        store
            .holding(&id, &a, &device(0))
            .await
            .unwrap()
            .unwrap()
            .status,
        HoldingStatus::Adopted
    );
    assert_eq!(store.holding_counts(&id, &a).await.unwrap().total(), 10);
    assert_counts_exact(&mut conn).await;

    // Reserve, re-upsert existing rows (no double count), delete, transition.
    store
        .reserve(&Reservation::new(
            id.clone(),
            a.clone(),
            vec![user(1), user(2)],
            "r",
            t(3),
        ))
        .await
        .unwrap();
    put_holdings(
        &*store,
        &id,
        vec![HoldingUpsert::new(
            a.clone(),
            user(1),
            HoldingStatus::Active,
        )],
        t(4),
    )
    .await
    .unwrap();
    let mut page = SyncPage::new(t(5));
    page.delete_holdings = vec![
        HoldingKey::new(b.clone(), device(1)),
        HoldingKey::new(b.clone(), device(77)),
    ];
    store.apply_sync_page(&id, &page).await.unwrap();
    store
        .transition_holdings(
            &id,
            &[HoldingTransition::delete(HoldingKey::new(
                a.clone(),
                device(2),
            ))],
            &[],
            t(6),
        )
        .await
        .unwrap();
    assert_counts_exact(&mut conn).await;

    let held: i64 = sqlx::query_scalar("SELECT held_count FROM assets WHERE adam_id = '1'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    // Ten devices, users 1 and 2, less device 2.
    assert_eq!(held, 11);
    schema.drop_schema().await.unwrap();
}

#[tokio::test]
async fn journal_sequences_stay_dense_across_instances() {
    let Some(schema) = schema().await else { return };
    let a: Arc<dyn Store> = Arc::new(schema.open(cipher()).await.unwrap());
    let b: Arc<dyn Store> = Arc::new(schema.open(cipher()).await.unwrap());
    let id = add_location(&a, "seq").await;
    let assets: Vec<_> = (1..=4).map(app).collect();
    put_assets(
        &*a,
        &id,
        assets.iter().map(|k| app_asset(k, 1000, 0)).collect(),
        t(1),
    )
    .await
    .unwrap();
    let mut tasks = Vec::new();
    for task in 0..8u64 {
        let store = if task % 2 == 0 { a.clone() } else { b.clone() };
        let (id, key) = (id.clone(), assets[(task % 4) as usize].clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..10u64 {
                let entry = NewJournalRecord::new(
                    t(10),
                    "policy:p",
                    "reserved",
                    json!({"task": task, "i": i}),
                );
                if i % 2 == 0 {
                    store
                        .reserve(
                            &Reservation::new(
                                id.clone(),
                                key.clone(),
                                vec![device(task * 100 + i)],
                                "op",
                                t(10),
                            )
                            .with_journal(vec![entry.clone(), entry]),
                        )
                        .await
                        .unwrap();
                } else {
                    store.append_journal(&id, &[entry]).await.unwrap();
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let journal = b
        .read_journal(&JournalQuery::new(id.clone(), 1000))
        .await
        .unwrap();
    let seqs: Vec<u64> = journal.iter().map(|r| r.seq).collect();
    assert_eq!(
        seqs,
        (1..=120).collect::<Vec<_>>(),
        "8 tasks x (5 x 2 + 5 x 1)"
    );
    assert_eq!(a.append_journal(&id, &[]).await.unwrap(), 120);
    schema.drop_schema().await.unwrap();
}

#[tokio::test]
async fn one_lease_owner_among_many_instances() {
    let Some(schema) = schema().await else { return };
    let stores: Vec<Arc<dyn Store>> = vec![
        Arc::new(schema.open(cipher()).await.unwrap()),
        Arc::new(schema.open(cipher()).await.unwrap()),
    ];
    let ttl = Duration::seconds(30);
    let mut tasks = Vec::new();
    for n in 0..8 {
        let store = stores[n % 2].clone();
        tasks.push(tokio::spawn(async move {
            store
                .acquire_lease("sync:big", &format!("instance-{n}"), ttl, t(0))
                .await
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(lease) => winners.push(lease),
            Err(e) => assert_eq!(e.kind(), ErrorKind::Conflict, "{e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one instance owns the lease");
    let owner = winners[0].owner.clone();
    assert_eq!(winners[0].token, 1);

    // It expires: one of the others takes over with a higher fencing token, and
    // the old owner can neither renew nor release it.
    let taken = stores[1]
        .acquire_lease("sync:big", "instance-late", ttl, t(31))
        .await
        .unwrap();
    assert_eq!(taken.token, 2);
    let e = stores[0]
        .renew_lease("sync:big", &owner, 1, ttl, t(32))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert!(!stores[0]
        .release_lease("sync:big", &owner, 1)
        .await
        .unwrap());
    assert!(stores[0]
        .release_lease("sync:big", "instance-late", 2)
        .await
        .unwrap());
    let again = stores[0]
        .acquire_lease("sync:big", &owner, ttl, t(33))
        .await
        .unwrap();
    assert_eq!(again.token, 3, "tokens only grow, even after a release");
    schema.drop_schema().await.unwrap();
}

#[tokio::test]
async fn pages_of_holdings_name_what_is_missing() {
    use vppkit_store::StoreError;
    let Some(schema) = schema().await else { return };
    let store: Arc<dyn Store> = Arc::new(schema.open(cipher()).await.unwrap());
    let id = add_location(&store, "here").await;
    put_assets(&*store, &id, vec![app_asset(&app(1), 5, 0)], t(1))
        .await
        .unwrap();
    let upsert = |key| vec![HoldingUpsert::new(key, device(1), HoldingStatus::Active)];

    let e = put_holdings(
        &*store,
        &vppkit_store::testkit::loc_id("gone"),
        upsert(app(1)),
        t(2),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            &e,
            StoreError::NotFound {
                what: "location",
                ..
            }
        ),
        "{e:?}"
    );
    let mut both = upsert(app(1));
    both.extend(upsert(app(2)));
    let e = put_holdings(&*store, &id, both, t(2)).await.unwrap_err();
    assert!(
        matches!(&e, StoreError::NotFound { what: "asset", key } if key == &app(2).to_string()),
        "{e:?}"
    );
    assert!(
        store
            .holding(&id, &app(1), &device(1))
            .await
            .unwrap()
            .is_none(),
        "nothing written"
    );
    // Deletions of unknown assets are no error.
    let mut page = SyncPage::new(t(3));
    page.delete_holdings = vec![HoldingKey::new(app(4), device(1))];
    store.apply_sync_page(&id, &page).await.unwrap();
    schema.drop_schema().await.unwrap();
}
