use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use vppkit_core::{AdamId, AssetKey, Holder, PricingParam, SerialNumber};
use vppkit_engine::{ApplyStep, EngineError, ProgressReporter, SyncKind};
use vppkit_rules::{
    Group, GroupId, Intent, LicenceType, MdmCommand, PlanContext, Policy, PolicyId, PolicySet,
    Target,
};
use vppkit_sim::demo;

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

#[tokio::test]
async fn a_crash_between_any_two_apply_steps_converges_after_restart() {
    for backend in backends() {
        for step in STEPS {
            crash_at(backend, step).await;
        }
    }
}

async fn crash_at(backend: Backend, step: ApplyStep) {
    let w = WorldBuilder::new(backend).start().await;
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
        .take(3)
        .collect();
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
    let ctx = PlanContext::new(Utc::now());
    let assigned_before = w
        .sim
        .control()
        .asset(demo::SPRINGFIELD_HIGH, &app)
        .unwrap()
        .counts
        .assigned;

    // The first process crashes at `step`.
    let (a, a_sink) = w
        .another_engine(crash_config("instance-a"), |b| {
            b.crash_hook(Arc::new(move |s| s == step))
        })
        .await;
    let err = a.plan_and_apply(&dir, &set, &ctx).await.unwrap_err();
    assert!(
        matches!(err, EngineError::Crashed(s) if s == step),
        "{err:?}"
    );
    drop(a);

    // The restarted process recovers, then applies again until nothing is left.
    let (b, b_sink) = w.another_engine(crash_config("instance-b"), |b| b).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let open = match b.recover().await {
            Ok(r) => r.still_open + r.busy.len(),
            Err(e) => panic!("recovery at {step:?}: {e}"),
        };
        if open == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "recovery at {step:?} did not converge"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for _ in 0..5 {
        let (plan, _) = b.plan_and_apply(&dir, &set, &ctx).await.unwrap();
        if plan.apple_calls() == 0 {
            break;
        }
    }
    b.sync(&loc("sph"), SyncKind::Full, &ProgressReporter::none())
        .await
        .unwrap();
    w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;
    // Every lab device holds the app once; no licence lost, none spent twice.
    let truth = w.truth(demo::SPRINGFIELD_HIGH);
    for s in &lab {
        assert!(
            truth.contains(&(app.clone(), Holder::Device(s.clone()))),
            "{s} at {step:?}"
        );
    }
    let after = w.sim.control().asset(demo::SPRINGFIELD_HIGH, &app).unwrap();
    assert_eq!(after.counts.assigned, assigned_before + 3, "at {step:?}");
    // Each device got its install, and a repeated one kept its command UUID.
    let mut installs: Vec<(String, String)> = a_sink
        .taken()
        .into_iter()
        .chain(b_sink.taken())
        .filter(|c| matches!(c.command, MdmCommand::InstallApplication(_)))
        .map(|c| (c.reference.device.to_string(), c.reference.command_uuid))
        .collect();
    installs.sort();
    installs.dedup();
    let devices: BTreeSet<_> = installs.iter().map(|(d, _)| d.clone()).collect();
    assert_eq!(devices.len(), 3, "installs at {step:?}: {installs:?}");
    assert_eq!(installs.len(), 3, "one command per device at {step:?}");
    assert!(w
        .store
        .unfinished_operations(Some(&loc("sph")))
        .await
        .unwrap()
        .is_empty());
}
