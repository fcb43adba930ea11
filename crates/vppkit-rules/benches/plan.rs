//! Planner at district scale: 100,000 devices, 50,000 users, 1,000 groups, 500 policies over
//! 2,000 assets in two locations, with about 140,000 licences already held and 2,000 pending
//! self-service requests.
//!
//! Run: `cargo bench -p vppkit-rules --bench plan`. Besides criterion's timings it prints the
//! peak resident memory of one plan, the cost of a re-plan after one change with
//! [`PlanSession`] against a full re-plan of the same inputs (the reconciler re-plans on
//! every purchase, accepted invitation and directory edit), and the Apple calls for one app
//! to 100,000 devices against one call per device.

use std::hint::black_box;
use std::time::Instant;

use chrono::{TimeZone, Utc};
use criterion::Criterion;
use vppkit_core::{
    AdamId, Asset, AssetCounts, AssetKey, ClientUserId, Holder, HoldingStatus, LocationId,
    Platform, PricingParam, ProductType, SerialNumber, TokenState, VppUser, VppUserStatus,
};
use vppkit_rules::{
    DeviceCommand, Directory, DirectoryDevice, DirectoryUser, EnrollmentType, Group, GroupId,
    InstallRequest, Intent, LicenceState, LicenceType, LicenceView, OsVersion, Plan, PlanContext,
    PlanSession, Planner, Policy, PolicyId, PolicySet, ReleaseRules, Target,
};

const DEVICES: usize = 100_000;
const USERS: usize = 50_000;
const GROUPS: usize = 1_000;
const POLICIES: usize = 500;
const ASSETS: usize = 2_000;

/// A small deterministic generator (xorshift), so every run plans the same world.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

struct World {
    users: Vec<DirectoryUser>,
    devices: Vec<DirectoryDevice>,
    groups: Vec<Group>,
    policies: PolicySet,
    state: LicenceState,
    ctx: PlanContext,
}

fn serial(i: usize) -> SerialNumber {
    SerialNumber::new(format!("SN{i:08}")).unwrap()
}

fn uid(i: usize) -> ClientUserId {
    ClientUserId::new(format!("user-{i:06}")).unwrap()
}

fn key(a: usize) -> AssetKey {
    AssetKey::new(AdamId::from(1_000_000 + a as u64), PricingParam::Stdq)
}

