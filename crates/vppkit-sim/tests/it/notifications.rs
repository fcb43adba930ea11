//! Checklist 11: notifications.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{json, Value};
use vppkit_core::{AdamId, AssetKey, PricingParam};
use vppkit_sim::{demo, DeliveryOutcome, NotificationFaults, Preset};

use crate::support::{start_notifying, subscribe, Harness, Receiver};

const UID: &str = demo::SPRINGFIELD_HIGH;
const FLUSH: Duration = Duration::from_secs(20);

fn serials(from: u32, n: u32) -> Vec<String> {
    (from..from + n)
        .map(|i| demo::device_serial("SPH", i))
        .collect()
}

async fn associate(h: &Harness, adam: &str, serials: Vec<String>) -> String {
    let id = h
        .submit(
            UID,
            "/assets/associate",
            json!({"assets": [{"adamId": adam, "pricingParam": "STDQ"}], "serialNumbers": serials}),
        )
        .await;
    h.sim.control().complete_pending();
    assert!(h.sim.control().flush_notifications(FLUSH).await);
    id
}

fn assignment_count(bodies: &[Value]) -> usize {
    bodies
        .iter()
        .map(|b| b["notification"]["assignments"].as_array().unwrap().len())
        .sum()
}

#[tokio::test]
async fn asset_management_with_bearer_fresh_ids_and_chunks() {
    let h = start_notifying(Preset::Demo).await;
    let r = Receiver::start(0).await;
    subscribe(&h, UID, &r).await;
    // Lab Timer has 100 licences: 150 targets gives 100 successes, 50 failures.
    let id = associate(&h, "1200000006", serials(1, 150)).await;
    let am = r.of_type("ASSET_MANAGEMENT");
    let ok: Vec<Value> = am
        .iter()
        .filter(|b| b["notification"]["result"] == "SUCCESS")
        .cloned()
        .collect();
    let failed: Vec<Value> = am
        .iter()
        .filter(|b| b["notification"]["result"] == "FAILURE")
        .cloned()
        .collect();
    assert_eq!(assignment_count(&ok), 100);
    assert_eq!(assignment_count(&failed), 50);
    for b in &am {
        let n = &b["notification"];
        assert!(n["assignments"].as_array().unwrap().len() <= 100);
        assert_eq!(n["eventId"], id.as_str());
        assert_eq!(n["type"], "ASSOCIATE");
        assert_eq!(b["uId"], UID);
    }
    assert_eq!(failed[0]["notification"]["error"]["errorNumber"], 9709);
    let first = &ok[0]["notification"]["assignments"][0];
    assert_eq!(first["adamId"], "1200000006");
    assert_eq!(first["pricingParam"], "STDQ");
    assert!(first["serialNumber"].is_string());
    // Fresh UUID per notification; bearer on every delivery.
    let ids: HashSet<String> = r
        .bodies()
        .iter()
        .map(|b| b["notificationId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), r.bodies().len());
    assert!(ids.iter().all(|i| uuid::Uuid::parse_str(i).is_ok()));
    assert!(r
        .auth_headers()
        .iter()
        .all(|a| a.as_deref() == Some("Bearer shared-secret-for-tests")));
}

#[tokio::test]
async fn at_most_three_delivery_attempts_in_all() {
    let h = start_notifying(Preset::Demo).await;
    let r = Receiver::start(0).await;
    subscribe(&h, UID, &r).await;
    let c = h.sim.control();
    // Fails twice, then succeeds on the third attempt.
    r.fail_first.store(2, std::sync::atomic::Ordering::SeqCst);
    associate(&h, "1200000006", serials(1, 1)).await;
    let log = c.notifications(UID);
    let last = log.last().unwrap();
    assert_eq!(
        last.outcome,
        DeliveryOutcome::Delivered {
            attempts: 3,
            copies: 1
        }
    );
    // Keeps failing: three attempts in all (Apple: "up to three"), then given up.
    r.fail_first.store(10, std::sync::atomic::Ordering::SeqCst);
    associate(&h, "1200000006", serials(2, 1)).await;
    let last = c.notifications(UID).last().unwrap().clone();
    assert_eq!(last.outcome, DeliveryOutcome::Failed { attempts: 3 });
}

#[tokio::test]
async fn duplicate_drop_and_reorder_switches() {
    let h = start_notifying(Preset::Demo).await;
    let r = Receiver::start(0).await;
    subscribe(&h, UID, &r).await;
    let c = h.sim.control();

    c.set_notification_faults(NotificationFaults::duplicating());
    associate(&h, "1200000006", serials(1, 1)).await;
    let am = r.of_type("ASSET_MANAGEMENT");
    assert_eq!(am.len(), 2);
    assert_eq!(am[0]["notificationId"], am[1]["notificationId"]);

    c.set_notification_faults(NotificationFaults::dropping());
    associate(&h, "1200000006", serials(2, 1)).await;
    assert_eq!(
        r.of_type("ASSET_MANAGEMENT").len(),
        2,
        "nothing more arrived"
    );
    assert_eq!(
        c.notifications(UID).last().unwrap().outcome,
        DeliveryOutcome::Dropped
    );

    c.set_notification_faults(NotificationFaults::reordering());
    let before = r.bodies().len();
    // 250 targets on Classroom Notes (100 free) gives several chunks at once.
    associate(&h, "1200000001", serials(601, 200)).await;
    let new: Vec<Value> = r.bodies()[before..].to_vec();
    let produced: Vec<String> = c
        .notifications(UID)
        .iter()
        .rev()
        .take(new.len())
        .map(|n| n.notification_id.to_string())
        .collect();
    let received: Vec<String> = new
        .iter()
        .map(|b| b["notificationId"].as_str().unwrap().to_owned())
        .collect();
    assert!(received.len() >= 2);
    assert_eq!(received, produced, "delivered newest first");
}

#[tokio::test]
async fn asset_count_on_purchase_and_refund() {
    let h = start_notifying(Preset::Demo).await;
    let r = Receiver::start(0).await;
    subscribe(&h, UID, &r).await;
    let c = h.sim.control();
    let key = AssetKey::new(AdamId::from(demo::SHORTAGE_APP), PricingParam::Stdq);
    c.buy_licences(UID, &key, 20).unwrap();
    assert_eq!(c.asset(UID, &key).unwrap().counts.total, 70);
    c.refund_licences(UID, &key, 5).unwrap();
    assert!(
        c.refund_licences(UID, &key, 1000).is_err(),
        "cannot refund assigned licences"
    );
    assert!(c.flush_notifications(FLUSH).await);
    let counts = r.of_type("ASSET_COUNT");
    let deltas: Vec<i64> = counts
        .iter()
        .map(|b| b["notification"]["countDelta"].as_i64().unwrap())
        .collect();
    assert_eq!(deltas, [20, -5]);
    assert_eq!(
        counts[0]["notification"]["adamId"],
        demo::SHORTAGE_APP.to_string()
    );
    let a = h
        .get(UID, &format!("/assets?adamId={}", demo::SHORTAGE_APP))
        .await
        .ok();
    assert_eq!(a["assets"][0]["totalCount"], 65);
}

#[tokio::test]
async fn only_subscribed_types_are_sent() {
    let h = start_notifying(Preset::Demo).await;
    let r = Receiver::start(0).await;
    h.post(
        UID,
        "/client/config",
        json!({"notificationUrl": r.url, "notificationAuthToken": "t", "notificationTypes": ["ASSET_COUNT"]}),
    )
    .await
    .ok();
    associate(&h, "1200000006", serials(1, 3)).await;
    let id = h
        .submit(
            UID,
            "/users/create",
            json!({"users": [{"clientUserId": "sub-1"}]}),
        )
        .await;
    h.finish(UID, &id).await;
    assert!(h.sim.control().flush_notifications(FLUSH).await);
    let kinds: Vec<String> = r
        .bodies()
        .iter()
        .map(|b| b["notificationType"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["TEST_NOTIFICATION"]);
}

#[tokio::test]
async fn revoke_and_user_management_notifications() {
    let h = start_notifying(Preset::Demo).await;
    let r = Receiver::start(0).await;
    subscribe(&h, UID, &r).await;
    let id = h
        .submit(
            UID,
            "/assets/revoke",
            json!({"serialNumbers": ["SPH000000001"]}),
        )
        .await;
    h.finish(UID, &id).await;
    let id = h
        .submit(UID, "/users/create", json!({"users": [{"clientUserId": "um-1", "email": "um@example.org"}, {"clientUserId": "sph-user-0001"}]}))
        .await;
    h.finish(UID, &id).await;
    assert!(h.sim.control().flush_notifications(FLUSH).await);
    let revoke = r.of_type("ASSET_MANAGEMENT");
    assert!(revoke.iter().all(|b| b["notification"]["type"] == "REVOKE"));
    assert!(assignment_count(&revoke) > 0);
    let um = r.of_type("USER_MANAGEMENT");
    let ok = um
        .iter()
        .find(|b| b["notification"]["result"] == "SUCCESS")
        .unwrap();
    assert_eq!(ok["notification"]["users"][0]["clientUserId"], "um-1");
    let bad = um
        .iter()
        .find(|b| b["notification"]["result"] == "FAILURE")
        .unwrap();
    assert_eq!(bad["notification"]["error"]["errorNumber"], 9716);
}
