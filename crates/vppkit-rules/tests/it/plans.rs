//! Snapshot tests: whole plans of small worlds, as the sentences a person reads.

use vppkit_rules::{DirectoryUser, EnrollmentType, Intent, LicenceType, MdmCommand};

use crate::fixture::*;

fn school() -> World {
    World::new()
        .location(
            "north",
            vec![app(100, 3), user_only_app(200, 5), book(300, 10)],
        )
        .users(vec![
            user("alice"),
            DirectoryUser::new(uid("bob")).with_email("bob@school.example"),
        ])
        .devices(vec![
            ios("IPAD01").with_user(uid("alice")),
            ios("IPAD02").with_user(uid("bob")),
            ios("CART01")
                .with_enrollment(EnrollmentType::Automated)
                .supervised(true),
            ios("CART02")
                .with_enrollment(EnrollmentType::Automated)
                .supervised(true),
        ])
        .groups(vec![
            group("teachers", &["alice", "bob"], &[]),
            group("cart", &[], &["CART01", "CART02"]),
        ])
        .hold("north", 100, dev_holder("OLD01"))
        .policy(policy(
            "cart-keynote",
            100,
            to_group("cart"),
            Intent::Required,
            LicenceType::Device,
        ))
        .policy(policy(
            "teachers-keynote",
            100,
            to_group("teachers"),
            Intent::Required,
            LicenceType::User,
        ))
        .policy(policy(
            "teachers-book",
            300,
            to_group("teachers"),
            Intent::Required,
            LicenceType::User,
        ))
        .policy(policy(
            "cart-notes",
            200,
            to_group("cart"),
            Intent::Required,
            LicenceType::Device,
        ))
}

#[test]
fn school_plan_snapshot() {
    let plan = school().plan();
    // App 100 has 3 licences, one still held by OLD01 (gone from the directory): it is
    // revoked in this plan but counts as used until Apple confirms, so only 2 are free.
    let expected = vec![
        "Policy cart-notes is ignored: 200 is not device-assignable, so it needs user licensing.",
        "Create 2 VPP users in location north (1 with a Managed Apple Account, 1 to invite by email).",
        "Invite user bob to Apps and Books with InviteToProgram on 1 device.",
        "Associate 1 asset with 2 devices in location north, because a policy asks for it.",
        "Associate 1 asset with 1 user in location north, because a policy asks for it.",
        "Revoke every revocable licence of 1 device in location north, because the device is retired or gone from the directory.",
        "On device CART01: Install app 100 with its VPP licence (PurchaseMethod 1), ManagementFlags 1 (policy cart-keynote), once Apple confirms the licence for device:CART01 in location north.",
        "On device CART02: Install app 100 with its VPP licence (PurchaseMethod 1), ManagementFlags 1 (policy cart-keynote), once Apple confirms the licence for device:CART02 in location north.",
        "On device IPAD01: Install book 300 from the user's VPP licence (policy teachers-book), once Apple confirms the licence for user:alice in location north.",
        "user:alice is required to have it by policy teachers-keynote but no licence of 100 is free; it is number 1 in line for the next one.",
        "user:bob is required to have it by policy teachers-keynote but no licence of 100 is free; it is number 2 in line for the next one.",
        "user:bob gets 300 (policy teachers-book) once they accept the Apps and Books invitation of location north.",
    ];
    let got = plan.explain();
    assert_eq!(got, expected, "\n{}", got.join("\n"));
    assert_eq!(plan.apple_calls(), 4);
    assert_eq!(plan.waitlisted[1].position, 2);
}

#[test]
fn school_plan_after_apply_and_acceptance() {
    let w = school();
    let mut next = w.clone();
    next.state.apply(&w.plan());
    // The revoke freed OLD01's licence: alice (first in line) gets it. Bob accepted the
    // invitation: he gets the book, and waits for app 100.
    next = next.vpp_user("north", "bob", vppkit_core::VppUserStatus::Associated);
    let plan = next.plan();
    let expected = vec![
        "Policy cart-notes is ignored: 200 is not device-assignable, so it needs user licensing.",
        "Associate 1 asset with 1 user in location north, because a policy asks for it.",
        "Associate 1 asset with 1 user in location north, because a policy asks for it.",
        "On device IPAD01: Install app 100 with its VPP licence (PurchaseMethod 1), ManagementFlags 1 (policy teachers-keynote), once Apple confirms the licence for user:alice in location north.",
        "On device IPAD02: Install book 300 from the user's VPP licence (policy teachers-book), once Apple confirms the licence for user:bob in location north.",
        "user:bob is required to have it by policy teachers-keynote but no licence of 100 is free; it is number 1 in line for the next one.",
    ];
    let got = plan.explain();
    assert_eq!(got, expected, "\n{}", got.join("\n"));
}

#[test]
fn install_application_plist_snapshot() {
    let plan = school().plan();
    let cmd = &plan.commands[0].command;
    assert!(matches!(cmd, MdmCommand::InstallApplication(_)));
    let xml = cmd.to_xml("0C5E9E3B-0000-4000-8000-000000000001");
    let expected = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>Command</key>
	<dict>
		<key>RequestType</key>
		<string>InstallApplication</string>
		<key>iTunesStoreID</key>
		<integer>100</integer>
		<key>Options</key>
		<dict>
			<key>PurchaseMethod</key>
			<integer>1</integer>
		</dict>
		<key>ManagementFlags</key>
		<integer>1</integer>
		<key>ChangeManagementState</key>
		<string>Managed</string>
	</dict>
	<key>CommandUUID</key>
	<string>0C5E9E3B-0000-4000-8000-000000000001</string>
</dict>
</plist>"#;
    assert_eq!(xml, expected, "\n{xml}");
}
