//! Crashes during `users/create`, `assets/disassociate` and `assets/revoke`
//! (crash.rs covers `assets/associate`): for every step an apply goes
//! through, one process "dies" there (crash hook: the apply stops, nothing is
//! released or rolled back, the lease stays), a fresh engine on the same store
//! recovers and applies again, and the result must equal Apple's truth with
//! nothing done twice at Apple: one `users/create` (no 9716 "already
//! exists"), one disassociate or revoke, no licence released or spent twice.
//!
//! A failed check in a trial is a divergence (the trial's panic is caught).
//! The figures (trials, kills, divergences) are printed and asserted.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use vppkit_core::{AssetKey, ClientUserId, Holder, SerialNumber};
use vppkit_engine::{ApplyStep, Engine, EngineError, ProgressReporter, SyncKind};
use vppkit_rules::{
    Directory, DirectoryDevice, DirectoryUser, Group, GroupId, Intent, LicenceType, OsVersion,
    PlanContext, Policy, PolicyId, PolicySet, ReleaseRules, Target, UninstallRelease,
};
use vppkit_sim::{demo, EventType};

use crate::leases::{lab_plan, shortage_app};
use crate::support::*;

const STEPS: [ApplyStep; 6] = [
    ApplyStep::Reserved,
    ApplyStep::MarkedSent,
    ApplyStep::AppleAccepted,
    ApplyStep::EventRecorded,
    ApplyStep::OutcomeApplied,
    ApplyStep::CommandsSent,
];

fn crash_config(instance: &str) -> vppkit_engine::EngineConfig {
    config()
        .with_instance_id(instance)
        .with_lease_duration(Duration::from_millis(800))
        .with_event_polling(Duration::from_millis(40), Duration::from_millis(800))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    CreateUsers,
    Disassociate,
    Revoke,
}

/// What one apply of the scenario needs, and how to check the outcome.
struct Scenario {
    dir: Directory,
    set: PolicySet,
    /// Apple events of this kind the scenario makes (exactly one each time).
    kind: EventType,
    /// Pairs that must be gone from Apple afterwards (releases).
    gone: Vec<(AssetKey, Holder)>,
    /// Users that must exist once at Apple, created by us.
    users: Vec<ClientUserId>,
    /// Apple's assigned count of the shortage app expected at the end.
    assigned: u32,
}

async fn synced_world(backend: Backend) -> World {
    let w = WorldBuilder::new(backend).start().await;
    w.onboard("sph", demo::SPRINGFIELD_HIGH).await;
    w.engine
        .sync(&loc("sph"), SyncKind::Full, &ProgressReporter::none())
        .await
        .unwrap();
    w
}

fn assigned(w: &World) -> u32 {
    w.sim
        .control()
        .asset(demo::SPRINGFIELD_HIGH, &shortage_app())
        .unwrap()
        .counts
        .assigned
}

