//! Property (issue 11): for random sequences of desired-state edits,
//! purchases, refunds, self-service requests and notifications delivered or
//! dropped, with reconcile passes at random points, the loop never over-spends
//! and converges to what one fresh plan of the final inputs asks for.
//!
//! The world: the simulator's demo preset, Springfield High onboarded (with a
//! webhook), 24 devices of our own (serials Apple has never seen, each with a
//! user of the school as its user), four apps (the shortage app, a fully used
//! one, one with plenty free and a free unlimited one), device licences only.
//! Every holding of those devices is one vppkit gave, so what Apple holds for
//! them is exactly what the engine did.
//!
//! After every step: Apple never holds more than it can, the store never holds
//! more than Apple can, and the store's confirmed holdings equal Apple's. At the
//! end (notifications back on, one full sync standing in for the scheduler's
//! periodic one when notifications were dropped): passes run until one does
//! nothing at Apple (at most 5); then a fresh plan of the final inputs has no
//! Apple call, every Required device holds the app or waits for a licence that
//! is not free (or is blocked with a reason), an Uninstall and a gone device hold
//! nothing, out-of-scope licences are kept or released per the release rules,
//! the requests still stored wait for a licence that is not free, and every
//! licence Apple confirmed got exactly one install command (distinct UUIDs).
//!
//! Cases: 8, a fixed seed (`VPPKIT_CONVERGENCE_SEED` and
//! `VPPKIT_CONVERGENCE_CASES` override them, to explore).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use vppkit_core::{AdamId, AssetKey, ClientUserId, Holder, Platform, PricingParam, SerialNumber};
use vppkit_engine::{
    BlastRadius, CommandResult, DesiredState, ProgressReporter, ReconcileReport, SyncKind,
};
use vppkit_rules::{
    Directory, DirectoryDevice, DirectoryUser, Group, GroupId, Intent, LicenceType, MdmCommand,
    OsVersion, Plan, Policy, PolicyId, PolicySet, ReleaseRules, ScopeRelease, Target,
    UninstallRelease,
};
use vppkit_sim::{demo, NotificationFaults};

use crate::support::*;

/// Devices of the world (`SPH000000801` ...: beyond the preset's 800).
const DEVICES: usize = 24;
/// The shortage app (5 free), Math Quest (500 of 500 used), Lab Timer (100
/// free), Team Chat (free, unlimited).
const APPS: [u64; 4] = [
    demo::SHORTAGE_APP,
    1_200_000_002,
    1_200_000_006,
    demo::FREE_APP,
];
/// Device groups `d0..d2`, then user groups `u0..u1`.
const DEVICE_GROUPS: usize = 3;
const USER_GROUPS: usize = 2;
/// Passes allowed to converge once the inputs stop changing.
const CONVERGE_WITHIN: usize = 5;

fn app_key(app: usize) -> AssetKey {
    AssetKey::new(AdamId::from(APPS[app]), PricingParam::Stdq)
}

fn serial(i: usize) -> SerialNumber {
    SerialNumber::new(demo::device_serial("SPH", 801 + i as u32)).unwrap()
}

fn user(i: usize) -> ClientUserId {
    // Users 1..=24 of the preset are Associated.
    ClientUserId::new(demo::client_user_id("SPH", 1 + i as u32)).unwrap()
}

/// Whether a device is in the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Presence {
    Present,
    Retired,
    Absent,
}

/// The directory: which devices are there, and the groups' members.
#[derive(Debug, Clone)]
struct DirSpec {
    presence: Vec<Presence>,
    /// Device indices of `d0..d2`.
    device_groups: Vec<Vec<usize>>,
    /// User indices (user `i` is device `i`'s user) of `u0..u1`.
    user_groups: Vec<Vec<usize>>,
}

#[derive(Debug, Clone)]
struct PolicySpec {
    app: usize,
    intent: Intent,
    /// `0..DEVICE_GROUPS`: a device group, then the user groups.
    group: usize,
    priority: i32,
}

