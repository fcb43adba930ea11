//! Planning against `vppkit-ledger` ledgers through `LedgerView`.

use vppkit_core::{Platform, TokenState, VppUser, VppUserStatus};
use vppkit_ledger::{Cause, Ledger};
use vppkit_rules::{
    Directory, Intent, LedgerView, LicenceType, LicenceView, PlanContext, Planner, PolicySet,
    ReleaseRules,
};

use crate::fixture::*;

#[test]
fn ledger_view_feeds_the_planner() {
    let mut a = Ledger::new(loc("A"));
    let mut b = Ledger::new(loc("B"));
    a.upsert_asset(app(1, 3), Cause::sync(None), now());
    b.upsert_asset(app(1, 2), Cause::sync(None), now());
    // A: one licence reserved in flight (D1), so 2 free; B: 2 free.
    a.reserve(&key(1), &dev_holder("D1"), Cause::policy("p"), now())
        .unwrap();
    a.upsert_user(
        VppUser::new(uid("u1"), VppUserStatus::Associated),
        Cause::sync(None),
        now(),
    );
    let view = LedgerView::new()
        .with_location(&a, TokenState::Valid)
        .with_location(&b, TokenState::Valid)
        .with_asset_details(key(1), vec![Platform::Ios], Some("com.example.one".into()));
    assert_eq!(view.locations().len(), 2);
    let assets = view.assets(&loc("A"));
    assert_eq!(assets[0].free, 2);
    assert_eq!(assets[0].bundle_id.as_deref(), Some("com.example.one"));
    assert_eq!(view.holdings(&loc("A"), &key(1)).len(), 1);
    assert_eq!(view.users(&loc("A")).len(), 1);

    // Five devices want app 1: D1 keeps its reservation in A, four new ones get A's 2 then
    // B's 2 (most free first, ties by location id).
    let serials = ["D1", "D2", "D3", "D4", "D5", "D6"];
    let dir = Directory::new(
        vec![],
        serials.iter().map(|s| ios(s)).collect(),
        vec![group("cart", &[], &serials)],
    )
    .unwrap();
    let set = PolicySet::new(
        ReleaseRules::default(),
        vec![policy(
            "p",
            1,
            to_group("cart"),
            Intent::Required,
            LicenceType::Device,
        )],
    )
    .unwrap();
    let plan = Planner::new()
        .plan(&dir, &set, &view, &PlanContext::new(now()))
        .unwrap();
    let got: Vec<(String, String)> = associations(&plan)
        .into_iter()
        .map(|(l, _, h)| (l, h.to_string()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("A".into(), "device:D2".into()),
            ("A".into(), "device:D4".into()),
            ("B".into(), "device:D3".into()),
            ("B".into(), "device:D5".into()),
        ]
    );
    assert_eq!(plan.waitlisted.len(), 1);
    assert_eq!(plan.waitlisted[0].holder, dev_holder("D6"));
}
