//! Checklist 10: client config rules, TEST_NOTIFICATION and 9728.

use serde_json::json;
use vppkit_sim::{demo, Preset};

use crate::support::{start, start_notifying, Receiver};

const UID: &str = demo::ACME_LONDON;

#[tokio::test]
async fn limits_and_pairing_rules() {
    let h = start(Preset::Demo).await;
    let cases = [
        (json!({"mdmInfo": {"id": "a", "name": "b"}}), 9723),
        (
            json!({"mdmInfo": {"id": "", "name": "b", "metadata": "c"}}),
            9723,
        ),
        (
            json!({"mdmInfo": {"id": "a".repeat(101), "name": "b", "metadata": "c"}}),
            9724,
        ),
        (
            json!({"mdmInfo": {"id": "a", "name": "b".repeat(101), "metadata": "c"}}),
            9725,
        ),
        (
            json!({"mdmInfo": {"id": "a", "name": "b", "metadata": "c".repeat(256)}}),
            9713,
        ),
        (
            json!({"notificationUrl": "https://mdm.example.org/n"}),
            9710,
        ),
        (json!({"notificationAuthToken": "secret"}), 9710),
        (
            json!({"notificationUrl": format!("https://mdm.example.org/{}", "n".repeat(500)), "notificationAuthToken": "s"}),
            9711,
        ),
        (
            json!({"notificationUrl": "https://mdm.example.org/n", "notificationAuthToken": "s".repeat(513)}),
            9711,
        ),
        (
            json!({"notificationUrl": "http://mdm.example.org/n", "notificationAuthToken": "s"}),
            9712,
        ),
        (
            json!({"notificationUrl": "https://mdm.example.org/n?x=1", "notificationAuthToken": "s"}),
            9712,
        ),
        (
            json!({"notificationUrl": "not a url", "notificationAuthToken": "s"}),
            9712,
        ),
        // http:// on loopback is refused unless the switch is on.
        (
            json!({"notificationUrl": "http://127.0.0.1:9/n", "notificationAuthToken": "s"}),
            9712,
        ),
        (json!({"notificationTypes": ["NOT_A_TYPE"]}), 9602),
    ];
    for (body, number) in cases {
        let r = h.post(UID, "/client/config", body.clone()).await;
        r.assert_error(number, 400);
    }
    // Exactly at the limits is fine, and is stored and echoed.
    let info = json!({"id": "i".repeat(100), "metadata": "m".repeat(255), "name": "n".repeat(100)});
    let r = h
        .post(UID, "/client/config", json!({"mdmInfo": info}))
        .await
        .ok();
    assert_eq!(r["mdmInfo"], info);
    assert_eq!(h.get(UID, "/client/config").await.ok()["mdmInfo"], info);
    // A POST without mdmInfo keeps it.
    let r = h
        .post(
            UID,
            "/client/config",
            json!({"notificationTypes": ["ASSET_COUNT"]}),
        )
        .await
        .ok();
    assert_eq!(r["mdmInfo"], info);
    assert_eq!(r["subscribedNotificationTypes"], json!(["ASSET_COUNT"]));
}

#[tokio::test]
async fn setting_a_url_sends_test_notification_first() {
    let h = start_notifying(Preset::Demo).await;
    let r = Receiver::start(0).await;
    let body = json!({
        "mdmInfo": {"id": "m1", "name": "M", "metadata": "m.example.org"},
        "notificationUrl": r.url,
        "notificationAuthToken": "tok-123",
        "notificationTypes": ["ASSET_MANAGEMENT", "ASSET_COUNT"],
    });
    let cfg = h.post(UID, "/client/config", body).await.ok();
    assert_eq!(cfg["notificationUrl"], r.url.as_str());
    assert_eq!(cfg["notificationAuthToken"], "tok-123");
    assert_eq!(
        cfg["subscribedNotificationTypes"],
        json!(["ASSET_MANAGEMENT", "ASSET_COUNT"])
    );
    let got = r.bodies();
    assert_eq!(
        got.len(),
        1,
        "the test notification arrived before the answer"
    );
    assert_eq!(got[0]["notificationType"], "TEST_NOTIFICATION");
    assert_eq!(got[0]["notification"], json!({}));
    assert_eq!(got[0]["uId"], UID);
    assert_eq!(r.auth_headers()[0].as_deref(), Some("Bearer tok-123"));
    let again = h.get(UID, "/client/config").await.ok();
    assert_eq!(again["notificationUrl"], r.url.as_str());
    // Unsubscribe with empty strings.
    let off = h
        .post(
            UID,
            "/client/config",
            json!({"notificationUrl": "", "notificationAuthToken": ""}),
        )
        .await
        .ok();
    assert!(off.get("notificationUrl").is_none());
}

#[tokio::test]
async fn unreachable_url_is_9728_and_nothing_is_stored() {
    let h = start_notifying(Preset::Demo).await;
    // A port nobody listens on.
    let sock = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    drop(sock);
    let r = h
        .post(
            UID,
            "/client/config",
            json!({"mdmInfo": {"id": "x", "name": "X", "metadata": "x"},
                   "notificationUrl": format!("http://127.0.0.1:{port}/n"), "notificationAuthToken": "t"}),
        )
        .await;
    r.assert_error(9728, 400);
    // A receiver answering 500 is unreachable too.
    let failing = Receiver::start(1).await;
    let r = h
        .post(
            UID,
            "/client/config",
            json!({"notificationUrl": failing.url, "notificationAuthToken": "t"}),
        )
        .await;
    r.assert_error(9728, 400);
    let cfg = h.get(UID, "/client/config").await.ok();
    assert!(cfg.get("notificationUrl").is_none());
    assert!(cfg.get("mdmInfo").is_none());
}
