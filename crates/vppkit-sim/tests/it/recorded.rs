//! The recorded Apple payloads as shape references: same keys, same date form.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};
use vppkit_core::{AdamId, AssetKey, PricingParam};
use vppkit_sim::{demo, Preset};

use crate::envelope::assert_apple_date;
use crate::support::{start_notifying, subscribe, Receiver};

/// In-repository copies of the recorded payloads (with their README).
const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/resources/recorded");

fn recorded(name: &str) -> Value {
    let text = std::fs::read_to_string(format!("{DIR}/{name}"))
        .unwrap_or_else(|e| panic!("{DIR}/{name}: {e}"));
    serde_json::from_str(&text).expect("recorded fixture is JSON")
}

/// Every key path of a JSON value (array items merged).
fn shape(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = format!("{prefix}.{k}");
                out.insert(p.clone());
                shape(x, &p, out);
            }
        }
        Value::Array(items) => {
            for x in items {
                shape(x, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

fn keys(v: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    shape(v, "", &mut out);
    out
}

fn same_kind(a: &Value, b: &Value) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

#[tokio::test]
async fn answers_and_notifications_have_the_recorded_shapes() {
    let client_config = recorded("client_config_response.json");
    let uid = demo::ACME_LONDON;
    let h = start_notifying(Preset::Demo).await;
    let r = Receiver::start(0).await;
    let ours = subscribe(&h, uid, &r).await;
    assert_eq!(keys(&ours), keys(&client_config), "client/config keys");
    for (k, v) in client_config.as_object().unwrap() {
        assert!(same_kind(v, &ours[k]), "{k}: {v} vs {}", ours[k]);
    }
    assert_apple_date(&ours["tokenExpirationDate"]);
    // Keys come in the recorded (alphabetical) order.
    let order: Vec<&String> = ours.as_object().unwrap().keys().collect();
    let want: Vec<&String> = client_config.as_object().unwrap().keys().collect();
    assert_eq!(order, want);

    // Produce one of each recorded notification.
    let c = h.sim.control();
    let key = AssetKey::new(AdamId::new("1200000017").unwrap(), PricingParam::Stdq);
    c.buy_licences(uid, &key, 1).unwrap();
    let body = json!({"assets": [{"adamId": "1200000017", "pricingParam": "STDQ"}], "serialNumbers": ["C02000000000"]});
    h.submit(uid, "/assets/associate", body.clone()).await;
    c.complete_pending();
    h.submit(uid, "/assets/disassociate", body).await;
    c.complete_pending();
    assert!(c.flush_notifications(Duration::from_secs(20)).await);
    let got = r.bodies();
    let find = |kind: &str, sub: Option<&str>| {
        got.iter()
            .find(|b| {
                b["notificationType"] == kind && sub.is_none_or(|t| b["notification"]["type"] == t)
            })
            .cloned()
            .unwrap_or_else(|| panic!("no {kind} {sub:?} in {got:?}"))
    };
    for (file, kind, sub) in [
        ("notification_test.json", "TEST_NOTIFICATION", None),
        ("notification_asset_count.json", "ASSET_COUNT", None),
        (
            "notification_associate_success.json",
            "ASSET_MANAGEMENT",
            Some("ASSOCIATE"),
        ),
        (
            "notification_disassociate_success.json",
            "ASSET_MANAGEMENT",
            Some("DISASSOCIATE"),
        ),
    ] {
        let want = recorded(file);
        let ours = find(kind, sub);
        assert_eq!(keys(&ours), keys(&want), "{file}");
        let order: Vec<&String> = ours.as_object().unwrap().keys().collect();
        assert_eq!(
            order,
            ["notification", "notificationId", "notificationType", "uId"]
        );
        assert!(ours["uId"].is_string() && ours["notification"].is_object());
        if kind == "ASSET_COUNT" {
            assert!(ours["notification"]["countDelta"].is_i64());
            assert!(ours["notification"]["adamId"].is_string());
        }
    }
}
