//! Every command vppkit renders, for every platform and enrollment type, checked
//! against Apple's MDM command schema: the YAML files of `apple/device-management`
//! (copied, with their README and licence, into `tests/data/mdm-commands/`) are
//! parsed here, not transcribed, so the facts in `src/schema.rs` and the rendering
//! in `src/command.rs` are both held to Apple's own files.

use std::path::Path;

use plist::{Dictionary, Value as Plist};
use serde_norway::Value as Yaml;
use vppkit_core::{AdamId, Platform, ProductType};
use vppkit_rules::{
    command_channel, platform_rule, AppSettings, BlockReason, Channel, CommandKind, CommandRefusal,
    DeviceCommand, DirectoryDevice, EnrollmentType, InstallApplication, Intent, LicenceType,
    MdmCommand, OsVersion, Plan, Precondition, Target,
};

use crate::fixture::{app, book, group, key, policy, serial, to_group, uid, user, World};

const PLATFORMS: [Platform; 5] = [
    Platform::Ios,
    Platform::MacOs,
    Platform::TvOs,
    Platform::WatchOs,
    Platform::VisionOs,
];

const ENROLLMENTS: [EnrollmentType; 4] = [
    EnrollmentType::Device,
    EnrollmentType::Automated,
    EnrollmentType::User,
    EnrollmentType::SharedIpad,
];

fn file(kind: CommandKind) -> &'static str {
    match kind {
        CommandKind::InstallApplication => "application.install.yaml",
        CommandKind::RemoveApplication => "application.remove.yaml",
        CommandKind::InviteToProgram => "application.invitetoprogram.yaml",
        CommandKind::InstallMedia => "media.install.yaml",
        CommandKind::RemoveMedia => "media.remove.yaml",
        other => panic!("no schema file for {other}"),
    }
}

fn schema(kind: CommandKind) -> Yaml {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/mdm-commands")
        .join(file(kind));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

fn os_name(p: Platform) -> &'static str {
    p.as_str()
}

fn get<'a>(v: &'a Yaml, key: &str) -> Option<&'a Yaml> {
    v.as_mapping().and_then(|m| m.get(key))
}

fn text<'a>(v: &'a Yaml, key: &str) -> Option<&'a str> {
    get(v, key).and_then(Yaml::as_str)
}

fn flag(v: &Yaml, key: &str) -> Option<bool> {
    get(v, key).and_then(Yaml::as_bool)
}

/// What Apple's YAML says for a command on a device: the channel, or `Err` when
/// the command is not allowed. Same two readings as `src/schema.rs` documents: no
/// `userenrollment` block does not restrict; no channel keys means the device channel.
fn expected(
    yaml: &Yaml,
    platform: Platform,
    enrollment: EnrollmentType,
    user_licensed: bool,
) -> Result<Channel, ()> {
    let os = get(
        get(get(yaml, "payload").unwrap(), "supportedOS").unwrap(),
        os_name(platform),
    );
    let Some(os) = os else { return Err(()) };
    if text(os, "introduced") == Some("n/a") {
        return Err(());
    }
    let (device, user) = match enrollment {
        EnrollmentType::User => {
            let forbidden = get(os, "userenrollment")
                .and_then(|u| text(u, "mode"))
                .is_some_and(|m| m == "forbidden");
            if forbidden {
                return Err(());
            }
            channels(os)
        }
        EnrollmentType::SharedIpad => {
            let Some(shared) = get(os, "sharedipad") else {
                return Err(());
            };
            if text(shared, "mode") != Some("allowed") {
                return Err(());
            }
            channels(shared)
        }
        _ => channels(os),
    };
    match (device, user) {
        (true, true) if user_licensed => Ok(Channel::User),
        (true, _) => Ok(Channel::Device),
        (false, true) => Ok(Channel::User),
        (false, false) => Err(()),
    }
}

