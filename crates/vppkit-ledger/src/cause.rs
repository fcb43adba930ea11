//! Why a journal entry happened.

use std::fmt;

use serde::{Deserialize, Serialize};
use vppkit_core::{EventId, NotificationId};

/// The cause of a change: every journal entry carries one (invariant 3).
///
/// The store keeps [`Cause::kind`] and [`Cause::reference`] as columns, so an operator can ask
/// "what did policy P change" or "what did notification N do" without reading the JSON.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Cause {
    /// An assignment policy of the MDM asked for it.
    Policy {
        /// The policy's id in the MDM.
        policy_id: String,
        /// The revision of the engine's desired state the plan came from, when
        /// the plan was made from a stored desired state.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        desired_revision: Option<u64>,
    },
    /// The outcome of an asynchronous Apple operation (event status polling).
    Event {
        /// Apple's `eventId`.
        event_id: EventId,
    },
    /// A webhook notification from Apple.
    Notification {
        /// The notification's de-duplication key.
        notification_id: NotificationId,
        /// The event it reports on, for `ASSET_MANAGEMENT` and `USER_MANAGEMENT`.
        event_id: Option<EventId>,
    },
    /// A sync with Apple (full or incremental).
    Sync {
        /// Apple's `versionId` of the data read, when there is one.
        version_id: Option<String>,
    },
    /// A person acting through the MDM.
    Operator {
        /// Who (the MDM's id or name of the operator).
        operator: String,
        /// Why, in their words.
        note: Option<String>,
    },
}

impl Cause {
    /// A policy cause.
    pub fn policy(policy_id: impl Into<String>) -> Self {
        Cause::Policy {
            policy_id: policy_id.into(),
            desired_revision: None,
        }
    }

    /// A policy cause from a plan of the engine's desired state at `revision`.
    pub fn policy_at(policy_id: impl Into<String>, revision: Option<u64>) -> Self {
        Cause::Policy {
            policy_id: policy_id.into(),
            desired_revision: revision,
        }
    }

    /// An event-outcome cause.
    pub fn event(event_id: EventId) -> Self {
        Cause::Event { event_id }
    }

    /// A notification cause.
    pub fn notification(notification_id: NotificationId, event_id: Option<EventId>) -> Self {
        Cause::Notification {
            notification_id,
            event_id,
        }
    }

    /// A sync cause.
    pub fn sync(version_id: Option<String>) -> Self {
        Cause::Sync { version_id }
    }

    /// An operator cause.
    pub fn operator(operator: impl Into<String>, note: Option<String>) -> Self {
        Cause::Operator {
            operator: operator.into(),
            note,
        }
    }

    /// The stable name of the kind: `policy`, `event`, `notification`, `sync` or `operator`.
    pub fn kind(&self) -> &'static str {
        match self {
            Cause::Policy { .. } => "policy",
            Cause::Event { .. } => "event",
            Cause::Notification { .. } => "notification",
            Cause::Sync { .. } => "sync",
            Cause::Operator { .. } => "operator",
        }
    }

    /// The id the cause points at (policy id, event id, notification id, version id or operator),
    /// empty for a sync without a version.
    pub fn reference(&self) -> &str {
        match self {
            Cause::Policy { policy_id, .. } => policy_id,
            Cause::Event { event_id } => event_id.as_str(),
            Cause::Notification {
                notification_id, ..
            } => notification_id.as_str(),
            Cause::Sync { version_id } => version_id.as_deref().unwrap_or(""),
            Cause::Operator { operator, .. } => operator,
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind(), self.reference())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_references() {
        let id = NotificationId::new("n-1").unwrap();
        let c = Cause::notification(id, Some(EventId::new("e-1").unwrap()));
        assert_eq!((c.kind(), c.reference()), ("notification", "n-1"));
        assert_eq!(Cause::policy("p").to_string(), "policy:p");
        assert_eq!(Cause::sync(Some("v9".to_owned())).to_string(), "sync:v9");
        let json = serde_json::to_value(Cause::operator("ana", None)).unwrap();
        assert_eq!(json["kind"], "operator");
        assert_eq!(json["operator"], "ana");
    }
}
