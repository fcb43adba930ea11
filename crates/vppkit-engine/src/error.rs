//! The engine's error type.

use vppkit_core::{LocationId, TokenState, Uid};

use crate::config::ConfigError;
use crate::sink::SinkError;

/// Everything that can go wrong in the engine. No variant carries a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The configuration cannot work.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The token file is malformed.
    #[error("the content token is not valid: {0}")]
    Token(#[from] vppkit_core::TokenError),
    /// A value given to the engine is not valid.
    #[error(transparent)]
    Value(#[from] vppkit_core::ValueError),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] vppkit_store::StoreError),
    /// Apple answered with an error or could not be reached.
    #[error("Apple: {0}")]
    Apple(#[from] vppkit_client::Error),
    /// The planner refused its input.
    #[error("plan: {0}")]
    Plan(#[from] vppkit_rules::PlanError),
    /// The ledger refused an operation.
    #[error("ledger: {0}")]
    Ledger(#[from] vppkit_ledger::Rejection),
    /// The MDM command sink failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// No location with this id.
    #[error("location {0} is not known")]
    UnknownLocation(LocationId),
    /// The location id is already used.
    #[error("location {0} already exists")]
    LocationExists(LocationId),
    /// The token belongs to the same organisational unit as another location.
    #[error("the token's organisational unit {uid} is already managed as location {existing}")]
    DuplicateLocation {
        /// Apple's `uId`.
        uid: Uid,
        /// The location that already has it.
        existing: LocationId,
    },
    /// Another MDM holds the token and the operator did not consent to take it.
    #[error(
        "the token is in use by another MDM ({other_mdm}); claim it only with the operator's consent"
    )]
    ClaimedElsewhere {
        /// The other MDM's name (`mdmInfo.name`).
        other_mdm: String,
    },
    /// A renewal token is for another organisational unit.
    #[error("the new token is for organisational unit {found}, not {expected}")]
    WrongLocation {
        /// The location's `uId`.
        expected: Uid,
        /// The new token's `uId`.
        found: Uid,
    },
    /// The token's state stops writes to Apple for this location.
    #[error("writes to location {location} are stopped: its token is {state}")]
    WritesStopped {
        /// The location.
        location: LocationId,
        /// The token's state.
        state: TokenState,
    },
    /// The token's state stops reads from Apple for this location.
    #[error("location {location} cannot be read from Apple: its token is {state}")]
    ReadsStopped {
        /// The location.
        location: LocationId,
        /// The token's state.
        state: TokenState,
    },
    /// Another engine instance works on the location right now.
    #[error("location {0} is being worked on by another engine instance")]
    Busy(LocationId),
    /// Stored data cannot be read back.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A test's crash hook stopped an apply at this step (feature `test-hooks`).
    #[cfg(feature = "test-hooks")]
    #[error("crash injected at {0:?}")]
    Crashed(crate::engine::ApplyStep),
    /// No desired state is stored yet (or only part of one).
    #[error("no desired state: {0}")]
    NoDesiredState(String),
    /// A write kept meeting concurrent writes and gave up.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Another instance took over the location's lease while this one worked;
    /// its later writes were refused by the lease's fencing token.
    #[error("location {0} was taken over by another instance")]
    LeaseLost(LocationId),
    /// No stored MDM command has this UUID (never queued, or forgotten after
    /// the retention period).
    #[error("no MDM command {0} is known")]
    UnknownCommand(String),
    /// Apple's answer does not fit what was asked.
    #[error("unexpected answer from Apple: {0}")]
    Unexpected(String),
}

impl EngineError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            EngineError::Store(e) => e.kind().is_transient(),
            EngineError::Apple(e) => e.is_retryable() || e.is_outcome_unknown(),
            EngineError::Busy(_)
            | EngineError::Sink(_)
            | EngineError::Conflict(_)
            | EngineError::LeaseLost(_) => true,
            _ => false,
        }
    }
}

/// The engine's result type.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
