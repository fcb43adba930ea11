//! Limits and switches the simulator announces and enforces.

use std::time::Duration;

/// The `limits` of `GET service/config`, enforced on every request. Defaults are
/// Apple's current values.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Assets per associate/disassociate (`maxAssets`, 25).
    pub max_assets: usize,
    /// `clientUserIds` per associate/disassociate (`maxClientUserIds`, 1000).
    pub max_client_user_ids: usize,
    /// `serialNumbers` per associate/disassociate (`maxSerialNumbers`, 1000).
    pub max_serial_numbers: usize,
    /// `clientUserIds` per revoke (`maxRevokeClientUserIds`, 100).
    pub max_revoke_client_user_ids: usize,
    /// `serialNumbers` per revoke (`maxRevokeSerialNumbers`, 100).
    pub max_revoke_serial_numbers: usize,
    /// Users per create/update/retire (`maxUsers`, 100).
    pub max_users: usize,
    /// Length of the notification URL and auth token (`maxNotificationLength`, 512).
    pub max_notification_length: usize,
    /// `mdmInfo.id` length (`maxMdmIdLength`, 100).
    pub max_mdm_id_length: usize,
    /// `mdmInfo.name` length (`maxMdmNameLength`, 100).
    pub max_mdm_name_length: usize,
    /// `mdmInfo.metadata` length (`maxMdmMetadataLength`, 255).
    pub max_mdm_metadata_length: usize,
    /// Requests per second per location (`maxRequestPerSecond`, 15); enforced
    /// only while throttling is switched on.
    pub max_request_per_second: u32,
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
        }
    }
}

impl Limits {
    /// The `limits` object of `service/config`.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "maxAssets": self.max_assets,
            "maxClientUserIds": self.max_client_user_ids,
            "maxSerialNumbers": self.max_serial_numbers,
            "maxRevokeClientUserIds": self.max_revoke_client_user_ids,
            "maxRevokeSerialNumbers": self.max_revoke_serial_numbers,
            "maxUsers": self.max_users,
            "maxNotificationLength": self.max_notification_length,
            "maxMdmIdLength": self.max_mdm_id_length,
            "maxMdmNameLength": self.max_mdm_name_length,
            "maxMdmMetadataLength": self.max_mdm_metadata_length,
            "maxRequestPerSecond": self.max_request_per_second,
            "maxSubscriptions": 25,
            "maxSubscriptionClientUserIds": 1000,
        })
    }
}

/// Fixed settings of one simulator.
#[derive(Debug, Clone)]
pub(crate) struct SimConfig {
    pub(crate) limits: Limits,
    pub(crate) allow_http_loopback_notifications: bool,
    /// Delivery attempts per notification in all (Apple: up to three), 1..=3.
    pub(crate) notification_attempts: u32,
    pub(crate) notification_retry_delay: Duration,
    pub(crate) notification_timeout: Duration,
    pub(crate) notification_log_limit: usize,
    pub(crate) control_api: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            allow_http_loopback_notifications: false,
            notification_attempts: 3,
            notification_retry_delay: Duration::from_millis(100),
            notification_timeout: Duration::from_secs(5),
            notification_log_limit: 10_000,
            control_api: true,
        }
    }
}
