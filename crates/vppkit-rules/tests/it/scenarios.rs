//! Scarcity, routing, self-service, users, release rules, batching.

use chrono::Duration;
use vppkit_core::{HoldingStatus, VppUserStatus};
use vppkit_rules::{
    BatchTargets, BlockReason, ChangeReason, DirectoryUser, GoneRelease, InstallRequest, Intent,
    LicenceType, Limits, Planner, Precondition, ReleaseRules, ScopeRelease, Target,
    UninstallRelease,
};

use crate::fixture::*;

fn cart(n: usize) -> World {
    let serials: Vec<String> = (1..=n).map(|i| format!("D{i:02}")).collect();
    let refs: Vec<&str> = serials.iter().map(String::as_str).collect();
    World::new()
        .devices(serials.iter().map(|s| ios(s)).collect())
        .groups(vec![group("cart", &[], &refs)])
}

#[test]
fn last_licences_go_in_a_deterministic_order_and_the_rest_wait() {
    let w = cart(4).location("L1", vec![app(1, 2)]).policy(policy(
        "p",
        1,
        to_group("cart"),
        Intent::Required,
        LicenceType::Device,
    ));
    let plan = w.plan();
    assert_eq!(
        associations(&plan),
        vec![
            ("L1".into(), key(1), dev_holder("D01")),
            ("L1".into(), key(1), dev_holder("D02")),
        ]
    );
    let waiting: Vec<_> = plan
        .waitlisted
        .iter()
        .map(|x| (x.holder.clone(), x.position))
        .collect();
    assert_eq!(
        waiting,
        vec![(dev_holder("D03"), 1), (dev_holder("D04"), 2)]
    );
    assert_eq!(
        plan.waitlisted[0].explain(),
        "device:D03 is required to have it by policy p but no licence of 1 is free; it is number 1 in line for the next one."
    );
}

#[test]
fn required_before_available_then_priority() {
    // u1..u3 with one device each; app 1 has 2 licences.
    let w = World::new()
        .location("L1", vec![app(1, 2)])
        .users(vec![user("u1"), user("u2"), user("u3")])
        .devices(vec![
            ios("A1").with_user(uid("u1")),
            ios("A2").with_user(uid("u2")),
            ios("A3").with_user(uid("u3")),
        ])
        .groups(vec![
            group("g1", &["u1"], &[]),
            group("g23", &["u2", "u3"], &[]),
        ])
        .vpp_user("L1", "u1", VppUserStatus::Associated)
        .vpp_user("L1", "u2", VppUserStatus::Associated)
        .vpp_user("L1", "u3", VppUserStatus::Associated)
        // u1 only asked (Available); u2 and u3 are Required.
        .policy(policy(
            "avail",
            1,
            to_group("g1"),
            Intent::Available,
            LicenceType::User,
        ))
        .policy(policy(
            "req",
            1,
            to_group("g23"),
            Intent::Required,
            LicenceType::User,
        ));
    let mut w = w;
    w.ctx.requests = vec![InstallRequest::new(serial("A1"), adam(1))];
    let plan = w.plan();
    let got: Vec<_> = associations(&plan).into_iter().map(|x| x.2).collect();
    assert_eq!(got, vec![user_holder("u2"), user_holder("u3")]);
    assert_eq!(plan.waitlisted.len(), 1);
    assert_eq!(plan.waitlisted[0].holder, user_holder("u1"));
    assert_eq!(plan.waitlisted[0].intent, Intent::Available);

    // With priority, u1's request would still come after Required holders.
    let mut w2 = w;
    w2.policies[0] = w2.policies[0].clone().with_priority(100);
    assert_eq!(w2.plan().waitlisted[0].holder, user_holder("u1"));
}

#[test]
fn available_requests_first_come_first_served() {
    let mut w = World::new()
        .location("L1", vec![app(1, 1)])
        .users(vec![user("u1"), user("u2")])
        .devices(vec![
            ios("A1").with_user(uid("u1")),
            ios("A2").with_user(uid("u2")),
        ])
        .groups(vec![group("all", &["u1", "u2"], &[])])
        .policy(policy(
            "p",
            1,
            to_group("all"),
            Intent::Available,
            LicenceType::Device,
        ));
    w.ctx.requests = vec![
        InstallRequest::new(serial("A2"), adam(1)),
        InstallRequest::new(serial("A1"), adam(1)),
        InstallRequest::new(serial("ZZ"), adam(1)),
    ];
    let plan = w.plan();
    assert_eq!(associations(&plan)[0].2, dev_holder("A2"));
    assert_eq!(plan.waitlisted[0].holder, dev_holder("A1"));
    assert_eq!(
        plan.blocked[0].reason,
        BlockReason::UnknownDevice {
            device: serial("ZZ")
        }
    );
    // The install waits for Apple's confirmation.
    assert!(matches!(
        plan.commands[0].after,
        Precondition::Associated { .. }
    ));
}

