//! One row per validation rule: policy-level violations and holder-level blocks.

use vppkit_core::{Platform, VppUserStatus};
use vppkit_rules::{
    BlockReason, DeviceFilter, EnrollmentType, Intent, LicenceType, Planner, Policy, Target,
    Violation,
};

use crate::fixture::*;

fn world() -> World {
    World::new()
        .location(
            "L1",
            vec![
                app(1, 10),
                user_only_app(2, 10),
                book(3, 10),
                mac_app(4, 10),
            ],
        )
        .location("L2", vec![app(5, 10)])
        .users(vec![user("u1"), user("u2")])
        .devices(vec![ios("D1").with_user(uid("u1")), ios("D2")])
        .groups(vec![
            group("staff", &["u1", "u2"], &[]),
            group("cart", &[], &["D2"]),
        ])
}

#[test]
fn each_policy_rule() {
    use Intent::*;
    use LicenceType::*;
    let macos_only = DeviceFilter::new().with_platforms([Platform::MacOs]);
    let ios_only = DeviceFilter::new().with_platforms([Platform::Ios]);
    let rows: Vec<(&str, Policy, Option<Violation>)> = vec![
        (
            "available to a device group",
            policy("p", 1, to_group("cart"), Available, User),
            Some(Violation::AvailableToDevices {
                target: to_group("cart"),
            }),
        ),
        (
            "available to all devices",
            policy("p", 1, Target::AllDevices, Available, Device),
            Some(Violation::AvailableToDevices {
                target: Target::AllDevices,
            }),
        ),
        (
            "book to a device group",
            policy("p", 3, to_group("cart"), Required, User),
            Some(Violation::BookToDevices {
                target: to_group("cart"),
            }),
        ),
        (
            "book with device licensing",
            policy("p", 3, to_group("staff"), Required, Device),
            Some(Violation::BookWithDeviceLicence),
        ),
        (
            "device licence for an asset that is not device-assignable",
            policy("p", 2, to_group("staff"), Required, Device),
            Some(Violation::NotDeviceAssignable),
        ),
        (
            "asset no location owns",
            policy("p", 99, to_group("staff"), Required, Device),
            Some(Violation::AssetNotFound),
        ),
        (
            "pinned to an unknown location",
            policy("p", 1, to_group("staff"), Required, Device).with_location(loc("L9")),
            Some(Violation::UnknownLocation {
                location: loc("L9"),
            }),
        ),
        (
            "pinned to a location without the asset",
            policy("p", 1, to_group("staff"), Required, Device).with_location(loc("L2")),
            Some(Violation::AssetNotInLocation {
                location: loc("L2"),
            }),
        ),
        (
            "unknown target group",
            policy("p", 1, to_group("nobody"), Required, Device),
            Some(Violation::UnknownGroup {
                group: gid("nobody"),
            }),
        ),
        (
            "unknown exclusion group",
            policy("p", 1, to_group("staff"), Required, Device).excluding(gid("ghosts")),
            Some(Violation::UnknownGroup {
                group: gid("ghosts"),
            }),
        ),
        (
            "filter allows only platforms the asset does not support",
            policy("p", 4, to_group("staff"), Required, Device).with_filter(ios_only),
            Some(Violation::NoSupportedPlatform),
        ),
        (
            "valid: device licence to a user group",
            policy("p", 1, to_group("staff"), Required, Device),
            None,
        ),
        (
            "valid: available user licence to users",
            policy("p", 1, Target::AllUsers, Available, User),
            None,
        ),
        (
            "valid: book to users with user licensing",
            policy("p", 3, to_group("staff"), Required, User),
            None,
        ),
        (
            "valid: uninstall from a device group",
            policy("p", 2, to_group("cart"), Uninstall, Device),
            None,
        ),
        (
            "valid: mac filter on a mac app",
            policy("p", 4, to_group("staff"), Required, Device).with_filter(macos_only),
            None,
        ),
    ];
    for (name, p, expected) in rows {
        let w = world().policy(p);
        let found = Planner::new().validate(&w.directory(), &w.policy_set(), &w.state);
        let plan = w.plan();
        match expected {
            Some(v) => {
                assert_eq!(found.len(), 1, "{name}: {found:?}");
                assert_eq!(found[0].violation, v, "{name}");
                assert_eq!(plan.invalid_policies, found, "{name}");
                assert!(plan.is_empty(), "{name}: an invalid policy must not act");
                let sentence = found[0].explain();
                assert!(
                    sentence.starts_with("Policy p is ignored"),
                    "{name}: {sentence}"
                );
            }
            None => assert!(found.is_empty(), "{name}: {found:?}"),
        }
    }
}

