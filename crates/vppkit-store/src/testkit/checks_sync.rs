//! Checks on sync pages, cursors and sync summaries.

use serde_json::json;
use vppkit_core::{ClientUserId, HoldingStatus, VppUser, VppUserStatus};

use super::fixtures::*;
use super::{fresh, StoreFactory};
use crate::{
    CursorUpdate, ErrorKind, HoldingKey, HoldingUpsert, JournalQuery, NewJournalRecord,
    Reservation, SyncCursor, SyncEndpoint, SyncPage, SyncSummary,
};

/// One page writes assets, users, holdings, deletions, journal and cursor together.
pub async fn sync_page_applies_everything(factory: &dyn StoreFactory) {
    let Some(store) = fresh(factory, "sync_page_applies_everything").await else {
        return;
    };
    let (id, old) = location_with_app(&store, "page", 1, 10).await;
    put_holdings(
        &*store,
        &id,
        vec![HoldingUpsert::new(
            old.clone(),
            device(1),
            HoldingStatus::Active,
        )],
        t(2),
    )
    .await
    .unwrap();

    let new = app(2);
    let mut page = SyncPage::new(t(5));
    page.upsert_assets = vec![app_asset(&new, 4, 0)];
    page.upsert_users = vec![(
        VppUser::new(ClientUserId::new("u-9").unwrap(), VppUserStatus::Associated),
        false,
    )];
    page.upsert_holdings = vec![
        HoldingUpsert::new(new.clone(), user(9), HoldingStatus::Adopted),
        HoldingUpsert::new(old.clone(), device(2), HoldingStatus::Adopted),
    ];
    page.delete_holdings = vec![HoldingKey::new(old.clone(), device(1))];
    page.journal = vec![
        NewJournalRecord::new(t(5), "sync:v2", "adopted", json!({"h": "user:u-000009"}))
            .with_asset(new.clone())
            .with_holder(user(9)),
        NewJournalRecord::new(t(5), "sync:v2", "lost", json!({})).with_holder(device(1)),
    ];
    page.cursor = Some(CursorUpdate::set(
        SyncEndpoint::Assignments,
        SyncCursor::new("v2", Some(1), t(5)),
    ));
    // The page reports the sequence number of its last journal record.
    assert_eq!(store.apply_sync_page(&id, &page).await.unwrap(), Some(2));

    assert_eq!(
        store
            .asset(&id, &new)
            .await
            .unwrap()
            .unwrap()
            .asset
            .counts
            .total,
        4
    );
    assert!(store
        .user(&id, &ClientUserId::new("u-9").unwrap())
        .await
        .unwrap()
        .is_some());
    let h = store.holding(&id, &new, &user(9)).await.unwrap().unwrap();
    assert_eq!(
        (h.status, h.updated_at, h.operation_id),
        (HoldingStatus::Adopted, t(5), None)
    );
    assert!(store
        .holding(&id, &old, &device(1))
        .await
        .unwrap()
        .is_none());
    assert!(store
        .holding(&id, &old, &device(2))
        .await
        .unwrap()
        .is_some());
    let j = store
        .read_journal(&JournalQuery::new(id.clone(), 10))
        .await
        .unwrap();
    assert_eq!(j.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(j[0].body, json!({"h": "user:u-000009"}));
    let status = store.sync_status(&id).await.unwrap();
    assert_eq!(
        status.cursor(SyncEndpoint::Assignments),
        Some(&SyncCursor::new("v2", Some(1), t(5)))
    );
    assert!(status.cursor(SyncEndpoint::Users).is_none());

    // Upserting again overwrites status and operation.
    put_holdings(
        &*store,
        &id,
        vec![
            HoldingUpsert::new(new.clone(), user(9), HoldingStatus::Releasing).with_operation("op"),
        ],
        t(6),
    )
    .await
    .unwrap();
    let h = store.holding(&id, &new, &user(9)).await.unwrap().unwrap();
    assert_eq!(
        (h.status, h.operation_id.as_deref()),
        (HoldingStatus::Releasing, Some("op"))
    );
    assert_eq!(store.holding_counts(&id, &new).await.unwrap().total(), 1);

    // Deletions and repeated keys in one page keep the licence arithmetic right:
    // `old` (10 licences) holds only device 2 now, so 9 are left.
    let mut page = SyncPage::new(t(7));
    page.upsert_holdings = vec![
        HoldingUpsert::new(old.clone(), device(3), HoldingStatus::Active),
        HoldingUpsert::new(old.clone(), device(3), HoldingStatus::Adopted),
    ];
    page.delete_holdings = vec![HoldingKey::new(old.clone(), device(3))];
    // No journal records: no sequence number.
    assert_eq!(store.apply_sync_page(&id, &page).await.unwrap(), None);
    assert!(store
        .holding(&id, &old, &device(3))
        .await
        .unwrap()
        .is_none());
    let mut page = SyncPage::new(t(8));
    page.upsert_holdings = vec![
        HoldingUpsert::new(old.clone(), device(4), HoldingStatus::Active),
        HoldingUpsert::new(old.clone(), device(4), HoldingStatus::Adopted),
    ];
    store.apply_sync_page(&id, &page).await.unwrap();
    assert_eq!(
        store
            .holding(&id, &old, &device(4))
            .await
            .unwrap()
            .unwrap()
            .status,
        HoldingStatus::Adopted,
        "the last upsert of a key in a page wins"
    );
    let holders: Vec<_> = (100..108).map(device).collect();
    let left = store
        .reserve(&Reservation::new(
            id.clone(),
            old.clone(),
            holders,
            "op-x",
            t(9),
        ))
        .await
        .unwrap();
    assert_eq!(left, 0, "10 - device 2 - device 4 - 8 reserved");
    let e = store
        .reserve(&Reservation::new(
            id.clone(),
            old.clone(),
            vec![device(200)],
            "op-y",
            t(9),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InsufficientLicences);
}

/// A page that fails part-way leaves the cursor and every earlier part of the page unwritten.
pub async fn failing_page_leaves_cursor_and_data(factory: &dyn StoreFactory) {
    let Some(store) = fresh(factory, "failing_page_leaves_cursor_and_data").await else {
        return;
    };
    let (id, key) = location_with_app(&store, "crash", 1, 10).await;
    let first = SyncCursor::new("v1", Some(1), t(2));
    let mut page = SyncPage::new(t(2));
    page.upsert_holdings = vec![HoldingUpsert::new(
        key.clone(),
        device(1),
        HoldingStatus::Active,
    )];
    page.cursor = Some(CursorUpdate::set(SyncEndpoint::Assignments, first.clone()));
    store.apply_sync_page(&id, &page).await.unwrap();

    // Page 2 refers to an asset that exists nowhere: it must fail as a whole.
    let mut bad = SyncPage::new(t(3));
    bad.upsert_assets = vec![app_asset(&app(2), 5, 0)];
    bad.upsert_users = vec![(
        VppUser::new(ClientUserId::new("u-1").unwrap(), VppUserStatus::Registered),
        true,
    )];
    bad.upsert_holdings = vec![
        HoldingUpsert::new(key.clone(), device(2), HoldingStatus::Active),
        HoldingUpsert::new(app(3), device(3), HoldingStatus::Active),
    ];
    bad.delete_holdings = vec![HoldingKey::new(key.clone(), device(1))];
    bad.journal = vec![NewJournalRecord::new(t(3), "sync:v1", "adopted", json!({}))];
    bad.cursor = Some(CursorUpdate::set(
        SyncEndpoint::Assignments,
        SyncCursor::new("v1", Some(2), t(3)),
    ));
    let e = store.apply_sync_page(&id, &bad).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);

    let status = store.sync_status(&id).await.unwrap();
    assert_eq!(
        status.cursor(SyncEndpoint::Assignments),
        Some(&first),
        "cursor not ahead of its data"
    );
    assert!(store.asset(&id, &app(2)).await.unwrap().is_none());
    assert!(store
        .user(&id, &ClientUserId::new("u-1").unwrap())
        .await
        .unwrap()
        .is_none());
    assert!(store
        .holding(&id, &key, &device(2))
        .await
        .unwrap()
        .is_none());
    assert!(store
        .holding(&id, &key, &device(1))
        .await
        .unwrap()
        .is_some());
    assert!(store
        .read_journal(&JournalQuery::new(id.clone(), 10))
        .await
        .unwrap()
        .is_empty());

    // Retrying the page without the bad holding succeeds and moves the cursor.
    bad.upsert_holdings.pop();
    store.apply_sync_page(&id, &bad).await.unwrap();
    let status = store.sync_status(&id).await.unwrap();
    assert_eq!(
        status.cursor(SyncEndpoint::Assignments).unwrap().next_page,
        Some(2)
    );
    assert!(store
        .holding(&id, &key, &device(1))
        .await
        .unwrap()
        .is_none());
}

/// Cursors per endpoint can be set and cleared; sync summaries are recorded; an empty page with a cursor is fine.
pub async fn cursors_and_summaries(factory: &dyn StoreFactory) {
    let Some(store) = fresh(factory, "cursors_and_summaries").await else {
        return;
    };
    let id = add_location(&store, "cur").await;
    let empty = store.sync_status(&id).await.unwrap();
    assert!(empty.cursors.is_empty() && empty.last_summary.is_none());
    for (ep, v) in [
        (SyncEndpoint::Users, "u1"),
        (SyncEndpoint::Assets, "a1"),
        (SyncEndpoint::Assignments, "s1"),
    ] {
        let mut page = SyncPage::new(t(1));
        page.cursor = Some(CursorUpdate::set(ep, SyncCursor::new(v, None, t(1))));
        store.apply_sync_page(&id, &page).await.unwrap();
    }
    let mut page = SyncPage::new(t(2));
    page.cursor = Some(CursorUpdate::clear(SyncEndpoint::Assets));
    store.apply_sync_page(&id, &page).await.unwrap();
    store
        .record_sync_summary(&id, &SyncSummary::failure(t(3), "Apple answered 503"))
        .await
        .unwrap();
    let status = store.sync_status(&id).await.unwrap();
    let eps: Vec<_> = status
        .cursors
        .iter()
        .map(|(e, c)| (*e, c.version_id.clone()))
        .collect();
    assert_eq!(
        eps,
        vec![
            (SyncEndpoint::Assignments, "s1".to_owned()),
            (SyncEndpoint::Users, "u1".to_owned())
        ]
    );
    assert_eq!(
        status.last_summary,
        Some(SyncSummary::failure(t(3), "Apple answered 503"))
    );
    store
        .record_sync_summary(&id, &SyncSummary::success(t(4)))
        .await
        .unwrap();
    assert_eq!(
        store.sync_status(&id).await.unwrap().last_summary,
        Some(SyncSummary::success(t(4)))
    );
}
