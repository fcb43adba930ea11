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
