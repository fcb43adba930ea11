//! Checklist 6: licence counts move with every associate, disassociate, revoke.

use serde_json::{json, Value};
use vppkit_sim::{demo, Preset};

use crate::support::{start, Harness};

const UID: &str = demo::SPRINGFIELD_HIGH;

async fn counts(h: &Harness, adam: &str) -> (u64, u64, u64, u64) {
    let r = h
        .get(UID, &format!("/assets?adamId={adam}&pricingParam=STDQ"))
        .await
        .ok();
    let a = &r["assets"][0];
    let n = |k: &str| a[k].as_u64().unwrap();
    let c = (
        n("totalCount"),
        n("assignedCount"),
        n("availableCount"),
        n("retiredCount"),
    );
    assert_eq!(
        c.0,
        c.1 + c.2 + c.3,
        "total = assigned + available + retired: {a}"
    );
    c
}

fn body(adam: &str, serials: &[&str], users: &[&str]) -> Value {
    json!({"assets": [{"adamId": adam, "pricingParam": "STDQ"}], "serialNumbers": serials, "clientUserIds": users})
}

#[tokio::test]
async fn associate_disassociate_revoke_move_counts() {
    let h = start(Preset::Demo).await;
    let lab = "1200000006"; // Lab Timer: 100 licences, none used.
    assert_eq!(counts(&h, lab).await, (100, 0, 100, 0));
    let id = h
        .submit(
            UID,
            "/assets/associate",
            body(lab, &["SPH000000001", "SPH000000002"], &["sph-user-0001"]),
        )
        .await;
    // Pending: nothing moved yet.
    assert_eq!(counts(&h, lab).await, (100, 0, 100, 0));
    h.finish(UID, &id).await;
    assert_eq!(counts(&h, lab).await, (100, 3, 97, 0));
    // Re-associating an existing pair is a no-op success.
    let id = h
        .submit(UID, "/assets/associate", body(lab, &["SPH000000001"], &[]))
        .await;
    assert_eq!(h.finish(UID, &id).await["eventStatus"], "COMPLETE");
    assert_eq!(counts(&h, lab).await, (100, 3, 97, 0));
    let id = h
        .submit(
            UID,
            "/assets/disassociate",
            body(lab, &["SPH000000002"], &[]),
        )
        .await;
    h.finish(UID, &id).await;
    assert_eq!(counts(&h, lab).await, (100, 2, 98, 0));
    // Disassociating a missing pair is a no-op success.
    let id = h
        .submit(
            UID,
            "/assets/disassociate",
            body(lab, &["SPH000000002"], &[]),
        )
        .await;
    assert_eq!(h.finish(UID, &id).await["eventStatus"], "COMPLETE");
    // Revoke takes back every revocable licence of the targets, books stay.
    let before_books = counts(&h, "1300000001").await;
    let id = h
        .submit(
            UID,
            "/assets/revoke",
            json!({"serialNumbers": ["SPH000000001"], "clientUserIds": ["sph-user-0001"]}),
        )
        .await;
    let s = h.finish(UID, &id).await;
    assert_eq!(s["eventType"], "REVOKE");
    assert_eq!(s["eventStatus"], "COMPLETE");
    assert_eq!(counts(&h, lab).await, (100, 0, 100, 0));
    assert_eq!(counts(&h, "1300000001").await, before_books);
    let held = h.sim.control().assignments(UID).unwrap();
    assert!(!held
        .iter()
        .any(|(k, holder)| holder.id() == "SPH000000001" && k.adam_id.as_str() != "1300000001"));
}

#[tokio::test]
async fn unknown_serial_numbers_are_accepted() {
    let h = start(Preset::Demo).await;
    let id = h
        .submit(
            UID,
            "/assets/associate",
            body("1200000006", &["MADEUP0001"], &[]),
        )
        .await;
    assert_eq!(h.finish(UID, &id).await["eventStatus"], "COMPLETE");
    assert_eq!(counts(&h, "1200000006").await.1, 1);
}

#[tokio::test]
async fn free_assets_are_unlimited() {
    let h = start(Preset::Demo).await;
    let (total, assigned, available, _) = counts(&h, &demo::FREE_APP.to_string()).await;
    assert_eq!(total, 2_147_483_647);
    assert_eq!(assigned, 800);
    assert_eq!(available, total - 800);
    let free = demo::FREE_APP.to_string();
    let r = h.get(UID, "/assets?unlimited=true").await.ok();
    let unlimited = r["unlimitedAssets"].as_array().unwrap();
    assert!(unlimited.iter().any(|a| a["adamId"] == free.as_str()));
    assert!(unlimited
        .iter()
        .all(|a| a.get("totalCount").is_none() && a.get("availableCount").is_none()));
    let r = h.get(UID, "/assets?unlimited=false").await.ok();
    assert!(!r["assets"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["adamId"] == free.as_str()));
}

#[tokio::test]
async fn asset_filters() {
    let h = start(Preset::Demo).await;
    let books = h.get(UID, "/assets?productType=Book").await.ok();
    assert!(books["assets"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["productType"] == "Book"
            && a["revocable"] == false
            && a["deviceAssignable"] == false));
    let plus = h.get(UID, "/assets?pricingParam=PLUS").await.ok();
    assert_eq!(plus["assets"].as_array().unwrap().len(), 1);
    assert_eq!(plus["assets"][0]["adamId"], demo::PLUS_APP.to_string());
    let full = h.get(UID, "/assets?maxAvailableCount=0").await.ok();
    let ids: Vec<&str> = full["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["adamId"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"1200000002") && ids.contains(&"1300000003"),
        "{ids:?}"
    );
    let busy = h
        .get(UID, "/assets?minAssignedCount=500&deviceAssignable=true")
        .await
        .ok();
    assert!(busy["assets"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["assignedCount"].as_u64().unwrap() >= 500));
    h.get(UID, "/assets?productType=Movie")
        .await
        .assert_error(9602, 400);
    h.get(UID, "/assets?revocable=maybe")
        .await
        .assert_error(9602, 400);
}