#[derive(Debug, Clone)]
struct PolSpec {
    policies: Vec<PolicySpec>,
    out_of_scope: ScopeRelease,
    on_uninstall: UninstallRelease,
}

/// How Apple's notifications reach the engine from now on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    Delivered,
    Dropped,
    /// Each one twice, with the same `notificationId`.
    Duplicated,
}

#[derive(Debug, Clone)]
enum Step {
    SetDesired(DirSpec, PolSpec),
    UpdateDirectory(DirSpec),
    UpdatePolicies(PolSpec),
    Buy { app: usize, count: u32 },
    Refund { app: usize, count: u32 },
    Request { device: usize, app: usize },
    Notifications(Delivery),
    Reconcile,
}

fn dir_spec() -> impl Strategy<Value = DirSpec> {
    let all: Vec<usize> = (0..DEVICES).collect();
    let presence = prop::collection::vec(
        prop_oneof![
            8 => Just(Presence::Present),
            1 => Just(Presence::Retired),
            1 => Just(Presence::Absent),
        ],
        DEVICES,
    );
    let members = prop::sample::subsequence(all, 0..=12);
    (
        presence,
        prop::collection::vec(members.clone(), DEVICE_GROUPS),
        prop::collection::vec(members, USER_GROUPS),
    )
        .prop_map(|(presence, device_groups, user_groups)| DirSpec {
            presence,
            device_groups,
            user_groups,
        })
}

fn policy_spec() -> impl Strategy<Value = PolicySpec> {
    (
        0..APPS.len(),
        prop_oneof![
            3 => Just(Intent::Required),
            1 => Just(Intent::Uninstall),
            2 => Just(Intent::Available),
        ],
        0..DEVICE_GROUPS + USER_GROUPS,
        0..3i32,
    )
        .prop_map(|(app, intent, group, priority)| {
            // Available may not target device groups (a policy rule): a user group.
            let group = if intent == Intent::Available && group < DEVICE_GROUPS {
                DEVICE_GROUPS + group % USER_GROUPS
            } else {
                group
            };
            PolicySpec {
                app,
                intent,
                group,
                priority,
            }
        })
}

fn pol_spec() -> impl Strategy<Value = PolSpec> {
    (
        prop::collection::vec(policy_spec(), 1..=5),
        prop_oneof![Just(ScopeRelease::Keep), Just(ScopeRelease::Release)],
        prop_oneof![
            Just(UninstallRelease::AfterRemoval),
            Just(UninstallRelease::WithRemoval),
            Just(UninstallRelease::Never),
        ],
    )
        .prop_map(|(policies, out_of_scope, on_uninstall)| PolSpec {
            policies,
            out_of_scope,
            on_uninstall,
        })
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => (dir_spec(), pol_spec()).prop_map(|(d, p)| Step::SetDesired(d, p)),
        1 => dir_spec().prop_map(Step::UpdateDirectory),
        2 => pol_spec().prop_map(Step::UpdatePolicies),
        1 => (0..3usize, 1..=4u32).prop_map(|(app, count)| Step::Buy { app, count }),
        1 => (0..3usize, 1..=3u32).prop_map(|(app, count)| Step::Refund { app, count }),
        2 => (0..DEVICES, 0..APPS.len()).prop_map(|(device, app)| Step::Request { device, app }),
        1 => prop_oneof![
            Just(Delivery::Delivered),
            Just(Delivery::Dropped),
            Just(Delivery::Duplicated),
        ]
        .prop_map(Step::Notifications),
        3 => Just(Step::Reconcile),
    ]
}

/// One case: whether the MDM reports command results, and a sequence of 3 to
/// 8 steps, the first one storing a whole desired state.
#[derive(Debug, Clone)]
struct Case {
    mdm_answers: bool,
    steps: Vec<Step>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        any::<bool>(),
        dir_spec(),
        pol_spec(),
        prop::collection::vec(step(), 2..=7),
    )
        .prop_map(|(mdm_answers, d, p, rest)| {
            let mut steps = vec![Step::SetDesired(d, p)];
            steps.extend(rest);
            Case { mdm_answers, steps }
        })
}