fn build() -> World {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let os = OsVersion::parse("17.5").unwrap();
    let users: Vec<DirectoryUser> = (0..USERS)
        .map(|i| {
            let u = DirectoryUser::new(uid(i));
            if i % 2 == 0 {
                u.with_managed_apple_id(format!("user-{i}@district.example"))
            } else {
                u.with_email(format!("user-{i}@mail.example"))
            }
        })
        .collect();
    // Half the devices belong to a user; the other half are ADE cart devices without a user.
    let devices: Vec<DirectoryDevice> = (0..DEVICES)
        .map(|i| {
            let d = DirectoryDevice::new(serial(i), Platform::Ios, os.clone());
            if i < USERS {
                d.with_user(uid(i))
            } else {
                d.with_enrollment(EnrollmentType::Automated)
                    .supervised(true)
            }
        })
        .collect();
    // 800 user groups of 60, 200 device groups of 250.
    let groups: Vec<Group> = (0..GROUPS)
        .map(|g| {
            let id = GroupId::new(format!("group-{g:04}")).unwrap();
            if g < 800 {
                let users = (0..60)
                    .map(|_| uid(rng.below(USERS)))
                    .collect::<std::collections::BTreeSet<_>>();
                Group::new(id, users.into_iter().collect(), vec![])
            } else {
                let devs = (0..250)
                    .map(|_| serial(USERS + rng.below(DEVICES - USERS)))
                    .collect::<std::collections::BTreeSet<_>>();
                Group::new(id, vec![], devs.into_iter().collect())
            }
        })
        .collect();

    // Two locations: A owns every asset, B owns the first 200 too.
    let a = LocationId::new("district-a").unwrap();
    let b = LocationId::new("district-b").unwrap();
    let mut state = LicenceState::new();
    state.add_location(a.clone(), TokenState::Valid);
    state.add_location(b.clone(), TokenState::Valid);
    for i in 0..ASSETS {
        let book = i % 20 == 19;
        // Apps for everyone (0 to 20) are bought for everyone; 21 to 40 are scarce (100
        // licences, so the waitlist is exercised); the rest have 500 to 20,500.
        let total = match i {
            0..=20 => 150_000,
            21..=40 => 100,
            _ => 500 + rng.below(20_000) as u32,
        };
        let asset = Asset::new(
            key(i),
            if book {
                ProductType::Book
            } else {
                ProductType::App
            },
            !book,
            !book,
            vec![Platform::Ios, Platform::MacOs],
            AssetCounts::new(total, 0, total, 0),
        );
        state.add_asset(&a, asset.clone(), Some(format!("com.example.app{i}")));
        if i < 200 {
            state.add_asset(&b, asset, Some(format!("com.example.app{i}")));
        }
    }
    // 60% of users are associated in A.
    for i in 0..USERS {
        if i % 5 < 3 {
            state.set_user(&a, VppUser::new(uid(i), VppUserStatus::Associated));
        }
    }
    // 150,000 licences already held.
    for _ in 0..150_000 {
        let asset = 1 + rng.below(ASSETS - 1);
        if asset % 20 == 19 {
            continue;
        }
        let holder = if rng.below(2) == 0 {
            Holder::Device(serial(rng.below(DEVICES)))
        } else {
            Holder::User(uid(rng.below(USERS)))
        };
        state.set_holding(&a, &key(asset), holder, HoldingStatus::Active);
    }

    // 500 policies: 250 user-licensed Required, 100 device-licensed Required to device groups,
    // 80 Available, 50 Uninstall, 19 to all users and one app to every device.
    let mut policies = Vec::new();
    for p in 0..POLICIES {
        let id = PolicyId::new(format!("policy-{p:03}")).unwrap();
        let asset = match p {
            0 => 0,
            481.. => p - 480,
            _ => 21 + rng.below(ASSETS - 21),
        };
        let adam = key(asset).adam_id;
        let book = asset % 20 == 19;
        let user_group = || Target::Group(GroupId::new(format!("group-{:04}", p % 800)).unwrap());
        let device_group =
            || Target::Group(GroupId::new(format!("group-{:04}", 800 + p % 200)).unwrap());
        let (target, intent, licence) = match p {
            0 => (Target::AllDevices, Intent::Required, LicenceType::Device),
            1..=250 => (user_group(), Intent::Required, LicenceType::User),
            251..=350 if !book => (device_group(), Intent::Required, LicenceType::Device),
            251..=350 => (user_group(), Intent::Required, LicenceType::User),
            351..=430 => (user_group(), Intent::Available, LicenceType::User),
            431..=480 if !book => (device_group(), Intent::Uninstall, LicenceType::Device),
            431..=480 => (user_group(), Intent::Uninstall, LicenceType::User),
            _ if book => (Target::AllUsers, Intent::Required, LicenceType::User),
            _ => (Target::AllUsers, Intent::Required, LicenceType::Device),
        };
        policies.push(Policy::new(id, adam, target, intent, licence).with_priority((p % 3) as i32));
    }
    let policies = PolicySet::new(ReleaseRules::default(), policies).unwrap();
    let now = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
    let requests = (0..2_000)
        .map(|i| InstallRequest::new(serial(rng.below(USERS)), key(1 + i % (ASSETS - 1)).adam_id))
        .collect();
    World {
        users,
        devices,
        groups,
        policies,
        state,
        ctx: PlanContext::new(now).with_requests(requests),
    }
}

fn status_kib(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// CPU time of this thread in seconds (`/proc/thread-self/schedstat`, nanoseconds on CPU):
/// on a shared, loaded machine it is steadier than wall time.
fn cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns as f64 / 1e9)
}

