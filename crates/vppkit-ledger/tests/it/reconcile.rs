//! Reconciliation against Apple's state.

use vppkit_core::{AssetCounts, HoldingStatus, VppUserStatus};
use vppkit_ledger::{
    AppleHolding, AssetReason, AssignmentChanges, Cause, Change, EventKind, HoldingReason,
    LedgerNotification, NotificationBody, PendingEvent, Rejection,
};

use crate::support::*;

fn reason(e: &vppkit_ledger::JournalEntry) -> HoldingReason {
    match e.change {
        Change::Holding { reason, .. } => reason,
        ref other => panic!("not a holding change: {other:?}"),
    }
}

#[test]
fn a_full_snapshot_explains_every_difference() {
    let (mut l, mut j) = ledger_with(&[app(1, 10), app(2, 10)]);
    // Ours: device 1 active, device 2 reserved (in flight), device 3 reserved (Apple has it
    // already), device 4 releasing (Apple finished), device 5 active (Apple lost it).
    for d in 1..=5 {
        j.push(l.reserve(&key(1), &device(d), policy(), now()).unwrap());
    }
    for d in [1, 4, 5] {
        j.push(l.confirm(&key(1), &device(d), policy(), now()).unwrap());
    }
    j.push(l.release(&key(1), &device(4), policy(), now()).unwrap());

    let t = l.begin_snapshot();
    let page1 = [
        AppleHolding::new(key(1), device(1)),
        AppleHolding::new(key(1), device(3)),
    ];
    let page2 = [AppleHolding::new(key(2), device(9))];
    let e1 = l.apply_snapshot_page(&t, &page1, sync(), now()).unwrap();
    assert_eq!(
        e1.iter().map(reason).collect::<Vec<_>>(),
        [HoldingReason::Confirmed]
    );
    let e2 = l.apply_snapshot_page(&t, &page2, sync(), now()).unwrap();
    assert_eq!(
        e2.iter().map(reason).collect::<Vec<_>>(),
        [HoldingReason::Adopted]
    );
    let e3 = l.finish_snapshot(t, sync(), now()).unwrap();
    let mut reasons: Vec<_> = e3
        .iter()
        .map(|e| (e.holder().unwrap(), reason(e)))
        .collect();
    reasons.sort_by_key(|(h, _)| h.clone());
    assert_eq!(
        reasons,
        [
            (device(4), HoldingReason::Released),
            (device(5), HoldingReason::Lost)
        ]
    );
    j.extend(e1.into_iter().chain(e2).chain(e3));

    assert_eq!(l.holding(&key(1), &device(1)), Some(HoldingStatus::Active));
    assert_eq!(
        l.holding(&key(1), &device(2)),
        Some(HoldingStatus::Reserved)
    );
    assert_eq!(l.holding(&key(1), &device(3)), Some(HoldingStatus::Active));
    assert_eq!(l.holding(&key(2), &device(9)), Some(HoldingStatus::Adopted));
    assert_replays(&l, &j);

    // The same snapshot again changes nothing.
    let before = l.clone();
    let t = l.begin_snapshot();
    assert!(l
        .apply_snapshot_page(&t, &page2, sync(), now())
        .unwrap()
        .is_empty());
    assert!(l
        .apply_snapshot_page(&t, &page1, sync(), now())
        .unwrap()
        .is_empty());
    assert!(l.finish_snapshot(t, sync(), now()).unwrap().is_empty());
    assert_eq!(l, before);
}

#[test]
fn changes_during_a_walk_are_not_lost() {
    let (mut l, _) = ledger_with(&[app(1, 10)]);
    let t = l.begin_snapshot();
    // While the walk runs, a reservation is made and confirmed by its event.
    l.reserve(&key(1), &device(1), policy(), now()).unwrap();
    l.confirm(&key(1), &device(1), policy(), now()).unwrap();
    assert!(l.finish_snapshot(t, sync(), now()).unwrap().is_empty());
    assert_eq!(l.holding(&key(1), &device(1)), Some(HoldingStatus::Active));
    // The next walk, which does not list it, does lose it.
    let t = l.begin_snapshot();
    assert_eq!(l.finish_snapshot(t, sync(), now()).unwrap().len(), 1);
}

