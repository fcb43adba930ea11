//! In-memory store benchmarks, the same shapes as the SQLite bench.
//!
//! 1. Scale run (printed, timed once): upsert `VPPKIT_BENCH_HOLDINGS` (default
//!    1,000,000) holdings in pages of 1,000 through `apply_sync_page`, read them
//!    all back by asset in pages of 1,000; baseline: one call per row on 100,000
//!    rows in the same run, extrapolated linearly. Then reservation throughput,
//!    8 concurrent tasks against 1 task. Skip it with `VPPKIT_BENCH_SCALE=0`.
//! 2. Criterion: one page of 1,000 holdings, batched versus one call per row.
//!
//! `cargo bench -p vppkit-store --bench memory`

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vppkit_store::prelude::*;

use chrono::Utc;
use criterion::Criterion;
use vppkit_core::{AssetKey, HoldingStatus, LocationId};
use vppkit_store::testkit::{app, app_asset, device, location_record, put_assets, put_holdings};
use vppkit_store::{HoldingUpsert, MemoryStore, Reservation, Store, SyncPage};

const PAGE: usize = 1_000;
const ASSETS: u64 = 100;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

async fn fresh(assets: u64, total: u32) -> (MemoryStore, LocationId) {
    let store = MemoryStore::new();
    let id = LocationId::new("bench").unwrap();
    store.save_location(&location_record(&id)).await.unwrap();
    put_assets(
        &store,
        &id,
        (0..assets)
            .map(|a| app_asset(&app(1_000 + a), total, 0))
            .collect(),
        Utc::now(),
    )
    .await
    .unwrap();
    (store, id)
}

/// CPU seconds (user + system, all threads) this process used so far, from
/// `/proc/self/stat` (Linux; 0 elsewhere). Printed next to wall time because
/// the shared bench machines are often oversubscribed.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which is in parentheses): utime is the 12th, stime the 13th.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn holding(n: u64) -> HoldingUpsert {
    HoldingUpsert::new(app(1_000 + n % ASSETS), device(n), HoldingStatus::Active)
}

/// Reads every holding of an asset in pages of `PAGE`; returns how many.
async fn read_asset(store: &dyn Store, id: &LocationId, asset: &AssetKey) -> u64 {
    let mut after = None;
    let mut n = 0u64;
    loop {
        let page = store
            .holdings_by_asset(id, asset, after.as_ref(), PAGE as u32)
            .await
            .unwrap();
        let Some(last) = page.last() else {
            return n;
        };
        after = Some(last.holder.clone());
        n += page.len() as u64;
    }
}

async fn scale(n: u64) {
    let (store, id) = fresh(ASSETS, 2_000_000).await;
    let start = Instant::now();
    let cpu0 = cpu_seconds();
    let mut next = 0u64;
    while next < n {
        let end = (next + PAGE as u64).min(n);
        let mut page = SyncPage::new(Utc::now());
        page.upsert_holdings = (next..end).map(holding).collect();
        store.apply_sync_page(&id, &page).await.unwrap();
        next = end;
    }
    let upsert = start.elapsed();
    let upsert_cpu = cpu_seconds() - cpu0;

    let start = Instant::now();
    let cpu0 = cpu_seconds();
    let mut read = 0u64;
    for a in 0..ASSETS {
        read += read_asset(&store, &id, &app(1_000 + a)).await;
    }
    let read_time = start.elapsed();
    let read_cpu = cpu_seconds() - cpu0;
    assert_eq!(read, n);

    let base_n = 100_000u64.min(n);
    let (base_store, base_id) = fresh(ASSETS, 2_000_000).await;
    let start = Instant::now();
    let cpu0 = cpu_seconds();
    for i in 0..base_n {
        put_holdings(&base_store, &base_id, vec![holding(i)], Utc::now())
            .await
            .unwrap();
    }
    let base = start.elapsed();
    let base_cpu = cpu_seconds() - cpu0;
    let per_row = base.as_secs_f64() / base_n as f64;
    let extrapolated = per_row * n as f64;
    println!("machine load average (1, 5, 15 min): {}", load_average());
    println!(
        "scale: upsert {n} holdings in pages of {PAGE}: {:.2} s wall ({:.0} rows/s), {:.2} s CPU",
        upsert.as_secs_f64(),
        n as f64 / upsert.as_secs_f64(),
        upsert_cpu
    );
    println!(
        "scale: read back by asset ({ASSETS} assets, pages of {PAGE}): {:.2} s wall ({:.0} rows/s), {:.2} s CPU",
        read_time.as_secs_f64(),
        n as f64 / read_time.as_secs_f64(),
        read_cpu
    );
    println!(
        "baseline: one call per row, {base_n} rows measured: {:.2} s wall ({:.2} s CPU) = {:.2} us/row; extrapolated to {n}: {:.1} s; batched is {:.1}x faster",
        base.as_secs_f64(),
        base_cpu,
        per_row * 1e6,
        extrapolated,
        extrapolated / upsert.as_secs_f64()
    );
}

