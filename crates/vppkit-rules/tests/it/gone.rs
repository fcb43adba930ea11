//! Holders gone from the directory (or retired there): only what vppkit gave them is taken
//! back. Adopted licences stay, and VPP users another MDM created are left alone.

use vppkit_core::{Holder, HoldingStatus, TokenState, VppUserStatus};
use vppkit_ledger::{Cause, Ledger};
use vppkit_rules::{
    BatchTargets, BlockReason, ChangeReason, Directory, GoneRelease, LedgerView, LicenceState,
    LicenceView, PlanContext, Planner, PolicySet, ReleaseRules,
};

use crate::fixture::*;

const ACTIVE: HoldingStatus = HoldingStatus::Active;
const RESERVED: HoldingStatus = HoldingStatus::Reserved;
const ADOPTED: HoldingStatus = HoldingStatus::Adopted;
const RELEASING: HoldingStatus = HoldingStatus::Releasing;

/// Location L1 with revocable apps 1..=3 and a book (4); `holder` holds app n+1 with
/// `statuses[n]`.
fn world(holder: &Holder, statuses: &[HoldingStatus]) -> World {
    let mut w = World::new().location("L1", vec![app(1, 9), app(2, 9), app(3, 9), book(4, 9)]);
    for (i, st) in statuses.iter().enumerate() {
        w.state
            .set_holding(&loc("L1"), &key(i as u64 + 1), holder.clone(), *st);
    }
    w
}

/// (revoked holders, disassociated (asset, holder), retired users) of L1.
type Actions = (Vec<Holder>, Vec<(u64, Holder)>, Vec<String>);

fn actions(w: &World) -> Actions {
    let plan = w.plan();
    let Some(lp) = plan.location(&loc("L1")) else {
        return (Vec::new(), Vec::new(), Vec::new());
    };
    let revoked = lp.revoke.iter().flat_map(|b| b.targets.holders()).collect();
    let dis = disassociations(&plan)
        .into_iter()
        .map(|(_, k, h)| (k.adam_id.to_string().parse().unwrap(), h))
        .collect();
    let retired = lp
        .retire_users
        .iter()
        .flat_map(|b| b.client_user_ids.iter().map(ToString::to_string))
        .collect();
    (revoked, dis, retired)
}

#[test]
fn gone_device_table() {
    let d = dev_holder("GONE1");
    // (statuses of apps 1, 2, 3, revoked?, disassociated apps)
    let table: &[(&[HoldingStatus], bool, &[u64])] = &[
        // Adopted only: nothing is released, the holdings stay for the ledger's orphans.
        (&[ADOPTED], false, &[]),
        (&[ADOPTED, ADOPTED], false, &[]),
        // Ours only: one revoke, as before.
        (&[ACTIVE], true, &[]),
        (&[ACTIVE, RESERVED], true, &[]),
        (&[ACTIVE, RELEASING], true, &[]),
        // Mixed: our licences one asset at a time, the adopted one kept.
        (&[ACTIVE, ADOPTED], false, &[1]),
        (&[ADOPTED, RESERVED, ACTIVE], false, &[2, 3]),
        // A release in flight and an adopted licence: nothing more to do.
        (&[RELEASING, ADOPTED], false, &[]),
    ];
    for (statuses, revoke, dis) in table {
        let w = world(&d, statuses);
        let (revoked, got_dis, retired) = actions(&w);
        let want_revoked = if *revoke { vec![d.clone()] } else { vec![] };
        assert_eq!(revoked, want_revoked, "{statuses:?}");
        let want_dis: Vec<(u64, Holder)> = dis.iter().map(|&a| (a, d.clone())).collect();
        assert_eq!(got_dis, want_dis, "{statuses:?}");
        assert!(retired.is_empty());
        // Keep means keep, whatever the statuses.
        let keep = w.release(ReleaseRules::default().with_on_device_removed(GoneRelease::Keep));
        assert!(keep.plan().is_empty(), "{statuses:?}");
    }
}

