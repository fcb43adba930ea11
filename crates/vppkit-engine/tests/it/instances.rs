use std::collections::BTreeSet;
use std::time::Duration;

use chrono::Utc;
use vppkit_core::{AdamId, AssetKey, Holder, PricingParam, SerialNumber};
use vppkit_engine::{ProgressReporter, SyncKind};
use vppkit_rules::{
    Group, GroupId, Intent, LicenceType, PlanContext, Policy, PolicyId, PolicySet, Target,
};
use vppkit_sim::demo;

use crate::support::*;

/// Two engine instances on one database (PostgreSQL when configured, else the
/// same SQLite file) plan and apply at the same time: the last free licences are
/// spent once, never twice.
#[tokio::test]
async fn two_engines_applying_at_once_do_not_over_spend() {
    for backend in backends() {
        let w = WorldBuilder::new(backend).start().await;
        w.onboard("sph", demo::SPRINGFIELD_HIGH).await;
        w.onboard("spm", demo::SPRINGFIELD_MIDDLE).await;
        w.engine
            .sync_all(SyncKind::Full, &ProgressReporter::none())
            .await
            .unwrap();
        let app = AssetKey::new(AdamId::from(demo::SHORTAGE_APP), PricingParam::Stdq);
        let before = w.sim.control().asset(demo::SPRINGFIELD_HIGH, &app).unwrap();
        assert_eq!(before.counts.available, 5);
        let held: BTreeSet<Holder> = w
            .truth(demo::SPRINGFIELD_HIGH)
            .into_iter()
            .filter(|(a, _)| *a == app)
            .map(|(_, h)| h)
            .collect();
        let lab: Vec<SerialNumber> = (1..=800)
            .map(|i| SerialNumber::new(demo::device_serial("SPH", i)).unwrap())
            .filter(|s| !held.contains(&Holder::Device(s.clone())))
            .take(30)
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
        let cfg = |id: &str| {
            config()
                .with_instance_id(id)
                .with_lease_duration(Duration::from_secs(10))
        };
        let (a, a_sink) = w.another_engine(cfg("instance-a"), |b| b).await;
        let (b, b_sink) = w.another_engine(cfg("instance-b"), |b| b).await;
        let events_before = w
            .sim
            .control()
            .events(demo::SPRINGFIELD_HIGH)
            .unwrap()
            .len();
        let (ra, rb) = tokio::join!(
            a.plan_and_apply(&dir, &set, &ctx),
            b.plan_and_apply(&dir, &set, &ctx)
        );
        let (ra, rb) = (ra.unwrap().1, rb.unwrap().1);
        // What the two engines asked Apple for, from the simulator's record of
        // every accepted write: associations of 5 licences in all, none refused.
        // (The simulator would refuse an excess with 9709, so counting Apple's
        // assigned licences alone cannot catch an engine that asks for too much.)
        let events = w.sim.control().events(demo::SPRINGFIELD_HIGH).unwrap();
        let new_events = &events[events_before..];
        let asked: u32 = new_events
            .iter()
            .filter(|e| e.kind == vppkit_sim::EventType::Associate)
            .map(|e| e.num_requested)
            .sum();
        assert_eq!(asked, 5, "licences asked of Apple: {new_events:?}");
        assert!(
            new_events.iter().all(|e| e.failures.is_empty()),
            "no write was refused for want of licences: {new_events:?}"
        );
        let confirmed: usize = ra
            .locations
            .iter()
            .chain(rb.locations.iter())
            .map(|l| l.confirmed)
            .sum();
        assert_eq!(confirmed, 5, "exactly the free licences: {ra:?} {rb:?}");
        let after = w.sim.control().asset(demo::SPRINGFIELD_HIGH, &app).unwrap();
        assert_eq!(after.counts.assigned, before.counts.assigned + 5);
        assert_eq!(after.counts.available, 0);
        // One install per licence, across both instances.
        let installs: BTreeSet<String> = a_sink
            .taken()
            .into_iter()
            .chain(b_sink.taken())
            .filter_map(|c| c.reference.licence.map(|(_, h)| h.to_string()))
            .collect();
        assert_eq!(installs.len(), 5);
        // Both instances agree with Apple.
        a.sync(&loc("sph"), SyncKind::Full, &ProgressReporter::none())
            .await
            .unwrap();
        w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;
        let ra = a
            .report(&loc("sph"), vppkit_engine::ReportOptions::summary())
            .await
            .unwrap();
        let rb = b
            .report(&loc("sph"), vppkit_engine::ReportOptions::summary())
            .await
            .unwrap();
        let fa = ra.apps.iter().find(|x| x.asset == app).unwrap();
        let fb = rb.apps.iter().find(|x| x.asset == app).unwrap();
        assert_eq!((fa.used, fa.free), (fb.used, fb.free));
        assert_eq!(fa.free, 0);
    }
}
