//! Property tests over random sequences of operations and Apple inputs: invariants 1, 2, 3 and
//! 5 of docs/architecture.md hold after every step, replay equals state, Apple inputs are
//! idempotent, and a snapshot's pages may come in any order.

use std::collections::HashSet;

use proptest::prelude::*;
use vppkit_core::{Asset, AssetKey, Holder, HoldingStatus, VppUserStatus};
use vppkit_ledger::{
    AppleHolding, AssetReason, AssignmentChanges, Cause, EventFailure, EventKind, EventOutcome,
    EventStatusKind, JournalEntry, Ledger, LedgerNotification, NotificationBody, PendingEvent,
    Rejection,
};

use crate::support::*;

const HOLDERS: usize = 6;

fn assets(totals: &[u32; 4]) -> Vec<Asset> {
    vec![
        app(1, totals[0]),
        user_app(2, totals[1]),
        book(3, totals[2]),
        irrevocable_app(4, totals[3]),
        free_app(5),
    ]
}

fn asset_key(a: usize) -> AssetKey {
    key(a as u64 + 1)
}

fn holder(h: usize) -> Holder {
    if h < HOLDERS / 2 {
        device(h as u32)
    } else {
        user(h as u32)
    }
}

/// Apple only lets device-assignable assets be held by devices: map a device to a user there.
fn apple_pair(a: usize, h: usize) -> AppleHolding {
    let device_ok = a == 0 || a == 3 || a == 4;
    let h = if !device_ok && h < HOLDERS / 2 {
        h + HOLDERS / 2
    } else {
        h
    };
    AppleHolding::new(asset_key(a), holder(h))
}

#[derive(Debug, Clone)]
enum Op {
    Reserve(usize, usize),
    Confirm(usize, usize),
    RollBack(usize, usize),
    Release(usize, usize),
    CompleteRelease(usize, usize),
    CancelRelease(usize, usize),
    RevokeAll(usize),
    Adopt(usize, usize),
    MarkLost(usize, usize),
    RecordEvent(u32, Vec<(usize, usize)>),
    Outcome(u32, u8, Vec<usize>),
    CountDelta(u32, usize, i64),
    User(usize, u8),
    Snapshot(Vec<Vec<(usize, usize)>>),
    Increment(Vec<(usize, usize)>, Vec<(usize, usize)>),
    Management(u8, u32, bool, Vec<(usize, usize)>),
}

impl Op {
    /// Whether the op is an input from Apple (which must be idempotent), not our own action.
    /// Adopting and marking lost record what Apple has; a repeat is refused, changing nothing.
    fn is_apple_input(&self) -> bool {
        matches!(
            self,
            Op::Adopt(..)
                | Op::MarkLost(..)
                | Op::Outcome(..)
                | Op::CountDelta(..)
                | Op::User(..)
                | Op::Snapshot(..)
                | Op::Increment(..)
                | Op::Management(..)
        )
    }
}

fn pair() -> impl Strategy<Value = (usize, usize)> {
    (0..5usize, 0..HOLDERS)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => pair().prop_map(|(a, h)| Op::Reserve(a, h)),
        3 => pair().prop_map(|(a, h)| Op::Confirm(a, h)),
        2 => pair().prop_map(|(a, h)| Op::RollBack(a, h)),
        3 => pair().prop_map(|(a, h)| Op::Release(a, h)),
        2 => pair().prop_map(|(a, h)| Op::CompleteRelease(a, h)),
        1 => pair().prop_map(|(a, h)| Op::CancelRelease(a, h)),
        1 => (0..HOLDERS).prop_map(Op::RevokeAll),
        1 => pair().prop_map(|(a, h)| Op::Adopt(a, h)),
        1 => pair().prop_map(|(a, h)| Op::MarkLost(a, h)),
        3 => (0..4u32, prop::collection::vec(pair(), 1..4))
            .prop_map(|(e, items)| Op::RecordEvent(e, items)),
        3 => (0..4u32, 0..3u8, prop::collection::vec(0..HOLDERS, 0..3))
            .prop_map(|(e, s, f)| Op::Outcome(e, s, f)),
        2 => (0..6u32, 0..5usize, -3..4i64).prop_map(|(n, a, d)| Op::CountDelta(n, a, d)),
        1 => (HOLDERS / 2..HOLDERS, 0..4u8).prop_map(|(u, s)| Op::User(u, s)),
        2 => prop::collection::vec(prop::collection::vec(pair(), 0..5), 0..4)
            .prop_map(Op::Snapshot),
        2 => (prop::collection::vec(pair(), 0..4), prop::collection::vec(pair(), 0..4))
            .prop_map(|(p, r)| Op::Increment(p, r)),
        2 => (0..3u8, 0..5u32, any::<bool>(), prop::collection::vec(pair(), 1..4))
            .prop_map(|(k, e, s, p)| Op::Management(k, e, s, p)),
    ]
}

