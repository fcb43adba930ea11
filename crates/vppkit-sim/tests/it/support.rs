//! Helpers: a raw HTTP client speaking to the simulator.

#![allow(dead_code)]

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use vppkit_sim::{Preset, RunningSimulator, SimClock, Simulator, TokenFile};

/// A started simulator and a raw client.
pub(crate) struct Harness {
    pub(crate) sim: RunningSimulator,
    pub(crate) http: reqwest::Client,
}

/// A response: status, headers, JSON body (Null when not JSON).
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: Value,
}

impl Reply {
    pub(crate) fn error_number(&self) -> Option<u64> {
        self.body.get("errorNumber").and_then(Value::as_u64)
    }

    #[track_caller]
    pub(crate) fn assert_error(&self, number: u64, status: u16) {
        assert_eq!(self.error_number(), Some(number), "body: {}", self.body);
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
    }

    #[track_caller]
    pub(crate) fn ok(self) -> Value {
        assert_eq!(self.status, StatusCode::OK, "body: {}", self.body);
        assert!(
            self.body.get("errorNumber").is_none(),
            "body: {}",
            self.body
        );
        self.body
    }
}

pub(crate) async fn start(preset: Preset) -> Harness {
    start_with(
        Simulator::builder()
            .preset(preset)
            .clock(SimClock::manual()),
    )
    .await
}

pub(crate) async fn start_with(builder: vppkit_sim::SimulatorBuilder) -> Harness {
    let sim = builder.start().await.expect("simulator starts");
    Harness {
        sim,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap(),
    }
}

impl Harness {
    pub(crate) fn token(&self, uid: &str) -> TokenFile {
        self.sim
            .token_files()
            .into_iter()
            .find(|t| t.uid.as_str() == uid)
            .expect("a token for the location")
    }

    pub(crate) fn bearer(&self, uid: &str) -> String {
        self.token(uid).content.expose().to_owned()
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.sim.base_url(), path)
    }

    pub(crate) async fn raw(
        &self,
        method: Method,
        path: &str,
        auth: Option<&str>,
        content_type: Option<&str>,
        body: Option<String>,
    ) -> Reply {
        let mut req = self.http.request(method, self.url(path));
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body read");
        Reply {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    pub(crate) async fn get(&self, uid: &str, path: &str) -> Reply {
        let auth = format!("Bearer {}", self.bearer(uid));
        self.raw(Method::GET, path, Some(&auth), None, None).await
    }

    pub(crate) async fn post(&self, uid: &str, path: &str, body: Value) -> Reply {
        let auth = format!("Bearer {}", self.bearer(uid));
        self.raw(
            Method::POST,
            path,
            Some(&auth),
            Some("application/json"),
            Some(body.to_string()),
        )
        .await
    }

    /// POSTs a write and returns the event id (asserting acceptance).
    pub(crate) async fn submit(&self, uid: &str, path: &str, body: Value) -> String {
        let r = self.post(uid, path, body).await.ok();
        r["eventId"].as_str().expect("eventId").to_owned()
    }

    pub(crate) async fn status(&self, uid: &str, event_id: &str) -> Value {
        self.get(uid, &format!("/status?eventId={event_id}"))
            .await
            .ok()
    }

    /// Completes pending events (manual clock) and returns the status.
    pub(crate) async fn finish(&self, uid: &str, event_id: &str) -> Value {
        self.sim.control().complete_pending();
        self.status(uid, event_id).await
    }

    /// Walks every page of a list endpoint, returning the items and the
    /// versionId of the first page.
    pub(crate) async fn walk(&self, uid: &str, path: &str, key: &str) -> (Vec<Value>, String) {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut items = Vec::new();
        let mut index = 0;
        let mut version = String::new();
        loop {
            let page = self
                .get(uid, &format!("{path}{sep}pageIndex={index}"))
                .await
                .ok();
            if index == 0 {
                version = page["versionId"].as_str().unwrap_or_default().to_owned();
            }
            items.extend(page[key].as_array().cloned().unwrap_or_default());
            match page.get("nextPageIndex").and_then(Value::as_u64) {
                Some(n) => {
                    assert_eq!(n, index + 1);
                    index = n;
                }
                None => break,
            }
        }
        (items, version)
    }
}

/// A notification receiver on 127.0.0.1 that records every POST and can fail
/// the first `fail_first` requests with HTTP 500.
/// What a receiver saw: `(Authorization header, body)` per request.
type Seen = std::sync::Arc<std::sync::Mutex<Vec<(Option<String>, Value)>>>;

pub(crate) struct Receiver {
    pub(crate) url: String,
    pub(crate) seen: Seen,
    pub(crate) fail_first: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    pub(crate) async fn start(fail_first: usize) -> Receiver {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let seen: Seen = Arc::default();
        let fail = Arc::new(AtomicUsize::new(fail_first));
        let (s2, f2) = (Arc::clone(&seen), Arc::clone(&fail));
        let app =
            axum::Router::new().fallback(move |headers: axum::http::HeaderMap, body: String| {
                let (seen, fail) = (Arc::clone(&s2), Arc::clone(&f2));
                async move {
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let value = serde_json::from_str(&body).unwrap_or(Value::Null);
                    seen.lock().unwrap().push((auth, value));
                    let left = fail.load(Ordering::SeqCst);
                    if left > 0 {
                        fail.store(left - 1, Ordering::SeqCst);
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    }
                }
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            url: format!("http://{addr}/vpp/notify"),
            seen,
            fail_first: fail,
            task,
        }
    }

    /// Every body received, in order.
    pub(crate) fn bodies(&self) -> Vec<Value> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| b.clone())
            .collect()
    }

    /// Bodies of one notification type.
    pub(crate) fn of_type(&self, kind: &str) -> Vec<Value> {
        self.bodies()
            .into_iter()
            .filter(|b| b["notificationType"] == kind)
            .collect()
    }

    /// Every Authorization header received.
    pub(crate) fn auth_headers(&self) -> Vec<Option<String>> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(a, _)| a.clone())
            .collect()
    }
}

/// Subscribes a location to every type with a receiver.
pub(crate) async fn subscribe(h: &Harness, uid: &str, r: &Receiver) -> Value {
    h.post(
        uid,
        "/client/config",
        serde_json::json!({
            "mdmInfo": {"id": "sim-test-mdm", "name": "SimTest", "metadata": "tests.example.org"},
            "notificationUrl": r.url,
            "notificationAuthToken": "shared-secret-for-tests",
            "notificationTypes": ["ASSET_MANAGEMENT", "ASSET_COUNT", "USER_MANAGEMENT", "USER_ASSOCIATED"],
        }),
    )
    .await
    .ok()
}

/// A manual-clock demo simulator that accepts http:// loopback notifications.
pub(crate) async fn start_notifying(preset: Preset) -> Harness {
    start_with(
        Simulator::builder()
            .preset(preset)
            .clock(SimClock::manual())
            .allow_http_loopback_notifications(true)
            .notification_attempts(3, Duration::from_millis(10)),
    )
    .await
}
