//! Apple's error numbers, their messages and HTTP statuses, and the error body.

use serde::Serialize;

macro_rules! codes {
    ($($variant:ident = $num:literal, $status:literal, $msg:literal;)+) => {
        /// One of Apple's error numbers.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub(crate) enum Code {
            $($variant,)+
        }

        impl Code {
            /// Every code, in number order.
            #[cfg_attr(not(test), allow(dead_code))]
            pub(crate) const ALL: &'static [Code] = &[$(Code::$variant,)+];

            /// Apple's `errorNumber`.
            pub(crate) fn number(self) -> u32 {
                match self { $(Code::$variant => $num,)+ }
            }

            /// The HTTP status Apple answers with when the error is synchronous.
            pub(crate) fn status(self) -> u16 {
                match self { $(Code::$variant => $status,)+ }
            }

            /// Apple's `errorMessage`.
            pub(crate) fn message(self) -> &'static str {
                match self { $(Code::$variant => $msg,)+ }
            }
        }
    };
}

codes! {
    LoginRequired = 9601, 401, "Login required.";
    InvalidArgument = 9602, 400, "Invalid argument.";
    Internal = 9603, 500, "Internal error.";
    UserNotFound = 9609, 400, "Unable to find registered user.";
    TokenExpired = 9621, 401, "The token has expired. You need to generate a new token online using your organization's login ID and password.";
    InvalidToken = 9622, 401, "Invalid authentication token";
    TokenRevoked = 9625, 401, "The server has revoked the sToken.";
    ServiceGone = 9634, 410, "This service is no longer available.";
    TooManyRequests = 9646, 429, "There are too many recent requests. Try again momentarily.";
    PageIndexOutOfRange = 9650, 400, "The page index is out of range.";
    TooManyAssets = 9700, 400, "Too many assets specified in the request.";
    TooManyClientUserIds = 9701, 400, "Too many clientUserIds specified in the request.";
    TooManySerialNumbers = 9702, 400, "Too many serialNumbers specified in the request.";
    DuplicateAssets = 9703, 400, "Duplicate assets specified in the request.";
    DuplicateClientUserIds = 9704, 400, "Duplicate clientUserIds specified in the request.";
    DuplicateSerialNumbers = 9705, 400, "Duplicate serialNumbers specified in the request.";
    NotRevocable = 9706, 400, "The asset isn't revocable and can't be disassociated.";
    NotDeviceAssignable = 9707, 400, "The asset isn't device assignable.";
    EventNotFound = 9708, 400, "The event can't be found.";
    NotEnoughLicences = 9709, 400, "There aren't enough assets available to complete this association.";
    NotificationPairing = 9710, 400, "The notification URL and the notification auth token must be provided together.";
    NotificationTooLong = 9711, 400, "The notification URL or auth token exceeds the maximum length.";
    NotificationUrlInvalid = 9712, 400, "The notification URL isn't a valid HTTPS URL.";
    MdmMetadataTooLong = 9713, 400, "The MDM metadata exceeds the maximum length.";
    TooManyUsers = 9714, 400, "Too many users specified in the request.";
    DuplicateUsers = 9715, 400, "Duplicate users specified in the request.";
    UserAlreadyExists = 9716, 400, "A registered user with that clientUserId already exists.";
    InvalidEmail = 9717, 400, "The email address is invalid.";
    NoAssets = 9718, 400, "No assets specified in the request.";
    NoTargets = 9719, 400, "Either clientUserIds or serialNumbers must be specified.";
    NoUsers = 9720, 400, "No users specified in the request.";
    InvalidVersionId = 9721, 400, "The version ID is invalid.";
    BadAuthorizationHeader = 9722, 401, "The Authorization header must match the format 'Bearer {sToken}'.";
    MdmInfoIncomplete = 9723, 400, "The mdmInfo must include name, id and metadata.";
    MdmIdTooLong = 9724, 400, "The MDM ID exceeds the maximum length.";
    MdmNameTooLong = 9725, 400, "The MDM name exceeds the maximum length.";
    MethodNotSupported = 9726, 405, "The HTTP method isn't supported.";
    ContentTypeNotSupported = 9727, 415, "The Content-Type isn't supported.";
    NotificationUrlUnreachable = 9728, 400, "The provided notification URL is unreachable.";
    TemporarilyUnavailable = 9729, 503, "The service is temporarily unavailable.";
}

