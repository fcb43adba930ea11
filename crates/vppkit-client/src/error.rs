//! Errors: Apple's error numbers, the error body, and the client's own failures.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use vppkit_core::{AssetKey, ClientUserId, SerialNumber};

macro_rules! error_numbers {
    ($( $(#[$doc:meta])* $variant:ident = $num:literal ),+ $(,)?) => {
        /// An Apple error number (`errorNumber`). Every synchronous and asynchronous
        /// number of the v2 API, and the legacy (v1) numbers still met in practice,
        /// has a named variant; anything else is kept as [`ErrorNumber::Other`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum ErrorNumber {
            $( $(#[$doc])* $variant, )+
            /// 9630, 9631 or 9632 (legacy): too many identical recent calls.
            TooManyIdenticalCalls(i32),
            /// 9811 to 9818: subscription errors (subscriptions are out of scope).
            Subscription(i32),
            /// A number this crate does not know (Apple warns more may be added).
            Other(i32),
        }

        impl ErrorNumber {
            /// Every named number (without the ranged and `Other` variants).
            pub const NAMED: &'static [ErrorNumber] = &[$(ErrorNumber::$variant),+];

            /// Maps a wire number to its variant.
            pub fn from_number(number: i32) -> Self {
                match number {
                    $( $num => ErrorNumber::$variant, )+
                    9630..=9632 => ErrorNumber::TooManyIdenticalCalls(number),
                    9811..=9818 => ErrorNumber::Subscription(number),
                    other => ErrorNumber::Other(other),
                }
            }

            /// The wire number.
            pub fn number(self) -> i32 {
                match self {
                    $( ErrorNumber::$variant => $num, )+
                    ErrorNumber::TooManyIdenticalCalls(n)
                    | ErrorNumber::Subscription(n)
                    | ErrorNumber::Other(n) => n,
                }
            }
        }
    };
}

error_numbers! {
    /// 9600 (legacy): a required argument is missing.
    MissingArgument = 9600,
    /// 9601: login required (no credentials). HTTP 401.
    LoginRequired = 9601,
    /// 9602: invalid argument. HTTP 400.
    InvalidArgument = 9602,
    /// 9603: internal error at Apple (synchronous HTTP 500, or asynchronous).
    InternalError = 9603,
    /// 9604 (legacy): result not found.
    ResultNotFound = 9604,
    /// 9605 (legacy): the storefront is incorrect.
    StorefrontIncorrect = 9605,
    /// 9607 (legacy): the licence is irrevocable.
    LicenseIrrevocable = 9607,
    /// 9609: the registered user was not found (HTTP 400, also in status failures).
    RegisteredUserNotFound = 9609,
    /// 9610 (legacy, reported by devices during installs): licence not found.
    LicenseNotFound = 9610,
    /// 9612 (legacy): claim job failed.
    ClaimJobFailed = 9612,
    /// 9613 (legacy): unclaim job failed.
    UnclaimJobFailed = 9613,
    /// 9616 (legacy): licence already assigned.
    LicenseAlreadyAssigned = 9616,
    /// 9618 (legacy): user already retired.
    UserAlreadyRetired = 9618,
    /// 9619 (legacy): licence not associated.
    LicenseNotAssociated = 9619,
    /// 9620 (legacy): user already deleted.
    UserAlreadyDeleted = 9620,
    /// 9621: the content token has expired. HTTP 401.
    TokenExpired = 9621,
    /// 9622: invalid authentication token (answered with HTTP 401, or 200).
    InvalidAuthenticationToken = 9622,
    /// 9623: invalid APNs token. HTTP 400.
    InvalidApnsToken = 9623,
    /// 9624 (legacy): licence refunded.
    LicenseRefunded = 9624,
    /// 9625: the server has revoked the content token. HTTP 401.
    TokenRevoked = 9625,
    /// 9626 (legacy): licence assigned to another user.
    LicenseAssignedToAnotherUser = 9626,
    /// 9627 (legacy): disassociation refused because of frequent reassociation.
    FrequentReassociation = 9627,
    /// 9628 (legacy): not eligible for device assignment.
    NotEligibleForDeviceAssignment = 9628,
    /// 9634: the service is no longer available. HTTP 410.
    ServiceNoLongerAvailable = 9634,
    /// 9635 (asynchronous): could not associate the Apple Account with this user.
    AppleAccountAssociationFailed = 9635,
    /// 9636 (legacy): no registered user.
    NoRegisteredUser = 9636,
    /// 9637: not allowed for facilitator accounts. HTTP 403.
    NotAllowedForFacilitator = 9637,
    /// 9641 (asynchronous): the Apple Account is already associated with another user.
    AppleAccountAlreadyAssociated = 9641,
    /// 9642 (legacy): the VPP manager account must accept new terms.
    TermsNotAccepted = 9642,
    /// 9643 (legacy): licence locked by a pending transfer.
    LicenseLockedByTransfer = 9643,
    /// 9644 (asynchronous): maintenance mode.
    MaintenanceMode = 9644,
    /// 9646: too many recent requests; back off. HTTP 429.
    TooManyRequests = 9646,
    /// 9647: not supported for legacy tokens. HTTP 403.
    NotSupportedForLegacyTokens = 9647,
    /// 9649 (legacy): a page index is required with a request id.
    PageIndexRequiredWithRequestId = 9649,
    /// 9650: page index out of range. HTTP 400.
    PageIndexOutOfRange = 9650,
    /// 9700: too many assets in the request. HTTP 400.
    TooManyAssets = 9700,
    /// 9701: too many clientUserIds. HTTP 400.
    TooManyClientUserIds = 9701,
    /// 9702: too many serialNumbers. HTTP 400.
    TooManySerialNumbers = 9702,
    /// 9703: duplicate assets. HTTP 400.
    DuplicateAssets = 9703,
    /// 9704: duplicate clientUserIds. HTTP 400.
    DuplicateClientUserIds = 9704,
    /// 9705: duplicate serialNumbers. HTTP 400.
    DuplicateSerialNumbers = 9705,
    /// 9706: the asset is not revocable. HTTP 400.
    AssetNotRevocable = 9706,
    /// 9707: the asset is not device-assignable. HTTP 400.
    AssetNotDeviceAssignable = 9707,
    /// 9708: eventId not found. HTTP 400.
    EventNotFound = 9708,
    /// 9709 (asynchronous): not enough licences available.
    NotEnoughLicenses = 9709,
    /// 9710: notification URL and auth token must be given together. HTTP 400.
    NotificationUrlAndTokenTogether = 9710,
    /// 9711: notification URL or auth token too long. HTTP 400.
    NotificationValueTooLong = 9711,
    /// 9712: the notification URL is not a valid HTTPS URL. HTTP 400.
    NotificationUrlInvalid = 9712,
    /// 9713: MDM metadata too long. HTTP 400.
    MdmMetadataTooLong = 9713,
    /// 9714: too many users. HTTP 400.
    TooManyUsers = 9714,
    /// 9715: duplicate users. HTTP 400.
    DuplicateUsers = 9715,
    /// 9716 (asynchronous): a registered user with that clientUserId already exists.
    UserAlreadyExists = 9716,
    /// 9717: invalid email. HTTP 400.
    InvalidEmail = 9717,
    /// 9718: no asset in the request. HTTP 400.
    NoAssets = 9718,
    /// 9719: neither clientUserIds nor serialNumbers. HTTP 400.
    NoTargets = 9719,
    /// 9720: no users in the request. HTTP 400.
    NoUsers = 9720,
    /// 9721: invalid version id. HTTP 400.
    InvalidVersionId = 9721,
    /// 9722: the Authorization header is not `Bearer {sToken}`. HTTP 401.
    InvalidAuthorizationHeader = 9722,
    /// 9723: mdmInfo needs id, name and metadata. HTTP 400.
    MdmInfoIncomplete = 9723,
    /// 9724: MDM id too long. HTTP 400.
    MdmIdTooLong = 9724,
    /// 9725: MDM name too long. HTTP 400.
    MdmNameTooLong = 9725,
    /// 9726: HTTP method not supported. HTTP 405.
    MethodNotSupported = 9726,
    /// 9727: Content-Type not supported. HTTP 415.
    ContentTypeNotSupported = 9727,
    /// 9728: the notification URL is unreachable. HTTP 400.
    NotificationUrlUnreachable = 9728,
    /// 9729: temporarily unavailable (v2, HTTP 503; "server has moved" in v1).
    TemporarilyUnavailable = 9729,
}

/// Why a content token does not work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenProblem {
    /// 9621: past its expiry.
    Expired,
    /// 9625: revoked (a newer token was downloaded, or an admin revoked it).
    Revoked,
    /// 9622, 9601 or 9722: unknown, garbled, missing or malformed.
    Invalid,
}

impl TokenProblem {
    /// The matching core token state.
    pub fn token_state(self) -> vppkit_core::TokenState {
        match self {
            TokenProblem::Expired => vppkit_core::TokenState::Expired,
            TokenProblem::Revoked => vppkit_core::TokenState::Revoked,
            TokenProblem::Invalid => vppkit_core::TokenState::Invalid,
        }
    }
}

impl ErrorNumber {
    /// Whether waiting and sending the same request again can succeed:
    /// 9646 (throttled), 9603 (internal error), 9729 (temporarily unavailable),
    /// 9644 (maintenance) and the legacy 9630-9632 (too many identical calls).
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorNumber::TooManyRequests
                | ErrorNumber::InternalError
                | ErrorNumber::TemporarilyUnavailable
                | ErrorNumber::MaintenanceMode
                | ErrorNumber::TooManyIdenticalCalls(_)
        )
    }

    /// Whether this number says the content token does not work.
    pub fn token_problem(self) -> Option<TokenProblem> {
        match self {
            ErrorNumber::TokenExpired => Some(TokenProblem::Expired),
            ErrorNumber::TokenRevoked => Some(TokenProblem::Revoked),
            ErrorNumber::InvalidAuthenticationToken
            | ErrorNumber::LoginRequired
            | ErrorNumber::InvalidAuthorizationHeader => Some(TokenProblem::Invalid),
            _ => None,
        }
    }

    /// Whether Apple lists this number as asynchronous (status failures and
    /// notifications) rather than as a synchronous answer.
    pub fn is_asynchronous(self) -> bool {
        matches!(
            self,
            ErrorNumber::AppleAccountAssociationFailed
                | ErrorNumber::AppleAccountAlreadyAssociated
                | ErrorNumber::MaintenanceMode
                | ErrorNumber::NotEnoughLicenses
                | ErrorNumber::UserAlreadyExists
        )
    }
}

