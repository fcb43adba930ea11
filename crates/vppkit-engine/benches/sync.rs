//! The engine's own cost of a full sync, against the bare page walk.
//!
//! A simulator location holds `VPPKIT_BENCH_ASSIGNMENTS` assignments (default
//! 100,000) over 100 apps. Two measurements in the same run:
//! - `client_walk`: `vppkit-client` walks every assignments page (the baseline:
//!   what Apple's pages cost with no engine work);
//! - `engine_full_sync`: the engine's full sync of that location into a fresh
//!   SQLite store (assets, users, every assignment through the ledger, each page
//!   written with its journal and cursor in one transaction).
//!
//! - `store_pages` and `store_pages_no_journal`: the same pages built from the
//!   ledger and written to a fresh SQLite store directly, with and without the
//!   journal records (the store's share of the engine's time).
//!
//! Pacing is off, so Apple's rate limit (15 requests a second) is not in the
//! figures: at that rate 100 pages take at least 6.7 s, and the engine's work per
//! page must stay well under 66 ms to never be the bottleneck.
//!
//! Run: `cargo bench -p vppkit-engine --bench sync`.

#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use criterion::{criterion_group, criterion_main, Criterion};
use futures::TryStreamExt;
use vppkit_client::{AssignmentFilter, ClientBuilder, ManageAssetsRequest, Pacing};
use vppkit_core::{AdamId, AssetKey, LocationId, MdmInfo, PricingParam, SerialNumber};
use vppkit_engine::{
    AddToken, CommandSink, Engine, EngineConfig, ProgressReporter, QueuedCommand, SinkError,
    SyncKind,
};
use vppkit_sim::{
    AssetSpec, LocationSpec, Preset, RunningSimulator, SimClock, Simulator, TokenFile,
};
use vppkit_store::prelude::*;
use vppkit_store::{SecretCipher, Store};
use vppkit_store_sqlite::SqliteStore;

struct NullSink;

#[async_trait]
impl CommandSink for NullSink {
    async fn send(&self, _: Vec<QueuedCommand>) -> Result<(), SinkError> {
        Ok(())
    }
}

fn assignments() -> usize {
    std::env::var("VPPKIT_BENCH_ASSIGNMENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

async fn world(n: usize) -> (RunningSimulator, TokenFile) {
    let sim = Simulator::builder()
        .preset(Preset::Empty)
        .clock(SimClock::real_time(Duration::ZERO))
        .start()
        .await
        .unwrap();
    let apps = 100u64;
    let per_app = n.div_ceil(apps as usize) as u32;
    let mut spec = LocationSpec::new("Bench School");
    for a in 0..apps {
        spec = spec.asset(AssetSpec::app(1_600_000_000 + a, per_app + 10));
    }
    let token = sim.control().add_location(spec).unwrap();
    let client = ClientBuilder::new(&token.content)
        .base_url(sim.base_url())
        .pacing(Pacing::Off)
        .build()
        .unwrap();
    let mut made = 0usize;
    'outer: for a in 0..apps {
        let key = AssetKey::new(AdamId::from(1_600_000_000 + a), PricingParam::Stdq);
        let mut i = 0u32;
        while i < per_app {
            let take = (per_app - i).min(1000);
            let serials: Vec<SerialNumber> = (i..i + take)
                .map(|d| SerialNumber::new(format!("BENCH{d:09}")).unwrap())
                .collect();
            client
                .associate_assets(&ManageAssetsRequest::devices(vec![key.clone()], serials))
                .await
                .unwrap();
            made += take as usize;
            i += take;
            if made >= n {
                break 'outer;
            }
        }
    }
    sim.control().complete_pending();
    (sim, token)
}

async fn engine_sync(sim: &RunningSimulator, token: &TokenFile) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("b.db").display());
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::connect(&url, SecretCipher::plaintext())
            .await
            .unwrap(),
    );
    let me = MdmInfo::new("bench-mdm", "Bench", "bench.example").unwrap();
    let engine = Engine::builder(store, EngineConfig::new(me))
        .sink(Arc::new(NullSink))
        .apple_base_url(sim.base_url())
        .customize_client(|c| c.pacing(Pacing::Off))
        .build()
        .unwrap();
    let id = LocationId::new("bench").unwrap();
    engine
        .add_token(AddToken::new(id.clone(), token.content.clone()))
        .await
        .unwrap();
    let started = Instant::now();
    let outcome = engine
        .sync(&id, SyncKind::Full, &ProgressReporter::none())
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(outcome.succeeded());
    took
}

