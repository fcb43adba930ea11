//! Scale benchmark, two scenarios, pacing off, into fresh stores.
//!
//! 1. One location at the design's scale (the simulator's `scale` preset: 5,000 assets,
//!    1,000,000 assignments), synced in full by the engine into SQLite (and PostgreSQL when
//!    `VPPKIT_TEST_POSTGRES_URL` is set), then incrementally: once with nothing changed, once
//!    after another MDM assigned 1,000 licences, and once after another MDM assigned 500 and
//!    took back 500 (`Control::foreign_associate` / `foreign_disassociate`). Each incremental
//!    row checks, holding by holding, that the store took the changes in, so no row can time a
//!    no-op. Baseline, measured in the same run: the bare page walk, `vppkit-client` fetching
//!    every assignments page of the location with no engine work.
//! 2. 256 locations with 10,000 assignments each (50 apps, 1,000 devices a location, each
//!    device holding 10 apps), seeded through `Control::add_location` and
//!    `Control::foreign_associate` (the assignments another MDM made: what a first sync adopts).
//!    One engine on one SQLite store onboards the 256 tokens, then `Engine::sync_all` syncs them
//!    all, at most `EngineConfig::max_concurrent_locations` (64, the default) at once; the run
//!    checks every sync succeeded and the store holds 2,560,000 holdings. Baseline, same run:
//!    the bare page walk of the 256 locations' assignments by the client, 64 locations at once.
//!
//! Pacing is off, so Apple's rate limit is not in the figures; at Apple's 15 requests a second,
//! the 1,000 pages of the large location take at least 67 s, which is the bound the engine's own
//! work must stay under.
//!
//! Run: `cargo bench -p vppkit --bench scale` (prints a table; takes a few minutes).

#![allow(missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use vppkit::client::{AssignmentFilter, ClientBuilder, Pacing};
use vppkit::core::{
    AccountType, AdamId, AssetKey, Holder, LocationId, MdmInfo, PricingParam, SerialNumber,
};
use vppkit::engine::{
    AddToken, CommandSink, Engine, EngineConfig, ProgressReporter, QueuedCommand, SinkError,
    SyncKind, SyncOutcome,
};
use vppkit::store::{SecretCipher, Store};
use vppkit::store_sqlite::SqliteStore;
use vppkit_sim::{
    scale, AssetSpec, Control, LocationSpec, Preset, RunningSimulator, SimClock, Simulator,
    TokenFile,
};

struct NullSink;

#[async_trait::async_trait]
impl CommandSink for NullSink {
    async fn send(&self, _: Vec<QueuedCommand>) -> Result<(), SinkError> {
        Ok(())
    }
}

/// A memory figure of this process from `/proc/self/status` (Linux), in MiB.
fn status_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Peak resident memory of this process so far.
fn peak_rss_mib() -> Option<f64> {
    status_mib("VmHWM:")
}

/// Resident memory of this process now.
fn rss_mib() -> Option<f64> {
    status_mib("VmRSS:")
}

