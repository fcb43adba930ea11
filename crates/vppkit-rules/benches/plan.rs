//! Planner at district scale: 100,000 devices, 50,000 users, 1,000 groups, 500 policies over
//! 2,000 assets in two locations, with about 140,000 licences already held and 2,000 pending
//! self-service requests.
//!
//! Run: `cargo bench -p vppkit-rules --bench plan`. Besides criterion's timings it prints the
//! peak resident memory of one plan and the Apple calls for one app to 100,000 devices
//! against one call per device.

use std::hint::black_box;
use std::time::Instant;

use chrono::{TimeZone, Utc};
use criterion::Criterion;
use vppkit_core::{
    AdamId, Asset, AssetCounts, AssetKey, ClientUserId, Holder, HoldingStatus, LocationId,
    Platform, PricingParam, ProductType, SerialNumber, TokenState, VppUser, VppUserStatus,
};
use vppkit_rules::{
    Directory, DirectoryDevice, DirectoryUser, EnrollmentType, Group, GroupId, InstallRequest,
    Intent, LicenceState, LicenceType, OsVersion, PlanContext, Planner, Policy, PolicyId,
    PolicySet, ReleaseRules, Target,
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
