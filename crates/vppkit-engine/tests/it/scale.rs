use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use vppkit_core::AccountType;
use vppkit_engine::{AddToken, ProgressReporter, SyncKind, SyncProgress};
use vppkit_sim::{AssetSpec, LocationSpec, Preset};

use crate::support::*;

/// 256 locations synced at once, each paced to its own token's limit: with the
/// simulator throttling at 15 requests a second per location and the client
/// allowed no retry, a single 429 would fail a sync.
#[tokio::test]
async fn hundreds_of_locations_sync_concurrently_within_each_rate_limit() {
    let w = WorldBuilder::new(Backend::Sqlite)
        .sim(|s| s.preset(Preset::Empty).page_size(3).throttle(true))
        .config(|c| c.with_max_concurrent_locations(64))
        .engine(|b| {
            b.customize_client(|c| {
                c.pacing(vppkit_client::Pacing::FromServiceConfig)
                    .retry_policy(vppkit_client::RetryPolicy::none())
            })
        })
        .start()
        .await;
    let control = w.sim.control();
    let mut tokens = Vec::new();
    for i in 0..256u64 {
        let mut spec = LocationSpec::new(format!("School {i}")).account(AccountType::Education);
        for a in 0..12u64 {
            spec = spec.asset(AssetSpec::app(1_500_000_000 + i * 100 + a, 10));
        }
        tokens.push(control.add_location(spec).unwrap());
    }
    for (i, t) in tokens.iter().enumerate() {
        w.engine
            .add_token(AddToken::new(
                loc(&format!("school-{i}")),
                t.content.clone(),
            ))
            .await
            .unwrap();
    }
    let pages = Arc::new(AtomicUsize::new(0));
    let p2 = pages.clone();
    let progress = ProgressReporter::callback(move |p| {
        if matches!(p, SyncProgress::Page { .. }) {
            p2.fetch_add(1, Ordering::Relaxed);
        }
    });
    let started = std::time::Instant::now();
    let results = w.engine.sync_all(SyncKind::Full, &progress).await.unwrap();
    let took = started.elapsed();
    assert_eq!(results.len(), 256);
    let failed: Vec<_> = results
        .iter()
        .filter(|(_, r)| !r.as_ref().is_ok_and(|o| o.succeeded()))
        .map(|(l, r)| format!("{l}: {r:?}"))
        .take(3)
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    assert!(pages.load(Ordering::Relaxed) >= 256 * 4);
    // Concurrency: far faster than one location after another at 15 requests a second.
    let sequential = Duration::from_millis(256 * 6 * 1000 / 15);
    assert!(took < sequential / 4, "took {took:?}");
    for (i, t) in tokens.iter().enumerate().step_by(51) {
        w.assert_matches_truth(&format!("school-{i}"), t.uid.as_str())
            .await;
    }
}
