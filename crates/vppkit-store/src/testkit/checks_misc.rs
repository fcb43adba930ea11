//! Checks on the journal, operations, notifications, install status and leases.

use chrono::Duration;
use serde_json::json;
use vppkit_core::{EventId, NotificationId};

use super::fixtures::*;
use super::{fresh, fresh_pair, StoreFactory};
use crate::{
    ErrorKind, Fence, InstallRecord, InstallState, JournalQuery, NewJournalRecord, Operation,
    OperationKind, OperationStatus, OperationUpdate, StoreError,
};

/// Sequence numbers increase per location from 1; queries filter by asset, holder, time and position.
pub async fn journal_sequences_and_queries(factory: &dyn StoreFactory) {
    let Some(store) = fresh(factory, "journal_sequences_and_queries").await else {
        return;
    };
    let a = add_location(&store, "ja").await;
    let b = add_location(&store, "jb").await;
    let rec = |s: i64, asset: Option<u64>, holder: Option<u64>| {
        let mut r = NewJournalRecord::new(
            t(s),
            format!("event:e{s}"),
            "assigned",
            json!({"s": s, "nested": {"x": [1, 2]}}),
        );
        if let Some(n) = asset {
            r = r.with_asset(app(n));
        }
        if let Some(n) = holder {
            r = r.with_holder(device(n));
        }
        r
    };
    assert_eq!(
        store
            .append_journal(&a, &[rec(1, Some(1), Some(1)), rec(2, Some(2), Some(1))])
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .append_journal(&b, &[rec(1, Some(1), None)])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .append_journal(
                &a,
                &[
                    rec(3, Some(1), Some(2)),
                    rec(4, None, None),
                    rec(5, Some(1), Some(1))
                ]
            )
            .await
            .unwrap(),
        5
    );
    assert_eq!(store.append_journal(&a, &[]).await.unwrap(), 5);

    let all = store
        .read_journal(&JournalQuery::new(a.clone(), 100))
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert_eq!(all[0].cause, "event:e1");
    assert_eq!(all[0].kind, "assigned");
    assert_eq!(all[0].body, json!({"s": 1, "nested": {"x": [1, 2]}}));
    assert_eq!(all[0].at, t(1));
    assert_eq!(all[0].location, a);
    assert_eq!(all[3].asset, None);
    assert_eq!(all[3].holder, None);

    let seqs = |q: JournalQuery| {
        let store = store.clone();
        async move {
            store
                .read_journal(&q)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.seq)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        seqs(JournalQuery::new(a.clone(), 100).asset(app(1))).await,
        [1, 3, 5]
    );
    assert_eq!(
        seqs(JournalQuery::new(a.clone(), 100).holder(device(1))).await,
        [1, 2, 5]
    );
    assert_eq!(
        seqs(
            JournalQuery::new(a.clone(), 100)
                .asset(app(1))
                .holder(device(1))
        )
        .await,
        [1, 5]
    );
    assert_eq!(
        seqs(JournalQuery::new(a.clone(), 100).between(Some(t(2)), Some(t(4)))).await,
        [2, 3]
    );
    assert_eq!(
        seqs(JournalQuery::new(a.clone(), 100).between(Some(t(4)), None)).await,
        [4, 5]
    );
    assert_eq!(seqs(JournalQuery::new(a.clone(), 2).after(1)).await, [2, 3]);
    assert_eq!(
        seqs(JournalQuery::new(a.clone(), 100).after(5)).await,
        Vec::<u64>::new()
    );
    assert_eq!(seqs(JournalQuery::new(b.clone(), 100)).await, [1]);

    // Many appends of several records each: paging with a limit that cuts through
    // appends returns every record once, in order; a holder named in one late
    // append only is found without reading the others.
    for i in 0..40_i64 {
        let holder = if i == 35 { 9 } else { 3 };
        let batch: Vec<_> = (0..3)
            .map(|k| rec(10 + i * 3 + k, Some(2), Some(holder)))
            .collect();
        store.append_journal(&b, &batch).await.unwrap();
    }
    let mut paged = Vec::new();
    let mut after = 0;
    loop {
        let page = seqs(JournalQuery::new(b.clone(), 7).after(after)).await;
        assert!(page.len() <= 7);
        let Some(&last) = page.last() else { break };
        after = last;
        paged.extend(page);
    }
    assert_eq!(paged, (1..=121).collect::<Vec<u64>>());
    assert_eq!(
        seqs(JournalQuery::new(b.clone(), 100).holder(device(9))).await,
        [107, 108, 109]
    );
    assert_eq!(
        seqs(JournalQuery::new(b.clone(), 2).holder(device(9)).after(107)).await,
        [108, 109]
    );
    assert_eq!(
        seqs(JournalQuery::new(b.clone(), 1000).asset(app(2)))
            .await
            .len(),
        120
    );
}

