//! Every error class: Apple error bodies (whatever the status), HTTP errors
//! without a body, malformed answers, lost answers to writes; no token in any
//! error text.

use std::time::Duration;

use serde_json::json;
use vppkit_client::{
    AssignmentFilter, Error, ErrorNumber, ManageAssetsRequest, RetryPolicy, TokenProblem,
};
use vppkit_core::{AdamId, AssetKey, PricingParam, SerialNumber};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::support::{apple_error, builder, client, server, token_file, INNER};

fn assert_no_secret(e: &Error) {
    let text = format!("{e} {e:?}");
    assert!(!text.contains(&token_file()), "token in {text}");
    assert!(!text.contains(INNER), "inner token in {text}");
}

async fn get_error(status: u16, body: serde_json::Value) -> Error {
    let server = server().await;
    Mock::given(method("GET"))
        .and(path("/mdm/v2/client/config"))
        .respond_with(ResponseTemplate::new(status).set_body_json(body))
        .mount(&server)
        .await;
    let e = client(&server).client_config().await.unwrap_err();
    assert_no_secret(&e);
    e
}

#[tokio::test]
async fn token_problems() {
    for (status, number, problem) in [
        (401, 9621, TokenProblem::Expired),
        (401, 9625, TokenProblem::Revoked),
        (401, 9622, TokenProblem::Invalid),
        (200, 9622, TokenProblem::Invalid), // Apple answers 9622 with HTTP 200
        (401, 9601, TokenProblem::Invalid),
        (401, 9722, TokenProblem::Invalid),
    ] {
        let e = get_error(status, apple_error(number, "token trouble")).await;
        assert_eq!(e.token_problem(), Some(problem), "{number} / {status}");
        assert_eq!(e.status(), Some(status));
        assert_eq!(e.error_number().unwrap().number(), number);
        assert!(!e.is_retryable());
    }
}

#[tokio::test]
async fn every_documented_synchronous_number_is_typed_through_the_client() {
    for (number, status) in [
        (9602, 400),
        (9609, 400),
        (9623, 400),
        (9634, 410),
        (9637, 403),
        (9647, 403),
        (9650, 400),
        (9700, 400),
        (9701, 400),
        (9702, 400),
        (9703, 400),
        (9704, 400),
        (9705, 400),
        (9706, 400),
        (9707, 400),
        (9708, 400),
        (9710, 400),
        (9711, 400),
        (9712, 400),
        (9713, 400),
        (9714, 400),
        (9715, 400),
        (9717, 400),
        (9718, 400),
        (9719, 400),
        (9720, 400),
        (9721, 400),
        (9723, 400),
        (9724, 400),
        (9725, 400),
        (9726, 405),
        (9727, 415),
        (9728, 400),
    ] {
        let e = get_error(status, apple_error(number, "refused")).await;
        let n = e.error_number().unwrap();
        assert!(!matches!(n, ErrorNumber::Other(_)), "{number}");
        assert_eq!(n.number(), number);
        assert!(!e.is_retryable(), "{number}");
        assert_eq!(e.token_problem(), None);
    }
}

#[tokio::test]
async fn error_with_info_and_unknown_number() {
    let e = get_error(
        400,
        json!({"errorNumber": 9702, "errorMessage": "too many", "errorInfo": {"serialNumbers": ["A1"]}, "new": 1}),
    )
    .await;
    let api = e.api_error().unwrap();
    assert_eq!(api.number, ErrorNumber::TooManySerialNumbers);
    assert_eq!(api.info.as_ref().unwrap().serial_numbers[0].as_str(), "A1");
    let e = get_error(400, apple_error(9999, "new kind")).await;
    assert_eq!(e.error_number(), Some(ErrorNumber::Other(9999)));
}

#[tokio::test]
async fn http_errors_without_apple_body() {
    let server = server().await;
    Mock::given(method("GET"))
        .and(path("/mdm/v2/client/config"))
        .respond_with(ResponseTemplate::new(404).set_body_string("<html>not found</html>"))
        .expect(1)
        .mount(&server)
        .await;
    let e = client(&server).client_config().await.unwrap_err();
    assert!(matches!(e, Error::Http { status: 404, .. }), "{e:?}");
    assert!(!e.is_retryable());
    assert_no_secret(&e);
}

