use std::sync::{Arc, Mutex};

use vppkit_engine::{ProgressReporter, SyncKind, SyncProgress, SyncStep};
use vppkit_sim::demo;

use crate::support::*;

#[tokio::test]
async fn full_then_incremental_sync_equals_apples_truth() {
    for backend in backends() {
        let w = WorldBuilder::new(backend).start().await;
        w.onboard("sph", demo::SPRINGFIELD_HIGH).await;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let progress = ProgressReporter::callback(move |p| s2.lock().unwrap().push(p.clone()));
        let o = w
            .engine
            .sync(&loc("sph"), SyncKind::Incremental, &progress)
            .await
            .unwrap();
        assert!(o.succeeded(), "{:?}", o.error);
        assert_eq!(o.kind, SyncKind::Full, "the first sync is full");
        assert!(o.assignments > 250, "several pages");
        w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;
        let pages = seen
            .lock()
            .unwrap()
            .iter()
            .filter(|p| {
                matches!(
                    p,
                    SyncProgress::Page {
                        endpoint: SyncStep::Assignments,
                        ..
                    }
                )
            })
            .count();
        assert!(pages >= 2, "progress per page ({pages})");
        // The metadata lookup of the new assets is a step of its own.
        let asset_count = w.store.assets(&loc("sph")).await.unwrap().len() as u64;
        assert!(seen.lock().unwrap().iter().any(|p| matches!(
            p,
            SyncProgress::Page { endpoint: SyncStep::Metadata, items, .. } if *items == asset_count
        )));
        assert!(matches!(
            seen.lock().unwrap().last(),
            Some(SyncProgress::Finished { .. })
        ));
        let users = w.sim.control().users(demo::SPRINGFIELD_HIGH).unwrap();
        let stored_users = w.store.users_page(&loc("sph"), None, 10_000).await.unwrap();
        assert_eq!(stored_users.len(), users.len());
        // Metadata for the new assets.
        let assets = w.store.assets(&loc("sph")).await.unwrap();
        assert!(
            assets.iter().all(|a| a.metadata.is_some()),
            "metadata fetched"
        );

        // Apple changes: a purchase and new assignments by someone else.
        let key = vppkit_core::AssetKey::new(
            vppkit_core::AdamId::from(demo::SHORTAGE_APP),
            vppkit_core::PricingParam::Stdq,
        );
        w.sim
            .control()
            .buy_licences(demo::SPRINGFIELD_HIGH, &key, 10)
            .unwrap();
        let o = w
            .engine
            .sync(
                &loc("sph"),
                SyncKind::Incremental,
                &ProgressReporter::none(),
            )
            .await
            .unwrap();
        assert_eq!(o.kind, SyncKind::Incremental);
        w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;

        // Every change is journaled: the purchase is explained.
        let journal = w
            .store
            .read_journal(&vppkit_store::JournalQuery::new(loc("sph"), 100_000).asset(key.clone()))
            .await
            .unwrap();
        assert!(journal
            .iter()
            .any(|r| r.body.to_string().contains("purchased")));
    }
}

#[tokio::test]
async fn sync_all_handles_every_location() {
    for backend in backends() {
        let w = WorldBuilder::new(backend).start().await;
        w.onboard("sph", demo::SPRINGFIELD_HIGH).await;
        w.onboard("spm", demo::SPRINGFIELD_MIDDLE).await;
        w.onboard("london", demo::ACME_LONDON).await;
        let results = w
            .engine
            .sync_all(SyncKind::Full, &ProgressReporter::none())
            .await
            .unwrap();
        assert_eq!(results.len(), 3);
        for (id, r) in &results {
            assert!(r.as_ref().unwrap().succeeded(), "{id}");
        }
        w.assert_matches_truth("spm", demo::SPRINGFIELD_MIDDLE)
            .await;
        w.assert_matches_truth("london", demo::ACME_LONDON).await;
    }
}