impl DirSpec {
    fn directory(&self) -> Directory {
        let users: Vec<DirectoryUser> = (0..DEVICES).map(|i| DirectoryUser::new(user(i))).collect();
        let mut devices = Vec::new();
        for (i, p) in self.presence.iter().enumerate() {
            let d =
                DirectoryDevice::new(serial(i), Platform::Ios, OsVersion::parse("17.4").unwrap())
                    .with_user(user(i));
            match p {
                Presence::Present => devices.push(d),
                Presence::Retired => devices.push(d.retired()),
                Presence::Absent => {}
            }
        }
        let mut groups = Vec::new();
        for (g, members) in self.device_groups.iter().enumerate() {
            let listed = members
                .iter()
                .filter(|i| self.presence[**i] != Presence::Absent)
                .map(|i| serial(*i))
                .collect();
            groups.push(Group::new(group_id(g), Vec::new(), listed));
        }
        for (g, members) in self.user_groups.iter().enumerate() {
            groups.push(Group::new(
                group_id(DEVICE_GROUPS + g),
                members.iter().map(|i| user(*i)).collect(),
                Vec::new(),
            ));
        }
        Directory::new(users, devices, groups).unwrap()
    }

    /// The devices a group reaches (retired and absent ones are not reached).
    fn reached(&self, group: usize) -> BTreeSet<usize> {
        let members: BTreeSet<usize> = if group < DEVICE_GROUPS {
            self.device_groups[group].iter().copied().collect()
        } else {
            // A user group reaches its users' devices.
            self.user_groups[group - DEVICE_GROUPS]
                .iter()
                .copied()
                .collect()
        };
        members
            .into_iter()
            .filter(|i| self.presence[*i] == Presence::Present)
            .collect()
    }
}

fn group_id(g: usize) -> GroupId {
    if g < DEVICE_GROUPS {
        GroupId::new(format!("d{g}")).unwrap()
    } else {
        GroupId::new(format!("u{}", g - DEVICE_GROUPS)).unwrap()
    }
}

impl PolSpec {
    fn policies(&self) -> PolicySet {
        let list = self
            .policies
            .iter()
            .enumerate()
            .map(|(n, p)| {
                Policy::new(
                    PolicyId::new(format!("p{n}")).unwrap(),
                    AdamId::from(APPS[p.app]),
                    Target::Group(group_id(p.group)),
                    p.intent,
                    LicenceType::Device,
                )
                .with_priority(p.priority)
            })
            .collect();
        let rules = ReleaseRules::default()
            .with_on_out_of_scope(self.out_of_scope)
            .with_on_uninstall(self.on_uninstall);
        PolicySet::new(rules, list).unwrap()
    }

    /// The winning intent per (device, app): Required beats Uninstall beats
    /// Available (every policy here is a device licence).
    fn intents(&self, dir: &DirSpec) -> BTreeMap<(usize, usize), Intent> {
        let rank = |i: Intent| match i {
            Intent::Required => 3,
            Intent::Uninstall => 2,
            _ => 1,
        };
        let mut out: BTreeMap<(usize, usize), Intent> = BTreeMap::new();
        for p in &self.policies {
            for d in dir.reached(p.group) {
                let e = out.entry((d, p.app)).or_insert(p.intent);
                if rank(p.intent) > rank(*e) {
                    *e = p.intent;
                }
            }
        }
        out
    }
}

/// The licences our devices hold at Apple, as (device, app) pairs.
fn held(w: &World) -> BTreeSet<(usize, usize)> {
    let keys: BTreeMap<AssetKey, usize> = (0..APPS.len()).map(|a| (app_key(a), a)).collect();
    let devices: BTreeMap<Holder, usize> = (0..DEVICES)
        .map(|i| (Holder::Device(serial(i)), i))
        .collect();
    w.truth(demo::SPRINGFIELD_HIGH)
        .into_iter()
        .filter_map(|(a, h)| Some((*devices.get(&h)?, *keys.get(&a)?)))
        .collect()
}

