//! Seeded scenarios: `Empty`, `Demo` and `Scale`.

use vppkit_core::{
    AccountType, MdmInfo, Platform, PricingParam, Uid, VppUserStatus, UNLIMITED_COUNT,
};

use crate::notify::lock;
use crate::sim::Shared;
use crate::spec::{AssetSpec, LocationSpec};
use crate::store::{AssignmentStore, USER_BIT};
use crate::SimError;

/// A seeded scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Preset {
    /// No locations (add them with [`Control::add_location`](crate::Control::add_location)).
    #[default]
    Empty,
    /// Four locations (two schools, two business offices) with a few dozen
    /// apps and books and a few thousand assignments; see [`demo`].
    Demo,
    /// One location with 5,000 assets, 100,000 devices, 50,000 users and
    /// 1,000,000 assignments; see [`scale`].
    Scale,
}

impl std::str::FromStr for Preset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "empty" => Ok(Preset::Empty),
            "demo" => Ok(Preset::Demo),
            "scale" => Ok(Preset::Scale),
            other => Err(format!("unknown preset {other:?} (empty, demo, scale)")),
        }
    }
}

pub mod demo {
    //! The deterministic ids of the `Demo` preset (the same for every seed; the
    //! seed only changes generated ids such as event ids and token contents).
    //!
    //! | location | `uId` | kind | devices | users |
    //! |---|---|---|---|---|
    //! | Springfield High School | [`SPRINGFIELD_HIGH`] | education, US | 800 | 600 |
    //! | Springfield Middle School | [`SPRINGFIELD_MIDDLE`] | education, US | 400 | 300 |
    //! | Acme Corp London | [`ACME_LONDON`] | business, GB | 600 | 500 |
    //! | Acme Corp Berlin | [`ACME_BERLIN`] | business, DE, claimed by another MDM | 200 | 150 |
    //!
    //! Devices are [`device_serial`]`(prefix, n)` (`SPH000000001` ...), users
    //! [`client_user_id`]`(prefix, n)` (`sph-user-0001` ...), n from 1. In each
    //! location the last 2% of users are Retired, the 8% before them Registered
    //! (invitation pending), the rest Associated.
    //!
    //! Apps are `1200000001..=1200000030`, books `1300000001..=1300000006` (see
    //! [`CATALOG`]). Cases worth knowing:
    //! - shortage: [`SHORTAGE_APP`] at Springfield High has 50 licences, 45 of
    //!   them assigned, for 800 devices;
    //! - fully used: `1200000002` (Math Quest) at Springfield High, 500 of 500;
    //! - free (unlimited): [`FREE_APP`] (Team Chat), `1200000018`, `1200000024`,
    //!   `1200000027`, `1200000030`, and the book `1300000006`;
    //! - user-only apps (not device-assignable): [`USER_ONLY_APP`], `1200000022`;
    //! - both pricing params: [`PLUS_APP`] (`STDQ` and `PLUS`) at Springfield High;
    //! - a custom (B2B) app visible in the metadata lookup only with an Acme
    //!   token: [`CUSTOM_APP`];
    //! - another MDM's `mdmInfo` on Acme Berlin: [`OTHER_MDM_ID`].

    /// Springfield High School (education, US).
    pub const SPRINGFIELD_HIGH: &str = "7300000000000101";
    /// Springfield Middle School (education, US).
    pub const SPRINGFIELD_MIDDLE: &str = "7300000000000102";
    /// Acme Corp London (business, GB).
    pub const ACME_LONDON: &str = "7300000000000201";
    /// Acme Corp Berlin (business, DE), claimed by another MDM.
    pub const ACME_BERLIN: &str = "7300000000000202";
    /// Chem Lab 3D: 50 licences at Springfield High, 45 assigned.
    pub const SHORTAGE_APP: u64 = 1_200_000_008;
    /// Team Chat: free, unlimited, device-assignable.
    pub const FREE_APP: u64 = 1_200_000_011;
    /// Photo Editor Pro: not device-assignable (user licences only).
    pub const USER_ONLY_APP: u64 = 1_200_000_021;
    /// Code Garden: owned as `STDQ` and `PLUS` at Springfield High.
    pub const PLUS_APP: u64 = 1_200_000_005;
    /// Payroll Viewer: a custom (B2B) app owned by the Acme locations.
    pub const CUSTOM_APP: u64 = 1_200_000_028;
    /// Algebra I Textbook: a book.
    pub const BOOK: u64 = 1_300_000_001;
    /// `mdmInfo.id` of the other MDM that claims Acme Berlin.
    pub const OTHER_MDM_ID: &str = "5f1c0de0-0000-4000-8000-0000000000be";