/// Operations: insert, duplicate, status updates with expectations, event lookup, unfinished, prune.
pub async fn operations_lifecycle(factory: &dyn StoreFactory) {
    let Some(store) = fresh(factory, "operations_lifecycle").await else {
        return;
    };
    let a = add_location(&store, "oa").await;
    let b = add_location(&store, "ob").await;
    let request =
        json!({"assets": [{"adamId": "1", "pricingParam": "STDQ"}], "serialNumbers": ["D1"]});
    let op1 = Operation::new(
        "6f1c-1",
        a.clone(),
        OperationKind::Associate,
        request.clone(),
        t(1),
    )
    .with_deadline(t(600));
    store.insert_operation(&op1).await.unwrap();
    assert_eq!(
        store.insert_operation(&op1).await.unwrap_err().kind(),
        ErrorKind::Conflict
    );
    store
        .insert_operation(&Operation::new(
            "6f1c-0",
            a.clone(),
            OperationKind::Revoke,
            json!({}),
            t(2),
        ))
        .await
        .unwrap();
    store
        .insert_operation(&Operation::new(
            "6f1c-2",
            b.clone(),
            OperationKind::CreateUsers,
            json!([]),
            t(0),
        ))
        .await
        .unwrap();
    assert_eq!(store.operation("6f1c-1").await.unwrap(), Some(op1.clone()));
    assert!(store.operation("nope").await.unwrap().is_none());

    let event = EventId::new("3f6b1c2a-8e4d").unwrap();
    let sent = store
        .update_operation(
            "6f1c-1",
            &OperationUpdate::new(OperationStatus::Pending, t(5))
                .expecting(OperationStatus::Prepared)
                .with_event_id(event.clone()),
        )
        .await
        .unwrap();
    assert_eq!(
        (sent.status, sent.updated_at, sent.deadline),
        (OperationStatus::Pending, t(5), Some(t(600)))
    );
    assert_eq!(sent.event_id.as_ref(), Some(&event));
    let e = store
        .update_operation(
            "6f1c-1",
            &OperationUpdate::new(OperationStatus::Complete, t(6))
                .expecting(OperationStatus::Prepared),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::VersionMismatch);
    assert_eq!(
        store
            .update_operation("zzz", &OperationUpdate::new(OperationStatus::Failed, t(6)))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        store
            .operation_by_event(&a, &event)
            .await
            .unwrap()
            .unwrap()
            .id,
        "6f1c-1"
    );
    assert!(store
        .operation_by_event(&b, &event)
        .await
        .unwrap()
        .is_none());

    let ids = |ops: Vec<Operation>| ops.into_iter().map(|o| o.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.unfinished_operations(None).await.unwrap()),
        ["6f1c-2", "6f1c-1", "6f1c-0"]
    );
    assert_eq!(
        ids(store.unfinished_operations(Some(&a)).await.unwrap()),
        ["6f1c-1", "6f1c-0"]
    );

    let done = store
        .update_operation(
            "6f1c-1",
            &OperationUpdate::new(OperationStatus::Complete, t(10))
                .with_result(json!({"ok": true}))
                .with_deadline(t(700)),
        )
        .await
        .unwrap();
    assert_eq!(done.result, Some(json!({"ok": true})));
    assert_eq!(done.event_id.as_ref(), Some(&event), "kept");
    assert_eq!(done.deadline, Some(t(700)));
    assert_eq!(done.request, request);
    store
        .update_operation(
            "6f1c-2",
            &OperationUpdate::new(OperationStatus::OutcomeUnknown, t(11)),
        )
        .await
        .unwrap();
    store
        .update_operation(
            "6f1c-0",
            &OperationUpdate::new(OperationStatus::RolledBack, t(20)),
        )
        .await
        .unwrap();
    assert_eq!(
        ids(store.unfinished_operations(None).await.unwrap()),
        ["6f1c-2"]
    );

    assert_eq!(store.prune_operations(t(15)).await.unwrap(), 1);
    assert!(store.operation("6f1c-1").await.unwrap().is_none());
    assert!(store.operation("6f1c-0").await.unwrap().is_some());
    assert!(
        store.operation("6f1c-2").await.unwrap().is_some(),
        "unfinished are never pruned"
    );
}