/// The (device, app) of a command of ours.
fn pair_of(c: &vppkit_engine::QueuedCommand) -> (usize, usize) {
    let d = (0..DEVICES)
        .find(|d| serial(*d) == c.reference.device)
        .expect("a command for one of our devices");
    let a = APPS
        .iter()
        .position(|x| Some(&AdamId::from(*x)) == c.command.adam_id())
        .expect("a command for one of our apps");
    (d, a)
}

/// Licences Apple has free now (`None`: unlimited).
fn free_at_apple(w: &World, app: usize) -> Option<u32> {
    let a = w
        .sim
        .control()
        .asset(demo::SPRINGFIELD_HIGH, &app_key(app))
        .unwrap();
    (!a.counts.is_unlimited()).then(|| a.counts.holdable().saturating_sub(a.counts.assigned))
}

/// What the run tracks besides the world.
struct Run {
    /// Whether the MDM reports results (else every command stays handed out).
    mdm_answers: bool,
    dir: Option<DirSpec>,
    pol: Option<PolSpec>,
    /// Licences Apple confirmed per (device, app), counted from Apple's truth.
    gained: BTreeMap<(usize, usize), usize>,
    last_held: BTreeSet<(usize, usize)>,
    /// Licences our devices gave back.
    released: usize,
    /// Commands of the sink already answered by the "MDM".
    answered: usize,
    log: Vec<String>,
}

impl Run {
    /// Counts the licences that appeared at Apple since the last look.
    fn observe(&mut self, w: &World) {
        let now = held(w);
        for pair in now.difference(&self.last_held) {
            *self.gained.entry(*pair).or_default() += 1;
        }
        self.released += self.last_held.difference(&now).count();
        self.last_held = now;
    }
}

/// The MDM answers every command handed out since the last answer.
async fn answer(w: &World, run: &mut Run) {
    let new: Vec<_> = w.sink.commands.lock().unwrap()[run.answered..].to_vec();
    run.answered += new.len();
    let held = held(w);
    for c in &new {
        if let MdmCommand::InstallApplication(_) = c.command {
            let pair = pair_of(c);
            assert!(
                held.contains(&pair),
                "an install handed out for a licence Apple does not hold: {:?} after {}",
                c.reference,
                run.log.join(" / ")
            );
        }
    }
    if !run.mdm_answers {
        return;
    }
    for c in new {
        let result = match c.command {
            MdmCommand::InstallApplication(_) => CommandResult::Installed,
            MdmCommand::RemoveApplication { .. } => CommandResult::Removed,
            _ => CommandResult::Acknowledged,
        };
        w.engine
            .command_result(&c.reference.command_uuid, result)
            .await
            .unwrap();
    }
}

async fn flush(w: &World) {
    assert!(
        w.sim
            .control()
            .flush_notifications(Duration::from_secs(10))
            .await,
        "notifications still queued after 10 s"
    );
}

async fn pass(w: &World, run: &mut Run) -> ReconcileReport {
    let report = w.engine.reconcile_all().await.unwrap();
    flush(w).await;
    answer(w, run).await;
    run.observe(w);
    report
}

/// Never over-spent, and the store's holdings are Apple's.
async fn check_invariants(w: &World, run: &Run) {
    let ctx = run.log.join(" / ");
    let apple = w.sim.control().assets(demo::SPRINGFIELD_HIGH).unwrap();
    let stored = w.stored_holdings("sph").await;
    for a in &apple {
        if a.counts.is_unlimited() {
            continue;
        }
        assert!(
            a.counts.assigned <= a.counts.holdable(),
            "Apple over-spent {}: {:?} after {ctx}",
            a.key,
            a.counts
        );
        let ours = stored.iter().filter(|(k, _, _)| *k == a.key).count();
        assert!(
            ours as u32 <= a.counts.holdable(),
            "the store holds {ours} licences of {} (reserved included), Apple allows {}, after {ctx}",
            a.key,
            a.counts.holdable()
        );
    }
    let confirmed: BTreeSet<(AssetKey, Holder)> = stored
        .into_iter()
        .filter(|(_, _, s)| s.is_confirmed())
        .map(|(a, h, _)| (a, h))
        .collect();
    let truth = w.truth(demo::SPRINGFIELD_HIGH);
    let missing: Vec<_> = truth.difference(&confirmed).take(5).collect();
    let extra: Vec<_> = confirmed.difference(&truth).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "store differs from Apple: missing {missing:?}, extra {extra:?}, after {ctx}"
    );
}