#[test]
fn an_abandoned_walk_loses_nothing() {
    let (mut l, _) = ledger_with(&[app(1, 10)]);
    l.adopt(&key(1), &device(1), sync(), now()).unwrap();
    let t = l.begin_snapshot();
    let t2 = vppkit_ledger::SnapshotToken::generation(&t);
    l.abandon_snapshot(t);
    assert_eq!(l.holding_count(), 1);
    let t = l.begin_snapshot();
    assert!(t.generation() > t2);
    l.apply_snapshot_page(&t, &[AppleHolding::new(key(1), device(1))], sync(), now())
        .unwrap();
    assert!(l.finish_snapshot(t, sync(), now()).unwrap().is_empty());
}

#[test]
fn increments() {
    let (mut l, mut j) = ledger_with(&[app(1, 10)]);
    for d in 1..=3 {
        j.push(l.reserve(&key(1), &device(d), policy(), now()).unwrap());
    }
    j.push(l.confirm(&key(1), &device(1), policy(), now()).unwrap());
    let changes = AssignmentChanges::new(
        vec![
            AppleHolding::new(key(1), device(2)),
            AppleHolding::new(key(1), device(8)),
        ],
        vec![
            AppleHolding::new(key(1), device(1)),
            AppleHolding::new(key(1), device(3)),
            AppleHolding::new(key(1), device(7)),
        ],
    );
    let e = l.apply_assignment_changes(&changes, sync(), now()).unwrap();
    let got: Vec<_> = e.iter().map(|e| (e.holder().unwrap(), reason(e))).collect();
    assert_eq!(
        got,
        [
            (device(1), HoldingReason::Lost),
            (device(2), HoldingReason::Confirmed),
            (device(8), HoldingReason::Adopted),
        ]
    );
    // Device 3's reservation is in flight: Apple not having it yet is expected.
    assert_eq!(
        l.holding(&key(1), &device(3)),
        Some(HoldingStatus::Reserved)
    );
    j.extend(e);
    let before = l.clone();
    assert!(l
        .apply_assignment_changes(&changes, sync(), now())
        .unwrap()
        .is_empty());
    assert_eq!(l, before);
    assert_replays(&l, &j);

    let unknown = AssignmentChanges::new(vec![AppleHolding::new(key(5), device(1))], vec![]);
    assert!(matches!(
        l.apply_assignment_changes(&unknown, sync(), now()),
        Err(Rejection::UnknownAsset { .. })
    ));
}

#[test]
fn asset_management_notifications() {
    let (mut l, mut j) = ledger_with(&[app(1, 10)]);
    for d in 1..=3 {
        j.push(l.reserve(&key(1), &device(d), policy(), now()).unwrap());
    }
    let items: Vec<_> = (1..=3).map(|d| (key(1), device(d))).collect();
    j.extend(
        l.record_event(
            &PendingEvent::new(event(1), EventKind::Associate),
            &items,
            policy(),
            now(),
        )
        .unwrap(),
    );
    let ok = LedgerNotification::new(
        nid(1),
        NotificationBody::AssetManagement {
            kind: EventKind::Associate,
            event_id: event(1),
            succeeded: true,
            assignments: vec![
                AppleHolding::new(key(1), device(1)),
                AppleHolding::new(key(1), device(2)),
            ],
            error_number: None,
        },
    );
    let failed = LedgerNotification::new(
        nid(2),
        NotificationBody::AssetManagement {
            kind: EventKind::Associate,
            event_id: event(1),
            succeeded: false,
            assignments: vec![AppleHolding::new(key(1), device(3))],
            error_number: Some(9709),
        },
    );
    // Order does not matter, and repeats change nothing.
    for n in [&failed, &ok, &failed, &ok] {
        j.extend(l.apply_notification(n, now()).unwrap());
    }
    assert_eq!(l.holding(&key(1), &device(1)), Some(HoldingStatus::Active));
    assert_eq!(l.holding(&key(1), &device(2)), Some(HoldingStatus::Active));
    assert_eq!(l.holding(&key(1), &device(3)), None);
    assert!(j
        .iter()
        .any(|e| e.cause == Cause::notification(nid(2), Some(event(1)))
            && reason(e) == HoldingReason::RolledBack));
    assert_replays(&l, &j);

    // Another MDM's association (an event we never sent) is adopted; its disassociation
    // releases it.
    let foreign = |succeeded, kind| {
        LedgerNotification::new(
            nid(3),
            NotificationBody::AssetManagement {
                kind,
                event_id: event(9),
                succeeded,
                assignments: vec![AppleHolding::new(key(1), device(9))],
                error_number: None,
            },
        )
    };
    let e = l
        .apply_notification(&foreign(true, EventKind::Associate), now())
        .unwrap();
    assert_eq!(reason(&e[0]), HoldingReason::Adopted);
    let e = l
        .apply_notification(&foreign(true, EventKind::Disassociate), now())
        .unwrap();
    assert_eq!(reason(&e[0]), HoldingReason::Released);
    assert!(l
        .apply_notification(&foreign(false, EventKind::Revoke), now())
        .unwrap()
        .is_empty());
}

