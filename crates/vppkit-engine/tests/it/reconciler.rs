//! The engine as a reconciler: the desired state is stored, and the scheduler's
//! loop converges to it by itself (purchases, accepted invitations), the outbox
//! hands out every command once per licence, the blast-radius guard holds a
//! broken directory, and another MDM's users are left alone.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use vppkit_core::{AdamId, AssetKey, ClientUserId, Holder, Platform, PricingParam, SerialNumber};
use vppkit_engine::{
    CommandSink, DesiredState, Engine, ProgressReporter, QueuedCommand, SinkError, SyncKind,
};
use vppkit_rules::{
    BlockReason, Directory, DirectoryDevice, DirectoryUser, Group, GroupId, Intent, LicenceType,
    MdmCommand, OsVersion, Policy, PolicyId, PolicySet, ReleaseRules, Target,
};
use vppkit_sim::demo;

use crate::support::*;

fn key(adam: u64) -> AssetKey {
    AssetKey::new(AdamId::from(adam), PricingParam::Stdq)
}

fn device(prefix: &str, n: u32) -> DirectoryDevice {
    DirectoryDevice::new(
        SerialNumber::new(demo::device_serial(prefix, n)).unwrap(),
        Platform::Ios,
        OsVersion::parse("17.4").unwrap(),
    )
}

fn policy(id: &str, adam: u64, group: &str, intent: Intent, licence: LicenceType) -> Policy {
    Policy::new(
        PolicyId::new(id).unwrap(),
        AdamId::from(adam),
        Target::Group(GroupId::new(group).unwrap()),
        intent,
        licence,
    )
}

fn set(list: Vec<Policy>) -> PolicySet {
    PolicySet::new(ReleaseRules::default(), list).unwrap()
}

/// Devices of Springfield High that do not hold `app` at Apple yet.
fn free_devices(w: &World, app: &AssetKey, n: usize) -> Vec<SerialNumber> {
    let held: BTreeSet<Holder> = w
        .truth(demo::SPRINGFIELD_HIGH)
        .into_iter()
        .filter(|(a, _)| a == app)
        .map(|(_, h)| h)
        .collect();
    (1..=800)
        .map(|i| SerialNumber::new(demo::device_serial("SPH", i)).unwrap())
        .filter(|s| !held.contains(&Holder::Device(s.clone())))
        .take(n)
        .collect()
}

fn lab_directory(devices: &[SerialNumber]) -> Directory {
    let group = Group::new(GroupId::new("lab").unwrap(), Vec::new(), devices.to_vec());
    demo_directory("SPH", 800, 600, Vec::new(), Vec::new(), vec![group])
}

/// The policies that give the shortage app to the "lab" group as Required device licences.
fn lab_policies() -> PolicySet {
    set(vec![policy(
        "lab",
        demo::SHORTAGE_APP,
        "lab",
        Intent::Required,
        LicenceType::Device,
    )])
}

/// The lab of `devices`, given the shortage app ([`lab_policies`]).
fn lab_desired(devices: &[SerialNumber]) -> DesiredState {
    DesiredState::new(lab_directory(devices), lab_policies())
}

fn installs_for(sink: &RecordingSink, app: &AssetKey) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for c in sink.commands.lock().unwrap().iter() {
        if matches!(&c.command, MdmCommand::InstallApplication(_))
            && c.command.adam_id() == Some(&app.adam_id)
        {
            *out.entry(c.reference.device.to_string()).or_default() += 1;
        }
    }
    out
}

async fn synced(w: &World) {
    w.engine
        .sync(&loc("sph"), SyncKind::Full, &ProgressReporter::none())
        .await
        .unwrap();
}

/// Runs the engine's scheduler until the returned sender is dropped or fired.
fn run_loop(engine: &Engine) -> tokio::sync::oneshot::Sender<()> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (scheduler, _handle) = engine.scheduler(ProgressReporter::none());
    tokio::spawn(scheduler.run(async move {
        let _ = stopped.await;
    }));
    stop
}

/// Springfield High synced, a lab of `n` devices that wants the shortage app
/// (5 licences free) stored as the first desired-state revision, and the loop
/// running until the returned sender fires; returns once the 5 free licences
/// are handed out.
async fn lab_short_of_licences(
    w: &World,
    n: usize,
) -> (
    AssetKey,
    Vec<SerialNumber>,
    tokio::sync::oneshot::Sender<()>,
) {
    w.onboard("sph", demo::SPRINGFIELD_HIGH).await;
    synced(w).await;
    let app = key(demo::SHORTAGE_APP);
    let lab = free_devices(w, &app, n);
    let revision = w.engine.set_desired_state(lab_desired(&lab)).await.unwrap();
    assert_eq!(revision, 1);
    let stop = run_loop(&w.engine);
    eventually(
        "the free licences handed out",
        Duration::from_secs(30),
        || async { installs_for(&w.sink, &app).len() == 5 },
    )
    .await;
    (app, lab, stop)
}

/// Buys `count` licences of `app` in the simulator (nothing else) and waits
/// until `installs` devices got their install.
async fn buy_until_drained(w: &World, app: &AssetKey, count: u32, installs: usize) {
    w.sim
        .control()
        .buy_licences(demo::SPRINGFIELD_HIGH, app, count)
        .unwrap();
    eventually("the waitlist drained", Duration::from_secs(30), || async {
        installs_for(&w.sink, app).len() == installs
    })
    .await;
}

