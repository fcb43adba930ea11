//! Property tests: a plan never reserves more than is free, the same input always gives the
//! same plan, planning again after the plan is applied gives an empty plan, and a holder gone
//! from the directory loses only the licences vppkit gave it (never an adopted one, never
//! anything of another MDM's user).

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use vppkit_core::{Holder, HoldingStatus, Platform, TokenState, VppUserStatus};
use vppkit_rules::{
    Directory, DirectoryDevice, DirectoryUser, EnrollmentType, GoneRelease, Group, InstallRequest,
    Intent, LicenceState, LicenceType, LicenceView, MdmCommand, Plan, PlanSession, Planner, Policy,
    ReleaseRules, ScopeRelease, Target, UninstallRelease,
};

use crate::fixture::*;

type PolicyGen = (u8, u8, u8, u8, i8, u8, Option<usize>);

#[derive(Debug, Clone)]
struct Gen {
    users: Vec<(u8, bool)>,                            // account kind, retired
    devices: Vec<(Option<usize>, u8, bool, u8, bool)>, // user, enrollment, app store, inventory, retired
    groups: Vec<(Vec<usize>, Vec<usize>)>,
    locations: Vec<(Vec<(u8, u32)>, bool)>, // (asset kind, total), writable
    holdings: Vec<(usize, u8, usize, u8)>,  // location, asset, holder, status
    vpp_users: Vec<(usize, usize, bool, bool)>, // location, user, associated, foreign
    policies: Vec<PolicyGen>,               // adam, target, intent, licence, priority, pin, exclude
    requests: Vec<(usize, u8)>,
    release: (u8, u8, bool, bool),
}

fn gen() -> impl Strategy<Value = Gen> {
    let users = prop::collection::vec((0u8..5, prop::bool::weighted(0.1)), 1..8);
    let devices = prop::collection::vec(
        (
            prop::option::weighted(0.8, 0usize..8),
            0u8..6,
            prop::bool::weighted(0.85),
            0u8..4,
            prop::bool::weighted(0.1),
        ),
        1..20,
    );
    let groups = prop::collection::vec(
        (
            prop::collection::vec(0usize..8, 0..5),
            prop::collection::vec(0usize..20, 0..8),
        ),
        1..5,
    );
    let locations = prop::collection::vec(
        (
            prop::collection::vec((1u8..=4, 0u32..12), 1..5),
            prop::bool::weighted(0.85),
        ),
        1..3,
    );
    let holdings = prop::collection::vec((0usize..2, 1u8..=4, 0usize..32, 0u8..4), 0..12);
    let vpp_users = prop::collection::vec(
        (
            0usize..2,
            0usize..8,
            any::<bool>(),
            prop::bool::weighted(0.25),
        ),
        0..6,
    );
    let policies = prop::collection::vec(
        (
            1u8..=9,
            0u8..7,
            0u8..5,
            0u8..2,
            -2i8..3,
            0u8..4,
            prop::option::weighted(0.2, 0usize..5),
        ),
        0..7,
    );
    let requests = prop::collection::vec((0usize..20, 1u8..=4), 0..4);
    let release = (0u8..3, 0u8..3, any::<bool>(), any::<bool>());
    (
        users, devices, groups, locations, holdings, vpp_users, policies, requests, release,
    )
        .prop_map(
            |(
                users,
                devices,
                groups,
                locations,
                holdings,
                vpp_users,
                policies,
                requests,
                release,
            )| Gen {
                users,
                devices,
                groups,
                locations,
                holdings,
                vpp_users,
                policies,
                requests,
                release,
            },
        )
}

const ADAMS: [u64; 5] = [0, 1, 2, 3, 4];

fn asset_of(kind: u8, total: u32) -> vppkit_core::Asset {
    match kind {
        1 => app(1, total),
        2 => user_only_app(2, total),
        3 => book(3, total),
        _ => mac_app(4, total),
    }
}