fn report(w: &World, dir: &Directory) {
    let rss_world = status_kib("VmRSS:");
    // Reset the peak so VmHWM covers only the plan (Linux: writing 5 to clear_refs).
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let (t, c) = (Instant::now(), cpu_seconds());
    let plan = Planner::new()
        .plan(dir, &w.policies, &w.state, &w.ctx)
        .unwrap();
    let (took, took_cpu) = (t.elapsed(), cpu_seconds().zip(c).map(|(b, a)| b - a));
    let peak = status_kib("VmHWM:");
    let (t, c) = (Instant::now(), cpu_seconds());
    let again = Directory::new(w.users.clone(), w.devices.clone(), w.groups.clone()).unwrap();
    let (baseline, baseline_cpu) = (t.elapsed(), cpu_seconds().zip(c).map(|(b, a)| b - a));
    drop(again);
    eprintln!("--- vppkit-rules plan at scale ---");
    eprintln!(
        "plan: {:.3} s wall, {:.3} s CPU; baseline (build and index the directory): {:.3} s wall, {:.3} s CPU; ratio {:.1}x (CPU)",
        took.as_secs_f64(),
        took_cpu.unwrap_or(f64::NAN),
        baseline.as_secs_f64(),
        baseline_cpu.unwrap_or(f64::NAN),
        took_cpu.zip(baseline_cpu).map_or(f64::NAN, |(a, b)| a / b)
    );
    eprintln!(
        "plan: {} Apple calls, {} MDM commands, {} waitlisted, {} blocked",
        plan.apple_calls(),
        plan.commands.len(),
        plan.waitlisted.len(),
        plan.blocked.len()
    );
    eprintln!(
        "plan size: {} commands x {} bytes inline = {:.0} MiB before their strings (serial, adam id, location, asset, holder, policy id each)",
        plan.commands.len(),
        size_of::<DeviceCommand>(),
        (plan.commands.len() * size_of::<DeviceCommand>()) as f64 / (1024.0 * 1024.0)
    );
    match (rss_world, peak) {
        (Some(r), Some(p)) => eprintln!(
            "memory: {:.0} MiB resident with the world loaded; peak during plan {:.0} MiB{} (+{:.0} MiB)",
            r as f64 / 1024.0,
            p as f64 / 1024.0,
            if reset { "" } else { " (peak not reset: process peak)" },
            p.saturating_sub(r) as f64 / 1024.0
        ),
        _ => eprintln!("memory: /proc/self/status not readable"),
    }

    // Steady state: the same world once the first plan was applied (what a scheduled run
    // usually sees).
    let mut applied = w.state.clone();
    applied.apply(&plan);
    drop(plan);
    let (t, c) = (Instant::now(), cpu_seconds());
    let steady = Planner::new()
        .plan(dir, &w.policies, &applied, &w.ctx)
        .unwrap();
    let (took, took_cpu) = (t.elapsed(), cpu_seconds().zip(c).map(|(b, a)| b - a));
    eprintln!(
        "re-plan after applying: {:.3} s wall, {:.3} s CPU; {} Apple calls, {} MDM commands",
        took.as_secs_f64(),
        took_cpu.unwrap_or(f64::NAN),
        steady.apple_calls(),
        steady.commands.len()
    );

    one_change(w, dir, &applied);

    // One app to every device: the plan's calls against one call per device.
    let one = PolicySet::new(
        ReleaseRules::default(),
        vec![Policy::new(
            PolicyId::new("one-app").unwrap(),
            key(0).adam_id,
            Target::AllDevices,
            Intent::Required,
            LicenceType::Device,
        )],
    )
    .unwrap();
    let mut empty = LicenceState::new();
    let a = LocationId::new("district-a").unwrap();
    empty.add_location(a.clone(), TokenState::Valid);
    empty.add_asset(
        &a,
        Asset::new(
            key(0),
            ProductType::App,
            true,
            true,
            vec![Platform::Ios],
            AssetCounts::new(150_000, 0, 150_000, 0),
        ),
        None,
    );
    let p = Planner::new()
        .plan(dir, &one, &empty, &PlanContext::new(w.ctx.now))
        .unwrap();
    let per_device = DEVICES;
    eprintln!(
        "one app to {DEVICES} devices: {} associate calls (25 assets x 1,000 serials each) against {per_device} calls one per device: {:.0}x fewer",
        p.apple_calls(),
        per_device as f64 / p.apple_calls() as f64
    );
}

