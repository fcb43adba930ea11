//! The journal: append-only entries that explain every change of the ledger.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vppkit_core::{
    Asset, AssetCounts, AssetKey, EventId, Holder, HoldingStatus, LocationId, VppUser,
    VppUserStatus,
};

use crate::Cause;

/// One change of the ledger with its sequence number, time and cause (invariant 3).
///
/// Entries are produced by the [`Ledger`](crate::Ledger) operations; the caller persists them
/// (the store keeps them as JSON with [`JournalEntry::asset`], [`JournalEntry::holder`] and the
/// cause as columns). [`Ledger::replay`](crate::Ledger::replay) rebuilds the state from them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct JournalEntry {
    /// Position in the location's journal: 1, 2, 3 ... without gaps.
    pub seq: u64,
    /// When it happened (given by the caller; the ledger has no clock).
    pub at: DateTime<Utc>,
    /// The location (content token) the entry belongs to.
    pub location: LocationId,
    /// Why it happened.
    pub cause: Cause,
    /// What changed.
    pub change: Change,
    /// The asset's accounting before the change (`None`: the asset did not exist, or the entry
    /// is not about an asset).
    pub before: Option<AssetTally>,
    /// The asset's accounting after the change (`None`: the asset was removed, or the entry is
    /// not about an asset).
    pub after: Option<AssetTally>,
}

impl JournalEntry {
    /// The asset the entry is about, if any.
    pub fn asset(&self) -> Option<&AssetKey> {
        match &self.change {
            Change::AssetChanged { asset, .. } => Some(&asset.key),
            Change::AssetRemoved { asset } | Change::Holding { asset, .. } => Some(asset),
            Change::User { .. } => None,
        }
    }

    /// The holder the entry is about, if any (a user entry names the user as a holder).
    pub fn holder(&self) -> Option<Holder> {
        match &self.change {
            Change::Holding { holder, .. } => Some(holder.clone()),
            Change::User { user, .. } => Some(Holder::User(user.client_user_id.clone())),
            Change::AssetChanged { .. } | Change::AssetRemoved { .. } => None,
        }
    }
}

/// One asset's accounting at a moment: Apple's counts and the ledger's holdings by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AssetTally {
    /// Apple's counts (total, assigned, available, retired).
    pub apple: AssetCounts,
    /// Holdings reserved for an operation in flight.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reserved: u32,
    /// Holdings confirmed by Apple for our own operation.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub active: u32,
    /// Holdings whose release (disassociate or revoke) is in flight.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub releasing: u32,
    /// Holdings found at Apple without our action.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub adopted: u32,
}

/// Zero counts are left out of an entry's JSON (a first sync journals a million
/// entries); they read back as zero.
fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl AssetTally {
    /// Holdings that use a licence: reserved + active + releasing + adopted.
    pub fn in_use(&self) -> u64 {
        u64::from(self.reserved)
            + u64::from(self.active)
            + u64::from(self.releasing)
            + u64::from(self.adopted)
    }

    /// Licences that can still be reserved: `holdable - in_use`, never negative; unlimited
    /// (free) assets never run short.
    pub fn free(&self) -> u64 {
        if self.apple.is_unlimited() {
            return u64::from(self.apple.holdable());
        }
        u64::from(self.apple.holdable()).saturating_sub(self.in_use())
    }
}

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Change {
    /// An asset appeared or its properties or counts changed; `asset` is the new value.
    AssetChanged {
        /// The asset as it is now.
        asset: Asset,
        /// Why its counts moved.
        reason: AssetReason,
    },
    /// An asset Apple no longer lists, with no holding left, was dropped.
    AssetRemoved {
        /// The asset.
        asset: AssetKey,
    },
    /// A holding appeared, changed status, or went away.
    Holding {
        /// The asset.
        asset: AssetKey,
        /// The holder.
        holder: Holder,
        /// Status before (`None`: there was no holding).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<HoldingStatus>,
        /// Status after (`None`: the holding is gone).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<HoldingStatus>,
        /// What happened.
        reason: HoldingReason,
        /// The Apple operation in flight for this holding after the change, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event: Option<PendingEvent>,
    },
    /// A VPP user appeared or changed.
    User {
        /// The user as it is now.
        user: VppUser,
        /// Status before (`None`: unknown until now).
        before: Option<VppUserStatus>,
    },
}

/// Why an asset's counts or properties changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AssetReason {
    /// First seen.
    Added,
    /// More licences (purchase).
    Purchased,
    /// Fewer licences (refund).
    Refunded,
    /// Licences moved to or from another location.
    Transferred,
    /// A sync found other counts or properties without a change of the total.
    Synced,
}

/// What happened to a holding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum HoldingReason {
    /// Reserved for an associate call (no holding -> reserved).
    Reserved,
    /// An Apple event id was recorded for the operation in flight (status unchanged).
    EventRecorded,
    /// Apple confirmed the association (reserved -> active).
    Confirmed,
    /// The association failed or was abandoned (reserved -> none).
    RolledBack,
    /// A disassociate call is starting (active or adopted -> releasing).
    ReleaseStarted,
    /// A revoke call is starting (active or adopted -> releasing).
    RevokeStarted,
    /// Apple confirmed the release (releasing, active or adopted -> none).
    Released,
    /// The release failed; the licence is still held (releasing -> active).
    ReleaseCancelled,
    /// Apple has it and we did not ask for it (none -> adopted).
    Adopted,
    /// Apple no longer has a holding we thought confirmed (active or adopted -> none).
    Lost,
}

/// The Apple operation in flight for a holding.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct PendingEvent {
    /// Apple's `eventId`.
    pub event_id: EventId,
    /// What the operation does.
    pub kind: EventKind,
}

impl PendingEvent {
    /// Builds a pending event reference.
    pub fn new(event_id: EventId, kind: EventKind) -> Self {
        Self { event_id, kind }
    }
}

/// The kind of an asynchronous licence operation (`eventType` / notification `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum EventKind {
    /// `assets/associate`.
    Associate,
    /// `assets/disassociate`.
    Disassociate,
    /// `assets/revoke`.
    Revoke,
}

impl EventKind {
    /// Whether the operation takes licences back.
    pub fn releases(self) -> bool {
        !matches!(self, EventKind::Associate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_is_never_negative_and_unlimited_never_runs_short() {
        let mut t = AssetTally {
            apple: AssetCounts::new(10, 0, 10, 3),
            reserved: 2,
            active: 3,
            releasing: 1,
            adopted: 1,
        };
        assert_eq!(t.in_use(), 7);
        assert_eq!(t.free(), 0);
        t.adopted = 5;
        assert_eq!(t.free(), 0);
        t.apple = AssetCounts::new(vppkit_core::UNLIMITED_COUNT, 0, 0, 0);
        assert_eq!(t.free(), u64::from(vppkit_core::UNLIMITED_COUNT));
    }

    #[test]
    fn event_kinds() {
        assert!(!EventKind::Associate.releases());
        assert!(EventKind::Disassociate.releases() && EventKind::Revoke.releases());
        assert_eq!(
            serde_json::to_string(&EventKind::Disassociate).unwrap(),
            "\"DISASSOCIATE\""
        );
    }
}