fn build(g: &Gen, reversed: bool) -> World {
    let nu = g.users.len();
    let nd = g.devices.len();
    let mut users: Vec<DirectoryUser> = g
        .users
        .iter()
        .enumerate()
        .map(|(i, &(kind, retired))| {
            let id = uid(&format!("U{i}"));
            let u = match kind {
                0 | 1 => DirectoryUser::new(id).with_managed_apple_id(format!("u{i}@corp.example")),
                2 | 3 => DirectoryUser::new(id).with_email(format!("u{i}@example.org")),
                _ => DirectoryUser::new(id),
            };
            if retired {
                u.retired()
            } else {
                u
            }
        })
        .collect();
    let mut devices: Vec<DirectoryDevice> = g
        .devices
        .iter()
        .enumerate()
        .map(|(i, &(user, enrol, store, inv, retired))| {
            let mut d = ios(&format!("D{i:02}"));
            if i % 5 == 4 {
                d = DirectoryDevice::new(
                    serial(&format!("D{i:02}")),
                    Platform::MacOs,
                    "14.2".parse().unwrap(),
                );
            }
            if let Some(u) = user.filter(|&u| u < nu) {
                d = d.with_user(uid(&format!("U{u}")));
            }
            d = d.with_enrollment(match enrol {
                0 => EnrollmentType::Device,
                1 => EnrollmentType::Automated,
                2 => EnrollmentType::User,
                3 => EnrollmentType::SharedIpad,
                _ => EnrollmentType::Device,
            });
            d = d.with_app_store(store);
            d = match inv {
                0 => d,
                1 => d.with_installed([]),
                2 => d.with_installed([adam(1), adam(3)]),
                _ => d.with_installed([adam(2), adam(4)]),
            };
            if retired {
                d.retired()
            } else {
                d
            }
        })
        .collect();
    let mut groups: Vec<Group> = g
        .groups
        .iter()
        .enumerate()
        .map(|(i, (us, ds))| {
            let us: BTreeSet<String> = us
                .iter()
                .filter(|&&u| u < nu)
                .map(|u| format!("U{u}"))
                .collect();
            let ds: BTreeSet<String> = ds
                .iter()
                .filter(|&&d| d < nd)
                .map(|d| format!("D{d:02}"))
                .collect();
            let mut us: Vec<&str> = us.iter().map(String::as_str).collect();
            let mut ds: Vec<&str> = ds.iter().map(String::as_str).collect();
            if reversed {
                us.reverse();
                ds.reverse();
            }
            group(&format!("G{i}"), &us, &ds)
        })
        .collect();
    let mut w = World::new();
    for (li, (assets, writable)) in g.locations.iter().enumerate() {
        let name = format!("L{}", li + 1);
        let mut seen = BTreeSet::new();
        let assets: Vec<_> = assets
            .iter()
            .filter(|(k, _)| seen.insert(*k))
            .map(|&(k, t)| asset_of(k, t))
            .collect();
        w = w.location(&name, assets);
        if !writable {
            w.state.add_location(loc(&name), TokenState::Expired);
        }
    }
    let holder = |h: usize| {
        if h < nd {
            dev_holder(&format!("D{h:02}"))
        } else if h < nd + nu {
            user_holder(&format!("U{}", h - nd))
        } else if h.is_multiple_of(2) {
            dev_holder(&format!("GONE{h}"))
        } else {
            user_holder(&format!("gone{h}"))
        }
    };
    for &(l, a, h, st) in &g.holdings {
        let l = format!("L{}", (l % g.locations.len()) + 1);
        let h = holder(h);
        // Apple never lets a device hold a user-only app or a book.
        if h.is_device() && (a == 2 || a == 3) {
            continue;
        }
        let status = [
            HoldingStatus::Active,
            HoldingStatus::Reserved,
            HoldingStatus::Adopted,
            HoldingStatus::Releasing,
        ][st as usize];
        w.state.set_holding(&loc(&l), &key(u64::from(a)), h, status);
    }
    for &(l, u, associated, foreign) in &g.vpp_users {
        if u >= nu {
            continue;
        }
        let l = format!("L{}", (l % g.locations.len()) + 1);
        let status = if associated {
            VppUserStatus::Associated
        } else {
            VppUserStatus::Registered
        };
        w = w.vpp_user(&l, &format!("U{u}"), status);
        if foreign {
            w.state
                .set_user_owned(&loc(&l), &uid(&format!("U{u}")), false);
        }
    }
    // Some users gone from the directory were created by another MDM.
    for &(l, _, h, _) in &g.holdings {
        if h >= nd + nu && h % 4 == 3 {
            let l = format!("L{}", (l % g.locations.len()) + 1);
            w.state
                .set_user_owned(&loc(&l), &uid(&format!("gone{h}")), false);
        }
    }
    let mut policies: Vec<Policy> = g
        .policies
        .iter()
        .enumerate()
        .map(|(i, &(a, t, intent, lic, prio, pin, excl))| {
            let target = match t {
                0 => Target::AllUsers,
                1 => Target::AllDevices,
                n => to_group(&format!("G{}", usize::from(n - 2) % g.groups.len())),
            };
            let intent = [
                Intent::Required,
                Intent::Required,
                Intent::Available,
                Intent::Uninstall,
                Intent::Required,
            ][intent as usize];
            let a = if a == 9 { 5 } else { a % 4 + 1 };
            let licence = [LicenceType::Device, LicenceType::User][lic as usize];
            let mut p = policy(&format!("P{i}"), u64::from(a), target, intent, licence)
                .with_priority(i32::from(prio));
            if pin == 1 {
                p = p.with_location(loc("L1"));
            } else if pin == 2 {
                p = p.with_location(loc("L2"));
            }
            if let Some(e) = excl {
                p = p.excluding(gid(&format!("G{}", e % g.groups.len())));
            }
            p
        })
        .collect();
    w.ctx.requests = g
        .requests
        .iter()
        .map(|&(d, a)| {
            InstallRequest::new(serial(&format!("D{:02}", d % nd)), adam(ADAMS[a as usize]))
        })
        .collect();
    w.release = ReleaseRules::default()
        .with_on_uninstall(
            [
                UninstallRelease::AfterRemoval,
                UninstallRelease::WithRemoval,
                UninstallRelease::Never,
            ][g.release.0 as usize],
        )
        .with_on_out_of_scope(
            [
                ScopeRelease::Keep,
                ScopeRelease::Release,
                ScopeRelease::ReleaseAfterDays(3),
            ][g.release.1 as usize],
        )
        .with_on_device_removed(if g.release.2 {
            GoneRelease::Release
        } else {
            GoneRelease::Keep
        })
        .with_on_user_retired(if g.release.3 {
            GoneRelease::Release
        } else {
            GoneRelease::Keep
        });
    if reversed {
        users.reverse();
        devices.reverse();
        groups.reverse();
        policies.reverse();
    }
    w.users = users;
    w.devices = devices;
    w.groups = groups;
    w.policies = policies;
    w
}