fn blocked_reasons(w: &World) -> Vec<BlockReason> {
    w.plan().blocked.into_iter().map(|b| b.reason).collect()
}

#[test]
fn each_holder_rule() {
    use Intent::*;
    use LicenceType::*;
    let cases: Vec<(&str, World, Vec<BlockReason>)> = vec![
        (
            "user licence on a device without user affinity",
            world().policy(policy("p", 1, to_group("cart"), Required, User)),
            vec![BlockReason::NoUserAffinity {
                device: serial("D2"),
            }],
        ),
        (
            "user licence on a shared iPad",
            world()
                .devices(vec![ios("S1")
                    .with_user(uid("u2"))
                    .with_enrollment(EnrollmentType::SharedIpad)])
                .groups(vec![group("shared", &[], &["S1"])])
                .policy(policy("p", 1, to_group("shared"), Required, User)),
            vec![BlockReason::NoUserAffinity {
                device: serial("S1"),
            }],
        ),
        (
            "user licence where the App Store is disabled",
            world()
                .devices(vec![ios("D3").with_user(uid("u2")).with_app_store(false)])
                .policy(policy("p", 1, to_group("staff"), Required, User)),
            // D1 (u1) is fine; D3 cannot use a user licence.
            vec![BlockReason::AppStoreDisabled {
                device: serial("D3"),
            }],
        ),
        (
            "more than five devices under one user licence",
            world()
                .devices(
                    (3..=8)
                        .map(|i| ios(&format!("D{i}")).with_user(uid("u2")))
                        .collect(),
                )
                .policy(policy("p", 1, to_group("staff"), Required, User)),
            vec![BlockReason::TooManyDevices {
                device: serial("D8"),
                limit: 5,
            }],
        ),
        (
            "asset the platform does not support",
            world().policy(policy("p", 4, to_group("staff"), Required, Device)),
            vec![BlockReason::PlatformNotSupported {
                device: serial("D1"),
                platform: Platform::Ios,
            }],
        ),
        (
            "user without email or Managed Apple Account",
            World::new()
                .location("L1", vec![app(1, 10)])
                .users(vec![vppkit_rules::DirectoryUser::new(uid("u9"))])
                .devices(vec![ios("D9").with_user(uid("u9"))])
                .groups(vec![group("g", &["u9"], &[])])
                .policy(policy("p", 1, to_group("g"), Required, User)),
            vec![BlockReason::NoAccountDetails],
        ),
        (
            "user who has not accepted the invitation yet",
            world()
                .vpp_user("L1", "u1", VppUserStatus::Registered)
                .policy(policy("p", 1, to_group("staff"), Required, User)),
            vec![BlockReason::AwaitingInvitation {
                location: loc("L1"),
            }],
        ),
    ];
    for (name, w, expected) in cases {
        assert_eq!(blocked_reasons(&w), expected, "{name}");
        for b in w.plan().blocked {
            assert!(b.explain().ends_with('.'), "{name}");
        }
    }
}

#[test]
fn read_only_token_blocks_new_licences() {
    let mut w = world().policy(policy(
        "p",
        1,
        to_group("staff"),
        Intent::Required,
        LicenceType::Device,
    ));
    w.state
        .add_location(loc("L1"), vppkit_core::TokenState::Expired);
    let plan = w.plan();
    assert!(plan.is_empty());
    assert_eq!(
        plan.blocked.iter().map(|b| &b.reason).collect::<Vec<_>>(),
        vec![&BlockReason::NoWritableLocation]
    );
}