fn channels(block: &Yaml) -> (bool, bool) {
    match (flag(block, "devicechannel"), flag(block, "userchannel")) {
        (None, None) => (true, false),
        (d, u) => (d.unwrap_or(false), u.unwrap_or(false)),
    }
}

#[test]
fn schema_table_matches_apples_yaml() {
    for &kind in CommandKind::ALL {
        let yaml = schema(kind);
        assert_eq!(
            text(get(&yaml, "payload").unwrap(), "requesttype"),
            Some(kind.request_type())
        );
        for platform in PLATFORMS {
            let os = get(
                get(get(&yaml, "payload").unwrap(), "supportedOS").unwrap(),
                os_name(platform),
            );
            let introduced = os.and_then(|o| text(o, "introduced"));
            match (platform_rule(kind, platform), introduced) {
                (None, None | Some("n/a")) => {}
                (Some(rule), Some(v)) => {
                    let (major, minor) = rule.introduced;
                    assert_eq!(format!("{major}.{minor}"), v, "{kind} on {platform}");
                }
                (rule, v) => panic!("{kind} on {platform}: table {rule:?}, YAML {v:?}"),
            }
            for enrollment in ENROLLMENTS {
                for user_licensed in [false, true] {
                    let want = expected(&yaml, platform, enrollment, user_licensed);
                    let got = command_channel(
                        kind,
                        platform,
                        enrollment,
                        &OsVersion::default(),
                        user_licensed,
                    );
                    assert_eq!(
                        got.clone().ok(),
                        want.ok(),
                        "{kind} on {platform}, {} enrollment, user licence {user_licensed}: vppkit says {got:?}",
                        enrollment.as_str()
                    );
                }
            }
        }
    }
}

/// Checks a rendered `Command` dictionary against the command's `payloadkeys`.
fn check_keys(dict: &Dictionary, keys: &[Yaml], device: &DirectoryDevice, ctx: &str) {
    let (platform, enrollment) = (device.platform, device.enrollment);
    for (name, value) in dict {
        if name == "RequestType" {
            continue;
        }
        let spec = keys
            .iter()
            .find(|k| text(k, "key") == Some(name.as_str()))
            .unwrap_or_else(|| panic!("{ctx}: key {name} is not in Apple's schema"));
        let ty = text(spec, "type").unwrap();
        let ok = match ty {
            "<integer>" => {
                value.as_signed_integer().is_some() || value.as_unsigned_integer().is_some()
            }
            "<string>" => value.as_string().is_some(),
            "<boolean>" => value.as_boolean().is_some(),
            "<dictionary>" => value.as_dictionary().is_some(),
            "<array>" => value.as_array().is_some(),
            other => panic!("{ctx}: {name}: unexpected schema type {other}"),
        };
        assert!(ok, "{ctx}: {name} must be {ty}, rendered {value:?}");
        if let Some(os) = get(spec, "supportedOS").and_then(|s| get(s, os_name(platform))) {
            assert_ne!(
                text(os, "introduced"),
                Some("n/a"),
                "{ctx}: {name} does not exist on {platform}"
            );
            if let Some(v) = text(os, "introduced") {
                let introduced = OsVersion::parse(v).unwrap();
                assert!(
                    device.os_version >= introduced,
                    "{ctx}: {name} needs {platform} {v}, the device runs {:?}",
                    device.os_version.parts()
                );
            }
            if enrollment == EnrollmentType::User {
                let mode = get(os, "userenrollment").and_then(|u| text(u, "mode"));
                assert_ne!(
                    mode,
                    Some("forbidden"),
                    "{ctx}: {name} is forbidden under User Enrollment on {platform}"
                );
            }
        }
        if let Some(range) = get(spec, "rangelist").and_then(Yaml::as_sequence) {
            let allowed = range.iter().any(|r| match (r, value) {
                (Yaml::String(s), v) => v.as_string() == Some(s.as_str()),
                (Yaml::Number(n), v) => {
                    n.as_u64().is_some() && v.as_unsigned_integer() == n.as_u64()
                }
                _ => false,
            });
            assert!(allowed, "{ctx}: {name} = {value:?} is not in {range:?}");
        }
        if let (Some(sub), Some(inner)) = (
            get(spec, "subkeys").and_then(Yaml::as_sequence),
            value.as_dictionary(),
        ) {
            if !sub.iter().any(|k| text(k, "key") == Some("ANY")) {
                check_keys(inner, sub, device, &format!("{ctx}.{name}"));
            }
        }
    }
    for spec in keys {
        if text(spec, "presence") == Some("required") {
            let name = text(spec, "key").unwrap();
            assert!(
                dict.contains_key(name),
                "{ctx}: required key {name} missing"
            );
        }
    }
}