/// Apple's data changes in the middle of a full walk: the walk restarts and the
/// result still equals Apple's truth (nothing from the abandoned walk is lost or
/// invented).
#[tokio::test]
async fn a_version_change_mid_walk_restarts_and_converges() {
    for backend in backends() {
        let w = WorldBuilder::new(backend).start().await;
        w.onboard("sph", demo::SPRINGFIELD_HIGH).await;
        let control = w.sim.control();
        control.set_page_size(100);
        control.set_latency(std::time::Duration::from_millis(60));
        let token = w.token(demo::SPRINGFIELD_HIGH);
        let base = w.sim.base_url();
        let restarted = Arc::new(Mutex::new(0usize));
        let written = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let r2 = restarted.clone();
        let control2 = control.clone();
        let progress = ProgressReporter::callback(move |p| match p {
            SyncProgress::Restarted { .. } => *r2.lock().unwrap() += 1,
            SyncProgress::Page {
                endpoint: SyncStep::Assignments,
                ..
            } if !written.swap(true, std::sync::atomic::Ordering::SeqCst) => {
                // Someone else assigns a licence while the walk is under way.
                let (token, base, control) = (token.clone(), base.clone(), control2.clone());
                tokio::spawn(async move {
                    let client = vppkit_client::ClientBuilder::new(&token.content)
                        .base_url(base)
                        .pacing(vppkit_client::Pacing::Off)
                        .build()
                        .unwrap();
                    let key = vppkit_core::AssetKey::new(
                        vppkit_core::AdamId::from(demo::SHORTAGE_APP),
                        vppkit_core::PricingParam::Stdq,
                    );
                    client
                        .associate_assets(&vppkit_client::ManageAssetsRequest::devices(
                            vec![key],
                            vec![vppkit_core::SerialNumber::new("SPH000000799").unwrap()],
                        ))
                        .await
                        .unwrap();
                    control.complete_pending();
                });
            }
            _ => {}
        });
        let o = w
            .engine
            .sync(&loc("sph"), SyncKind::Full, &progress)
            .await
            .unwrap();
        control.set_latency(std::time::Duration::ZERO);
        assert!(o.succeeded());
        assert!(*restarted.lock().unwrap() >= 1, "the walk restarted");
        w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;
    }
}

/// A walk writes each page while it reads and applies the next ones: the writes
/// still reach the store one at a time and in order (a held write holds up the next
/// one), the pages applied meanwhile go together in the next transaction, and a
/// write that fails ends the sync with the store at a page boundary that the next
/// sync completes.
#[tokio::test]
async fn page_writes_overlap_the_walk_but_reach_the_store_one_at_a_time() {
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use crate::faulty::{Fault, FaultyStore, Gate};

    for backend in backends() {
        let w = WorldBuilder::new(backend)
            .sim(|s| s.page_size(50))
            .start()
            .await;
        w.onboard("sph", demo::SPRINGFIELD_HIGH).await;
        let faulty = FaultyStore::new(w.source.open().await);
        let (seen, sizes) = faulty.count_holdings_pages();
        let gate = Gate::new();
        faulty.pause_holdings_page(&seen, 3, &gate);
        let (engine, _) = w.engine_over(faulty.clone(), config(), |b| b);
        let task = full_sync_held_at(&engine, "sph", &gate).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            seen.load(Ordering::SeqCst),
            3,
            "no page write starts while the one before it is held"
        );
        gate.open();
        let outcome = task.await.unwrap().unwrap();
        assert!(outcome.succeeded(), "{backend:?}");
        // Pages of 50; the write after the held one carried the pages applied
        // while it was held.
        let sizes = std::mem::take(&mut *sizes.lock().unwrap());
        assert!(sizes.len() > 3, "{sizes:?}");
        assert!(sizes[3] > 50, "{sizes:?}");
        w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;

        // A failed page write ends a first sync; the next one completes the store.
        w.onboard("spm", demo::SPRINGFIELD_MIDDLE).await;
        seen.store(0, Ordering::SeqCst);
        let second = seen.clone();
        faulty.on_page(1, Fault::Fail, move |_, p| {
            !p.upsert_holdings.is_empty() && second.load(Ordering::SeqCst) == 2
        });
        let failed = engine
            .sync(&loc("spm"), SyncKind::Full, &ProgressReporter::none())
            .await;
        assert!(
            matches!(failed, Err(vppkit_engine::EngineError::Store(_))),
            "{failed:?}"
        );
        assert_eq!(faulty.failed.load(Ordering::SeqCst), 1);
        assert_eq!(
            seen.load(Ordering::SeqCst),
            2,
            "no page is written after the one that failed"
        );
        let outcome = engine
            .sync(&loc("spm"), SyncKind::Full, &ProgressReporter::none())
            .await
            .unwrap();
        assert!(outcome.succeeded());
        w.assert_matches_truth("spm", demo::SPRINGFIELD_MIDDLE)
            .await;
        // A walk dropped while a write is held (a caller's timeout): the write goes on to
        // its end on its own, and the next sync of this instance waits for it and reads
        // its ledger again instead of trusting pages it applied that never reached the
        // store (the ones queued behind the held write).
        w.onboard("london", demo::ACME_LONDON).await;
        seen.store(0, Ordering::SeqCst);
        let gate = Gate::new();
        faulty.pause_holdings_page(&seen, 2, &gate);
        let task = full_sync_held_at(&engine, "london", &gate).await;
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        gate.open();
        let outcome = engine
            .sync(&loc("london"), SyncKind::Full, &ProgressReporter::none())
            .await
            .unwrap();
        assert!(outcome.succeeded());
        w.assert_matches_truth("london", demo::ACME_LONDON).await;
        // A fresh instance reads the journal back to the same holdings.
        let (fresh, _) = w.another_engine(config(), |b| b).await;
        for id in ["sph", "spm", "london"] {
            let outcome = fresh
                .sync(&loc(id), SyncKind::Incremental, &ProgressReporter::none())
                .await
                .unwrap();
            assert!(outcome.succeeded());
        }
        w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;
        w.assert_matches_truth("spm", demo::SPRINGFIELD_MIDDLE)
            .await;
        w.assert_matches_truth("london", demo::ACME_LONDON).await;
    }
}

