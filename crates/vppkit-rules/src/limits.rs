//! Apple's request-size limits from `GET service/config`.

use serde::{Deserialize, Serialize};

use crate::error::PlanError;

/// The request-size limits the planner splits batches by.
///
/// Deserializes straight from the `limits` object of Apple's `service/config`
/// answer (unknown keys are ignored, missing keys keep Apple's documented value):
///
/// ```
/// use vppkit_rules::Limits;
///
/// let limits: Limits = serde_json::from_str(r#"{"maxAssets": 10, "maxRequestPerSecond": 15}"#)?;
/// assert_eq!(limits.max_assets, 10);
/// assert_eq!(limits.max_serial_numbers, 1000);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct Limits {
    /// Assets per associate / disassociate request (`maxAssets`, 25).
    pub max_assets: usize,
    /// Serial numbers per associate / disassociate request (`maxSerialNumbers`, 1000).
    pub max_serial_numbers: usize,
    /// Client user ids per associate / disassociate request (`maxClientUserIds`, 1000).
    pub max_client_user_ids: usize,
    /// Serial numbers per revoke request (`maxRevokeSerialNumbers`, 100).
    pub max_revoke_serial_numbers: usize,
    /// Client user ids per revoke request (`maxRevokeClientUserIds`, 100).
    pub max_revoke_client_user_ids: usize,
    /// Users per create / update / retire request (`maxUsers`, 100).
    pub max_users: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self::apple()
    }
}

impl Limits {
    /// Apple's documented values: 25 assets, 1,000 serial numbers or client user ids per
    /// associate or disassociate, 100 per revoke, 100 users per user request.
    pub const fn apple() -> Self {
        Self {
            max_assets: 25,
            max_serial_numbers: 1000,
            max_client_user_ids: 1000,
            max_revoke_serial_numbers: 100,
            max_revoke_client_user_ids: 100,
            max_users: 100,
        }
    }

    /// Builds limits from explicit values, in the order of the fields.
    pub const fn new(
        max_assets: usize,
        max_serial_numbers: usize,
        max_client_user_ids: usize,
        max_revoke_serial_numbers: usize,
        max_revoke_client_user_ids: usize,
        max_users: usize,
    ) -> Self {
        Self {
            max_assets,
            max_serial_numbers,
            max_client_user_ids,
            max_revoke_serial_numbers,
            max_revoke_client_user_ids,
            max_users,
        }
    }

    /// Checks that every limit is at least 1.
    pub fn validate(&self) -> Result<(), PlanError> {
        let all = [
            ("maxAssets", self.max_assets),
            ("maxSerialNumbers", self.max_serial_numbers),
            ("maxClientUserIds", self.max_client_user_ids),
            ("maxRevokeSerialNumbers", self.max_revoke_serial_numbers),
            ("maxRevokeClientUserIds", self.max_revoke_client_user_ids),
            ("maxUsers", self.max_users),
        ];
        match all.iter().find(|(_, v)| *v == 0) {
            Some((name, _)) => Err(PlanError::ZeroLimit { name }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apple_defaults_and_validation() {
        let l = Limits::default();
        assert_eq!(l, Limits::new(25, 1000, 1000, 100, 100, 100));
        assert!(l.validate().is_ok());
        let bad = Limits {
            max_users: 0,
            ..Limits::apple()
        };
        assert_eq!(
            bad.validate(),
            Err(PlanError::ZeroLimit { name: "maxUsers" })
        );
        let parsed: Limits = serde_json::from_str(
            r#"{"maxAssets":25,"maxClientUserIds":500,"maxSerialNumbers":1000,"maxRevokeClientUserIds":100,
               "maxRevokeSerialNumbers":100,"maxUsers":100,"maxNotificationLength":512}"#,
        )
        .unwrap();
        assert_eq!(parsed.max_client_user_ids, 500);
    }
}