fn kind(k: u8) -> EventKind {
    match k {
        0 => EventKind::Associate,
        1 => EventKind::Disassociate,
        _ => EventKind::Revoke,
    }
}

/// Runs one op. Our own event ids are `ev-0`..`ev-3`; a recorded event's kind follows the
/// status of its first holding.
fn run(l: &mut Ledger, op: &Op) -> Result<Vec<JournalEntry>, Rejection> {
    let n = now();
    let one = |r: Result<JournalEntry, Rejection>| r.map(|e| vec![e]);
    match op {
        Op::Reserve(a, h) => one(l.reserve(&asset_key(*a), &holder(*h), policy(), n)),
        Op::Confirm(a, h) => one(l.confirm(&asset_key(*a), &holder(*h), policy(), n)),
        Op::RollBack(a, h) => one(l.roll_back(&asset_key(*a), &holder(*h), policy(), n)),
        Op::Release(a, h) => one(l.release(&asset_key(*a), &holder(*h), policy(), n)),
        Op::CompleteRelease(a, h) => {
            one(l.complete_release(&asset_key(*a), &holder(*h), policy(), n))
        }
        Op::CancelRelease(a, h) => one(l.cancel_release(&asset_key(*a), &holder(*h), policy(), n)),
        Op::RevokeAll(h) => Ok(l.revoke_all(&holder(*h), policy(), n)),
        Op::Adopt(a, h) => {
            let x = apple_pair(*a, *h);
            one(l.adopt(&x.asset, &x.holder, sync(), n))
        }
        Op::MarkLost(a, h) => one(l.mark_lost(&asset_key(*a), &holder(*h), sync(), n)),
        Op::RecordEvent(e, items) => {
            let items: Vec<_> = items
                .iter()
                .map(|&(a, h)| (asset_key(a), holder(h)))
                .collect();
            let first = l.holding(&items[0].0, &items[0].1);
            let k = if first == Some(HoldingStatus::Releasing) {
                EventKind::Disassociate
            } else {
                EventKind::Associate
            };
            l.record_event(&PendingEvent::new(event(*e), k), &items, policy(), n)
        }
        Op::Outcome(e, s, failed) => {
            let status = [
                EventStatusKind::Pending,
                EventStatusKind::Complete,
                EventStatusKind::Failed,
            ][*s as usize];
            let failures = failed
                .iter()
                .map(|&h| EventFailure::new(9709, vec![holder(h)], vec![]))
                .collect();
            // Report the kind the ledger recorded, when it has the event.
            let k = l
                .event_in_flight(&event(*e))
                .unwrap_or(EventKind::Associate);
            match l.apply_event_outcome(&EventOutcome::new(event(*e), k, status, failures), n) {
                Err(Rejection::EventKindMismatch { .. }) => Ok(Vec::new()),
                other => other,
            }
        }
        Op::CountDelta(id, a, d) => l.apply_notification(
            &LedgerNotification::new(
                nid(*id + 100 * (*a as u32)),
                NotificationBody::AssetCount {
                    asset: asset_key(*a),
                    count_delta: *d,
                },
            ),
            n,
        ),
        Op::User(u, s) => {
            let status = VppUserStatus::ALL[*s as usize];
            Ok(l.apply_users(&[vpp_user(*u as u32, status)], sync(), n))
        }
        Op::Snapshot(pages) => {
            let t = l.begin_snapshot();
            let mut entries = Vec::new();
            for page in pages {
                let page: Vec<_> = page.iter().map(|&(a, h)| apple_pair(a, h)).collect();
                entries.extend(l.apply_snapshot_page(&t, &page, sync(), n)?);
            }
            entries.extend(l.finish_snapshot(t, sync(), n)?);
            Ok(entries)
        }
        Op::Increment(present, removed) => {
            let changes = AssignmentChanges::new(
                present.iter().map(|&(a, h)| apple_pair(a, h)).collect(),
                removed.iter().map(|&(a, h)| apple_pair(a, h)).collect(),
            );
            l.apply_assignment_changes(&changes, sync(), n)
        }
        Op::Management(k, e, ok, pairs) => l.apply_notification(
            &LedgerNotification::new(
                nid(1000 + *e),
                NotificationBody::AssetManagement {
                    kind: kind(*k),
                    event_id: event(*e),
                    succeeded: *ok,
                    assignments: pairs.iter().map(|&(a, h)| apple_pair(a, h)).collect(),
                    error_number: (!ok).then_some(9709),
                },
            ),
            n,
        ),
    }
}