impl From<i32> for ErrorNumber {
    fn from(value: i32) -> Self {
        ErrorNumber::from_number(value)
    }
}

impl From<ErrorNumber> for i32 {
    fn from(value: ErrorNumber) -> Self {
        value.number()
    }
}

impl fmt::Display for ErrorNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.number())
    }
}

impl Serialize for ErrorNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i32(self.number())
    }
}

impl<'de> Deserialize<'de> for ErrorNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        i32::deserialize(deserializer).map(ErrorNumber::from_number)
    }
}

/// What an error names as failed (`errorInfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ErrorInfo {
    /// Assets that failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assets: Vec<AssetKey>,
    /// Users that failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub client_user_ids: Vec<ClientUserId>,
    /// Devices that failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub serial_numbers: Vec<SerialNumber>,
}

/// Apple's ErrorResponse: a number, a message and what failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ApiError {
    /// `errorNumber`.
    #[serde(rename = "errorNumber")]
    pub number: ErrorNumber,
    /// `errorMessage` (Apple's wording).
    #[serde(rename = "errorMessage")]
    pub message: String,
    /// `errorInfo`, when Apple names what failed.
    #[serde(rename = "errorInfo", skip_serializing_if = "Option::is_none")]
    pub info: Option<ErrorInfo>,
}

