//! PostgreSQL store benchmarks (needs `VPPKIT_TEST_POSTGRES_URL`; each run in a fresh schema).
//!
//! 1. Scale, timed once: upsert 1,000,000 holdings (10 assets x 100,000) in sync pages
//!    of 1,000 (bulk `UNNEST` statements), then read them back asset by asset in pages
//!    of 1,000. Baseline in the same run: one `INSERT` statement per row (a transaction
//!    per page of 1,000) on a smaller N; the ratio compares rows per second.
//!    `VPPKIT_BENCH_HOLDINGS` changes the 1,000,000.
//! 2. Criterion: one page of 1,000 holdings, bulk vs one statement per row.
//! 3. Criterion: reservations with 8 concurrent tasks (on one asset: every
//!    reservation locks the same row; on 8 assets), against one task.
//!
//! Run: `VPPKIT_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
//!       cargo bench -p vppkit-store-postgres --bench postgres`

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use tokio::runtime::Runtime;
use vppkit_core::{AssetKey, HoldingStatus, LocationId, UNLIMITED_COUNT};
use vppkit_store::testkit::{add_location, app, app_asset, device, t};
use vppkit_store::{HoldingUpsert, Reservation, SecretCipher, Store, SyncPage};
use vppkit_store_postgres::testing::{TestSchema, TEST_URL_ENV};

const PAGE: u64 = 1_000;
const ASSETS: u64 = 10;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn cipher() -> SecretCipher {
    SecretCipher::from_key_bytes(&[3u8; 32]).expect("key")
}

/// A raw pool on the schema, for the one-statement-per-row baseline.
async fn raw_pool(schema: &TestSchema) -> PgPool {
    let options = PgConnectOptions::from_str(schema.url())
        .expect("url")
        .options([("search_path", schema.name())]);
    PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await
        .expect("raw pool")
}

/// A location with `ASSETS` unlimited apps.
async fn location(store: &Arc<dyn Store>, name: &str) -> (LocationId, Vec<AssetKey>) {
    let id = add_location(store, name).await;
    let keys: Vec<AssetKey> = (1..=ASSETS).map(app).collect();
    let mut page = SyncPage::new(t(0));
    page.upsert_assets = keys
        .iter()
        .map(|k| app_asset(k, UNLIMITED_COUNT, 0))
        .collect();
    store.apply_sync_page(&id, &page).await.expect("assets");
    (id, keys)
}

/// The page of holdings number `p` (holders `first..first+1000` of one asset).
fn page_of(keys: &[AssetKey], per_asset: u64, p: u64, offset: u64) -> Vec<HoldingUpsert> {
    let first = p * PAGE;
    let asset = &keys[((first / per_asset) % ASSETS) as usize];
    (first..first + PAGE)
        .map(|n| HoldingUpsert::new(asset.clone(), device(offset + n), HoldingStatus::Active))
        .collect()
}

/// Upserts `n` holdings page by page through the store; returns the elapsed time.
async fn bulk_upsert(
    store: &Arc<dyn Store>,
    id: &LocationId,
    keys: &[AssetKey],
    n: u64,
    offset: u64,
) -> Duration {
    let per_asset = n.div_ceil(ASSETS).max(PAGE);
    let mut elapsed = Duration::ZERO;
    for p in 0..n / PAGE {
        // Only the store's work is timed, not building the page.
        let mut page = SyncPage::new(t(1));
        page.upsert_holdings = page_of(keys, per_asset, p, offset);
        let start = Instant::now();
        store.apply_sync_page(id, &page).await.expect("page");
        elapsed += start.elapsed();
    }
    elapsed
}

/// The simplest alternative: one `INSERT ... ON CONFLICT` per row, a transaction per page.
async fn per_row_upsert(
    pool: &PgPool,
    id: &LocationId,
    keys: &[AssetKey],
    n: u64,
    offset: u64,
) -> Duration {
    let per_asset = n.div_ceil(ASSETS).max(PAGE);
    let mut elapsed = Duration::ZERO;
    for p in 0..n / PAGE {
        let rows = page_of(keys, per_asset, p, offset);
        let start = Instant::now();
        let mut tx = pool.begin().await.expect("begin");
        // The same commit mode as the store's sync pages: only the statements differ.
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await
            .expect("commit mode");
        for h in rows {
            sqlx::query(
                "INSERT INTO holdings (location_id, adam_id, pricing_param, holder, status, \
                 operation_id, updated_at) VALUES ($1, $2, $3, $4, $5, NULL, $6) \
                 ON CONFLICT (location_id, adam_id, pricing_param, holder) DO UPDATE SET \
                 status = EXCLUDED.status, updated_at = EXCLUDED.updated_at",
            )
            .bind(id.as_str())
            .bind(h.asset.adam_id.as_str())
            .bind(h.asset.pricing_param.as_str())
            .bind(h.holder.to_string())
            .bind(h.status.as_str())
            .bind(t(1))
            .execute(&mut *tx)
            .await
            .expect("row");
        }
        tx.commit().await.expect("commit");
        elapsed += start.elapsed();
    }
    elapsed
}

/// Reads every holding back, asset by asset, in pages of 1,000; returns (count, time).
async fn read_back(store: &Arc<dyn Store>, id: &LocationId, keys: &[AssetKey]) -> (u64, Duration) {
    let start = Instant::now();
    let mut total = 0;
    for key in keys {
        let mut after = None;
        loop {
            let page = store
                .holdings_by_asset(id, key, after.as_ref(), PAGE as u32)
                .await
                .expect("read");
            let Some(last) = page.last() else { break };
            after = Some(last.holder.clone());
            total += page.len() as u64;
        }
    }
    (total, start.elapsed())
}

