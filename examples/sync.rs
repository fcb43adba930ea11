//! A sync: Apple's assets, users and assignments streamed page by page into the store,
//! with progress; then an incremental sync after Apple's state changed.
//!
//! Runs against the simulator: `cargo run --example sync`.

use std::sync::Arc;
use std::time::Duration;

use vppkit::core::{AdamId, AssetKey, LocationId, MdmInfo, PricingParam};
use vppkit::engine::SyncProgress;
use vppkit::engine::{AddToken, CommandSink, Engine, EngineConfig, ProgressReporter};
use vppkit::engine::{QueuedCommand, ReportOptions, SinkError, SyncKind, SyncStep};
use vppkit::store::SecretCipher;
use vppkit::store_sqlite::SqliteStore;
use vppkit_sim::{demo, Preset, SimClock, Simulator};

struct NoDevices;

#[async_trait::async_trait]
impl CommandSink for NoDevices {
    async fn send(&self, _: Vec<QueuedCommand>) -> Result<(), SinkError> {
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sim = Simulator::builder()
        .preset(Preset::Demo)
        .page_size(500)
        .clock(SimClock::real_time(Duration::from_millis(50)))
        .start()
        .await?;
    let cipher = SecretCipher::from_base64(SecretCipher::generate_key_base64().expose())?;
    let store = Arc::new(SqliteStore::in_memory(cipher).await?);
    let mdm = MdmInfo::new("sync-example", "vppkit example", "localhost")?;
    let engine = Engine::builder(store, EngineConfig::new(mdm))
        .sink(Arc::new(NoDevices))
        .apple_base_url(sim.base_url())
        .build()?;
    let token = sim
        .token_files()
        .into_iter()
        .find(|t| t.uid.as_str() == demo::SPRINGFIELD_HIGH);
    let school = LocationId::new("springfield-high")?;
    let token = token.ok_or("no demo token")?.content;
    engine
        .add_token(AddToken::new(school.clone(), token))
        .await?;

    let progress = ProgressReporter::callback(|p| {
        if let SyncProgress::Page {
            endpoint,
            pages_done,
            total_pages,
            items,
            ..
        } = p
        {
            let total = total_pages
                .map(|t| t.to_string())
                .unwrap_or_else(|| "?".into());
            let endpoint = match endpoint {
                SyncStep::Assets => "assets",
                SyncStep::Assignments => "assignments",
                SyncStep::Users => "users",
                SyncStep::Metadata => "metadata",
                _ => "other",
            };
            println!("  {endpoint}: page {pages_done}/{total}, {items} items");
        }
    });
    let first = engine
        .sync(&school, SyncKind::Incremental, &progress)
        .await?;
    println!(
        "first sync ({}): {} assets, {} assignments, {} users",
        first.kind, first.assets, first.assignments, first.users
    );

    // Apple's side changes: 10 more licences of Chem Lab 3D are bought.
    let chem = AssetKey::new(AdamId::from(demo::SHORTAGE_APP), PricingParam::Stdq);
    sim.control()
        .buy_licences(demo::SPRINGFIELD_HIGH, &chem, 10)?;
    let next = engine
        .sync(&school, SyncKind::Incremental, &ProgressReporter::none())
        .await?;
    println!(
        "then an {} sync: {} assignments changed",
        next.kind, next.assignments
    );

    let report = engine.report(&school, ReportOptions::summary()).await?;
    println!("\n{:<22} {:>6} {:>6} {:>6}", "app", "owned", "used", "free");
    for app in report.apps.iter().filter(|a| !a.unlimited) {
        let name = app.name.clone().unwrap_or_else(|| app.asset.to_string());
        println!(
            "{name:<22} {:>6} {:>6} {:>6}",
            app.owned, app.used, app.free
        );
    }
    sim.shutdown().await;
    Ok(())
}