#[test]
fn routing_most_free_then_existing_then_pin() {
    let base = || {
        cart(1)
            .location("L1", vec![app(1, 5)])
            .location("L2", vec![app(1, 10)])
    };
    let p = || {
        policy(
            "p",
            1,
            to_group("cart"),
            Intent::Required,
            LicenceType::Device,
        )
    };
    // Most free.
    let plan = base().policy(p()).plan();
    assert_eq!(associations(&plan)[0].0, "L2");
    // Pinned.
    let plan = base().policy(p().with_location(loc("L1"))).plan();
    assert_eq!(associations(&plan)[0].0, "L1");
    // Already held in L1: stays there, nothing to do.
    let plan = base().hold("L1", 1, dev_holder("D01")).policy(p()).plan();
    assert!(plan.is_empty(), "{:?}", plan.explain());
    // Ties go to the smaller location id.
    let plan = cart(1)
        .location("L2", vec![app(1, 3)])
        .location("L1", vec![app(1, 3)])
        .policy(p())
        .plan();
    assert_eq!(associations(&plan)[0].0, "L1");
}

#[test]
fn users_are_created_and_invited() {
    let w = World::new()
        .location("L1", vec![app(1, 10)])
        .users(vec![
            user("m1"),
            DirectoryUser::new(uid("e1")).with_email("e1@example.org"),
        ])
        .devices(vec![
            ios("M1").with_user(uid("m1")),
            ios("E1").with_user(uid("e1")),
        ])
        .groups(vec![group("g", &["m1", "e1"], &[])])
        .policy(policy(
            "p",
            1,
            to_group("g"),
            Intent::Required,
            LicenceType::User,
        ));
    let plan = w.plan();
    let lp = plan.location(&loc("L1")).unwrap();
    assert_eq!(lp.create_users.len(), 1);
    assert_eq!(lp.create_users[0].users.len(), 2);
    // Managed Apple Account: associated in this plan. Email: invitation, licence later.
    assert_eq!(
        associations(&plan),
        vec![("L1".into(), key(1), user_holder("m1"))]
    );
    assert_eq!(lp.invitations.len(), 1);
    assert_eq!(lp.invitations[0].client_user_id, uid("e1"));
    assert_eq!(lp.invitations[0].devices, vec![serial("E1")]);
    assert_eq!(
        plan.blocked[0].reason,
        BlockReason::AwaitingInvitation {
            location: loc("L1")
        }
    );
    // After the user accepts, the licence is taken.
    let mut w2 = w;
    w2.state.apply(&plan);
    w2 = w2.vpp_user("L1", "e1", VppUserStatus::Associated);
    let plan2 = w2.plan();
    assert_eq!(
        associations(&plan2),
        vec![("L1".into(), key(1), user_holder("e1"))]
    );
}

#[test]
fn uninstall_release_timing() {
    let base = |installed: Option<bool>, rule: UninstallRelease| {
        let d = ios("D01");
        let d = match installed {
            Some(true) => d.with_installed([adam(1)]),
            Some(false) => d.with_installed([]),
            None => d,
        };
        World::new()
            .location("L1", vec![app(1, 5)])
            .devices(vec![d])
            .groups(vec![group("cart", &[], &["D01"])])
            .hold("L1", 1, dev_holder("D01"))
            .release(ReleaseRules::default().with_on_uninstall(rule))
            .policy(policy(
                "p",
                1,
                to_group("cart"),
                Intent::Uninstall,
                LicenceType::Device,
            ))
    };
    use UninstallRelease::*;
    // (installed, rule) -> (remove command sent, licence released)
    let rows = [
        (Some(true), AfterRemoval, true, false),
        (Some(false), AfterRemoval, false, true),
        (None, AfterRemoval, true, true),
        (Some(true), WithRemoval, true, true),
        (Some(true), Never, true, false),
        (None, Never, false, false),
    ];
    for (installed, rule, remove, release) in rows {
        let plan = base(installed, rule).plan();
        let cmds = commands(&plan);
        assert_eq!(!cmds.is_empty(), remove, "{installed:?} {rule:?}");
        assert_eq!(
            !disassociations(&plan).is_empty(),
            release,
            "{installed:?} {rule:?}"
        );
        if release {
            assert_eq!(
                plan.locations[0].disassociate[0].reason,
                ChangeReason::Uninstall
            );
        }
    }
    // Inventory unknown and the licence kept: reported, nothing sent.
    let plan = base(None, Never).plan();
    assert_eq!(
        plan.blocked[0].reason,
        BlockReason::InventoryUnknown {
            device: serial("D01")
        }
    );
}

