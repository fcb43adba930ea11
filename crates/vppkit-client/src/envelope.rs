//! The envelope Apple puts on every authenticated answer.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vppkit_core::{MdmInfo, Uid};

/// `uId`, `tokenExpirationDate` and `mdmInfo`, as carried by every authenticated
/// answer. The engine reads it on each call to notice an expiring token or a token
/// claimed by another MDM.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Envelope {
    /// The organisational unit (`uId`).
    #[serde(rename = "uId", default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<Uid>,
    /// When the token expires (`tokenExpirationDate`).
    #[serde(
        default,
        deserialize_with = "crate::serde_util::opt_date",
        serialize_with = "crate::serde_util::ser_opt_date",
        skip_serializing_if = "Option::is_none"
    )]
    pub token_expiration_date: Option<DateTime<Utc>>,
    /// The MDM that claimed the token, once one did (`mdmInfo`).
    #[serde(
        default,
        deserialize_with = "crate::serde_util::opt_mdm_info",
        skip_serializing_if = "Option::is_none"
    )]
    pub mdm_info: Option<MdmInfo>,
}

impl Envelope {
    /// Builds an envelope.
    pub fn new(
        uid: Option<Uid>,
        token_expiration_date: Option<DateTime<Utc>>,
        mdm_info: Option<MdmInfo>,
    ) -> Self {
        Self {
            uid,
            token_expiration_date,
            mdm_info,
        }
    }

    /// Who claims the token, compared with our own `mdmInfo.id`.
    pub fn claim_status(&self, our_mdm_id: &str) -> ClaimStatus {
        match &self.mdm_info {
            None => ClaimStatus::Unclaimed,
            Some(info) if info.id == our_mdm_id => ClaimStatus::Ours,
            Some(info) => ClaimStatus::Other(info.clone()),
        }
    }
}

/// Whether a token is claimed, and by whom.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClaimStatus {
    /// No `mdmInfo` on the answer: nobody has claimed the token.
    Unclaimed,
    /// Our own `mdmInfo.id`.
    Ours,
    /// Another MDM wrote its `mdmInfo` (last writer wins at Apple).
    Other(MdmInfo),
}

impl ClaimStatus {
    /// Whether another MDM holds the claim.
    pub fn is_other(&self) -> bool {
        matches!(self, ClaimStatus::Other(_))
    }
}

/// An authenticated answer: the typed body and the envelope.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ApiResponse<T> {
    /// The endpoint's own fields.
    pub body: T,
    /// `uId`, `tokenExpirationDate`, `mdmInfo`.
    pub envelope: Envelope,
}

impl<T> ApiResponse<T> {
    /// Builds an answer.
    pub fn new(body: T, envelope: Envelope) -> Self {
        Self { body, envelope }
    }

    /// Maps the body, keeping the envelope.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> ApiResponse<U> {
        ApiResponse {
            body: f(self.body),
            envelope: self.envelope,
        }
    }

    /// The body, dropping the envelope.
    pub fn into_body(self) -> T {
        self.body
    }
}

/// Declares a private wire struct with the envelope fields appended, and a method
/// splitting it into `(fields, Envelope)`.
macro_rules! enveloped {
    ($(#[$meta:meta])* $vis:vis struct $name:ident { $($body:tt)* }) => {
        $(#[$meta])*
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        $vis struct $name {
            $($body)*
            #[serde(rename = "uId", default)]
            uid: Option<vppkit_core::Uid>,
            #[serde(default, deserialize_with = "crate::serde_util::opt_date")]
            token_expiration_date: Option<chrono::DateTime<chrono::Utc>>,
            #[serde(default, deserialize_with = "crate::serde_util::opt_mdm_info")]
            mdm_info: Option<vppkit_core::MdmInfo>,
        }

        impl $name {
            #[allow(dead_code)]
            fn take_envelope(&mut self) -> crate::Envelope {
                crate::Envelope::new(
                    self.uid.take(),
                    self.token_expiration_date.take(),
                    self.mdm_info.take(),
                )
            }
        }
    };
}
pub(crate) use enveloped;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_status() {
        let mut env = Envelope::default();
        assert_eq!(env.claim_status("me"), ClaimStatus::Unclaimed);
        env.mdm_info = Some(MdmInfo::new_unchecked("me", "n", "m"));
        assert_eq!(env.claim_status("me"), ClaimStatus::Ours);
        assert!(env.claim_status("other").is_other());
    }

    #[test]
    fn parses_apple_forms() {
        let env: Envelope = serde_json::from_str(
            r#"{"uId":"981060278089131045","tokenExpirationDate":"2023-09-26T08:30:39+0000","extra":1}"#,
        )
        .unwrap();
        assert_eq!(env.uid.unwrap().as_str(), "981060278089131045");
        assert_eq!(
            vppkit_core::format_apple_datetime(env.token_expiration_date.unwrap()),
            "2023-09-26T08:30:39+0000"
        );
        assert!(env.mdm_info.is_none());
    }
}