fn check_command(
    command: &MdmCommand,
    channel: Channel,
    device: &DirectoryDevice,
    user_licensed: bool,
    ctx: &str,
) {
    let yaml = schema(command.kind());
    let want = expected(&yaml, device.platform, device.enrollment, user_licensed);
    assert_eq!(
        want,
        Ok(channel),
        "{ctx}: {} rendered for {} ({} enrollment) on the {channel:?} channel",
        command.request_type(),
        device.platform,
        device.enrollment.as_str()
    );
    let keys = get(&yaml, "payloadkeys")
        .and_then(Yaml::as_sequence)
        .unwrap();
    check_keys(&command.to_plist(), keys, device, ctx);
}

/// Every setting combination an app policy can ask for.
fn settings_variants() -> Vec<AppSettings> {
    let mut out = Vec::new();
    for bits in 0..16u8 {
        let mut s = AppSettings::default();
        s.removable = bits & 1 == 0;
        s.uninstall_on_device_removal = bits & 2 != 0;
        s.prevent_backup = bits & 4 != 0;
        s.prevent_automatic_updates = bits & 8 != 0;
        out.push(s);
    }
    out
}

/// The OS versions a rendering is checked at: around every version Apple's schema names
/// for a command or one of its keys, and a far future one.
const VERSIONS: [&str; 9] = [
    "5.0", "8.4", "9.0", "10.15", "11.0", "13.7", "14.0", "16.0", "99",
];

/// The command-level version Apple's YAML gives for `platform`, if any.
fn command_introduced(yaml: &Yaml, platform: Platform) -> Option<OsVersion> {
    let os = get(
        get(get(yaml, "payload")?, "supportedOS")?,
        os_name(platform),
    )?;
    OsVersion::parse(text(os, "introduced")?).ok()
}

/// The version Apple's YAML gives for top-level key `key` on `platform`, if any.
fn key_introduced(yaml: &Yaml, key: &str, platform: Platform) -> Option<OsVersion> {
    let spec = get(yaml, "payloadkeys")?
        .as_sequence()?
        .iter()
        .find(|k| text(k, "key") == Some(key))?;
    let os = get(get(spec, "supportedOS")?, os_name(platform))?;
    OsVersion::parse(text(os, "introduced")?).ok()
}