impl ApiError {
    /// Builds an error body.
    pub fn new(number: impl Into<ErrorNumber>, message: impl Into<String>) -> Self {
        Self {
            number: number.into(),
            message: message.into(),
            info: None,
        }
    }

    /// Adds `errorInfo`.
    pub fn with_info(mut self, info: ErrorInfo) -> Self {
        self.info = Some(info);
        self
    }
}

impl<'de> Deserialize<'de> for ApiError {
    /// Lenient on `errorInfo`: an error is never lost because the ids it names do
    /// not pass validation (they are dropped with a warning instead).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            #[serde(rename = "errorNumber")]
            number: i32,
            #[serde(rename = "errorMessage", default)]
            message: Option<String>,
            #[serde(rename = "errorInfo", default)]
            info: Option<serde_json::Value>,
        }
        let raw = Raw::deserialize(deserializer)?;
        let info = match raw.info {
            None | Some(serde_json::Value::Null) => None,
            Some(value) => match serde_json::from_value::<ErrorInfo>(value) {
                Ok(info) => Some(info),
                Err(e) => {
                    tracing::warn!(
                        error_number = raw.number,
                        "unreadable errorInfo dropped: {e}"
                    );
                    None
                }
            },
        };
        Ok(ApiError {
            number: ErrorNumber::from_number(raw.number),
            message: raw.message.unwrap_or_default(),
            info,
        })
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Apple error {}: {}", self.number, self.message)
    }
}

