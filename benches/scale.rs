//! Scale benchmark: one location at the design's scale (the simulator's `scale` preset:
//! 5,000 assets, 1,000,000 assignments), synced in full by the engine into SQLite (and
//! PostgreSQL when `VPPKIT_TEST_POSTGRES_URL` is set), then synced incrementally.
//!
//! The baseline, measured in the same run, is the bare page walk: `vppkit-client`
//! fetching every assignments page with no engine work. Pacing is off, so Apple's rate
//! limit is not in the figures; at Apple's 15 requests a second, the 1,000 pages of this
//! location take at least 67 s, which is the bound the engine's own work must stay under.
//!
//! Run: `cargo bench -p vppkit --bench scale` (prints a table; takes a few minutes).

#![allow(missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use vppkit::client::{AssignmentFilter, ClientBuilder, Pacing};
use vppkit::core::{LocationId, MdmInfo};
use vppkit::engine::{
    AddToken, CommandSink, Engine, EngineConfig, ProgressReporter, QueuedCommand, SinkError,
    SyncKind,
};
use vppkit::store::{SecretCipher, Store};
use vppkit::store_sqlite::SqliteStore;
use vppkit_sim::{Preset, RunningSimulator, SimClock, Simulator, TokenFile};

struct NullSink;

#[async_trait::async_trait]
impl CommandSink for NullSink {
    async fn send(&self, _: Vec<QueuedCommand>) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Peak resident memory of this process so far, from `/proc/self/status` (Linux).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

async fn client_walk(sim: &RunningSimulator, token: &TokenFile) -> (Duration, usize) {
    let client = ClientBuilder::new(&token.content)
        .base_url(sim.base_url())
        .pacing(Pacing::Off)
        .build()
        .expect("client");
    let started = Instant::now();
    let mut pages = client.assignments(AssignmentFilter::new());
    let mut items = 0usize;
    while let Some(page) = pages.try_next().await.expect("page") {
        items += page.items.len();
    }
    (started.elapsed(), items)
}

async fn engine_syncs(
    sim: &RunningSimulator,
    token: &TokenFile,
    store: Arc<dyn Store>,
) -> (Duration, Duration) {
    let me = MdmInfo::new("scale-bench", "Scale bench", "bench.example").expect("mdmInfo");
    let engine = Engine::builder(store, EngineConfig::new(me))
        .sink(Arc::new(NullSink))
        .apple_base_url(sim.base_url())
        .customize_client(|c| c.pacing(Pacing::Off))
        .build()
        .expect("engine");
    let id = LocationId::new("scale").expect("id");
    engine
        .add_token(AddToken::new(id.clone(), token.content.clone()))
        .await
        .expect("onboard");
    let started = Instant::now();
    let full = engine
        .sync(&id, SyncKind::Full, &ProgressReporter::none())
        .await
        .expect("full sync");
    let full_took = started.elapsed();
    assert!(full.succeeded(), "full sync failed: {full:?}");
    let started = Instant::now();
    let incremental = engine
        .sync(&id, SyncKind::Incremental, &ProgressReporter::none())
        .await
        .expect("incremental sync");
    let incremental_took = started.elapsed();
    assert!(
        incremental.succeeded(),
        "incremental sync failed: {incremental:?}"
    );
    (full_took, incremental_took)
}

fn row(what: &str, took: Duration, baseline: Duration) {
    println!(
        "| {what} | {:.2} s | {:.1}x |",
        took.as_secs_f64(),
        took.as_secs_f64() / baseline.as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    // `cargo test --benches` and `cargo bench -- --list` pass flags: only run when benchmarking.
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let started = Instant::now();
    let sim = Simulator::builder()
        .preset(Preset::Scale)
        .clock(SimClock::real_time(Duration::ZERO))
        .start()
        .await
        .expect("simulator");
    let built = started.elapsed();
    let token = sim.token_files().into_iter().next().expect("scale token");

    let (walk, items) = client_walk(&sim, &token).await;
    println!(
        "scale preset built in {:.2} s; {items} assignments",
        built.as_secs_f64()
    );
    println!();
    println!("| what | time | vs bare page walk |");
    println!("|---|---|---|");
    row("bare page walk (baseline)", walk, walk);

    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("scale.db").display()
    );
    let sqlite: Arc<dyn Store> = Arc::new(
        SqliteStore::connect(&url, SecretCipher::plaintext())
            .await
            .expect("sqlite"),
    );
    let (full, incremental) = engine_syncs(&sim, &token, sqlite).await;
    row("engine full sync, SQLite", full, walk);
    row(
        "engine incremental sync after it, SQLite",
        incremental,
        walk,
    );

    if let Ok(pg_url) = std::env::var("VPPKIT_TEST_POSTGRES_URL") {
        let schema = vppkit_store_postgres::testing::TestSchema::create(&pg_url)
            .await
            .expect("postgres schema");
        let pg: Arc<dyn Store> = Arc::new(
            schema
                .open(SecretCipher::plaintext())
                .await
                .expect("postgres"),
        );
        let (full, incremental) = engine_syncs(&sim, &token, pg).await;
        row("engine full sync, PostgreSQL", full, walk);
        row(
            "engine incremental sync after it, PostgreSQL",
            incremental,
            walk,
        );
    } else {
        println!("(PostgreSQL skipped: VPPKIT_TEST_POSTGRES_URL not set)");
    }
    if let Some(peak) = peak_rss_mib() {
        println!();
        println!("peak resident memory of the whole run (simulator included): {peak:.0} MiB");
    }
    sim.shutdown().await;
}
