use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use vppkit_core::{AdamId, AssetKey, Holder, PricingParam, SerialNumber, TokenState};
use vppkit_engine::{Clock, CommandSink, ProgressReporter, QueuedCommand, SinkError, SyncKind};
use vppkit_rules::{
    Group, GroupId, Intent, LicenceType, PlanContext, Policy, PolicyId, PolicySet, Target,
};
use vppkit_sim::demo;

use crate::support::*;

mockall::mock! {
    Sink {}
    #[async_trait]
    impl CommandSink for Sink {
        async fn send(&self, commands: Vec<QueuedCommand>) -> Result<(), SinkError>;
    }
}

mockall::mock! {
    TestClock {}
    impl Clock for TestClock {
        fn now(&self) -> DateTime<Utc>;
    }
}

/// A sink that fails its first three calls keeps the commands in the outbox:
/// they are handed out again (same command UUIDs), with backoff, until the
/// sink takes them, and only installs of confirmed licences.
#[tokio::test]
async fn a_sink_failing_three_times_gets_the_same_commands_once_it_recovers() {
    let w = WorldBuilder::new(Backend::Sqlite).start().await;
    w.onboard("sph", demo::SPRINGFIELD_HIGH).await;
    w.engine
        .sync(&loc("sph"), SyncKind::Full, &ProgressReporter::none())
        .await
        .unwrap();
    let app = AssetKey::new(AdamId::from(demo::SHORTAGE_APP), PricingParam::Stdq);
    let held: BTreeSet<Holder> = w
        .truth(demo::SPRINGFIELD_HIGH)
        .into_iter()
        .filter(|(a, _)| *a == app)
        .map(|(_, h)| h)
        .collect();
    let lab: Vec<SerialNumber> = (1..=800)
        .map(|i| SerialNumber::new(demo::device_serial("SPH", i)).unwrap())
        .filter(|s| !held.contains(&Holder::Device(s.clone())))
        .take(2)
        .collect();

    let seen: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
    let mut sink = MockSink::new();
    let mut seq = mockall::Sequence::new();
    let s1 = seen.clone();
    sink.expect_send()
        .times(3)
        .in_sequence(&mut seq)
        .returning(move |cmds| {
            s1.lock().unwrap().push(
                cmds.iter()
                    .map(|c| c.reference.command_uuid.clone())
                    .collect(),
            );
            Err(SinkError::new("MDM queue unavailable"))
        });
    let s2 = seen.clone();
    let expected: BTreeSet<String> = lab.iter().map(|s| s.to_string()).collect();
    sink.expect_send()
        .times(1)
        .in_sequence(&mut seq)
        .withf(move |cmds| {
            cmds.iter()
                .map(|c| c.reference.device.to_string())
                .collect::<BTreeSet<_>>()
                == expected
        })
        .returning(move |cmds| {
            s2.lock().unwrap().push(
                cmds.iter()
                    .map(|c| c.reference.command_uuid.clone())
                    .collect(),
            );
            Ok(())
        });
    // The engine's clock, moved forward past each retry's backoff.
    let offset = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let seconds = offset.clone();
    let mut clock = MockTestClock::new();
    clock.expect_now().returning(move || {
        Utc::now() + chrono::Duration::seconds(seconds.load(std::sync::atomic::Ordering::SeqCst))
    });

    let (engine, _) = w
        .another_engine(config().with_instance_id("mocked"), |b| {
            b.sink(Arc::new(sink)).clock(Arc::new(clock))
        })
        .await;
    let group = Group::new(GroupId::new("lab").unwrap(), Vec::new(), lab.clone());
    let dir = demo_directory("SPH", 800, 600, Vec::new(), Vec::new(), vec![group]);
    let set = PolicySet::new(
        Default::default(),
        vec![Policy::new(
            PolicyId::new("lab").unwrap(),
            app.adam_id.clone(),
            Target::Group(GroupId::new("lab").unwrap()),
            Intent::Required,
            LicenceType::Device,
        )],
    )
    .unwrap();
    let (_, report) = engine
        .plan_and_apply(&dir, &set, &PlanContext::new(Utc::now()))
        .await
        .unwrap();
    assert!(report.locations[0].skipped.is_none(), "{report:?}");
    assert_eq!(report.locations[0].commands_sent, 2, "{report:?}");
    assert_eq!(seen.lock().unwrap().len(), 1, "the first hand-off failed");
    // Not due yet: the backoff holds it back.
    assert_eq!(engine.dispatch_commands(None).await.unwrap().handed_out, 0);
    for attempt in 2..=4 {
        offset.fetch_add(3600, std::sync::atomic::Ordering::SeqCst);
        let r = engine.dispatch_commands(None).await.unwrap();
        assert_eq!(
            r.handed_out,
            if attempt == 4 { 2 } else { 0 },
            "attempt {attempt}"
        );
    }
    // Handed out: nothing more goes to the sink.
    offset.fetch_add(3600, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(engine.dispatch_commands(None).await.unwrap().handed_out, 0);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4);
    for other in &seen[1..] {
        assert_eq!(&seen[0], other, "the same command UUIDs every time");
    }
    let entry = engine.command(&seen[0][0]).await.unwrap().unwrap();
    assert_eq!(entry.status, vppkit_engine::CommandStatus::HandedOut);
    assert_eq!(entry.failed_attempts, 3);
    // The licences were confirmed once, before any command went out.
    for s in &lab {
        assert!(w
            .truth(demo::SPRINGFIELD_HIGH)
            .contains(&(app.clone(), Holder::Device(s.clone()))));
    }
}

/// The engine reads time only from its clock: a mocked clock past the expiry
/// makes the token expired without asking Apple.
#[tokio::test]
async fn the_token_state_follows_the_engine_clock() {
    let w = WorldBuilder::new(Backend::Sqlite).start().await;
    w.onboard("sph", demo::SPRINGFIELD_HIGH).await;
    let expiry = w.token(demo::SPRINGFIELD_HIGH).expires_at;
    let mut clock = MockTestClock::new();
    clock
        .expect_now()
        .times(1..)
        .return_const(expiry + chrono::Duration::seconds(1));
    let (engine, _) = w
        .another_engine(config().with_instance_id("clocked"), |b| {
            b.clock(Arc::new(clock))
        })
        .await;
    let err = engine
        .sync(&loc("sph"), SyncKind::Full, &ProgressReporter::none())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");
    let rec = w.store.location(&loc("sph")).await.unwrap().unwrap();
    assert_eq!(rec.token_state, TokenState::Expired);
}
