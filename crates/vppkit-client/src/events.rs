//! Writes (`assets/associate`, `assets/disassociate`, `assets/revoke`, users) and
//! their asynchronous events (`status`).

use serde::{Deserialize, Serialize};
use vppkit_core::{AssetKey, ClientUserId, EventId, SerialNumber};

use crate::envelope::enveloped;
use crate::ApiError;

/// The body of `POST assets/associate` and `assets/disassociate` (`ManageAssetsRequest`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ManageAssetsRequest {
    /// The assets (at most `maxAssets`, no duplicates).
    pub assets: Vec<AssetKey>,
    /// Users (at most `maxClientUserIds`, no duplicates).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub client_user_ids: Vec<ClientUserId>,
    /// Devices (at most `maxSerialNumbers`, no duplicates).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub serial_numbers: Vec<SerialNumber>,
}

impl ManageAssetsRequest {
    /// Assets to devices.
    pub fn devices(assets: Vec<AssetKey>, serial_numbers: Vec<SerialNumber>) -> Self {
        Self {
            assets,
            client_user_ids: Vec::new(),
            serial_numbers,
        }
    }

    /// Assets to users.
    pub fn users(assets: Vec<AssetKey>, client_user_ids: Vec<ClientUserId>) -> Self {
        Self {
            assets,
            client_user_ids,
            serial_numbers: Vec::new(),
        }
    }

    /// Tasks Apple will count: assets x targets.
    pub fn task_count(&self) -> usize {
        self.assets.len() * (self.client_user_ids.len() + self.serial_numbers.len())
    }
}

/// The body of `POST assets/revoke` (`RevokeAssetsRequest`): takes back every
/// revocable licence from these users and devices.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RevokeAssetsRequest {
    /// Users (at most `maxRevokeClientUserIds`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub client_user_ids: Vec<ClientUserId>,
    /// Devices (at most `maxRevokeSerialNumbers`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub serial_numbers: Vec<SerialNumber>,
}

impl RevokeAssetsRequest {
    /// Builds a request.
    pub fn new(client_user_ids: Vec<ClientUserId>, serial_numbers: Vec<SerialNumber>) -> Self {
        Self {
            client_user_ids,
            serial_numbers,
        }
    }
}

/// The answer to an accepted write (`EventResponse`): the event to follow.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventResponse {
    /// `eventId`: poll `status` with it, or wait for the notification.
    pub event_id: EventId,
}

impl EventResponse {
    /// Builds an event answer.
    pub fn new(event_id: EventId) -> Self {
        Self { event_id }
    }
}

enveloped! {
    struct RawEventResponse {
        event_id: EventId,
    }
}

pub(crate) fn split_event_response(
    body: &[u8],
) -> Result<crate::ApiResponse<EventResponse>, serde_json::Error> {
    let mut raw: RawEventResponse = serde_json::from_slice(body)?;
    let envelope = raw.take_envelope();
    Ok(crate::ApiResponse::new(
        EventResponse {
            event_id: raw.event_id,
        },
        envelope,
    ))
}

macro_rules! open_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
            /// A value this crate does not know.
            Other(String),
        }

        impl $name {
            /// The wire name.
            pub fn as_str(&self) -> &str {
                match self { $($name::$variant => $wire,)+ $name::Other(s) => s }
            }

            /// Reads a wire name (unknown names are kept).
            pub fn from_wire(s: &str) -> Self {
                match s { $($wire => $name::$variant,)+ other => $name::Other(other.to_owned()) }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as serde::Deserialize>::deserialize(d)?;
                Ok(Self::from_wire(&s))
            }
        }
    };
}
pub(crate) use open_enum;

open_enum! {
    /// Where an event is (`eventStatus`).
    EventStatusKind {
        /// Still running.
        Pending = "PENDING",
        /// Every task succeeded.
        Complete = "COMPLETE",
        /// At least one task failed (`numCompleted` may still be above zero).
        Failed = "FAILED",
    }
}

