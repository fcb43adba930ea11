//! `PlanSession` plans again only what a change can affect, and returns the full plan.

use vppkit_core::VppUserStatus;
use vppkit_rules::{
    DirectoryUser, Intent, LicenceType, LicenceView, Plan, PlanSession, Planner, Target,
};

use crate::fixture::*;

fn world() -> World {
    World::new()
        .location("L1", vec![app(1, 1), user_only_app(2, 10), app(3, 10)])
        .users(vec![
            DirectoryUser::new(uid("alice")).with_email("alice@example.org"),
            user("bob"),
        ])
        .devices(vec![
            ios("D1").with_user(uid("alice")),
            ios("D2").with_user(uid("bob")),
            ios("D3"),
        ])
        .groups(vec![
            group("staff", &["alice", "bob"], &[]),
            group("carts", &[], &["D3"]),
        ])
        .policy(policy(
            "p1",
            1,
            Target::AllDevices,
            Intent::Required,
            LicenceType::Device,
        ))
        .policy(policy(
            "p2",
            2,
            to_group("staff"),
            Intent::Required,
            LicenceType::User,
        ))
        .policy(policy(
            "p3",
            3,
            to_group("carts"),
            Intent::Required,
            LicenceType::Device,
        ))
        .vpp_user("L1", "alice", VppUserStatus::Registered)
}

fn session_plan(s: &mut PlanSession, w: &World) -> Plan {
    let plan = s
        .plan(&w.directory(), &w.policy_set(), &w.state, &w.ctx)
        .unwrap();
    assert_eq!(plan, w.plan(), "the session's plan is the full plan");
    plan
}

#[test]
fn each_change_replans_only_the_apps_it_can_affect() {
    let mut s = PlanSession::new(Planner::new());
    let w = world();
    session_plan(&mut s, &w);
    assert!(s.last().full);
    assert_eq!((s.last().apps, s.last().replanned), (3, 3));

    session_plan(&mut s, &w);
    assert_eq!((s.last().full, s.last().replanned), (false, 0));

    // A purchase of the scarce app: that app only.
    let mut w = w;
    w.state.add_asset(&loc("L1"), app(1, 5), None);
    let plan = session_plan(&mut s, &w);
    assert_eq!(s.last().replanned, 1);
    assert!(plan.waitlisted.is_empty());

    // Alice accepts her invitation: the user-licensed app only, not the device-licensed
    // app that reaches every device (hers included).
    let mut w = w.vpp_user("L1", "alice", VppUserStatus::Associated);
    session_plan(&mut s, &w);
    assert_eq!(s.last().replanned, 1);

    // D2 joins the carts group: the app of the policy naming the group only.
    w.groups[1] = group("carts", &[], &["D2", "D3"]);
    session_plan(&mut s, &w);
    assert_eq!(s.last().replanned, 1);

    // A policy edited: its app only.
    w.policies[2] = w.policies[2].clone().with_priority(3);
    session_plan(&mut s, &w);
    assert_eq!(s.last().replanned, 1);

    // A device added: positions move, everything is planned.
    w.devices.push(ios("D4"));
    session_plan(&mut s, &w);
    assert!(s.last().full);
    assert_eq!(s.last().replanned, 3);
}

