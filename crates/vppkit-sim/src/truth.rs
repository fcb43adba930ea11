//! What the simulator tells a test about itself: token files and ground truth.

use chrono::{DateTime, Utc};
use vppkit_core::{AccountType, AssetKey, EventId, MdmInfo, NotificationId, Secret, Uid};

/// A `.vpptoken` file the simulator accepts.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TokenFile {
    /// The location's `locationName`.
    pub location_name: String,
    /// The organisation (`orgName` inside the file).
    pub org_name: String,
    /// The location's `uId`.
    pub uid: Uid,
    /// A file name to save it under (`<slug>.vpptoken`).
    pub file_name: String,
    /// The file content: the bearer credential.
    pub content: Secret,
    /// `expDate` inside the file.
    pub expires_at: DateTime<Utc>,
}

/// A summary of one location.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LocationSummary {
    /// `uId`.
    pub uid: Uid,
    /// `locationName`.
    pub name: String,
    /// Organisation name.
    pub org_name: String,
    /// Business or education.
    pub account: AccountType,
    /// `countryISO2ACode`.
    pub country: String,
    /// The `mdmInfo` on the token, if any.
    pub mdm_info: Option<MdmInfo>,
    /// The configured notification URL.
    pub notification_url: Option<String>,
    /// Subscribed notification types.
    pub subscribed_notification_types: Vec<String>,
    /// Assets owned (not removed).
    pub assets: usize,
    /// Assignments.
    pub assignments: usize,
    /// User records (all statuses).
    pub users: usize,
    /// Events still `PENDING`.
    pub pending_events: usize,
}

/// What kind of work an event does (`eventType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventType {
    /// `assets/associate`.
    Associate,
    /// `assets/disassociate`.
    Disassociate,
    /// `assets/revoke`.
    Revoke,
    /// `users/create`.
    Create,
    /// `users/update`.
    Update,
    /// `users/retire`.
    Retire,
}

impl EventType {
    /// Apple's name (`ASSOCIATE`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Associate => "ASSOCIATE",
            EventType::Disassociate => "DISASSOCIATE",
            EventType::Revoke => "REVOKE",
            EventType::Create => "CREATE",
            EventType::Update => "UPDATE",
            EventType::Retire => "RETIRE",
        }
    }

    /// Whether it manages assets (as opposed to users).
    pub fn is_asset_event(self) -> bool {
        matches!(
            self,
            EventType::Associate | EventType::Disassociate | EventType::Revoke
        )
    }
}

/// Where an event stands (`eventStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventStatusKind {
    /// Accepted, not done.
    Pending,
    /// Every task succeeded.
    Complete,
    /// At least one task failed.
    Failed,
}

impl EventStatusKind {
    /// Apple's name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatusKind::Pending => "PENDING",
            EventStatusKind::Complete => "COMPLETE",
            EventStatusKind::Failed => "FAILED",
        }
    }
}

/// One group of failed tasks of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventFailure {
    /// Apple's `errorNumber` (9709, 9609, 9716 ...).
    pub error_number: u32,
    /// The assets concerned.
    pub assets: Vec<AssetKey>,
    /// The users concerned.
    pub client_user_ids: Vec<String>,
    /// The devices concerned.
    pub serial_numbers: Vec<String>,
}

/// An event as the simulator knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventRecord {
    /// `eventId`.
    pub event_id: EventId,
    /// `eventType`.
    pub kind: EventType,
    /// `eventStatus`.
    pub status: EventStatusKind,
    /// `numRequested`.
    pub num_requested: u32,
    /// `numCompleted`.
    pub num_completed: u32,
    /// `failures`.
    pub failures: Vec<EventFailure>,
}

/// What happened to one notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeliveryOutcome {
    /// Waiting in the delivery queue.
    Queued,
    /// Answered 2xx; `copies` is 2 when the duplicate switch was on.
    Delivered {
        /// HTTP attempts made (1 = first try).
        attempts: u32,
        /// Copies delivered.
        copies: u32,
    },
    /// Every attempt failed.
    Failed {
        /// HTTP attempts made.
        attempts: u32,
    },
    /// Not sent: the drop switch was on.
    Dropped,
}

/// A notification the simulator produced for a subscribed location.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NotificationRecord {
    /// The location.
    pub uid: Uid,
    /// `notificationId`.
    pub notification_id: NotificationId,
    /// `notificationType`.
    pub notification_type: String,
    /// The whole JSON body sent.
    pub body: serde_json::Value,
    /// Delivery outcome so far.
    pub outcome: DeliveryOutcome,
}