    /// Serial-number prefixes: `SPH`, `SPM`, `ACL`, `ACB`.
    pub const PREFIXES: [(&str, &str); 4] = [
        (SPRINGFIELD_HIGH, "SPH"),
        (SPRINGFIELD_MIDDLE, "SPM"),
        (ACME_LONDON, "ACL"),
        (ACME_BERLIN, "ACB"),
    ];

    /// The `n`th device (from 1) of a location prefix: `SPH000000001`.
    pub fn device_serial(prefix: &str, n: u32) -> String {
        format!("{prefix}{n:09}")
    }

    /// The `n`th user (from 1) of a location prefix: `sph-user-0001`.
    pub fn client_user_id(prefix: &str, n: u32) -> String {
        format!("{}-user-{n:04}", prefix.to_ascii_lowercase())
    }

    /// The store catalog of the demo: `(adamId, name, bundle id, kind)` where
    /// kind is `app`, `free app`, `user app` (not device-assignable), `mac app`,
    /// `custom app`, `book` or `free book`.
    pub const CATALOG: &[(u64, &str, &str, &str)] = &[
        (
            1_200_000_001,
            "Classroom Notes",
            "com.vppkit.demo.classroomnotes",
            "app",
        ),
        (
            1_200_000_002,
            "Math Quest",
            "com.vppkit.demo.mathquest",
            "app",
        ),
        (
            1_200_000_003,
            "Field Journal",
            "com.vppkit.demo.fieldjournal",
            "app",
        ),
        (
            1_200_000_004,
            "Atlas Explorer",
            "com.vppkit.demo.atlasexplorer",
            "app",
        ),
        (
            1_200_000_005,
            "Code Garden",
            "com.vppkit.demo.codegarden",
            "app",
        ),
        (
            1_200_000_006,
            "Lab Timer",
            "com.vppkit.demo.labtimer",
            "app",
        ),
        (
            1_200_000_007,
            "Story Studio",
            "com.vppkit.demo.storystudio",
            "app",
        ),
        (
            1_200_000_008,
            "Chem Lab 3D",
            "com.vppkit.demo.chemlab3d",
            "app",
        ),
        (
            1_200_000_009,
            "Music Sketch",
            "com.vppkit.demo.musicsketch",
            "app",
        ),
        (
            1_200_000_010,
            "Spelling Bee Pro",
            "com.vppkit.demo.spellingbee",
            "app",
        ),
        (
            1_200_000_011,
            "Team Chat",
            "com.vppkit.demo.teamchat",
            "free app",
        ),
        (
            1_200_000_012,
            "Secure Browser",
            "com.vppkit.demo.securebrowser",
            "free app",
        ),
        (
            1_200_000_013,
            "Expense Tracker",
            "com.vppkit.demo.expenses",
            "app",
        ),
        (
            1_200_000_014,
            "Sales Pipeline",
            "com.vppkit.demo.sales",
            "app",
        ),
        (
            1_200_000_015,
            "Docs Scanner",
            "com.vppkit.demo.docscanner",
            "app",
        ),
        (
            1_200_000_016,
            "Field Service",
            "com.vppkit.demo.fieldservice",
            "app",
        ),
        (
            1_200_000_017,
            "Inventory Scan",
            "com.vppkit.demo.inventory",
            "app",
        ),
        (
            1_200_000_018,
            "VPN Connect",
            "com.vppkit.demo.vpn",
            "free app",
        ),
        (
            1_200_000_019,
            "Meeting Rooms",
            "com.vppkit.demo.rooms",
            "app",
        ),
        (
            1_200_000_020,
            "Design Board",
            "com.vppkit.demo.designboard",
            "mac app",
        ),
        (
            1_200_000_021,
            "Photo Editor Pro",
            "com.vppkit.demo.photoeditor",
            "user app",
        ),
        (
            1_200_000_022,
            "Language Coach",
            "com.vppkit.demo.languagecoach",
            "user app",
        ),
        (
            1_200_000_023,
            "Timesheets",
            "com.vppkit.demo.timesheets",
            "app",
        ),
        (
            1_200_000_024,
            "Help Desk",
            "com.vppkit.demo.helpdesk",
            "free app",
        ),
        (
            1_200_000_025,
            "Whiteboard",
            "com.vppkit.demo.whiteboard",
            "app",
        ),
        (
            1_200_000_026,
            "Physics Sim",
            "com.vppkit.demo.physicssim",
            "app",
        ),
        (
            1_200_000_027,
            "Reading Buddy",
            "com.vppkit.demo.readingbuddy",
            "free app",
        ),
        (
            1_200_000_028,
            "Payroll Viewer",
            "com.acme.payrollviewer",
            "custom app",
        ),
        (1_200_000_029, "Kiosk Mode", "com.vppkit.demo.kiosk", "app"),
        (
            1_200_000_030,
            "Print Center",
            "com.vppkit.demo.printcenter",
            "free app",
        ),
        (1_300_000_001, "Algebra I Textbook", "", "book"),
        (1_300_000_002, "World History", "", "book"),
        (1_300_000_003, "Biology Essentials", "", "book"),
        (1_300_000_004, "Employee Handbook", "", "book"),
        (1_300_000_005, "Security Policies", "", "book"),
        (1_300_000_006, "Poetry Anthology", "", "free book"),
    ];
}

