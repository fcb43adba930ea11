//! Checklist 2: the envelope on every authenticated answer.

use serde_json::{json, Value};
use vppkit_sim::{demo, Preset};

use crate::support::start;

const UID: &str = demo::SPRINGFIELD_HIGH;

pub(crate) fn assert_apple_date(v: &Value) {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("not a date string: {v}"));
    assert!(
        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S+0000").is_ok(),
        "{s} is not in Apple's +0000 form"
    );
}

#[tokio::test]
async fn every_authenticated_answer_has_the_envelope() {
    let h = start(Preset::Demo).await;
    let event = h
        .submit(
            UID,
            "/assets/associate",
            json!({"assets": [{"adamId": "1200000006", "pricingParam": "STDQ"}], "serialNumbers": ["SPH000000001"]}),
        )
        .await;
    let answers = [
        h.get(UID, "/client/config").await.ok(),
        h.get(UID, "/assets").await.ok(),
        h.get(UID, "/assignments").await.ok(),
        h.get(UID, "/users").await.ok(),
        h.get(UID, &format!("/status?eventId={event}")).await.ok(),
        h.post(
            UID,
            "/users/create",
            json!({"users": [{"clientUserId": "env-1", "email": "env@example.org"}]}),
        )
        .await
        .ok(),
    ];
    for a in &answers {
        assert_eq!(a["uId"], UID, "{a}");
        assert_apple_date(&a["tokenExpirationDate"]);
        assert!(a.get("mdmInfo").is_none(), "no mdmInfo before a claim: {a}");
    }
    // Once set, mdmInfo is on every answer.
    h.post(
        UID,
        "/client/config",
        json!({"mdmInfo": {"id": "ours", "name": "Ours", "metadata": "ours.example.org"}}),
    )
    .await
    .ok();
    for path in [
        "/client/config",
        "/assets",
        "/assignments",
        "/users",
        &format!("/status?eventId={event}"),
    ] {
        let a = h.get(UID, path).await.ok();
        assert_eq!(
            a["mdmInfo"],
            json!({"id": "ours", "metadata": "ours.example.org", "name": "Ours"}),
            "{path}"
        );
    }
    let e = h
        .post(
            UID,
            "/assets/disassociate",
            json!({"assets": [{"adamId": "1200000006", "pricingParam": "STDQ"}], "serialNumbers": ["SPH000000001"]}),
        )
        .await
        .ok();
    assert_eq!(e["mdmInfo"]["id"], "ours");
    // Another MDM writes its own: every answer now shows it.
    h.sim
        .control()
        .set_mdm_info(
            UID,
            Some(vppkit_core::MdmInfo::new("theirs", "Theirs", "x").unwrap()),
        )
        .unwrap();
    assert_eq!(h.get(UID, "/assets").await.ok()["mdmInfo"]["id"], "theirs");
}