/// A shortage waitlists; buying licences in the simulator is the only call
/// made afterwards, and the loop drains the waitlist (the purchase
/// notification is a hint: counts re-read, a reconcile pass run).
#[tokio::test]
async fn a_waitlist_drains_under_the_loop_when_licences_are_bought() {
    for backend in backends() {
        let w = WorldBuilder::new(backend)
            .webhook()
            .config(|c| c.with_reconcile_interval(Duration::from_secs(3600)))
            .start()
            .await;
        let (app, lab, stop) = lab_short_of_licences(&w, 20).await;
        let waiting = |engine: Engine| async move {
            engine
                .report(&loc("sph"), vppkit_engine::ReportOptions::summary())
                .await
                .unwrap()
                .apps
                .iter()
                .find(|a| a.asset == key(demo::SHORTAGE_APP))
                .map_or(0, |a| a.waitlist.len())
        };
        assert_eq!(waiting(w.engine.clone()).await, 15);

        // The purchase, and nothing else.
        buy_until_drained(&w, &app, 15, 20).await;
        let _ = stop.send(());
        let installs = installs_for(&w.sink, &app);
        assert!(
            installs.values().all(|n| *n == 1),
            "one install each: {installs:?}"
        );
        for d in &lab {
            assert!(w
                .truth(demo::SPRINGFIELD_HIGH)
                .contains(&(app.clone(), Holder::Device(d.clone()))));
        }
        eventually(
            "the report's waitlist emptied",
            Duration::from_secs(10),
            || {
                let e = w.engine.clone();
                async move { waiting(e).await == 0 }
            },
        )
        .await;
        w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;
    }
}

/// When Springfield High was last synced.
async fn last_sync_at(w: &World) -> Option<chrono::DateTime<chrono::Utc>> {
    let status = w.store.sync_status(&loc("sph")).await.unwrap();
    status.last_summary.map(|s| s.at)
}

/// No notification comes (no webhook configured, or Apple's was lost) and
/// the next sync is hours away: the loop's slow tick re-reads the licence
/// counts, sees the purchase and drains the waitlist.
#[tokio::test]
async fn a_purchase_whose_notification_never_came_is_seen_by_the_slow_tick() {
    for backend in backends() {
        let w = WorldBuilder::new(backend)
            .config(|c| {
                c.with_reconcile_interval(Duration::from_millis(300))
                    .with_sync_interval(Duration::from_secs(3600), Duration::ZERO)
            })
            .start()
            .await;
        let (app, _, stop) = lab_short_of_licences(&w, 8).await;
        let syncs_before = last_sync_at(&w).await;

        buy_until_drained(&w, &app, 3, 8).await;
        let _ = stop.send(());
        let syncs_after = last_sync_at(&w).await;
        assert_eq!(syncs_before, syncs_after, "no sync ran: the counts alone");
        w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;
    }
}

/// A user created with an email waits for the invitation; accepting it in the
/// simulator (a USER_ASSOCIATED notification) is enough for the loop to
/// assign the licence and queue the install, without a scheduled sync.
#[tokio::test]
async fn an_accepted_invitation_gets_its_install_from_the_loop() {
    for backend in backends() {
        let w = WorldBuilder::new(backend)
            .webhook()
            .config(|c| c.with_reconcile_interval(Duration::from_secs(3600)))
            .start()
            .await;
        w.onboard("sph", demo::SPRINGFIELD_HIGH).await;
        synced(&w).await;
        let app = key(demo::USER_ONLY_APP);
        let ana = ClientUserId::new("ana-loop-user").unwrap();
        let users = vec![DirectoryUser::new(ana.clone()).with_email("ana@example.org")];
        let devices = vec![device("SPH", 1).with_user(ana.clone())];
        let readers = Group::new(GroupId::new("art").unwrap(), vec![ana.clone()], Vec::new());
        let dir = demo_directory("SPH", 800, 600, users, devices, vec![readers]);
        w.engine
            .set_desired_state(DesiredState::new(
                dir,
                set(vec![policy(
                    "art",
                    demo::USER_ONLY_APP,
                    "art",
                    Intent::Required,
                    LicenceType::User,
                )]),
            ))
            .await
            .unwrap();
        let stop = run_loop(&w.engine);
        eventually("the invitation sent", Duration::from_secs(30), || async {
            w.sink
                .commands
                .lock()
                .unwrap()
                .iter()
                .any(|c| matches!(c.command, MdmCommand::InviteToProgram { .. }))
        })
        .await;
        assert!(
            installs_for(&w.sink, &app).is_empty(),
            "no licence before the user accepts"
        );
        w.sim
            .control()
            .accept_invitation(demo::SPRINGFIELD_HIGH, ana.as_str())
            .unwrap();
        eventually(
            "the install after the acceptance",
            Duration::from_secs(30),
            || async { !installs_for(&w.sink, &app).is_empty() },
        )
        .await;
        let _ = stop.send(());
        assert!(w
            .truth(demo::SPRINGFIELD_HIGH)
            .contains(&(app.clone(), Holder::User(ana.clone()))));
        let invites = w
            .sink
            .commands
            .lock()
            .unwrap()
            .iter()
            .filter(|c| matches!(c.command, MdmCommand::InviteToProgram { .. }))
            .count();
        assert_eq!(invites, 1, "the invitation is not repeated by later passes");
        w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;
    }
}

