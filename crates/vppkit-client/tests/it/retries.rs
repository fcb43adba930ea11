//! Retry sequences, step by step.

use std::time::{Duration, Instant, SystemTime};

use serde_json::json;
use vppkit_client::{Error, ErrorNumber, ManageAssetsRequest, RetryPolicy};
use vppkit_core::{AdamId, AssetKey, PricingParam, SerialNumber};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{apple_error, builder, client, server, with_envelope};

async fn mount_seq(server: &MockServer, m: &str, p: &str, steps: Vec<ResponseTemplate>) {
    for step in steps {
        Mock::given(method(m))
            .and(path(p))
            .respond_with(step)
            .up_to_n_times(1)
            .expect(1)
            .mount(server)
            .await;
    }
}

fn ok_config() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(with_envelope(json!({"locationName": "L"})))
}

fn throttled() -> ResponseTemplate {
    ResponseTemplate::new(429)
        .set_body_json(apple_error(9646, "There are too many recent requests."))
}

#[tokio::test]
async fn throttling_backs_off_exponentially_then_succeeds() {
    let server = server().await;
    mount_seq(
        &server,
        "GET",
        "/mdm/v2/client/config",
        vec![throttled(), throttled(), ok_config()],
    )
    .await;
    let c = builder(&server)
        .retry_policy(
            RetryPolicy::new()
                .backoff(Duration::from_millis(100), Duration::from_secs(1), 2.0)
                .jitter(false),
        )
        .build()
        .unwrap();
    let start = Instant::now();
    let r = c.client_config().await.unwrap();
    assert_eq!(r.body.location_name.as_deref(), Some("L"));
    // Waits of 100 ms then 200 ms.
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn throttling_gives_up_after_max_attempts() {
    let server = server().await;
    Mock::given(method("GET"))
        .and(path("/mdm/v2/client/config"))
        .respond_with(throttled())
        .expect(4)
        .mount(&server)
        .await;
    let e = client(&server).client_config().await.unwrap_err();
    assert_eq!(e.error_number(), Some(ErrorNumber::TooManyRequests));
    assert_eq!(e.status(), Some(429));
    assert!(e.is_retryable());
}

#[tokio::test]
async fn retry_after_seconds_on_5xx_is_honoured() {
    let server = server().await;
    mount_seq(
        &server,
        "GET",
        "/mdm/v2/client/config",
        vec![
            ResponseTemplate::new(503)
                .insert_header("Retry-After", "1")
                .set_body_json(apple_error(9729, "temporarily unavailable")),
            ok_config(),
        ],
    )
    .await;
    let start = Instant::now();
    client(&server).client_config().await.unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(990),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn retry_after_http_date_on_429_is_honoured() {
    let server = server().await;
    let when = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2));
    mount_seq(
        &server,
        "GET",
        "/mdm/v2/client/config",
        vec![
            ResponseTemplate::new(429).insert_header("Retry-After", when.as_str()),
            ok_config(),
        ],
    )
    .await;
    let start = Instant::now();
    client(&server).client_config().await.unwrap();
    // HTTP dates have one-second resolution: at least ~1 s remain.
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn retry_after_beyond_the_time_budget_gives_up_at_once() {
    let server = server().await;
    Mock::given(method("GET"))
        .and(path("/mdm/v2/client/config"))
        .respond_with(ResponseTemplate::new(503).insert_header("Retry-After", "120"))
        .expect(1)
        .mount(&server)
        .await;
    let start = Instant::now();
    let e = client(&server).client_config().await.unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(e.retry_after(), Some(Duration::from_secs(120)));
    assert!(matches!(e, Error::Http { status: 503, .. }));
}

#[tokio::test]
async fn bare_server_errors_on_reads_are_retried() {
    let server = server().await;
    mount_seq(
        &server,
        "GET",
        "/mdm/v2/client/config",
        vec![
            ResponseTemplate::new(500).set_body_string("oops"),
            ResponseTemplate::new(502),
            ok_config(),
        ],
    )
    .await;
    client(&server).client_config().await.unwrap();
}

fn write() -> ManageAssetsRequest {
    ManageAssetsRequest::devices(
        vec![AssetKey::new(AdamId::new("1").unwrap(), PricingParam::Stdq)],
        vec![SerialNumber::new("S1").unwrap()],
    )
}

#[tokio::test]
async fn refused_writes_are_retried() {
    // 9646 and Apple's own 5xx error bodies are synchronous refusals: nothing was done.
    let server = server().await;
    mount_seq(
        &server,
        "POST",
        "/mdm/v2/assets/associate",
        vec![
            throttled(),
            ResponseTemplate::new(503).set_body_json(apple_error(9729, "temporarily unavailable")),
            ResponseTemplate::new(500).set_body_json(apple_error(9603, "internal error")),
            ResponseTemplate::new(200).set_body_json(with_envelope(json!({"eventId": "ev"}))),
        ],
    )
    .await;
    let r = client(&server).associate_assets(&write()).await.unwrap();
    assert_eq!(r.body.event_id.as_str(), "ev");
}

#[tokio::test]
async fn permanent_errors_are_not_retried() {
    let server = server().await;
    Mock::given(method("POST"))
        .and(path("/mdm/v2/assets/associate"))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(apple_error(9707, "not device assignable")),
        )
        .expect(1)
        .mount(&server)
        .await;
    let e = client(&server)
        .associate_assets(&write())
        .await
        .unwrap_err();
    assert_eq!(
        e.error_number(),
        Some(ErrorNumber::AssetNotDeviceAssignable)
    );
}
