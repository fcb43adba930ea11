//! In-flight Apple operations (associate, disassociate, revoke, user writes).

use chrono::{DateTime, Utc};
use vppkit_core::{EventId, LocationId};

use crate::text_enum::text_enum;

text_enum!(
    /// What an operation asks Apple to do.
    OperationKind, "operation kind", {
        /// `POST assets/associate`.
        Associate = "associate",
        /// `POST assets/disassociate`.
        Disassociate = "disassociate",
        /// `POST assets/revoke`.
        Revoke = "revoke",
        /// `POST users/create`.
        CreateUsers = "create_users",
        /// `POST users/update`.
        UpdateUsers = "update_users",
        /// `POST users/retire`.
        RetireUsers = "retire_users",
        /// `POST client/config` (claim, notification settings).
        UpdateClientConfig = "update_client_config",
    }
);

text_enum!(
    /// Where an operation stands.
    OperationStatus, "operation status", {
        /// Written locally (licences reserved), not yet sent.
        Prepared = "prepared",
        /// The request is being sent.
        Sent = "sent",
        /// Apple accepted it and gave an `eventId`; waiting for the outcome.
        Pending = "pending",
        /// Apple reports success.
        Complete = "complete",
        /// Apple reports failure.
        Failed = "failed",
        /// The request may or may not have reached Apple (timeout); check before resending.
        OutcomeUnknown = "outcome_unknown",
        /// Local effects were undone.
        RolledBack = "rolled_back",
    }
);

impl OperationStatus {
    /// Complete, failed or rolled back: nothing more will happen.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            OperationStatus::Complete | OperationStatus::Failed | OperationStatus::RolledBack
        )
    }
}

/// An Apple operation as stored.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Operation {
    /// A unique id (a UUID string chosen by the caller).
    pub id: String,
    /// The location.
    pub location: LocationId,
    /// What it does.
    pub kind: OperationKind,
    /// The request body (no secrets).
    pub request: serde_json::Value,
    /// Apple's `eventId`, once known.
    pub event_id: Option<EventId>,
    /// Where it stands.
    pub status: OperationStatus,
    /// The result or error details, once known.
    pub result: Option<serde_json::Value>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When to stop waiting and check (status poll, then sync).
    pub deadline: Option<DateTime<Utc>>,
    /// When it was last written.
    pub updated_at: DateTime<Utc>,
}

impl Operation {
    /// A new prepared operation.
    pub fn new(
        id: impl Into<String>,
        location: LocationId,
        kind: OperationKind,
        request: serde_json::Value,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id: id.into(),
            location,
            kind,
            request,
            event_id: None,
            status: OperationStatus::Prepared,
            result: None,
            created_at: now,
            deadline: None,
            updated_at: now,
        }
    }

    /// Sets the deadline.
    pub fn with_deadline(mut self, deadline: DateTime<Utc>) -> Self {
        self.deadline = Some(deadline);
        self
    }
}

/// A change of an operation's status (and optionally event id, result, deadline).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct OperationUpdate {
    /// The new status.
    pub status: OperationStatus,
    /// Only apply if the stored status is this one (else a version mismatch).
    pub expected_status: Option<OperationStatus>,
    /// Sets the event id (kept when `None`).
    pub event_id: Option<EventId>,
    /// Sets the result (kept when `None`).
    pub result: Option<serde_json::Value>,
    /// Sets the deadline (kept when `None`).
    pub deadline: Option<DateTime<Utc>>,
    /// When.
    pub at: DateTime<Utc>,
    /// The writer's lease: the update is refused
    /// ([`StoreError::Fenced`](crate::StoreError::Fenced)), changing nothing, when
    /// it is no longer held.
    pub fence: Option<crate::Fence>,
}

impl OperationUpdate {
    /// Sets the status, unconditionally.
    pub fn new(status: OperationStatus, at: DateTime<Utc>) -> Self {
        Self {
            status,
            expected_status: None,
            event_id: None,
            result: None,
            deadline: None,
            at,
            fence: None,
        }
    }

    /// Only apply if the stored status is `expected`.
    pub fn expecting(mut self, expected: OperationStatus) -> Self {
        self.expected_status = Some(expected);
        self
    }

    /// Records Apple's event id.
    pub fn with_event_id(mut self, event_id: EventId) -> Self {
        self.event_id = Some(event_id);
        self
    }

    /// Records a result.
    pub fn with_result(mut self, result: serde_json::Value) -> Self {
        self.result = Some(result);
        self
    }

    /// Moves the deadline.
    pub fn with_deadline(mut self, deadline: DateTime<Utc>) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Refuses the update unless `fence` still holds its lease.
    pub fn with_fence(mut self, fence: Option<crate::Fence>) -> Self {
        self.fence = fence;
        self
    }

    /// Applies the update to an operation (after the expected-status check).
    pub fn apply_to(&self, op: &mut Operation) {
        op.status = self.status;
        if let Some(e) = &self.event_id {
            op.event_id = Some(e.clone());
        }
        if let Some(r) = &self.result {
            op.result = Some(r.clone());
        }
        if let Some(d) = self.deadline {
            op.deadline = Some(d);
        }
        op.updated_at = self.at;
    }
}
