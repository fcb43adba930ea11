//! Install status per (location, holder, asset), from MDM command results.

use chrono::{DateTime, Utc};
use vppkit_core::{AssetKey, Holder, LocationId};

use crate::text_enum::text_enum;

text_enum!(
    /// What the MDM reports about installing an asset for a holder.
    InstallState, "install state", {
        /// The install command was handed to the MDM.
        Queued = "queued",
        /// The device acknowledged the command.
        Acknowledged = "acknowledged",
        /// The device answered NotNow; it will be retried.
        NotNow = "not_now",
        /// Installed.
        Installed = "installed",
        /// The command failed.
        Failed = "failed",
        /// Removed (RemoveApplication or RemoveMedia acknowledged).
        Removed = "removed",
    }
);

/// One install status.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct InstallRecord {
    /// The location.
    pub location: LocationId,
    /// The holder (device, or user for user-licensed assets).
    pub holder: Holder,
    /// The asset.
    pub asset: AssetKey,
    /// The state.
    pub state: InstallState,
    /// The MDM command uuid, if known.
    pub command_uuid: Option<String>,
    /// Details (error chain from the command result).
    pub detail: Option<serde_json::Value>,
    /// When it was reported.
    pub updated_at: DateTime<Utc>,
}

impl InstallRecord {
    /// Builds an install status.
    pub fn new(
        location: LocationId,
        holder: Holder,
        asset: AssetKey,
        state: InstallState,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            location,
            holder,
            asset,
            state,
            command_uuid: None,
            detail: None,
            updated_at: at,
        }
    }

    /// Sets the command uuid.
    pub fn with_command(mut self, command_uuid: impl Into<String>) -> Self {
        self.command_uuid = Some(command_uuid.into());
        self
    }

    /// Sets details.
    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = Some(detail);
        self
    }
}