#[test]
fn every_command_rendering_is_valid_where_apple_allows_it() {
    let adam = AdamId::new("1200000001").unwrap();
    for platform in PLATFORMS {
        for enrollment in ENROLLMENTS {
            for version in VERSIONS {
                let device = DirectoryDevice::new(
                    serial("D1"),
                    platform,
                    OsVersion::parse(version).unwrap(),
                )
                .with_enrollment(enrollment);
                let ctx = format!("{platform} {version}/{}", enrollment.as_str());
                let mut rendered: Vec<MdmCommand> = settings_variants()
                    .iter()
                    .map(|s| {
                        MdmCommand::InstallApplication(InstallApplication::for_device(
                            adam.clone(),
                            s,
                            &device,
                        ))
                    })
                    .collect();
                rendered.push(MdmCommand::RemoveApplication {
                    identifier: "com.example.app".into(),
                    adam_id: adam.clone(),
                });
                rendered.push(MdmCommand::InstallMedia {
                    adam_id: adam.clone(),
                });
                rendered.push(MdmCommand::RemoveMedia {
                    adam_id: adam.clone(),
                });
                rendered.push(MdmCommand::InviteToProgram {
                    invitation_url: "https://buy.example/assoc?inviteCode=abc&mt=8".into(),
                });
                for command in rendered {
                    let user_licensed = matches!(
                        command,
                        MdmCommand::InstallMedia { .. } | MdmCommand::InviteToProgram { .. }
                    );
                    let yaml = schema(command.kind());
                    match command_channel(
                        command.kind(),
                        platform,
                        enrollment,
                        &device.os_version,
                        user_licensed,
                    ) {
                        Ok(channel) => {
                            check_command(&command, channel, &device, user_licensed, &ctx)
                        }
                        // The version vppkit asks for is the command's, or one of a key
                        // it renders (`Options` of InstallApplication), in Apple's YAML.
                        Err(CommandRefusal::OsTooOld { introduced }) => {
                            let needed = OsVersion::parse(&introduced).unwrap();
                            let named = command_introduced(&yaml, platform)
                                .into_iter()
                                .chain(key_introduced(&yaml, "Options", platform))
                                .any(|v| v == needed);
                            assert!(
                                named && device.os_version < needed,
                                "{ctx}: vppkit says {} needs {introduced}",
                                command.request_type()
                            )
                        }
                        Err(_) => assert!(
                            expected(&yaml, platform, enrollment, user_licensed).is_err(),
                            "{ctx}: vppkit refuses {} that Apple allows",
                            command.request_type()
                        ),
                    }
                }
            }
        }
    }
}

/// One device of a platform and enrollment type, with its user, in a world where an
/// app is Required with a device licence, another with a user licence, a book is
/// Required, and a fourth app and a second book are to be uninstalled.
fn world(platform: Platform, enrollment: EnrollmentType) -> World {
    let mut d = DirectoryDevice::new(serial("D1"), platform, OsVersion::parse("99").unwrap())
        .with_enrollment(enrollment)
        .with_installed([AdamId::from(4), AdamId::from(5)]);
    // D2's user has only an email: it gets an invitation (InviteToProgram).
    let mut d2 = DirectoryDevice::new(serial("D2"), platform, OsVersion::parse("99").unwrap())
        .with_enrollment(enrollment);
    if enrollment != EnrollmentType::SharedIpad {
        d = d.with_user(uid("u1"));
        d2 = d2.with_user(uid("u2"));
    }
    let mut assets = vec![app(1, 10), app(2, 10), book(3, 10), app(4, 10), book(5, 10)];
    for a in &mut assets {
        a.supported_platforms = PLATFORMS.to_vec();
    }
    World::new()
        .location("L1", assets)
        .hold("L1", 4, crate::fixture::dev_holder("D1"))
        .hold("L1", 5, crate::fixture::user_holder("u1"))
        .vpp_user("L1", "u1", vppkit_core::VppUserStatus::Associated)
        .users(vec![
            user("u1"),
            vppkit_rules::DirectoryUser::new(uid("u2")).with_email("u2@example.org"),
        ])
        .devices(vec![d, d2])
        .groups(vec![
            group("gd", &[], &["D1"]),
            group("gu", &["u1", "u2"], &[]),
        ])
        .policy(policy(
            "p1",
            1,
            to_group("gd"),
            Intent::Required,
            LicenceType::Device,
        ))
        .policy(policy(
            "p2",
            2,
            to_group("gu"),
            Intent::Required,
            LicenceType::User,
        ))
        .policy(policy(
            "p3",
            3,
            to_group("gu"),
            Intent::Required,
            LicenceType::User,
        ))
        .policy(policy(
            "p4",
            4,
            to_group("gd"),
            Intent::Uninstall,
            LicenceType::Device,
        ))
        .policy(policy(
            "p5",
            5,
            to_group("gu"),
            Intent::Uninstall,
            LicenceType::User,
        ))
}

