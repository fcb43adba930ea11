//! Checklist 13: `service/config` points back at the simulator.

use reqwest::Method;
use vppkit_sim::{demo, Preset};

use crate::support::start;

#[tokio::test]
async fn urls_limits_codes_and_types() {
    let h = start(Preset::Demo).await;
    let cfg = h
        .raw(Method::GET, "/service/config", None, None, None)
        .await
        .ok();
    let base = h.sim.base_url();
    let urls = cfg["urls"].as_object().unwrap();
    for (name, path) in [
        ("clientConfig", "/client/config"),
        ("getAssets", "/assets"),
        ("getAssignments", "/assignments"),
        ("associateAssets", "/assets/associate"),
        ("disassociateAssets", "/assets/disassociate"),
        ("revokeAssets", "/assets/revoke"),
        ("eventStatus", "/status"),
        ("getUsers", "/users"),
        ("createUsers", "/users/create"),
        ("updateUsers", "/users/update"),
        ("retireUsers", "/users/retire"),
    ] {
        assert_eq!(urls[name], format!("{base}{path}"), "{name}");
    }
    assert_eq!(urls["contentMetadataLookup"], h.sim.metadata_url());
    assert!(urls["invitationEmail"]
        .as_str()
        .unwrap()
        .contains("%25inviteCode%25"));
    // Every URL works against the simulator.
    let auth = format!("Bearer {}", h.bearer(demo::ACME_LONDON));
    for name in ["getAssets", "getAssignments", "getUsers", "clientConfig"] {
        let r = h
            .http
            .get(urls[name].as_str().unwrap())
            .header("Authorization", &auth)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{name}");
    }
    let limits = &cfg["limits"];
    for (k, v) in [
        ("maxAssets", 25),
        ("maxClientUserIds", 1000),
        ("maxSerialNumbers", 1000),
        ("maxRevokeClientUserIds", 100),
        ("maxRevokeSerialNumbers", 100),
        ("maxUsers", 100),
        ("maxNotificationLength", 512),
        ("maxMdmIdLength", 100),
        ("maxMdmNameLength", 100),
        ("maxMdmMetadataLength", 255),
        ("maxRequestPerSecond", 15),
    ] {
        assert_eq!(limits[k], v, "{k}");
    }
    let codes: Vec<u64> = cfg["errorCodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["errorNumber"].as_u64().unwrap())
        .collect();
    for n in [9601, 9646, 9650, 9700, 9709, 9716, 9721, 9728] {
        assert!(codes.contains(&n), "{n}");
    }
    assert!(cfg["errorCodes"][0]["errorMessage"].is_string());
    assert_eq!(
        cfg["notificationTypes"],
        serde_json::json!([
            "ASSET_MANAGEMENT",
            "USER_MANAGEMENT",
            "USER_ASSOCIATED",
            "ASSET_COUNT"
        ])
    );
}
