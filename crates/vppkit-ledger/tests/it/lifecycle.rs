//! The apply flow: reserve, record the event, confirm or roll back, release, revoke.

use vppkit_core::HoldingStatus;
use vppkit_ledger::{
    AssetReason, Cause, Change, EventFailure, EventKind, EventOutcome, EventStatusKind,
    HoldingReason, PendingEvent, Rejection,
};

use crate::support::*;

#[test]
fn reservations_in_flight_count_against_free_licences() {
    let (mut l, mut j) = ledger_with(&[app(1, 2)]);
    j.push(l.reserve(&key(1), &device(1), policy(), now()).unwrap());
    j.push(l.reserve(&key(1), &device(2), policy(), now()).unwrap());
    assert_eq!(l.asset_view(&key(1)).unwrap().free, 0);
    assert!(matches!(
        l.reserve(&key(1), &device(3), policy(), now()),
        Err(Rejection::NoLicenceFree { .. })
    ));
    // Rolling one back frees a licence again.
    j.push(l.roll_back(&key(1), &device(2), policy(), now()).unwrap());
    j.push(l.reserve(&key(1), &device(3), policy(), now()).unwrap());
    assert_replays(&l, &j);
}

#[test]
fn unlimited_assets_never_run_short() {
    let (mut l, _) = ledger_with(&[free_app(1)]);
    for n in 0..500 {
        l.reserve(&key(1), &device(n), policy(), now()).unwrap();
    }
    let v = l.asset_view(&key(1)).unwrap();
    assert!(v.unlimited);
    assert_eq!(v.reserved, 500);
    assert!(v.free > 1_000_000);
}

#[test]
fn entries_carry_cause_and_counts_before_and_after() {
    let (mut l, _) = ledger_with(&[app(1, 2)]);
    let e = l.reserve(&key(1), &device(1), policy(), now()).unwrap();
    assert_eq!(e.cause, policy());
    assert_eq!(e.at, now());
    assert_eq!(e.asset(), Some(&key(1)));
    assert_eq!(e.holder(), Some(device(1)));
    assert_eq!(e.before.unwrap().reserved, 0);
    assert_eq!(e.after.unwrap().reserved, 1);
    assert_eq!(e.after.unwrap().free(), 1);
    let c = l.confirm(&key(1), &device(1), policy(), now()).unwrap();
    assert_eq!(c.seq, e.seq + 1);
    assert_eq!((c.after.unwrap().reserved, c.after.unwrap().active), (0, 1));
}

#[test]
fn event_outcome_confirms_and_rolls_back_per_holder() {
    let (mut l, mut j) = ledger_with(&[app(1, 5), user_app(2, 5)]);
    let ev = PendingEvent::new(event(1), EventKind::Associate);
    let items = vec![
        (key(1), device(1)),
        (key(1), device(2)),
        (key(2), user(1)),
        (key(2), user(2)),
    ];
    for (a, h) in &items {
        j.push(l.reserve(a, h, policy(), now()).unwrap());
    }
    j.extend(l.record_event(&ev, &items, policy(), now()).unwrap());
    assert_eq!(l.holder_view(&device(1)).holdings[0].event, Some(event(1)));
    assert_eq!(l.event_in_flight(&event(1)), Some(EventKind::Associate));
    let in_flight = l.in_flight();
    assert_eq!(in_flight.len(), 4);
    assert!(in_flight.iter().all(|h| h.event == Some(event(1))));

    // Still pending: nothing moves.
    let pending = EventOutcome::new(
        event(1),
        EventKind::Associate,
        EventStatusKind::Pending,
        vec![],
    );
    assert!(l.apply_event_outcome(&pending, now()).unwrap().is_empty());

    // 3 of 4 done: device 2 lacked a licence (9709), user 2 is unknown to Apple (9609).
    let outcome = EventOutcome::new(
        event(1),
        EventKind::Associate,
        EventStatusKind::Failed,
        vec![
            EventFailure::new(9709, vec![device(2)], vec![]),
            EventFailure::new(9609, vec![user(2)], vec![]),
        ],
    );
    let entries = l.apply_event_outcome(&outcome, now()).unwrap();
    assert_eq!(entries.len(), 4);
    assert!(entries.iter().all(|e| e.cause == Cause::event(event(1))));
    j.extend(entries);
    assert_eq!(l.holding(&key(1), &device(1)), Some(HoldingStatus::Active));
    assert_eq!(l.holding(&key(1), &device(2)), None);
    assert_eq!(l.holding(&key(2), &user(1)), Some(HoldingStatus::Active));
    assert_eq!(l.holding(&key(2), &user(2)), None);
    assert!(l.in_flight().is_empty());
    assert_eq!(l.event_in_flight(&event(1)), None);
    // Applying it again changes nothing.
    let before = l.clone();
    assert!(l.apply_event_outcome(&outcome, now()).unwrap().is_empty());
    assert_eq!(l, before);
    assert_replays(&l, &j);
}