/// Licences refunded before a pass: what is handed out shrinks in the
/// documented order (higher priority first, then the stable holder order),
/// and the rest is waitlisted in that order.
#[tokio::test]
async fn a_refund_shrinks_what_is_handed_out_in_the_documented_order() {
    for backend in backends() {
        let w = WorldBuilder::new(backend).start().await;
        w.onboard("sph", demo::SPRINGFIELD_HIGH).await;
        synced(&w).await;
        let app = key(demo::SHORTAGE_APP);
        let devices = free_devices(&w, &app, 6);
        let (high, low) = devices.split_at(3);
        let groups = vec![
            Group::new(GroupId::new("high").unwrap(), Vec::new(), high.to_vec()),
            Group::new(GroupId::new("low").unwrap(), Vec::new(), low.to_vec()),
        ];
        let dir = demo_directory("SPH", 800, 600, Vec::new(), Vec::new(), groups);
        let policies = set(vec![
            policy(
                "a-low",
                demo::SHORTAGE_APP,
                "low",
                Intent::Required,
                LicenceType::Device,
            )
            .with_priority(1),
            policy(
                "b-high",
                demo::SHORTAGE_APP,
                "high",
                Intent::Required,
                LicenceType::Device,
            )
            .with_priority(10),
        ]);
        // 5 free, then 1 refunded: 4 to hand out among 6.
        w.sim
            .control()
            .refund_licences(demo::SPRINGFIELD_HIGH, &app, 1)
            .unwrap();
        synced(&w).await;
        w.engine
            .set_desired_state(DesiredState::new(dir, policies))
            .await
            .unwrap();
        let pass = w.engine.reconcile(&loc("sph")).await.unwrap();
        let got: BTreeSet<String> = installs_for(&w.sink, &app).into_keys().collect();
        let mut expected: BTreeSet<String> = high.iter().map(ToString::to_string).collect();
        expected.insert(low[0].to_string());
        assert_eq!(got, expected, "{:?}", pass.plan.explain());
        let waiting: Vec<String> = pass
            .plan
            .waitlisted
            .iter()
            .map(|x| x.holder.to_string())
            .collect();
        assert_eq!(
            waiting,
            [
                Holder::Device(low[1].clone()).to_string(),
                Holder::Device(low[2].clone()).to_string()
            ]
        );
        w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;
    }
}

/// A sink that fails every call (the MDM's queue is down).
struct DownSink;

#[async_trait]
impl CommandSink for DownSink {
    async fn send(&self, _: Vec<QueuedCommand>) -> Result<(), SinkError> {
        Err(SinkError::new("MDM queue down"))
    }
}

/// An instance plans and applies, Apple confirms, and the process dies
/// before its commands reach the MDM: another instance (a restart) hands every
/// one of them out, with the UUIDs they were stored with.
#[tokio::test]
async fn a_restart_between_plan_and_hand_off_loses_no_command() {
    for backend in backends() {
        let w = WorldBuilder::new(backend).start().await;
        w.onboard("sph", demo::SPRINGFIELD_HIGH).await;
        synced(&w).await;
        let app = key(demo::SHORTAGE_APP);
        let lab = free_devices(&w, &app, 4);
        let (down, _) = w
            .another_engine(config().with_instance_id("dies"), |b| {
                b.sink(Arc::new(DownSink))
            })
            .await;
        down.set_desired_state(lab_desired(&lab)).await.unwrap();
        let pass = down.reconcile(&loc("sph")).await.unwrap();
        assert_eq!(pass.applied.locations[0].confirmed, 4);
        let stored: BTreeSet<String> = down
            .outbox(None, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.command.reference.command_uuid)
            .collect();
        assert_eq!(stored.len(), 4);
        drop(down);

        let recovered = w.engine.recover().await.unwrap();
        assert_eq!(recovered.commands_handed_out, 4);
        let handed: BTreeSet<String> = w
            .sink
            .taken()
            .into_iter()
            .map(|c| c.reference.command_uuid)
            .collect();
        assert_eq!(handed, stored, "the stored UUIDs, each once");
        assert_eq!(w.engine.recover().await.unwrap().commands_handed_out, 0);
    }
}

