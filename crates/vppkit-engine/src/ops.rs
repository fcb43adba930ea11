//! Apple operations in flight: what is stored with each, and how an event's
//! status maps onto the ledger.

use serde::{Deserialize, Serialize};
use vppkit_client::{
    EventStatus as AppleEventStatus, EventStatusKind as AppleStatusKind, ManageAssetsRequest,
    ManageUsersRequest, RevokeAssetsRequest,
};
use vppkit_core::{AssetKey, EventId, Holder};
use vppkit_ledger::{EventFailure, EventKind, EventOutcome, EventStatusKind};
use vppkit_store::{Operation, OperationKind};

use crate::error::{EngineError, Result};
use crate::sink::QueuedCommand;

/// The Apple call of an operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub(crate) enum OpCall {
    Associate { request: ManageAssetsRequest },
    Disassociate { request: ManageAssetsRequest },
    Revoke { request: RevokeAssetsRequest },
    CreateUsers { request: ManageUsersRequest },
    RetireUsers { request: ManageUsersRequest },
}

impl OpCall {
    pub(crate) fn kind(&self) -> OperationKind {
        match self {
            OpCall::Associate { .. } => OperationKind::Associate,
            OpCall::Disassociate { .. } => OperationKind::Disassociate,
            OpCall::Revoke { .. } => OperationKind::Revoke,
            OpCall::CreateUsers { .. } => OperationKind::CreateUsers,
            OpCall::RetireUsers { .. } => OperationKind::RetireUsers,
        }
    }

    /// The ledger's kind of licence event, for licence operations.
    pub(crate) fn event_kind(&self) -> Option<EventKind> {
        match self {
            OpCall::Associate { .. } => Some(EventKind::Associate),
            OpCall::Disassociate { .. } => Some(EventKind::Disassociate),
            OpCall::Revoke { .. } => Some(EventKind::Revoke),
            _ => None,
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            OpCall::Associate { .. } => "POST assets/associate",
            OpCall::Disassociate { .. } => "POST assets/disassociate",
            OpCall::Revoke { .. } => "POST assets/revoke",
            OpCall::CreateUsers { .. } => "POST users/create",
            OpCall::RetireUsers { .. } => "POST users/retire",
        }
    }
}

/// What the engine stores with an operation (the store's `request` field).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct OpRequest {
    pub(crate) call: OpCall,
    /// The licences the operation moves: reserved for an associate, releasing
    /// for a disassociate or revoke.
    #[serde(default)]
    pub(crate) items: Vec<(AssetKey, Holder)>,
    /// MDM commands to hand out once the operation succeeded for their licence.
    #[serde(default)]
    pub(crate) commands: Vec<QueuedCommand>,
}

impl OpRequest {
    pub(crate) fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    pub(crate) fn from_op(op: &Operation) -> Result<Self> {
        serde_json::from_value(op.request.clone())
            .map_err(|e| EngineError::Corrupt(format!("operation {}: {e}", op.id)))
    }
}

/// The ledger's view of an Apple event status.
pub(crate) fn event_outcome(
    event_id: &EventId,
    kind: EventKind,
    status: &AppleEventStatus,
) -> EventOutcome {
    let st = match status.event_status {
        AppleStatusKind::Complete => EventStatusKind::Complete,
        AppleStatusKind::Failed => EventStatusKind::Failed,
        _ => EventStatusKind::Pending,
    };
    let failures = status
        .failures
        .iter()
        .map(|f| {
            let (holders, assets) = match &f.info {
                Some(info) => {
                    let mut holders: Vec<Holder> = info
                        .serial_numbers
                        .iter()
                        .cloned()
                        .map(Holder::Device)
                        .collect();
                    holders.extend(info.client_user_ids.iter().cloned().map(Holder::User));
                    (holders, info.assets.clone())
                }
                None => (Vec::new(), Vec::new()),
            };
            EventFailure::new(
                u32::try_from(f.number.number()).unwrap_or(0),
                holders,
                assets,
            )
        })
        .collect();
    EventOutcome::new(event_id.clone(), kind, st, failures)
}