fn check_invariants(l: &Ledger) -> Result<(), TestCaseError> {
    for v in l.asset_views() {
        // The accounting formula, never negative.
        if !v.unlimited {
            let want = u64::from(v.holdable).saturating_sub(v.in_use());
            prop_assert_eq!(v.free, want, "free of {}", v.key);
        }
        // Invariant 2: a holder holds an asset at most once.
        let holders = l.holders_of(&v.key);
        let unique: HashSet<_> = holders.iter().map(|(h, _)| h).collect();
        prop_assert_eq!(unique.len(), holders.len());
        for (h, status) in holders {
            // Invariant 5: device licences only for device-assignable assets; books and
            // irrevocable apps are never being released.
            if h.is_device() {
                prop_assert!(v.device_assignable, "{} holds {}", h, v.key);
            }
            if !v.revocable {
                prop_assert_ne!(status, HoldingStatus::Releasing);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_over_random_sequences(
        totals in [0..4u32, 0..3u32, 0..3u32, 0..3u32],
        ops in prop::collection::vec(op(), 1..40),
    ) {
        let (mut l, mut journal) = ledger_with(&assets(&totals));
        for op in &ops {
            let before = l.clone();
            let result = run(&mut l, op);
            match &result {
                // A rejection changes nothing.
                Err(_) => prop_assert_eq!(&l, &before, "{:?} was refused but changed", op),
                // Invariant 3: every change has an entry, numbered without gaps.
                Ok(entries) => {
                    if entries.is_empty() {
                        prop_assert_eq!(&l, &before, "{:?} changed without an entry", op);
                    }
                    for (i, e) in entries.iter().enumerate() {
                        prop_assert_eq!(e.seq, before.next_seq() + i as u64);
                    }
                    prop_assert_eq!(l.next_seq(), before.next_seq() + entries.len() as u64);
                }
            }
            // Invariant 1: our own actions never add holdings beyond what can be held.
            if !op.is_apple_input() {
                for v in l.asset_views() {
                    let old = before.asset_view(&v.key).unwrap();
                    prop_assert!(
                        v.over_committed <= old.over_committed,
                        "{:?} over-committed {}", op, v.key
                    );
                    if v.in_use() > old.in_use() {
                        prop_assert!(v.unlimited || v.in_use() <= u64::from(v.holdable));
                    }
                }
            }
            check_invariants(&l)?;
            let entries = result.unwrap_or_default();
            // Apple's inputs are idempotent.
            if op.is_apple_input() {
                let once = l.clone();
                let again = run(&mut l, op);
                prop_assert!(
                    again.as_ref().map(|e| e.is_empty()).unwrap_or(true),
                    "{:?} applied twice gave {:?}", op, again
                );
                prop_assert_eq!(&l, &once);
            }
            journal.extend(entries);
        }
        // Invariant 3: replaying the journal (also from JSON) gives the same state.
        prop_assert_eq!(Ledger::replay(loc(), &journal).unwrap(), l.clone());
        let json = serde_json::to_string(&journal).unwrap();
        let parsed: Vec<JournalEntry> = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(Ledger::replay(loc(), parsed).unwrap(), l);
    }

    #[test]
    fn snapshot_pages_in_any_order_give_the_same_state(
        totals in [0..4u32, 0..3u32, 0..3u32, 0..3u32],
        ops in prop::collection::vec(op(), 0..25),
        pages in prop::collection::vec(prop::collection::vec(pair(), 0..5), 1..5),
        order in Just(()).prop_perturb(|_, mut rng| rng.next_u64()),
    ) {
        let (mut l, _) = ledger_with(&assets(&totals));
        for op in &ops {
            let _ = run(&mut l, op);
        }
        let pages: Vec<Vec<AppleHolding>> = pages
            .iter()
            .map(|p| p.iter().map(|&(a, h)| apple_pair(a, h)).collect())
            .collect();
        let mut shuffled = pages.clone();
        // A deterministic permutation from the drawn seed.
        let len = shuffled.len();
        for i in (1..len).rev() {
            let j = (order.rotate_left(i as u32) % (i as u64 + 1)) as usize;
            shuffled.swap(i, j);
        }
        let walk = |l: &mut Ledger, pages: &[Vec<AppleHolding>]| {
            let t = l.begin_snapshot();
            for p in pages {
                l.apply_snapshot_page(&t, p, sync(), now()).unwrap();
            }
            l.finish_snapshot(t, sync(), now()).unwrap();
        };
        let mut a = l.clone();
        let mut b = l.clone();
        walk(&mut a, &pages);
        walk(&mut b, &shuffled);
        prop_assert_eq!(&a, &b);
        // After the walk the confirmed holdings are exactly Apple's.
        let apple: HashSet<(AssetKey, Holder)> = pages
            .iter()
            .flatten()
            .map(|x| (x.asset.clone(), x.holder.clone()))
            .collect();
        let confirmed: HashSet<(AssetKey, Holder)> = a
            .holdings()
            .filter(|(_, _, s)| s.is_confirmed())
            .map(|(k, h, _)| (k.clone(), h.clone()))
            .collect();
        prop_assert_eq!(&confirmed, &apple);
        // Reservations in flight were kept.
        let reserved = |l: &Ledger| l.holdings()
            .filter(|(k, h, s)| *s == HoldingStatus::Reserved
                && !apple.contains(&((*k).clone(), (*h).clone())))
            .count();
        prop_assert_eq!(reserved(&a), reserved(&l));
    }

    #[test]
    fn count_notifications_commute(
        deltas in prop::collection::vec(-2..5i64, 1..6),
        seed in any::<u64>(),
    ) {
        let (base, _) = ledger_with(&[app(1, 5)]);
        let apply = |order: &[usize]| {
            let mut l = base.clone();
            for &i in order {
                let n = LedgerNotification::new(
                    nid(i as u32),
                    NotificationBody::AssetCount { asset: key(1), count_delta: deltas[i] },
                );
                let _ = l.apply_notification(&n, now());
            }
            l.asset_view(&key(1)).unwrap().owned
        };
        let forward: Vec<usize> = (0..deltas.len()).collect();
        let mut backward = forward.clone();
        backward.rotate_left((seed % deltas.len() as u64) as usize);
        // Deltas that never take the total below zero commute.
        let total: i64 = 5 + deltas.iter().sum::<i64>();
        let min_prefix = |order: &[usize]| {
            order.iter().scan(5i64, |t, &i| { *t += deltas[i]; Some(*t) }).min().unwrap()
        };
        if min_prefix(&forward) >= 0 && min_prefix(&backward) >= 0 {
            prop_assert_eq!(apply(&forward), apply(&backward));
            prop_assert_eq!(i64::from(apply(&forward)), total);
        }
    }
}

#[test]
fn the_operator_cause_is_kept() {
    let (mut l, _) = ledger_with(&[app(1, 1)]);
    let e = l
        .change_count(
            &key(1),
            1,
            AssetReason::Transferred,
            Cause::operator("ops", Some("moved from north".to_owned())),
            now(),
        )
        .unwrap()
        .unwrap();
    assert_eq!(e.cause.kind(), "operator");
}