async fn run_step(w: &World, run: &mut Run, step: &Step) {
    let control = w.sim.control();
    match step {
        Step::SetDesired(d, p) => {
            w.engine
                .set_desired_state(DesiredState::new(d.directory(), p.policies()))
                .await
                .unwrap();
            run.dir = Some(d.clone());
            run.pol = Some(p.clone());
        }
        Step::UpdateDirectory(d) => {
            w.engine.update_directory(d.directory()).await.unwrap();
            run.dir = Some(d.clone());
        }
        Step::UpdatePolicies(p) => {
            w.engine.update_policies(p.policies()).await.unwrap();
            run.pol = Some(p.clone());
        }
        Step::Buy { app, count } => {
            control
                .buy_licences(demo::SPRINGFIELD_HIGH, &app_key(*app), *count)
                .unwrap();
        }
        Step::Refund { app, count } => {
            // Apple refunds only licences nobody holds.
            let free = free_at_apple(w, *app).unwrap_or(0);
            let n = (*count).min(free);
            if n > 0 {
                control
                    .refund_licences(demo::SPRINGFIELD_HIGH, &app_key(*app), n)
                    .unwrap();
            }
        }
        Step::Request { device, app } => {
            w.engine
                .request_install(serial(*device), AdamId::from(APPS[*app]))
                .await
                .unwrap();
        }
        Step::Notifications(delivery) => {
            control.set_notification_faults(match delivery {
                Delivery::Delivered => NotificationFaults::none(),
                Delivery::Dropped => NotificationFaults::dropping(),
                Delivery::Duplicated => NotificationFaults::duplicating(),
            });
        }
        Step::Reconcile => {
            pass(w, run).await;
        }
    }
    flush(w).await;
    run.observe(w);
}

async fn world(backend: Backend) -> World {
    let w = WorldBuilder::new(backend)
        .webhook()
        .config(|c| {
            c.with_reconcile_interval(Duration::from_secs(3600))
                // The guard is tested on its own (reconciler.rs); here the
                // directory is a few dozen devices, so any release exceeds it.
                .with_blast_radius(BlastRadius::off())
        })
        .start()
        .await;
    let o = w.onboard("sph", demo::SPRINGFIELD_HIGH).await;
    assert!(o.subscribed, "{:?}", o.subscription_error);
    w.engine
        .sync(&loc("sph"), SyncKind::Full, &ProgressReporter::none())
        .await
        .unwrap();
    w
}