/// Plays the plan: Apple accepts everything, devices run every command, requests that got
/// an install command are dropped.
fn apply(w: &mut World, plan: &Plan) {
    w.state.apply(plan);
    let mut sent: BTreeSet<(String, String)> = BTreeSet::new();
    let mut installs: BTreeMap<String, Vec<vppkit_core::AdamId>> = BTreeMap::new();
    let mut removes: BTreeMap<String, Vec<vppkit_core::AdamId>> = BTreeMap::new();
    for c in &plan.commands {
        let Some(a) = c.command.adam_id() else {
            continue;
        };
        match c.command {
            MdmCommand::InstallApplication(_) | MdmCommand::InstallMedia { .. } => {
                sent.insert((c.device.to_string(), a.to_string()));
                installs
                    .entry(c.device.to_string())
                    .or_default()
                    .push(a.clone());
            }
            _ => removes
                .entry(c.device.to_string())
                .or_default()
                .push(a.clone()),
        }
    }
    for d in &mut w.devices {
        if let Some(inv) = d.installed.as_mut() {
            for a in installs.get(d.serial_number.as_str()).into_iter().flatten() {
                inv.insert(a.clone());
            }
            for a in removes.get(d.serial_number.as_str()).into_iter().flatten() {
                inv.remove(a);
            }
        }
    }
    w.ctx
        .requests
        .retain(|r| !sent.contains(&(r.device.to_string(), r.adam_id.to_string())));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn never_reserves_more_than_is_free(g in gen()) {
        let w = build(&g, false);
        let plan = w.plan();
        let mut per: BTreeMap<(String, String), u32> = BTreeMap::new();
        for (l, a, _) in associations(&plan) {
            *per.entry((l, a.to_string())).or_default() += 1;
        }
        for ((l, a), n) in per {
            let k = w.state.assets(&loc(&l)).into_iter().find(|x| x.asset.key.to_string() == a).unwrap();
            prop_assert!(n <= k.free, "{} associations of {} in {} with {} free", n, a, l, k.free);
        }
        // No holder gets the same asset twice, nor an asset it already holds.
        let assoc = associations(&plan);
        let unique: BTreeSet<_> = assoc.iter().collect();
        prop_assert_eq!(unique.len(), assoc.len());
        for (l, a, h) in &assoc {
            prop_assert!(w.state.holding(&loc(l), a, h).is_none());
        }
        // Every batch respects the limits.
        for lp in &plan.locations {
            for b in lp.associate.iter().chain(&lp.disassociate) {
                prop_assert!(b.assets.len() <= 25 && b.targets.len() <= 1000 && !b.targets.is_empty());
            }
            for b in &lp.revoke {
                prop_assert!(b.targets.len() <= 100);
            }
        }
    }

    #[test]
    fn gone_holders_lose_only_what_is_ours(g in gen()) {
        let w = build(&g, false);
        let plan = w.plan();
        let dir = w.directory();
        let in_dir = |h: &Holder| match h {
            Holder::Device(s) => dir.device(s).is_some_and(|d| !d.retired),
            Holder::User(u) => dir.user(u).is_some_and(|u| !u.retired),
            _ => false,
        };
        for lp in &plan.locations {
            let l = &lp.location;
            let revocable: Vec<_> = w
                .state
                .assets(l)
                .into_iter()
                .filter(|a| a.asset.revocable && !a.asset.is_book())
                .map(|a| a.asset.key)
                .collect();
            // A revoke takes every revocable licence: never one of a holder with an adopted one.
            for b in &lp.revoke {
                for h in b.targets.holders() {
                    prop_assert!(!in_dir(&h));
                    for k in &revocable {
                        prop_assert_ne!(w.state.holding(l, k, &h), Some(HoldingStatus::Adopted));
                    }
                    if let Holder::User(u) = &h {
                        prop_assert!(w.state.is_own_user(l, u), "foreign {} revoked", u);
                    }
                }
            }
            // Holders gone from the directory lose only reserved or active licences.
            for b in &lp.disassociate {
                for (k, h) in b.holdings() {
                    if in_dir(&h) {
                        continue;
                    }
                    let st = w.state.holding(l, &k, &h);
                    prop_assert!(
                        matches!(st, Some(HoldingStatus::Active | HoldingStatus::Reserved)),
                        "{} {} {:?} disassociated", h, k, st
                    );
                    if let Holder::User(u) = &h {
                        prop_assert!(w.state.is_own_user(l, u), "foreign {} disassociated", u);
                    }
                }
            }
            // Another MDM's users are never retired, nor own users keeping an adopted licence.
            for b in &lp.retire_users {
                for u in &b.client_user_ids {
                    prop_assert!(w.state.is_own_user(l, u), "foreign {} retired", u);
                    let h = Holder::User(u.clone());
                    for k in &revocable {
                        prop_assert_ne!(w.state.holding(l, k, &h), Some(HoldingStatus::Adopted));
                    }
                }
            }
        }
    }

    #[test]
    fn same_input_same_plan(g in gen()) {
        let a = build(&g, false).plan();
        let b = build(&g, false).plan();
        prop_assert_eq!(&a, &b);
        // Order of users, devices, groups, members and policies in the files does not matter.
        let c = build(&g, true).plan();
        prop_assert_eq!(&a, &c);
    }

    #[test]
    fn planning_after_applying_converges(g in gen()) {
        let mut w = build(&g, false);
        let first = w.plan();
        apply(&mut w, &first);
        let second = w.plan();
        // Without freed licences to hand out and without two-step removals, one round is enough.
        let freed = !first.waitlisted.is_empty();
        let two_step = w.release.on_uninstall == UninstallRelease::AfterRemoval;
        if !freed && !two_step {
            prop_assert!(second.is_empty(), "second plan not empty: {:#?}", second.explain());
        }
        // In any case the plans reach a fixed point quickly.
        let mut plan = second;
        for _ in 0..4 {
            if plan.is_empty() {
                break;
            }
            apply(&mut w, &plan);
            plan = w.plan();
        }
        prop_assert!(plan.is_empty(), "no fixed point: {:#?}", plan.explain());
    }
}

