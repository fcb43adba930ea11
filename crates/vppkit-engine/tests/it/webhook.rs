//! The webhook at the engine level (`Engine::handle_notification`): forged,
//! oversized, replayed-under-a-new-id and unknown-event requests, each with
//! its expected status, and none moves a count beyond Apple's truth.
//! (The listener itself, slow sockets and admin endpoints: examples/manager/tests/serve.rs.)

use std::time::Duration;

use vppkit_core::{AdamId, AssetKey, Holder, PricingParam, SerialNumber};
use vppkit_engine::{NotificationOutcome, ProgressReporter, SyncKind};
use vppkit_sim::demo;

use crate::support::*;

fn shortage_app() -> AssetKey {
    AssetKey::new(AdamId::from(demo::SHORTAGE_APP), PricingParam::Stdq)
}

/// What a request could move: the app's stored counts and holdings.
async fn snapshot(w: &World) -> (vppkit_core::AssetCounts, u64) {
    let app = shortage_app();
    let asset = w.store.asset(&loc("sph"), &app).await.unwrap().unwrap();
    let held = w.store.holding_counts(&loc("sph"), &app).await.unwrap();
    (asset.asset.counts, held.total())
}

async fn status(w: &World, auth: Option<&str>, body: &[u8]) -> (u16, Option<NotificationOutcome>) {
    let headers: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
    match w.engine.handle_notification(headers, body).await {
        Ok(o) => (o.http_status(), Some(o)),
        Err(e) => (e.http_status(), None),
    }
}