/// The desired state goes from some devices to an empty directory: the plan
/// would take every licence back, so the guard holds it; nothing is released
/// at Apple until the revision is confirmed.
#[tokio::test]
async fn the_blast_radius_guard_holds_an_empty_directory_until_confirmed() {
    for backend in backends() {
        let w = WorldBuilder::new(backend).start().await;
        w.onboard("sph", demo::SPRINGFIELD_HIGH).await;
        synced(&w).await;
        let app = key(demo::SHORTAGE_APP);
        let lab = free_devices(&w, &app, 5);
        let policies = lab_policies();
        w.engine.set_desired_state(lab_desired(&lab)).await.unwrap();
        w.engine.reconcile(&loc("sph")).await.unwrap();
        let before = w.truth(demo::SPRINGFIELD_HIGH);
        for d in &lab {
            assert!(before.contains(&(app.clone(), Holder::Device(d.clone()))));
        }

        // A broken export: nobody left.
        let empty = Directory::new(Vec::new(), Vec::new(), Vec::new()).unwrap();
        let revision = w
            .engine
            .set_desired_state(DesiredState::new(empty, policies))
            .await
            .unwrap();
        let pass = w.engine.reconcile(&loc("sph")).await.unwrap();
        assert_eq!(pass.held.len(), 1, "{:?}", pass.held);
        let held = &pass.held[0];
        assert_eq!((held.location.as_str(), held.revision), ("sph", revision));
        assert!(held.would_release >= 5, "{held:?}");
        assert!(!held.steps.is_empty());
        // Each step in words, the reason as a phrase (not a Rust variant name).
        for step in &held.steps {
            assert!(
                step.contains("gone from the directory") && !step.contains("Removed"),
                "{step}"
            );
        }
        assert_eq!(w.truth(demo::SPRINGFIELD_HIGH), before, "nothing released");
        // Still held on the next pass (the loop does not wear it down).
        let again = w.engine.reconcile(&loc("sph")).await.unwrap();
        assert_eq!(again.held.len(), 1);
        assert_eq!(w.truth(demo::SPRINGFIELD_HIGH), before);

        // A stale revision cannot be confirmed; the current one can.
        assert!(w.engine.confirm_releases(revision - 1).await.is_err());
        w.engine.confirm_releases(revision).await.unwrap();
        let confirmed = w.engine.reconcile(&loc("sph")).await.unwrap();
        assert!(confirmed.held.is_empty());
        let after = w.truth(demo::SPRINGFIELD_HIGH);
        for d in &lab {
            assert!(
                !after.contains(&(app.clone(), Holder::Device(d.clone()))),
                "{d} released once confirmed"
            );
        }
        w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;
    }
}

/// Another MDM's VPP users: Required gives them nothing, Uninstall takes
/// nothing from them, the plan says why, and Apple is not asked.
#[tokio::test]
async fn a_foreign_user_targeted_by_required_and_uninstall_is_left_untouched() {
    for backend in backends() {
        let w = WorldBuilder::new(backend).start().await;
        w.onboard("sph", demo::SPRINGFIELD_HIGH).await;
        synced(&w).await;
        let truth = w.truth(demo::SPRINGFIELD_HIGH);
        let users = w.sim.control().users(demo::SPRINGFIELD_HIGH).unwrap();
        // A foreign, associated user holding some app (to uninstall), and the
        // user-only app it does not hold (to require).
        let (holder, held_app) = truth
            .iter()
            .find_map(|(a, h)| match h {
                Holder::User(u)
                    if users.iter().any(|x| {
                        &x.client_user_id == u && x.status == vppkit_core::VppUserStatus::Associated
                    }) && a.adam_id != AdamId::from(demo::USER_ONLY_APP) =>
                {
                    Some((u.clone(), a.clone()))
                }
                _ => None,
            })
            .expect("a seeded user holding an app");
        let wanted = key(demo::USER_ONLY_APP);
        assert!(!truth.contains(&(wanted.clone(), Holder::User(holder.clone()))));
        let n: u32 = holder
            .as_str()
            .rsplit(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|d| d.parse().ok())
            .unwrap_or(1);
        let devices = vec![device("SPH", 700 + (n % 50)).with_user(holder.clone())];
        let group = Group::new(
            GroupId::new("them").unwrap(),
            vec![holder.clone()],
            Vec::new(),
        );
        let dir = demo_directory("SPH", 800, 600, Vec::new(), devices, vec![group]);
        let policies = set(vec![
            policy(
                "give",
                demo::USER_ONLY_APP,
                "them",
                Intent::Required,
                LicenceType::User,
            ),
            Policy::new(
                PolicyId::new("take").unwrap(),
                held_app.adam_id.clone(),
                Target::Group(GroupId::new("them").unwrap()),
                Intent::Uninstall,
                LicenceType::User,
            ),
        ]);
        w.engine
            .set_desired_state(DesiredState::new(dir, policies))
            .await
            .unwrap();
        let pass = w.engine.reconcile_all().await.unwrap();
        let foreign: Vec<_> = pass
            .plan
            .blocked
            .iter()
            .filter(|b| {
                b.holder == Holder::User(holder.clone())
                    && matches!(b.reason, BlockReason::ForeignUser { .. })
            })
            .collect();
        let adams: BTreeSet<_> = foreign.iter().map(|b| b.adam_id.clone()).collect();
        assert!(
            adams.contains(&wanted.adam_id),
            "Required is refused with a reason: {:?}",
            pass.plan.explain()
        );
        assert!(
            adams.contains(&held_app.adam_id),
            "Uninstall is refused with a reason: {:?}",
            pass.plan.explain()
        );
        assert!(foreign.iter().all(|b| b.explain().contains("another MDM")));
        let after = w.truth(demo::SPRINGFIELD_HIGH);
        assert!(!after.contains(&(wanted.clone(), Holder::User(holder.clone()))));
        assert!(after.contains(&(held_app.clone(), Holder::User(holder.clone()))));
        let user = w
            .sim
            .control()
            .users(demo::SPRINGFIELD_HIGH)
            .unwrap()
            .into_iter()
            .find(|u| u.client_user_id == holder)
            .unwrap();
        assert_eq!(user.status, vppkit_core::VppUserStatus::Associated);
        w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;
    }
}

