//! Read views.

use std::collections::HashSet;

use vppkit_core::{Holder, HoldingStatus, LocationId, VppUserStatus};
use vppkit_ledger::{across_locations, Ledger, Threshold};

use crate::support::*;

#[test]
fn asset_view_accounts_every_status() {
    let (mut l, _) = ledger_with(&[app(1, 10)]);
    let mut asset = app(1, 10);
    asset.counts = vppkit_core::AssetCounts::new(10, 0, 8, 2);
    l.upsert_asset(asset, sync(), now());
    for d in 1..=4 {
        l.reserve(&key(1), &device(d), policy(), now()).unwrap();
    }
    l.confirm(&key(1), &device(2), policy(), now()).unwrap();
    l.confirm(&key(1), &device(3), policy(), now()).unwrap();
    l.release(&key(1), &device(3), policy(), now()).unwrap();
    l.adopt(&key(1), &device(5), sync(), now()).unwrap();
    let v = l.asset_view(&key(1)).unwrap();
    assert_eq!((v.owned, v.retired, v.holdable), (10, 2, 8));
    assert_eq!((v.reserved, v.active, v.releasing, v.adopted), (2, 1, 1, 1));
    assert_eq!(v.used, 3);
    assert_eq!(v.free, 3);
    assert_eq!(v.over_committed, 0);
    assert!((v.used_ratio() - 5.0 / 8.0).abs() < 1e-9);
    assert_eq!(l.asset_views(), vec![v]);
    assert_eq!(l.asset(&key(1)).unwrap().counts.retired, 2);
    assert!(l.asset(&key(2)).is_none());
    let holders: Vec<_> = l.holders_of(&key(1)).into_iter().map(|(h, _)| h).collect();
    assert_eq!(holders.len(), 5);
    assert!(l.holders_of(&key(9)).is_empty());
}

#[test]
fn holder_view() {
    let (mut l, _) = ledger_with(&[user_app(1, 10), book(2, 10), app(3, 1)]);
    l.upsert_user(vpp_user(1, VppUserStatus::Associated), sync(), now());
    l.reserve(&key(2), &user(1), policy(), now()).unwrap();
    l.adopt(&key(1), &user(1), sync(), now()).unwrap();
    let v = l.holder_view(&user(1));
    assert_eq!(v.user.unwrap().status, VppUserStatus::Associated);
    let got: Vec<_> = v
        .holdings
        .iter()
        .map(|h| (h.asset.clone(), h.status))
        .collect();
    assert_eq!(
        got,
        [
            (key(1), HoldingStatus::Adopted),
            (key(2), HoldingStatus::Reserved)
        ]
    );
    let nobody = l.holder_view(&device(5));
    assert!(nobody.holdings.is_empty() && nobody.user.is_none());
}

#[test]
fn low_availability_thresholds() {
    let (mut l, _) = ledger_with(&[app(1, 10), app(2, 10), app(3, 10), free_app(4), app(5, 0)]);
    for d in 0..5 {
        l.reserve(&key(1), &device(d), policy(), now()).unwrap(); // 50% used
    }
    for d in 0..9 {
        l.reserve(&key(2), &device(d), policy(), now()).unwrap(); // 10% free
    }
    for d in 0..100 {
        l.reserve(&key(4), &device(d), policy(), now()).unwrap(); // unlimited
    }
    let intune = l.low_availability(&[Threshold::UsedAtLeast(50)]);
    let keys: Vec<_> = intune.iter().map(|a| a.view.key.clone()).collect();
    // App 5 owns nothing: fully used, never free.
    assert_eq!(keys, [key(1), key(2), key(5)]);
    let zentral = l.low_availability(&[Threshold::FreeAtMost(20), Threshold::FreeAtMost(10)]);
    let got: Vec<_> = zentral
        .iter()
        .map(|a| (a.view.key.clone(), a.breached.clone()))
        .collect();
    assert_eq!(
        got,
        [
            (
                key(2),
                vec![Threshold::FreeAtMost(20), Threshold::FreeAtMost(10)]
            ),
            (
                key(5),
                vec![Threshold::FreeAtMost(20), Threshold::FreeAtMost(10)]
            ),
        ]
    );
    assert!((zentral[0].used_ratio - 0.9).abs() < 1e-9);
}

#[test]
fn untracked_and_orphans() {
    let (mut l, _) = ledger_with(&[app(1, 10)]);
    l.reserve(&key(1), &device(1), policy(), now()).unwrap();
    l.confirm(&key(1), &device(1), policy(), now()).unwrap();
    l.adopt(&key(1), &device(2), sync(), now()).unwrap();
    l.reserve(&key(1), &device(3), policy(), now()).unwrap();
    let untracked: Vec<Holder> = l.untracked().into_iter().map(|h| h.holder).collect();
    assert_eq!(untracked, [device(2)]);
    // The MDM deleted device 1 and device 3.
    let known: HashSet<Holder> = [device(2)].into_iter().collect();
    let orphans: Vec<Holder> = l
        .orphans(&|h| known.contains(h))
        .into_iter()
        .map(|h| h.holder)
        .collect();
    assert_eq!(orphans, [device(1), device(3)]);
    assert!(l.orphans(&|_| true).is_empty());
}

#[test]
fn one_app_across_tokens() {
    let views = |name: &str, total: u32, held: u32| {
        let mut l = Ledger::new(LocationId::new(name).unwrap());
        l.reconcile_assets(&[app(1, total), app(2, 3)], sync(), now());
        for d in 0..held {
            l.reserve(&key(1), &device(d), policy(), now()).unwrap();
        }
        (l.location().clone(), l.asset_views())
    };
    let mut free = Ledger::new(LocationId::new("c").unwrap());
    free.reconcile_assets(&[free_app(1)], sync(), now());
    let all = vec![
        views("a", 10, 4),
        views("b", 5, 5),
        (free.location().clone(), free.asset_views()),
    ];
    let across = across_locations(&all);
    assert_eq!(across.len(), 2);
    let app1 = &across[0];
    assert_eq!(app1.key, key(1));
    let names: Vec<_> = app1.locations.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!(app1.sum.owned, 15);
    assert_eq!(app1.sum.reserved, 9);
    assert_eq!(app1.sum.free, 6);
    assert!(app1.sum.unlimited);
    // A location given twice is shown once.
    let twice = vec![all[0].clone(), all[0].clone()];
    assert_eq!(across_locations(&twice)[0].locations.len(), 1);
    assert_eq!(across_locations(&twice)[0].sum.owned, 10);
}
