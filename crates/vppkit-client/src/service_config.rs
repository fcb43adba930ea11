//! `GET service/config`: limits, URLs, error codes, notification types.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ApiError;

/// Apple's size and rate limits (`limits`). A key Apple leaves out keeps the value
/// of Apple's current documentation ([`Limits::default`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct Limits {
    /// Assets per associate/disassociate request (25).
    pub max_assets: u32,
    /// clientUserIds per associate/disassociate request (1000).
    pub max_client_user_ids: u32,
    /// serialNumbers per associate/disassociate request (1000).
    pub max_serial_numbers: u32,
    /// clientUserIds per revoke request (100).
    pub max_revoke_client_user_ids: u32,
    /// serialNumbers per revoke request (100).
    pub max_revoke_serial_numbers: u32,
    /// Users per create/update/retire request (100).
    pub max_users: u32,
    /// Length of the notification URL and auth token (512).
    pub max_notification_length: u32,
    /// Length of `mdmInfo.id` (100).
    pub max_mdm_id_length: u32,
    /// Length of `mdmInfo.name` (100).
    pub max_mdm_name_length: u32,
    /// Length of `mdmInfo.metadata` (255).
    pub max_mdm_metadata_length: u32,
    /// Requests per second per token (15).
    pub max_request_per_second: u32,
    /// Any other limit Apple sends (subscriptions, new keys).
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_assets: 25,
            max_client_user_ids: 1000,
            max_serial_numbers: 1000,
            max_revoke_client_user_ids: 100,
            max_revoke_serial_numbers: 100,
            max_users: 100,
            max_notification_length: 512,
            max_mdm_id_length: 100,
            max_mdm_name_length: 100,
            max_mdm_metadata_length: 255,
            max_request_per_second: 15,
            other: BTreeMap::new(),
        }
    }
}

/// A webhook notification type (`notificationTypes`, `notificationType`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum NotificationType {
    /// `TEST_NOTIFICATION`.
    Test,
    /// `ASSET_MANAGEMENT`.
    AssetManagement,
    /// `USER_MANAGEMENT`.
    UserManagement,
    /// `USER_ASSOCIATED`.
    UserAssociated,
    /// `ASSET_COUNT`.
    AssetCount,
    /// `SUBSCRIPTION_MANAGEMENT`.
    SubscriptionManagement,
    /// `SUBSCRIPTION_COUNT`.
    SubscriptionCount,
    /// `UNLIMITED_ASSET`.
    UnlimitedAsset,
    /// A type this crate does not know.
    Other(String),
}

impl NotificationType {
    /// The four types an MDM subscribes to for licence management.
    pub const MANAGEMENT: [NotificationType; 4] = [
        NotificationType::AssetManagement,
        NotificationType::AssetCount,
        NotificationType::UserManagement,
        NotificationType::UserAssociated,
    ];

    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            NotificationType::Test => "TEST_NOTIFICATION",
            NotificationType::AssetManagement => "ASSET_MANAGEMENT",
            NotificationType::UserManagement => "USER_MANAGEMENT",
            NotificationType::UserAssociated => "USER_ASSOCIATED",
            NotificationType::AssetCount => "ASSET_COUNT",
            NotificationType::SubscriptionManagement => "SUBSCRIPTION_MANAGEMENT",
            NotificationType::SubscriptionCount => "SUBSCRIPTION_COUNT",
            NotificationType::UnlimitedAsset => "UNLIMITED_ASSET",
            NotificationType::Other(s) => s,
        }
    }

    /// Reads a wire name (never fails: unknown names become [`NotificationType::Other`]).
    pub fn from_wire(s: &str) -> Self {
        match s {
            "TEST_NOTIFICATION" => NotificationType::Test,
            "ASSET_MANAGEMENT" => NotificationType::AssetManagement,
            "USER_MANAGEMENT" => NotificationType::UserManagement,
            "USER_ASSOCIATED" => NotificationType::UserAssociated,
            "ASSET_COUNT" => NotificationType::AssetCount,
            "SUBSCRIPTION_MANAGEMENT" => NotificationType::SubscriptionManagement,
            "SUBSCRIPTION_COUNT" => NotificationType::SubscriptionCount,
            "UNLIMITED_ASSET" => NotificationType::UnlimitedAsset,
            other => NotificationType::Other(other.to_owned()),
        }
    }
}

