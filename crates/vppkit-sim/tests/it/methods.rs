//! Checklist 3: method and content-type checks.

use reqwest::Method;
use vppkit_sim::{demo, Preset};

use crate::support::start;

const UID: &str = demo::SPRINGFIELD_HIGH;

#[tokio::test]
async fn wrong_method_is_9726() {
    let h = start(Preset::Demo).await;
    let auth = format!("Bearer {}", h.bearer(UID));
    for (method, path) in [
        (Method::POST, "/assets"),
        (Method::DELETE, "/client/config"),
        (Method::GET, "/assets/associate"),
        (Method::PUT, "/users/create"),
        (Method::POST, "/status"),
        (Method::POST, "/service/config"),
    ] {
        let r = h
            .raw(
                method.clone(),
                path,
                Some(&auth),
                Some("application/json"),
                Some("{}".into()),
            )
            .await;
        r.assert_error(9726, 405);
    }
}

#[tokio::test]
async fn wrong_content_type_is_9727_and_bad_json_9602() {
    let h = start(Preset::Demo).await;
    let auth = format!("Bearer {}", h.bearer(UID));
    let body = r#"{"users":[{"clientUserId":"a"}]}"#.to_owned();
    for ct in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let r = h
            .raw(
                Method::POST,
                "/users/create",
                Some(&auth),
                ct,
                Some(body.clone()),
            )
            .await;
        r.assert_error(9727, 415);
    }
    let r = h
        .raw(
            Method::POST,
            "/users/create",
            Some(&auth),
            Some("application/json; charset=utf-8"),
            Some("{not json".into()),
        )
        .await;
    r.assert_error(9602, 400);
    h.raw(
        Method::POST,
        "/users/create",
        Some(&auth),
        Some("application/json;charset=UTF-8"),
        Some(body),
    )
    .await
    .ok();
}

#[tokio::test]
async fn unknown_path_is_404() {
    let h = start(Preset::Demo).await;
    let r = h.get(UID, "/nothing/here").await;
    assert_eq!(r.status.as_u16(), 404);
}
