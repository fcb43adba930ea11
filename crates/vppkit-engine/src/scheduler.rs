//! The scheduler: the engine's loop. Every tick (the event poll interval), or
//! at once when a trigger is stored in this process, it:
//!
//! 1. polls events of locations with operations in flight;
//! 2. syncs the locations whose sync is due, or that a stored mark asks a
//!    sync of (a notification that must be read back, users changed);
//! 3. reconciles when a stored mark asks for it (licences bought or freed,
//!    an invitation accepted, an event finished, the desired state changed, a
//!    self-service request, a sync that found changes, a grace period over) or
//!    when the slow tick ([`EngineConfig::reconcile_interval`](crate::EngineConfig::reconcile_interval))
//!    is due, which first re-reads every location's licence counts (one
//!    `GET assets` walk each: a purchase whose notification never came); marks are read before the pass and cleared after it, so a burst of
//!    triggers is one pass and a trigger that arrives during a pass makes
//!    another;
//! 4. hands out queued MDM commands;
//! 5. now and then forgets what the retention period allows.
//!
//! Marks live in the store, so another instance, or this one after a restart,
//! sees them; each location's work runs under its lease.

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
use crate::marks::Mark;
use crate::progress::{ProgressReporter, SyncKind};

enum Command {
    SyncNow(Option<LocationId>, SyncKind),
    ReconcileNow,
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

    /// Runs a reconcile pass as soon as possible. Returns `false` if the
    /// scheduler has stopped.
    pub fn reconcile_now(&self) -> bool {
        self.tx.send(Command::ReconcileNow).is_ok()
    }
}

/// Runs the engine's periodic work until told to stop.
#[derive(Debug)]
pub struct Scheduler {
    engine: Engine,
    progress: ProgressReporter,
    rx: mpsc::UnboundedReceiver<Command>,
    last_reconcile: Option<DateTime<Utc>>,
    /// When the licence counts were last re-read (on their own schedule: passes
    /// that triggers start do not postpone it).
    last_refresh: Option<DateTime<Utc>>,
    last_prune: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::SyncNow(l, k) => write!(f, "SyncNow({l:?}, {k:?})"),
            Command::ReconcileNow => f.write_str("ReconcileNow"),
        }
    }
}

impl Engine {
    /// A scheduler for this engine and the handle to ask it for work now.
    pub fn scheduler(&self, progress: ProgressReporter) -> (Scheduler, SchedulerHandle) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Scheduler {
                engine: self.clone(),
                progress,
                rx,
                last_reconcile: None,
                last_refresh: None,
                last_prune: None,
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

    /// Forgets processed notification ids, finished operations and answered
    /// commands older than the retention period
    /// ([`EngineConfig::retention`](crate::EngineConfig::retention)). Returns
    /// how many records went. The scheduler calls it hourly.
    pub async fn prune(&self) -> Result<u64> {
        let inner = &self.inner;
        let keep = chrono::Duration::from_std(inner.config.retention)
            .unwrap_or_else(|_| chrono::Duration::days(30));
        let before = inner.now() - keep;
        let n = inner.store.prune_notifications(before).await?
            + inner.store.prune_operations(before).await?
            + self.prune_outbox(before).await?;
        if n > 0 {
            tracing::info!(pruned = n, "records past the retention period forgotten");
        }
        Ok(n)
    }
}

impl Scheduler {
    /// Recovers operations left in flight, then works until `shutdown` completes
    /// (see the module docs for what each round does). The work under way when
    /// `shutdown` completes is finished first: no reservation is left behind.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<()> {
        if let Err(e) = self.engine.recover().await {
            tracing::warn!(error = %e, "recovery on start failed; retried on the next tick");
        }
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(self.engine.inner.config.event_poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Every handle dropped: the loop goes on, without requests.
        let mut handles = true;
        loop {
            tokio::select! {
                biased;
                _ = &mut shutdown => return Ok(()),
                cmd = self.rx.recv(), if handles => match cmd {
                    Some(Command::SyncNow(location, kind)) => self.sync_now(location, kind).await,
                    Some(Command::ReconcileNow) => {
                        if let Err(e) = self.reconcile().await {
                            tracing::warn!(error = %e, "reconcile pass failed");
                        }
                    }
                    None => handles = false,
                },
                _ = self.engine.inner.wake.notified() => self.round().await,
                _ = tick.tick() => self.round().await,
            }
        }
    }