#[test]
fn a_failed_event_naming_nobody_fails_every_holding() {
    let (mut l, _) = ledger_with(&[app(1, 5)]);
    let items = vec![(key(1), device(1)), (key(1), device(2))];
    for (a, h) in &items {
        l.reserve(a, h, policy(), now()).unwrap();
    }
    l.record_event(
        &PendingEvent::new(event(1), EventKind::Associate),
        &items,
        policy(),
        now(),
    )
    .unwrap();
    let outcome = EventOutcome::new(
        event(1),
        EventKind::Associate,
        EventStatusKind::Failed,
        vec![EventFailure::new(9603, vec![], vec![])],
    );
    assert_eq!(l.apply_event_outcome(&outcome, now()).unwrap().len(), 2);
    assert_eq!(l.holding_count(), 0);
}

#[test]
fn release_and_revoke() {
    let (mut l, mut j) = ledger_with(&[app(1, 5), app(2, 5), book(3, 5), irrevocable_app(4, 5)]);
    for (a, h) in [
        (1, device(1)),
        (2, device(1)),
        (4, device(1)),
        (3, user(1)),
        (1, user(1)),
    ] {
        j.push(l.reserve(&key(a), &h, policy(), now()).unwrap());
        j.push(l.confirm(&key(a), &h, policy(), now()).unwrap());
    }
    // Disassociate app 1 from device 1, and it succeeds.
    j.push(l.release(&key(1), &device(1), policy(), now()).unwrap());
    assert_eq!(l.asset_view(&key(1)).unwrap().releasing, 1);
    // The licence stays counted until Apple confirms.
    assert_eq!(l.asset_view(&key(1)).unwrap().free, 3);
    let ev = PendingEvent::new(event(1), EventKind::Disassociate);
    j.extend(
        l.record_event(&ev, &[(key(1), device(1))], policy(), now())
            .unwrap(),
    );
    let done = EventOutcome::new(
        event(1),
        EventKind::Disassociate,
        EventStatusKind::Complete,
        vec![],
    );
    let e = l.apply_event_outcome(&done, now()).unwrap();
    assert!(matches!(
        e[0].change,
        Change::Holding {
            reason: HoldingReason::Released,
            to: None,
            ..
        }
    ));
    j.extend(e);
    assert_eq!(l.asset_view(&key(1)).unwrap().free, 4);

    // Revoke everything of user 1: app 1 is released, the book stays (invariant 5).
    let revoked = l.revoke_all(&user(1), policy(), now());
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].asset(), Some(&key(1)));
    j.extend(revoked);
    assert_eq!(l.holding(&key(3), &user(1)), Some(HoldingStatus::Active));
    // Revoke device 1: the irrevocable app stays.
    let revoked = l.revoke_all(&device(1), policy(), now());
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].asset(), Some(&key(2)));
    j.extend(revoked);
    // The revoke fails: the licence is held again.
    j.extend(
        l.record_event(
            &PendingEvent::new(event(2), EventKind::Revoke),
            &[(key(2), device(1))],
            policy(),
            now(),
        )
        .unwrap(),
    );
    let failed = EventOutcome::new(event(2), EventKind::Revoke, EventStatusKind::Failed, vec![]);
    j.extend(l.apply_event_outcome(&failed, now()).unwrap());
    assert_eq!(l.holding(&key(2), &device(1)), Some(HoldingStatus::Active));
    // Nothing left to revoke twice.
    assert!(l.revoke_all(&user(1), policy(), now()).is_empty());
    assert_replays(&l, &j);
}