#[tokio::test]
async fn forged_oversized_replayed_and_unknown_event_notifications_change_no_count() {
    for backend in backends() {
        let w = WorldBuilder::new(backend).webhook().start().await;
        let o = w.onboard("sph", demo::SPRINGFIELD_HIGH).await;
        assert!(o.subscribed, "{:?}", o.subscription_error);
        w.engine
            .sync(&loc("sph"), SyncKind::Full, &ProgressReporter::none())
            .await
            .unwrap();
        let app = shortage_app();
        let auth = format!("Bearer {HOOK_SECRET}");
        let mut figures: Vec<(&str, u16)> = Vec::new();

        // A genuine purchase notification, delivered by Apple and applied.
        let before = snapshot(&w).await;
        w.sim
            .control()
            .buy_licences(demo::SPRINGFIELD_HIGH, &app, 3)
            .unwrap();
        assert!(
            w.sim
                .control()
                .flush_notifications(Duration::from_secs(10))
                .await
        );
        eventually(
            "the purchase is applied",
            Duration::from_secs(10),
            || async { snapshot(&w).await.0.total == before.0.total + 3 },
        )
        .await;
        let genuine = w
            .sim
            .control()
            .notifications(demo::SPRINGFIELD_HIGH)
            .into_iter()
            .rfind(|n| n.notification_type == "ASSET_COUNT")
            .expect("Apple's ASSET_COUNT");
        let genuine_body = serde_json::to_vec(&genuine.body).unwrap();
        let counts = snapshot(&w).await;
        let apple = w.sim.control().asset(demo::SPRINGFIELD_HIGH, &app).unwrap();
        assert_eq!(counts.0, apple.counts);

        // Forged: a wrong bearer secret, and none at all.
        let forged = status(&w, Some("Bearer not-the-secret"), &genuine_body).await;
        assert_eq!(forged.0, 401);
        figures.push(("forged (wrong bearer)", forged.0));
        let anonymous = status(&w, None, &genuine_body).await;
        assert_eq!(anonymous.0, 401);
        figures.push(("unauthenticated", anonymous.0));
        assert_eq!(snapshot(&w).await, counts);

        // Oversized: refused before it is read.
        let mut big = genuine_body.clone();
        big.resize(300 * 1024, b' ');
        let oversized = status(&w, Some(&auth), &big).await;
        assert_eq!(oversized.0, 413);
        figures.push(("oversized (300 KiB)", oversized.0));
        assert_eq!(snapshot(&w).await, counts);

        // Replayed under a new notificationId: accepted (200, never retried
        // by Apple), confirmed against Apple's counts, so nothing counts twice.
        let mut replay = genuine.body.clone();
        replay["notificationId"] = serde_json::json!("5f0c2b1e-1c9d-4c55-9a57-2d1e0c3b9a11");
        let replayed = status(&w, Some(&auth), &serde_json::to_vec(&replay).unwrap()).await;
        assert_eq!(replayed.0, 200);
        assert!(
            matches!(replayed.1, Some(NotificationOutcome::Applied { .. })),
            "{replayed:?}"
        );
        figures.push(("ASSET_COUNT replayed under a new id", replayed.0));
        assert_eq!(snapshot(&w).await, counts, "Apple's counts, not twice");
        let again = status(&w, Some(&auth), &genuine_body).await;
        assert_eq!(
            again,
            (200, Some(NotificationOutcome::Duplicate)),
            "the genuine one again"
        );
        figures.push(("ASSET_COUNT redelivered (same id)", again.0));

        // An impossible count change (more licences taken away than the app
        // has): answered 200, so Apple does not retry it forever, and no count
        // moves but what Apple confirms.
        let mut impossible = genuine.body.clone();
        assert!(
            impossible["notification"].get("countDelta").is_some(),
            "{impossible}"
        );
        impossible["notification"]["countDelta"] = serde_json::json!(-100_000);
        impossible["notificationId"] = serde_json::json!("c4a1f2e3-5b6d-4e7f-8a9b-0c1d2e3f4a5b");
        let answered = status(&w, Some(&auth), &serde_json::to_vec(&impossible).unwrap()).await;
        assert_eq!(answered.0, 200, "{answered:?}");
        figures.push(("ASSET_COUNT with an impossible countDelta", answered.0));
        assert_eq!(snapshot(&w).await, counts, "Apple's counts, not the claim");

        // ASSET_MANAGEMENT for an event this manager never sent, claiming one
        // licence more than the app has free: a hint, never believed.
        let apple = w.sim.control().asset(demo::SPRINGFIELD_HIGH, &app).unwrap();
        let held = w.truth(demo::SPRINGFIELD_HIGH);
        let strangers: Vec<SerialNumber> = (1..=800)
            .map(|i| SerialNumber::new(demo::device_serial("SPH", i)).unwrap())
            .filter(|s| !held.contains(&(app.clone(), Holder::Device(s.clone()))))
            .take(apple.counts.available as usize + 1)
            .collect();
        let assignments: Vec<serde_json::Value> = strangers
            .iter()
            .map(|s| {
                serde_json::json!({
                    "adamId": app.adam_id.to_string(),
                    "pricingParam": "STDQ",
                    "serialNumber": s.to_string(),
                })
            })
            .collect();
        let unknown = serde_json::json!({
            "notification": {
                "assignments": assignments,
                "eventId": "0a9e3c1b-6f0d-4a8e-9c7b-1d2e3f4a5b6c",
                "result": "SUCCESS",
                "type": "ASSOCIATE"
            },
            "notificationId": "7b3d1e0f-2a4c-4e6b-8d9f-0a1b2c3d4e5f",
            "notificationType": "ASSET_MANAGEMENT",
            "uId": demo::SPRINGFIELD_HIGH,
        });
        let unknown_event = status(&w, Some(&auth), &serde_json::to_vec(&unknown).unwrap()).await;
        assert_eq!(unknown_event.0, 200, "{unknown_event:?}");
        figures.push(("ASSET_MANAGEMENT of an unknown event", unknown_event.0));
        assert_eq!(snapshot(&w).await, counts, "no holding created");
        for s in &strangers {
            assert!(w
                .store
                .holding(&loc("sph"), &app, &Holder::Device(s.clone()))
                .await
                .unwrap()
                .is_none());
        }
        // A sync is asked for instead (a stored mark).
        assert!(w
            .store
            .document("vppkit-engine/sync-wanted", "sph")
            .await
            .unwrap()
            .is_some());
        // Never more holdings than licences; the sync agrees with Apple.
        let (c, held) = snapshot(&w).await;
        assert!(held <= u64::from(c.holdable()), "{held} of {c:?}");
        w.engine
            .sync(
                &loc("sph"),
                SyncKind::Incremental,
                &ProgressReporter::none(),
            )
            .await
            .unwrap();
        w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;
        assert_eq!(snapshot(&w).await, counts);
        println!("webhook figures ({backend:?}): {figures:?}");
    }
}
