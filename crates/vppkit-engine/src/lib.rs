//! vppkit-engine drives Apple Apps and Books (VPP) locations for an MDM:
//! onboarding content tokens, syncing Apple's licence state into a store,
//! receiving notifications, and executing the plans of `vppkit-rules`.

mod clock;
mod config;
mod progress;
mod report;
mod sink;
mod token_state;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{ConfigError, EngineConfig, WebhookConfig, DEFAULT_MAX_NOTIFICATION_BODY};
pub use progress::{ProgressReporter, SyncEndpoint, SyncKind, SyncOutcome, SyncProgress};
pub use report::{
    AppReport, InstallReport, InstallStatus, LastSync, LocationReport, ReportOptions,
};
pub use sink::{CommandRef, CommandResult, CommandSink, QueuedCommand, RejectionReason, SinkError};
pub use token_state::{
    observe as observe_token, TokenFacts, TokenObservation, TokenRejection, TokenTransition,
    TransitionCause,
};