/// One small change of the world: a holding, a VPP user (an accepted invitation), a group
/// membership, a policy field, a device, a user, an asset's count (a purchase or a refund),
/// a self-service request.
fn mutate(g: &mut Gen, kind: u8, i: usize, v: u8) {
    match kind {
        0 => {
            if g.holdings.is_empty() || v.is_multiple_of(3) {
                g.holdings.push((i % 2, 1 + v % 4, i % 32, v % 4));
            } else if v % 3 == 1 {
                let n = g.holdings.len();
                g.holdings.remove(i % n);
            } else {
                let n = g.holdings.len();
                g.holdings[i % n].3 = v % 4;
            }
        }
        1 => {
            if g.vpp_users.is_empty() || v.is_multiple_of(3) {
                g.vpp_users
                    .push((i % 2, i % 8, v.is_multiple_of(2), v.is_multiple_of(5)));
            } else {
                let n = g.vpp_users.len();
                let e = &mut g.vpp_users[i % n];
                if v % 3 == 1 {
                    e.2 = !e.2;
                } else {
                    e.3 = !e.3;
                }
            }
        }
        2 => {
            let n = g.groups.len();
            let grp = &mut g.groups[i % n];
            match v % 4 {
                0 => grp.0.push(usize::from(v) % 8),
                1 => grp.1.push(usize::from(v) % 20),
                2 => {
                    grp.0.pop();
                }
                _ => {
                    grp.1.pop();
                }
            }
        }
        3 => {
            if g.policies.is_empty() {
                return;
            }
            let n = g.policies.len();
            let p = &mut g.policies[i % n];
            match v % 6 {
                0 => p.1 = (p.1 + 1) % 7,
                1 => p.2 = (p.2 + 1) % 5,
                2 => p.3 = (p.3 + 1) % 2,
                3 => p.4 = (p.4 + 2) % 3,
                4 => p.5 = (p.5 + 1) % 4,
                _ => p.6 = p.6.map_or(Some(usize::from(v)), |_| None),
            }
        }
        4 => {
            let n = g.devices.len();
            let d = &mut g.devices[i % n];
            match v % 5 {
                0 => d.0 = d.0.map_or(Some(usize::from(v) % 8), |_| None),
                1 => d.1 = (d.1 + 1) % 6,
                2 => d.2 = !d.2,
                3 => d.3 = (d.3 + 1) % 4,
                _ => d.4 = !d.4,
            }
        }
        5 => {
            let n = g.users.len();
            let u = &mut g.users[i % n];
            if v.is_multiple_of(2) {
                u.0 = (u.0 + 1) % 5;
            } else {
                u.1 = !u.1;
            }
        }
        6 => {
            let n = g.locations.len();
            let assets = &mut g.locations[i % n].0;
            let m = assets.len();
            assets[usize::from(v) % m].1 = u32::from(v) % 12;
        }
        _ => {
            if g.requests.is_empty() || v.is_multiple_of(2) {
                g.requests.push((i % 20, 1 + v % 4));
            } else {
                let n = g.requests.len();
                g.requests.remove(i % n);
            }
        }
    }
}