fn user_licensed(c: &DeviceCommand) -> bool {
    matches!(
        &c.after,
        Precondition::Associated {
            holder: vppkit_core::Holder::User(_),
            ..
        }
    ) || matches!(
        c.command,
        MdmCommand::InstallMedia { .. } | MdmCommand::RemoveMedia { .. }
    ) || c.policy.as_ref().is_some_and(|p| p.as_str() == "p2")
}

#[test]
fn planner_renders_every_command_for_every_platform_and_enrollment_as_apple_allows() {
    let mut forbidden_seen = 0;
    let mut kinds_seen = std::collections::BTreeSet::new();
    for platform in PLATFORMS {
        for enrollment in ENROLLMENTS {
            let ctx = format!("{platform}/{}", enrollment.as_str());
            let w = world(platform, enrollment);
            let plan: Plan = w.plan();
            let device = |s: &vppkit_core::SerialNumber| {
                w.devices
                    .iter()
                    .find(|d| d.serial_number == *s)
                    .unwrap()
                    .clone()
            };
            for c in &plan.commands {
                kinds_seen.insert(c.command.kind());
                check_command(
                    &c.command,
                    c.channel,
                    &device(&c.device),
                    user_licensed(c),
                    &ctx,
                );
            }
            for c in plan
                .locations
                .iter()
                .flat_map(|l| &l.invitations)
                .flat_map(|i| i.commands("https://buy.example/x"))
            {
                kinds_seen.insert(c.command.kind());
                check_command(&c.command, c.channel, &device(&c.device), true, &ctx);
            }
            for b in &plan.blocked {
                if let BlockReason::CommandNotAllowed {
                    command, refusal, ..
                } = &b.reason
                {
                    forbidden_seen += 1;
                    assert!(
                        expected(&schema(*command), platform, enrollment, true).is_err()
                            || matches!(refusal, CommandRefusal::OsTooOld { .. }),
                        "{ctx}: {command} blocked although Apple allows it ({refusal})"
                    );
                }
            }
        }
    }
    assert!(
        forbidden_seen > 0,
        "no combination was blocked: the check is not wired in"
    );
    assert_eq!(
        kinds_seen.into_iter().collect::<Vec<_>>(),
        CommandKind::ALL.to_vec(),
        "every command kind is rendered by the planner somewhere"
    );
}

#[test]
fn the_mismatches_of_issue_13_are_blocked_with_a_typed_reason() {
    // InstallMedia for a macOS device under User Enrollment: blocked, no licence taken.
    let w = world(Platform::MacOs, EnrollmentType::User);
    let plan = w.plan();
    assert!(!plan
        .commands
        .iter()
        .any(|c| c.command.kind() == CommandKind::InstallMedia));
    assert!(plan.blocked.iter().any(|b| matches!(
        &b.reason,
        BlockReason::CommandNotAllowed {
            command: CommandKind::InstallMedia,
            refusal: CommandRefusal::UserEnrollment,
            ..
        }
    ) && b.adam_id == key(3).adam_id));
    assert!(!crate::fixture::associations(&plan)
        .iter()
        .any(|(_, k, _)| *k == key(3)));

    // RemoveMedia for macOS: Apple has no such command there.
    assert!(
        plan.blocked.iter().any(|b| matches!(
            &b.reason,
            BlockReason::CommandNotAllowed {
                command: CommandKind::RemoveMedia,
                refusal: CommandRefusal::NotOnPlatform,
                ..
            }
        )) || !plan
            .commands
            .iter()
            .any(|c| c.command.kind() == CommandKind::RemoveMedia)
    );
    let mac = world(Platform::MacOs, EnrollmentType::Device).plan();
    assert!(mac.blocked.iter().any(|b| matches!(
        &b.reason,
        BlockReason::CommandNotAllowed {
            command: CommandKind::RemoveMedia,
            refusal: CommandRefusal::NotOnPlatform,
            ..
        }
    )));
    // On macOS the book goes on the user channel.
    let book_install = mac
        .commands
        .iter()
        .find(|c| c.command.kind() == CommandKind::InstallMedia)
        .expect("InstallMedia planned for the macOS device");
    assert_eq!(book_install.channel, Channel::User);

    // InviteToProgram for an iOS device under User Enrollment: left out of the
    // invitation and reported.
    let mut ios_ue = world(Platform::Ios, EnrollmentType::User);
    ios_ue.users = vec![
        vppkit_rules::DirectoryUser::new(uid("u1")).with_email("u1@example.org"),
        vppkit_rules::DirectoryUser::new(uid("u2")).with_email("u2@example.org"),
    ];
    ios_ue.state = vppkit_rules::LicenceState::new();
    let mut assets = vec![app(2, 10)];
    assets[0].supported_platforms = PLATFORMS.to_vec();
    let ios_ue = ios_ue.location("L1", assets);
    let plan = ios_ue.plan();
    let invitation = plan
        .locations
        .iter()
        .flat_map(|l| &l.invitations)
        .find(|i| i.client_user_id == uid("u1"))
        .expect("the user is invited");
    assert!(
        invitation.devices.is_empty(),
        "InviteToProgram is forbidden under User Enrollment on iOS"
    );
    assert!(plan.blocked.iter().any(|b| matches!(
        &b.reason,
        BlockReason::CommandNotAllowed {
            command: CommandKind::InviteToProgram,
            refusal: CommandRefusal::UserEnrollment,
            ..
        }
    )));
}

