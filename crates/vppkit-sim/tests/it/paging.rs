//! Checklist 8: paging, versionId, sinceVersionId, 9650, 9721.

use std::collections::HashSet;

use serde_json::json;
use vppkit_sim::{demo, Preset, SimClock, Simulator};

use crate::support::{start, start_with};

const UID: &str = demo::SPRINGFIELD_HIGH;

#[tokio::test]
async fn pages_follow_the_configured_size() {
    let h = start_with(
        Simulator::builder()
            .preset(Preset::Demo)
            .clock(SimClock::manual())
            .page_size(300),
    )
    .await;
    let total = h.sim.control().assignment_count(UID).unwrap();
    let first = h.get(UID, "/assignments").await.ok();
    assert_eq!(first["currentPageIndex"], 0);
    assert_eq!(first["size"], 300);
    assert_eq!(first["nextPageIndex"], 1);
    let pages = total.div_ceil(300);
    assert_eq!(first["totalPages"].as_u64().unwrap() as usize, pages);
    let last = h
        .get(UID, &format!("/assignments?pageIndex={}", pages - 1))
        .await
        .ok();
    assert!(
        last.get("nextPageIndex").is_none(),
        "no nextPageIndex on the last page"
    );
    assert_eq!(
        last["size"].as_u64().unwrap() as usize,
        total - 300 * (pages - 1)
    );
    h.get(UID, &format!("/assignments?pageIndex={pages}"))
        .await
        .assert_error(9650, 400);
    h.get(UID, "/assignments?pageIndex=-1")
        .await
        .assert_error(9650, 400);
    h.get(UID, "/users?pageIndex=99")
        .await
        .assert_error(9650, 400);
    h.get(UID, "/assets?pageIndex=99")
        .await
        .assert_error(9650, 400);
    // A walk sees every assignment exactly once.
    let (items, _) = h.walk(UID, "/assignments", "assignments").await;
    assert_eq!(items.len(), total);
    let unique: HashSet<String> = items.iter().map(|i| i.to_string()).collect();
    assert_eq!(unique.len(), total);
    // Page size can change at run time.
    h.sim.control().set_page_size(1000);
    assert_eq!(h.get(UID, "/assignments").await.ok()["size"], 1000);
}

#[tokio::test]
async fn empty_list_is_page_zero_of_zero() {
    let h = start(Preset::Demo).await;
    let r = h
        .get(UID, "/assignments?serialNumber=NOSUCHDEVICE")
        .await
        .ok();
    assert_eq!(r["totalPages"], 0);
    assert_eq!(r["size"], 0);
    assert!(r.get("nextPageIndex").is_none());
}

#[tokio::test]
async fn version_changes_and_since_version_returns_changes() {
    let h = start(Preset::Demo).await;
    let v0 = h.get(UID, "/assignments").await.ok()["versionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let u0 = h.get(UID, "/users").await.ok()["versionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let a0 = h.get(UID, "/assets").await.ok()["versionId"]
        .as_str()
        .unwrap()
        .to_owned();
    // Nothing changed: empty page, same version.
    let r = h
        .get(UID, &format!("/assignments?sinceVersionId={v0}"))
        .await
        .ok();
    assert_eq!(r["size"], 0);
    assert_eq!(r["versionId"], v0.as_str());
    let id = h
        .submit(UID, "/assets/associate", json!({"assets": [{"adamId": "1200000006", "pricingParam": "STDQ"}], "serialNumbers": ["SPH000000010", "SPH000000011"]}))
        .await;
    h.finish(UID, &id).await;
    let v1 = h.get(UID, "/assignments").await.ok()["versionId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(v0, v1, "versionId changes on every write");
    assert_ne!(h.get(UID, "/assets").await.ok()["versionId"], a0.as_str());
    let r = h
        .get(UID, &format!("/assignments?sinceVersionId={v0}"))
        .await
        .ok();
    let serials: HashSet<&str> = r["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["serialNumber"].as_str().unwrap())
        .collect();
    assert_eq!(serials, HashSet::from(["SPH000000010", "SPH000000011"]));
    // Filters combine with sinceVersionId.
    let r = h
        .get(
            UID,
            &format!("/assignments?sinceVersionId={v0}&serialNumber=SPH000000011"),
        )
        .await
        .ok();
    assert_eq!(r["size"], 1);
    let r = h
        .get(UID, &format!("/assignments?sinceVersionId={v1}"))
        .await
        .ok();
    assert_eq!(r["size"], 0);
    // Users.
    let id = h
        .submit(
            UID,
            "/users/create",
            json!({"users": [{"clientUserId": "since-1", "email": "s@example.org"}]}),
        )
        .await;
    h.finish(UID, &id).await;
    let r = h
        .get(UID, &format!("/users?sinceVersionId={u0}"))
        .await
        .ok();
    assert_eq!(r["users"].as_array().unwrap().len(), 1);
    assert_eq!(r["users"][0]["clientUserId"], "since-1");
    assert_ne!(r["versionId"], u0.as_str());
}

#[tokio::test]
async fn bad_version_ids_are_9721() {
    let h = start(Preset::Demo).await;
    h.get(UID, "/assignments?sinceVersionId=nope")
        .await
        .assert_error(9721, 400);
    h.get(
        UID,
        "/assignments?sinceVersionId=5b0e6a1c-0f3d-11f0-8b9e-0242ac120002",
    )
    .await
    .assert_error(9721, 400);
    // A users version is not an assignments version, nor another location's.
    let u = h.get(UID, "/users").await.ok()["versionId"]
        .as_str()
        .unwrap()
        .to_owned();
    h.get(UID, &format!("/assignments?sinceVersionId={u}"))
        .await
        .assert_error(9721, 400);
    let other = h.get(demo::SPRINGFIELD_MIDDLE, "/assignments").await.ok()["versionId"]
        .as_str()
        .unwrap()
        .to_owned();
    h.get(UID, &format!("/assignments?sinceVersionId={other}"))
        .await
        .assert_error(9721, 400);
}

#[tokio::test]
async fn assignment_filters() {
    let h = start(Preset::Demo).await;
    let r = h.get(UID, "/assignments?adamId=1200000002").await.ok();
    assert_eq!(r["size"], 500);
    assert!(r["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["adamId"] == "1200000002"));
    let r = h
        .get(
            UID,
            &format!("/assignments?adamId={}&pricingParam=PLUS", demo::PLUS_APP),
        )
        .await
        .ok();
    assert_eq!(r["size"], 10);
    let r = h
        .get(UID, "/assignments?serialNumber=SPH000000001")
        .await
        .ok();
    assert!(r["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["serialNumber"] == "SPH000000001"));
    assert!(r["size"].as_u64().unwrap() >= 1);
    let r = h
        .get(UID, "/assignments?clientUserId=sph-user-0001")
        .await
        .ok();
    assert!(r["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["clientUserId"] == "sph-user-0001"));
}
