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

/// In-repository copy of one of Apple's documented examples.
fn documented(name: &str) -> serde_json::Value {
    let path = format!(
        "{}/tests/resources/documented/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("documented example is JSON")
}

#[tokio::test]
async fn error_codes_are_the_ones_apples_example_lists() {
    let h = start(Preset::Demo).await;
    let cfg = h
        .raw(Method::GET, "/service/config", None, None, None)
        .await
        .ok();
    let numbers = |v: &serde_json::Value| -> Vec<u64> {
        v["errorCodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["errorNumber"].as_u64().unwrap())
            .collect()
    };
    let apple = documented("sc_doc.json");
    assert_eq!(numbers(&cfg), numbers(&apple));
    let ours = numbers(&cfg);
    assert!(ours.contains(&9634) && ours.contains(&9709) && ours.contains(&9716));
    assert!(!ours.contains(&9622) && !ours.contains(&9729));
    // Apple's wording where a documented example shows it.
    let message = |n: u64| -> String {
        cfg["errorCodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["errorNumber"] == n)
            .map(|c| c["errorMessage"].as_str().unwrap().to_owned())
            .unwrap()
    };
    let failed = documented("status_failed_9609.json");
    assert_eq!(message(9609), failed["failures"][0]["errorMessage"]);
    assert_eq!(
        message(9709),
        "There aren't enough assets available to complete this association."
    );
    assert_eq!(
        message(9646),
        "There are too many recent requests. Try again momentarily."
    );
    assert_eq!(message(9625), "The server has revoked the sToken.");
    assert_eq!(
        message(9728),
        "The provided notification URL is unreachable."
    );
}
