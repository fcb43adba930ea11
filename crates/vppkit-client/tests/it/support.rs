//! Shared helpers: a mock server that fails loudly on any unexpected request,
//! and clients pointed at it.

use std::time::Duration;

use serde_json::{json, Value};
use vppkit_client::{Client, ClientBuilder, Pacing, RetryPolicy};
use vppkit_core::ContentToken;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The inner token of the test content token.
pub(crate) const INNER: &str = "U29tZU9wYXF1ZVRva2VuMTIz";

/// The `.vpptoken` file content (the bearer credential).
pub(crate) fn token_file() -> String {
    ContentToken::encode_file(INNER, "2031-03-01T10:00:00-0800", "Example School District")
}

/// The parsed test token.
pub(crate) fn token() -> ContentToken {
    ContentToken::parse(&token_file()).expect("test token parses")
}

/// `Bearer <file content>`.
pub(crate) fn bearer_header() -> String {
    format!("Bearer {}", token_file())
}

/// A mock server whose catch-all answers 599 and fails the test on drop if hit.
pub(crate) async fn server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(599).set_body_string("UNEXPECTED REQUEST"))
        .with_priority(u8::MAX)
        .expect(0)
        .named("loud catch-all: no request should reach this")
        .mount(&server)
        .await;
    server
}

/// The base URL of the mock API.
pub(crate) fn base(server: &MockServer) -> String {
    format!("{}/mdm/v2", server.uri())
}

/// Fast retries for tests: 1 ms backoff, 4 attempts, no jitter.
pub(crate) fn fast_retry() -> RetryPolicy {
    RetryPolicy::new()
        .backoff(Duration::from_millis(1), Duration::from_millis(8), 2.0)
        .jitter(false)
        .max_attempts(4)
        .max_elapsed(Duration::from_secs(10))
}

/// A builder for a client of the mock, no pacing, fast retries.
pub(crate) fn builder(server: &MockServer) -> ClientBuilder {
    ClientBuilder::new(token())
        .base_url(base(server))
        .pacing(Pacing::Off)
        .retry_policy(fast_retry())
        .timeout(Duration::from_secs(5))
}

/// A client of the mock.
pub(crate) fn client(server: &MockServer) -> Client {
    builder(server).build().expect("client builds")
}

/// The envelope fields Apple adds to authenticated answers.
pub(crate) fn with_envelope(mut body: Value) -> Value {
    let obj = body.as_object_mut().expect("object");
    obj.insert("uId".into(), json!("7300112233445566"));
    obj.insert(
        "tokenExpirationDate".into(),
        json!("2031-03-01T18:00:00+0000"),
    );
    body
}

/// An Apple error body.
pub(crate) fn apple_error(number: i32, message: &str) -> Value {
    json!({"errorNumber": number, "errorMessage": message})
}

/// Path of a recorded payload (the crate's byte-for-byte copy, see its README).
pub(crate) fn recorded(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/resources/recorded")
        .join(name)
}
