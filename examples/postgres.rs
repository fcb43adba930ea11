//! Embedding with PostgreSQL: several manager instances share one database. Each
//! location is worked on by one instance at a time (a lease in the database); licence
//! reservations are atomic across instances.
//!
//! ```text
//! VPPKIT_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres cargo run --example postgres
//! ```
//!
//! Uses the schema `vppkit_example` (created if missing) and the simulator for Apple.

use std::sync::Arc;
use std::time::Duration;

use vppkit::core::{LocationId, MdmInfo};
use vppkit::engine::{AddToken, CommandSink, Engine, EngineConfig, ProgressReporter};
use vppkit::engine::{QueuedCommand, ReportOptions, SinkError, SyncKind};
use vppkit::store::{SecretCipher, Store};
use vppkit_sim::{demo, Preset, SimClock, Simulator};
use vppkit_store_postgres::{PostgresOptions, PostgresStore};

struct NoDevices;

#[async_trait::async_trait]
impl CommandSink for NoDevices {
    async fn send(&self, _: Vec<QueuedCommand>) -> Result<(), SinkError> {
        Ok(())
    }
}

/// One manager instance: its own pool and engine, the shared database.
async fn instance(
    url: &str,
    key: &str,
    apple: &str,
    id: &str,
) -> Result<Engine, Box<dyn std::error::Error>> {
    let options = PostgresOptions::from_url(url, SecretCipher::from_base64(key)?)?
        .schema("vppkit_example")?
        .create_schema(true);
    let store: Arc<dyn Store> = Arc::new(PostgresStore::connect(options).await?);
    // Every instance of one manager uses the same mdmInfo; each has its own instance id.
    let mdm = MdmInfo::new("postgres-example", "vppkit example", "localhost")?;
    let config = EngineConfig::new(mdm).with_instance_id(id);
    Ok(Engine::builder(store, config)
        .sink(Arc::new(NoDevices))
        .apple_base_url(apple)
        .build()?)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("VPPKIT_POSTGRES_URL")
        .map_err(|_| "set VPPKIT_POSTGRES_URL, e.g. postgres://postgres@127.0.0.1:5432/postgres")?;
    // In production the key comes from your secret store (VPPKIT_SECRET_KEY); the same
    // key on every instance.
    let key = SecretCipher::generate_key_base64();
    let sim = Simulator::builder()
        .preset(Preset::Demo)
        .clock(SimClock::real_time(Duration::from_millis(50)))
        .start()
        .await?;
    let a = instance(&url, key.expose(), &sim.base_url(), "instance-a").await?;
    let b = instance(&url, key.expose(), &sim.base_url(), "instance-b").await?;

    let school = LocationId::new("springfield-high")?;
    a.store().delete_location(&school).await?; // a fresh start on every run
    let token = sim
        .token_files()
        .into_iter()
        .find(|t| t.uid.as_str() == demo::SPRINGFIELD_HIGH);
    a.add_token(AddToken::new(
        school.clone(),
        token.ok_or("no token")?.content,
    ))
    .await?;

    // Both instances try to sync the location at once: one works, the other is told
    // another instance holds it (or syncs after it).
    let none = ProgressReporter::none();
    let (ra, rb) = tokio::join!(
        a.sync(&school, SyncKind::Full, &none),
        b.sync(&school, SyncKind::Full, &none)
    );
    for (name, r) in [("a", ra), ("b", rb)] {
        match r {
            Ok(o) => println!("instance {name}: synced {} assignments", o.assignments),
            Err(e) => println!("instance {name}: {e}"),
        }
    }
    // Instance b reads what instance a wrote.
    let report = b.report(&school, ReportOptions::summary()).await?;
    let used: u64 = report.apps.iter().map(|a| a.used).sum();
    println!(
        "instance b sees {} apps and books, {used} licences in use",
        report.apps.len()
    );
    sim.shutdown().await;
    Ok(())
}
