//! Exactly once under store faults: a notification whose recording fails is
//! answered 503, Apple delivers it again, and it lands once (its id recorded
//! once, its effect equal to Apple's truth, a further copy a duplicate).

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::Utc;
use vppkit_core::{AdamId, AssetKey, Holder, NotificationId, PricingParam, SerialNumber};
use vppkit_engine::{AddToken, NotificationOutcome, ProgressReporter, SyncKind};
use vppkit_rules::{
    Group, GroupId, Intent, LicenceType, PlanContext, Policy, PolicyId, PolicySet, Target,
};
use vppkit_sim::{demo, DeliveryOutcome, NotificationFaults, NotificationRecord};

use crate::faulty::{hooked_engine, Fault, FaultyStore, Hooked};
use crate::support::*;

fn shortage_app() -> AssetKey {
    AssetKey::new(AdamId::from(demo::SHORTAGE_APP), PricingParam::Stdq)
}

/// A world whose engine writes through a fault-injecting store and receives
/// Apple's notifications; Springfield High onboarded (subscribed) and synced.
async fn faulty_world(
    backend: Backend,
    config: vppkit_engine::EngineConfig,
) -> (World, std::sync::Arc<FaultyStore>, Hooked) {
    let w = WorldBuilder::new(backend)
        .sim(|s| s.notification_attempts(3, Duration::from_millis(50)))
        .start()
        .await;
    let faulty = FaultyStore::new(w.source.open().await);
    let h = hooked_engine(&w, faulty.clone(), config, |b| b).await;
    let o = h
        .engine
        .add_token(AddToken::new(
            loc("sph"),
            w.token(demo::SPRINGFIELD_HIGH).content.clone(),
        ))
        .await
        .unwrap();
    assert!(o.subscribed, "{:?}", o.subscription_error);
    h.engine
        .sync(&loc("sph"), SyncKind::Full, &ProgressReporter::none())
        .await
        .unwrap();
    // The subscription's test notification is in; only what follows counts.
    assert!(
        w.sim
            .control()
            .flush_notifications(Duration::from_secs(10))
            .await
    );
    h.answers.lock().unwrap().clear();
    (w, faulty, h)
}

/// The last notification of a type Apple produced for Springfield High.
fn last_notification(w: &World, kind: &str) -> NotificationRecord {
    w.sim
        .control()
        .notifications(demo::SPRINGFIELD_HIGH)
        .into_iter()
        .rfind(|n| n.notification_type == kind)
        .unwrap_or_else(|| panic!("no {kind} notification"))
}

/// Whether the store has recorded a notification id (recording it again
/// answers "seen before"; a forgotten id would be recorded now, and the test
/// fails on it anyway).
async fn recorded(w: &World, id: &NotificationId) -> bool {
    !w.store
        .record_notification(&loc("sph"), id, Utc::now())
        .await
        .unwrap()
}

/// Hands a notification Apple sent to the engine once more, as Apple would.
async fn redeliver(h: &Hooked, n: &NotificationRecord) -> NotificationOutcome {
    let auth = format!("Bearer {HOOK_SECRET}");
    h.engine
        .handle_notification(
            [("Authorization", auth.as_str())],
            &serde_json::to_vec(&n.body).unwrap(),
        )
        .await
        .unwrap()
}