#[test]
fn adopted_only_gone_device_is_not_in_the_plan() {
    let w = world(&dev_holder("OTHER-MDM"), &[ADOPTED, ADOPTED]);
    let plan = w.plan();
    assert!(plan.is_empty());
    assert!(plan.blocked.is_empty(), "{:?}", plan.explain());
}

#[test]
fn mixed_gone_device_disassociates_ours_and_explains() {
    // Retired in the directory: the same as missing from it.
    let w =
        world(&dev_holder("D1"), &[ACTIVE, ADOPTED, RESERVED]).devices(vec![ios("D1").retired()]);
    let plan = w.plan();
    let lp = plan.location(&loc("L1")).unwrap();
    assert!(lp.revoke.is_empty());
    assert_eq!(lp.disassociate.len(), 1);
    let b = &lp.disassociate[0];
    assert_eq!(b.assets, vec![key(1), key(3)]);
    assert_eq!(b.targets, BatchTargets::SerialNumbers(vec![serial("D1")]));
    assert_eq!(b.reason, ChangeReason::DeviceRemoved);
    assert!(b.policies.is_empty());
    assert_eq!(plan.blocked.len(), 1);
    assert_eq!(plan.blocked[0].adam_id, adam(2));
    assert_eq!(
        plan.blocked[0].reason,
        BlockReason::AdoptedKept {
            location: loc("L1")
        }
    );
    let explain = plan.explain();
    assert_eq!(
        explain[0],
        "Disassociate 2 assets from 1 device in location L1, because the device is retired or gone from the directory."
    );
    assert!(
        explain[1].starts_with(
            "device:D1 is retired or gone from the directory but keeps its licence of 2 in location L1: vppkit did not assign it"
        ),
        "{}",
        explain[1]
    );
    assert!(explain[1].contains("instead of a revoke"));

    // Applied: only the adopted licence is left, and the next plan is empty.
    let mut w = w;
    w.state.apply(&plan);
    assert_eq!(w.state.holding_count(&loc("L1"), &key(1)), 0);
    assert_eq!(
        w.state.holding(&loc("L1"), &key(2), &dev_holder("D1")),
        Some(ADOPTED)
    );
    let again = w.plan();
    assert!(again.is_empty() && again.blocked.is_empty());
}

#[test]
fn mixed_gone_devices_share_disassociate_requests() {
    // 2,500 gone devices, each with app 1 ours and app 2 adopted, plus 150 gone with app 1
    // only: 3 disassociate requests (1,000 serials each) and 2 revokes (100 each).
    let mut w = World::new().location("L1", vec![app(1, 5000), app(2, 5000)]);
    for i in 0..2500 {
        let h = dev_holder(&format!("M{i:05}"));
        w.state.set_holding(&loc("L1"), &key(1), h.clone(), ACTIVE);
        w.state.set_holding(&loc("L1"), &key(2), h, ADOPTED);
    }
    for i in 0..150 {
        w = w.hold("L1", 1, dev_holder(&format!("R{i:05}")));
    }
    let plan = w.plan();
    let lp = plan.location(&loc("L1")).unwrap();
    assert_eq!(lp.disassociate.len(), 3);
    assert!(lp.disassociate.iter().all(|b| b.assets == vec![key(1)]));
    let BatchTargets::SerialNumbers(first) = &lp.disassociate[0].targets else {
        panic!("devices expected");
    };
    assert_eq!(first.len(), 1000);
    assert!(first.windows(2).all(|p| p[0] < p[1]));
    assert_eq!(first[0], serial("M00000"));
    assert_eq!(lp.revoke.len(), 2);
    assert_eq!(plan.blocked.len(), 2500);
}

