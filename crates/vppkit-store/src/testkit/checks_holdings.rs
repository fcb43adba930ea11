//! Checks on holdings and reservations.

use std::sync::Arc;

use serde_json::json;
use vppkit_core::HoldingStatus;

use super::fixtures::*;
use super::{fresh, fresh_pair, StoreFactory};
use crate::{
    ErrorKind, HoldingKey, HoldingTransition, HoldingUpsert, JournalQuery, NewJournalRecord,
    Reservation, Store, StoreError, SyncPage,
};

fn reservation(
    loc: &vppkit_core::LocationId,
    key: &vppkit_core::AssetKey,
    holders: Vec<vppkit_core::Holder>,
    op: &str,
) -> Reservation {
    Reservation::new(loc.clone(), key.clone(), holders, op, t(10))
}

/// Reservations use `total - retired`, are all or nothing, and report what is left.
pub async fn reserve_respects_counts(factory: &dyn StoreFactory) {
    let Some(store) = fresh(factory, "reserve_respects_counts").await else {
        return;
    };
    let id = add_location(&store, "res").await;
    let key = app(7);
    put_assets(&*store, &id, vec![app_asset(&key, 10, 3)], t(1))
        .await
        .unwrap();

    let journal = vec![
        NewJournalRecord::new(t(10), "policy:p", "reserved", json!({"n": 4}))
            .with_asset(key.clone()),
    ];
    let left = store
        .reserve(
            &reservation(&id, &key, (1..=4).map(device).collect(), "op-1").with_journal(journal),
        )
        .await
        .unwrap();
    assert_eq!(left, 3, "7 holdable - 4");
    let h = store.holding(&id, &key, &device(2)).await.unwrap().unwrap();
    assert_eq!(h.status, HoldingStatus::Reserved);
    assert_eq!(h.operation_id.as_deref(), Some("op-1"));
    assert_eq!(h.updated_at, t(10));
    let j = store
        .read_journal(&JournalQuery::new(id.clone(), 10))
        .await
        .unwrap();
    assert_eq!(j.len(), 1);
    assert_eq!(j[0].kind, "reserved");

    // Four more do not fit: nothing is written.
    let e = store
        .reserve(
            &reservation(&id, &key, (10..14).map(device).collect(), "op-2").with_journal(vec![
                NewJournalRecord::new(t(11), "policy:p", "reserved", json!({})),
            ]),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InsufficientLicences);
    match e {
        StoreError::InsufficientLicences {
            requested,
            available,
            ..
        } => {
            assert_eq!((requested, available), (4, 3));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(store
        .holding(&id, &key, &device(10))
        .await
        .unwrap()
        .is_none());
    assert_eq!(store.holding_counts(&id, &key).await.unwrap().total(), 4);
    assert_eq!(
        store
            .read_journal(&JournalQuery::new(id.clone(), 10))
            .await
            .unwrap()
            .len(),
        1
    );

    // Exactly three do.
    assert_eq!(
        store
            .reserve(&reservation(
                &id,
                &key,
                (10..13).map(device).collect(),
                "op-3"
            ))
            .await
            .unwrap(),
        0
    );
    let e = store
        .reserve(&reservation(&id, &key, vec![user(1)], "op-4"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InsufficientLicences);

    // More licences from Apple (a count notification) make room again.
    put_assets(&*store, &id, vec![app_asset(&key, 12, 3)], t(12))
        .await
        .unwrap();
    assert_eq!(
        store
            .reserve(&reservation(&id, &key, vec![user(1)], "op-5"))
            .await
            .unwrap(),
        1
    );

    // Unlimited (free) assets.
    let free = app(8);
    put_assets(
        &*store,
        &id,
        vec![app_asset(&free, vppkit_core::UNLIMITED_COUNT, 0)],
        t(1),
    )
    .await
    .unwrap();
    let left = store
        .reserve(&reservation(&id, &free, vec![device(1)], "op-6"))
        .await
        .unwrap();
    assert_eq!(left, vppkit_core::UNLIMITED_COUNT - 1);
}

/// Every holding status uses a licence until the holding is deleted.
pub async fn reserve_counts_every_status(factory: &dyn StoreFactory) {
    let Some(store) = fresh(factory, "reserve_counts_every_status").await else {
        return;
    };
    let (id, key) = location_with_app(&store, "every", 9, 5).await;
    put_holdings(
        &*store,
        &id,
        vec![
            HoldingUpsert::new(key.clone(), device(1), HoldingStatus::Active),
            HoldingUpsert::new(key.clone(), device(2), HoldingStatus::Adopted),
            HoldingUpsert::new(key.clone(), device(3), HoldingStatus::Releasing)
                .with_operation("rel"),
            HoldingUpsert::new(key.clone(), device(4), HoldingStatus::Reserved).with_operation("x"),
        ],
        t(2),
    )
    .await
    .unwrap();
    let c = store.holding_counts(&id, &key).await.unwrap();
    assert_eq!(
        (c.active, c.adopted, c.releasing, c.reserved, c.total()),
        (1, 1, 1, 1, 4)
    );
    assert_eq!(
        store
            .reserve(&reservation(&id, &key, vec![device(5)], "op"))
            .await
            .unwrap(),
        0
    );
    let e = store
        .reserve(&reservation(&id, &key, vec![device(6)], "op2"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InsufficientLicences);

    // Releasing done: the licence is free again.
    store
        .transition_holdings(
            &id,
            &[HoldingTransition::delete(HoldingKey::new(
                key.clone(),
                device(3),
            ))],
            &[],
            t(3),
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .reserve(&reservation(&id, &key, vec![device(6)], "op2"))
            .await
            .unwrap(),
        0
    );
}

/// A holder that already holds the asset, duplicates and unknown assets are refused; nothing is written.
pub async fn reserve_conflicts_write_nothing(factory: &dyn StoreFactory) {
    let Some(store) = fresh(factory, "reserve_conflicts_write_nothing").await else {
        return;
    };
    let (id, key) = location_with_app(&store, "conf", 3, 10).await;
    store
        .reserve(&reservation(&id, &key, vec![device(1)], "a"))
        .await
        .unwrap();
    let e = store
        .reserve(&reservation(
            &id,
            &key,
            vec![device(2), device(1), device(3)],
            "b",
        ))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert!(matches!(&e, StoreError::AlreadyHeld { holder, .. } if *holder == device(1)));
    assert!(store
        .holding(&id, &key, &device(2))
        .await
        .unwrap()
        .is_none());

    let e = store
        .reserve(&reservation(&id, &key, vec![device(5), device(5)], "c"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert!(store
        .holding(&id, &key, &device(5))
        .await
        .unwrap()
        .is_none());

    let e = store
        .reserve(&reservation(&id, &app(4), vec![device(5)], "d"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(store.holding_counts(&id, &key).await.unwrap().total(), 1);

    // The same holder may hold another asset, and the same asset in another location.
    let (other, _) = location_with_app(&store, "conf-2", 3, 10).await;
    store
        .reserve(&reservation(&other, &key, vec![device(1)], "e"))
        .await
        .unwrap();
    put_assets(&*store, &id, vec![app_asset(&app(4), 1, 0)], t(1))
        .await
        .unwrap();
    store
        .reserve(&reservation(&id, &app(4), vec![device(1)], "f"))
        .await
        .unwrap();
}

/// 8 tasks over 2 store handles race for the last 100 licences: exactly 100 succeed.
pub async fn reserve_last_100_concurrently(factory: &dyn StoreFactory) {
    let Some((a, b)) = fresh_pair(factory, "reserve_last_100_concurrently").await else {
        return;
    };
    let id = add_location(&a, "race").await;
    let key = app(42);
    put_assets(&*a, &id, vec![app_asset(&key, 1_100, 0)], t(1))
        .await
        .unwrap();
    // 1,000 already held: 100 left.
    let mut page = SyncPage::new(t(1));
    page.upsert_holdings = (0..1_000)
        .map(|n| HoldingUpsert::new(key.clone(), device(1_000_000 + n), HoldingStatus::Active))
        .collect();
    a.apply_sync_page(&id, &page).await.unwrap();

    let mut tasks = Vec::new();
    for task in 0..8u64 {
        let store: Arc<dyn Store> = if task % 2 == 0 { a.clone() } else { b.clone() };
        let (id, key) = (id.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut refused) = (0u32, 0u32);
            for i in 0..40u64 {
                // Mostly single holders, some pairs.
                let holders = if i % 5 == 0 {
                    vec![device(task * 1000 + i), user(task * 1000 + i)]
                } else {
                    vec![device(task * 1000 + i)]
                };
                let n = holders.len() as u32;
                let r = Reservation::new(
                    id.clone(),
                    key.clone(),
                    holders,
                    format!("op-{task}-{i}"),
                    t(20),
                );
                match store.reserve(&r).await {
                    Ok(_) => ok += n,
                    Err(e) if e.kind() == ErrorKind::InsufficientLicences => refused += n,
                    Err(e) => panic!("unexpected error: {e}"),
                }
            }
            (ok, refused)
        }));
    }
    let mut ok = 0;
    for task in tasks {
        ok += task.await.expect("task").0;
    }
    assert_eq!(ok, 100, "exactly the last 100 licences are reserved");
    let counts = b.holding_counts(&id, &key).await.unwrap();
    assert_eq!(counts.reserved, 100);
    assert_eq!(counts.total(), 1_100);
}

/// Transitions: confirm, release, roll back; a wrong expectation or a missing holding changes nothing.
pub async fn transitions_are_atomic(factory: &dyn StoreFactory) {
    let Some(store) = fresh(factory, "transitions_are_atomic").await else {
        return;
    };
    let (id, key) = location_with_app(&store, "tr", 5, 10).await;
    store
        .reserve(&reservation(&id, &key, vec![device(1), device(2)], "op-a"))
        .await
        .unwrap();
    store
        .reserve(&reservation(&id, &key, vec![device(3)], "op-b"))
        .await
        .unwrap();

    let k = |n| HoldingKey::new(key.clone(), device(n));
    // One bad expectation: nothing changes, no journal.
    let e = store
        .transition_holdings(
            &id,
            &[
                HoldingTransition::set(k(1), HoldingStatus::Active)
                    .expecting(HoldingStatus::Reserved),
                HoldingTransition::set(k(3), HoldingStatus::Active)
                    .expecting(HoldingStatus::Active),
            ],
            &[NewJournalRecord::new(
                t(30),
                "event:e",
                "confirmed",
                json!({}),
            )],
            t(30),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::VersionMismatch);
    assert_eq!(
        store
            .holding(&id, &key, &device(1))
            .await
            .unwrap()
            .unwrap()
            .status,
        HoldingStatus::Reserved
    );
    assert!(store
        .read_journal(&JournalQuery::new(id.clone(), 10))
        .await
        .unwrap()
        .is_empty());

    let e = store
        .transition_holdings(
            &id,
            &[
                HoldingTransition::set(k(1), HoldingStatus::Active),
                HoldingTransition::delete(k(9)),
            ],
            &[],
            t(30),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(
        store
            .holding(&id, &key, &device(1))
            .await
            .unwrap()
            .unwrap()
            .status,
        HoldingStatus::Reserved
    );

    // Confirm op-a: what it reserved becomes active, with a journal record.
    let confirm: Vec<_> = store
        .holdings_by_operation(&id, "op-a")
        .await
        .unwrap()
        .iter()
        .map(|h| {
            HoldingTransition::set(h.key(), HoldingStatus::Active)
                .expecting(HoldingStatus::Reserved)
        })
        .collect();
    assert_eq!(confirm.len(), 2);
    store
        .transition_holdings(
            &id,
            &confirm,
            &[NewJournalRecord::new(
                t(31),
                "event:e",
                "confirmed",
                json!({}),
            )],
            t(31),
        )
        .await
        .unwrap();
    let h = store.holding(&id, &key, &device(2)).await.unwrap().unwrap();
    assert_eq!((h.status, h.updated_at), (HoldingStatus::Active, t(31)));
    assert_eq!(
        store
            .read_journal(&JournalQuery::new(id.clone(), 10))
            .await
            .unwrap()
            .len(),
        1
    );

    // Roll back op-b: what it still reserves is deleted.
    let roll_back: Vec<_> = store
        .holdings_by_operation(&id, "op-b")
        .await
        .unwrap()
        .iter()
        .map(|h| HoldingTransition::delete(h.key()).expecting(HoldingStatus::Reserved))
        .collect();
    assert_eq!(roll_back.len(), 1);
    store
        .transition_holdings(&id, &roll_back, &[], t(32))
        .await
        .unwrap();
    assert!(store
        .holding(&id, &key, &device(3))
        .await
        .unwrap()
        .is_none());

    // Release device 1: releasing under a new operation, then deleted.
    store
        .transition_holdings(
            &id,
            &[HoldingTransition::set(k(1), HoldingStatus::Releasing).with_operation("op-c")],
            &[],
            t(33),
        )
        .await
        .unwrap();
    let ops = store.holdings_by_operation(&id, "op-c").await.unwrap();
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0].status, HoldingStatus::Releasing);
    store
        .transition_holdings(
            &id,
            &[HoldingTransition::delete(k(1)).expecting(HoldingStatus::Releasing)],
            &[],
            t(34),
        )
        .await
        .unwrap();
    assert_eq!(store.holding_counts(&id, &key).await.unwrap().total(), 1);

    let e = store
        .transition_holdings(
            &id,
            &[
                HoldingTransition::delete(k(2)),
                HoldingTransition::delete(k(2)),
            ],
            &[],
            t(35),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert!(store
        .holding(&id, &key, &device(2))
        .await
        .unwrap()
        .is_some());
}

/// Paged reads return every holding once, in the documented byte order.
pub async fn holdings_are_paged_in_order(factory: &dyn StoreFactory) {
    let Some(store) = fresh(factory, "holdings_are_paged_in_order").await else {
        return;
    };
    let id = add_location(&store, "pages").await;
    let keys = [app(9), app(10), app(100)];
    put_assets(
        &*store,
        &id,
        keys.iter().map(|k| app_asset(k, 1000, 0)).collect(),
        t(1),
    )
    .await
    .unwrap();
    let mut ups = Vec::new();
    for k in &keys {
        for n in (0..25).rev() {
            ups.push(HoldingUpsert::new(
                k.clone(),
                device(n),
                HoldingStatus::Active,
            ));
            ups.push(HoldingUpsert::new(
                k.clone(),
                user(n),
                HoldingStatus::Adopted,
            ));
        }
    }
    put_holdings(&*store, &id, ups, t(2)).await.unwrap();

    let mut all = Vec::new();
    let mut after: Option<HoldingKey> = None;
    loop {
        let page = store.holdings_page(&id, after.as_ref(), 7).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 7);
        after = Some(page.last().unwrap().key());
        all.extend(page);
    }
    assert_eq!(all.len(), 150);
    let sort: Vec<_> = all.iter().map(|h| h.key().sort_key()).collect();
    let mut sorted = sort.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sort, sorted, "strictly increasing byte order");
    // "10" < "100" < "9"
    assert_eq!(all[0].asset, app(10));
    assert_eq!(all[149].asset, app(9));
    assert_eq!(all[0].holder, device(0));
    assert_eq!(all[25].holder, user(0));

    let mut by_asset = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .holdings_by_asset(&id, &app(100), after.as_ref(), 10)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        after = Some(page.last().unwrap().holder.clone());
        by_asset.extend(page);
    }
    assert_eq!(by_asset.len(), 50);
    assert!(by_asset
        .iter()
        .all(|h| h.asset == app(100) && h.location == id));

    let mine = store.holdings_by_holder(&id, &user(3)).await.unwrap();
    let assets: Vec<_> = mine.iter().map(|h| h.asset.clone()).collect();
    assert_eq!(assets, vec![app(10), app(100), app(9)]);
    assert!(mine.iter().all(|h| h.status == HoldingStatus::Adopted));
    assert!(store
        .holdings_by_holder(&id, &device(99))
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .holdings_page(&loc_id("none"), None, 5)
        .await
        .unwrap()
        .is_empty());
}
