//! Webhook notifications: typed payloads and the bearer check.

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use vppkit_core::{AdamId, AssetKey, EventId, NotificationId, PricingParam, Secret, Uid};

use crate::events::{open_enum, EventType};
use crate::records::Records;
use crate::{ApiError, Assignment, Error, NotificationType, ResponseUser, SkippedRecord};

open_enum! {
    /// `result` of a management notification.
    NotificationResult {
        /// Every task succeeded.
        Success = "SUCCESS",
        /// The event failed (see `error`).
        Failure = "FAILURE",
    }
}

/// `ASSET_COUNT`: licences bought (`count_delta` > 0), refunded or transferred (< 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AssetCountNotification {
    /// Product id.
    pub adam_id: AdamId,
    /// Store quality.
    #[serde(default)]
    pub pricing_param: PricingParam,
    /// Change in the number of licences.
    pub count_delta: i64,
}

impl AssetCountNotification {
    /// `(adamId, pricingParam)`.
    pub fn asset_key(&self) -> AssetKey {
        AssetKey::new(self.adam_id.clone(), self.pricing_param)
    }
}

/// `ASSET_MANAGEMENT`: the outcome of an associate, disassociate or revoke (at most
/// 100 assignments per notification).
///
/// Each assignment is read on its own: one Apple sends that cannot be read (Apple
/// documents no failure example of a revoke, whose items may carry no asset) is left out
/// and listed in [`skipped`](Self::skipped), and the notification still parses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", from = "RawAssetManagement")]
#[non_exhaustive]
pub struct AssetManagementNotification {
    /// ASSOCIATE, DISASSOCIATE or REVOKE.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// SUCCESS or FAILURE.
    pub result: NotificationResult,
    /// The event (absent for changes the MDM did not start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<EventId>,
    /// The assignments concerned.
    #[serde(default)]
    pub assignments: Vec<Assignment>,
    /// The error, on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
    /// The assignments that could not be read (page 0, list `assignments`).
    #[serde(skip)]
    pub skipped: Vec<SkippedRecord>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAssetManagement {
    #[serde(rename = "type")]
    event_type: EventType,
    result: NotificationResult,
    #[serde(default)]
    event_id: Option<EventId>,
    #[serde(default)]
    assignments: Records<Assignment>,
    #[serde(default)]
    error: Option<ApiError>,
}

impl From<RawAssetManagement> for AssetManagementNotification {
    fn from(raw: RawAssetManagement) -> Self {
        Self {
            event_type: raw.event_type,
            result: raw.result,
            event_id: raw.event_id,
            skipped: raw.assignments.skipped("assignments"),
            assignments: raw.assignments.items,
            error: raw.error,
        }
    }
}

/// `USER_MANAGEMENT`: the outcome of a create, update or retire.
///
/// Each user is read on its own: one that cannot be read (Apple documents no failure
/// example; an item for a user Apple does not know may carry no `status`) is left out and
/// listed in [`skipped`](Self::skipped), and the notification still parses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", from = "RawUserManagement")]
#[non_exhaustive]
pub struct UserManagementNotification {
    /// CREATE, UPDATE or RETIRE.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// SUCCESS or FAILURE.
    pub result: NotificationResult,
    /// The event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<EventId>,
    /// The users concerned.
    #[serde(default)]
    pub users: Vec<ResponseUser>,
    /// The error, on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
    /// The users that could not be read (page 0, list `users`).
    #[serde(skip)]
    pub skipped: Vec<SkippedRecord>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawUserManagement {
    #[serde(rename = "type")]
    event_type: EventType,
    result: NotificationResult,
    #[serde(default)]
    event_id: Option<EventId>,
    #[serde(default)]
    users: Records<ResponseUser>,
    #[serde(default)]
    error: Option<ApiError>,
}

impl From<RawUserManagement> for UserManagementNotification {
    fn from(raw: RawUserManagement) -> Self {
        Self {
            event_type: raw.event_type,
            result: raw.result,
            event_id: raw.event_id,
            skipped: raw.users.skipped("users"),
            users: raw.users.items,
            error: raw.error,
        }
    }
}

/// `USER_ASSOCIATED`: users who accepted their invitation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct UserAssociatedNotification {
    /// The users, now `Associated` with an `idHash`.
    #[serde(default)]
    pub associated_users: Vec<ResponseUser>,
}

/// The `notification` object, by `notificationType`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Notification {
    /// `TEST_NOTIFICATION` (empty object), sent when the URL is configured.
    Test,
    /// `ASSET_COUNT`.
    AssetCount(AssetCountNotification),
    /// `ASSET_MANAGEMENT`.
    AssetManagement(AssetManagementNotification),
    /// `USER_MANAGEMENT`.
    UserManagement(UserManagementNotification),
    /// `USER_ASSOCIATED`.
    UserAssociated(UserAssociatedNotification),
    /// `SUBSCRIPTION_COUNT` (subscriptions are out of scope: kept raw).
    SubscriptionCount(serde_json::Value),
    /// `SUBSCRIPTION_MANAGEMENT` (kept raw).
    SubscriptionManagement(serde_json::Value),
    /// `UNLIMITED_ASSET` (payload undocumented: kept raw).
    UnlimitedAsset(serde_json::Value),
    /// A type this crate does not know, kept as received.
    Unknown {
        /// `notificationType`.
        notification_type: String,
        /// `notification`.
        payload: serde_json::Value,
    },
}