#[test]
fn gone_user_table() {
    let u = user_holder("gone-user");
    // (own?, active VPP user?, statuses, revoked?, disassociated apps, retired?, blocked)
    type Row<'a> = (
        bool,
        bool,
        &'a [HoldingStatus],
        bool,
        &'a [u64],
        bool,
        usize,
    );
    let table: &[Row<'_>] = &[
        // Our user, missing from the directory: revoked and retired, as before.
        (true, true, &[ACTIVE], true, &[], true, 0),
        (true, true, &[], false, &[], true, 0),
        (true, false, &[ACTIVE], true, &[], false, 0),
        // Our user with an adopted licence: ours disassociated, not retired.
        (true, true, &[ACTIVE, ADOPTED], false, &[1], false, 1),
        (true, true, &[ADOPTED], false, &[], false, 1),
        (true, false, &[ADOPTED], false, &[], false, 0),
        // Another MDM's user: nothing, whatever it holds.
        (false, true, &[ACTIVE], false, &[], false, 0),
        (
            false,
            true,
            &[ACTIVE, ADOPTED, RESERVED],
            false,
            &[],
            false,
            0,
        ),
        (false, true, &[], false, &[], false, 0),
        (false, false, &[ADOPTED], false, &[], false, 0),
    ];
    for &(own, active, statuses, revoke, dis, retire, blocked) in table {
        let mut w = world(&u, statuses);
        if active {
            w = w.vpp_user("L1", "gone-user", VppUserStatus::Associated);
        }
        if !own {
            w.state.set_user_owned(&loc("L1"), &uid("gone-user"), false);
        }
        let row = format!("own {own} active {active} {statuses:?}");
        let (revoked, got_dis, retired) = actions(&w);
        assert_eq!(revoked.is_empty(), !revoke, "{row}");
        let want_dis: Vec<(u64, Holder)> = dis.iter().map(|&a| (a, u.clone())).collect();
        assert_eq!(got_dis, want_dis, "{row}");
        assert_eq!(!retired.is_empty(), retire, "{row}");
        let plan = w.plan();
        assert_eq!(plan.blocked.len(), blocked, "{row}: {:?}", plan.explain());
        if dis.is_empty() && !revoke && !retire {
            assert!(plan.is_empty(), "{row}");
        }
        // The same in the directory as a retired user.
        let w = w.users(vec![user("gone-user").retired()]);
        let (revoked2, dis2, retired2) = actions(&w);
        assert_eq!(
            (revoked2, dis2, retired2.is_empty()),
            (revoked, got_dis, !retire),
            "{row}"
        );
    }
}

#[test]
fn foreign_user_missing_from_the_directory_is_left_alone_beside_ours() {
    let w = World::new()
        .location("L1", vec![app(1, 9)])
        .hold("L1", 1, user_holder("ours"))
        .hold("L1", 1, user_holder("theirs"))
        .vpp_user("L1", "ours", VppUserStatus::Associated)
        .vpp_user("L1", "theirs", VppUserStatus::Associated);
    let mut w = w;
    w.state.set_user_owned(&loc("L1"), &uid("theirs"), false);
    let plan = w.plan();
    let lp = plan.location(&loc("L1")).unwrap();
    assert_eq!(lp.revoke.len(), 1);
    assert_eq!(
        lp.revoke[0].targets,
        BatchTargets::ClientUserIds(vec![uid("ours")])
    );
    assert_eq!(lp.retire_users.len(), 1);
    assert_eq!(lp.retire_users[0].client_user_ids, vec![uid("ours")]);
    assert!(lp.disassociate.is_empty());
    // Applied, and planned again: the foreign user still holds its licence.
    w.state.apply(&plan);
    assert_eq!(
        w.state.holding(&loc("L1"), &key(1), &user_holder("theirs")),
        Some(ACTIVE)
    );
    assert!(w.plan().is_empty());
}