/// Two engines on one PostgreSQL reconcile four locations at once: every
/// licence Apple confirmed gets exactly one install, counted at the sinks (by
/// UUID and by raw hand-offs) and at Apple.
#[tokio::test]
async fn two_engines_reconciling_four_locations_hand_out_one_command_per_licence() {
    if !backends().contains(&Backend::Postgres) {
        return; // backends() said why (and fails in CI when PostgreSQL is required).
    }
    let w = WorldBuilder::new(Backend::Postgres).start().await;
    let spec = [
        ("sph", demo::SPRINGFIELD_HIGH, "SPH"),
        ("spm", demo::SPRINGFIELD_MIDDLE, "SPM"),
        ("acl", demo::ACME_LONDON, "ACL"),
    ];
    for (id, uid, _) in spec {
        w.onboard(id, uid).await;
    }
    // A fourth location, with one app of its own.
    let extra = w
        .sim
        .control()
        .add_location(
            vppkit_sim::LocationSpec::new("Fourth School")
                .uid(uid("7300000000000909"))
                .asset(vppkit_sim::AssetSpec::app(1_200_000_001, 50)),
        )
        .unwrap();
    let fourth = w
        .engine
        .add_token(vppkit_engine::AddToken::new(
            loc("fourth"),
            extra.content.clone(),
        ))
        .await
        .unwrap();
    assert_eq!(fourth.location.as_str(), "fourth");
    w.engine
        .sync_all(SyncKind::Full, &ProgressReporter::none())
        .await
        .unwrap();

    // Every writable location's first app with free licences, to a group of devices.
    let mut policies = Vec::new();
    let mut groups = Vec::new();
    let mut devices = Vec::new();
    let mut before: BTreeMap<String, usize> = BTreeMap::new();
    for (i, l) in w.sim.control().locations().into_iter().enumerate() {
        let uid = l.uid.to_string();
        // Only the four onboarded locations (Acme Berlin is another MDM's).
        let Some(location) = w
            .store
            .locations()
            .await
            .unwrap()
            .into_iter()
            .find(|r| r.uid.as_ref().is_some_and(|u| u.as_str() == uid))
            .map(|r| r.id)
        else {
            continue;
        };
        let Some(asset) = w
            .sim
            .control()
            .assets(&uid)
            .unwrap()
            .into_iter()
            .find(|a| !a.is_book() && a.device_assignable && a.counts.available >= 10)
        else {
            continue;
        };
        before.insert(uid.clone(), w.sim.control().assignment_count(&uid).unwrap());
        let serials: Vec<SerialNumber> = (1..=10)
            .map(|n| SerialNumber::new(format!("TWO{i}X{n:04}")).unwrap())
            .collect();
        devices.extend(serials.iter().map(|s| {
            DirectoryDevice::new(s.clone(), Platform::Ios, OsVersion::parse("17.4").unwrap())
        }));
        let g = format!("g{i}");
        groups.push(Group::new(GroupId::new(&g).unwrap(), Vec::new(), serials));
        policies.push(
            Policy::new(
                PolicyId::new(format!("p{i}")).unwrap(),
                asset.key.adam_id.clone(),
                Target::Group(GroupId::new(&g).unwrap()),
                Intent::Required,
                LicenceType::Device,
            )
            .with_location(location),
        );
    }
    assert!(policies.len() >= 3, "{}", policies.len());
    let dir = Directory::new(Vec::new(), devices, groups).unwrap();
    w.engine
        .set_desired_state(DesiredState::new(dir, set(policies)))
        .await
        .unwrap();
    let other_sink = Arc::new(RecordingSink::default());
    let sink2 = other_sink.clone();
    let (other, _) = w
        .another_engine(config().with_instance_id("second"), move |b| b.sink(sink2))
        .await;
    let (a, b) = tokio::join!(w.engine.reconcile_all(), other.reconcile_all());
    let (a, b) = (a.unwrap(), b.unwrap());
    // Whatever is left queued (a location busy in the other engine) goes out.
    w.engine.recover().await.unwrap();
    other.recover().await.unwrap();

    let mut confirmed_at_apple = 0;
    for (uid, n) in &before {
        confirmed_at_apple += w.sim.control().assignment_count(uid).unwrap() - n;
    }
    let all: Vec<QueuedCommand> = w
        .sink
        .commands
        .lock()
        .unwrap()
        .iter()
        .chain(other_sink.commands.lock().unwrap().iter())
        .filter(|c| matches!(c.command, MdmCommand::InstallApplication(_)))
        .cloned()
        .collect();
    let uuids: BTreeSet<&str> = all
        .iter()
        .map(|c| c.reference.command_uuid.as_str())
        .collect();
    let licences: BTreeSet<(String, String)> = all
        .iter()
        .map(|c| {
            (
                c.reference.device.to_string(),
                c.command.adam_id().unwrap().to_string(),
            )
        })
        .collect();
    let confirmed_reported: usize = a
        .applied
        .locations
        .iter()
        .chain(b.applied.locations.iter())
        .map(|l| l.confirmed)
        .sum();
    eprintln!(
        "two engines: {} installs handed out ({} distinct UUIDs), {} licences confirmed at Apple, {} reported confirmed",
        all.len(),
        uuids.len(),
        confirmed_at_apple,
        confirmed_reported
    );
    assert_eq!(confirmed_at_apple, 40, "every device of the four groups");
    assert_eq!(all.len(), confirmed_at_apple, "one hand-off per licence");
    assert_eq!(uuids.len(), confirmed_at_apple);
    assert_eq!(licences.len(), confirmed_at_apple);
    assert_eq!(confirmed_reported, confirmed_at_apple);
}