async fn client_walk(base_url: &str, token: &TokenFile) -> (Duration, usize) {
    let client = ClientBuilder::new(&token.content)
        .base_url(base_url)
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

fn engine(sim: &RunningSimulator, store: Arc<dyn Store>) -> Engine {
    let me = MdmInfo::new("scale-bench", "Scale bench", "bench.example").expect("mdmInfo");
    Engine::builder(store, EngineConfig::new(me))
        .sink(Arc::new(NullSink))
        .apple_base_url(sim.base_url())
        .customize_client(|c| c.pacing(Pacing::Off))
        .build()
        .expect("engine")
}

fn app(adam: u64) -> AssetKey {
    AssetKey::new(AdamId::from(adam), PricingParam::Stdq)
}

fn device(serial: &str) -> Holder {
    Holder::Device(SerialNumber::new(serial).expect("serial"))
}

/// The `scale` preset's device-assignable app with index `i` (`0..4000`).
fn scale_app(i: u32) -> AssetKey {
    app(scale::FIRST_ADAM_ID + u64::from(i))
}

/// Pairs another MDM changes between two syncs: `(asset, serial number)`.
#[derive(Default)]
struct ForeignChanges {
    added: Vec<(AssetKey, String)>,
    removed: Vec<(AssetKey, String)>,
}

/// Another MDM assigns `per_app` new devices (serials `{prefix}000000001` ...) to each app of
/// `apps` (indexes into the preset's device-assignable apps, each with 25 free licences).
fn foreign_adds(
    control: &Control,
    prefix: &str,
    apps: std::ops::Range<u32>,
    per_app: u32,
) -> Vec<(AssetKey, String)> {
    let mut added = Vec::new();
    let mut n = 0u32;
    for i in apps {
        let key = scale_app(i);
        let serials: Vec<String> = (0..per_app)
            .map(|_| {
                n += 1;
                format!("{prefix}{n:09}")
            })
            .collect();
        let refs: Vec<&str> = serials.iter().map(String::as_str).collect();
        let new = control
            .foreign_associate(scale::UID, &key, &refs, &[])
            .expect("foreign associate");
        assert_eq!(new, serials.len(), "every pair is new at Apple");
        added.extend(serials.into_iter().map(|s| (key.clone(), s)));
    }
    added
}

/// Another MDM takes back one licence from each of the first `n` devices of the preset:
/// device `d` (from 0, serial `device_serial(d + 1)`) holds apps `(7d + k) mod 4000`, `k < 7`;
/// it loses app `7d + 6` (`n` <= 500 keeps these apps distinct and below 3,506).
fn foreign_removals(control: &Control, n: u32) -> Vec<(AssetKey, String)> {
    assert!(n <= 500);
    (0..n)
        .map(|d| {
            let key = scale_app((7 * d + 6) % 4000);
            let serial = scale::device_serial(d + 1);
            let gone = control
                .foreign_disassociate(scale::UID, &key, &[serial.as_str()], &[])
                .expect("foreign disassociate");
            assert_eq!(gone, 1, "{serial} held {key} at Apple");
            (key, serial)
        })
        .collect()
}

/// Checks, pair by pair, that the store holds every pair of `present` and none of `absent`.
async fn assert_stored(
    store: &dyn Store,
    id: &LocationId,
    present: &[(AssetKey, String)],
    absent: &[(AssetKey, String)],
    when: &str,
) {
    for (key, serial) in present {
        let h = store
            .holding(id, key, &device(serial))
            .await
            .expect("holding");
        assert!(
            h.is_some(),
            "{when}: the store should hold {key} on {serial}"
        );
    }
    for (key, serial) in absent {
        let h = store
            .holding(id, key, &device(serial))
            .await
            .expect("holding");
        assert!(
            h.is_none(),
            "{when}: the store should not hold {key} on {serial}"
        );
    }
}

/// Holdings stored for each asset of `keys`, summed.
async fn stored_count(store: &dyn Store, id: &LocationId, keys: &[AssetKey]) -> u64 {
    let mut total = 0;
    for key in keys {
        total += store
            .holding_counts(id, key)
            .await
            .expect("holding counts")
            .total();
    }
    total
}

fn distinct_assets(pairs: &[(AssetKey, String)]) -> Vec<AssetKey> {
    let mut keys: Vec<AssetKey> = pairs.iter().map(|(k, _)| k.clone()).collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Another MDM's changes, then an incremental sync, timed; checks the store took them in.
async fn timed_incremental_after(
    engine: &Engine,
    store: &dyn Store,
    id: &LocationId,
    changes: ForeignChanges,
) -> (Duration, SyncOutcome) {
    let added_assets = distinct_assets(&changes.added);
    let removed_assets = distinct_assets(&changes.removed);
    assert!(
        added_assets.iter().all(|k| !removed_assets.contains(k)),
        "additions and removals on different assets, so each count moves one way"
    );
    let added_before = stored_count(store, id, &added_assets).await;
    let removed_before = stored_count(store, id, &removed_assets).await;
    // Before the sync the store has the removed pairs and not the added ones.
    assert_stored(store, id, &changes.removed, &changes.added, "before").await;

    let started = Instant::now();
    let outcome = engine
        .sync(id, SyncKind::Incremental, &ProgressReporter::none())
        .await
        .expect("incremental sync");
    let took = started.elapsed();
    assert!(outcome.succeeded(), "incremental sync failed: {outcome:?}");

    assert_stored(store, id, &changes.added, &changes.removed, "after").await;
    let added_after = stored_count(store, id, &added_assets).await;
    let removed_after = stored_count(store, id, &removed_assets).await;
    assert_eq!(added_after, added_before + changes.added.len() as u64);
    assert_eq!(removed_after + changes.removed.len() as u64, removed_before);
    (took, outcome)
}

struct SingleLocation {
    full: Duration,
    unchanged: Duration,
    /// `(took, assignments read)` of the incremental syncs after foreign changes (SQLite only).
    additions: Option<(Duration, u64)>,
    mixed: Option<(Duration, u64)>,
}

async fn engine_syncs(
    sim: &RunningSimulator,
    token: &TokenFile,
    store: Arc<dyn Store>,
    foreign_changes: bool,
) -> SingleLocation {
    let engine = engine(sim, store.clone());
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
    let at_apple = sim
        .control()
        .assignment_count(scale::UID)
        .expect("assignment count");
    assert_eq!(full.assignments, at_apple as u64);
    eprintln!("full sync: {:.2} s", full_took.as_secs_f64());
    let started = Instant::now();
    let incremental = engine
        .sync(&id, SyncKind::Incremental, &ProgressReporter::none())
        .await
        .expect("incremental sync");
    let unchanged = started.elapsed();
    assert!(
        incremental.succeeded(),
        "incremental sync failed: {incremental:?}"
    );
    let mut out = SingleLocation {
        full: full_took,
        unchanged,
        additions: None,
        mixed: None,
    };
    if foreign_changes {
        let control = sim.control();
        // 1,000 new pairs: 50 apps (indexes 3900..3950) x 20 new devices.
        let added = foreign_adds(&control, "SCA", 3900..3950, 20);
        let (took, o) = timed_incremental_after(
            &engine,
            store.as_ref(),
            &id,
            ForeignChanges {
                added,
                removed: Vec::new(),
            },
        )
        .await;
        eprintln!(
            "incremental sync of 1,000 additions: {:.2} s",
            took.as_secs_f64()
        );
        out.additions = Some((took, o.assignments));
        // 500 new pairs (25 apps, indexes 3975..4000, x 20 new devices) and 500 taken back
        // (one app each from devices 1..=500: apps 6..3500, disjoint from the added ones).
        let added = foreign_adds(&control, "SCB", 3975..4000, 20);
        let removed = foreign_removals(&control, 500);
        assert_eq!(added.len() + removed.len(), 1_000);
        let (took, o) = timed_incremental_after(
            &engine,
            store.as_ref(),
            &id,
            ForeignChanges { added, removed },
        )
        .await;
        eprintln!(
            "incremental sync of 1,000 changes: {:.2} s",
            took.as_secs_f64()
        );
        out.mixed = Some((took, o.assignments));
    }
    out
}

const LOCATIONS: u32 = 256;
const APPS_PER_LOCATION: u32 = 50;
const DEVICES_PER_LOCATION: u32 = 1_000;
const DEVICES_PER_APP: u32 = 200;
const ASSIGNMENTS_PER_LOCATION: u32 = APPS_PER_LOCATION * DEVICES_PER_APP;
const CONCURRENT: usize = 64;

/// Seeds location `i` of the many-locations scenario: 50 apps (the same adam ids in every
/// location, as in a district), 1,000 devices; app `a` is held by devices `20a ..< 20a + 200`
/// (mod 1,000), so each device holds 10 apps. Returns its token file.
fn seed_location(control: &Control, i: u32) -> TokenFile {
    let mut spec = LocationSpec::new(format!("School {i:03}"))
        .account(AccountType::Education)
        .country("US");
    for a in 0..APPS_PER_LOCATION {
        let adam = 1_600_000_001 + u64::from(a);
        spec = spec.asset(
            AssetSpec::app(adam, DEVICES_PER_APP + 10).named(&format!("District App {a:02}"), None),
        );
    }
    let token = control.add_location(spec).expect("add location");
    let serials: Vec<String> = (0..DEVICES_PER_LOCATION)
        .map(|d| format!("S{i:03}D{d:07}"))
        .collect();
    for a in 0..APPS_PER_LOCATION {
        let refs: Vec<&str> = (0..DEVICES_PER_APP)
            .map(|j| serials[((a * 20 + j) % DEVICES_PER_LOCATION) as usize].as_str())
            .collect();
        let new = control
            .foreign_associate(
                token.uid.as_str(),
                &app(1_600_000_001 + u64::from(a)),
                &refs,
                &[],
            )
            .expect("seed assignments");
        assert_eq!(new, DEVICES_PER_APP as usize);
    }
    token
}

struct ManyLocations {
    seeded: Duration,
    walk: Duration,
    onboarded: Duration,
    sync: Duration,
    /// Resident memory just before the sync (this scenario's simulator seeded, tokens onboarded).
    rss_before_sync: Option<f64>,
    /// Resident memory right after it (the engine and its store still open).
    rss_after_sync: Option<f64>,
}

async fn many_locations() -> ManyLocations {
    let sim = Simulator::builder()
        .preset(Preset::Empty)
        .clock(SimClock::real_time(Duration::ZERO))
        .start()
        .await
        .expect("simulator");
    let control = sim.control();
    let started = Instant::now();
    let tokens: Vec<TokenFile> = (0..LOCATIONS).map(|i| seed_location(&control, i)).collect();
    let seeded = started.elapsed();
    let total: usize = tokens
        .iter()
        .map(|t| control.assignment_count(t.uid.as_str()).expect("count"))
        .sum();
    assert_eq!(total, (LOCATIONS * ASSIGNMENTS_PER_LOCATION) as usize);

    let base_url = sim.base_url();
    let started = Instant::now();
    let walked: Vec<usize> = futures::stream::iter(tokens.iter())
        .map(|t| client_walk(&base_url, t))
        .buffer_unordered(CONCURRENT)
        .map(|(_, items)| items)
        .collect()
        .await;
    let walk = started.elapsed();
    assert_eq!(walked.iter().sum::<usize>(), total);

    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("many.db").display());
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::connect(&url, SecretCipher::plaintext())
            .await
            .expect("sqlite"),
    );
    let engine = engine(&sim, store.clone());
    let started = Instant::now();
    let mut ids = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let id = LocationId::new(format!("school-{i:03}")).expect("id");
        engine
            .add_token(AddToken::new(id.clone(), t.content.clone()))
            .await
            .expect("onboard");
        ids.push(id);
    }
    let onboarded = started.elapsed();
    let rss_before_sync = rss_mib();

    let started = Instant::now();
    let results = engine
        .sync_all(SyncKind::Full, &ProgressReporter::none())
        .await
        .expect("sync all");
    let sync = started.elapsed();
    let rss_after_sync = rss_mib();
    eprintln!("256 locations synced: {:.2} s", sync.as_secs_f64());
    assert_eq!(results.len(), LOCATIONS as usize);
    let mut read = 0u64;
    for (id, r) in &results {
        let o = r
            .as_ref()
            .unwrap_or_else(|e| panic!("sync of {id} failed: {e}"));
        assert!(o.succeeded(), "sync of {id} failed: {o:?}");
        read += o.assignments;
    }
    assert_eq!(read, total as u64);
    let mut stored = 0u64;
    for id in &ids {
        let keys: Vec<AssetKey> = store
            .assets(id)
            .await
            .expect("assets")
            .into_iter()
            .map(|a| a.asset.key)
            .collect();
        assert_eq!(keys.len(), APPS_PER_LOCATION as usize);
        let n = stored_count(store.as_ref(), id, &keys).await;
        assert_eq!(n, u64::from(ASSIGNMENTS_PER_LOCATION), "holdings of {id}");
        stored += n;
    }
    assert_eq!(stored, 2_560_000);
    drop(engine);
    sim.shutdown().await;
    ManyLocations {
        seeded,
        walk,
        onboarded,
        sync,
        rss_before_sync,
        rss_after_sync,
    }
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

    let (walk, items) = client_walk(&sim.base_url(), &token).await;
    assert_eq!(items, scale::ASSIGNMENTS);
    let mut notes = vec![format!(
        "scale preset built in {:.2} s; {items} assignments",
        built.as_secs_f64()
    )];
    let mut rows: Vec<(String, Duration, Duration)> = Vec::new();
    rows.push(("bare page walk (baseline)".to_owned(), walk, walk));

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
    let s = engine_syncs(&sim, &token, sqlite, true).await;
    rows.push(("engine full sync, SQLite".to_owned(), s.full, walk));
    rows.push((
        "engine incremental sync after it, SQLite".to_owned(),
        s.unchanged,
        walk,
    ));
    if let Some((took, read)) = s.additions {
        rows.push((
            "incremental sync of 1,000 additions, SQLite".to_owned(),
            took,
            walk,
        ));
        notes.push(format!(
            "incremental sync of 1,000 additions: {read} assignments read from Apple"
        ));
    }
    if let Some((took, read)) = s.mixed {
        rows.push((
            "incremental sync of 1,000 changes, SQLite".to_owned(),
            took,
            walk,
        ));
        notes.push(format!(
            "incremental sync of 1,000 changes (500 added, 500 taken back): {read} assignments \
             read from Apple"
        ));
    }

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
        let p = engine_syncs(&sim, &token, pg, false).await;
        rows.push(("engine full sync, PostgreSQL".to_owned(), p.full, walk));
        rows.push((
            "engine incremental sync after it, PostgreSQL".to_owned(),
            p.unchanged,
            walk,
        ));
    } else {
        notes.push("PostgreSQL skipped: VPPKIT_TEST_POSTGRES_URL not set".to_owned());
    }
    sim.shutdown().await;
    let peak_single = peak_rss_mib();
    let rss_between = rss_mib();
    if let Some(peak) = peak_single {
        eprintln!("peak after the large location: {peak:.0} MiB");
    }

    let m = many_locations().await;
    rows.push((
        "bare page walk of 256 locations x 10,000 assignments, 64 at once (baseline of the row below)"
            .to_owned(),
        m.walk,
        m.walk,
    ));
    rows.push((
        "256 locations x 10,000 assignments, first sync, SQLite".to_owned(),
        m.sync,
        m.walk,
    ));
    notes.push(format!(
        "256 locations seeded in {:.2} s, onboarded in {:.2} s (not in the sync row); synced with \
         Engine::sync_all, {CONCURRENT} at once; its ratio is against the 256-location page walk",
        m.seeded.as_secs_f64(),
        m.onboarded.as_secs_f64()
    ));

    println!();
    println!("| what | time | vs bare page walk |");
    println!("|---|---|---|");
    for (what, took, baseline) in &rows {
        row(what, *took, *baseline);
    }
    println!();
    for n in &notes {
        println!("{n}");
    }
    if let Some(peak) = peak_single {
        println!("peak resident memory after the 1,000,000-assignment location: {peak:.0} MiB");
    }
    if let (Some(between), Some(before)) = (rss_between, m.rss_before_sync) {
        println!(
            "resident memory after the large location's simulator shut down: {between:.0} MiB; \
             just before the 256-location sync (their simulator seeded, 256 tokens onboarded): \
             {before:.0} MiB; right after it (engine and store still open): {} MiB",
            m.rss_after_sync
                .map_or("?".to_owned(), |a| format!("{a:.0}"))
        );
    }
    if let Some(peak) = peak_rss_mib() {
        println!("peak resident memory of the whole run (simulator included): {peak:.0} MiB");
    }
}
