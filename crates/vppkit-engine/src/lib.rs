//! vppkit-engine drives Apple Apps and Books (VPP) locations for an MDM:
//! onboarding content tokens, syncing Apple's licence state into a store,
//! receiving notifications, and executing the plans of `vppkit-rules`.

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
    AppReport, InstallReport, InstallStatus, LastSync, LocationReport, ReportOptions,
};
pub use scheduler::{Scheduler, SchedulerHandle};
pub use sink::{CommandRef, CommandResult, CommandSink, QueuedCommand, RejectionReason, SinkError};
pub use token_state::{
    observe as observe_token, TokenFacts, TokenObservation, TokenRejection, TokenTransition,
    TransitionCause,
};
