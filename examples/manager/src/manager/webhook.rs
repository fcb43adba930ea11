//! The notification receiver: an axum route that hands Apple's POSTs to
//! `Engine::handle_notification` and answers with the status it gives.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use serde::Serialize;
use vppkit::engine::{Engine, NotificationOutcome};

/// The path the manager serves notifications on.
pub(crate) const PATH: &str = "/vpp/notifications";

/// What the receiver did with the notifications it got.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    applied: AtomicU64,
    duplicate: AtomicU64,
    test: AtomicU64,
    ignored: AtomicU64,
    deferred: AtomicU64,
    refused: AtomicU64,
}

/// A snapshot of [`Counters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NotificationCounts {
    pub(crate) applied: u64,
    pub(crate) duplicate: u64,
    pub(crate) test: u64,
    pub(crate) ignored: u64,
    pub(crate) deferred: u64,
    pub(crate) refused: u64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> NotificationCounts {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        NotificationCounts {
            applied: get(&self.applied),
            duplicate: get(&self.duplicate),
            test: get(&self.test),
            ignored: get(&self.ignored),
            deferred: get(&self.deferred),
            refused: get(&self.refused),
        }
    }
}

#[derive(Clone)]
struct Hook {
    engine: Engine,
    counters: Arc<Counters>,
}

/// A router with the notification route at `path`.
pub(crate) fn router(engine: Engine, path: &str, counters: Arc<Counters>) -> Router {
    Router::new()
        .route(path, post(receive))
        .with_state(Hook { engine, counters })
}

async fn receive(State(hook): State<Hook>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let pairs = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())));
    let c = &hook.counters;
    let status = match hook.engine.handle_notification(pairs, &body).await {
        Ok(outcome) => {
            let counter = match &outcome {
                NotificationOutcome::Applied { .. } => &c.applied,
                NotificationOutcome::Duplicate => &c.duplicate,
                NotificationOutcome::Test => &c.test,
                NotificationOutcome::Deferred(_) => &c.deferred,
                _ => &c.ignored,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            outcome.http_status()
        }
        Err(refused) => {
            c.refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %refused, "notification refused");
            refused.http_status()
        }
    };
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}