/// An instance dies mid-apply (after Apple accepted, before the outcome), its
/// lease still held: the next pass waits for the lease to expire, finishes the
/// operations left open before planning anything, and reports them; the store
/// then equals Apple and nothing is left reserved.
#[tokio::test]
async fn a_pass_first_finishes_what_a_dead_instance_left_open() {
    use vppkit_engine::ApplyStep;
    for backend in backends() {
        let w = WorldBuilder::new(backend)
            .config(|c| c.with_lease_duration(Duration::from_millis(800)))
            .start()
            .await;
        w.onboard("sph", demo::SPRINGFIELD_HIGH).await;
        synced(&w).await;
        let app = key(demo::SHORTAGE_APP);
        let lab = free_devices(&w, &app, 3);
        let desired = lab_desired(&lab);
        let (dying, _) = w
            .another_engine(
                config()
                    .with_instance_id("dies")
                    .with_lease_duration(Duration::from_millis(800)),
                |b| b.crash_hook(Arc::new(|s| s == ApplyStep::EventRecorded)),
            )
            .await;
        dying.set_desired_state(desired).await.unwrap();
        assert!(
            dying.reconcile_all().await.is_err(),
            "the crash hook stops it"
        );
        drop(dying);
        let open = w.store.unfinished_operations(None).await.unwrap();
        assert_eq!(open.len(), 1, "an operation left open");

        let pass = w.engine.reconcile_all().await.unwrap();
        assert_eq!(pass.recovered_operations, 1, "{pass:?}");
        assert_eq!(pass.open_operations, 0);
        assert!(pass.busy.is_empty());
        assert!(pass.is_complete());
        assert!(w
            .store
            .unfinished_operations(None)
            .await
            .unwrap()
            .is_empty());
        for d in &lab {
            assert!(w
                .truth(demo::SPRINGFIELD_HIGH)
                .contains(&(app.clone(), Holder::Device(d.clone()))));
        }
        assert_eq!(installs_for(&w.sink, &app).len(), 3, "one install each");
        w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;
    }
}

/// The desired state as two instances see it: each keeps the parts it parsed
/// and reads the head on every call, so an edit by one is seen by the other at
/// once; two writers racing for revisions never make a revision hold the other
/// writer's directory (parts are written once under keys of their own).
#[tokio::test]
async fn two_instances_share_every_desired_state_edit() {
    for backend in backends() {
        let w = WorldBuilder::new(backend).start().await;
        let (other, _) = w
            .another_engine(config().with_instance_id("other"), |b| b)
            .await;
        let dir = |n: u32| {
            lab_directory(
                &(1..=n)
                    .map(|i| device("SPH", i).serial_number)
                    .collect::<Vec<_>>(),
            )
        };
        let lab = |d: &Directory| {
            d.group(&GroupId::new("lab").unwrap())
                .unwrap()
                .devices
                .len()
        };
        let policies = set(vec![]);
        let first = w
            .engine
            .set_desired_state(DesiredState::new(dir(1), policies.clone()))
            .await
            .unwrap();
        let seen = other.desired_state().await.unwrap().unwrap();
        assert_eq!((seen.revision, lab(&seen.state.directory)), (first, 1));
        w.engine.update_directory(dir(2)).await.unwrap();
        let seen = other.desired_state().await.unwrap().unwrap();
        assert_eq!((seen.revision, lab(&seen.state.directory)), (first + 1, 2));
        other
            .update_policies(set(vec![policy(
                "p",
                1,
                "lab",
                Intent::Required,
                LicenceType::Device,
            )]))
            .await
            .unwrap();
        let seen = w.engine.desired_state().await.unwrap().unwrap();
        assert_eq!(seen.state.policies.policies.len(), 1);
        assert_eq!(lab(&seen.state.directory), 2);

        // Racing writers: whatever revision a write got, reading it back while it
        // is still current shows that write's directory.
        let race = |engine: Engine, base: u32| async move {
            let mut mismatches = Vec::new();
            for i in 0..15 {
                let n = base + i;
                let revision = engine.update_directory(dir(n)).await.unwrap();
                let now = engine.desired_state().await.unwrap().unwrap();
                if now.revision == revision && lab(&now.state.directory) != n as usize {
                    mismatches.push((revision, n, lab(&now.state.directory)));
                }
            }
            mismatches
        };
        let (a, b) = tokio::join!(
            tokio::spawn(race(w.engine.clone(), 10)),
            tokio::spawn(race(other.clone(), 40))
        );
        assert_eq!(a.unwrap(), vec![]);
        assert_eq!(b.unwrap(), vec![]);
        assert_eq!(
            w.engine.desired_state().await.unwrap().unwrap().revision,
            first + 2 + 30
        );
    }
}