/// The numbers `GET service/config` lists in `errorCodes`, in Apple's Service
/// Config example: 9622 (answered, but only in the legacy list) and 9729 (HTTP
/// 503) are not in it; 9634, 9709 and 9716 are.
pub(crate) const SERVICE_CONFIG_CODES: &[Code] = &[
    Code::LoginRequired,
    Code::InvalidArgument,
    Code::Internal,
    Code::UserNotFound,
    Code::TokenExpired,
    Code::TokenRevoked,
    Code::ServiceGone,
    Code::TooManyRequests,
    Code::PageIndexOutOfRange,
    Code::TooManyAssets,
    Code::TooManyClientUserIds,
    Code::TooManySerialNumbers,
    Code::DuplicateAssets,
    Code::DuplicateClientUserIds,
    Code::DuplicateSerialNumbers,
    Code::NotRevocable,
    Code::NotDeviceAssignable,
    Code::EventNotFound,
    Code::NotEnoughLicences,
    Code::NotificationPairing,
    Code::NotificationTooLong,
    Code::NotificationUrlInvalid,
    Code::MdmMetadataTooLong,
    Code::TooManyUsers,
    Code::DuplicateUsers,
    Code::UserAlreadyExists,
    Code::InvalidEmail,
    Code::NoAssets,
    Code::NoTargets,
    Code::NoUsers,
    Code::InvalidVersionId,
    Code::BadAuthorizationHeader,
    Code::MdmInfoIncomplete,
    Code::MdmIdTooLong,
    Code::MdmNameTooLong,
    Code::MethodNotSupported,
    Code::ContentTypeNotSupported,
    Code::NotificationUrlUnreachable,
];

/// `errorInfo`: the ids an error is about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct ErrorInfo {
    /// Assets (`adamId`, `pricingParam`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) assets: Vec<AssetRef>,
    /// Users.
    #[serde(rename = "clientUserIds", skip_serializing_if = "Vec::is_empty")]
    pub(crate) client_user_ids: Vec<String>,
    /// Devices.
    #[serde(rename = "serialNumbers", skip_serializing_if = "Vec::is_empty")]
    pub(crate) serial_numbers: Vec<String>,
}

impl ErrorInfo {
    pub(crate) fn is_empty(&self) -> bool {
        self.assets.is_empty() && self.client_user_ids.is_empty() && self.serial_numbers.is_empty()
    }
}

/// An asset named in an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct AssetRef {
    #[serde(rename = "adamId")]
    pub(crate) adam_id: String,
    #[serde(rename = "pricingParam")]
    pub(crate) pricing_param: String,
}

/// A synchronous Apple error: the body and the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) code: Code,
    pub(crate) info: Option<ErrorInfo>,
}

impl ApiError {
    pub(crate) fn new(code: Code) -> Self {
        Self { code, info: None }
    }

    pub(crate) fn with_info(code: Code, info: ErrorInfo) -> Self {
        Self {
            code,
            info: (!info.is_empty()).then_some(info),
        }
    }

    pub(crate) fn users(code: Code, ids: Vec<String>) -> Self {
        Self::with_info(
            code,
            ErrorInfo {
                client_user_ids: ids,
                ..ErrorInfo::default()
            },
        )
    }

    pub(crate) fn serials(code: Code, ids: Vec<String>) -> Self {
        Self::with_info(
            code,
            ErrorInfo {
                serial_numbers: ids,
                ..ErrorInfo::default()
            },
        )
    }

    pub(crate) fn assets(code: Code, assets: Vec<AssetRef>) -> Self {
        Self::with_info(
            code,
            ErrorInfo {
                assets,
                ..ErrorInfo::default()
            },
        )
    }

    /// The JSON body: `{errorInfo?, errorMessage, errorNumber}`.
    pub(crate) fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&ErrorBody::new(self.code, self.info.as_ref()))
            .expect("error bodies serialize")
    }
}

/// ErrorResponse as Apple writes it (keys in alphabetical order).
#[derive(Debug, Serialize)]
pub(crate) struct ErrorBody<'a> {
    #[serde(rename = "errorInfo", skip_serializing_if = "Option::is_none")]
    pub(crate) error_info: Option<&'a ErrorInfo>,
    #[serde(rename = "errorMessage")]
    pub(crate) error_message: &'static str,
    #[serde(rename = "errorNumber")]
    pub(crate) error_number: u32,
}

impl<'a> ErrorBody<'a> {
    pub(crate) fn new(code: Code, info: Option<&'a ErrorInfo>) -> Self {
        Self {
            error_info: info,
            error_message: code.message(),
            error_number: code.number(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_unique_and_sorted() {
        let nums: Vec<u32> = Code::ALL.iter().map(|c| c.number()).collect();
        let mut sorted = nums.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(nums, sorted);
        assert_eq!(Code::TooManyRequests.status(), 429);
        assert_eq!(Code::ContentTypeNotSupported.status(), 415);
    }

    #[test]
    fn body_shape() {
        let e = ApiError::serials(Code::DuplicateSerialNumbers, vec!["A".into()]);
        let v: serde_json::Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!(v["errorNumber"], 9705);
        assert_eq!(v["errorInfo"]["serialNumbers"][0], "A");
        let plain: serde_json::Value =
            serde_json::from_slice(&ApiError::new(Code::LoginRequired).body()).unwrap();
        assert!(plain.get("errorInfo").is_none());
    }
}