async fn client_walk(sim: &RunningSimulator, token: &TokenFile) -> Duration {
    let client = ClientBuilder::new(&token.content)
        .base_url(sim.base_url())
        .pacing(Pacing::Off)
        .build()
        .unwrap();
    let started = Instant::now();
    let mut stream = client.assignments(AssignmentFilter::new());
    let mut n = 0usize;
    while let Some(page) = stream.try_next().await.unwrap() {
        n += page.items.len();
    }
    let took = started.elapsed();
    assert!(n > 0);
    took
}

/// Writes the pages the engine writes (ledger entries, holdings, journal),
/// without any HTTP: the store's and the ledger's share.
async fn store_pages(sim: &RunningSimulator, with_journal: bool) -> Duration {
    use vppkit_ledger::{AppleHolding, Cause, Ledger};
    use vppkit_store::{HoldingUpsert, NewJournalRecord, SyncPage};
    let uid = sim.control().locations()[0].uid.clone();
    let assets = sim.control().assets(&uid).unwrap();
    let pairs = sim.control().assignments(&uid).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("s.db").display());
    let store = SqliteStore::connect(&url, SecretCipher::plaintext())
        .await
        .unwrap();
    let id = LocationId::new("bench").unwrap();
    let now = chrono::Utc::now();
    let record = vppkit_store::LocationRecord::new(
        id.clone(),
        "Bench",
        vppkit_core::Secret::new("t"),
        now,
        now,
    );
    store.save_location(&record).await.unwrap();
    let mut page = SyncPage::new(now);
    page.upsert_assets = assets.clone();
    store.apply_sync_page(&id, &page).await.unwrap();
    let mut ledger = Ledger::new(id.clone());
    ledger.reconcile_assets(&assets, Cause::sync(None), now);
    let started = Instant::now();
    let snap = ledger.begin_snapshot();
    for chunk in pairs.chunks(1000) {
        let items: Vec<AppleHolding> = chunk
            .iter()
            .map(|(a, h)| AppleHolding::new(a.clone(), h.clone()))
            .collect();
        let entries = ledger
            .apply_snapshot_page(&snap, &items, Cause::sync(None), now)
            .unwrap();
        let mut page = SyncPage::new(now);
        for e in &entries {
            if with_journal {
                let body = serde_json::to_value(e).unwrap();
                page.journal.push(NewJournalRecord::new(
                    e.at,
                    e.cause.to_string(),
                    "ledger",
                    body,
                ));
            }
        }
        page.upsert_holdings = items
            .into_iter()
            .map(|x| HoldingUpsert::new(x.asset, x.holder, vppkit_core::HoldingStatus::Adopted))
            .collect();
        store.apply_sync_page(&id, &page).await.unwrap();
    }
    started.elapsed()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let n = assignments();
    let (sim, token) = rt.block_on(world(n));
    let mut g = c.benchmark_group(format!("full_sync_{n}_assignments"));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(30));
    g.bench_function("client_walk", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (sim, token) = (&sim, &token);
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += client_walk(sim, token).await;
                }
                total
            }
        })
    });
    g.bench_function("engine_full_sync", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (sim, token) = (&sim, &token);
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += engine_sync(sim, token).await;
                }
                total
            }
        })
    });
    g.bench_function("store_pages", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let sim = &sim;
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += store_pages(sim, true).await;
                }
                total
            }
        })
    });
    g.bench_function("store_pages_no_journal", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let sim = &sim;
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += store_pages(sim, false).await;
                }
                total
            }
        })
    });
    g.finish();
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        if let Some(line) = status.lines().find(|l| l.starts_with("VmHWM")) {
            println!("peak resident memory of the bench process: {}", line.trim());
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
