//! Table tests: every rejection, and that a rejection changes nothing.

use vppkit_core::{HoldingStatus, ProductType, VppUserStatus};
use vppkit_ledger::{
    Cause, Change, EventKind, EventOutcome, EventStatusKind, HoldingReason, Ledger, PendingEvent,
    Rejection, ReplayError,
};

use crate::support::*;

type Op = fn(&mut Ledger) -> Result<(), Rejection>;
type Expect = fn(&Rejection) -> bool;

/// A ledger with: app 1 (1 licence, held by device 1, active), user app 2, book 3 (held by
/// user 1), irrevocable app 4 (held by device 1), app 5 (device 2 reserved under event 1),
/// retired user 9.
fn base() -> Ledger {
    let (mut l, _) = ledger_with(&[
        app(1, 1),
        user_app(2, 5),
        book(3, 5),
        irrevocable_app(4, 5),
        app(5, 5),
    ]);
    let n = now();
    l.reserve(&key(1), &device(1), policy(), n).unwrap();
    l.confirm(&key(1), &device(1), policy(), n).unwrap();
    l.reserve(&key(3), &user(1), policy(), n).unwrap();
    l.confirm(&key(3), &user(1), policy(), n).unwrap();
    l.reserve(&key(4), &device(1), policy(), n).unwrap();
    l.confirm(&key(4), &device(1), policy(), n).unwrap();
    l.reserve(&key(5), &device(2), policy(), n).unwrap();
    l.record_event(
        &PendingEvent::new(event(1), EventKind::Associate),
        &[(key(5), device(2))],
        policy(),
        n,
    )
    .unwrap();
    l.upsert_user(vpp_user(9, VppUserStatus::Retired), sync(), n);
    l
}

#[test]
fn every_rejection() {
    let cases: Vec<(&str, Op, Expect)> = vec![
        (
            "reserve unknown asset",
            |l| l.reserve(&key(99), &device(1), policy(), now()).map(drop),
            |r| matches!(r, Rejection::UnknownAsset { .. }),
        ),
        (
            "reserve with no licence free",
            |l| l.reserve(&key(1), &device(2), policy(), now()).map(drop),
            |r| {
                matches!(
                    r,
                    Rejection::NoLicenceFree {
                        holdable: 1,
                        in_use: 1,
                        ..
                    }
                )
            },
        ),
        (
            "reserve twice (invariant 2)",
            |l| l.reserve(&key(5), &device(2), policy(), now()).map(drop),
            |r| {
                matches!(
                    r,
                    Rejection::AlreadyHeld {
                        status: HoldingStatus::Reserved,
                        ..
                    }
                )
            },
        ),
        (
            "adopt what is held",
            |l| {
                l.adopt(&key(1), &device(1), Cause::sync(None), now())
                    .map(drop)
            },
            |r| {
                matches!(
                    r,
                    Rejection::AlreadyHeld {
                        status: HoldingStatus::Active,
                        ..
                    }
                )
            },
        ),
        (
            "confirm what is not held",
            |l| l.confirm(&key(5), &device(3), policy(), now()).map(drop),
            |r| matches!(r, Rejection::NotHeld { .. }),
        ),
        (
            "confirm an active holding",
            |l| l.confirm(&key(1), &device(1), policy(), now()).map(drop),
            |r| {
                matches!(
                    r,
                    Rejection::WrongStatus {
                        operation: "confirm",
                        ..
                    }
                )
            },
        ),
        (
            "roll back an active holding",
            |l| l.roll_back(&key(1), &device(1), policy(), now()).map(drop),
            |r| {
                matches!(
                    r,
                    Rejection::WrongStatus {
                        operation: "roll back",
                        ..
                    }
                )
            },
        ),
        (
            "release a reservation",
            |l| l.release(&key(5), &device(2), policy(), now()).map(drop),
            |r| {
                matches!(
                    r,
                    Rejection::WrongStatus {
                        operation: "release",
                        ..
                    }
                )
            },
        ),
        (
            "complete a release never started",
            |l| {
                l.complete_release(&key(1), &device(1), policy(), now())
                    .map(drop)
            },
            |r| matches!(r, Rejection::WrongStatus { .. }),
        ),
        (
            "cancel a release never started",
            |l| {
                l.cancel_release(&key(1), &device(1), policy(), now())
                    .map(drop)
            },
            |r| matches!(r, Rejection::WrongStatus { .. }),
        ),
        (
            "mark a reservation lost",
            |l| {
                l.mark_lost(&key(5), &device(2), Cause::sync(None), now())
                    .map(drop)
            },
            |r| matches!(r, Rejection::WrongStatus { .. }),
        ),
        (
            "device licence of a user-only app (invariant 5)",
            |l| l.reserve(&key(2), &device(1), policy(), now()).map(drop),
            |r| {
                matches!(
                    r,
                    Rejection::NotDeviceAssignable {
                        product_type: ProductType::App,
                        ..
                    }
                )
            },
        ),
        (
            "device licence of a book (invariant 5)",
            |l| l.reserve(&key(3), &device(1), policy(), now()).map(drop),
            |r| {
                matches!(
                    r,
                    Rejection::NotDeviceAssignable {
                        product_type: ProductType::Book,
                        ..
                    }
                )
            },
        ),
        (
            "release a book (invariant 5)",
            |l| l.release(&key(3), &user(1), policy(), now()).map(drop),
            |r| matches!(r, Rejection::BookNotReleasable { .. }),
        ),
        (
            "release an irrevocable app",
            |l| l.release(&key(4), &device(1), policy(), now()).map(drop),
            |r| matches!(r, Rejection::NotRevocable { .. }),
        ),
        (
            "reserve for a retired user",
            |l| l.reserve(&key(2), &user(9), policy(), now()).map(drop),
            |r| {
                matches!(
                    r,
                    Rejection::UserInactive {
                        status: VppUserStatus::Retired,
                        ..
                    }
                )
            },
        ),
        (
            "record an event id twice",
            |l| {
                l.record_event(
                    &PendingEvent::new(event(1), EventKind::Associate),
                    &[(key(5), device(2))],
                    policy(),
                    now(),
                )
                .map(drop)
            },
            |r| matches!(r, Rejection::EventAlreadyRecorded { .. }),
        ),
        (
            "record an associate event on an active holding",
            |l| {
                l.record_event(
                    &PendingEvent::new(event(2), EventKind::Associate),
                    &[(key(1), device(1))],
                    policy(),
                    now(),
                )
                .map(drop)
            },
            |r| matches!(r, Rejection::WrongStatus { .. }),
        ),
        (
            "record an event for nothing",
            |l| {
                l.record_event(
                    &PendingEvent::new(event(2), EventKind::Associate),
                    &[],
                    policy(),
                    now(),
                )
                .map(drop)
            },
            |r| matches!(r, Rejection::Empty),
        ),
        (
            "an outcome of another kind than recorded",
            |l| {
                l.apply_event_outcome(
                    &EventOutcome::new(
                        event(1),
                        EventKind::Disassociate,
                        EventStatusKind::Complete,
                        vec![],
                    ),
                    now(),
                )
                .map(drop)
            },
            |r| {
                matches!(
                    r,
                    Rejection::EventKindMismatch {
                        recorded: EventKind::Associate,
                        reported: EventKind::Disassociate,
                        ..
                    }
                )
            },
        ),
        (
            "refund more than owned",
            |l| {
                l.change_count(
                    &key(5),
                    -6,
                    vppkit_ledger::AssetReason::Refunded,
                    policy(),
                    now(),
                )
                .map(drop)
            },
            |r| {
                matches!(
                    r,
                    Rejection::CountOutOfRange {
                        total: 5,
                        delta: -6,
                        ..
                    }
                )
            },
        ),
        (
            "count change of an unknown asset",
            |l| {
                l.change_count(
                    &key(77),
                    1,
                    vppkit_ledger::AssetReason::Purchased,
                    policy(),
                    now(),
                )
                .map(drop)
            },
            |r| matches!(r, Rejection::UnknownAsset { .. }),
        ),
        (
            "a page of a finished snapshot",
            |l| {
                let t = l.begin_snapshot();
                let _ = l.begin_snapshot(); // abandons t
                l.apply_snapshot_page(&t, &[], Cause::sync(None), now())
                    .map(drop)
            },
            |r| matches!(r, Rejection::SnapshotNotOpen { .. }),
        ),
        (
            "a snapshot page naming an unknown asset",
            |l| {
                let t = l.begin_snapshot();
                let page = [
                    vppkit_ledger::AppleHolding::new(key(5), device(7)),
                    vppkit_ledger::AppleHolding::new(key(66), device(7)),
                ];
                l.apply_snapshot_page(&t, &page, Cause::sync(None), now())
                    .map(drop)
            },
            |r| matches!(r, Rejection::UnknownAsset { .. }),
        ),
    ];
    for (name, op, expect) in cases {
        let mut ledger = base();
        let before = ledger.clone();
        let err = op(&mut ledger).expect_err(name);
        assert!(expect(&err), "{name}: got {err:?}");
        // Rejection messages name ids but never panic to format.
        assert!(!err.to_string().is_empty());
        assert_eq!(ledger, before, "{name}: a rejection changed the ledger");
    }
}