/// An operation update fenced with a lease taken over since is refused with
/// [`StoreError::Fenced`] and changes nothing; with the current token, or with no
/// fence, it is applied.
pub async fn operation_updates_are_fenced(factory: &dyn StoreFactory) {
    let Some((s1, s2)) = fresh_pair(factory, "operation_updates_are_fenced").await else {
        return;
    };
    let loc = add_location(&s1, "of").await;
    s1.insert_operation(&Operation::new(
        "op-f",
        loc.clone(),
        OperationKind::Associate,
        json!({"assets": 1}),
        t(0),
    ))
    .await
    .unwrap();
    let ttl = Duration::seconds(30);
    let l1 = s1
        .acquire_lease("loc:of", "node-1", ttl, t(0))
        .await
        .unwrap();
    let old = Fence::of(&l1);
    let sent = s1
        .update_operation(
            "op-f",
            &OperationUpdate::new(OperationStatus::Sent, t(1))
                .expecting(OperationStatus::Prepared)
                .with_fence(Some(old.clone())),
        )
        .await
        .unwrap();
    assert_eq!(sent.status, OperationStatus::Sent);

    // Another instance takes the lease after it expired.
    let l2 = s2
        .acquire_lease("loc:of", "node-2", ttl, t(45))
        .await
        .unwrap();
    assert_ne!(l2.token, l1.token);
    let late = s1
        .update_operation(
            "op-f",
            &OperationUpdate::new(OperationStatus::Pending, t(46))
                .expecting(OperationStatus::Sent)
                .with_event_id(EventId::new("ev-late").unwrap())
                .with_result(json!({"late": true}))
                .with_deadline(t(600))
                .with_fence(Some(old.clone())),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&late, StoreError::Fenced { name } if name == "loc:of"),
        "{late:?}"
    );
    assert_eq!(late.kind(), ErrorKind::Conflict);
    assert_eq!(
        s2.operation("op-f").await.unwrap(),
        Some(sent.clone()),
        "a refused update changes nothing"
    );
    assert!(s2
        .operation_by_event(&loc, &EventId::new("ev-late").unwrap())
        .await
        .unwrap()
        .is_none());
    // A lease never taken fences too.
    let never = s1
        .update_operation(
            "op-f",
            &OperationUpdate::new(OperationStatus::Failed, t(47))
                .with_fence(Some(Fence::new("loc:never-taken", 1))),
        )
        .await
        .unwrap_err();
    assert!(matches!(never, StoreError::Fenced { .. }), "{never:?}");

    // The new holder's token is accepted, and so is an unfenced update.
    let pending = s2
        .update_operation(
            "op-f",
            &OperationUpdate::new(OperationStatus::Pending, t(48))
                .expecting(OperationStatus::Sent)
                .with_event_id(EventId::new("ev-1").unwrap())
                .with_fence(Some(Fence::of(&l2))),
        )
        .await
        .unwrap();
    assert_eq!(
        (
            pending.status,
            pending.event_id.as_ref().map(|e| e.as_str())
        ),
        (OperationStatus::Pending, Some("ev-1"))
    );
    let done = s1
        .update_operation(
            "op-f",
            &OperationUpdate::new(OperationStatus::Complete, t(49)),
        )
        .await
        .unwrap();
    assert_eq!(done.status, OperationStatus::Complete);
}

/// Notification ids: the first record is new, repeats are not (from any handle); old ones are pruned.
pub async fn notifications_are_deduplicated(factory: &dyn StoreFactory) {
    let Some((s1, s2)) = fresh_pair(factory, "notifications_are_deduplicated").await else {
        return;
    };
    let a = add_location(&s1, "na").await;
    let n1 = NotificationId::new("0c9b7e55-6a2f").unwrap();
    let n2 = NotificationId::new("a1e2b3c4-0000").unwrap();
    assert!(s1.record_notification(&a, &n1, t(0)).await.unwrap());
    assert!(!s2.record_notification(&a, &n1, t(5)).await.unwrap());
    assert!(s2.record_notification(&a, &n2, t(100)).await.unwrap());
    assert_eq!(s1.prune_notifications(t(50)).await.unwrap(), 1);
    assert!(
        s1.record_notification(&a, &n1, t(200)).await.unwrap(),
        "forgotten after pruning"
    );
    assert!(!s1.record_notification(&a, &n2, t(200)).await.unwrap());
}

