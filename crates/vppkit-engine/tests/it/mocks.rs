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

/// A sink that fails once keeps the commands: the next poll hands the same
/// commands (same command UUIDs) again, and only installs of confirmed licences.
#[tokio::test]
async fn a_failing_sink_gets_the_same_commands_again() {
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
        .times(1)
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
    let mut clock = MockTestClock::new();
    clock.expect_now().returning(Utc::now);

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
    assert!(report.locations[0].skipped.is_some(), "{report:?}");
    assert_eq!(engine.poll_events(&loc("sph")).await.unwrap(), 0);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0], seen[1], "the same command UUIDs both times");
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
