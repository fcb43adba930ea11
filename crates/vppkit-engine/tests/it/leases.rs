//! Lease takeover with fencing: an instance that dies (or stalls) mid-apply
//! keeps its lease until the time-to-live runs out; then another instance
//! takes the location over, finishes what was left open, and every write the
//! first one still makes with its old lease is refused by the store.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use vppkit_core::{AdamId, AssetKey, Holder, HoldingStatus, PricingParam, SerialNumber};
use vppkit_engine::{ApplyStep, Engine, EngineError, ProgressReporter, SyncKind};
use vppkit_rules::{
    Directory, Group, GroupId, Intent, LicenceType, MdmCommand, PlanContext, Policy, PolicyId,
    PolicySet, Target,
};
use vppkit_sim::demo;
use vppkit_store::{
    Fence, HoldingUpsert, NewJournalRecord, OperationStatus, Reservation, StoreError, SyncPage,
};

use crate::faulty::{Fault, FaultyStore, Gate};
use crate::support::*;

/// The name of the lease that gives an instance a location (the engine's).
pub(crate) fn lease_name(id: &str) -> String {
    format!("vppkit-engine/location/{id}")
}

pub(crate) fn shortage_app() -> AssetKey {
    AssetKey::new(AdamId::from(demo::SHORTAGE_APP), PricingParam::Stdq)
}

