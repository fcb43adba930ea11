//! Release rules: what happens to a licence nobody wants any more. Books are never released.

use serde::{Deserialize, Serialize};

/// When the licence of an uninstalled app is released.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum UninstallRelease {
    /// Default. Send `RemoveApplication` first; release the licence in a later plan, once
    /// the device's inventory no longer lists the app (the removal was acknowledged). A
    /// device that reports no inventory is released with the removal.
    #[default]
    AfterRemoval,
    /// Release in the same plan as the removal command.
    WithRemoval,
    /// Remove the app but keep the licence.
    Never,
}

/// What happens to a licence whose holder left every policy of the asset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum ScopeRelease {
    /// Default, as Intune does: removing an assignment does not release the licence.
    #[default]
    Keep,
    /// Release in the next plan.
    Release,
    /// Release once the holder has been out of scope for this many days
    /// (`{"releaseAfterDays": 7}`).
    ReleaseAfterDays(u32),
}

/// What happens to licences of a holder that is gone (retired in, or missing from, the
/// directory).
///
/// Only what vppkit gave is taken back. Adopted licences (found at Apple: another MDM, a
/// person, licences that predate onboarding) are never released; a holder that has one is
/// not revoked (a revoke takes every revocable licence) but loses its reserved and active
/// licences asset by asset (`assets/disassociate`), and a VPP user holding one is not
/// retired. VPP users this manager did not create
/// ([`LicenceView::is_own_user`](crate::LicenceView::is_own_user)) are never retired,
/// revoked or disassociated for being gone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum GoneRelease {
    /// Default: take back the holder's revocable licences: `assets/revoke` when they are
    /// all ours, else `assets/disassociate` of ours only; for own VPP users, also retire
    /// the user unless it holds an adopted licence.
    #[default]
    Release,
    /// Keep the licences.
    Keep,
}

/// The release rules of a policy file. Every field has a documented default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ReleaseRules {
    /// On an Uninstall policy. Default: after the removal is acknowledged.
    pub on_uninstall: UninstallRelease,
    /// On leaving every policy's scope. Default: keep.
    pub on_out_of_scope: ScopeRelease,
    /// On a device marked retired in the directory, or missing from it. Default: release
    /// (what vppkit gave; adopted licences stay).
    pub on_device_removed: GoneRelease,
    /// On a user marked retired in the directory, or missing from it. Default: release
    /// and retire the VPP user, for users this manager created only.
    pub on_user_retired: GoneRelease,
}

impl ReleaseRules {
    /// Sets the Uninstall rule.
    pub fn with_on_uninstall(mut self, r: UninstallRelease) -> Self {
        self.on_uninstall = r;
        self
    }

    /// Sets the out-of-scope rule.
    pub fn with_on_out_of_scope(mut self, r: ScopeRelease) -> Self {
        self.on_out_of_scope = r;
        self
    }

    /// Sets the removed-device rule.
    pub fn with_on_device_removed(mut self, r: GoneRelease) -> Self {
        self.on_device_removed = r;
        self
    }

    /// Sets the retired-user rule.
    pub fn with_on_user_retired(mut self, r: GoneRelease) -> Self {
        self.on_user_retired = r;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_forms() {
        let r: ReleaseRules = serde_json::from_str(
            r#"{"onUninstall":"withRemoval","onOutOfScope":{"releaseAfterDays":7},"onDeviceRemoved":"keep"}"#,
        )
        .unwrap();
        assert_eq!(r.on_uninstall, UninstallRelease::WithRemoval);
        assert_eq!(r.on_out_of_scope, ScopeRelease::ReleaseAfterDays(7));
        assert_eq!(r.on_device_removed, GoneRelease::Keep);
        assert_eq!(r.on_user_retired, GoneRelease::Release);
        let d: ReleaseRules = serde_json::from_str("{}").unwrap();
        assert_eq!(d, ReleaseRules::default());
        assert!(serde_json::from_str::<ReleaseRules>(r#"{"onUninstal":"never"}"#).is_err());
    }
}
