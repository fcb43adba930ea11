//! Checklist 1: authentication errors, in order, and `service/config` without auth.

use reqwest::Method;
use vppkit_core::ContentToken;
use vppkit_sim::{demo, Preset, SimClock, Simulator};

use crate::support::{start, start_with};

const UID: &str = demo::SPRINGFIELD_HIGH;

#[tokio::test]
async fn auth_errors_follow_apple() {
    let h = start(Preset::Demo).await;
    let r = h.raw(Method::GET, "/assets", None, None, None).await;
    r.assert_error(9601, 401);
    for bad in [
        "Basic abc",
        "Bearer",
        "Bearer   ",
        "bearer abc",
        "Token abc",
    ] {
        let r = h.raw(Method::GET, "/assets", Some(bad), None, None).await;
        r.assert_error(9722, 401);
    }
    let r = h
        .raw(
            Method::GET,
            "/assets",
            Some("Bearer not-a-token"),
            None,
            None,
        )
        .await;
    // HTTP 200 with the error body by default: what real clients meet.
    r.assert_error(9622, 200);
    // The inner `token` field is not a credential: 9622, as abcli observed.
    let file = h.bearer(UID);
    let inner = ContentToken::parse(&file)
        .unwrap()
        .inner_token()
        .expose()
        .to_owned();
    let r = h
        .raw(
            Method::GET,
            "/assets",
            Some(&format!("Bearer {inner}")),
            None,
            None,
        )
        .await;
    r.assert_error(9622, 200);
    // The whole file content works.
    h.get(UID, "/assets").await.ok();
}

#[tokio::test]
async fn invalid_token_quirk_answers_http_200() {
    let h = start_with(
        Simulator::builder()
            .preset(Preset::Demo)
            .clock(SimClock::manual())
            .invalid_token_http_200(true),
    )
    .await;
    let r = h
        .raw(
            Method::GET,
            "/client/config",
            Some("Bearer nope"),
            None,
            None,
        )
        .await;
    r.assert_error(9622, 200);
    h.sim.control().set_invalid_token_http_200(false);
    let r = h
        .raw(
            Method::GET,
            "/client/config",
            Some("Bearer nope"),
            None,
            None,
        )
        .await;
    r.assert_error(9622, 401);
}

#[tokio::test]
async fn expired_and_revoked_tokens() {
    let h = start(Preset::Demo).await;
    let c = h.sim.control();
    let token = h.token(UID);
    c.expire_token(&token).unwrap();
    h.get(UID, "/assets").await.assert_error(9621, 401);
    c.revoke_token(&token).unwrap();
    // Revoked is reported before expired.
    h.get(UID, "/assets").await.assert_error(9625, 401);
    c.restore_token(&token).unwrap();
    h.get(UID, "/assets").await.ok();
    // A past expiry date is expiry too.
    c.set_token_expiry(&token, chrono::Utc::now() - chrono::Duration::days(1))
        .unwrap();
    h.get(UID, "/client/config").await.assert_error(9621, 401);
}

#[tokio::test]
async fn second_token_for_the_same_location() {
    let h = start(Preset::Demo).await;
    let c = h.sim.control();
    let first = h.token(UID);
    let second = c.add_token(UID, false).unwrap();
    assert_eq!(second.uid, first.uid);
    assert_ne!(second.content.expose(), first.content.expose());
    for t in [&first, &second] {
        let auth = format!("Bearer {}", t.content.expose());
        let r = h
            .raw(Method::GET, "/client/config", Some(&auth), None, None)
            .await
            .ok();
        assert_eq!(r["uId"], UID);
    }
    // A newer token that revokes the older ones.
    let third = c.add_token(UID, true).unwrap();
    for (t, want) in [(&first, Some(9625)), (&second, Some(9625)), (&third, None)] {
        let auth = format!("Bearer {}", t.content.expose());
        let r = h
            .raw(Method::GET, "/client/config", Some(&auth), None, None)
            .await;
        assert_eq!(r.error_number(), want);
    }
}

#[tokio::test]
async fn service_config_needs_no_auth_and_tolerates_it() {
    let h = start(Preset::Demo).await;
    let r = h
        .raw(Method::GET, "/service/config", None, None, None)
        .await
        .ok();
    assert!(r["limits"]["maxAssets"].is_number());
    let r = h
        .raw(
            Method::GET,
            "/service/config",
            Some("Bearer garbage"),
            None,
            None,
        )
        .await
        .ok();
    assert!(r["urls"].is_object());
}

#[tokio::test]
async fn a_forgotten_token_answers_9622_with_http_200() {
    let h = start_with(
        Simulator::builder()
            .preset(Preset::Demo)
            .clock(SimClock::manual()),
    )
    .await;
    let token = h.token(UID);
    h.get(UID, "/client/config").await.ok();
    h.sim.control().forget_token(&token).unwrap();
    let r = h
        .raw(
            Method::GET,
            "/client/config",
            Some(&format!("Bearer {}", token.content.expose())),
            None,
            None,
        )
        .await;
    r.assert_error(9622, 200);
    assert!(matches!(
        h.sim.control().forget_token(&token),
        Err(vppkit_sim::SimError::UnknownToken)
    ));
}
