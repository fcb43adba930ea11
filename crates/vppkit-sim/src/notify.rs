//! Webhook delivery: bearer token, retries, and the drop/duplicate/reorder switches.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, Notify};
use uuid::Uuid;
use vppkit_core::{NotificationId, Secret, Uid};

use crate::config::SimConfig;
use crate::location::NotifyConfig;
use crate::truth::{DeliveryOutcome, NotificationRecord};

/// Switches that make notification delivery misbehave, as Apple's may.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NotificationFaults {
    /// Do not send anything (tests the fallback to status polling and sync).
    pub drop: bool,
    /// Send every notification twice with the same `notificationId`.
    pub duplicate: bool,
    /// Send each batch of queued notifications in reverse order.
    pub reorder: bool,
}

impl NotificationFaults {
    /// No faults.
    pub fn none() -> Self {
        Self::default()
    }

    /// Drop every notification.
    pub fn dropping() -> Self {
        Self {
            drop: true,
            ..Self::default()
        }
    }

    /// Deliver every notification twice.
    pub fn duplicating() -> Self {
        Self {
            duplicate: true,
            ..Self::default()
        }
    }

    /// Deliver batches in reverse order.
    pub fn reordering() -> Self {
        Self {
            reorder: true,
            ..Self::default()
        }
    }
}

/// A notification ready to send.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(crate) uid: Uid,
    pub(crate) id: Uuid,
    pub(crate) kind: &'static str,
    pub(crate) body: Bytes,
    pub(crate) url: String,
    pub(crate) auth: Secret,
}

impl Outgoing {
    pub(crate) fn new(
        uid: &Uid,
        id: Uuid,
        kind: &'static str,
        payload: serde_json::Value,
        target: NotifyConfig,
    ) -> Self {
        let body = serde_json::json!({
            "notification": payload,
            "notificationId": id.hyphenated().to_string(),
            "notificationType": kind,
            "uId": uid.as_str(),
        });
        Self {
            uid: uid.clone(),
            id,
            kind,
            body: Bytes::from(serde_json::to_vec(&body).unwrap_or_default()),
            url: target.url,
            auth: target.auth,
        }
    }
}

#[derive(Debug)]
struct LogEntry {
    seq: u64,
    uid: Uid,
    id: Uuid,
    kind: &'static str,
    body: Bytes,
    outcome: DeliveryOutcome,
}

#[derive(Debug, Default)]
struct Log {
    entries: VecDeque<LogEntry>,
    next_seq: u64,
}

/// The delivery queue, the log, and the fault switches.
#[derive(Debug)]
pub(crate) struct Notifier {
    tx: mpsc::UnboundedSender<(u64, Outgoing)>,
    rx: Mutex<Option<mpsc::UnboundedReceiver<(u64, Outgoing)>>>,
    log: Mutex<Log>,
    faults: Mutex<NotificationFaults>,
    in_flight: AtomicUsize,
    idle: Notify,
    client: reqwest::Client,
    attempts: u32,
    retry_delay: Duration,
    log_limit: usize,
}

