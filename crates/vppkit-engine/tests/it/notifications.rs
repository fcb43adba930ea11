use std::time::Duration;

use chrono::Utc;
use vppkit_core::{AdamId, AssetKey, PricingParam};
use vppkit_engine::{NotificationError, NotificationOutcome, ProgressReporter, SyncKind};
use vppkit_rules::{
    Group, GroupId, Intent, LicenceType, PlanContext, Policy, PolicyId, PolicySet, Target,
};
use vppkit_sim::{demo, NotificationFaults};

use crate::support::*;

async fn notified_world(backend: Backend) -> World {
    let w = WorldBuilder::new(backend).webhook().start().await;
    let o = w.onboard("sph", demo::SPRINGFIELD_HIGH).await;
    assert!(o.subscribed, "{:?}", o.subscription_error);
    w.engine
        .sync(&loc("sph"), SyncKind::Full, &ProgressReporter::none())
        .await
        .unwrap();
    w
}

fn shortage_app() -> AssetKey {
    AssetKey::new(AdamId::from(demo::SHORTAGE_APP), PricingParam::Stdq)
}

async fn stored_total(w: &World) -> u32 {
    w.store
        .asset(&loc("sph"), &shortage_app())
        .await
        .unwrap()
        .unwrap()
        .asset
        .counts
        .total
}

#[tokio::test]
async fn a_purchase_notification_updates_the_counts_without_a_sync() {
    for backend in backends() {
        let w = notified_world(backend).await;
        let before = stored_total(&w).await;
        w.sim
            .control()
            .buy_licences(demo::SPRINGFIELD_HIGH, &shortage_app(), 7)
            .unwrap();
        assert!(
            w.sim
                .control()
                .flush_notifications(Duration::from_secs(5))
                .await
        );
        eventually(
            "the purchase is applied",
            Duration::from_secs(5),
            || async { stored_total(&w).await == before + 7 },
        )
        .await;
    }
}

#[tokio::test]
async fn duplicated_and_reordered_notifications_are_applied_once() {
    for backend in backends() {
        let w = notified_world(backend).await;
        let mut faults = NotificationFaults::none();
        faults.duplicate = true;
        faults.reorder = true;
        w.sim.control().set_notification_faults(faults);
        let before = stored_total(&w).await;
        for n in [3, 4] {
            w.sim
                .control()
                .buy_licences(demo::SPRINGFIELD_HIGH, &shortage_app(), n)
                .unwrap();
        }
        assert!(
            w.sim
                .control()
                .flush_notifications(Duration::from_secs(5))
                .await
        );
        eventually(
            "both purchases applied once",
            Duration::from_secs(5),
            || async { stored_total(&w).await == before + 7 },
        )
        .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            stored_total(&w).await,
            before + 7,
            "duplicates change nothing"
        );
        // Associations confirmed by (duplicated, reordered) notifications.
        let lab = Group::new(
            GroupId::new("lab").unwrap(),
            Vec::new(),
            vec![vppkit_core::SerialNumber::new(demo::device_serial("SPH", 700)).unwrap()],
        );
        let dir = demo_directory("SPH", 800, 600, Vec::new(), Vec::new(), vec![lab]);
        let set = PolicySet::new(
            Default::default(),
            vec![Policy::new(
                PolicyId::new("lab").unwrap(),
                AdamId::from(demo::SHORTAGE_APP),
                Target::Group(GroupId::new("lab").unwrap()),
                Intent::Required,
                LicenceType::Device,
            )],
        )
        .unwrap();
        w.engine
            .plan_and_apply(&dir, &set, &PlanContext::new(Utc::now()))
            .await
            .unwrap();
        assert!(
            w.sim
                .control()
                .flush_notifications(Duration::from_secs(5))
                .await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;
    }
}

#[tokio::test]
async fn dropped_notifications_with_nothing_in_flight_are_caught_up_by_the_incremental_sync() {
    for backend in backends() {
        let w = notified_world(backend).await;
        w.sim
            .control()
            .set_notification_faults(NotificationFaults::dropping());
        let before = stored_total(&w).await;
        w.sim
            .control()
            .buy_licences(demo::SPRINGFIELD_HIGH, &shortage_app(), 5)
            .unwrap();
        assert!(
            w.sim
                .control()
                .flush_notifications(Duration::from_secs(5))
                .await
        );
        assert_eq!(stored_total(&w).await, before, "nothing arrived");
        // Nothing in flight: the fallback is the incremental sync.
        assert_eq!(w.engine.poll_events(&loc("sph")).await.unwrap(), 0);
        w.engine
            .sync(
                &loc("sph"),
                SyncKind::Incremental,
                &ProgressReporter::none(),
            )
            .await
            .unwrap();
        assert_eq!(stored_total(&w).await, before + 5);
        w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;
    }
}