/// One change of the steady state, as the reconciler sees it.
struct Change {
    name: &'static str,
    dir: Directory,
    policies: PolicySet,
    state: LicenceState,
}

/// The changes measured: what the reconciler re-plans on, and two that change ids.
fn changes(w: &World, dir: &Directory, applied: &LicenceState) -> Vec<Change> {
    let a = LocationId::new("district-a").unwrap();
    let same = |name, state: LicenceState| Change {
        name,
        dir: dir.clone(),
        policies: w.policies.clone(),
        state,
    };
    let mut out = Vec::new();
    // A purchase: 50 more licences of a scarce app (21 to 40 have 100; some are waitlisted).
    let mut purchase = applied.clone();
    let scarce = (21..=40).find(|&i| i % 20 != 19).expect("a scarce app");
    let info = applied
        .assets(&a)
        .into_iter()
        .find(|x| x.asset.key == key(scarce))
        .unwrap();
    let mut asset = info.asset.clone();
    asset.counts = AssetCounts::new(150, 0, 150, 0);
    purchase.add_asset(&a, asset, info.bundle_id);
    out.push(same("purchase of 50 licences of one app", purchase));
    // An accepted invitation: a Registered user becomes Associated.
    let mut accepted = applied.clone();
    let registered = applied
        .users(&a)
        .into_iter()
        .find(|u| u.status == VppUserStatus::Registered)
        .expect("a registered user");
    accepted.set_user(
        &a,
        VppUser::new(registered.client_user_id, VppUserStatus::Associated),
    );
    out.push(same("accepted invitation", accepted));
    // A directory edit: one user joins one user group.
    let mut groups = w.groups.clone();
    groups[5].users.push(uid(USERS - 1));
    out.push(Change {
        name: "group membership (one user joins a group)",
        dir: Directory::new(w.users.clone(), w.devices.clone(), groups).unwrap(),
        policies: w.policies.clone(),
        state: applied.clone(),
    });
    // A policy edited: one user-group policy's priority.
    let mut edited = w.policies.clone();
    edited.policies[7].priority += 5;
    out.push(Change {
        name: "policy edited (priority)",
        dir: dir.clone(),
        policies: edited,
        state: applied.clone(),
    });
    // A device added: ids move, so the session plans everything.
    let mut devices = w.devices.clone();
    let os = OsVersion::parse("17.5").unwrap();
    devices.push(DirectoryDevice::new(serial(DEVICES), Platform::Ios, os).with_user(uid(3)));
    out.push(Change {
        name: "device added (ids move: full re-plan)",
        dir: Directory::new(w.users.clone(), devices, w.groups.clone()).unwrap(),
        policies: w.policies.clone(),
        state: applied.clone(),
    });
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Re-plans after one change with a [`PlanSession`] that planned the steady state before,
/// against a full plan of the same inputs (the baseline, same run). Each figure is the
/// median of 5 runs; every incremental plan is checked equal to the full one.
fn one_change(w: &World, dir: &Directory, applied: &LicenceState) {
    const RUNS: usize = 5;
    let mut session = PlanSession::new(Planner::new());
    let t = Instant::now();
    session.plan(dir, &w.policies, applied, &w.ctx).unwrap();
    eprintln!(
        "session: first plan of the steady state {:.0} ms (full, {} apps)",
        t.elapsed().as_secs_f64() * 1e3,
        session.last().apps
    );
    let mut worst: Option<(f64, f64, &'static str)> = None;
    for change in changes(w, dir, applied) {
        let mut inc = Vec::new();
        let mut full = Vec::new();
        let mut cpu = Vec::new();
        let mut replanned = 0;
        let mut is_full = false;
        for _ in 0..RUNS {
            // Back to the steady state (itself a one-change re-plan, not timed), then the change.
            session.plan(dir, &w.policies, applied, &w.ctx).unwrap();
            let (t, c) = (Instant::now(), cpu_seconds());
            let plan = session
                .plan(&change.dir, &change.policies, &change.state, &w.ctx)
                .unwrap();
            inc.push(t.elapsed().as_secs_f64() * 1e3);
            cpu.push(
                cpu_seconds()
                    .zip(c)
                    .map_or(f64::NAN, |(b, a)| (b - a) * 1e3),
            );
            replanned = session.last().replanned;
            is_full = session.last().full;
            let t = Instant::now();
            let expected: Plan = Planner::new()
                .plan(&change.dir, &change.policies, &change.state, &w.ctx)
                .unwrap();
            full.push(t.elapsed().as_secs_f64() * 1e3);
            assert_eq!(plan, expected, "incremental plan differs: {}", change.name);
        }
        let (inc, full, cpu) = (median(inc), median(full), median(cpu));
        eprintln!(
            "  {}: {:.1} ms wall, {:.1} ms CPU, {} of {} apps planned again{}; baseline (full re-plan of the same inputs): {:.0} ms wall; ratio {:.3}",
            change.name,
            inc,
            cpu,
            replanned,
            session.last().apps,
            if is_full { " (full)" } else { "" },
            full,
            inc / full
        );
        if !is_full && worst.is_none_or(|(x, _, _)| inc > x) {
            worst = Some((inc, full, change.name));
        }
    }
    if let Some((inc, full, name)) = worst {
        eprintln!(
            "re-plan after one change: {inc:.1} ms wall (the slowest of the incremental changes above: {name}); baseline (full re-plan of the same inputs): {full:.0} ms wall; ratio {:.3}",
            inc / full
        );
    }
}

fn bench(c: &mut Criterion) {
    let w = build();
    let dir = Directory::new(w.users.clone(), w.devices.clone(), w.groups.clone()).unwrap();
    report(&w, &dir);
    let mut applied = w.state.clone();
    applied.apply(
        &Planner::new()
            .plan(&dir, &w.policies, &w.state, &w.ctx)
            .unwrap(),
    );
    let mut g = c.benchmark_group("rules");
    g.sample_size(10);
    g.bench_function("plan_100k_devices_500_policies", |b| {
        b.iter_with_large_drop(|| {
            Planner::new()
                .plan(black_box(&dir), &w.policies, &w.state, &w.ctx)
                .unwrap()
        })
    });
    g.bench_function("replan_after_apply", |b| {
        b.iter_with_large_drop(|| {
            Planner::new()
                .plan(black_box(&dir), &w.policies, &applied, &w.ctx)
                .unwrap()
        })
    });
    // One change back and forth: each call re-plans the other state.
    let purchase = changes(&w, &dir, &applied).into_iter().next().unwrap();
    let mut session = PlanSession::new(Planner::new());
    session.plan(&dir, &w.policies, &applied, &w.ctx).unwrap();
    let mut flip = false;
    g.bench_function("replan_after_one_change_incremental", |b| {
        b.iter_with_large_drop(|| {
            flip = !flip;
            let state = if flip { &purchase.state } else { &applied };
            session
                .plan(black_box(&dir), &w.policies, state, &w.ctx)
                .unwrap()
        })
    });
    g.bench_function("replan_after_one_change_full_baseline", |b| {
        b.iter_with_large_drop(|| {
            Planner::new()
                .plan(black_box(&dir), &w.policies, &purchase.state, &w.ctx)
                .unwrap()
        })
    });
    g.bench_function("baseline_build_directory", |b| {
        b.iter_with_large_drop(|| {
            Directory::new(w.users.clone(), w.devices.clone(), w.groups.clone()).unwrap()
        })
    });
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