/// A licence lost to another MDM and obtained again: the device gets a new install (a new
/// UUID), since the first may have failed or been undone with the licence, though the MDM
/// never answered it; the other devices get none again, and a pass with nothing new sends
/// nothing.
#[tokio::test]
async fn a_licence_lost_and_obtained_again_gets_a_new_install() {
    for backend in backends() {
        let w = WorldBuilder::new(backend).start().await;
        w.onboard("sph", demo::SPRINGFIELD_HIGH).await;
        synced(&w).await;
        let app = key(demo::SHORTAGE_APP);
        let lab = free_devices(&w, &app, 3);
        w.engine.set_desired_state(lab_desired(&lab)).await.unwrap();
        w.engine.reconcile(&loc("sph")).await.unwrap();
        let installs = |taken: &[QueuedCommand]| -> Vec<(String, String)> {
            let mut v: Vec<(String, String)> = taken
                .iter()
                .filter(|c| matches!(c.command, MdmCommand::InstallApplication(_)))
                .map(|c| {
                    (
                        c.reference.device.to_string(),
                        c.reference.command_uuid.clone(),
                    )
                })
                .collect();
            v.sort();
            v
        };
        let first = installs(&w.sink.taken());
        assert_eq!(first.len(), 3, "{first:?}");

        // Another MDM takes the first device's licence; a sync sees it gone.
        w.sim
            .control()
            .foreign_disassociate(demo::SPRINGFIELD_HIGH, &app, &[lab[0].as_str()], &[])
            .unwrap();
        w.engine
            .sync(&loc("sph"), SyncKind::Full, &ProgressReporter::none())
            .await
            .unwrap();
        w.engine.reconcile(&loc("sph")).await.unwrap();
        assert!(w
            .truth(demo::SPRINGFIELD_HIGH)
            .contains(&(app.clone(), Holder::Device(lab[0].clone()))));
        let again = installs(&w.sink.taken());
        assert_eq!(again.len(), 1, "{again:?}");
        assert_eq!(again[0].0, lab[0].to_string());
        assert_ne!(again[0].1, first[0].1, "a new command, not the first again");

        // Nothing new: nothing sent.
        w.engine.reconcile(&loc("sph")).await.unwrap();
        assert!(installs(&w.sink.taken()).is_empty());
    }
}

/// A device that leaves the lab keeps its licence for the grace period: the
/// pending release is stored by the engine (with its deadline), dropped when
/// the device comes back into scope, started again when it leaves again, and
/// carried out by the first pass after the deadline (the engine's clock moves
/// by hand). A location of its own, so no other holding is out of scope.
#[tokio::test]
async fn a_grace_period_is_stored_cancelled_in_scope_and_released_when_over() {
    use vppkit_engine::ManualClock;
    use vppkit_rules::{PendingRelease, ScopeRelease};
    const APP: u64 = 1_700_000_001;
    for backend in backends() {
        let w = WorldBuilder::new(backend).start().await;
        let token = w
            .sim
            .control()
            .add_location(
                vppkit_sim::LocationSpec::new("Grace School")
                    .uid(uid("7300000000000707"))
                    .asset(vppkit_sim::AssetSpec::app(APP, 50)),
            )
            .unwrap();
        let start = chrono::Utc::now();
        let clock = Arc::new(ManualClock::new(start));
        let c = clock.clone();
        let (engine, _sink) = w
            .another_engine(config().with_instance_id("grace"), move |b| b.clock(c))
            .await;
        let grace = loc("grace");
        engine
            .add_token(vppkit_engine::AddToken::new(grace.clone(), token.content))
            .await
            .unwrap();
        engine
            .sync(&grace, SyncKind::Full, &ProgressReporter::none())
            .await
            .unwrap();
        let truth = || w.truth("7300000000000707");
        let app = key(APP);
        // Twelve devices: one leaving is under the blast-radius guard's 10%.
        let devices: Vec<SerialNumber> = (1..=12)
            .map(|n| SerialNumber::new(format!("GRC{n:04}")).unwrap())
            .collect();
        let (stays, leaves) = (&devices[1..], devices[0].clone());
        let leaving = (app.clone(), Holder::Device(leaves.clone()));
        let lab = |serials: &[SerialNumber]| {
            let group = Group::new(GroupId::new("lab").unwrap(), Vec::new(), serials.to_vec());
            let listed = devices
                .iter()
                .map(|s| {
                    DirectoryDevice::new(
                        s.clone(),
                        Platform::Ios,
                        OsVersion::parse("17.4").unwrap(),
                    )
                })
                .collect();
            Directory::new(Vec::new(), listed, vec![group]).unwrap()
        };
        let ours = |all: Vec<PendingRelease>| -> Vec<PendingRelease> {
            all.into_iter().filter(|p| p.location == grace).collect()
        };
        let rules = ReleaseRules::default().with_on_out_of_scope(ScopeRelease::ReleaseAfterDays(7));
        let policies = PolicySet::new(
            rules,
            vec![policy(
                "lab",
                APP,
                "lab",
                Intent::Required,
                LicenceType::Device,
            )],
        )
        .unwrap();
        engine
            .set_desired_state(DesiredState::new(lab(&devices), policies))
            .await
            .unwrap();
        engine.reconcile(&grace).await.unwrap();
        assert!(truth().contains(&leaving));
        assert_eq!(truth().len(), 12);

        // Out of scope: kept, and the pending release is stored with its deadline.
        engine.update_directory(lab(stays)).await.unwrap();
        let pass = engine.reconcile(&grace).await.unwrap();
        assert_eq!(pass.plan.apple_calls(), 0, "{:?}", pass.plan.explain());
        let pending = ours(engine.pending_releases().await.unwrap());
        assert_eq!(pending.len(), 1, "{pending:?}");
        assert_eq!(pending[0].holder, Holder::Device(leaves.clone()));
        assert_eq!(pending[0].release_at, start + chrono::Duration::days(7));
        assert!(truth().contains(&leaving));

        // Back in scope: the pending release is cancelled.
        engine.update_directory(lab(&devices)).await.unwrap();
        engine.reconcile(&grace).await.unwrap();
        assert!(ours(engine.pending_releases().await.unwrap()).is_empty());

        // Out again three days later: a new grace period starts then, and a
        // pass before its end releases nothing.
        clock.advance(chrono::Duration::days(3));
        engine.update_directory(lab(stays)).await.unwrap();
        engine.reconcile(&grace).await.unwrap();
        let pending = ours(engine.pending_releases().await.unwrap());
        assert_eq!(pending.len(), 1, "{pending:?}");
        assert_eq!(
            pending[0].release_at,
            start + chrono::Duration::days(10),
            "the grace period restarts when the holder leaves scope again"
        );
        clock.advance(chrono::Duration::days(6));
        engine.reconcile(&grace).await.unwrap();
        assert!(truth().contains(&leaving));

        // The deadline passed: the next pass releases the licence at Apple.
        clock.advance(chrono::Duration::days(2));
        let pass = engine.reconcile(&grace).await.unwrap();
        assert!(pass.held.is_empty(), "{:?}", pass.held);
        assert!(!truth().contains(&leaving), "{:?}", pass.plan.explain());
        assert_eq!(truth().len(), 11);
        assert!(ours(engine.pending_releases().await.unwrap()).is_empty());
        w.assert_matches_truth("grace", "7300000000000707").await;
    }
}