/// A holding that moves from one holder to another keeps every count the same: only the
/// holdings version tells the session, which must plan that app again (and only it).
#[test]
fn a_holding_moved_between_holders_is_planned_again() {
    let mut s = PlanSession::new(Planner::new());
    let mut w = world();
    let key = app(3, 10).key;
    w.state.set_holding(
        &loc("L1"),
        &key,
        dev_holder("D9"),
        vppkit_core::HoldingStatus::Active,
    );
    session_plan(&mut s, &w);
    let before = w.state.holdings_version(&loc("L1"), &key);
    let other = w.state.holdings_version(&loc("L1"), &app(1, 1).key);
    w.state.remove_holding(&loc("L1"), &key, &dev_holder("D9"));
    w.state.set_holding(
        &loc("L1"),
        &key,
        dev_holder("D3"),
        vppkit_core::HoldingStatus::Active,
    );
    assert_ne!(w.state.holdings_version(&loc("L1"), &key), before);
    assert_eq!(w.state.holdings_version(&loc("L1"), &app(1, 1).key), other);
    session_plan(&mut s, &w);
    assert_eq!((s.last().full, s.last().replanned), (false, 1));
    // A status change alone is a new version too.
    let before = w.state.holdings_version(&loc("L1"), &key);
    w.state.set_holding(
        &loc("L1"),
        &key,
        dev_holder("D3"),
        vppkit_core::HoldingStatus::Reserved,
    );
    assert_ne!(w.state.holdings_version(&loc("L1"), &key), before);
    session_plan(&mut s, &w);
    // The same holdings again under a new version: read, compared, found equal.
    w.state.set_holding(
        &loc("L1"),
        &key,
        dev_holder("D3"),
        vppkit_core::HoldingStatus::Reserved,
    );
    session_plan(&mut s, &w);
    assert_eq!(s.last().replanned, 0);
}

/// A user retired in the directory who holds a licence is watched as a gone holder from
/// then on, also while the session is given clones of that same directory: a later change
/// of who created the user (ours or another MDM's) plans that licence again.
#[test]
fn a_user_retired_in_the_directory_stays_watched_while_the_directory_is_the_same() {
    let mut s = PlanSession::new(Planner::new());
    let mut w = world().hold("L1", 2, user_holder("bob"));
    let plan_with = |s: &mut PlanSession, w: &World, dir: &vppkit_rules::Directory| {
        let plan = s.plan(dir, &w.policy_set(), &w.state, &w.ctx).unwrap();
        assert_eq!(plan, w.plan(), "the session's plan is the full plan");
        plan
    };
    let dir = w.directory();
    plan_with(&mut s, &w, &dir);
    let bob_revoked = |plan: &Plan| {
        plan.locations.iter().flat_map(|l| &l.revoke).any(|r| {
            matches!(&r.targets, vppkit_rules::BatchTargets::ClientUserIds(ids) if ids.contains(&uid("bob")))
        })
    };
    // Bob is retired in the directory: his licences go back (he is ours).
    w.users[1] = user("bob").retired();
    let retired = w.directory();
    let plan = plan_with(&mut s, &w, &retired);
    assert!(bob_revoked(&plan), "{plan:?}");
    // The same directory again: Bob turns out to be another MDM's user, and his
    // licence is left alone.
    w.state.set_user_owned(&loc("L1"), &uid("bob"), false);
    let plan = plan_with(&mut s, &w, &retired);
    assert!(!s.last().full);
    assert!(!bob_revoked(&plan), "{plan:?}");
}

/// Directories equal but for the order of their groups: a session given one, then the
/// other, then the first again (with a change that plans a group's app again) reaches
/// each group's members, whatever order it saw them in before.
#[test]
fn groups_listed_in_another_order_reach_the_same_members() {
    let mut s = PlanSession::new(Planner::new());
    let mut w = world();
    let plan_with = |s: &mut PlanSession, w: &World, dir: &vppkit_rules::Directory| {
        let plan = s.plan(dir, &w.policy_set(), &w.state, &w.ctx).unwrap();
        let full = Planner::new()
            .plan(dir, &w.policy_set(), &w.state, &w.ctx)
            .unwrap();
        assert_eq!(plan, full, "the session's plan is the full plan");
    };
    let first = w.directory();
    plan_with(&mut s, &w, &first);
    w.groups.reverse();
    let reordered = w.directory();
    plan_with(&mut s, &w, &reordered);
    w.groups.reverse();
    // A holding of the carts group's app moves: that app is planned again.
    w.state.set_holding(
        &loc("L1"),
        &app(3, 10).key,
        dev_holder("D9"),
        vppkit_core::HoldingStatus::Active,
    );
    plan_with(&mut s, &w, &first);
    assert!(!s.last().full);
    assert!(s.last().replanned >= 1);
}
