//! What only grew before: the ledger cache is bounded (256 locations through
//! a cache of 64), and `Engine::prune` forgets notification ids, finished
//! operations and handed-out commands past the retention period, and keeps
//! the newer ones.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use vppkit_core::{AccountType, EventId, Secret};
use vppkit_engine::{
    AddToken, ManualClock, NotificationOutcome, ProgressReporter, SyncKind, WebhookConfig,
};
use vppkit_rules::PlanContext;
use vppkit_sim::{demo, AssetSpec, EventType, LocationSpec, Preset};

use crate::leases::lab_plan;
use crate::support::*;

/// 256 locations synced through an engine whose ledger cache holds 64: the
/// cache fills up to its capacity and never beyond (sampled at every page),
/// and a location whose ledger was evicted is rebuilt from the store and
/// still equals Apple.
#[tokio::test]
async fn the_ledger_cache_stays_within_its_capacity_over_256_locations() {
    for backend in backends() {
        let w = WorldBuilder::new(backend)
            .sim(|s| s.preset(Preset::Empty).page_size(50))
            .config(|c| {
                c.with_max_concurrent_locations(16)
                    .with_ledger_cache_capacity(64)
            })
            .start()
            .await;
        let control = w.sim.control();
        let mut tokens = Vec::new();
        for i in 0..256u64 {
            let mut spec = LocationSpec::new(format!("School {i}")).account(AccountType::Education);
            for a in 0..3u64 {
                spec = spec.asset(AssetSpec::app(1_600_000_000 + i * 10 + a, 10));
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
        let most = Arc::new(AtomicUsize::new(0));
        let (m, engine) = (most.clone(), w.engine.clone());
        let progress = ProgressReporter::callback(move |_| {
            m.fetch_max(engine.cached_ledgers(), Ordering::SeqCst);
        });
        let results = w.engine.sync_all(SyncKind::Full, &progress).await.unwrap();
        assert_eq!(results.len(), 256);
        assert!(results
            .iter()
            .all(|(_, r)| r.as_ref().is_ok_and(|o| o.succeeded())));
        let most = most.load(Ordering::SeqCst);
        let now = w.engine.cached_ledgers();
        println!("ledger cache ({backend:?}): at most {most} while syncing, {now} after, of 256 locations");
        assert!(most <= 64, "{most} ledgers held");
        assert_eq!(most, 64, "the cache is used up to its capacity");
        assert!(now <= 64, "{now} ledgers held");
        // The first locations were evicted: used again, rebuilt from the store.
        for i in [0usize, 1, 255] {
            w.engine
                .sync(
                    &loc(&format!("school-{i}")),
                    SyncKind::Full,
                    &ProgressReporter::none(),
                )
                .await
                .unwrap();
            w.assert_matches_truth(&format!("school-{i}"), tokens[i].uid.as_str())
                .await;
        }
        assert!(w.engine.cached_ledgers() <= 64);
    }
}

/// The associate events Apple recorded for Springfield High.
fn associate_events(w: &World) -> Vec<EventId> {
    w.sim
        .control()
        .events(demo::SPRINGFIELD_HIGH)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EventType::Associate)
        .map(|e| e.event_id)
        .collect()
}

fn purchase_notification(id: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "notification": {
            "adamId": demo::SHORTAGE_APP.to_string(),
            "pricingParam": "STDQ",
            "countDelta": 0
        },
        "notificationId": id,
        "notificationType": "ASSET_COUNT",
        "uId": demo::SPRINGFIELD_HIGH,
    }))
    .unwrap()
}

/// The engine's clock moves by hand: what was finished and recorded eight
/// days ago is pruned under a seven-day retention, what is two days old is kept.
#[tokio::test]
async fn prune_forgets_what_is_older_than_the_retention_and_keeps_the_rest() {
    for backend in backends() {
        let w = WorldBuilder::new(backend).start().await;
        w.onboard("sph", demo::SPRINGFIELD_HIGH).await;
        w.engine
            .sync(&loc("sph"), SyncKind::Full, &ProgressReporter::none())
            .await
            .unwrap();
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let hook =
            WebhookConfig::loopback_http("http://127.0.0.1:9/hook", Secret::new(HOOK_SECRET))
                .unwrap();
        let cfg = config()
            .with_instance_id("pruner")
            .with_retention(Duration::from_secs(7 * 24 * 3600))
            .with_webhook(hook);
        let c = clock.clone();
        let (engine, sink) = w.another_engine(cfg, move |b| b.clock(c)).await;
        let auth = format!("Bearer {HOOK_SECRET}");
        let notify = |id: &'static str| {
            let engine = engine.clone();
            let auth = auth.clone();
            async move {
                engine
                    .handle_notification(
                        [("Authorization", auth.as_str())],
                        &purchase_notification(id),
                    )
                    .await
                    .unwrap()
            }
        };
        const OLD: &str = "3c1d6f0a-0000-4000-8000-000000000001";
        const NEW: &str = "3c1d6f0a-0000-4000-8000-000000000002";

        // Day 0: an associate finishes, a notification is recorded.
        let (_, dir1, set) = lab_plan(&w, 1);
        let ctx = PlanContext::new(Utc::now());
        engine.plan_and_apply(&dir1, &set, &ctx).await.unwrap();
        assert!(matches!(
            notify(OLD).await,
            NotificationOutcome::Applied { .. }
        ));
        let old_events = associate_events(&w);
        assert_eq!(old_events.len(), 1);
        let old_op = w
            .store
            .operation_by_event(&loc("sph"), &old_events[0])
            .await
            .unwrap()
            .expect("the first operation");
        assert!(old_op.status.is_finished());
        let old_cmds = sink.taken();
        assert_eq!(old_cmds.len(), 1);

        // Day 8: another one.
        clock.advance(chrono::Duration::days(8));
        let (_, dir2, _) = lab_plan(&w, 1);
        engine.plan_and_apply(&dir2, &set, &ctx).await.unwrap();
        assert!(matches!(
            notify(NEW).await,
            NotificationOutcome::Applied { .. }
        ));
        let new_event = associate_events(&w)
            .into_iter()
            .find(|e| *e != old_events[0])
            .expect("the second associate");
        let new_op = w
            .store
            .operation_by_event(&loc("sph"), &new_event)
            .await
            .unwrap()
            .expect("the second operation");
        assert!(new_op.status.is_finished());
        let new_cmds = sink.taken();
        assert_eq!(new_cmds.len(), 1);

        // Day 10, seven days kept: day 0 goes, day 8 stays.
        clock.advance(chrono::Duration::days(2));
        let pruned = engine.prune().await.unwrap();
        assert!(pruned >= 3, "{pruned} pruned");
        assert!(w.store.operation(&old_op.id).await.unwrap().is_none());
        assert!(w.store.operation(&new_op.id).await.unwrap().is_some());
        let old_uuid = &old_cmds[0].reference.command_uuid;
        let new_uuid = &new_cmds[0].reference.command_uuid;
        assert!(engine.command(old_uuid).await.unwrap().is_none());
        assert!(engine.command(new_uuid).await.unwrap().is_some());
        // The new id is still known; the old one was forgotten.
        assert_eq!(notify(NEW).await, NotificationOutcome::Duplicate);
        assert!(matches!(
            notify(OLD).await,
            NotificationOutcome::Applied { .. }
        ));
        // Nothing newer than the retention goes on a second pass.
        assert_eq!(engine.prune().await.unwrap(), 0);
        assert!(w.store.operation(&new_op.id).await.unwrap().is_some());
        w.assert_matches_truth("sph", demo::SPRINGFIELD_HIGH).await;
    }
}