async fn run_case(backend: Backend, case: &Case) {
    let steps = &case.steps;
    let w = world(backend).await;
    let mut run = Run {
        mdm_answers: case.mdm_answers,
        dir: None,
        pol: None,
        gained: BTreeMap::new(),
        last_held: held(&w),
        released: 0,
        answered: 0,
        log: Vec::new(),
    };
    assert!(run.last_held.is_empty(), "our devices start with nothing");
    for (n, step) in steps.iter().enumerate() {
        run.log.push(format!("{n}: {step:?}"));
        run_step(&w, &mut run, step).await;
        check_invariants(&w, &run).await;
    }

    // The inputs stop changing. Notifications come back, and a sync stands in
    // for the scheduler's periodic one (what dropped notifications missed).
    w.sim
        .control()
        .set_notification_faults(NotificationFaults::none());
    w.engine
        .sync(&loc("sph"), SyncKind::Full, &ProgressReporter::none())
        .await
        .unwrap();
    run.observe(&w);
    let mut converged = None;
    for k in 0..CONVERGE_WITHIN {
        let report = pass(&w, &mut run).await;
        check_invariants(&w, &run).await;
        if report.plan.apple_calls() == 0 && report.dispatched.handed_out == 0 {
            converged = Some(k + 1);
            break;
        }
        run.log
            .push(format!("final pass {}: {:?}", k + 1, report.plan.explain()));
    }
    let ctx = run.log.join(" / ");
    assert!(
        converged.is_some(),
        "no quiet pass within {CONVERGE_WITHIN} passes: {ctx}"
    );
    w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;

    let dir = run
        .dir
        .clone()
        .expect("the first step stores a desired state");
    let pol = run
        .pol
        .clone()
        .expect("the first step stores a desired state");
    let stored = w.engine.desired_state().await.unwrap().unwrap();
    assert_eq!(
        stored.state,
        DesiredState::new(dir.directory(), pol.policies()),
        "the stored desired state is the last one written"
    );

    // One fresh plan of the final inputs over the converged state.
    let context = w.engine.plan_context().await.unwrap();
    let plan = w
        .engine
        .plan(&dir.directory(), &pol.policies(), &context)
        .await
        .unwrap();
    assert_eq!(
        plan.apple_calls(),
        0,
        "the converged state still needs Apple: {:?} after {ctx}",
        plan.explain()
    );
    check_outcome(&w, &run, &dir, &pol, &plan, &ctx).await;
    if std::env::var_os("VPPKIT_CONVERGENCE_VERBOSE").is_some() {
        eprintln!(
            "case: {} steps, converged in {} pass(es), {} licences confirmed, {} released, {} held, {} waitlisted, {} blocked, {} commands, {} requests left",
            steps.len(),
            converged.unwrap_or(0),
            run.gained.values().sum::<usize>(),
            run.released,
            run.last_held.len(),
            plan.waitlisted.len(),
            plan.blocked.len(),
            run.answered,
            w.engine.install_requests().await.unwrap().len()
        );
    }
}