#[test]
fn a_refused_batch_changes_nothing() {
    let mut l = base();
    l.reserve(&key(5), &device(3), policy(), now()).unwrap();
    let before = l.clone();
    // The second item is not reserved: nothing of the batch is recorded.
    let err = l
        .record_event(
            &PendingEvent::new(event(5), EventKind::Associate),
            &[(key(5), device(3)), (key(1), device(1))],
            policy(),
            now(),
        )
        .unwrap_err();
    assert!(matches!(err, Rejection::WrongStatus { .. }));
    assert_eq!(l, before);
}

#[test]
fn replay_errors() {
    let (mut l, mut journal) = ledger_with(&[app(1, 3)]);
    journal.push(l.reserve(&key(1), &device(1), policy(), now()).unwrap());
    journal.push(l.confirm(&key(1), &device(1), policy(), now()).unwrap());

    let mut gap = journal.clone();
    gap.remove(1);
    assert!(matches!(
        Ledger::replay(loc(), &gap),
        Err(ReplayError::SequenceGap {
            expected: 2,
            found: 3
        })
    ));

    let other = vppkit_core::LocationId::new("other").unwrap();
    assert!(matches!(
        Ledger::replay(other, &journal),
        Err(ReplayError::WrongLocation { seq: 1, .. })
    ));

    let mut bad = journal.clone();
    if let Change::Holding { from, .. } = &mut bad[2].change {
        *from = Some(HoldingStatus::Releasing);
    }
    let err = Ledger::replay(loc(), &bad).unwrap_err();
    assert!(
        matches!(err, ReplayError::Inapplicable { seq: 3, .. }),
        "{err:?}"
    );

    let mut no_op = journal.clone();
    if let Change::Holding {
        from, to, reason, ..
    } = &mut no_op[2].change
    {
        *from = Some(HoldingStatus::Reserved);
        *to = Some(HoldingStatus::Reserved);
        *reason = HoldingReason::Confirmed;
    }
    assert!(matches!(
        Ledger::replay(loc(), &no_op),
        Err(ReplayError::Inapplicable { seq: 3, .. })
    ));
}