/// Sets the world up for `op` (the licences to release are given first, by
/// the world's own engine) and returns what the crashing apply is.
async fn scenario(w: &World, op: Op) -> Scenario {
    let app = shortage_app();
    let ctx = PlanContext::new(Utc::now());
    match op {
        Op::CreateUsers => {
            let book = free_book(w, demo::SPRINGFIELD_HIGH);
            let users: Vec<ClientUserId> = (1..=2)
                .map(|n| ClientUserId::new(format!("crash-user-{n}")).unwrap())
                .collect();
            let dir = demo_directory(
                "SPH",
                800,
                600,
                users
                    .iter()
                    .map(|u| DirectoryUser::new(u.clone()).with_email(format!("{u}@example.org")))
                    .collect(),
                // Each user has an enrolled device (the invitation goes there).
                users
                    .iter()
                    .zip(1..)
                    .map(|(u, n)| {
                        DirectoryDevice::new(
                            SerialNumber::new(demo::device_serial("SPH", n)).unwrap(),
                            vppkit_core::Platform::Ios,
                            OsVersion::parse("17.4").unwrap(),
                        )
                        .with_user(u.clone())
                    })
                    .collect(),
                vec![Group::new(
                    GroupId::new("readers").unwrap(),
                    users.clone(),
                    Vec::new(),
                )],
            );
            let set = PolicySet::new(
                ReleaseRules::default(),
                vec![Policy::new(
                    PolicyId::new("reading").unwrap(),
                    book.adam_id,
                    Target::Group(GroupId::new("readers").unwrap()),
                    Intent::Required,
                    LicenceType::User,
                )],
            )
            .unwrap();
            Scenario {
                dir,
                set,
                kind: EventType::Create,
                gone: Vec::new(),
                users,
                assigned: assigned(w),
            }
        }
        Op::Disassociate => {
            // Two lab devices get the app, then an Uninstall takes it back
            // (they report no inventory: released with the removal).
            let (lab, dir, set) = lab_plan(w, 2);
            w.engine.plan_and_apply(&dir, &set, &ctx).await.unwrap();
            let before = assigned(w);
            let uninstall = PolicySet::new(
                ReleaseRules::default().with_on_uninstall(UninstallRelease::WithRemoval),
                vec![Policy::new(
                    PolicyId::new("lab").unwrap(),
                    app.adam_id.clone(),
                    Target::Group(GroupId::new("lab").unwrap()),
                    Intent::Uninstall,
                    LicenceType::Device,
                )],
            )
            .unwrap();
            Scenario {
                dir,
                set: uninstall,
                kind: EventType::Disassociate,
                gone: lab
                    .into_iter()
                    .map(|s| (app.clone(), Holder::Device(s)))
                    .collect(),
                users: Vec::new(),
                assigned: before - 2,
            }
        }
        Op::Revoke => {
            // Two devices unknown to Apple get the app; then they leave the
            // directory: all their licences are ours, so they are revoked.
            let spare: Vec<SerialNumber> = (1..=2)
                .map(|n| SerialNumber::new(demo::device_serial("CRX", n)).unwrap())
                .collect();
            let devices: Vec<DirectoryDevice> = spare
                .iter()
                .map(|s| {
                    DirectoryDevice::new(
                        s.clone(),
                        vppkit_core::Platform::Ios,
                        OsVersion::parse("17.4").unwrap(),
                    )
                })
                .collect();
            let group = Group::new(GroupId::new("spare").unwrap(), Vec::new(), spare.clone());
            let with = demo_directory("SPH", 800, 600, Vec::new(), devices, vec![group]);
            let set = PolicySet::new(
                ReleaseRules::default(),
                vec![Policy::new(
                    PolicyId::new("spare").unwrap(),
                    app.adam_id.clone(),
                    Target::Group(GroupId::new("spare").unwrap()),
                    Intent::Required,
                    LicenceType::Device,
                )],
            )
            .unwrap();
            w.engine.plan_and_apply(&with, &set, &ctx).await.unwrap();
            let before = assigned(w);
            let without = demo_directory("SPH", 800, 600, Vec::new(), Vec::new(), Vec::new());
            let none = PolicySet::new(ReleaseRules::default(), Vec::new()).unwrap();
            Scenario {
                dir: without,
                set: none,
                kind: EventType::Revoke,
                gone: spare
                    .into_iter()
                    .map(|s| (app.clone(), Holder::Device(s)))
                    .collect(),
                users: Vec::new(),
                assigned: before - 2,
            }
        }
    }
}