impl std::error::Error for ApiError {}

/// Everything a call can fail with. No variant ever carries a content token or a
/// notification auth token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Apple answered with an error body (whatever the HTTP status, 200 included).
    #[error("{method} {path}: HTTP {status}: {error}")]
    Api {
        /// The HTTP method.
        method: &'static str,
        /// The endpoint path.
        path: String,
        /// HTTP status of the answer.
        status: u16,
        /// The error body.
        error: Box<ApiError>,
        /// `Retry-After`, when the answer carried one.
        retry_after: Option<Duration>,
    },
    /// A non-success HTTP status without an Apple error body (a proxy's 502, say).
    #[error("{method} {path}: HTTP {status} without an Apple error body")]
    Http {
        /// The HTTP method.
        method: &'static str,
        /// The endpoint path.
        path: String,
        /// HTTP status.
        status: u16,
        /// `Retry-After`, when the answer carried one.
        retry_after: Option<Duration>,
        /// The start of the body (never holds a secret: Apple error pages only).
        body: String,
    },
    /// The request did not get an answer (connection, TLS, timeout). For a GET.
    #[error("{method} {path}: transport error: {source}")]
    Transport {
        /// The HTTP method.
        method: &'static str,
        /// The endpoint path.
        path: String,
        /// The underlying error.
        #[source]
        source: TransportError,
    },
    /// A write (POST) was sent but its answer was lost: Apple may or may not have
    /// acted on it. Never resend blindly: check event status or assignments first.
    #[error("{method} {path}: outcome unknown, check event status or assignments before resending: {source}")]
    OutcomeUnknown {
        /// The HTTP method.
        method: &'static str,
        /// The endpoint path.
        path: String,
        /// What went wrong after the request was sent.
        #[source]
        source: Box<Error>,
    },
    /// An answer that does not have the documented shape.
    #[error("{method} {path}: unexpected answer shape: {source}")]
    Decode {
        /// The HTTP method.
        method: &'static str,
        /// The endpoint path.
        path: String,
        /// The parse error.
        #[source]
        source: DecodeError,
    },
    /// A record of a page could not be read, and the client was built with
    /// [`ClientBuilder::strict_records`](crate::ClientBuilder::strict_records)
    /// (otherwise it is skipped and reported in [`Page::skipped`](crate::Page::skipped)).
    #[error("GET {path}: page {page}: record {list}[{position}] cannot be read: {reason}")]
    Record {
        /// The endpoint path.
        path: String,
        /// The page index.
        page: u32,
        /// The list the record was in.
        list: &'static str,
        /// Its position in the list.
        position: usize,
        /// The parse error.
        reason: String,
    },
    /// The data changed during a paginated walk (`versionId` differs from the first page).
    #[error("{path}: versionId changed during the walk at page {page} (first {expected:?}, now {found:?})")]
    VersionChanged {
        /// The endpoint path.
        path: String,
        /// The page that showed the change.
        page: u32,
        /// The first page's `versionId`.
        expected: Option<String>,
        /// This page's `versionId`.
        found: Option<String>,
    },
    /// Pages that do not follow each other (`nextPageIndex` is not the next page,
    /// or a page came back with another index).
    #[error("{path}: pagination out of order at page {page}: {detail}")]
    Pagination {
        /// The endpoint path.
        path: String,
        /// The page index concerned.
        page: u32,
        /// What was wrong.
        detail: String,
    },
    /// The call needs a content token and this client has none.
    #[error("this call needs a content token; the client was built without one")]
    NoToken,
    /// A request this client refuses to send (bad input, bad configuration).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A notification body that is not a notification.
    #[error("not a valid notification: {0}")]
    Notification(String),
}