open_enum! {
    /// What an event does (`eventType`; also the `type` of management notifications).
    EventType {
        /// `assets/associate`.
        Associate = "ASSOCIATE",
        /// `assets/disassociate`.
        Disassociate = "DISASSOCIATE",
        /// `assets/revoke`.
        Revoke = "REVOKE",
        /// `users/create`.
        Create = "CREATE",
        /// `users/update`.
        Update = "UPDATE",
        /// `users/retire`.
        Retire = "RETIRE",
    }
}

/// The answer of `GET status?eventId=` (`StatusResponse`, envelope apart).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct EventStatus {
    /// PENDING, COMPLETE or FAILED.
    pub event_status: EventStatusKind,
    /// What the event does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<EventType>,
    /// Total tasks.
    #[serde(default)]
    pub num_requested: u32,
    /// Tasks done.
    #[serde(default)]
    pub num_completed: u32,
    /// Failures, grouped, each naming what failed in `errorInfo`.
    #[serde(default)]
    pub failures: Vec<ApiError>,
}

impl EventStatus {
    /// Builds a status without failures.
    pub fn new(
        event_status: EventStatusKind,
        event_type: Option<EventType>,
        num_requested: u32,
        num_completed: u32,
    ) -> Self {
        Self {
            event_status,
            event_type,
            num_requested,
            num_completed,
            failures: Vec::new(),
        }
    }

    /// Whether the event is over (complete or failed).
    pub fn is_finished(&self) -> bool {
        !matches!(self.event_status, EventStatusKind::Pending)
    }
}

enveloped! {
    struct RawEventStatus {
        event_status: EventStatusKind,
        #[serde(default)]
        event_type: Option<EventType>,
        #[serde(default)]
        num_requested: u32,
        #[serde(default)]
        num_completed: u32,
        #[serde(default)]
        failures: Vec<ApiError>,
    }
}

pub(crate) fn split_event_status(
    body: &[u8],
) -> Result<crate::ApiResponse<EventStatus>, serde_json::Error> {
    let mut raw: RawEventStatus = serde_json::from_slice(body)?;
    let envelope = raw.take_envelope();
    Ok(crate::ApiResponse::new(
        EventStatus {
            event_status: raw.event_status,
            event_type: raw.event_type,
            num_requested: raw.num_requested,
            num_completed: raw.num_completed,
            failures: raw.failures,
        },
        envelope,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorNumber;

    #[test]
    fn status_with_failures() {
        let r = split_event_status(
            br#"{"eventStatus": "FAILED", "eventType": "ASSOCIATE", "numRequested": 3, "numCompleted": 2,
 "failures": [{"errorNumber": 9609, "errorMessage": "Unable to find the registered user.",
               "errorInfo": {"clientUserIds": ["u-unknown"]}}],
 "tokenExpirationDate": "2031-03-01T18:00:00+0000", "uId": "7300112233445566"}"#,
        )
        .unwrap();
        assert_eq!(r.body.event_status, EventStatusKind::Failed);
        assert_eq!(r.body.event_type, Some(EventType::Associate));
        assert!(r.body.is_finished());
        assert_eq!(
            r.body.failures[0].number,
            ErrorNumber::RegisteredUserNotFound
        );
        assert_eq!(r.envelope.uid.unwrap().as_str(), "7300112233445566");
        assert_eq!(
            EventStatusKind::from_wire("NEW"),
            EventStatusKind::Other("NEW".into())
        );
    }

    #[test]
    fn manage_request_shape() {
        let key = AssetKey::new(
            vppkit_core::AdamId::new("1200000001").unwrap(),
            Default::default(),
        );
        let r = ManageAssetsRequest::devices(
            vec![key],
            vec![SerialNumber::new("C02XK0AAJGH5").unwrap()],
        );
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"assets":[{"adamId":"1200000001","pricingParam":"STDQ"}],"serialNumbers":["C02XK0AAJGH5"]}"#
        );
        assert_eq!(r.task_count(), 1);
        let ev = split_event_response(
            br#"{"eventId": "3f6b1c2a-8e4d-4b1a-9c55-0d2e7a6f9b10","tokenExpirationDate": "2031-03-01T18:00:00+0000", "uId": "7300112233445566"}"#,
        )
        .unwrap();
        assert_eq!(
            ev.body.event_id.as_str(),
            "3f6b1c2a-8e4d-4b1a-9c55-0d2e7a6f9b10"
        );
    }
}