/// `ASSET_COUNT`: the store refuses the transaction that records the
/// notification (with its marks); the engine answers 503, Apple delivers it
/// again, and this time it is recorded, once: Apple's duplicate copy and a
/// redelivery by hand are duplicates, and the counts are Apple's.
#[tokio::test]
async fn a_purchase_notification_whose_recording_fails_lands_once_on_redelivery() {
    for backend in backends() {
        let (w, faulty, h) = faulty_world(backend, config().with_instance_id("hooked")).await;
        let app = shortage_app();
        let before = w.store.asset(&loc("sph"), &app).await.unwrap().unwrap();
        // Apple sends every notification twice (same notificationId); the
        // first attempt to record one fails.
        w.sim
            .control()
            .set_notification_faults(NotificationFaults::duplicating());
        faulty.on_page(1, Fault::Fail, |_, p| p.notification.is_some());
        w.sim
            .control()
            .buy_licences(demo::SPRINGFIELD_HIGH, &app, 7)
            .unwrap();
        assert!(
            w.sim
                .control()
                .flush_notifications(Duration::from_secs(10))
                .await
        );
        let n = last_notification(&w, "ASSET_COUNT");
        assert_eq!(
            n.outcome,
            DeliveryOutcome::Delivered {
                attempts: 3,
                copies: 2
            },
            "503, then Apple's redelivery (200), then its duplicate (200)"
        );
        assert_eq!(
            *h.answers.lock().unwrap(),
            [(503, "deferred"), (200, "applied"), (200, "duplicate")]
        );
        assert_eq!(faulty.failed.load(Ordering::SeqCst), 1);
        // Landed once, as Apple counts.
        let after = w.store.asset(&loc("sph"), &app).await.unwrap().unwrap();
        let apple = w.sim.control().asset(demo::SPRINGFIELD_HIGH, &app).unwrap();
        assert_eq!(after.asset.counts.total, before.asset.counts.total + 7);
        assert_eq!(after.asset.counts, apple.counts);
        // The reconcile mark was stored with the id (one transaction).
        assert!(w
            .store
            .document("vppkit-engine/reconcile-wanted", "sph")
            .await
            .unwrap()
            .is_some());
        // A further redelivery changes nothing.
        assert_eq!(redeliver(&h, &n).await, NotificationOutcome::Duplicate);
        let again = w.store.asset(&loc("sph"), &app).await.unwrap().unwrap();
        assert_eq!(again.asset.counts, apple.counts);
        assert!(recorded(&w, &n.notification_id).await, "the id is recorded");
        w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;
    }
}

/// `ASSET_MANAGEMENT` of our own associate: the notification comes before the
/// engine polls; its first recording fails (503), the redelivery is applied,
/// the copy is a duplicate. The licences are confirmed once: one associate
/// event at Apple, Apple's assigned count up by exactly the two devices, every
/// device's install handed out once.
#[tokio::test]
async fn an_event_notification_whose_recording_fails_lands_once_on_redelivery() {
    for backend in backends() {
        let cfg = config()
            .with_instance_id("hooked")
            .with_event_polling(Duration::from_secs(2), Duration::from_secs(30));
        let (w, faulty, h) = faulty_world(backend, cfg).await;
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
            .take(2)
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
        w.sim
            .control()
            .set_notification_faults(NotificationFaults::duplicating());
        faulty.on_page(1, Fault::Fail, |_, p| p.notification.is_some());
        let (plan, report) = h
            .engine
            .plan_and_apply(&dir, &set, &PlanContext::new(Utc::now()))
            .await
            .unwrap();
        let l = &report.locations[0];
        assert_eq!(l.confirmed, 2, "{l:?} {:?}", plan.explain());
        assert!(
            w.sim
                .control()
                .flush_notifications(Duration::from_secs(10))
                .await
        );
        let n = last_notification(&w, "ASSET_MANAGEMENT");
        assert_eq!(
            n.outcome,
            DeliveryOutcome::Delivered {
                attempts: 3,
                copies: 2
            }
        );
        assert_eq!(
            *h.answers.lock().unwrap(),
            [(503, "deferred"), (200, "applied"), (200, "duplicate")]
        );
        assert_eq!(faulty.failed.load(Ordering::SeqCst), 1);
        assert_eq!(redeliver(&h, &n).await, NotificationOutcome::Duplicate);
        assert!(recorded(&w, &n.notification_id).await);
        // Once at Apple, once in the store.
        let events = w.sim.control().events(demo::SPRINGFIELD_HIGH).unwrap();
        assert_eq!(events.len(), events_before + 1, "{events:?}");
        let apple = w.sim.control().asset(demo::SPRINGFIELD_HIGH, &app).unwrap();
        assert_eq!(apple.counts.assigned, assigned_before + 2);
        let stored = w.store.holding_counts(&loc("sph"), &app).await.unwrap();
        assert_eq!(stored.reserved, 0, "{stored:?}");
        assert_eq!(
            stored.total(),
            u64::from(apple.counts.assigned),
            "{stored:?}"
        );
        let mut installs: Vec<String> = h
            .sink
            .taken()
            .into_iter()
            .map(|c| c.reference.device.to_string())
            .collect();
        installs.sort();
        let mut expected: Vec<String> = lab.iter().map(|s| s.to_string()).collect();
        expected.sort();
        assert_eq!(installs, expected, "one install per device");
        assert!(w
            .store
            .unfinished_operations(Some(&loc("sph")))
            .await
            .unwrap()
            .is_empty());
        w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;
    }
}
