//! The scheduler: every location synced every interval (with jitter), events
//! polled while operations are in flight, "sync now" on request.

use std::collections::HashMap;
use std::future::Future;
use std::hash::{Hash, Hasher};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use rand::SeedableRng;
use tokio::sync::mpsc;
use vppkit_core::LocationId;

use crate::engine::Engine;
use crate::error::Result;
use crate::progress::{ProgressReporter, SyncKind};

enum Command {
    SyncNow(Option<LocationId>, SyncKind),
}

/// Asks a running [`Scheduler`] for work.
#[derive(Debug, Clone)]
pub struct SchedulerHandle {
    tx: mpsc::UnboundedSender<Command>,
}

impl SchedulerHandle {
    /// Syncs one location (`Some`) or all (`None`) as soon as possible. Returns
    /// `false` if the scheduler has stopped.
    pub fn sync_now(&self, location: Option<LocationId>, kind: SyncKind) -> bool {
        self.tx.send(Command::SyncNow(location, kind)).is_ok()
    }
}

/// Runs the engine's periodic work until told to stop.
#[derive(Debug)]
pub struct Scheduler {
    engine: Engine,
    progress: ProgressReporter,
    rx: mpsc::UnboundedReceiver<Command>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::SyncNow(l, k) => write!(f, "SyncNow({l:?}, {k:?})"),
        }
    }
}

impl Engine {
    /// A scheduler for this engine and the handle to ask it for a sync now.
    pub fn scheduler(&self, progress: ProgressReporter) -> (Scheduler, SchedulerHandle) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Scheduler {
                engine: self.clone(),
                progress,
                rx,
            },
            SchedulerHandle { tx },
        )
    }

    /// When a location's next scheduled sync is due: its last sync plus the
    /// interval plus a jitter fixed for that (location, last sync) pair.
    pub fn next_sync_due(
        &self,
        location: &LocationId,
        last_sync: Option<DateTime<Utc>>,
    ) -> DateTime<Utc> {
        let Some(last) = last_sync else {
            return DateTime::<Utc>::MIN_UTC;
        };
        let mut h = std::collections::hash_map::DefaultHasher::new();
        location.hash(&mut h);
        last.timestamp_millis().hash(&mut h);
        let mut rng = rand::rngs::StdRng::seed_from_u64(h.finish());
        let delay = self.inner.config.next_sync_delay(&mut rng);
        last + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::hours(12))
    }
}

impl Engine {
    /// Whether a location last walked in full at `last_full` (`None`: never, as
    /// far as the store knows) is due a full reconciliation at `now`
    /// ([`EngineConfig::full_sync_interval`](crate::EngineConfig::full_sync_interval)).
    pub fn full_sync_due(&self, last_full: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
        let Some(at) = last_full else {
            return true;
        };
        let every = chrono::Duration::from_std(self.inner.config.full_sync_interval)
            .unwrap_or(chrono::Duration::days(7));
        now - at >= every
    }
}

impl Scheduler {
    /// Recovers operations left in flight, then works until `shutdown` completes:
    /// each tick (the event poll interval) it polls events of locations with
    /// operations in flight, syncs the locations whose sync is due or that asked
    /// for one, and serves "sync now" requests at once.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<()> {
        if let Err(e) = self.engine.recover().await {
            tracing::warn!(error = %e, "recovery on start failed; retried on the next tick");
        }
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(self.engine.inner.config.event_poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut shutdown => return Ok(()),
                cmd = self.rx.recv() => match cmd {
                    Some(Command::SyncNow(location, kind)) => self.sync_now(location, kind).await,
                    None => return Ok(()),
                },
                _ = tick.tick() => {
                    if let Err(e) = self.tick().await {
                        tracing::warn!(error = %e, "scheduler tick failed");
                    }
                }
            }
        }
    }

    async fn sync_now(&self, location: Option<LocationId>, kind: SyncKind) {
        match location {
            Some(l) => {
                if let Err(e) = self.engine.sync(&l, kind, &self.progress).await {
                    tracing::warn!(location = %l, error = %e, "sync failed");
                }
            }
            None => {
                if let Err(e) = self.engine.sync_all(kind, &self.progress).await {
                    tracing::warn!(error = %e, "sync of all locations failed");
                }
            }
        }
    }

    /// One round of periodic work.
    async fn tick(&self) -> Result<()> {
        let engine = &self.engine;
        let inner = &engine.inner;
        let now = inner.now();
        let locations = inner.store.locations().await?;
        let mut open: HashMap<LocationId, usize> = HashMap::new();
        for op in inner.store.unfinished_operations(None).await? {
            *open.entry(op.location).or_default() += 1;
        }
        let n = inner.config.max_concurrent_locations;
        futures::stream::iter(locations.into_iter().map(|l| {
            let engine = engine.clone();
            let progress = self.progress.clone();
            let has_ops = open.contains_key(&l.id);
            async move {
                let id = l.id.clone();
                if has_ops {
                    if let Err(e) = engine.poll_events(&id).await {
                        tracing::warn!(location = %id, error = %e, "event poll failed");
                    }
                }
                let last = match engine.inner.store.sync_status(&id).await {
                    Ok(s) => s.last_outcome.map(|o| o.at),
                    Err(e) => {
                        tracing::warn!(location = %id, error = %e, "no sync status");
                        return;
                    }
                };
                let asked = engine.inner.take_needs_sync(&id);
                let full_due = match engine.inner.last_full_sync(&id).await {
                    Ok(at) => engine.full_sync_due(at, now),
                    Err(e) => {
                        tracing::warn!(location = %id, error = %e, "no last full sync time");
                        false
                    }
                };
                let kind = if full_due {
                    SyncKind::Full
                } else {
                    SyncKind::Incremental
                };
                if asked || full_due || engine.next_sync_due(&id, last) <= now {
                    if let Err(e) = engine.sync(&id, kind, &progress).await {
                        tracing::warn!(location = %id, error = %e, "scheduled sync failed");
                    }
                }
            }
        }))
        .buffer_unordered(n)
        .collect::<Vec<_>>()
        .await;
        Ok(())
    }
}
