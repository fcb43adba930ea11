//! Locations: one content token each, with its settings.

use chrono::{DateTime, Utc};
use vppkit_core::{AccountType, LocationId, MdmInfo, Secret, TokenState, Uid};

/// Where and how Apple sends a location's notifications.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NotificationSettings {
    /// The webhook URL given to Apple (`notificationUrl`).
    pub url: String,
    /// The bearer token Apple sends back (`notificationAuthToken`); stored encrypted.
    pub auth_token: Secret,
    /// The subscribed notification types (`notificationTypes`).
    pub types: Vec<String>,
}

impl NotificationSettings {
    /// Builds notification settings.
    pub fn new(url: impl Into<String>, auth_token: Secret, types: Vec<String>) -> Self {
        Self {
            url: url.into(),
            auth_token,
            types,
        }
    }
}

fn secret_eq(a: &Secret, b: &Secret) -> bool {
    a.expose() == b.expose()
}

/// One location: a content token and what is known about its organisational unit.
///
/// `revision` is the optimistic-concurrency counter: [`LocationStore::save_location`](crate::LocationStore::save_location)
/// inserts when it is 0 and otherwise updates only if the stored revision is the same,
/// returning the new one.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LocationRecord {
    /// The local id.
    pub id: LocationId,
    /// The location name (`locationName` from client config), or a name the operator chose.
    pub name: String,
    /// The whole content token file (the bearer credential); stored encrypted.
    pub token: Secret,
    /// The token's `expDate`.
    pub token_expires_at: DateTime<Utc>,
    /// The token's state.
    pub token_state: TokenState,
    /// Apple's organisational unit id (`uId`), once client config was read.
    pub uid: Option<Uid>,
    /// The storefront country (`countryISO2ACode`).
    pub country: Option<String>,
    /// Business or education.
    pub account_type: Option<AccountType>,
    /// The Apple account (organisation) name the token belongs to.
    pub apple_account_name: Option<String>,
    /// The `mdmInfo` Apple last reported on this token.
    pub mdm_info: Option<MdmInfo>,
    /// Notification settings, when subscribed.
    pub notification: Option<NotificationSettings>,
    /// The cached `service/config` answer.
    pub service_config: Option<serde_json::Value>,
    /// When the record was first saved (set by the caller).
    pub created_at: DateTime<Utc>,
    /// When the record was last saved (set by the caller).
    pub updated_at: DateTime<Utc>,
    /// The optimistic-concurrency revision; 0 for a record never saved.
    pub revision: u64,
}

impl LocationRecord {
    /// A new location (revision 0) with a valid token and nothing else known yet.
    pub fn new(
        id: LocationId,
        name: impl Into<String>,
        token: Secret,
        token_expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            name: name.into(),
            token,
            token_expires_at,
            token_state: TokenState::Valid,
            uid: None,
            country: None,
            account_type: None,
            apple_account_name: None,
            mdm_info: None,
            notification: None,
            service_config: None,
            created_at: now,
            updated_at: now,
            revision: 0,
        }
    }

    /// Whether every field, secrets included, equals `other`'s (the revision too).
    pub fn same_as(&self, other: &Self) -> bool {
        let notif = match (&self.notification, &other.notification) {
            (None, None) => true,
            (Some(a), Some(b)) => {
                a.url == b.url && a.types == b.types && secret_eq(&a.auth_token, &b.auth_token)
            }
            _ => false,
        };
        notif
            && self.id == other.id
            && self.name == other.name
            && secret_eq(&self.token, &other.token)
            && self.token_expires_at == other.token_expires_at
            && self.token_state == other.token_state
            && self.uid == other.uid
            && self.country == other.country
            && self.account_type == other.account_type
            && self.apple_account_name == other.apple_account_name
            && self.mdm_info == other.mdm_info
            && self.service_config == other.service_config
            && self.created_at == other.created_at
            && self.updated_at == other.updated_at
            && self.revision == other.revision
    }
}