#[tokio::test]
async fn malformed_page_is_a_decode_error() {
    // The page itself is not the documented shape (a bad record alone is skipped
    // and reported instead: tests/it/lenient.rs).
    let server = server().await;
    Mock::given(method("GET"))
        .and(path("/mdm/v2/assignments"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"assignments": {"adamId": "1"}, "currentPageIndex": "zero"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let e = client(&server)
        .assignments(AssignmentFilter::new())
        .collect_all()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Decode { .. }), "{e:?}");
    // vppkit's own error type, the parser's error one level below it.
    if let Error::Decode { source, .. } = &e {
        assert!(source.line() >= 1, "{source}");
        let inner = std::error::Error::source(source).expect("the parser's error");
        assert_eq!(inner.to_string(), source.to_string());
    }
    assert_no_secret(&e);
}

fn one_request() -> ManageAssetsRequest {
    ManageAssetsRequest::devices(
        vec![AssetKey::new(AdamId::new("1").unwrap(), PricingParam::Stdq)],
        vec![SerialNumber::new("C02XK0AAJGH5").unwrap()],
    )
}

#[tokio::test]
async fn lost_answer_to_a_write_is_outcome_unknown_and_not_resent() {
    let server = server().await;
    Mock::given(method("POST"))
        .and(path("/mdm/v2/assets/associate"))
        .respond_with(ResponseTemplate::new(502).set_body_string("bad gateway"))
        .expect(1)
        .mount(&server)
        .await;
    let e = client(&server)
        .associate_assets(&one_request())
        .await
        .unwrap_err();
    assert!(e.is_outcome_unknown(), "{e:?}");
    assert!(!e.is_retryable());
    assert_eq!(e.status(), Some(502));
    assert_no_secret(&e);
}

#[tokio::test]
async fn timeout_on_a_write_is_outcome_unknown_and_not_resent() {
    let server = server().await;
    Mock::given(method("POST"))
        .and(path("/mdm/v2/assets/disassociate"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"eventId": "late"}))
                .set_delay(Duration::from_millis(500)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let c = builder(&server)
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let e = c.disassociate_assets(&one_request()).await.unwrap_err();
    assert!(e.is_outcome_unknown(), "{e:?}");
    assert_no_secret(&e);
}

#[tokio::test]
async fn unreadable_success_of_a_write_is_outcome_unknown() {
    let server = server().await;
    Mock::given(method("POST"))
        .and(path("/mdm/v2/assets/revoke"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"eventI"))
        .expect(1)
        .mount(&server)
        .await;
    let e = client(&server)
        .revoke_assets(&vppkit_client::RevokeAssetsRequest::new(
            vec![],
            vec![SerialNumber::new("A").unwrap()],
        ))
        .await
        .unwrap_err();
    assert!(e.is_outcome_unknown(), "{e:?}");
}

#[tokio::test]
async fn timeout_on_a_read_is_retried() {
    let server = server().await;
    Mock::given(method("GET"))
        .and(path("/mdm/v2/client/config"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({}))
                .set_delay(Duration::from_millis(500)),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/mdm/v2/client/config"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"locationName": "L"})))
        .expect(1)
        .mount(&server)
        .await;
    let c = builder(&server)
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let r = c.client_config().await.unwrap();
    assert_eq!(r.body.location_name.as_deref(), Some("L"));
}

#[tokio::test]
async fn connection_refused_write_is_a_plain_transport_error() {
    // Bind then drop a listener: nothing listens on that port.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c = vppkit_client::ClientBuilder::new(crate::support::token())
        .base_url(format!("http://127.0.0.1:{port}/mdm/v2"))
        .pacing(vppkit_client::Pacing::Off)
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    let e = c.associate_assets(&one_request()).await.unwrap_err();
    assert!(matches!(e, Error::Transport { .. }), "{e:?}");
    if let Error::Transport { source, .. } = &e {
        assert!(source.is_connect(), "nothing listens there: {source}");
        assert!(std::error::Error::source(source).is_some());
    }
    assert!(!e.is_outcome_unknown());
    assert_no_secret(&e);
}