/// One trial: returns whether the crash hook fired (a kill).
async fn trial(backend: Backend, op: Op, step: ApplyStep) -> bool {
    let w = synced_world(backend).await;
    let s = scenario(&w, op).await;
    let ctx = PlanContext::new(Utc::now());
    let events_before = w
        .sim
        .control()
        .events(demo::SPRINGFIELD_HIGH)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == s.kind)
        .count();
    // The plan does what the scenario is about.
    let plan = w.engine.plan(&s.dir, &s.set, &ctx).await.unwrap();
    let lp = &plan.locations[0];
    let planned = match op {
        Op::CreateUsers => lp.create_users.len(),
        Op::Disassociate => lp.disassociate.len(),
        Op::Revoke => lp.revoke.len(),
    };
    assert_eq!(planned, 1, "{op:?}: {:?}", plan.explain());

    // The first process dies at `step`.
    let (a, a_sink) = w
        .another_engine(crash_config("instance-a"), |b| {
            b.crash_hook(Arc::new(move |x| x == step))
        })
        .await;
    let killed = match a.plan_and_apply(&s.dir, &s.set, &ctx).await {
        Err(EngineError::Crashed(x)) => {
            assert_eq!(x, step);
            true
        }
        Ok(_) => false,
        Err(e) => panic!("{op:?} at {step:?}: {e}"),
    };
    drop(a);

    // A fresh process recovers, then applies until nothing is left to do.
    let (b, b_sink) = w.another_engine(crash_config("instance-b"), |b| b).await;
    converge(&b, op, step).await;
    let at_apple = |w: &World| {
        let apple_users = w.sim.control().users(demo::SPRINGFIELD_HIGH).unwrap();
        s.users
            .iter()
            .filter(|u| apple_users.iter().any(|x| &x.client_user_id == *u))
            .count()
    };
    let users_before = at_apple(&w);
    let mut users_reported = 0;
    for _ in 0..5 {
        let (plan, report) = b.plan_and_apply(&s.dir, &s.set, &ctx).await.unwrap();
        users_reported += report
            .locations
            .iter()
            .map(|l| l.users_created)
            .sum::<usize>();
        if plan.apple_calls() == 0 {
            break;
        }
    }
    // The report counts the users these applies really created: none that
    // the crashed process had created already.
    assert_eq!(
        users_reported,
        at_apple(&w) - users_before,
        "{op:?} at {step:?}: users reported created"
    );
    b.sync(&loc("sph"), SyncKind::Full, &ProgressReporter::none())
        .await
        .unwrap();
    w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;
    let at = format!("{op:?} at {step:?}");
    assert!(
        w.store
            .unfinished_operations(Some(&loc("sph")))
            .await
            .unwrap()
            .is_empty(),
        "{at}: operations left open"
    );
    let counts = w
        .store
        .holding_counts(&loc("sph"), &shortage_app())
        .await
        .unwrap();
    assert_eq!(
        (counts.reserved, counts.releasing),
        (0, 0),
        "{at}: {counts:?}"
    );
    // Once at Apple.
    let events: Vec<_> = w
        .sim
        .control()
        .events(demo::SPRINGFIELD_HIGH)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == s.kind)
        .collect();
    assert_eq!(
        events.len(),
        events_before + 1,
        "{at}: one {:?} at Apple: {events:?}",
        s.kind
    );
    for e in &events {
        assert!(
            e.failures.iter().all(|f| f.error_number != 9716),
            "{at}: a user created twice: {e:?}"
        );
    }
    assert_eq!(assigned(&w), s.assigned, "{at}: assigned count");
    let truth = w.truth(demo::SPRINGFIELD_HIGH);
    for pair in &s.gone {
        assert!(!truth.contains(pair), "{at}: {pair:?} still at Apple");
    }
    let apple_users = w.sim.control().users(demo::SPRINGFIELD_HIGH).unwrap();
    for u in &s.users {
        let n = apple_users
            .iter()
            .filter(|x| &x.client_user_id == u)
            .count();
        assert_eq!(n, 1, "{at}: {u} at Apple {n} times");
        let stored = w.store.user(&loc("sph"), u).await.unwrap();
        assert!(
            stored.as_ref().is_some_and(|r| r.managed_by_us),
            "{at}: {u} is ours in the store: {stored:?}"
        );
    }
    // Removals (the disassociate's MDM commands) went out for each device
    // with one command UUID, however often they were handed out.
    let mut removals: Vec<(String, String)> = a_sink
        .taken()
        .into_iter()
        .chain(b_sink.taken())
        .filter(|c| {
            matches!(
                c.command,
                vppkit_rules::MdmCommand::RemoveApplication { .. }
            )
        })
        .map(|c| (c.reference.device.to_string(), c.reference.command_uuid))
        .collect();
    removals.sort();
    removals.dedup();
    if op == Op::Disassociate {
        let devices: BTreeSet<_> = removals.iter().map(|(d, _)| d.clone()).collect();
        assert_eq!(devices.len(), 2, "{at}: {removals:?}");
        assert_eq!(removals.len(), 2, "{at}: one command per device");
    }
    killed
}

/// Recovers until nothing is open (what a dead process left is finished or
/// rolled back once its lease has run out).
async fn converge(b: &Engine, op: Op, step: ApplyStep) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = b.recover().await.unwrap();
        if r.still_open + r.busy.len() == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{op:?} at {step:?}: recovery did not converge: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs every step of `op` on every backend, each trial in its own task;
/// prints and checks the figures.
async fn crash_every_step(op: Op, steps: &[ApplyStep]) {
    let (mut trials, mut kills) = (0, 0);
    let mut divergences = Vec::new();
    for backend in backends() {
        for &step in steps {
            trials += 1;
            let run = std::panic::AssertUnwindSafe(trial(backend, op, step));
            match futures::FutureExt::catch_unwind(run).await {
                Ok(true) => kills += 1,
                Ok(false) => divergences.push(format!("{backend:?} {op:?} at {step:?}: no crash")),
                Err(panic) => {
                    let why = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                        .unwrap_or_default();
                    divergences.push(format!("{backend:?} {op:?} at {step:?}: {why}"));
                }
            }
        }
    }
    println!(
        "crash figures for {op:?}: {trials} trials, {kills} kills, {} divergences",
        divergences.len()
    );
    assert!(divergences.is_empty(), "{divergences:#?}");
    assert_eq!(kills, trials);
}

#[tokio::test]
async fn a_crash_at_any_step_of_users_create_never_creates_a_user_twice() {
    // users/create reserves nothing: every other step.
    crash_every_step(Op::CreateUsers, &STEPS[1..]).await;
}

#[tokio::test]
async fn a_crash_at_any_step_of_a_disassociate_converges_and_releases_once() {
    crash_every_step(Op::Disassociate, &STEPS).await;
}

#[tokio::test]
async fn a_crash_at_any_step_of_a_revoke_converges_and_releases_once() {
    crash_every_step(Op::Revoke, &STEPS).await;
}