/// The channel Apple's schema names reaches the MDM with each command: a book
/// for a Mac's user goes on the user channel (InstallMedia on macOS is a
/// user-channel command), an app for an iPad on the device channel.
#[tokio::test]
async fn each_command_reaches_the_sink_with_the_channel_apple_requires() {
    use vppkit_rules::Channel;
    for backend in backends() {
        let w = WorldBuilder::new(backend).start().await;
        w.onboard("sph", demo::SPRINGFIELD_HIGH).await;
        synced(&w).await;
        let book = free_book(&w, demo::SPRINGFIELD_HIGH);
        let app = key(demo::SHORTAGE_APP);
        let reader = ClientUserId::new("channel-reader").unwrap();
        let mac = SerialNumber::new("CHNMAC0001").unwrap();
        let ipad = free_devices(&w, &app, 1).remove(0);
        let users = vec![DirectoryUser::new(reader.clone())
            .with_managed_apple_id("channel.reader@appleid.example.edu")];
        let devices = vec![DirectoryDevice::new(
            mac.clone(),
            Platform::MacOs,
            OsVersion::parse("14.4").unwrap(),
        )
        .with_user(reader.clone())];
        let groups = vec![
            Group::new(
                GroupId::new("readers").unwrap(),
                vec![reader.clone()],
                Vec::new(),
            ),
            Group::new(GroupId::new("lab").unwrap(), Vec::new(), vec![ipad.clone()]),
        ];
        let dir = demo_directory("SPH", 800, 600, users, devices, groups);
        let policies = set(vec![
            Policy::new(
                PolicyId::new("reading").unwrap(),
                book.adam_id.clone(),
                Target::Group(GroupId::new("readers").unwrap()),
                Intent::Required,
                LicenceType::User,
            ),
            policy(
                "lab",
                demo::SHORTAGE_APP,
                "lab",
                Intent::Required,
                LicenceType::Device,
            ),
        ]);
        w.engine
            .set_desired_state(DesiredState::new(dir, policies))
            .await
            .unwrap();
        let pass = w.engine.reconcile(&loc("sph")).await.unwrap();
        let sent = w.sink.commands.lock().unwrap().clone();
        let channel_of = |device: &SerialNumber, adam: &AdamId| {
            sent.iter()
                .find(|c| &c.reference.device == device && c.command.adam_id() == Some(adam))
                .map(|c| c.channel)
        };
        assert_eq!(
            channel_of(&mac, &book.adam_id),
            Some(Channel::User),
            "{:?}",
            pass.plan.explain()
        );
        assert_eq!(channel_of(&ipad, &app.adam_id), Some(Channel::Device));
    }
}