#[tokio::test]
async fn forged_oversized_and_malformed_requests_are_refused() {
    for backend in backends() {
        let w = notified_world(backend).await;
        let body = br#"{"notificationId":"0c9b7e55-6a2f-4d3e-8b71-5e4f2a1d9c00","notificationType":"ASSET_COUNT","uId":"7300000000000101","notification":{"adamId":"1200000008","pricingParam":"STDQ","countDelta":1000}}"#;
        let before = stored_total(&w).await;
        let forged = w
            .engine
            .handle_notification([("Authorization", "Bearer wrong")], body)
            .await;
        assert_eq!(forged, Err(NotificationError::Unauthorized));
        let missing = w
            .engine
            .handle_notification(Vec::<(&str, &str)>::new(), body)
            .await;
        assert_eq!(missing.unwrap_err().http_status(), 401);
        let auth = format!("Bearer {HOOK_SECRET}");
        let big = vec![b' '; 300 * 1024];
        let r = w
            .engine
            .handle_notification([("authorization", auth.as_str())], &big)
            .await;
        assert!(matches!(r, Err(NotificationError::TooLarge { .. })));
        let r = w
            .engine
            .handle_notification([("authorization", auth.as_str())], b"{not json")
            .await;
        assert_eq!(r.unwrap_err().http_status(), 400);
        assert_eq!(stored_total(&w).await, before, "nothing applied");
        // A real purchase at Apple (its own notification lost), then our
        // genuine notification: applied once (the counts are re-read from
        // Apple), then recognised as a duplicate.
        w.sim
            .control()
            .set_notification_faults(NotificationFaults::dropping());
        w.sim
            .control()
            .buy_licences(demo::SPRINGFIELD_HIGH, &shortage_app(), 1000)
            .unwrap();
        assert!(
            w.sim
                .control()
                .flush_notifications(Duration::from_secs(5))
                .await
        );
        let ok = w
            .engine
            .handle_notification([("AUTHORIZATION", auth.as_str())], body)
            .await
            .unwrap();
        assert!(matches!(ok, NotificationOutcome::Applied { .. }), "{ok:?}");
        let again = w
            .engine
            .handle_notification([("Authorization", auth.as_str())], body)
            .await
            .unwrap();
        assert_eq!(again, NotificationOutcome::Duplicate);
        assert_eq!(stored_total(&w).await, before + 1000);
        // Replayed under a new notificationId: a hint, confirmed against
        // Apple, so it never counts twice.
        let replay = String::from_utf8(body.to_vec()).unwrap().replace(
            "0c9b7e55-6a2f-4d3e-8b71-5e4f2a1d9c00",
            "0c9b7e55-6a2f-4d3e-8b71-5e4f2a1d9c01",
        );
        let r = w
            .engine
            .handle_notification([("Authorization", auth.as_str())], replay.as_bytes())
            .await
            .unwrap();
        assert!(matches!(r, NotificationOutcome::Applied { .. }), "{r:?}");
        assert_eq!(
            stored_total(&w).await,
            before + 1000,
            "Apple's count, not twice"
        );
        w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;
    }
}

/// Apple's notification completes the operations before the engine polls: the
/// apply report still counts the licences confirmed and the users created.
#[tokio::test]
async fn operations_finished_by_notifications_are_counted_in_the_apply_report() {
    for backend in backends() {
        let w = WorldBuilder::new(backend)
            .webhook()
            .config(|c| c.with_event_polling(Duration::from_secs(2), Duration::from_secs(30)))
            .start()
            .await;
        let o = w.onboard("sph", demo::SPRINGFIELD_HIGH).await;
        assert!(o.subscribed, "{:?}", o.subscription_error);
        w.engine
            .sync(&loc("sph"), SyncKind::Full, &ProgressReporter::none())
            .await
            .unwrap();
        let book = free_book(&w, demo::SPRINGFIELD_HIGH);
        let serials: Vec<_> = (701..=703)
            .map(|n| vppkit_core::SerialNumber::new(demo::device_serial("SPH", n)).unwrap())
            .collect();
        let ana = vppkit_core::ClientUserId::new("ana-counted").unwrap();
        let lab = Group::new(GroupId::new("lab").unwrap(), Vec::new(), serials);
        let readers = Group::new(
            GroupId::new("readers").unwrap(),
            vec![ana.clone()],
            Vec::new(),
        );
        let dir = demo_directory(
            "SPH",
            800,
            600,
            vec![vppkit_rules::DirectoryUser::new(ana.clone()).with_email("ana@example.org")],
            vec![vppkit_rules::DirectoryDevice::new(
                vppkit_core::SerialNumber::new(demo::device_serial("SPH", 1)).unwrap(),
                vppkit_core::Platform::Ios,
                vppkit_rules::OsVersion::parse("17.4").unwrap(),
            )
            .with_user(ana.clone())],
            vec![lab, readers],
        );
        let set = PolicySet::new(
            Default::default(),
            vec![
                Policy::new(
                    PolicyId::new("lab").unwrap(),
                    AdamId::from(demo::SHORTAGE_APP),
                    Target::Group(GroupId::new("lab").unwrap()),
                    Intent::Required,
                    LicenceType::Device,
                ),
                Policy::new(
                    PolicyId::new("reading").unwrap(),
                    book.adam_id.clone(),
                    Target::Group(GroupId::new("readers").unwrap()),
                    Intent::Required,
                    LicenceType::User,
                ),
            ],
        )
        .unwrap();
        let (plan, report) = w
            .engine
            .plan_and_apply(&dir, &set, &PlanContext::new(Utc::now()))
            .await
            .unwrap();
        let l = &report.locations[0];
        assert_eq!(l.confirmed, 3, "{l:?} {:?}", plan.explain());
        assert_eq!(l.users_created, 1, "{l:?} {:?}", plan.explain());
        assert!(l.refused.is_empty(), "{l:?}");
        // Three installs and the invitation went to the MDM and are counted.
        assert_eq!(l.commands_sent, w.sink.taken().len(), "{l:?}");
        assert!(l.commands_sent >= 3, "{l:?}");
        w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;
    }
}