fn full_plan(w: &World) -> Plan {
    w.plan()
}

/// A view that hides the holdings versions of the one it wraps (the trait's default).
struct Unversioned<'a>(&'a LicenceState);

impl LicenceView for Unversioned<'_> {
    fn locations(&self) -> Vec<vppkit_rules::LocationInfo> {
        self.0.locations()
    }
    fn assets(&self, location: &vppkit_core::LocationId) -> Vec<vppkit_rules::AssetInfo> {
        self.0.assets(location)
    }
    fn holdings(
        &self,
        location: &vppkit_core::LocationId,
        asset: &vppkit_core::AssetKey,
    ) -> Vec<(Holder, HoldingStatus)> {
        self.0.holdings(location, asset)
    }
    fn users(&self, location: &vppkit_core::LocationId) -> Vec<vppkit_core::VppUser> {
        self.0.users(location)
    }
    fn is_own_user(
        &self,
        location: &vppkit_core::LocationId,
        id: &vppkit_core::ClientUserId,
    ) -> bool {
        self.0.is_own_user(location, id)
    }
}

/// Plans through the session with the world's state, its holdings versions shown or not.
/// Plans `w` with the session. With `shared` set, a directory equal to the one given
/// last time is passed as a clone of it (as an engine shares one `Arc<Directory>`), so the
/// session can tell it unchanged by its stamp; otherwise every call builds it anew.
fn session_plan(
    s: &mut PlanSession,
    w: &World,
    versioned: bool,
    shared: &mut Option<Option<Directory>>,
) -> Plan {
    let built = w.directory();
    let dir = match shared {
        None => built,
        Some(Some(last)) if *last == built => last.clone(),
        Some(last) => {
            *last = Some(built.clone());
            built
        }
    };
    let policies = w.policy_set();
    if versioned {
        s.plan(&dir, &policies, &w.state, &w.ctx).unwrap()
    } else {
        s.plan(&dir, &policies, &Unversioned(&w.state), &w.ctx)
            .unwrap()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// The incremental planner always returns the full plan of the same inputs: after each
    /// of a few single changes, after the plan is applied, and as time passes with the
    /// previous plan's pending releases; planning the same inputs again replans nothing.
    #[test]
    fn incremental_plan_equals_full_plan(
        g in gen(),
        changes in prop::collection::vec((0u8..8, 0usize..64, any::<u8>()), 1..5),
        days in 0i64..5,
        versioned in any::<bool>(),
        shared in any::<bool>(),
    ) {
        let mut session = PlanSession::new(Planner::new());
        let mut shared = shared.then_some(None);
        let mut g = g;
        let w = build(&g, false);
        let first = session_plan(&mut session, &w, versioned, &mut shared);
        prop_assert_eq!(&first, &full_plan(&w));
        let mut pending = first.pending_releases;
        let mut now = w.ctx.now;
        for (kind, i, v) in changes {
            mutate(&mut g, kind, i, v);
            let mut w = build(&g, false);
            now += chrono::Duration::days(days);
            w.ctx.now = now;
            w.ctx = w.ctx.clone().with_pending(&pending);
            let plan = session_plan(&mut session, &w, versioned, &mut shared);
            prop_assert_eq!(&plan, &full_plan(&w), "after change {} {} {}", kind, i, v);
            pending = plan.pending_releases.clone();
            // The world after the plan is applied.
            let mut applied = w;
            apply(&mut applied, &plan);
            applied.ctx = applied.ctx.clone().with_pending(&pending);
            let again = session_plan(&mut session, &applied, versioned, &mut shared);
            prop_assert_eq!(&again, &full_plan(&applied));
            // Nothing changed: nothing planned again, same plan.
            let same = session_plan(&mut session, &applied, versioned, &mut shared);
            prop_assert_eq!(&same, &again);
            prop_assert_eq!(session.last().replanned, 0);
        }
    }
}
