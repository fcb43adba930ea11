//! Embedding vppkit in an MDM server: the snippet of the README (`embed` below), run here
//! against the simulator so that `cargo run --example embed` works on any machine. The MDM
//! states its desired state (directory and policies); the engine's reconcile loop keeps the
//! licences there and hands MDM commands to the sink (through its persisted outbox); the MDM
//! reports what became of each command by its UUID.

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use std::sync::Mutex;

use vppkit::core::{LocationId, MdmInfo};
use vppkit::engine::{
    AddToken, CommandResult, CommandSink, DesiredState, Engine, EngineConfig, ProgressReporter,
    QueuedCommand, SinkError, SyncKind,
};
use vppkit::rules::{Directory, PolicySet};
use vppkit::store::SecretCipher;
use vppkit::store_sqlite::SqliteStore;

/// Your MDM's command queue: vppkit hands it InstallApplication, InstallMedia, ... at
/// least once, each with a stable `CommandUUID` to deduplicate on. An error keeps them in
/// vppkit's outbox, handed out again later.
#[derive(Default)]
struct MyMdmQueue {
    queued: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl CommandSink for MyMdmQueue {
    async fn send(&self, commands: Vec<QueuedCommand>) -> Result<(), SinkError> {
        let mut queued = self.queued.lock().unwrap_or_else(|e| e.into_inner());
        for c in commands {
            println!(
                "queue {} for {} on the {} channel ({})",
                c.reference.request_type, c.reference.device, c.channel, c.reference.command_uuid
            );
            queued.push(c.reference.command_uuid.clone());
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
    let queue = Arc::new(MyMdmQueue::default());
    let engine = Engine::builder(store, config)
        .sink(queue.clone())
        .apple_base_url(apple) // leave out for Apple's production API
        .build()?;

    let school = LocationId::new("springfield-high")?;
    let add = AddToken::new(school.clone(), token);
    engine.add_token(add).await?;
    let (kind, progress) = (SyncKind::Incremental, ProgressReporter::none());
    engine.sync(&school, kind, &progress).await?;

    // Desired state in: stored as a revision; the loop converges to it.
    let policies = PolicySet::from_json(include_str!("data/policies.json"))?;
    let directory = Directory::from_json(include_str!("data/directory.json"))?;
    let revision = engine
        .set_desired_state(DesiredState::new(directory, policies))
        .await?;
    // `serve`-style: the scheduler reconciles by itself on every trigger...
    let (scheduler, _handle) = engine.scheduler(ProgressReporter::none());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(scheduler.run(async move {
        let _ = stopped.await;
    }));
    // ...and one pass can be run (and waited for) on demand.
    let pass = engine.reconcile(&school).await?;
    println!(
        "revision {revision}: {} Apple calls, {} held back",
        pass.plan.apple_calls(),
        pass.held.len()
    );
    pass.plan
        .explain()
        .iter()
        .take(5)
        .for_each(|l| println!("{l}"));

    // Commands out, results back: the device installed the first one.
    let first = queue
        .queued
        .lock()
        .map(|q| q.first().cloned())
        .ok()
        .flatten();
    if let Some(uuid) = first {
        engine
            .command_result(&uuid, CommandResult::Installed)
            .await?;
        let stored = engine.command(&uuid).await?.ok_or("command not stored")?;
        println!("{uuid}: {}", stored.status);
    }
    let _ = stop.send(());
    running.await??;
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
