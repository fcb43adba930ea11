//! Embedding vppkit in an MDM server: the snippet of the README (`embed` below), run here
//! against the simulator so that `cargo run --example embed` works on any machine.

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use vppkit::core::{LocationId, MdmInfo};
use vppkit::engine::{
    AddToken, CommandSink, Engine, EngineConfig, ProgressReporter, QueuedCommand, SinkError,
    SyncKind,
};
use vppkit::rules::{Directory, PlanContext, PolicySet};
use vppkit::store::SecretCipher;
use vppkit::store_sqlite::SqliteStore;

/// Your MDM's command queue: vppkit hands it InstallApplication, InstallMedia, ...
struct MyMdmQueue;

#[async_trait::async_trait]
impl CommandSink for MyMdmQueue {
    async fn send(&self, commands: Vec<QueuedCommand>) -> Result<(), SinkError> {
        for c in commands {
            println!(
                "queue {} for {}",
                c.reference.request_type, c.reference.device
            );
        }
        Ok(())
    }
}

// --8<-- [start:embed]
type Res<T = ()> = Result<T, Box<dyn Error>>;

async fn embed(apple: &str, poll: Duration, token: &str, db: &str, key: &str) -> Res {
    let store = Arc::new(SqliteStore::connect(db, SecretCipher::from_base64(key)?).await?);
    let mdm = MdmInfo::new("my-mdm-0001", "My MDM", "mdm.example.com")?;
    let config = EngineConfig::new(mdm).with_event_polling(poll, Duration::from_secs(600));
    let engine = Engine::builder(store, config)
        .sink(Arc::new(MyMdmQueue))
        .apple_base_url(apple) // leave out for Apple's production API
        .build()?;

    let school = LocationId::new("springfield-high")?;
    let add = AddToken::new(school.clone(), token);
    engine.add_token(add).await?;
    let (kind, progress) = (SyncKind::Incremental, ProgressReporter::none());
    engine.sync(&school, kind, &progress).await?;

    let policies = PolicySet::from_json(include_str!("data/policies.json"))?;
    let directory = Directory::from_json(include_str!("data/directory.json"))?;
    let now = PlanContext::new(Utc::now());
    let (plan, _) = engine.plan_and_apply(&directory, &policies, &now).await?;
    plan.explain().iter().for_each(|line| println!("{line}"));
    Ok(())
}
// --8<-- [end:embed]

#[tokio::main]
async fn main() -> Res {
    let sim = vppkit_sim::Simulator::builder()
        .preset(vppkit_sim::Preset::Demo)
        .clock(vppkit_sim::SimClock::real_time(Duration::from_millis(50)))
        .start()
        .await?;
    let token = sim
        .token_files()
        .into_iter()
        .find(|t| t.uid.as_str() == vppkit_sim::demo::SPRINGFIELD_HIGH)
        .ok_or("no demo token")?;
    let db = std::env::temp_dir().join("vppkit-embed.db");
    let _ = std::fs::remove_file(&db);
    let key = SecretCipher::generate_key_base64();
    let db_url = format!("sqlite://{}?mode=rwc", db.display());
    let poll = Duration::from_millis(100); // Apple: 30 s at least
    embed(
        &sim.base_url(),
        poll,
        token.content.expose(),
        &db_url,
        key.expose(),
    )
    .await?;
    sim.shutdown().await;
    Ok(())
}
