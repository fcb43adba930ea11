//! vppkit-engine drives Apple Apps and Books (VPP) locations for an MDM: it
//! onboards content tokens, mirrors Apple's licence state into a store through
//! the ledger, receives Apple's notifications, and executes the plans of
//! `vppkit-rules`, handing MDM commands to the embedder only once Apple has
//! confirmed the licences they need.
//!
//! # Embedding it in an MDM
//!
//! The MDM supplies a [`Store`](vppkit_store::Store) (SQLite for one server,
//! PostgreSQL for several), its `mdmInfo`, and a [`CommandSink`] that queues MDM
//! commands for its devices. It states the **desired state** (its directory
//! and policies, `vppkit-rules` formats) and the engine keeps the licences
//! there by itself: the [`Scheduler`] runs the reconcile loop (observe, plan,
//! apply) whenever something may have changed, and hands every MDM command to
//! the sink through a persisted outbox.
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use async_trait::async_trait;
//! use vppkit_core::{LocationId, MdmInfo, Secret};
//! use vppkit_engine::{
//!     AddToken, CommandResult, CommandSink, DesiredState, Engine, EngineConfig,
//!     ProgressReporter, QueuedCommand, ReportOptions, SinkError, WebhookConfig,
//! };
//! use vppkit_rules::{Directory, PolicySet};
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
//!             // Queue `c.to_xml()` for device `c.reference.device`, idempotent on
//!             // `c.reference.command_uuid` (a command may be handed out again
//!             // after a crash, always with the same UUID).
//!             let _ = (c.to_xml(), &c.reference);
//!         }
//!         Ok(()) // an error keeps the commands queued and retried
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
//! // 3. The loop: syncs, notifications' follow-ups, reconcile passes, the outbox.
//! let (scheduler, _handle) = engine.scheduler(ProgressReporter::none());
//! tokio::spawn(scheduler.run(std::future::pending()));
//!
//! // 4. Desired state in: stored as a revision, converged to by the loop.
//! let directory = Directory::from_json(&std::fs::read_to_string("directory.json")?)?;
//! let policies = PolicySet::from_json(&std::fs::read_to_string("policies.json")?)?;
//! let revision = engine.set_desired_state(DesiredState::new(directory, policies)).await?;
//! // (or wait for it now: one pass, with what it did)
//! let pass = engine.reconcile(&school).await?;
//! for held in &pass.held {
//!     // The blast-radius guard held releases back: confirm only after a look.
//!     println!("{}", held.explain());
//! }
//! # let _ = revision;
//!
//! // 5. The webhook handler: headers and body in, an HTTP status out.
//! # let (headers, body): (Vec<(String, String)>, Vec<u8>) = (Vec::new(), Vec::new());
//! let status = match engine.handle_notification(headers, &body).await {
//!     Ok(outcome) => outcome.http_status(),
//!     Err(refused) => refused.http_status(),
//! };
//! # let _ = status;
//!
//! // 6. Results back: what the device answered, by the command's UUID.
//! # let command_uuid = String::new();
//! engine.command_result(&command_uuid, CommandResult::Installed).await?;
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
//!   blindly. MDM commands go out only for confirmed licences, through a
//!   persisted outbox, at least once, with stable command UUIDs.
//! - **Converges by itself**: the desired state is stored as revisions; the
//!   reconcile loop re-plans on every trigger (purchases, refunds, accepted
//!   invitations, finished events, edits, requests) and on a slow tick.
//!   Notifications are hints confirmed against Apple. A plan that would release
//!   too much is held until confirmed (the blast-radius guard).
//! - **Every change explained**: ledger journal entries are stored with their
//!   effects in one transaction; replaying the store's journal rebuilds the
//!   ledger (this is how another instance, or a restarted one, catches up).
//! - **Tokens watched on every answer**: expiry (warning window), 9621, 9625,
//!   9622, another MDM's `mdmInfo`, a second token for the same `uId`. A token
//!   that is expired, revoked, invalid or claimed elsewhere stops writes; reads
//!   that still work go on. Every transition is journaled.
//! - **Several instances**: one instance works on a location at a time through a
//!   store lease, renewed during long work; an expired lease is taken over, and
//!   the dead holder's late writes are refused by the lease's fencing token.
//! - **No secret in logs**: tokens and notification secrets never reach a
//!   `tracing` span, a `Debug` output or an error.
//!
//! # Memory
//!
//! The engine keeps one ledger per location it works on (holdings as compact
//! indices), at most [`EngineConfig::ledger_cache_capacity`] of them (the least
//! recently used one is dropped and rebuilt from the store when needed); sync pages are streamed into the store one page at a time, with
//! their cursor in the same transaction.

mod apply;
mod book;
mod clock;
mod config;
mod desired;
mod engine;
mod error;
mod liveness;
mod marks;
mod notify;
mod onboard;
mod ops;
mod outbox;
mod progress;
mod reconcile;
mod recovery;
mod report;
mod requests;
mod scheduler;
mod sink;
mod sync;
mod token_state;
mod view;

pub use apply::{ApplyReport, LocationApplyReport};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{
    BlastRadius, ConfigError, EngineConfig, WebhookConfig, DEFAULT_MAX_NOTIFICATION_BODY,
};
pub use desired::{DesiredRevision, DesiredState};
#[doc(hidden)]
pub use engine::ApplyStep;
#[cfg(feature = "test-hooks")]
pub use engine::CrashHook;
pub use engine::{Engine, EngineBuilder};
pub use error::{EngineError, Result};
pub use liveness::{InstanceLiveness, LocalProcesses};
pub use notify::{NotificationError, NotificationOutcome};
pub use onboard::{AddToken, ClaimConsent, Onboarded};
pub use outbox::{CommandStatus, DispatchReport, OutboxEntry, OutboxSummary};
pub use progress::{ProgressReporter, SyncKind, SyncOutcome, SyncProgress, SyncStep};
pub use reconcile::{HeldReleases, ReconcileReport};
pub use recovery::RecoveryReport;
pub use report::{
    app_totals, AppReport, AppTotal, InstallReport, InstallStatus, LastSync, LocationReport,
    PlanItems, ReportOptions,
};
pub use requests::{RequestOutcome, RequestStatus, StoredRequest};
pub use scheduler::{Scheduler, SchedulerHandle};
pub use sink::{CommandRef, CommandResult, CommandSink, QueuedCommand, RejectionReason, SinkError};
pub use token_state::{
    observe as observe_token, TokenFacts, TokenObservation, TokenRejection, TokenTransition,
    TransitionCause,
};