async fn reservations(tasks: u64, per_task: u64) -> Duration {
    let (store, id) = fresh(1, 1_000_000).await;
    let store: Arc<dyn Store> = Arc::new(store);
    let start = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let store = store.clone();
        let id = id.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..per_task {
                let n = t * 1_000_000 + i;
                let r = Reservation::new(
                    id.clone(),
                    app(1_000),
                    vec![device(n)],
                    format!("op-{n}"),
                    Utc::now(),
                );
                store.reserve(&r).await.unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let elapsed = start.elapsed();
    assert_eq!(
        store
            .holding_counts(&id, &app(1_000))
            .await
            .unwrap()
            .reserved,
        tasks * per_task
    );
    elapsed
}

fn scale_runs() {
    if std::env::var("VPPKIT_BENCH_SCALE").as_deref() == Ok("0")
        || std::env::args().any(|a| a == "--test" || a == "--list")
    {
        return;
    }
    let n = std::env::var("VPPKIT_BENCH_HOLDINGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000u64);
    let rt = runtime();
    rt.block_on(scale(n));
    let total = 40_000u64;
    let eight = rt.block_on(reservations(8, total / 8));
    let one = rt.block_on(reservations(1, total));
    println!(
        "reserve: {total} single-holder reservations, 8 tasks: {:.3} s ({:.0}/s); 1 task: {:.3} s ({:.0}/s); ratio 8-task/1-task throughput {:.2}",
        eight.as_secs_f64(),
        total as f64 / eight.as_secs_f64(),
        one.as_secs_f64(),
        total as f64 / one.as_secs_f64(),
        one.as_secs_f64() / eight.as_secs_f64()
    );
}

fn page_benches(c: &mut Criterion) {
    let rt = runtime();
    let (store, id) = rt.block_on(fresh(ASSETS, 2_000_000));
    let counter = AtomicU64::new(0);
    let mut group = c.benchmark_group("memory_page_of_1000");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    group.bench_function("batched_apply_sync_page", |b| {
        b.to_async(&rt).iter(|| async {
            let first = counter.fetch_add(PAGE as u64, Ordering::Relaxed);
            let mut page = SyncPage::new(Utc::now());
            page.upsert_holdings = (first..first + PAGE as u64).map(holding).collect();
            store.apply_sync_page(&id, &page).await.unwrap();
        })
    });
    group.bench_function("one_call_per_row", |b| {
        b.to_async(&rt).iter(|| async {
            let first = counter.fetch_add(PAGE as u64, Ordering::Relaxed);
            for n in first..first + PAGE as u64 {
                put_holdings(&store, &id, vec![holding(n)], Utc::now())
                    .await
                    .unwrap();
            }
        })
    });
    group.finish();
}

fn main() {
    scale_runs();
    let mut c = Criterion::default().configure_from_args();
    page_benches(&mut c);
    c.final_summary();
}