/// `n` Springfield High devices without the shortage app, a "lab" group of
/// them and a policy that gives them the app.
pub(crate) fn lab_plan(w: &World, n: usize) -> (Vec<SerialNumber>, Directory, PolicySet) {
    let app = shortage_app();
    let held: BTreeSet<Holder> = w
        .truth(demo::SPRINGFIELD_HIGH)
        .into_iter()
        .filter(|(a, _)| *a == app)
        .map(|(_, h)| h)
        .collect();
    let lab: Vec<SerialNumber> = (1..=800)
        .map(|i| SerialNumber::new(demo::device_serial("SPH", i)).unwrap())
        .filter(|s| !held.contains(&Holder::Device(s.clone())))
        .take(n)
        .collect();
    let group = Group::new(GroupId::new("lab").unwrap(), Vec::new(), lab.clone());
    let dir = demo_directory("SPH", 800, 600, Vec::new(), Vec::new(), vec![group]);
    let set = PolicySet::new(
        Default::default(),
        vec![Policy::new(
            PolicyId::new("lab").unwrap(),
            app.adam_id,
            Target::Group(GroupId::new("lab").unwrap()),
            Intent::Required,
            LicenceType::Device,
        )],
    )
    .unwrap();
    (lab, dir, set)
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

fn instance(id: &str, lease: Duration) -> vppkit_engine::EngineConfig {
    config()
        .with_instance_id(id)
        .with_lease_duration(lease)
        .with_event_polling(Duration::from_millis(40), Duration::from_millis(800))
}

/// Instance A (lease time `ttl`) applies the plan and dies right after recording Apple's
/// event: its licences reserved, its operation open, its lease kept. Returns A's fence and
/// the commands its sink was handed.
async fn dies_after_the_event(
    w: &World,
    ttl: Duration,
    dir: &Directory,
    set: &PolicySet,
) -> (Fence, Arc<RecordingSink>) {
    let (a, a_sink) = w
        .another_engine(instance("instance-a", ttl), |b| {
            b.crash_hook(Arc::new(|s| s == ApplyStep::EventRecorded))
        })
        .await;
    let err = a
        .plan_and_apply(dir, set, &PlanContext::new(Utc::now()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, EngineError::Crashed(ApplyStep::EventRecorded)),
        "{err:?}"
    );
    drop(a);
    let lease = w.store.lease(&lease_name("sph")).await.unwrap().unwrap();
    assert_eq!(lease.owner, "instance-a");
    (Fence::of(&lease), a_sink)
}

/// Recovers with `b` until it has taken the location over and left nothing open.
async fn take_over(b: &Engine) -> usize {
    let mut busy_rounds = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = b.recover().await.unwrap();
        if r.busy.is_empty() && r.still_open == 0 {
            return busy_rounds;
        }
        if !r.busy.is_empty() {
            busy_rounds += 1;
        }
        assert!(std::time::Instant::now() < deadline, "no takeover: {r:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn installs(sinks: &[&RecordingSink]) -> Vec<String> {
    let mut v: Vec<String> = sinks
        .iter()
        .flat_map(|s| s.taken())
        .filter(|c| matches!(c.command, MdmCommand::InstallApplication(_)))
        .map(|c| c.reference.device.to_string())
        .collect();
    v.sort();
    v
}

/// Instance A dies (crash hook) right after recording Apple's event: its
/// licences are reserved, its operation is open, its lease is not released.
/// Instance B is refused while the lease lives, takes over once it expires,
/// finishes A's operation (store equal to Apple, no reservation left, every
/// install handed out once), and A's fencing token is refused by the store
/// for a sync page and for a reservation.
#[tokio::test]
async fn a_dead_holder_is_taken_over_after_the_ttl_and_its_fence_refuses_late_writes() {
    for backend in backends() {
        let w = synced_world(backend).await;
        let app = shortage_app();
        let (lab, dir, set) = lab_plan(&w, 3);
        let assigned_before = w
            .sim
            .control()
            .asset(demo::SPRINGFIELD_HIGH, &app)
            .unwrap()
            .counts
            .assigned;
        let (a_fence, a_sink) =
            dies_after_the_event(&w, Duration::from_millis(1500), &dir, &set).await;
        let open = w
            .store
            .unfinished_operations(Some(&loc("sph")))
            .await
            .unwrap();
        assert_eq!(open.len(), 1, "{open:?}");
        let counts = w.store.holding_counts(&loc("sph"), &app).await.unwrap();
        assert_eq!(counts.reserved, 3, "{counts:?}");

        // B, with its own (short) lease time: refused while A's lease lives.
        let (b, b_sink) = w
            .another_engine(instance("instance-b", Duration::from_millis(400)), |b| b)
            .await;
        let r = b.recover().await.unwrap();
        assert_eq!(r.busy, vec![loc("sph")], "{r:?}");
        assert_eq!(
            w.store
                .holding_counts(&loc("sph"), &app)
                .await
                .unwrap()
                .reserved,
            3,
            "nothing touched while A's lease lives"
        );
        // After the time-to-live: B takes over and finishes A's operation.
        take_over(&b).await;
        let lease = w.store.lease(&lease_name("sph")).await.unwrap().unwrap();
        assert_eq!(lease.owner, "instance-b");
        assert!(lease.token > a_fence.token);
        assert!(w
            .store
            .unfinished_operations(Some(&loc("sph")))
            .await
            .unwrap()
            .is_empty());
        let counts = w.store.holding_counts(&loc("sph"), &app).await.unwrap();
        assert_eq!(counts.reserved, 0, "{counts:?}");
        w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;
        let truth = w.truth(demo::SPRINGFIELD_HIGH);
        for s in &lab {
            assert!(truth.contains(&(app.clone(), Holder::Device(s.clone()))));
        }
        let apple = w.sim.control().asset(demo::SPRINGFIELD_HIGH, &app).unwrap();
        assert_eq!(apple.counts.assigned, assigned_before + 3);
        let mut expected: Vec<String> = lab.iter().map(|s| s.to_string()).collect();
        expected.sort();
        assert_eq!(installs(&[&a_sink, &b_sink]).await, expected);

        // A's late writes, with its old fencing token: refused, nothing written.
        let now = Utc::now();
        let mut page = SyncPage::new(now);
        page.fence = Some(a_fence.clone());
        page.upsert_holdings.push(HoldingUpsert::new(
            app.clone(),
            Holder::Device(lab[0].clone()),
            HoldingStatus::Reserved,
        ));
        page.journal.push(NewJournalRecord::new(
            now,
            "operator:instance-a",
            "late",
            serde_json::json!({}),
        ));
        let refused = w.store.apply_sync_page(&loc("sph"), &page).await;
        assert!(
            matches!(refused, Err(StoreError::Fenced { .. })),
            "{refused:?}"
        );
        let free: SerialNumber = (1..=800)
            .map(|i| SerialNumber::new(demo::device_serial("SPH", i)).unwrap())
            .find(|s| !truth.contains(&(app.clone(), Holder::Device(s.clone()))))
            .unwrap();
        let late = Reservation::new(
            loc("sph"),
            app.clone(),
            vec![Holder::Device(free.clone())],
            "late-operation",
            now,
        )
        .with_fence(Some(a_fence.clone()));
        let refused = w.store.reserve(&late).await;
        assert!(
            matches!(refused, Err(StoreError::Fenced { .. })),
            "{refused:?}"
        );
        assert!(w
            .store
            .holding(&loc("sph"), &app, &Holder::Device(free))
            .await
            .unwrap()
            .is_none());
        assert_eq!(
            w.store
                .holding(&loc("sph"), &app, &Holder::Device(lab[0].clone()))
                .await
                .unwrap()
                .map(|h| h.status),
            Some(HoldingStatus::Active)
        );
        w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;
    }
}

/// Says a fixed set of instances is gone (what `LocalProcesses` says of a process of this
/// host that no longer runs).
#[derive(Debug)]
struct Gone(Vec<&'static str>);

#[async_trait::async_trait]
impl vppkit_engine::InstanceLiveness for Gone {
    async fn is_gone(&self, instance_id: &str) -> bool {
        self.0.contains(&instance_id)
    }
}

/// Instance A dies mid-apply holding a lease that lives for minutes. B, told A is gone,
/// takes the location over at once (no wait for the time-to-live), finishes A's operation,
/// and A's fencing token is refused; C, told nothing, still waits the lease out.
#[tokio::test]
async fn a_holder_known_gone_is_taken_over_at_once_and_its_fence_refuses_late_writes() {
    for backend in backends() {
        let w = synced_world(backend).await;
        let app = shortage_app();
        let (_, dir, set) = lab_plan(&w, 3);
        let minutes = Duration::from_secs(600);
        let (a_fence, _) = dies_after_the_event(&w, minutes, &dir, &set).await;

        // C knows nothing of A: the location is busy (A's lease has minutes left).
        let (c, _) = w
            .another_engine(instance("instance-c", minutes), |b| b)
            .await;
        let r = c.recover().await.unwrap();
        assert_eq!(r.busy, vec![loc("sph")], "{r:?}");

        // B is told A is gone: one recovery takes the lease and finishes A's work.
        let config = instance("instance-b", minutes)
            .with_instance_liveness(Arc::new(Gone(vec!["instance-a"])));
        let (b, _) = w.another_engine(config, |b| b).await;
        let started = std::time::Instant::now();
        let r = b.recover().await.unwrap();
        assert!(r.busy.is_empty() && r.still_open == 0, "{r:?}");
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no wait for the TTL"
        );
        let lease = w.store.lease(&lease_name("sph")).await.unwrap().unwrap();
        assert_eq!(lease.owner, "instance-b");
        assert!(lease.token > a_fence.token);
        let counts = w.store.holding_counts(&loc("sph"), &app).await.unwrap();
        assert_eq!(counts.reserved, 0, "{counts:?}");
        w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;
        let late = Reservation::new(
            loc("sph"),
            app.clone(),
            vec![Holder::Device(SerialNumber::new("SPH-LATE").unwrap())],
            "late-operation",
            Utc::now(),
        )
        .with_fence(Some(a_fence));
        let refused = w.store.reserve(&late).await;
        assert!(
            matches!(refused, Err(StoreError::Fenced { .. })),
            "{refused:?}"
        );
        // A holder not said gone is waited out, liveness or not.
        w.store
            .acquire_lease(
                &lease_name("sph"),
                "instance-live",
                chrono::Duration::minutes(10),
                Utc::now(),
            )
            .await
            .unwrap();
        let synced = b
            .sync(
                &loc("sph"),
                SyncKind::Incremental,
                &ProgressReporter::none(),
            )
            .await;
        assert!(matches!(synced, Err(EngineError::Busy(_))), "{synced:?}");
        let lease = w.store.lease(&lease_name("sph")).await.unwrap().unwrap();
        assert_eq!(lease.owner, "instance-live");
    }
}

/// Which of A's writes stalls past its lease.
#[derive(Debug, Clone, Copy)]
enum Stall {
    /// The reservation (before anything went to Apple).
    Reservation,
    /// The page that records Apple's event (after Apple accepted).
    EventRecord,
    /// The operation update that marks it sent (before anything went to Apple).
    MarkSent,
    /// The operation update that records Apple's event id (after Apple accepted).
    EventId,
}

impl Stall {
    /// Whether Apple accepted the request before the stall.
    fn after_apple(&self) -> bool {
        matches!(self, Stall::EventRecord | Stall::EventId)
    }

    /// Whether the stalled write is an operation update.
    fn is_operation_update(&self) -> bool {
        matches!(self, Stall::MarkSent | Stall::EventId)
    }
}

/// Instance A stalls inside a write (a GC pause, a stuck disk) until its
/// lease has run out and B has taken over and finished; then A's write goes
/// to the store with A's old fencing token and is refused. A gives up on the
/// location; Apple's state and the store agree; nothing is spent twice.
#[tokio::test]
async fn a_stalled_holders_write_after_the_takeover_is_refused_by_its_fence() {
    for backend in backends() {
        for stall in [
            Stall::Reservation,
            Stall::EventRecord,
            Stall::MarkSent,
            Stall::EventId,
        ] {
            stalled_holder(backend, stall).await;
        }
    }
}

async fn stalled_holder(backend: Backend, stall: Stall) {
    let w = synced_world(backend).await;
    let app = shortage_app();
    let (lab, dir, set) = lab_plan(&w, 3);
    let assigned_before = w
        .sim
        .control()
        .asset(demo::SPRINGFIELD_HIGH, &app)
        .unwrap()
        .counts
        .assigned;
    let events_before = w
        .sim
        .control()
        .events(demo::SPRINGFIELD_HIGH)
        .unwrap()
        .len();
    let faulty = FaultyStore::new(w.source.open().await);
    let gate = Gate::new();
    match stall {
        Stall::Reservation => faulty.on_reserve(1, Fault::Pause(gate.clone()), |_| true),
        Stall::EventRecord => faulty.on_page(1, Fault::Pause(gate.clone()), |_, p| {
            p.fence.is_some() && p.journal.iter().any(|r| r.cause.starts_with("event:"))
        }),
        Stall::MarkSent => faulty.on_update_operation(1, Fault::Pause(gate.clone()), |_, u| {
            u.status == OperationStatus::Sent && u.fence.is_some()
        }),
        Stall::EventId => faulty.on_update_operation(1, Fault::Pause(gate.clone()), |_, u| {
            u.event_id.is_some() && u.fence.is_some()
        }),
    }
    let (a, a_sink) = w.engine_over(
        faulty.clone(),
        instance("instance-a", Duration::from_millis(600)),
        |b| b,
    );
    let a_run = {
        let (a, dir, set) = (a.clone(), dir.clone(), set.clone());
        tokio::spawn(async move {
            a.plan_and_apply(&dir, &set, &PlanContext::new(Utc::now()))
                .await
        })
    };
    tokio::time::timeout(Duration::from_secs(20), gate.reached())
        .await
        .unwrap_or_else(|_| panic!("A never reached the stalled write ({stall:?})"));
    let a_lease = w.store.lease(&lease_name("sph")).await.unwrap().unwrap();
    assert_eq!(a_lease.owner, "instance-a");

    // B takes over once A's lease has run out, and settles what A left open.
    let (b, b_sink) = w
        .another_engine(instance("instance-b", Duration::from_millis(600)), |b| b)
        .await;
    let waited = take_over(&b).await;
    assert!(waited > 0, "B had to wait for A's lease ({stall:?})");
    let b_lease = w.store.lease(&lease_name("sph")).await.unwrap().unwrap();
    assert!(b_lease.token > a_lease.token);

    // A wakes up: its write carries the old token and is refused.
    gate.open();
    let a_result = tokio::time::timeout(Duration::from_secs(20), a_run)
        .await
        .expect("A finishes")
        .unwrap();
    let held = faulty.held.lock().unwrap().clone();
    assert_eq!(held.len(), 1, "{held:?}");
    assert!(
        matches!(&held[0], Err(e) if e.starts_with("Fenced")),
        "A's late write at {stall:?}: {held:?}"
    );
    match &a_result {
        Ok((_, report)) => {
            let l = &report.locations[0];
            assert_eq!(l.confirmed, 0, "{stall:?}: {l:?}");
            assert!(l.skipped.is_some(), "{stall:?}: {l:?}");
        }
        Err(e) => assert!(
            matches!(e, EngineError::LeaseLost(_) | EngineError::Store(_)),
            "{stall:?}: {e:?}"
        ),
    }
    if stall.is_operation_update() {
        // A refused operation update stops A's work as a lost lease.
        let lost = EngineError::LeaseLost(loc("sph")).to_string();
        match &a_result {
            Ok((_, report)) => assert_eq!(
                report.locations[0].skipped.as_deref(),
                Some(lost.as_str()),
                "{stall:?}"
            ),
            Err(e) => assert!(
                matches!(e, EngineError::LeaseLost(l) if *l == loc("sph")),
                "{e:?}"
            ),
        }
    }
    assert!(w
        .store
        .unfinished_operations(Some(&loc("sph")))
        .await
        .unwrap()
        .is_empty());
    let counts = w.store.holding_counts(&loc("sph"), &app).await.unwrap();
    assert_eq!(counts.reserved, 0, "{stall:?}: {counts:?}");
    let events = w
        .sim
        .control()
        .events(demo::SPRINGFIELD_HIGH)
        .unwrap()
        .len();
    match stall.after_apple() {
        // Nothing reached Apple: B rolled A's operation back.
        false => assert_eq!(events, events_before, "{stall:?}"),
        // Apple did it once; B confirmed it and handed out the installs.
        true => {
            assert_eq!(events, events_before + 1, "{stall:?}");
            let mut expected: Vec<String> = lab.iter().map(|s| s.to_string()).collect();
            expected.sort();
            assert_eq!(installs(&[&a_sink, &b_sink]).await, expected, "{stall:?}");
        }
    }
    w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;

    // B goes on with the plan: every lab device gets the app once.
    for _ in 0..3 {
        let (plan, _) = b
            .plan_and_apply(&dir, &set, &PlanContext::new(Utc::now()))
            .await
            .unwrap();
        if plan.apple_calls() == 0 {
            break;
        }
    }
    let apple = w.sim.control().asset(demo::SPRINGFIELD_HIGH, &app).unwrap();
    assert_eq!(apple.counts.assigned, assigned_before + 3, "{stall:?}");
    let truth = w.truth(demo::SPRINGFIELD_HIGH);
    for s in &lab {
        assert!(truth.contains(&(app.clone(), Holder::Device(s.clone()))));
    }
    w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;
}

/// A walk applies pages ahead of their writes. When A's lease is due for renewal,
/// A first writes every page it applied: a renewal can find that B took the
/// location over meanwhile (and let it go), and then A reads B's writes into its
/// ledger, which must hold nothing the store does not. Here A's second holdings
/// write is held while the next page is applied (queued behind it); A's clock
/// then jumps past half its lease, and its renewal is held while B syncs the
/// location and lets it go. When A's renewal reaches the store, the queued page is
/// already there; A ends its walk, and the store, a fresh instance's replay of the
/// journal and Apple agree.
#[tokio::test]
async fn a_walk_writes_what_it_applied_before_its_lease_is_renewed() {
    use std::sync::atomic::Ordering;
    use vppkit_engine::ManualClock;

    for backend in backends() {
        let w = WorldBuilder::new(backend)
            .sim(|s| s.page_size(50))
            .start()
            .await;
        w.onboard("sph", demo::SPRINGFIELD_HIGH).await;
        let faulty = FaultyStore::new(w.source.open().await);
        let (seen, _) = faulty.count_holdings_pages();
        let write = Gate::new();
        faulty.pause_holdings_page(&seen, 2, &write);
        let renewal = Gate::new();
        faulty.on_renew(1, Fault::Pause(renewal.clone()), |_| true);
        let lease = Duration::from_secs(60);
        let start = Utc::now();
        let a_clock = Arc::new(ManualClock::new(start));
        let c = a_clock.clone();
        let (a, _) = w.engine_over(faulty.clone(), instance("instance-a", lease), |b| {
            b.clock(c)
        });

        // A walks slowly enough for the test to act between two pages.
        w.sim.control().set_latency(Duration::from_millis(200));
        let a_run = tokio::spawn(async move {
            a.sync(&loc("sph"), SyncKind::Full, &ProgressReporter::none())
                .await
        });
        tokio::time::timeout(Duration::from_secs(30), write.reached())
            .await
            .expect("A's second holdings write reaches the store");
        // The next page arrives and is applied, its write queued behind the held one.
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert_eq!(seen.load(Ordering::SeqCst), 2);
        a_clock.advance(chrono::Duration::seconds(45));
        write.open();
        tokio::time::timeout(Duration::from_secs(30), renewal.reached())
            .await
            .expect("A renews its lease");
        assert_eq!(
            seen.load(Ordering::SeqCst),
            3,
            "A renews its lease only once every page it applied is in the store"
        );

        // B takes the location over (A's lease ran out by B's clock), syncs it and
        // lets it go, while A's renewal is held.
        w.sim.control().set_latency(Duration::ZERO);
        let b_clock = Arc::new(ManualClock::new(start + chrono::Duration::minutes(5)));
        let c = b_clock.clone();
        let (b, _) = w
            .another_engine(instance("instance-b", lease), |b| b.clock(c))
            .await;
        let outcome = b
            .sync(&loc("sph"), SyncKind::Full, &ProgressReporter::none())
            .await
            .unwrap();
        assert!(outcome.succeeded(), "{backend:?}");
        let b_lease = w.store.lease(&lease_name("sph")).await.unwrap().unwrap();
        assert_eq!(b_lease.owner, "instance-b");

        // A's renewal finds the lease let go, takes it again, reads B's writes and
        // ends its walk.
        renewal.open();
        let a_result = tokio::time::timeout(Duration::from_secs(60), a_run)
            .await
            .expect("A ends its walk")
            .unwrap();
        assert!(
            a_result.as_ref().is_ok_and(|o| o.succeeded()),
            "{backend:?}: {a_result:?}"
        );
        w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;
        let (fresh, _) = w.another_engine(config(), |b| b).await;
        let outcome = fresh
            .sync(
                &loc("sph"),
                SyncKind::Incremental,
                &ProgressReporter::none(),
            )
            .await
            .unwrap();
        assert!(outcome.succeeded(), "{backend:?}");
        w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;
    }
}