#[test]
fn count_changes() {
    let (mut l, mut j) = ledger_with(&[app(1, 2), free_app(2)]);
    let e = l
        .change_count(
            &key(1),
            3,
            AssetReason::Purchased,
            Cause::operator("ana", None),
            now(),
        )
        .unwrap()
        .unwrap();
    assert_eq!(e.before.unwrap().apple.total, 2);
    assert_eq!(e.after.unwrap().apple.total, 5);
    assert_eq!(e.after.unwrap().apple.available, 5);
    j.push(e);
    j.extend(
        l.change_count(&key(1), -4, AssetReason::Transferred, policy(), now())
            .unwrap(),
    );
    assert_eq!(l.asset_view(&key(1)).unwrap().owned, 1);
    assert!(l
        .change_count(&key(1), 0, AssetReason::Synced, policy(), now())
        .unwrap()
        .is_none());
    // Free assets keep Apple's maximum.
    assert!(l
        .change_count(&key(2), -5, AssetReason::Refunded, policy(), now())
        .unwrap()
        .is_none());
    assert_replays(&l, &j);
}

#[test]
fn a_reservation_moves_to_a_resent_event() {
    let (mut l, mut j) = ledger_with(&[app(1, 5)]);
    j.push(l.reserve(&key(1), &device(1), policy(), now()).unwrap());
    let first = PendingEvent::new(event(1), EventKind::Associate);
    let second = PendingEvent::new(event(2), EventKind::Associate);
    j.extend(
        l.record_event(&first, &[(key(1), device(1))], policy(), now())
            .unwrap(),
    );
    // After a timeout and a status check, the engine resends under a new event.
    j.extend(
        l.record_event(&second, &[(key(1), device(1))], policy(), now())
            .unwrap(),
    );
    // The first event's outcome no longer touches the holding.
    let old = EventOutcome::new(
        event(1),
        EventKind::Associate,
        EventStatusKind::Failed,
        vec![],
    );
    assert!(l.apply_event_outcome(&old, now()).unwrap().is_empty());
    let new = EventOutcome::new(
        event(2),
        EventKind::Associate,
        EventStatusKind::Complete,
        vec![],
    );
    j.extend(l.apply_event_outcome(&new, now()).unwrap());
    assert_eq!(l.holding(&key(1), &device(1)), Some(HoldingStatus::Active));
    assert_replays(&l, &j);
}

/// The holdings version changes with every change of an asset's holders (never with a count
/// alone), and a clone or a replay never shows an old number for different holders.
#[test]
fn holdings_versions_change_with_holders_only() {
    let (mut l, mut j) = ledger_with(&[app(1, 5), app(2, 5)]);
    let v1 = l.holdings_version(&key(1)).unwrap();
    let v2 = l.holdings_version(&key(2)).unwrap();
    assert_ne!(v1, v2);
    j.push(l.reserve(&key(1), &device(1), policy(), now()).unwrap());
    let reserved = l.holdings_version(&key(1)).unwrap();
    assert_ne!(reserved, v1);
    assert_eq!(l.holdings_version(&key(2)), Some(v2));
    // A status change (reserved to active) is a change of what holders_of returns.
    j.push(l.confirm(&key(1), &device(1), policy(), now()).unwrap());
    let confirmed = l.holdings_version(&key(1)).unwrap();
    assert_ne!(confirmed, reserved);
    // A purchase changes counts, not holders.
    j.extend(l.upsert_asset(app(2, 9), policy(), now()));
    assert_eq!(l.holdings_version(&key(2)), Some(v2));
    // A clone that changes takes a new number; a replay has its own numbers.
    let mut copy = l.clone();
    copy.release(&key(1), &device(1), policy(), now()).unwrap();
    let released = copy.holdings_version(&key(1)).unwrap();
    assert!(released != confirmed && released > confirmed);
    assert_eq!(l.holdings_version(&key(1)), Some(confirmed));
    let replayed = vppkit_ledger::Ledger::replay(loc(), j.iter().cloned()).unwrap();
    assert_ne!(replayed.holdings_version(&key(1)), Some(confirmed));
    assert_eq!(l.holdings_version(&key(9)), None);
}
