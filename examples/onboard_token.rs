//! Onboarding content tokens: validate with Apple, record the location, claim the token
//! for this manager, and take over a token another MDM holds only with consent.
//!
//! Runs against the simulator: `cargo run --example onboard_token`.

use std::sync::Arc;
use std::time::Duration;

use vppkit::core::{LocationId, MdmInfo};
use vppkit::engine::{AddToken, ClaimConsent, CommandSink, Engine, EngineConfig};
use vppkit::engine::{QueuedCommand, SinkError};
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
        .clock(SimClock::real_time(Duration::from_millis(50)))
        .start()
        .await?;
    let cipher = SecretCipher::from_base64(SecretCipher::generate_key_base64().expose())?;
    let store = Arc::new(SqliteStore::in_memory(cipher).await?);
    let mdm = MdmInfo::new("onboarding-example", "vppkit example", "localhost")?;
    let engine = Engine::builder(store, EngineConfig::new(mdm))
        .sink(Arc::new(NoDevices))
        .apple_base_url(sim.base_url())
        .build()?;

    for t in sim.token_files() {
        // The whole .vpptoken file content is the credential: keep it in a `Secret`.
        let id = LocationId::new(t.file_name.trim_end_matches(".vpptoken"))?;
        let added = engine
            .add_token(AddToken::new(id, t.content.clone()))
            .await?;
        println!(
            "{:<28} uId {:<18} {:<9} {:<3} token {:<18} claimed: {:<5} other MDM: {}",
            added.name,
            added.uid.map(|u| u.to_string()).unwrap_or_default(),
            added
                .account_type
                .map_or_else(|| "unknown".to_owned(), |a| a.to_string()),
            added.country.unwrap_or_default(),
            added.token_state.to_string(),
            added.claimed,
            added
                .other_mdm
                .map(|m| m.name)
                .unwrap_or_else(|| "-".into()),
        );
    }

    // Acme Berlin is held by another MDM: the engine kept it read-only. Taking it needs
    // the operator's explicit consent (the other MDM then loses it).
    let berlin = sim
        .token_files()
        .into_iter()
        .find(|t| t.uid.as_str() == demo::ACME_BERLIN)
        .ok_or("no Berlin token")?;
    let id = LocationId::new(berlin.file_name.trim_end_matches(".vpptoken"))?;
    let refused = engine.claim(&id, ClaimConsent::OnlyIfUnclaimed).await;
    println!(
        "\nclaim without consent: {}",
        refused.map_or_else(|e| e.to_string(), |s| s.to_string())
    );
    let state = engine.claim(&id, ClaimConsent::TakeOver).await?;
    println!("claim with consent:    token {state}");
    sim.shutdown().await;
    Ok(())
}