impl Notification {
    /// The notification's type.
    pub fn notification_type(&self) -> NotificationType {
        match self {
            Notification::Test => NotificationType::Test,
            Notification::AssetCount(_) => NotificationType::AssetCount,
            Notification::AssetManagement(_) => NotificationType::AssetManagement,
            Notification::UserManagement(_) => NotificationType::UserManagement,
            Notification::UserAssociated(_) => NotificationType::UserAssociated,
            Notification::SubscriptionCount(_) => NotificationType::SubscriptionCount,
            Notification::SubscriptionManagement(_) => NotificationType::SubscriptionManagement,
            Notification::UnlimitedAsset(_) => NotificationType::UnlimitedAsset,
            Notification::Unknown {
                notification_type, ..
            } => NotificationType::Other(notification_type.clone()),
        }
    }
}

/// A webhook delivery: id (the de-duplication key), organisational unit, payload.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct WebhookNotification {
    /// `notificationId`.
    pub notification_id: NotificationId,
    /// `uId`.
    pub uid: Option<Uid>,
    /// The typed payload.
    pub notification: Notification,
}

impl WebhookNotification {
    /// Builds a delivery (for fakes and tests).
    pub fn new(
        notification_id: NotificationId,
        uid: Option<Uid>,
        notification: Notification,
    ) -> Self {
        Self {
            notification_id,
            uid,
            notification,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawNotification {
    notification_id: NotificationId,
    notification_type: String,
    #[serde(default)]
    notification: serde_json::Value,
    #[serde(rename = "uId", default)]
    uid: Option<Uid>,
}

/// Parses a webhook body. Unknown types are kept as [`Notification::Unknown`];
/// a known type with a malformed payload is an [`Error::Notification`].
pub fn parse_notification(body: &[u8]) -> Result<WebhookNotification, Error> {
    let raw: RawNotification =
        serde_json::from_slice(body).map_err(|e| Error::Notification(e.to_string()))?;
    fn typed<T: serde::de::DeserializeOwned>(kind: &str, v: serde_json::Value) -> Result<T, Error> {
        serde_json::from_value(v).map_err(|e| Error::Notification(format!("{kind}: {e}")))
    }
    let payload = raw.notification;
    let notification = match NotificationType::from_wire(&raw.notification_type) {
        NotificationType::Test => Notification::Test,
        NotificationType::AssetCount => Notification::AssetCount(typed("ASSET_COUNT", payload)?),
        NotificationType::AssetManagement => {
            Notification::AssetManagement(typed("ASSET_MANAGEMENT", payload)?)
        }
        NotificationType::UserManagement => {
            Notification::UserManagement(typed("USER_MANAGEMENT", payload)?)
        }
        NotificationType::UserAssociated => {
            Notification::UserAssociated(typed("USER_ASSOCIATED", payload)?)
        }
        NotificationType::SubscriptionCount => Notification::SubscriptionCount(payload),
        NotificationType::SubscriptionManagement => Notification::SubscriptionManagement(payload),
        NotificationType::UnlimitedAsset => Notification::UnlimitedAsset(payload),
        NotificationType::Other(t) => Notification::Unknown {
            notification_type: t,
            payload,
        },
    };
    let skipped = match &notification {
        Notification::AssetManagement(m) => m.skipped.as_slice(),
        Notification::UserManagement(m) => m.skipped.as_slice(),
        _ => &[],
    };
    for record in skipped {
        tracing::warn!(
            notification_id = %raw.notification_id,
            list = record.list,
            position = record.position,
            reason = %record.reason,
            "a record of a notification could not be read and was left out"
        );
    }
    Ok(WebhookNotification {
        notification_id: raw.notification_id,
        uid: raw.uid,
        notification,
    })
}

/// Checks a webhook's `Authorization` header value (`Bearer <token>`) against the
/// notification auth token, in constant time (the comparison does not stop at the
/// first differing byte, and unequal lengths take the same path).
pub fn verify_notification_bearer(header_value: &str, expected: &Secret) -> bool {
    let value = header_value.trim();
    let Some((scheme, token)) = value.split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("bearer") || expected.is_empty() {
        return false;
    }
    let given = token.trim().as_bytes();
    let want = expected.expose().as_bytes();
    let mut equal = (given.len() as u64).ct_eq(&(want.len() as u64));
    for i in 0..given.len().max(want.len()) {
        let a = given.get(i).copied().unwrap_or(0);
        let b = want.get(i).copied().unwrap_or(0xff);
        equal &= a.ct_eq(&b);
    }
    equal.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Failure items Apple documents no example of (a revoke of an unknown user, a user
    /// event's users without `status`) are left out and listed; the rest is read.
    #[test]
    fn unreadable_items_of_a_failure_are_skipped_not_fatal() {
        let revoke = br#"{"notificationId":"n-1","notificationType":"ASSET_MANAGEMENT","uId":"1",
            "notification":{"type":"REVOKE","result":"FAILURE","eventId":"f743928c-cc93-4a17-a53f-50c552ce1e06",
            "error":{"errorMessage":"x","errorNumber":9609},
            "assignments":[{"clientUserId":"ghost"},{"adamId":"1","pricingParam":"STDQ","serialNumber":"s.1"}]}}"#;
        let Notification::AssetManagement(m) = parse_notification(revoke).unwrap().notification
        else {
            panic!("ASSET_MANAGEMENT")
        };
        assert_eq!(m.assignments.len(), 1);
        assert_eq!((m.skipped.len(), m.skipped[0].position), (1, 0));
        let users = br#"{"notificationId":"n-2","notificationType":"USER_MANAGEMENT","uId":"1",
            "notification":{"type":"CREATE","result":"FAILURE","eventId":"f743928c-cc93-4a17-a53f-50c552ce1e06",
            "error":{"errorMessage":"x","errorNumber":9716},"users":[{"clientUserId":"u1"}]}}"#;
        let Notification::UserManagement(m) = parse_notification(users).unwrap().notification
        else {
            panic!("USER_MANAGEMENT")
        };
        assert!(m.users.is_empty());
        assert_eq!(m.skipped[0].list, "users");
        // A payload that is not an object at all still fails.
        let broken =
            br#"{"notificationId":"n-3","notificationType":"USER_MANAGEMENT","notification":[1]}"#;
        assert!(parse_notification(broken).is_err());
    }

    #[test]
    fn bearer_check() {
        let s = Secret::new("n0t1f1cat10n-shared-secret");
        assert!(verify_notification_bearer(
            "Bearer n0t1f1cat10n-shared-secret",
            &s
        ));
        assert!(verify_notification_bearer(
            "bearer  n0t1f1cat10n-shared-secret ",
            &s
        ));
        assert!(!verify_notification_bearer(
            "Bearer n0t1f1cat10n-shared-secreT",
            &s
        ));
        assert!(!verify_notification_bearer(
            "Bearer n0t1f1cat10n-shared-secret-x",
            &s
        ));
        assert!(!verify_notification_bearer("Bearer n0t1f1cat10n", &s));
        assert!(!verify_notification_bearer(
            "Basic n0t1f1cat10n-shared-secret",
            &s
        ));
        assert!(!verify_notification_bearer(
            "n0t1f1cat10n-shared-secret",
            &s
        ));
        assert!(!verify_notification_bearer("Bearer ", &s));
        assert!(!verify_notification_bearer("", &Secret::new("")));
        assert!(!verify_notification_bearer("Bearer ", &Secret::new("")));
    }

    #[test]
    fn unknown_and_raw_types_are_kept() {
        let n = parse_notification(
            br#"{"notificationId":"a","notificationType":"NEW_KIND","notification":{"x":1},"uId":"1"}"#,
        )
        .unwrap();
        assert_eq!(
            n.notification.notification_type(),
            NotificationType::Other("NEW_KIND".into())
        );
        let n = parse_notification(
            br#"{"notificationId":"a","notificationType":"UNLIMITED_ASSET","notification":{"adamId":"1"}}"#,
        )
        .unwrap();
        assert!(matches!(n.notification, Notification::UnlimitedAsset(_)));
        assert!(parse_notification(b"not json").is_err());
        assert!(parse_notification(
            br#"{"notificationId":"a","notificationType":"ASSET_COUNT","notification":{"adamId":"x"}}"#
        )
        .is_err());
    }
}