/// The `Scale` preset: one education location, [`scale::UID`], with
/// [`scale::ASSETS`] assets (`1400000001..`; the first 4,000 device-assignable
/// apps, then 500 user-only apps, then 500 books), [`scale::DEVICES`] devices
/// (`SCL000000001` ...), [`scale::USERS`] Associated users (`scl-user-00001`
/// ...), and 1,000,000 assignments: device `i` holds apps
/// `(7i + k) mod 4000`, `k < 7`; user `j` holds assets `4000 + (6j + k) mod
/// 1000`, `k < 6`. Every asset has 25 free licences.
pub mod scale {
    /// The location's `uId`.
    pub const UID: &str = "7300000000009001";
    /// Assets.
    pub const ASSETS: u32 = 5_000;
    /// Devices.
    pub const DEVICES: u32 = 100_000;
    /// Users.
    pub const USERS: u32 = 50_000;
    /// First adam id.
    pub const FIRST_ADAM_ID: u64 = 1_400_000_001;
    /// Assignments.
    pub const ASSIGNMENTS: usize = 1_000_000;

    /// The `n`th device (from 1).
    pub fn device_serial(n: u32) -> String {
        format!("SCL{n:09}")
    }

    /// The `n`th user (from 1).
    pub fn client_user_id(n: u32) -> String {
        format!("scl-user-{n:05}")
    }
}

fn catalog_spec(adam: u64) -> AssetSpec {
    let (_, name, bundle, kind) = demo::CATALOG
        .iter()
        .find(|c| c.0 == adam)
        .copied()
        .unwrap_or((adam, "Unknown", "", "app"));
    let bundle = (!bundle.is_empty()).then_some(bundle);
    let spec = match kind {
        "book" => AssetSpec::book(adam, 0),
        "free book" => AssetSpec::book(adam, UNLIMITED_COUNT),
        "free app" => AssetSpec::free_app(adam).platforms(vec![Platform::Ios, Platform::MacOs]),
        "user app" => AssetSpec::app(adam, 0).device_assignable(false),
        "mac app" => AssetSpec::app(adam, 0).platforms(vec![Platform::MacOs]),
        "custom app" => AssetSpec::app(adam, 0).custom(true),
        _ => AssetSpec::app(adam, 0).platforms(vec![Platform::Ios, Platform::MacOs]),
    };
    spec.named(name, bundle)
}

/// `(adamId, pricing, total (0 = unlimited), devices assigned, users assigned)`.
type Holding = (u64, PricingParam, u32, u32, u32);

struct DemoLocation {
    uid: &'static str,
    name: &'static str,
    org: &'static str,
    account: AccountType,
    country: &'static str,
    prefix: &'static str,
    devices: u32,
    users: u32,
    holdings: &'static [Holding],
}

const S: PricingParam = PricingParam::Stdq;