/// A sync dropped while it writes a page of VPP users (a caller's timeout): the ledger
/// took the page, the store never did. The next sync of this instance reads its ledger
/// again instead of believing the page stored, and the store ends with Apple's users.
#[tokio::test]
async fn a_sync_dropped_while_a_users_page_is_written_leaves_no_ledger_ahead_of_the_store() {
    use crate::faulty::{Fault, FaultyStore, Gate};

    for backend in backends() {
        let w = WorldBuilder::new(backend).start().await;
        w.onboard("sph", demo::SPRINGFIELD_HIGH).await;
        let faulty = FaultyStore::new(w.source.open().await);
        let gate = Gate::new();
        faulty.on_page(1, Fault::Pause(gate.clone()), |_, p| {
            !p.upsert_users.is_empty()
        });
        let (engine, _) = w.engine_over(faulty.clone(), config(), |b| b);
        let task = full_sync_held_at(&engine, "sph", &gate).await;
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        let outcome = engine
            .sync(&loc("sph"), SyncKind::Full, &ProgressReporter::none())
            .await
            .unwrap();
        assert!(outcome.succeeded(), "{backend:?}");
        let stored = w
            .store
            .users_page(&loc("sph"), None, 100_000)
            .await
            .unwrap();
        let apple = w.sim.control().users(demo::SPRINGFIELD_HIGH).unwrap();
        assert!(!apple.is_empty());
        assert_eq!(stored.len(), apple.len(), "{backend:?}");
        w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;
    }
}

/// Starts a full sync of location `id` on a task of its own and waits until one of its
/// writes is held at `gate`.
async fn full_sync_held_at(
    engine: &vppkit_engine::Engine,
    id: &str,
    gate: &crate::faulty::Gate,
) -> tokio::task::JoinHandle<Result<vppkit_engine::SyncOutcome, vppkit_engine::EngineError>> {
    let (e, location) = (engine.clone(), loc(id));
    let task = tokio::spawn(async move {
        e.sync(&location, SyncKind::Full, &ProgressReporter::none())
            .await
    });
    tokio::time::timeout(std::time::Duration::from_secs(30), gate.reached())
        .await
        .unwrap_or_else(|_| panic!("a write of the sync of {id} reaches the store"));
    task
}
