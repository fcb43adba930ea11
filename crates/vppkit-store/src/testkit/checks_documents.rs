//! Checks on documents (the engine's own state), notification ids recorded with
//! their effect, and fencing tokens.

use chrono::Duration;
use serde_json::json;
use vppkit_core::NotificationId;

use super::fixtures::*;
use super::{fresh, fresh_pair, StoreFactory};
use crate::{
    DocumentQuery, ErrorKind, Fence, NewDocument, NewJournalRecord, Reservation, SyncPage,
};

fn doc(key: &str, status: &str, s: i64) -> NewDocument {
    NewDocument::new("test/outbox", key, status, json!({"k": key, "s": s}), t(s))
}

/// Documents: create-only, compare-and-set, unconditional writes, queries by
/// status, due time, tag, location and key prefix, paging, deletion, retention,
/// insert-if-absent, and deletion with their location.
pub async fn documents_have_revisions(factory: &dyn StoreFactory) {
    let Some(store) = fresh(factory, "documents_have_revisions").await else {
        return;
    };
    let a = add_location(&store, "da").await;
    assert_eq!(
        store
            .put_document(&doc("b", "queued", 1), Some(0))
            .await
            .unwrap(),
        1
    );
    let again = store.put_document(&doc("b", "queued", 1), Some(0)).await;
    assert_eq!(again.unwrap_err().kind(), ErrorKind::Conflict);
    assert_eq!(
        store
            .put_document(&doc("b", "sent", 2), Some(1))
            .await
            .unwrap(),
        2
    );
    let stale = store.put_document(&doc("b", "failed", 3), Some(1)).await;
    assert_eq!(stale.unwrap_err().kind(), ErrorKind::VersionMismatch);
    let missing = store.put_document(&doc("a", "queued", 3), Some(4)).await;
    assert_eq!(missing.unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(
        store
            .put_document(&doc("a", "queued", 3), None)
            .await
            .unwrap(),
        1
    );
    let empty = store.put_document(&doc("", "queued", 3), None).await;
    assert_eq!(empty.unwrap_err().kind(), ErrorKind::Invalid);
    let gone = loc_id("nowhere");
    let orphan = store
        .put_document(&doc("c", "queued", 3).with_location(gone), None)
        .await;
    assert_eq!(orphan.unwrap_err().kind(), ErrorKind::NotFound);

    let b = store.document("test/outbox", "b").await.unwrap().unwrap();
    assert_eq!(
        (b.status.as_str(), b.revision, b.updated_at, b.body),
        ("sent", 2, t(2), json!({"k": "b", "s": 2}))
    );
    assert!(store.document("test/other", "b").await.unwrap().is_none());

    // Tags, due times, locations, statuses, prefixes.
    let c = doc("c", "queued", 4)
        .with_tag("uuid-c")
        .with_location(a.clone())
        .with_due_at(Some(t(10)));
    let d = doc("d", "queued", 4).with_due_at(Some(t(20)));
    assert_eq!(
        store
            .insert_documents(&[c.clone(), d.clone()])
            .await
            .unwrap(),
        ["c", "d"]
    );
    assert!(
        store
            .insert_documents(std::slice::from_ref(&c))
            .await
            .unwrap()
            .is_empty(),
        "insert-if-absent leaves an existing key alone"
    );
    store
        .put_document(
            &NewDocument::new("test/other", "c", "queued", json!(1), t(4)),
            None,
        )
        .await
        .unwrap();
    let keys = |docs: Vec<crate::Document>| docs.into_iter().map(|d| d.key).collect::<Vec<_>>();
    let q = DocumentQuery::new("test/outbox", 10);
    assert_eq!(
        keys(store.documents(&q).await.unwrap()),
        ["a", "b", "c", "d"]
    );
    let queued = q.clone().status("queued");
    assert_eq!(
        keys(store.documents(&queued).await.unwrap()),
        ["a", "c", "d"]
    );
    let due = queued.clone().due_by(t(15));
    assert_eq!(keys(store.documents(&due).await.unwrap()), ["c"]);
    let tagged = q.clone().tag("uuid-c");
    assert_eq!(keys(store.documents(&tagged).await.unwrap()), ["c"]);
    let here = q.clone().location(a.clone());
    assert_eq!(keys(store.documents(&here).await.unwrap()), ["c"]);
    let two = q.clone().status("queued").status("sent");
    assert_eq!(
        keys(store.documents(&two).await.unwrap()),
        ["a", "b", "c", "d"]
    );
    let prefix = DocumentQuery::new("test/outbox", 10).key_prefix("c");
    assert_eq!(keys(store.documents(&prefix).await.unwrap()), ["c"]);
    let page = DocumentQuery::new("test/outbox", 2);
    assert_eq!(keys(store.documents(&page).await.unwrap()), ["a", "b"]);
    assert_eq!(
        keys(store.documents(&page.clone().after("b")).await.unwrap()),
        ["c", "d"]
    );
    assert_eq!(keys(store.all_documents(&page).await.unwrap()).len(), 4);
    let zero = store.documents(&DocumentQuery::new("test/outbox", 0)).await;
    assert_eq!(zero.unwrap_err().kind(), ErrorKind::Invalid);

    // Deletion with a revision check, retention by status and age.
    let wrong = store.delete_document("test/outbox", "b", Some(1)).await;
    assert_eq!(wrong.unwrap_err().kind(), ErrorKind::VersionMismatch);
    assert!(store
        .delete_document("test/outbox", "b", Some(2))
        .await
        .unwrap());
    assert!(!store
        .delete_document("test/outbox", "b", None)
        .await
        .unwrap());
    assert_eq!(
        store
            .prune_documents("test/outbox", &["queued"], t(4))
            .await
            .unwrap(),
        1,
        "only a (queued, written at 3) is older than 4"
    );
    assert!(store.document("test/outbox", "a").await.unwrap().is_none());
    assert!(store.delete_location(&a).await.unwrap());
    assert!(
        store.document("test/outbox", "c").await.unwrap().is_none(),
        "a location's documents go with it"
    );
    assert!(store.document("test/outbox", "d").await.unwrap().is_some());
    assert!(store.document("test/other", "c").await.unwrap().is_some());
}

/// A page that carries a notification id records it with its effect: the same
/// id again fails with a conflict and writes nothing; documents in a page are
/// written with it.
pub async fn notification_ids_are_recorded_with_their_effect(factory: &dyn StoreFactory) {
    let Some(store) = fresh(factory, "notification_ids_are_recorded_with_their_effect").await
    else {
        return;
    };
    let a = add_location(&store, "na").await;
    let id = NotificationId::new("n-1").unwrap();
    let record = |s: i64| NewJournalRecord::new(t(s), "notification:n-1", "count", json!(s));
    let mut page = SyncPage::new(t(1));
    page.journal = vec![record(1)];
    page.notification = Some(id.clone());
    page.documents = vec![doc("mark", "needed", 1).with_location(a.clone())];
    store.apply_sync_page(&a, &page).await.unwrap();
    assert!(store
        .document("test/outbox", "mark")
        .await
        .unwrap()
        .is_some());

    let mut replay = SyncPage::new(t(2));
    replay.journal = vec![record(2)];
    replay.notification = Some(id.clone());
    replay.documents = vec![doc("other", "needed", 2)];
    let e = store.apply_sync_page(&a, &replay).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    let journal = store
        .read_journal(&crate::JournalQuery::new(a.clone(), 10))
        .await
        .unwrap();
    assert_eq!(journal.len(), 1, "the replay wrote no journal record");
    assert!(store
        .document("test/outbox", "other")
        .await
        .unwrap()
        .is_none());
    assert!(
        !store.record_notification(&a, &id, t(3)).await.unwrap(),
        "the page's id is a recorded notification"
    );
}

/// A write fenced with a lease token is refused once another owner holds the
/// lease, and accepted while the token is current (even past its expiry when
/// nobody took it).
pub async fn fences_refuse_writes_after_a_takeover(factory: &dyn StoreFactory) {
    let Some((s1, s2)) = fresh_pair(factory, "fences_refuse_writes_after_a_takeover").await else {
        return;
    };
    let (a, asset) = location_with_app(&s1, "fa", 1, 5).await;
    let ttl = Duration::seconds(30);
    let l1 = s1
        .acquire_lease("loc:fa", "node-1", ttl, t(0))
        .await
        .unwrap();
    let fence = Fence::of(&l1);
    let mut page = SyncPage::new(t(1));
    page.journal = vec![NewJournalRecord::new(t(1), "x", "y", json!(1))];
    page.fence = Some(fence.clone());
    s1.apply_sync_page(&a, &page).await.unwrap();
    let r = Reservation::new(a.clone(), asset.clone(), vec![device(1)], "op-1", t(1))
        .with_fence(Some(fence.clone()));
    s1.reserve(&r).await.unwrap();
    // Expired, nobody took it: still ours.
    page.at = Some(t(40));
    s1.apply_sync_page(&a, &page).await.unwrap();

    let l2 = s2
        .acquire_lease("loc:fa", "node-2", ttl, t(45))
        .await
        .unwrap();
    assert_ne!(l2.token, l1.token);
    let late = s1.apply_sync_page(&a, &page).await.unwrap_err();
    assert_eq!(late.kind(), ErrorKind::Conflict);
    assert!(matches!(late, crate::StoreError::Fenced { .. }), "{late}");
    let r2 = Reservation::new(a.clone(), asset.clone(), vec![device(2)], "op-2", t(46))
        .with_fence(Some(fence));
    assert!(matches!(
        s1.reserve(&r2).await.unwrap_err(),
        crate::StoreError::Fenced { .. }
    ));
    assert!(s2.holding(&a, &asset, &device(2)).await.unwrap().is_none());
    // The new holder's fence works.
    let r3 = Reservation::new(a.clone(), asset.clone(), vec![device(3)], "op-3", t(46))
        .with_fence(Some(Fence::of(&l2)));
    s2.reserve(&r3).await.unwrap();
    let never = Fence::new("loc:never-taken", 1);
    page.fence = Some(never);
    let e = s2.apply_sync_page(&a, &page).await.unwrap_err();
    assert!(matches!(e, crate::StoreError::Fenced { .. }));
}