#[test]
fn remove_media_sends_the_store_id_as_a_string() {
    let d = MdmCommand::RemoveMedia {
        adam_id: AdamId::from(1200000001),
    }
    .to_plist();
    assert_eq!(
        d.get("iTunesStoreID").and_then(Plist::as_string),
        Some("1200000001")
    );
    let d = MdmCommand::InstallMedia {
        adam_id: AdamId::from(1200000001),
    }
    .to_plist();
    assert_eq!(
        d.get("iTunesStoreID").and_then(Plist::as_unsigned_integer),
        Some(1200000001)
    );
}

#[test]
fn unknown_product_type_is_blocked_not_installed() {
    let mut a = app(1, 10);
    a.product_type = "Subscription".parse::<ProductType>().unwrap();
    let w = World::new()
        .location("L1", vec![a])
        .users(vec![user("u1")])
        .devices(vec![crate::fixture::ios("D1").with_user(uid("u1"))])
        .groups(vec![group("g", &["u1"], &["D1"])])
        .policy(policy(
            "p1",
            1,
            to_group("g"),
            Intent::Required,
            LicenceType::Device,
        ));
    let plan = w.plan();
    assert!(plan.commands.is_empty());
    assert!(crate::fixture::associations(&plan).is_empty());
    assert!(plan.blocked.iter().any(|b| matches!(
        &b.reason,
        BlockReason::UnknownProductType { product_type } if product_type == "Subscription"
    )));
    let _ = Target::AllDevices;
}

#[test]
fn a_user_apple_lists_with_an_unknown_status_is_neither_recreated_nor_licensed() {
    let mut a = app(2, 10);
    a.device_assignable = false;
    let w = World::new()
        .location("L1", vec![a])
        .vpp_user(
            "L1",
            "u1",
            "Suspended".parse::<vppkit_core::VppUserStatus>().unwrap(),
        )
        .users(vec![user("u1")])
        .devices(vec![crate::fixture::ios("D1").with_user(uid("u1"))])
        .groups(vec![group("gu", &["u1"], &[])])
        .policy(policy(
            "p1",
            2,
            to_group("gu"),
            Intent::Required,
            LicenceType::User,
        ));
    let plan = w.plan();
    assert!(plan.locations.iter().all(|l| l.create_users.is_empty()));
    assert!(crate::fixture::associations(&plan).is_empty());
    assert!(plan.blocked.iter().any(|b| matches!(
        &b.reason,
        BlockReason::UnknownUserStatus { status, .. } if status == "Suspended"
    )));
}
