use std::time::Duration;

use vppkit_engine::{ProgressReporter, SyncKind, SyncProgress};
use vppkit_sim::demo;

use crate::support::*;

#[tokio::test]
async fn the_scheduler_syncs_due_locations_and_serves_sync_now() {
    let w = WorldBuilder::new(Backend::Sqlite)
        .config(|c| {
            c.with_sync_interval(Duration::from_millis(300), Duration::from_millis(100))
                .with_event_polling(Duration::from_millis(50), Duration::from_secs(5))
        })
        .start()
        .await;
    w.onboard("sph", demo::SPRINGFIELD_HIGH).await;
    w.onboard("spm", demo::SPRINGFIELD_MIDDLE).await;
    let (progress, mut rx) = ProgressReporter::new_channel();
    let (scheduler, handle) = w.engine.scheduler(progress);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(scheduler.run(async {
        let _ = stop_rx.await;
    }));
    // Never synced: both are due at once.
    let mut finished = std::collections::BTreeMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while finished.values().filter(|n| **n >= 2).count() < 2 {
        let p = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("scheduled syncs")
            .unwrap();
        if let SyncProgress::Finished { location, outcome } = p {
            assert!(outcome.succeeded(), "{:?}", outcome.error);
            *finished.entry(location).or_insert(0) += 1;
        }
    }
    // Sync now, one location.
    assert!(handle.sync_now(Some(loc("spm")), SyncKind::Full));
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(SyncProgress::Started { location, kind }) = rx.recv().await {
                if location == loc("spm") && kind == SyncKind::Full {
                    return;
                }
            }
        }
    })
    .await;
    assert!(got.is_ok(), "sync now ran");
    stop_tx.send(()).unwrap();
    task.await.unwrap().unwrap();
    assert!(!handle.sync_now(None, SyncKind::Incremental), "stopped");
    w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;
}

/// Scheduled syncs are incremental until the last full walk is older than
/// `full_sync_interval`; then the scheduler runs a full one (ManualClock).
/// The kind of the next sync that starts (within 10 s).
async fn next_started(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<SyncProgress>,
) -> Option<SyncKind> {
    let fut = async {
        loop {
            match rx.recv().await {
                Some(SyncProgress::Started { kind, .. }) => return Some(kind),
                Some(_) => {}
                None => return None,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .ok()
        .flatten()
}

#[tokio::test]
async fn the_scheduler_runs_a_full_sync_when_the_last_one_is_too_old() {
    use std::sync::Arc;
    use vppkit_engine::ManualClock;
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let c2 = clock.clone();
    let w = WorldBuilder::new(Backend::Sqlite)
        .config(|c| {
            c.with_sync_interval(Duration::from_secs(3600), Duration::ZERO)
                .with_full_sync_interval(Duration::from_secs(24 * 3600))
                .with_event_polling(Duration::from_millis(30), Duration::from_secs(5))
        })
        .engine(move |b| b.clock(c2))
        .start()
        .await;
    w.onboard("sph", demo::SPRINGFIELD_HIGH).await;
    // The first sync walks everything: the full walk is recorded.
    let first = w
        .engine
        .sync(
            &loc("sph"),
            SyncKind::Incremental,
            &ProgressReporter::none(),
        )
        .await
        .unwrap();
    assert_eq!(first.kind, SyncKind::Full);

    let (progress, mut rx) = ProgressReporter::new_channel();
    let (scheduler, _handle) = w.engine.scheduler(progress);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(scheduler.run(async {
        let _ = stop_rx.await;
    }));
    // Nothing is due yet.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), rx.recv())
            .await
            .is_err(),
        "no sync before the interval"
    );
    // Two hours later: an incremental sync.
    clock.advance(chrono::Duration::hours(2));
    assert_eq!(next_started(&mut rx).await, Some(SyncKind::Incremental));
    // A day and more after the full walk: a full sync.
    clock.advance(chrono::Duration::hours(23));
    assert_eq!(next_started(&mut rx).await, Some(SyncKind::Full));
    stop_tx.send(()).unwrap();
    task.await.unwrap().unwrap();
    w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;
}