#[test]
fn asset_count_notifications_are_applied_once() {
    let (mut l, mut j) = ledger_with(&[app(1, 10)]);
    let bought = LedgerNotification::new(
        nid(1),
        NotificationBody::AssetCount {
            asset: key(1),
            count_delta: 20,
        },
    );
    let e = l.apply_notification(&bought, now()).unwrap();
    assert!(matches!(
        e[0].change,
        Change::AssetChanged {
            reason: AssetReason::Purchased,
            ..
        }
    ));
    j.extend(e);
    assert!(l.apply_notification(&bought, now()).unwrap().is_empty());
    assert_eq!(l.asset_view(&key(1)).unwrap().owned, 30);
    let refund = LedgerNotification::new(
        nid(2),
        NotificationBody::AssetCount {
            asset: key(1),
            count_delta: -5,
        },
    );
    j.extend(l.apply_notification(&refund, now()).unwrap());
    assert_eq!(l.asset_view(&key(1)).unwrap().owned, 25);
    // The de-duplication survives replay.
    let mut replayed = vppkit_ledger::Ledger::replay(loc(), &j).unwrap();
    assert!(replayed
        .apply_notification(&bought, now())
        .unwrap()
        .is_empty());
    assert_replays(&l, &j);

    let unknown = LedgerNotification::new(
        nid(3),
        NotificationBody::AssetCount {
            asset: key(4),
            count_delta: 1,
        },
    );
    assert!(matches!(
        l.apply_notification(&unknown, now()),
        Err(Rejection::UnknownAsset { .. })
    ));
}

#[test]
fn user_notifications_and_retired_duplicates() {
    let (mut l, mut j) = ledger_with(&[user_app(1, 10)]);
    let mut registered = vpp_user(1, VppUserStatus::Registered);
    registered.invite_code = Some("0f1e".to_owned());
    let created = LedgerNotification::new(
        nid(1),
        NotificationBody::UserManagement {
            event_id: event(1),
            succeeded: true,
            users: vec![registered.clone()],
        },
    );
    j.extend(l.apply_notification(&created, now()).unwrap());
    let mut associated = registered.clone();
    associated.status = VppUserStatus::Associated;
    associated.id_hash = Some("hash".to_owned());
    let accepted = LedgerNotification::new(
        nid(2),
        NotificationBody::UserAssociated {
            users: vec![associated.clone()],
        },
    );
    j.extend(l.apply_notification(&accepted, now()).unwrap());
    assert_eq!(
        l.user(&user_id(1)).unwrap().status,
        VppUserStatus::Associated
    );
    // An older retired record of the same clientUserId (another account) does not replace it.
    let mut old = vpp_user(1, VppUserStatus::Retired);
    old.id_hash = Some("older".to_owned());
    assert!(l.apply_users(&[old], sync(), now()).is_empty());
    // Retiring this account does.
    let mut retired = associated;
    retired.status = VppUserStatus::Retired;
    j.extend(l.apply_users(&[retired], sync(), now()));
    assert_eq!(l.user(&user_id(1)).unwrap().status, VppUserStatus::Retired);
    // A failed user operation changes nothing.
    let failed = LedgerNotification::new(
        nid(3),
        NotificationBody::UserManagement {
            event_id: event(2),
            succeeded: false,
            users: vec![registered],
        },
    );
    assert!(l.apply_notification(&failed, now()).unwrap().is_empty());
    assert_replays(&l, &j);
}

