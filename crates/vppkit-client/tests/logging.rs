//! Tracing output: one span per call with method, path, attempt and status, and
//! never the content token.
//!
//! This test has its own binary on purpose: `tracing` caches each callsite's
//! interest process-wide, and other tests making requests on other threads with
//! no subscriber can race the scoped subscriber set here, so spans would go
//! missing at random.

#[allow(dead_code, unreachable_pub)]
#[path = "it/support.rs"]
mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::json;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::fmt::MakeWriter;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use support::{apple_error, client, server, token_file, with_envelope, INNER};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn spans_carry_call_details_but_never_the_token() {
    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(buffer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = server().await;
    Mock::given(method("GET"))
        .and(path("/mdm/v2/client/config"))
        .respond_with(ResponseTemplate::new(429).set_body_json(apple_error(9646, "slow down")))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/mdm/v2/client/config"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(with_envelope(json!({
                "notificationAuthToken": "webhook-secret-value",
                "mdmInfo": {"id": "someone-else", "name": "Other", "metadata": "x"}
            }))),
        )
        .mount(&server)
        .await;
    let c = support::builder(&server)
        .expected_mdm_id("me")
        .build()
        .unwrap();
    c.client_config().await.unwrap();
    Mock::given(method("GET"))
        .and(path("/mdm/v2/status"))
        .respond_with(ResponseTemplate::new(401).set_body_json(apple_error(9625, "revoked")))
        .mount(&server)
        .await;
    let _ = client(&server)
        .event_status(&vppkit_core::EventId::new("e").unwrap())
        .await;

    let out = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(out.contains("vppkit_client.request"), "{out}");
    assert!(
        out.contains("path=\"/client/config\"") || out.contains("path=/client/config"),
        "{out}"
    );
    assert!(out.contains("attempt=2"), "{out}");
    assert!(out.contains("status=429"), "{out}");
    assert!(out.contains("claimed by another MDM"), "{out}");
    assert!(!out.contains(&token_file()), "token leaked: {out}");
    assert!(!out.contains(INNER), "inner token leaked: {out}");
    assert!(
        !out.contains("webhook-secret-value"),
        "webhook secret leaked: {out}"
    );
}
