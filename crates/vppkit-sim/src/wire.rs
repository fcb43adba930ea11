//! Response bodies, with keys in Apple's (alphabetical) order.

use serde::Serialize;
use vppkit_core::MdmInfo;

/// `mdmInfo` as Apple writes it.
#[derive(Debug, Serialize)]
pub(crate) struct MdmOut<'a> {
    pub(crate) id: &'a str,
    pub(crate) metadata: &'a str,
    pub(crate) name: &'a str,
}

impl<'a> MdmOut<'a> {
    pub(crate) fn of(info: Option<&'a MdmInfo>) -> Option<Self> {
        info.map(|i| Self {
            id: &i.id,
            metadata: &i.metadata,
            name: &i.name,
        })
    }
}

/// One asset of `GET assets`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AssetOut<'a> {
    pub(crate) adam_id: &'a str,
    pub(crate) assigned_count: u32,
    pub(crate) available_count: u32,
    pub(crate) device_assignable: bool,
    pub(crate) pricing_param: &'static str,
    pub(crate) product_type: &'static str,
    pub(crate) retired_count: u32,
    pub(crate) revocable: bool,
    pub(crate) supported_platforms: Vec<&'static str>,
    pub(crate) total_count: u32,
}

/// One free asset of `GET assets?unlimited=true` (no counts but `assignedCount`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UnlimitedAssetOut<'a> {
    pub(crate) adam_id: &'a str,
    pub(crate) assigned_count: u32,
    pub(crate) device_assignable: bool,
    pub(crate) pricing_param: &'static str,
    pub(crate) product_type: &'static str,
    pub(crate) revocable: bool,
    pub(crate) supported_platforms: Vec<&'static str>,
}

/// One assignment of `GET assignments`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AssignmentOut<'a> {
    pub(crate) adam_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) client_user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) id_hash: Option<String>,
    pub(crate) pricing_param: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) serial_number: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) user_status: Option<&'static str>,
}

/// One user (ResponseUser).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UserOut<'a> {
    pub(crate) client_user_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) id_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) invite_code: Option<String>,
    pub(crate) status: &'static str,
}

/// A paginated answer (assets, assignments or users) with the envelope.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PageOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) assets: Option<Vec<AssetOut<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) assignments: Option<Vec<AssignmentOut<'a>>>,
    pub(crate) current_page_index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) mdm_info: Option<MdmOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) next_page_index: Option<usize>,
    pub(crate) size: usize,
    pub(crate) token_expiration_date: &'a str,
    pub(crate) total_pages: usize,
    #[serde(rename = "uId")]
    pub(crate) u_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) unlimited_assets: Option<Vec<UnlimitedAssetOut<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) users: Option<Vec<UserOut<'a>>>,
    pub(crate) version_id: String,
}

/// EventResponse.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EventOut<'a> {
    pub(crate) event_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) mdm_info: Option<MdmOut<'a>>,
    pub(crate) token_expiration_date: &'a str,
    #[serde(rename = "uId")]
    pub(crate) u_id: &'a str,
}

/// ClientConfigResponse. No `Debug`: it carries the notification auth token in clear.
#[derive(Serialize)]
pub(crate) struct ClientConfigOut<'a> {
    #[serde(rename = "countryISO2ACode")]
    pub(crate) country: &'a str,
    #[serde(rename = "defaultPlatform")]
    pub(crate) default_platform: &'static str,
    #[serde(rename = "locationName")]
    pub(crate) location_name: &'a str,
    #[serde(rename = "mdmInfo", skip_serializing_if = "Option::is_none")]
    pub(crate) mdm_info: Option<MdmOut<'a>>,
    #[serde(
        rename = "notificationAuthToken",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) notification_auth_token: Option<&'a str>,
    #[serde(rename = "notificationUrl", skip_serializing_if = "Option::is_none")]
    pub(crate) notification_url: Option<&'a str>,
    #[serde(rename = "subscribedNotificationTypes")]
    pub(crate) subscribed: &'a [String],
    #[serde(rename = "tokenExpirationDate")]
    pub(crate) token_expiration_date: &'a str,
    #[serde(rename = "uId")]
    pub(crate) u_id: &'a str,
    #[serde(rename = "websiteURL")]
    pub(crate) website_url: &'static str,
}

/// Serializes a body known to serialize.
pub(crate) fn to_vec<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("response bodies serialize")
}