/// What the final inputs ask for holds at Apple (or says why not).
async fn check_outcome(w: &World, run: &Run, dir: &DirSpec, pol: &PolSpec, plan: &Plan, ctx: &str) {
    let held = held(w);
    let intents = pol.intents(dir);
    let waitlisted = |d: usize, a: usize| {
        plan.waitlisted
            .iter()
            .any(|x| x.adam_id == AdamId::from(APPS[a]) && x.holder == Holder::Device(serial(d)))
    };
    let blocked = |d: usize, a: usize| {
        plan.blocked
            .iter()
            .find(|x| x.adam_id == AdamId::from(APPS[a]) && x.holder == Holder::Device(serial(d)))
    };
    for x in &plan.waitlisted {
        let a = APPS
            .iter()
            .position(|a| AdamId::from(*a) == x.adam_id)
            .unwrap();
        assert_eq!(
            free_at_apple(w, a),
            Some(0),
            "waitlisted while Apple has licences free: {} ({:?}) after {ctx}",
            x.explain(),
            plan.explain()
        );
    }
    for (d, presence) in dir.presence.iter().enumerate() {
        for (a, adam) in APPS.iter().enumerate() {
            let holds = held.contains(&(d, a));
            let what = format!("device {d} ({}) app {adam}", serial(d));
            if *presence != Presence::Present {
                assert!(
                    !holds,
                    "{what}: gone from the directory ({presence:?}) but still holds the licence vppkit gave, after {ctx}"
                );
                continue;
            }
            match intents.get(&(d, a)) {
                Some(Intent::Required) => assert!(
                    holds || waitlisted(d, a) || blocked(d, a).is_some(),
                    "{what}: Required but neither held, waitlisted nor blocked: {:?} after {ctx}",
                    plan.explain()
                ),
                Some(Intent::Uninstall) if pol.on_uninstall != UninstallRelease::Never => {
                    assert!(
                        !holds || blocked(d, a).is_some(),
                        "{what}: Uninstall ({:?}) but the licence is kept: {:?} after {ctx}",
                        pol.on_uninstall,
                        plan.explain()
                    );
                }
                Some(_) => {}
                None if pol.out_of_scope == ScopeRelease::Release => assert!(
                    !holds,
                    "{what}: out of every policy's scope, the rules release it, but it is held: {:?} after {ctx}",
                    plan.explain()
                ),
                None => {}
            }
        }
    }
    // Requests still stored wait for a licence that is not free.
    for r in w.engine.install_requests().await.unwrap() {
        let d = (0..DEVICES).find(|d| serial(*d) == r.device).unwrap();
        let a = APPS
            .iter()
            .position(|x| AdamId::from(*x) == r.adam_id)
            .unwrap();
        assert!(
            !held.contains(&(d, a)) && waitlisted(d, a),
            "request of device {d} for {} still stored but not waitlisted (held: {}): {:?} after {ctx}",
            r.adam_id,
            held.contains(&(d, a)),
            plan.explain()
        );
    }
    // Every licence Apple confirmed got exactly one install, UUIDs distinct.
    let commands = w.sink.commands.lock().unwrap().clone();
    let uuids: BTreeSet<&str> = commands
        .iter()
        .map(|c| c.reference.command_uuid.as_str())
        .collect();
    assert_eq!(uuids.len(), commands.len(), "a UUID handed out twice");
    let mut installs: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    for c in &commands {
        if !matches!(c.command, MdmCommand::InstallApplication(_)) {
            continue;
        }
        *installs.entry(pair_of(c)).or_default() += 1;
    }
    assert_eq!(
        installs, run.gained,
        "installs handed out per (device, app) differ from the licences Apple confirmed, after {ctx}"
    );
}

fn cases() -> u32 {
    std::env::var("VPPKIT_CONVERGENCE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8)
}

fn seed() -> u64 {
    std::env::var("VPPKIT_CONVERGENCE_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_0011)
}

fn check_backend(backend: Backend) {
    let config = Config {
        cases: cases(),
        max_shrink_iters: 64,
        max_shrink_time: 180_000,
        failure_persistence: None,
        ..Config::default()
    };
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed().to_le_bytes());
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes));
    let started = std::time::Instant::now();
    let result = runner.run(&case(), |case| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        rt.block_on(run_case(backend, &case));
        Ok(())
    });
    eprintln!(
        "convergence on {backend:?}: {} cases in {:.1} s",
        cases(),
        started.elapsed().as_secs_f64()
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn the_loop_converges_to_a_fresh_plan_and_never_over_spends() {
    for backend in backends() {
        check_backend(backend);
    }
}

/// The smallest case the property found: a device that holds an app under a
/// Required policy asks for it (self-service). The request is never settled:
/// each pass plans an install for it, the outbox deduplicates that install
/// against the one already handed out (or answered), and the request is
/// reported "waiting for Apple to confirm its licence" forever.
#[test]
fn a_request_for_an_app_the_device_already_holds_is_settled() {
    for mdm_answers in [false, true] {
        let dir = DirSpec {
            presence: vec![Presence::Present; DEVICES],
            device_groups: vec![vec![16], Vec::new(), Vec::new()],
            user_groups: vec![Vec::new(), Vec::new()],
        };
        let pol = PolSpec {
            policies: vec![PolicySpec {
                app: 3,
                intent: Intent::Required,
                group: 0,
                priority: 0,
            }],
            out_of_scope: ScopeRelease::Keep,
            on_uninstall: UninstallRelease::AfterRemoval,
        };
        let case = Case {
            mdm_answers,
            steps: vec![
                Step::SetDesired(dir, pol),
                Step::Reconcile,
                Step::Request { device: 16, app: 3 },
            ],
        };
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(run_case(Backend::Sqlite, &case));
    }
}