    async fn round(&mut self) {
        if let Err(e) = self.tick().await {
            tracing::warn!(error = %e, "scheduler round failed");
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
    async fn tick(&mut self) -> Result<()> {
        self.events_and_syncs().await?;
        let engine = self.engine.clone();
        let inner = &engine.inner;
        let now = inner.now();
        engine.want_reconcile_for_deadlines().await?;
        let every = chrono::Duration::from_std(inner.config.reconcile_interval)
            .unwrap_or_else(|_| chrono::Duration::minutes(15));
        let slow_tick = self.last_reconcile.is_none_or(|at| now - at >= every);
        if self.last_refresh.is_none_or(|at| now - at >= every) {
            // Counts re-read every interval, however often triggers run passes.
            self.last_refresh = Some(now);
            self.refresh_counts(every).await?;
        }
        let marked = !inner.marks(Mark::Reconcile).await?.is_empty();
        if marked || slow_tick {
            self.reconcile().await?;
        }
        if let Err(e) = engine.dispatch_commands(None).await {
            tracing::warn!(error = %e, "handing out commands failed; retried next round");
        }
        if self
            .last_prune
            .is_none_or(|at| now - at >= chrono::Duration::hours(1))
        {
            self.last_prune = Some(now);
            engine.prune().await?;
        }
        Ok(())
    }

    /// One reconcile pass over every location, clearing the marks read before it.
    async fn reconcile(&mut self) -> Result<()> {
        let engine = &self.engine;
        let inner = &engine.inner;
        let marks = inner.marks(Mark::Reconcile).await?;
        self.last_reconcile = Some(inner.now());
        let causes: Vec<&str> = marks
            .iter()
            .flat_map(|m| m.causes.iter().map(String::as_str))
            .collect();
        tracing::info!(locations = marks.len(), causes = ?causes, "reconcile pass");
        let report = engine.reconcile_all().await?;
        for m in &marks {
            inner.clear_mark(Mark::Reconcile, m).await?;
        }
        if report
            .applied
            .locations
            .iter()
            .any(|l| l.pending_operations > 0)
        {
            // Operations still at Apple: their outcome marks another pass.
            tracing::debug!("operations still pending after the pass");
        }
        Ok(())
    }

    /// Re-reads the licence counts of every readable location no sync read
    /// within `every` (a purchase or a refund whose notification never came),
    /// marking a reconcile pass where one moved. A location another instance
    /// holds is left to it.
    async fn refresh_counts(&self, every: chrono::Duration) -> Result<()> {
        let engine = &self.engine;
        let since = engine.inner.now() - every;
        let locations = engine.inner.store.locations().await?;
        let n = engine.inner.config.max_concurrent_locations;
        futures::stream::iter(
            locations
                .into_iter()
                .filter(|l| l.token_state.allows_reads())
                .map(|l| async move {
                    // A sync within the interval read the counts already.
                    let status = engine.inner.store.sync_status(&l.id).await;
                    let synced = status.map(|s| s.last_summary.map(|o| o.at));
                    if matches!(synced, Ok(Some(at)) if at > since) {
                        return;
                    }
                    match engine.refresh_counts(&l.id).await {
                        Ok(_) | Err(crate::EngineError::Busy(_)) => {}
                        Err(e) => {
                            tracing::warn!(location = %l.id, error = %e, "licence counts not re-read")
                        }
                    }
                }),
        )
        .buffer_unordered(n)
        .collect::<Vec<_>>()
        .await;
        Ok(())
    }

    /// Polls events in flight, then syncs what is due or asked for.
    async fn events_and_syncs(&self) -> Result<()> {
        let engine = &self.engine;
        let inner = &engine.inner;
        let now = inner.now();
        let locations = inner.store.locations().await?;
        let mut open: HashMap<LocationId, usize> = HashMap::new();
        for op in inner.store.unfinished_operations(None).await? {
            *open.entry(op.location).or_default() += 1;
        }
        let asked: HashMap<LocationId, crate::marks::TakenMark> = inner
            .marks(Mark::Sync)
            .await?
            .into_iter()
            .map(|m| (m.location.clone(), m))
            .collect();
        let n = inner.config.max_concurrent_locations;
        futures::stream::iter(locations.into_iter().map(|l| {
            let engine = engine.clone();
            let progress = self.progress.clone();
            let has_ops = open.contains_key(&l.id);
            let asked = asked.get(&l.id).cloned();
            async move {
                let id = l.id.clone();
                if has_ops {
                    if let Err(e) = engine.poll_events(&id).await {
                        tracing::warn!(location = %id, error = %e, "event poll failed");
                    }
                }
                let last = match engine.inner.store.sync_status(&id).await {
                    Ok(s) => s.last_summary.map(|o| o.at),
                    Err(e) => {
                        tracing::warn!(location = %id, error = %e, "no sync status");
                        return;
                    }
                };
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
                if asked.is_some() || full_due || engine.next_sync_due(&id, last) <= now {
                    match engine.sync(&id, kind, &progress).await {
                        Ok(_) => {
                            if let Some(m) = &asked {
                                if let Err(e) = engine.inner.clear_mark(Mark::Sync, m).await {
                                    tracing::warn!(location = %id, error = %e, "sync mark kept");
                                }
                            }
                        }
                        Err(e) => {
                            tracing::warn!(location = %id, error = %e, "scheduled sync failed")
                        }
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