const DEMO: &[DemoLocation] = &[
    DemoLocation {
        uid: demo::SPRINGFIELD_HIGH,
        name: "Springfield High School",
        org: "Springfield School District",
        account: AccountType::Education,
        country: "US",
        prefix: "SPH",
        devices: 800,
        users: 600,
        holdings: &[
            (1_200_000_001, S, 700, 600, 0),
            (1_200_000_002, S, 500, 500, 0),
            (1_200_000_003, S, 400, 300, 0),
            (1_200_000_004, S, 250, 200, 0),
            (1_200_000_005, S, 100, 60, 0),
            (1_200_000_005, PricingParam::Plus, 20, 10, 0),
            (1_200_000_006, S, 100, 0, 0),
            (1_200_000_007, S, 300, 0, 250),
            (1_200_000_008, S, 50, 45, 0),
            (1_200_000_011, S, 0, 800, 0),
            (1_200_000_021, S, 100, 0, 80),
            (1_200_000_022, S, 200, 0, 150),
            (1_200_000_027, S, 0, 0, 300),
            (1_300_000_001, S, 450, 0, 400),
            (1_300_000_003, S, 300, 0, 300),
            (1_300_000_006, S, 0, 0, 100),
        ],
    },
    DemoLocation {
        uid: demo::SPRINGFIELD_MIDDLE,
        name: "Springfield Middle School",
        org: "Springfield School District",
        account: AccountType::Education,
        country: "US",
        prefix: "SPM",
        devices: 400,
        users: 300,
        holdings: &[
            (1_200_000_001, S, 350, 300, 0),
            (1_200_000_002, S, 300, 250, 0),
            (1_200_000_009, S, 150, 100, 0),
            (1_200_000_010, S, 200, 0, 150),
            (1_200_000_011, S, 0, 400, 0),
            (1_200_000_026, S, 80, 80, 0),
            (1_300_000_002, S, 300, 0, 250),
            (1_300_000_006, S, 0, 0, 100),
        ],
    },
    DemoLocation {
        uid: demo::ACME_LONDON,
        name: "Acme Corp London",
        org: "Acme Corporation",
        account: AccountType::Business,
        country: "GB",
        prefix: "ACL",
        devices: 600,
        users: 500,
        holdings: &[
            (1_200_000_013, S, 500, 0, 420),
            (1_200_000_014, S, 200, 0, 180),
            (1_200_000_015, S, 650, 600, 0),
            (1_200_000_016, S, 150, 120, 0),
            (1_200_000_017, S, 100, 100, 0),
            (1_200_000_018, S, 0, 600, 0),
            (1_200_000_019, S, 50, 30, 0),
            (1_200_000_020, S, 40, 25, 0),
            (1_200_000_023, S, 500, 0, 440),
            (1_200_000_024, S, 0, 0, 400),
            (1_200_000_025, S, 30, 0, 0),
            (1_200_000_028, S, 500, 0, 300),
            (1_200_000_029, S, 20, 20, 0),
            (1_300_000_004, S, 600, 0, 400),
            (1_300_000_005, S, 500, 0, 350),
        ],
    },
    DemoLocation {
        uid: demo::ACME_BERLIN,
        name: "Acme Corp Berlin",
        org: "Acme Corporation",
        account: AccountType::Business,
        country: "DE",
        prefix: "ACB",
        devices: 200,
        users: 150,
        holdings: &[
            (1_200_000_012, S, 0, 0, 0),
            (1_200_000_015, S, 200, 150, 0),
            (1_200_000_018, S, 0, 200, 0),
            (1_200_000_023, S, 150, 0, 100),
            (1_200_000_028, S, 120, 0, 60),
            (1_200_000_030, S, 0, 100, 0),
            (1_300_000_004, S, 150, 0, 100),
        ],
    },
];

fn uid(text: &str) -> Result<Uid, SimError> {
    Uid::new(text).map_err(|_| SimError::UnknownLocation(text.to_owned()))
}

/// Seeds `preset` into a fresh simulator.
pub(crate) fn seed(shared: &Shared, preset: Preset) -> Result<(), SimError> {
    match preset {
        Preset::Empty => Ok(()),
        Preset::Demo => seed_demo(shared),
        Preset::Scale => seed_scale(shared),
    }
}