impl Notifier {
    pub(crate) fn new(config: &SimConfig) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let client = reqwest::Client::builder()
            .timeout(config.notification_timeout)
            .build()
            .unwrap_or_default();
        Self {
            tx,
            rx: Mutex::new(Some(rx)),
            log: Mutex::new(Log::default()),
            faults: Mutex::new(NotificationFaults::default()),
            in_flight: AtomicUsize::new(0),
            idle: Notify::new(),
            client,
            attempts: config.notification_attempts,
            retry_delay: config.notification_retry_delay,
            log_limit: config.notification_log_limit,
        }
    }

    pub(crate) fn set_faults(&self, faults: NotificationFaults) {
        *lock(&self.faults) = faults;
    }

    fn record(&self, n: &Outgoing, outcome: DeliveryOutcome) -> u64 {
        let mut log = lock(&self.log);
        let seq = log.next_seq;
        log.next_seq += 1;
        log.entries.push_back(LogEntry {
            seq,
            uid: n.uid.clone(),
            id: n.id,
            kind: n.kind,
            body: n.body.clone(),
            outcome,
        });
        while log.entries.len() > self.log_limit {
            log.entries.pop_front();
        }
        seq
    }

    fn set_outcome(&self, seq: u64, outcome: DeliveryOutcome) {
        let mut log = lock(&self.log);
        let first = log.entries.front().map_or(0, |e| e.seq);
        if let Some(e) = seq
            .checked_sub(first)
            .and_then(|i| log.entries.get_mut(i as usize))
        {
            e.outcome = outcome;
        }
    }

    /// Queues notifications for the delivery task.
    pub(crate) fn enqueue(&self, items: Vec<Outgoing>) {
        for n in items {
            let seq = self.record(&n, DeliveryOutcome::Queued);
            self.in_flight.fetch_add(1, Ordering::SeqCst);
            if self.tx.send((seq, n)).is_err() {
                self.finish(seq, DeliveryOutcome::Failed { attempts: 0 });
            }
        }
    }

    fn finish(&self, seq: u64, outcome: DeliveryOutcome) {
        self.set_outcome(seq, outcome);
        if self.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }

    /// Sends once (TEST_NOTIFICATION on subscribe); `true` on a 2xx answer.
    pub(crate) async fn send_now(&self, n: &Outgoing) -> bool {
        let ok = self.post(n).await;
        self.record(
            n,
            if ok {
                DeliveryOutcome::Delivered {
                    attempts: 1,
                    copies: 1,
                }
            } else {
                DeliveryOutcome::Failed { attempts: 1 }
            },
        );
        ok
    }

    async fn post(&self, n: &Outgoing) -> bool {
        let result = self
            .client
            .post(&n.url)
            .header("Authorization", format!("Bearer {}", n.auth.expose()))
            .header("Content-Type", "application/json")
            .body(n.body.clone())
            .send()
            .await;
        matches!(result, Ok(r) if r.status().is_success())
    }

    async fn deliver(&self, seq: u64, n: Outgoing, faults: NotificationFaults) {
        if faults.drop {
            self.finish(seq, DeliveryOutcome::Dropped);
            return;
        }
        // At most `self.attempts` HTTP attempts for this notification in all
        // (Apple: up to three); the duplicate switch sends a second copy only
        // when attempts are left.
        let copies = if faults.duplicate { 2 } else { 1 };
        let mut attempts = 0;
        let mut delivered = 0;
        for _ in 0..copies {
            while attempts < self.attempts {
                if attempts > 0 && delivered == 0 {
                    tokio::time::sleep(self.retry_delay).await;
                }
                attempts += 1;
                if self.post(&n).await {
                    delivered += 1;
                    break;
                }
            }
        }
        let outcome = if delivered > 0 {
            DeliveryOutcome::Delivered {
                attempts,
                copies: delivered,
            }
        } else {
            DeliveryOutcome::Failed { attempts }
        };
        self.finish(seq, outcome);
    }

    /// The delivery loop (spawned by `start`).
    pub(crate) async fn run(self: Arc<Self>) {
        let Some(mut rx) = lock(&self.rx).take() else {
            return;
        };
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while let Ok(more) = rx.try_recv() {
                batch.push(more);
            }
            let faults = *lock(&self.faults);
            if faults.reorder {
                batch.reverse();
            }
            for (seq, n) in batch {
                self.deliver(seq, n, faults).await;
            }
        }
    }

    /// Waits until nothing is queued or being delivered (or `timeout` passes).
    pub(crate) async fn flush(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.idle.notified();
            if self.in_flight.load(Ordering::SeqCst) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.in_flight.load(Ordering::SeqCst) == 0;
            }
        }
    }

    /// The log, oldest first, optionally for one location.
    pub(crate) fn records(&self, uid: Option<&str>) -> Vec<NotificationRecord> {
        lock(&self.log)
            .entries
            .iter()
            .filter(|e| uid.is_none_or(|u| e.uid.as_str() == u))
            .filter_map(|e| {
                Some(NotificationRecord {
                    uid: e.uid.clone(),
                    notification_id: NotificationId::new(e.id.hyphenated().to_string()).ok()?,
                    notification_type: e.kind.to_owned(),
                    body: serde_json::from_slice(&e.body).ok()?,
                    outcome: e.outcome,
                })
            })
            .collect()
    }
}

/// Locks a mutex, ignoring poisoning (state stays usable after a panic in a test).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
