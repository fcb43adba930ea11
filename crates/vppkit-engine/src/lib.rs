//! vppkit-engine drives Apple Apps and Books (VPP) locations for an MDM: it
//! onboards content tokens, mirrors Apple's licence state into a store through
//! the ledger, receives Apple's notifications, and executes the plans of
//! `vppkit-rules`, handing MDM commands to the embedder only once Apple has
//! confirmed the licences they need.
//!
//! # Embedding it in an MDM
//!
//! The MDM supplies a [`Store`](vppkit_store::Store) (SQLite for one server,
//! PostgreSQL for several), its `mdmInfo`, a [`CommandSink`] that queues MDM
//! commands for its devices, and, for each planning round, its directory and
//! policies (`vppkit-rules` formats).
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use async_trait::async_trait;
//! use vppkit_core::{LocationId, MdmInfo, Secret};
//! use vppkit_engine::{
//!     AddToken, CommandResult, CommandSink, Engine, EngineConfig, ProgressReporter,
//!     QueuedCommand, ReportOptions, SinkError, WebhookConfig,
//! };
//! use vppkit_rules::{Directory, PlanContext, PolicySet};
//! use vppkit_store::{SecretCipher, Store};
//! use vppkit_store_sqlite::SqliteStore;
//!
//! /// The MDM's command queue.
//! struct Queue;
//!
//! #[async_trait]
//! impl CommandSink for Queue {
//!     async fn send(&self, commands: Vec<QueuedCommand>) -> Result<(), SinkError> {
//!         for c in commands {
//!             // Queue `c.to_xml()` for device `c.reference.device` (idempotent on
//!             // `c.reference.command_uuid`) and keep `c.reference` to report the result.
//!             let _ = (c.to_xml(), &c.reference);
//!         }
//!         Ok(())
//!     }
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // 1. The store, the configuration, the engine.
//! let cipher = SecretCipher::from_base64(&std::env::var("VPPKIT_SECRET_KEY")?)?;
//! let store: Arc<dyn Store> =
//!     Arc::new(SqliteStore::connect("sqlite://vpp.db?mode=rwc", cipher).await?);
//! let me = MdmInfo::new("0b5e8f0a-5d6c-4b1f-9a63-3f3f1f0a7c11", "ExampleMDM", "mdm.example.org")?;
//! let hook = WebhookConfig::new(
//!     "https://mdm.example.org/vpp/notify",
//!     Secret::new(std::env::var("VPP_NOTIFICATION_SECRET")?),
//! )?;
//! let engine = Engine::builder(store, EngineConfig::new(me).with_webhook(hook))
//!     .sink(Arc::new(Queue))
//!     .build()?;
//!
//! // 2. A content token becomes a location (validated, claimed, subscribed).
//! let school = LocationId::new("springfield-high")?;
//! let file = std::fs::read_to_string("springfield.vpptoken")?;
//! let onboarded = engine
//!     .add_token(AddToken::new(school.clone(), file).apple_account_name("vpp@springfield.example"))
//!     .await?;
//! println!("{} ({:?}): {}", onboarded.name, onboarded.account_type, onboarded.token_state);
//!
//! // 3. Background work: scheduled syncs, event polling, crash recovery.
//! let (scheduler, _handle) = engine.scheduler(ProgressReporter::none());
//! tokio::spawn(scheduler.run(std::future::pending()));
//!
//! // 4. Policies and directory in, licences and MDM commands out.
//! let directory = Directory::from_json(&std::fs::read_to_string("directory.json")?)?;
//! let policies = PolicySet::from_json(&std::fs::read_to_string("policies.json")?)?;
//! let context = PlanContext::new(chrono::Utc::now());
//! let (plan, applied) = engine.plan_and_apply(&directory, &policies, &context).await?;
//! println!("{} Apple calls, {:?}", plan.apple_calls(), applied);
//!
//! // 5. The webhook handler: headers and body in, an HTTP status out.
//! # let (headers, body): (Vec<(String, String)>, Vec<u8>) = (Vec::new(), Vec::new());
//! let status = match engine.handle_notification(headers, &body).await {
//!     Ok(outcome) => outcome.http_status(),
//!     Err(refused) => refused.http_status(),
//! };
//! # let _ = status;
//!
//! // 6. What became of each MDM command: the MDM kept the command's reference
//! //    (as JSON, say) and reports the device's answer with it.
//! # let kept_json = String::new();
//! let kept: vppkit_engine::CommandRef = serde_json::from_str(&kept_json)?;
//! engine.command_result(&kept, CommandResult::Installed).await?;
//!
//! // 7. The report: per location and per app.
//! let report = engine.report(&school, ReportOptions::summary()).await?;
//! for app in &report.apps {
//!     println!("{}: {} owned, {} used, {} free", app.asset, app.owned, app.used, app.free);
//! }
//! # Ok(()) }
//! ```
//!
//! # What the engine guarantees
//!
//! - **Never over-spent**: a licence is reserved in the ledger and atomically in
//!   the store (shared by every engine instance) before Apple is asked.
//! - **Crash-safe apply**: each operation is stored before its reservations,
//!   marked sent before the request, and Apple's `eventId` is recorded before
//!   anything else; [`Engine::recover`] finishes or rolls back whatever a crash
//!   left, and a lost answer is resolved from Apple's assignments, never resent
//!   blindly. MDM commands go out only for confirmed licences, with stable
//!   command UUIDs.
//! - **Every change explained**: ledger journal entries are stored with their
//!   effects in one transaction; replaying the store's journal rebuilds the
//!   ledger (this is how another instance, or a restarted one, catches up).
//! - **Tokens watched on every answer**: expiry (warning window), 9621, 9625,
//!   9622, another MDM's `mdmInfo`, a second token for the same `uId`. A token
//!   that is expired, revoked, invalid or claimed elsewhere stops writes; reads
//!   that still work go on. Every transition is journaled.
//! - **Several instances**: one instance works on a location at a time through a
//!   store lease; an expired lease is taken over.
//! - **No secret in logs**: tokens and notification secrets never reach a
//!   `tracing` span, a `Debug` output or an error.
//!
//! # Memory
//!
//! The engine keeps one ledger per location it works on (holdings as compact
//! indices); sync pages are streamed into the store one page at a time, with
//! their cursor in the same transaction.

mod apply;
mod book;
mod clock;
mod config;
mod engine;
mod error;
mod notify;
mod onboard;
mod ops;
mod progress;
mod recovery;
mod report;
mod scheduler;
mod sink;
mod sync;
mod token_state;
mod view;

pub use apply::{ApplyReport, LocationApplyReport};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{ConfigError, EngineConfig, WebhookConfig, DEFAULT_MAX_NOTIFICATION_BODY};
#[doc(hidden)]
pub use engine::{ApplyStep, CrashHook};
pub use engine::{Engine, EngineBuilder};
pub use error::{EngineError, Result};
pub use notify::{NotificationError, NotificationOutcome};
pub use onboard::{AddToken, ClaimConsent, Onboarded};
pub use progress::{ProgressReporter, SyncEndpoint, SyncKind, SyncOutcome, SyncProgress};
pub use recovery::RecoveryReport;
pub use report::{
    AppReport, InstallReport, InstallStatus, LastSync, LocationReport, PlanItems, ReportOptions,
};
pub use scheduler::{Scheduler, SchedulerHandle};
pub use sink::{CommandRef, CommandResult, CommandSink, QueuedCommand, RejectionReason, SinkError};
pub use token_state::{
    observe as observe_token, TokenFacts, TokenObservation, TokenRejection, TokenTransition,
    TransitionCause,
};