#[test]
fn own_user_marks_default_survive_snapshots_and_json() {
    let mut s = LicenceState::new();
    s.add_location(loc("L1"), TokenState::Valid);
    s.add_asset(&loc("L1"), app(1, 3), None);
    s.set_user(
        &loc("L1"),
        vppkit_core::VppUser::new(uid("a"), VppUserStatus::Associated),
    );
    s.set_user(
        &loc("L1"),
        vppkit_core::VppUser::new(uid("b"), VppUserStatus::Registered),
    );
    // Default: every user is ours, even one the state never heard of.
    assert!(s.is_own_user(&loc("L1"), &uid("a")));
    assert!(s.is_own_user(&loc("nowhere"), &uid("x")));
    s.set_user_owned(&loc("L1"), &uid("b"), false);
    // A foreign holder only listed in assignments.
    s.set_holding(&loc("L1"), &key(1), user_holder("c"), ADOPTED);
    s.set_user_owned(&loc("L1"), &uid("c"), false);
    assert!(!s.is_own_user(&loc("L1"), &uid("b")));

    let copy = LicenceState::from_view(&s);
    assert_eq!(copy, s);

    // JSON (users only: holdings are keyed by non-string values).
    let mut users_only = LicenceState::new();
    users_only.set_user(
        &loc("L1"),
        vppkit_core::VppUser::new(uid("b"), VppUserStatus::Registered),
    );
    users_only.set_user_owned(&loc("L1"), &uid("b"), false);
    let json = serde_json::to_string(&users_only).unwrap();
    assert!(json.contains("\"foreignUsers\":[\"b\"]"), "{json}");
    let back: LicenceState = serde_json::from_str(&json).unwrap();
    assert_eq!(back, users_only);
    assert!(!back.is_own_user(&loc("L1"), &uid("b")));
    // A state written before the mark existed reads as "all ours", and an all-ours state
    // writes no mark.
    users_only.set_user_owned(&loc("L1"), &uid("b"), true);
    let json = serde_json::to_string(&users_only).unwrap();
    assert!(!json.contains("foreignUsers"), "{json}");
    let back: LicenceState = serde_json::from_str(&json).unwrap();
    assert!(back.is_own_user(&loc("L1"), &uid("b")));
}

#[test]
fn ledger_view_knows_own_users_when_told() {
    let mut l = Ledger::new(loc("L1"));
    l.upsert_asset(app(1, 5), Cause::sync(None), now());
    for id in ["ours", "theirs"] {
        l.upsert_user(
            vppkit_core::VppUser::new(uid(id), VppUserStatus::Associated),
            Cause::sync(None),
            now(),
        );
    }
    let dir = Directory::default();
    let set = PolicySet::new(ReleaseRules::default(), vec![]).unwrap();
    let retired = |view: &dyn LicenceView| {
        let plan = Planner::new()
            .plan(&dir, &set, view, &PlanContext::new(now()))
            .unwrap();
        plan.locations
            .iter()
            .flat_map(|lp| lp.retire_users.iter())
            .flat_map(|b| b.client_user_ids.iter().map(ToString::to_string))
            .collect::<Vec<_>>()
    };
    // Without the list, every user is ours (the documented default).
    let all = LedgerView::new().with_location(&l, TokenState::Valid);
    assert_eq!(retired(&all), vec!["ours", "theirs"]);
    let told = LedgerView::new()
        .with_location(&l, TokenState::Valid)
        .with_own_users(loc("L1"), [uid("ours")]);
    assert!(told.is_own_user(&loc("L1"), &uid("ours")));
    assert!(!told.is_own_user(&loc("L1"), &uid("theirs")));
    assert_eq!(retired(&told), vec!["ours"]);
    // And the snapshot keeps the marks.
    let snap = LicenceState::from_view(&told);
    assert!(!snap.is_own_user(&loc("L1"), &uid("theirs")));
    assert_eq!(retired(&snap), vec!["ours"]);
}

#[test]
fn a_created_user_is_ours() {
    // A user marked foreign and then created by a plan of ours (same id re-registered)
    // counts as ours once the plan is applied.
    let mut s = LicenceState::new();
    s.add_location(loc("L1"), TokenState::Valid);
    s.set_user_owned(&loc("L1"), &uid("u1"), false);
    s.add_asset(&loc("L1"), user_only_app(1, 3), None);
    let w = World {
        state: s,
        ..World::new()
    }
    .users(vec![user("u1")])
    .groups(vec![group("g", &["u1"], &[])])
    .devices(vec![ios("D1").with_user(uid("u1"))])
    .policy(policy(
        "p",
        1,
        to_group("g"),
        vppkit_rules::Intent::Required,
        vppkit_rules::LicenceType::User,
    ));
    let plan = w.plan();
    assert_eq!(plan.locations[0].create_users.len(), 1);
    let mut state = w.state;
    state.apply(&plan);
    assert!(state.is_own_user(&loc("L1"), &uid("u1")));
}