/// The scale run, timed once (criterion's repeated sampling would take minutes).
fn scale(rt: &Runtime, url: &str) {
    let n: u64 = std::env::var("VPPKIT_BENCH_HOLDINGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
        .max(PAGE);
    let baseline_n = (n / 50).clamp(PAGE, 20_000) / PAGE * PAGE;
    rt.block_on(async {
        let schema = TestSchema::create(url).await.expect("schema");
        let store: Arc<dyn Store> = Arc::new(schema.open(cipher()).await.expect("store"));
        let pool = raw_pool(&schema).await;

        let (base_loc, base_keys) = location(&store, "baseline").await;
        let per_row = per_row_upsert(&pool, &base_loc, &base_keys, baseline_n, 0).await;
        let (bulk_loc, bulk_keys) = location(&store, "bulk-small").await;
        let bulk_small = bulk_upsert(&store, &bulk_loc, &bulk_keys, baseline_n, 0).await;

        let (id, keys) = location(&store, "scale").await;
        let upsert = bulk_upsert(&store, &id, &keys, n, 0).await;
        let (read, read_time) = read_back(&store, &id, &keys).await;
        assert_eq!(read, n / PAGE * PAGE, "every holding read back");

        let rate = |rows: u64, d: Duration| rows as f64 / d.as_secs_f64();
        let per_row_rate = rate(baseline_n, per_row);
        println!("scale: {n} holdings upserted in pages of {PAGE}: {:.2} s ({:.0} rows/s)", upsert.as_secs_f64(), rate(n, upsert));
        println!("scale: read back by asset in pages of {PAGE}: {:.2} s ({:.0} rows/s)", read_time.as_secs_f64(), rate(read, read_time));
        println!(
            "scale: upsert + read back: {:.2} s (target <= 15 s)",
            (upsert + read_time).as_secs_f64()
        );
        println!(
            "baseline: {baseline_n} holdings, one statement per row: {:.2} s ({:.0} rows/s); \
             bulk pages on the same N: {:.2} s ({:.0} rows/s)",
            per_row.as_secs_f64(),
            per_row_rate,
            bulk_small.as_secs_f64(),
            rate(baseline_n, bulk_small)
        );
        println!(
            "ratio: bulk pages at {n} vs one statement per row at {baseline_n}: {:.1}x rows/s; at equal N: {:.1}x",
            rate(n, upsert) / per_row_rate,
            rate(baseline_n, bulk_small) / per_row_rate
        );
        drop(store);
        pool.close().await;
        schema.drop_schema().await.expect("drop schema");
    });
}

fn criterion_benches(c: &mut Criterion, rt: &Runtime, url: &str) {
    let (schema, store, pool) = rt.block_on(async {
        let schema = TestSchema::create(url).await.expect("schema");
        let store: Arc<dyn Store> = Arc::new(schema.open(cipher()).await.expect("store"));
        let pool = raw_pool(&schema).await;
        (schema, store, pool)
    });
    let (id, keys) = rt.block_on(location(&store, "criterion"));
    let next = AtomicU64::new(10_000_000);

    let mut group = c.benchmark_group("holdings_page_of_1000");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(6))
        .warm_up_time(Duration::from_secs(1));
    group.bench_function("bulk_unnest_sync_page", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let offset = next.fetch_add(PAGE, Ordering::Relaxed);
                    total += bulk_upsert(&store, &id, &keys, PAGE, offset).await;
                }
                total
            })
        })
    });
    group.bench_function("one_statement_per_row", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let offset = next.fetch_add(PAGE, Ordering::Relaxed);
                    total += per_row_upsert(&pool, &id, &keys, PAGE, offset).await;
                }
                total
            })
        })
    });
    group.finish();

    let mut group = c.benchmark_group("reserve_one_licence");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(6))
        .warm_up_time(Duration::from_secs(1));
    for (name, tasks, spread) in [
        ("1_task", 1u64, false),
        ("8_tasks_same_asset", 8, false),
        ("8_tasks_8_assets", 8, true),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let per_task = iters.div_ceil(tasks);
                    let start = Instant::now();
                    let mut handles = Vec::new();
                    for task in 0..tasks {
                        let store = store.clone();
                        let id = id.clone();
                        let key = keys[if spread {
                            task as usize % keys.len()
                        } else {
                            0
                        }]
                        .clone();
                        let first = next.fetch_add(per_task, Ordering::Relaxed);
                        handles.push(tokio::spawn(async move {
                            for n in first..first + per_task {
                                let r = Reservation::new(
                                    id.clone(),
                                    key.clone(),
                                    vec![device(n)],
                                    "bench",
                                    t(2),
                                );
                                store.reserve(&r).await.expect("reserve");
                            }
                        }));
                    }
                    for h in handles {
                        h.await.expect("task");
                    }
                    // Time per reservation, whatever the split.
                    start
                        .elapsed()
                        .mul_f64(iters as f64 / (per_task * tasks) as f64)
                })
            })
        });
    }
    group.finish();

    drop(store);
    rt.block_on(async {
        pool.close().await;
        schema.drop_schema().await.expect("drop schema");
    });
}

fn benches(c: &mut Criterion) {
    let Ok(url) = std::env::var(TEST_URL_ENV) else {
        eprintln!("skipped: {TEST_URL_ENV} not set");
        return;
    };
    let rt = runtime();
    if std::env::var("VPPKIT_BENCH_SKIP_SCALE").is_err() {
        scale(&rt, &url);
    }
    criterion_benches(c, &rt, &url);
}

mod group {
    criterion::criterion_group!(postgres, super::benches);
}

criterion::criterion_main!(group::postgres);
