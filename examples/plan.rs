//! A plan, printed: the example policies over the example directory and the demo
//! locations' licences. A dry run: nothing is sent to Apple or to devices.
//!
//! Runs against the simulator: `cargo run --example plan`.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use vppkit::core::{LocationId, MdmInfo};
use vppkit::engine::{AddToken, CommandSink, Engine, EngineConfig, ProgressReporter};
use vppkit::engine::{QueuedCommand, SinkError, SyncKind};
use vppkit::rules::{Directory, PlanContext, PolicySet};
use vppkit::store::SecretCipher;
use vppkit::store_sqlite::SqliteStore;
use vppkit_sim::{Preset, SimClock, Simulator};

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
        .clock(SimClock::real_time(Duration::from_millis(50)))
        .start()
        .await?;
    let cipher = SecretCipher::from_base64(SecretCipher::generate_key_base64().expose())?;
    let store = Arc::new(SqliteStore::in_memory(cipher).await?);
    let mdm = MdmInfo::new("plan-example", "vppkit example", "localhost")?;
    let engine = Engine::builder(store, EngineConfig::new(mdm))
        .sink(Arc::new(NoDevices))
        .apple_base_url(sim.base_url())
        .build()?;
    for t in sim.token_files() {
        let id = LocationId::new(t.file_name.trim_end_matches(".vpptoken"))?;
        engine
            .add_token(AddToken::new(id, t.content.clone()))
            .await?;
    }
    engine
        .sync_all(SyncKind::Full, &ProgressReporter::none())
        .await?;

    let policies = PolicySet::from_json(include_str!("data/policies.json"))?;
    let directory = Directory::from_json(include_str!("data/directory.json"))?;
    let plan = engine
        .plan(&directory, &policies, &PlanContext::new(Utc::now()))
        .await?;

    println!(
        "{} Apple requests, {} MDM commands, {} waitlisted, {} blocked, {} policies ignored\n",
        plan.apple_calls(),
        plan.commands.len(),
        plan.waitlisted.len(),
        plan.blocked.len(),
        plan.invalid_policies.len()
    );
    for line in plan.explain() {
        println!("- {line}");
    }
    sim.shutdown().await;
    Ok(())
}