/// Install status per (location, holder, asset), replaced by newer reports.
pub async fn install_statuses_round_trip(factory: &dyn StoreFactory) {
    let Some(store) = fresh(factory, "install_statuses_round_trip").await else {
        return;
    };
    let a = add_location(&store, "ia").await;
    let r1 = InstallRecord::new(a.clone(), device(1), app(2), InstallState::Queued, t(1))
        .with_command("cmd-1");
    store.put_install_status(&r1).await.unwrap();
    store
        .put_install_status(&InstallRecord::new(
            a.clone(),
            device(1),
            app(10),
            InstallState::Installed,
            t(1),
        ))
        .await
        .unwrap();
    store
        .put_install_status(&InstallRecord::new(
            a.clone(),
            device(2),
            app(2),
            InstallState::NotNow,
            t(1),
        ))
        .await
        .unwrap();
    assert_eq!(
        store.install_status(&a, &device(1), &app(2)).await.unwrap(),
        Some(r1)
    );
    let failed = InstallRecord::new(a.clone(), device(1), app(2), InstallState::Failed, t(2))
        .with_command("cmd-2")
        .with_detail(json!({"ErrorChain": [{"ErrorCode": 12064}]}));
    store.put_install_status(&failed).await.unwrap();
    assert_eq!(
        store.install_status(&a, &device(1), &app(2)).await.unwrap(),
        Some(failed)
    );
    let mine: Vec<_> = store
        .install_statuses(&a, &device(1))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.asset)
        .collect();
    assert_eq!(mine, vec![app(10), app(2)]);
    assert!(store
        .install_status(&a, &device(3), &app(2))
        .await
        .unwrap()
        .is_none());
}

/// Leases: one owner at a time, renewals keep the token, expiry lets another take over with a higher token.
pub async fn leases_acquire_renew_release_expire(factory: &dyn StoreFactory) {
    let Some((s1, s2)) = fresh_pair(factory, "leases_acquire_renew_release_expire").await else {
        return;
    };
    let ttl = Duration::seconds(30);
    let l1 = s1
        .acquire_lease("sync:a", "node-1", ttl, t(0))
        .await
        .unwrap();
    assert_eq!(
        (l1.owner.as_str(), l1.acquired_at, l1.expires_at),
        ("node-1", t(0), t(30))
    );
    let e = s2
        .acquire_lease("sync:a", "node-2", ttl, t(10))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    // Our own acquire extends and keeps the token.
    let again = s2
        .acquire_lease("sync:a", "node-1", ttl, t(10))
        .await
        .unwrap();
    assert_eq!(
        (again.token, again.expires_at, again.acquired_at),
        (l1.token, t(40), t(0))
    );
    let renewed = s1
        .renew_lease("sync:a", "node-1", l1.token, ttl, t(20))
        .await
        .unwrap();
    assert_eq!((renewed.token, renewed.expires_at), (l1.token, t(50)));
    assert_eq!(
        s2.renew_lease("sync:a", "node-2", l1.token, ttl, t(20))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Conflict
    );

    // Expired: node-2 takes over with a higher token; node-1 can no longer renew or release.
    let l2 = s2
        .acquire_lease("sync:a", "node-2", ttl, t(51))
        .await
        .unwrap();
    assert!(l2.token > l1.token);
    assert_eq!(l2.acquired_at, t(51));
    assert_eq!(
        s1.renew_lease("sync:a", "node-1", l1.token, ttl, t(52))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Conflict
    );
    assert!(!s1
        .release_lease("sync:a", "node-1", l1.token)
        .await
        .unwrap());
    assert_eq!(s1.lease("sync:a").await.unwrap().unwrap().owner, "node-2");

    // Renewing after expiry fails even if nobody took it.
    assert_eq!(
        s2.renew_lease("sync:a", "node-2", l2.token, ttl, t(200))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );

    // Released: free at once for anyone, with a higher token.
    let l3 = s2
        .acquire_lease("sync:a", "node-2", ttl, t(300))
        .await
        .unwrap();
    assert!(s2
        .release_lease("sync:a", "node-2", l3.token)
        .await
        .unwrap());
    let l4 = s1
        .acquire_lease("sync:a", "node-1", ttl, t(301))
        .await
        .unwrap();
    assert!(l4.token > l3.token);
    assert_eq!(
        s1.renew_lease("nope", "node-1", 1, ttl, t(301))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );

    // Leases are independent by name; bad arguments are refused.
    s2.acquire_lease("sync:b", "node-2", ttl, t(301))
        .await
        .unwrap();
    assert_eq!(
        s1.acquire_lease("", "node-1", ttl, t(0))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Invalid
    );
    assert_eq!(
        s1.acquire_lease("x", "", ttl, t(0))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Invalid
    );
    assert_eq!(
        s1.acquire_lease("x", "n", Duration::zero(), t(0))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Invalid
    );
    assert!(s1.lease("never").await.unwrap().is_none());
}
