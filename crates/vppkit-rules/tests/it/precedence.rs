//! One row per precedence case: several policies reach the same device and app.

use vppkit_core::Holder;
use vppkit_rules::{AppSettings, Intent, LicenceType, MdmCommand, Policy};

use crate::fixture::*;

/// u1 owns D1 (inventory known, app 1 installed per `installed`).
fn world(installed: bool) -> World {
    let d1 = ios("D1").with_user(uid("u1"));
    let d1 = if installed {
        d1.with_installed([adam(1)])
    } else {
        d1.with_installed([])
    };
    World::new()
        .location("L1", vec![app(1, 10)])
        .users(vec![user("u1")])
        .devices(vec![d1])
        .groups(vec![
            group("users", &["u1"], &[]),
            group("devices", &[], &["D1"]),
            group("also-users", &["u1"], &[]),
        ])
}

#[derive(Debug, PartialEq)]
enum Outcome {
    /// Device licence associated, install sent.
    DeviceLicence,
    /// User licence associated, install sent.
    UserLicence,
    /// RemoveApplication sent.
    Removed,
    /// Nothing at all.
    Nothing,
}

fn outcome(w: &World) -> Outcome {
    let plan = w.plan();
    let assoc = associations(&plan);
    let cmds = commands(&plan);
    match (assoc.as_slice(), cmds.as_slice()) {
        ([(_, _, Holder::Device(_))], [(_, "InstallApplication")]) => Outcome::DeviceLicence,
        ([(_, _, Holder::User(_))], [(_, "InstallApplication")]) => Outcome::UserLicence,
        ([], [(_, "RemoveApplication")]) => Outcome::Removed,
        ([], []) => Outcome::Nothing,
        other => panic!("unexpected plan {other:?}"),
    }
}

#[test]
fn intents_and_licence_types() {
    use Intent::*;
    use LicenceType::*;
    let rows: Vec<(&str, bool, Vec<Policy>, Outcome)> = vec![
        (
            "required beats uninstall",
            false,
            vec![
                policy("a", 1, to_group("users"), Uninstall, Device),
                policy("b", 1, to_group("devices"), Required, Device),
            ],
            Outcome::DeviceLicence,
        ),
        (
            "uninstall beats available",
            true,
            vec![
                policy("a", 1, to_group("users"), Available, User),
                policy("b", 1, to_group("devices"), Uninstall, Device),
            ],
            Outcome::Removed,
        ),
        (
            "device licence beats user licence",
            false,
            vec![
                policy("a", 1, to_group("users"), Required, User),
                policy("b", 1, to_group("devices"), Required, Device),
            ],
            Outcome::DeviceLicence,
        ),
        (
            "user licence alone",
            false,
            vec![policy("a", 1, to_group("users"), Required, User)],
            Outcome::UserLicence,
        ),
        (
            "available without a request takes nothing",
            false,
            vec![policy("a", 1, to_group("users"), Available, User)],
            Outcome::Nothing,
        ),
        (
            "exclusion beats inclusion (device excluded)",
            false,
            vec![policy("a", 1, to_group("users"), Required, Device).excluding(gid("devices"))],
            Outcome::Nothing,
        ),
        (
            "exclusion beats inclusion (the device's user excluded)",
            false,
            vec![policy("a", 1, to_group("devices"), Required, Device).excluding(gid("also-users"))],
            Outcome::Nothing,
        ),
        (
            "an exclusion in one policy does not stop another",
            false,
            vec![
                policy("a", 1, to_group("users"), Required, Device).excluding(gid("devices")),
                policy("b", 1, to_group("devices"), Required, Device),
            ],
            Outcome::DeviceLicence,
        ),
        (
            "a disabled policy is ignored",
            false,
            vec![{
                let mut p = policy("a", 1, to_group("users"), Required, Device);
                p.enabled = false;
                p
            }],
            Outcome::Nothing,
        ),
    ];
    for (name, installed, policies, expected) in rows {
        let mut w = world(installed);
        for p in policies {
            w = w.policy(p);
        }
        assert_eq!(outcome(&w), expected, "{name}");
    }
}

fn flags_of(w: &World) -> Option<u64> {
    let plan = w.plan();
    assert_eq!(plan.commands.len(), 1);
    match &plan.commands[0].command {
        MdmCommand::InstallApplication(i) => i.management_flags,
        other => panic!("{other:?}"),
    }
}

#[test]
fn priority_then_policy_id_decide_settings() {
    let backup = AppSettings::default().with_prevent_backup(true);
    let base = || {
        world(false).policy(policy(
            "a",
            1,
            to_group("users"),
            Intent::Required,
            LicenceType::Device,
        ))
    };
    // Same priority: the smaller policy id ("a") wins, flags 1.
    let w = base().policy(
        policy(
            "b",
            1,
            to_group("devices"),
            Intent::Required,
            LicenceType::Device,
        )
        .with_settings(backup),
    );
    assert_eq!(flags_of(&w), Some(1));
    // Higher priority wins: "b" with flags 1 | 4.
    let w = base().policy(
        policy(
            "b",
            1,
            to_group("devices"),
            Intent::Required,
            LicenceType::Device,
        )
        .with_settings(backup)
        .with_priority(5),
    );
    assert_eq!(flags_of(&w), Some(5));
    let plan = w.plan();
    assert_eq!(plan.commands[0].policy, Some(pid("b")));
}