#[test]
fn asset_reconciliation() {
    let (mut l, mut j) = ledger_with(&[app(1, 10), app(2, 5), app(3, 5)]);
    j.push(l.reserve(&key(3), &device(1), policy(), now()).unwrap());
    j.push(l.confirm(&key(3), &device(1), policy(), now()).unwrap());
    let mut more = app(1, 12);
    more.counts = AssetCounts::new(12, 0, 12, 0);
    let mut flags = app(2, 5);
    flags.revocable = false;
    // App 3 is gone at Apple but still held here; app 4 is new.
    let listed = [more.clone(), flags.clone(), app(4, 1)];
    let e = l.reconcile_assets(&listed, sync(), now());
    let got: Vec<_> = e
        .iter()
        .map(|e| match &e.change {
            Change::AssetChanged { asset, reason } => (asset.key.clone(), Some(*reason)),
            Change::AssetRemoved { asset } => (asset.clone(), None),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        got,
        [
            (key(1), Some(AssetReason::Purchased)),
            (key(2), Some(AssetReason::Synced)),
            (key(4), Some(AssetReason::Added)),
            (key(3), Some(AssetReason::Refunded)),
        ]
    );
    j.extend(e);
    assert_eq!(l.asset_view(&key(3)).unwrap().owned, 0);
    assert_eq!(l.asset_view(&key(3)).unwrap().over_committed, 1);
    assert!(l.reconcile_assets(&listed, sync(), now()).is_empty());
    // The next assignments walk loses the holding; then the asset can go.
    let t = l.begin_snapshot();
    j.extend(l.finish_snapshot(t, sync(), now()).unwrap());
    let e = l.reconcile_assets(&listed, sync(), now());
    assert!(matches!(&e[..], [x] if matches!(x.change, Change::AssetRemoved { .. })));
    j.extend(e);
    assert!(l.asset_view(&key(3)).is_none());
    assert!(matches!(
        l.reserve(&key(3), &device(1), policy(), now()),
        Err(Rejection::UnknownAsset { .. })
    ));
    // It comes back later (a transfer in): added again.
    let e = l.reconcile_assets(&[more, flags, app(4, 1), app(3, 2)], sync(), now());
    assert!(matches!(
        &e[..],
        [x] if matches!(x.change, Change::AssetChanged { reason: AssetReason::Added, .. })
    ));
    j.extend(e);
    assert_replays(&l, &j);
}

/// A walk of some assets only (assignments filtered by `adamId`) finds lost holdings of
/// those assets and leaves every other asset's holdings alone.
#[test]
fn an_assets_snapshot_only_judges_its_assets() {
    let (mut l, mut j) = ledger_with(&[app(1, 10), app(2, 10)]);
    for d in 1..=3 {
        for k in [1, 2] {
            j.push(l.reserve(&key(k), &device(d), policy(), now()).unwrap());
            j.push(l.confirm(&key(k), &device(d), policy(), now()).unwrap());
        }
    }
    let t = l.begin_assets_snapshot(&[key(1), key(7)]);
    let page = [
        AppleHolding::new(key(1), device(1)),
        AppleHolding::new(key(1), device(4)),
    ];
    let e1 = l.apply_snapshot_page(&t, &page, sync(), now()).unwrap();
    assert_eq!(
        e1.iter().map(reason).collect::<Vec<_>>(),
        [HoldingReason::Adopted]
    );
    let e2 = l.finish_snapshot(t, sync(), now()).unwrap();
    let mut lost: Vec<_> = e2
        .iter()
        .map(|e| (e.asset().unwrap().clone(), e.holder().unwrap(), reason(e)))
        .collect();
    lost.sort_by_key(|(a, h, _)| (a.clone(), h.clone()));
    assert_eq!(
        lost,
        [
            (key(1), device(2), HoldingReason::Lost),
            (key(1), device(3), HoldingReason::Lost)
        ]
    );
    // Asset 2 was not walked: all three holdings stay.
    assert_eq!(l.holders_of(&key(2)).len(), 3);
    assert_eq!(l.holders_of(&key(1)).len(), 2);
    j.extend(e1.into_iter().chain(e2));
    assert_replays(&l, &j);
}