#[test]
fn books_are_never_released() {
    let w = World::new()
        .location("L1", vec![book(3, 5)])
        .users(vec![user("u1")])
        .devices(vec![ios("D1")
            .with_user(uid("u1"))
            .with_installed([adam(3)])])
        .groups(vec![group("g", &["u1"], &[])])
        .hold("L1", 3, user_holder("u1"))
        .release(ReleaseRules::default().with_on_uninstall(UninstallRelease::WithRemoval))
        .policy(policy(
            "p",
            3,
            to_group("g"),
            Intent::Uninstall,
            LicenceType::User,
        ));
    let plan = w.plan();
    assert_eq!(commands(&plan), vec![("D1".into(), "RemoveMedia")]);
    assert!(disassociations(&plan).is_empty());
    assert_eq!(
        plan.blocked[0].reason,
        BlockReason::NotRevocable {
            location: loc("L1")
        }
    );
}

#[test]
fn out_of_scope_keep_release_grace() {
    let base = |rule: ScopeRelease| {
        cart(1)
            .location("L1", vec![app(1, 5)])
            .hold("L1", 1, dev_holder("D01"))
            .release(ReleaseRules::default().with_on_out_of_scope(rule))
    };
    assert!(base(ScopeRelease::Keep).plan().is_empty());
    let plan = base(ScopeRelease::Release).plan();
    assert_eq!(
        disassociations(&plan),
        vec![("L1".into(), key(1), dev_holder("D01"))]
    );
    assert_eq!(
        plan.locations[0].disassociate[0].reason,
        ChangeReason::OutOfScope
    );

    let w = base(ScopeRelease::ReleaseAfterDays(7));
    let plan = w.plan();
    assert!(plan.is_empty());
    assert_eq!(plan.pending_releases.len(), 1);
    assert_eq!(
        plan.pending_releases[0].release_at,
        now() + Duration::days(7)
    );
    // Eight days later, with the history handed back: released.
    let mut later = w.clone();
    later.ctx = later.ctx.clone().with_pending(&plan.pending_releases);
    later.ctx.now = now() + Duration::days(8);
    let plan = later.plan();
    assert_eq!(
        plan.locations[0].disassociate[0].reason,
        ChangeReason::GraceExpired
    );
    // Back in scope before the end: kept, nothing pending.
    let back = w.policy(policy(
        "p",
        1,
        Target::AllDevices,
        Intent::Required,
        LicenceType::Device,
    ));
    let plan = back.plan();
    assert!(plan.is_empty() && plan.pending_releases.is_empty());
}

#[test]
fn gone_devices_and_users_are_revoked_and_retired() {
    let w = World::new()
        .location("L1", vec![app(1, 5), app(2, 5)])
        .users(vec![user("u1").retired()])
        .devices(vec![ios("D1").retired()])
        .hold("L1", 1, dev_holder("D1"))
        .hold("L1", 2, dev_holder("D1"))
        .hold("L1", 1, dev_holder("GONE"))
        .hold("L1", 1, user_holder("u1"))
        .vpp_user("L1", "u1", VppUserStatus::Associated)
        .vpp_user("L1", "stranger", VppUserStatus::Registered);
    let plan = w.plan();
    let lp = &plan.locations[0];
    assert_eq!(lp.revoke.len(), 2);
    assert_eq!(
        lp.revoke[0].targets,
        BatchTargets::SerialNumbers(vec![serial("D1"), serial("GONE")])
    );
    assert_eq!(
        lp.revoke[1].targets,
        BatchTargets::ClientUserIds(vec![uid("u1")])
    );
    assert_eq!(
        lp.retire_users[0].client_user_ids,
        vec![uid("stranger"), uid("u1")]
    );
    assert!(lp.disassociate.is_empty());

    let keep = w.release(
        ReleaseRules::default()
            .with_on_device_removed(GoneRelease::Keep)
            .with_on_user_retired(GoneRelease::Keep),
    );
    assert!(keep.plan().is_empty());
}

#[test]
fn releasing_holdings_are_left_alone() {
    let mut w = cart(1).location("L1", vec![app(1, 5)]).policy(policy(
        "p",
        1,
        to_group("cart"),
        Intent::Required,
        LicenceType::Device,
    ));
    w.state.set_holding(
        &loc("L1"),
        &key(1),
        dev_holder("D01"),
        HoldingStatus::Releasing,
    );
    let plan = w.plan();
    assert!(plan.is_empty());
    assert_eq!(
        plan.blocked[0].reason,
        BlockReason::ReleaseInFlight {
            location: loc("L1")
        }
    );
}

#[test]
fn one_app_to_100k_devices_is_100_calls() {
    let n = 100_000;
    let w = cart(0)
        .location("L1", vec![app(1, 200_000)])
        .devices((0..n).map(|i| ios(&format!("S{i:06}"))).collect())
        .policy(policy(
            "p",
            1,
            Target::AllDevices,
            Intent::Required,
            LicenceType::Device,
        ));
    let plan = w.plan();
    assert_eq!(plan.apple_calls(), 100);
    assert_eq!(plan.commands.len(), n);
    // Smaller limits from service/config are honoured.
    let small = Limits::new(25, 400, 1000, 100, 100, 100);
    assert_eq!(
        w.plan_with(&Planner::new().with_limits(small))
            .apple_calls(),
        250
    );
}
