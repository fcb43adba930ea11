//! The README's example, compiled (not run: it reads a content token and calls Apple; the inputs are the caller's); the workspace's
//! `tests/readme.rs` checks that the README shows it verbatim (the body of `readme_example`,
//! kept at column 0).

use std::sync::Arc;

use async_trait::async_trait;
use vppkit_core::{LocationId, MdmInfo};
use vppkit_engine::{
    AddToken, CommandSink, DesiredState, Engine, EngineConfig, ProgressReporter, QueuedCommand,
    SinkError,
};
use vppkit_rules::{Directory, PolicySet};
use vppkit_store::{SecretCipher, Store};
use vppkit_store_sqlite::SqliteStore;

/// The MDM's command queue, as the README names it.
struct MyMdmQueue;

#[async_trait]
impl CommandSink for MyMdmQueue {
    async fn send(&self, commands: Vec<QueuedCommand>) -> Result<(), SinkError> {
        for c in commands {
            println!("{} for {}", c.command.request_type(), c.reference.device);
        }
        Ok(())
    }
}

#[rustfmt::skip]
#[allow(dead_code)] // compiled, never called
async fn readme_example(
    cipher: SecretCipher,
    directory: Directory,
    policies: PolicySet,
) -> Result<(), Box<dyn std::error::Error>> {
let store: Arc<dyn Store> = Arc::new(SqliteStore::connect("sqlite://vpp.db?mode=rwc", cipher).await?);
let me = MdmInfo::new("0b5e8f0a-5d6c-4b1f-9a63-3f3f1f0a7c11", "ExampleMDM", "mdm.example.org")?;
let engine = Engine::builder(store, EngineConfig::new(me))
    .sink(Arc::new(MyMdmQueue)) // your MDM's command queue (CommandSink)
    .build()?;

let school = LocationId::new("springfield-high")?;
engine.add_token(AddToken::new(school.clone(), std::fs::read_to_string("school.vpptoken")?)).await?;
let (scheduler, _handle) = engine.scheduler(ProgressReporter::none());
tokio::spawn(scheduler.run(std::future::pending())); // syncs, event polling, recovery

// Your directory and policies, stored as a revision; the loop converges to it.
let revision = engine.set_desired_state(DesiredState::new(directory, policies)).await?;
let pass = engine.reconcile(&school).await?; // one pass now; the scheduler keeps it so
println!("revision {revision}: {} Apple calls", pass.plan.apple_calls());
Ok(())
}