impl Error {
    /// Apple's error body, if Apple sent one.
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            Error::Api { error, .. } => Some(error),
            Error::OutcomeUnknown { source, .. } => source.api_error(),
            _ => None,
        }
    }

    /// Apple's error number, if Apple sent one.
    pub fn error_number(&self) -> Option<ErrorNumber> {
        self.api_error().map(|e| e.number)
    }

    /// The HTTP status of the answer, if there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } | Error::Http { status, .. } => Some(*status),
            Error::OutcomeUnknown { source, .. } => source.status(),
            Error::Transport { source, .. } => source.status(),
            _ => None,
        }
    }

    /// `Retry-After` as a duration, when the answer carried one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Api { retry_after, .. } | Error::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether the same request may succeed later: Apple's retryable numbers, HTTP
    /// 429 and 5xx, and transport failures of reads. An [`Error::OutcomeUnknown`]
    /// is not: it needs a check first.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Api { error, status, .. } => {
                error.number.is_retryable() || *status == 429 || *status == 503
            }
            Error::Http { status, .. } => *status == 429 || (500..600).contains(status),
            Error::Transport { .. } => true,
            _ => false,
        }
    }

    /// Whether the error says the content token does not work, and how.
    pub fn token_problem(&self) -> Option<TokenProblem> {
        self.error_number().and_then(ErrorNumber::token_problem)
    }

    /// Whether this is a lost answer to a write.
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, Error::OutcomeUnknown { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip() {
        for n in ErrorNumber::NAMED {
            assert_eq!(ErrorNumber::from_number(n.number()), *n);
            assert!(!matches!(n, ErrorNumber::Other(_)));
        }
        assert_eq!(
            ErrorNumber::from_number(9631),
            ErrorNumber::TooManyIdenticalCalls(9631)
        );
        assert_eq!(
            ErrorNumber::from_number(9815),
            ErrorNumber::Subscription(9815)
        );
        assert_eq!(ErrorNumber::from_number(1234), ErrorNumber::Other(1234));
        assert_eq!(ErrorNumber::Other(1234).number(), 1234);
    }

    #[test]
    fn every_documented_number_is_named() {
        let sync = [
            9601, 9602, 9603, 9609, 9621, 9623, 9625, 9634, 9637, 9646, 9647, 9650, 9700, 9701,
            9702, 9703, 9704, 9705, 9706, 9707, 9708, 9710, 9711, 9712, 9713, 9714, 9715, 9717,
            9718, 9719, 9720, 9721, 9722, 9723, 9724, 9725, 9726, 9727, 9728, 9729,
        ];
        let asynchronous = [9603, 9635, 9641, 9644, 9709, 9716, 9609];
        let legacy = [
            9600, 9604, 9605, 9607, 9610, 9612, 9613, 9616, 9618, 9619, 9620, 9622, 9624, 9626,
            9627, 9628, 9636, 9642, 9643, 9649,
        ];
        for n in sync.iter().chain(&asynchronous).chain(&legacy) {
            assert!(
                !matches!(ErrorNumber::from_number(*n), ErrorNumber::Other(_)),
                "{n} has no name"
            );
        }
        for n in 9811..=9818 {
            assert!(matches!(
                ErrorNumber::from_number(n),
                ErrorNumber::Subscription(_)
            ));
        }
        for n in [9635, 9641, 9644, 9709, 9716] {
            assert!(ErrorNumber::from_number(n).is_asynchronous(), "{n}");
        }
    }

    #[test]
    fn classification() {
        assert_eq!(
            ErrorNumber::TokenExpired.token_problem(),
            Some(TokenProblem::Expired)
        );
        assert_eq!(
            ErrorNumber::TokenRevoked.token_problem(),
            Some(TokenProblem::Revoked)
        );
        for n in [9622, 9601, 9722] {
            assert_eq!(
                ErrorNumber::from_number(n).token_problem(),
                Some(TokenProblem::Invalid)
            );
        }
        assert_eq!(ErrorNumber::TooManyRequests.token_problem(), None);
        assert!(ErrorNumber::TooManyRequests.is_retryable());
        assert!(ErrorNumber::TemporarilyUnavailable.is_retryable());
        assert!(!ErrorNumber::NoAssets.is_retryable());
        assert_eq!(
            TokenProblem::Revoked.token_state(),
            vppkit_core::TokenState::Revoked
        );
    }

    #[test]
    fn error_body_parses_leniently() {
        let e: ApiError = serde_json::from_str(
            r#"{"errorNumber":9609,"errorMessage":"Unable to find the registered user.","errorInfo":{"clientUserIds":["u-unknown"]}}"#,
        )
        .unwrap();
        assert_eq!(e.number, ErrorNumber::RegisteredUserNotFound);
        assert_eq!(e.info.unwrap().client_user_ids[0].as_str(), "u-unknown");
        let e: ApiError = serde_json::from_str(
            r#"{"errorNumber":9709,"errorMessage":"x","errorInfo":{"serialNumbers":["bad serial with spaces"]}}"#,
        )
        .unwrap();
        assert_eq!(e.number, ErrorNumber::NotEnoughLicenses);
        // Serial numbers Apple names are kept as Apple sent them.
        assert_eq!(
            e.info.unwrap().serial_numbers[0].as_str(),
            "bad serial with spaces"
        );
        let e: ApiError = serde_json::from_str(r#"{"errorNumber":42}"#).unwrap();
        assert_eq!(e.number, ErrorNumber::Other(42));
        assert_eq!(e.message, "");
    }
}

/// Why a request got no answer (connection refused, TLS, timeout). vppkit's own
/// type, so an upgrade of the HTTP stack is not a change of this API; the HTTP
/// library's error stays reachable as [`std::error::Error::source`].
#[derive(Debug)]
pub struct TransportError {
    inner: reqwest::Error,
}

impl TransportError {
    pub(crate) fn new(inner: reqwest::Error) -> Self {
        Self {
            inner: inner.without_url(),
        }
    }

    /// Whether the connection was never made (nothing reached Apple).
    pub fn is_connect(&self) -> bool {
        self.inner.is_connect()
    }

    /// Whether it timed out.
    pub fn is_timeout(&self) -> bool {
        self.inner.is_timeout()
    }

    /// The HTTP status, when there was one.
    pub fn status(&self) -> Option<u16> {
        self.inner.status().map(|s| s.as_u16())
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.inner)
    }
}

/// Why an answer could not be read (not the documented shape). vppkit's own
/// type; the JSON parser's error stays reachable as [`std::error::Error::source`].
#[derive(Debug)]
pub struct DecodeError {
    inner: serde_json::Error,
}

impl DecodeError {
    pub(crate) fn new(inner: serde_json::Error) -> Self {
        Self { inner }
    }

    /// The line of the answer where reading failed (1-based; 0 when unknown).
    pub fn line(&self) -> usize {
        self.inner.line()
    }

    /// The column of that line (1-based; 0 when unknown).
    pub fn column(&self) -> usize {
        self.inner.column()
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.inner)
    }
}