impl FromStr for NotificationType {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::from_wire(s))
    }
}

impl fmt::Display for NotificationType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for NotificationType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for NotificationType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(Self::from_wire(&s))
    }
}

/// The `urls` map of service config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ServiceUrls(pub BTreeMap<String, String>);

impl ServiceUrls {
    /// A URL by Apple's name (`getAssets`, `eventStatus`, ...).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// `contentMetadataLookup`: the legacy metadata lookup URL.
    pub fn content_metadata_lookup(&self) -> Option<&str> {
        self.get("contentMetadataLookup")
    }

    /// `invitationEmail`: the invitation link template.
    pub fn invitation_email(&self) -> Option<&str> {
        self.get("invitationEmail")
    }

    /// The invitation link for one user: `invitationEmail` with
    /// `%25inviteCode%25` (or `%inviteCode%`) replaced by the invite code.
    pub fn invitation_link(&self, invite_code: &str) -> Option<String> {
        self.invitation_email().map(|t| {
            t.replace("%25inviteCode%25", invite_code)
                .replace("%inviteCode%", invite_code)
        })
    }
}

/// The answer of `GET service/config`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ServiceConfig {
    /// The synchronous error list.
    #[serde(default)]
    pub error_codes: Vec<ApiError>,
    /// Size and rate limits.
    #[serde(default)]
    pub limits: Limits,
    /// Notification types that can be subscribed to.
    #[serde(default)]
    pub notification_types: Vec<NotificationType>,
    /// Endpoint URLs by name.
    #[serde(default)]
    pub urls: ServiceUrls,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_documented_example() {
        let cfg: ServiceConfig = serde_json::from_str(
            r#"{
  "errorCodes": [{"errorNumber": 9646, "errorMessage": "There are too many recent requests. Try again momentarily."}],
  "limits": {"maxAssets": 25, "maxClientUserIds": 1000, "maxSerialNumbers": 1000,
             "maxRevokeClientUserIds": 100, "maxRevokeSerialNumbers": 100, "maxUsers": 100,
             "maxNotificationLength": 512, "maxMdmIdLength": 100, "maxMdmNameLength": 100,
             "maxMdmMetadataLength": 255, "maxRequestPerSecond": 15, "maxSubscriptions": 25},
  "notificationTypes": ["ASSET_MANAGEMENT", "USER_MANAGEMENT", "USER_ASSOCIATED", "ASSET_COUNT", "NEW_THING"],
  "urls": {
    "invitationEmail": "https://buy.itunes.apple.com/WebObjects/MZFinance.woa/wa/associateVPPUserWithITSAccount?inviteCode=%25inviteCode%25&mt=8",
    "contentMetadataLookup": "https://uclient-api.itunes.apple.com/WebObjects/MZStorePlatform.woa/wa/lookup"
  }
}"#,
        )
        .unwrap();
        assert_eq!(cfg.limits.max_assets, 25);
        assert_eq!(cfg.limits.other["maxSubscriptions"], 25);
        assert_eq!(
            cfg.notification_types[4],
            NotificationType::Other("NEW_THING".into())
        );
        assert_eq!(
            cfg.urls.invitation_link("abc").unwrap(),
            "https://buy.itunes.apple.com/WebObjects/MZFinance.woa/wa/associateVPPUserWithITSAccount?inviteCode=abc&mt=8"
        );
        assert!(cfg.urls.content_metadata_lookup().is_some());
    }

    #[test]
    fn older_config_without_rate_keeps_default() {
        let l: Limits = serde_json::from_str(r#"{"maxAssets": 10}"#).unwrap();
        assert_eq!(l.max_assets, 10);
        assert_eq!(l.max_request_per_second, 15);
    }
}