fn seed_demo(shared: &Shared) -> Result<(), SimError> {
    for d in DEMO {
        let mut spec = LocationSpec::new(d.name)
            .uid(uid(d.uid)?)
            .org_name(d.org)
            .account(d.account)
            .country(d.country);
        for &(adam, pricing, total, _, _) in d.holdings {
            let mut a = catalog_spec(adam).pricing(pricing);
            a.total = if total == 0 { UNLIMITED_COUNT } else { total };
            spec = spec.asset(a);
        }
        if d.uid == demo::ACME_BERLIN {
            spec = spec.claimed_by(MdmInfo::new_unchecked(
                demo::OTHER_MDM_ID,
                "Legacy MDM",
                "legacy-mdm.example.com",
            ));
        }
        let (idx, _) = shared.create_location(spec)?;
        let loc = shared
            .location(idx)
            .ok_or_else(|| SimError::UnknownLocation(d.uid.to_owned()))?;
        let mut l = lock(&loc);
        let retired_from = d.users - d.users / 50;
        let registered_from = retired_from - d.users * 8 / 100;
        let domain = match d.account {
            AccountType::Education => "springfield.example.edu",
            _ => "acme.example.com",
        };
        let mut active = Vec::new();
        for n in 1..=d.users {
            let id = demo::client_user_id(d.prefix, n);
            let email = format!("{id}@{domain}");
            let status = if n > retired_from {
                VppUserStatus::Retired
            } else if n > registered_from {
                VppUserStatus::Registered
            } else {
                VppUserStatus::Associated
            };
            // Schools use Managed Apple Accounts; businesses invite by email.
            let managed = (d.account == AccountType::Education
                && status != VppUserStatus::Registered)
                .then(|| format!("{id}@appleid.{domain}"));
            let idx = l.push_user(&id, Some(&email), managed.as_deref(), status);
            if status.is_active() {
                active.push(l.users[idx as usize].cuid);
            }
        }
        let devices: Vec<u32> = (1..=d.devices)
            .map(|n| l.devices.intern(&demo::device_serial(d.prefix, n)))
            .collect();
        for &(adam, pricing, _, n_dev, n_users) in d.holdings {
            let Some(a) = l.asset_idx(adam, pricing) else {
                continue;
            };
            let start = (adam as usize * 97) % devices.len();
            for j in 0..n_dev as usize {
                l.store.insert(a, devices[(start + j) % devices.len()]);
            }
            let start = (adam as usize * 89) % active.len();
            for j in 0..(n_users as usize).min(active.len()) {
                l.store
                    .insert(a, active[(start + j) % active.len()] | USER_BIT);
            }
        }
    }
    Ok(())
}

fn seed_scale(shared: &Shared) -> Result<(), SimError> {
    let mut spec = LocationSpec::new("Scale Test District")
        .uid(uid(scale::UID)?)
        .org_name("Scale Test District")
        .account(AccountType::Education)
        .country("US");
    for i in 0..scale::ASSETS {
        let adam = scale::FIRST_ADAM_ID + u64::from(i);
        let n = i + 1;
        let a = if i < 4000 {
            AssetSpec::app(adam, 0).named(
                &format!("Scale App {n:04}"),
                Some(&format!("com.vppkit.scale.app{n:04}")),
            )
        } else if i < 4500 {
            AssetSpec::app(adam, 0).device_assignable(false).named(
                &format!("Scale App {n:04}"),
                Some(&format!("com.vppkit.scale.app{n:04}")),
            )
        } else {
            AssetSpec::book(adam, 0).named(&format!("Scale Book {n:04}"), None)
        };
        spec = spec.asset(a);
    }
    let (idx, _) = shared.create_location(spec)?;
    let loc = shared
        .location(idx)
        .ok_or_else(|| SimError::UnknownLocation(scale::UID.to_owned()))?;
    let mut l = lock(&loc);
    l.store = AssignmentStore::with_capacity(scale::ASSIGNMENTS);
    for a in 0..scale::ASSETS {
        l.store.ensure_asset(a);
    }
    l.devices = crate::intern::Interner::with_capacity(scale::DEVICES as usize);
    l.user_ids = crate::intern::Interner::with_capacity(scale::USERS as usize);
    l.users.reserve(scale::USERS as usize);
    for n in 1..=scale::DEVICES {
        let d = l.devices.intern(&scale::device_serial(n));
        for k in 0..7 {
            l.store.insert((d * 7 + k) % 4000, d);
        }
    }
    for n in 1..=scale::USERS {
        let idx = l.push_user(
            &scale::client_user_id(n),
            None,
            None,
            VppUserStatus::Associated,
        );
        let cuid = l.users[idx as usize].cuid;
        for k in 0..6 {
            l.store
                .insert(4000 + (cuid * 6 + k) % 1000, cuid | USER_BIT);
        }
    }
    for a in 0..scale::ASSETS {
        let assigned = l.assigned(a);
        l.assets[a as usize].total = assigned + 25;
    }
    Ok(())
}
