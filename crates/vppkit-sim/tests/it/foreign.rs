//! "Another MDM" associates and disassociates between two reads: the changes show
//! in counts, in a full read and in an incremental read (`sinceVersionId`).

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{json, Value};
use vppkit_core::{AdamId, AssetKey, PricingParam};
use vppkit_sim::{demo, Preset, SimError};

use crate::support::{start, Harness};

const UID: &str = demo::SPRINGFIELD_HIGH;

fn holders(page: &Value) -> HashSet<String> {
    page["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["adamId"] == "1200000006")
        .map(|a| {
            a["serialNumber"]
                .as_str()
                .or(a["clientUserId"].as_str())
                .unwrap()
                .to_owned()
        })
        .collect()
}

async fn version(h: &Harness) -> String {
    h.get(UID, "/assignments").await.ok()["versionId"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn foreign_changes_show_in_counts_and_incremental_reads() {
    let h = start(Preset::Demo).await;
    let c = h.sim.control();
    let app = AssetKey::new(AdamId::from(1_200_000_006), PricingParam::Stdq);
    let before = c.asset(UID, &app).unwrap().counts;
    let v0 = version(&h).await;
    let user = demo::client_user_id("SPH", 1);
    let added = c
        .foreign_associate(UID, &app, &["SPH000000700", "made up serial"], &[&user])
        .unwrap();
    assert_eq!(added, 3);
    let after = c.asset(UID, &app).unwrap().counts;
    assert_eq!(after.assigned, before.assigned + 3);
    assert_eq!(after.available, before.available - 3);
    let v1 = version(&h).await;
    assert_ne!(v0, v1, "a foreign change moves versionId");
    let since = h
        .get(UID, &format!("/assignments?sinceVersionId={v0}"))
        .await
        .ok();
    let want: HashSet<String> = ["SPH000000700", "made up serial", user.as_str()]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    assert_eq!(holders(&since), want);
    // Associating again is a no-op; disassociating takes them back.
    assert_eq!(
        c.foreign_associate(UID, &app, &["SPH000000700"], &[])
            .unwrap(),
        0
    );
    let removed = c
        .foreign_disassociate(UID, &app, &["SPH000000700", "never assigned"], &[&user])
        .unwrap();
    assert_eq!(removed, 2);
    assert_eq!(
        c.asset(UID, &app).unwrap().counts.assigned,
        before.assigned + 1
    );
    let since = h
        .get(UID, &format!("/assignments?sinceVersionId={v1}"))
        .await
        .ok();
    // Apple's incremental shape cannot say "removed": the removed pairs are
    // simply absent; a full read shows only what remains.
    assert!(holders(&since).is_empty());
    let full = h.get(UID, "/assignments?adamId=1200000006").await.ok();
    assert!(full.get("nextPageIndex").is_none());
    let all = holders(&full);
    assert!(all.contains("made up serial") && !all.contains("SPH000000700"));
}

#[tokio::test]
async fn foreign_changes_are_all_or_nothing() {
    let h = start(Preset::Demo).await;
    let c = h.sim.control();
    let shortage = AssetKey::new(AdamId::from(demo::SHORTAGE_APP), PricingParam::Stdq);
    let free = c.asset(UID, &shortage).unwrap().counts.available as usize;
    let serials: Vec<String> = (701..=701 + free as u32)
        .map(|i| demo::device_serial("SPH", i))
        .collect();
    let refs: Vec<&str> = serials.iter().map(String::as_str).collect();
    let v0 = version(&h).await;
    assert!(matches!(
        c.foreign_associate(UID, &shortage, &refs, &[]),
        Err(SimError::NotEnoughLicences { .. })
    ));
    assert_eq!(version(&h).await, v0, "nothing changed");
    let book = AssetKey::new(AdamId::from(demo::BOOK), PricingParam::Stdq);
    assert!(matches!(
        c.foreign_disassociate(UID, &book, &[], &["x"]),
        Err(SimError::NotRevocable { .. })
    ));
    assert!(matches!(
        c.foreign_associate(UID, &shortage, &[], &["nobody"]),
        Err(SimError::UnknownUser { .. })
    ));
}

#[tokio::test]
async fn foreign_changes_over_the_control_api() {
    let h = start(Preset::Demo).await;
    let base = h.sim.control_url().expect("control API on");
    let post = |path: &str, body: Value| {
        h.http
            .request(Method::POST, format!("{base}{path}"))
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
    };
    let r = post(
        &format!("/locations/{UID}/assets/1200000006/foreign-associate"),
        json!({"serialNumbers": ["SPH000000790"]}),
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["changed"], 1);
    let r = post(
        &format!("/locations/{UID}/assets/1200000006/foreign-disassociate?pricingParam=STDQ"),
        json!({"serialNumbers": ["SPH000000790"]}),
    )
    .await
    .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["changed"], 1);
    let r = post(
        &format!("/locations/{UID}/assets/1300000001/foreign-disassociate"),
        json!({"clientUserIds": ["sph-user-0001"]}),
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 409);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "not_revocable");
}
