//! Why the ledger refused an operation or an input.

use vppkit_core::{
    AssetKey, EventId, Holder, HoldingStatus, LocationId, ProductType, VppUserStatus,
};

use crate::EventKind;

/// An operation the ledger refused. Nothing changed when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The asset is not (or no longer) in the location.
    #[error("asset {asset} is not in this location")]
    UnknownAsset {
        /// The asset.
        asset: AssetKey,
    },
    /// Every licence that can be held is held or reserved.
    #[error("no licence of {asset} is free: {in_use} of {holdable} in use or reserved")]
    NoLicenceFree {
        /// The asset.
        asset: AssetKey,
        /// Licences that can be held (`total - retired`).
        holdable: u32,
        /// Holdings that use a licence (reserved, active, releasing, adopted).
        in_use: u64,
    },
    /// The holder already holds (or has reserved) the asset (invariant 2).
    #[error("{holder} already holds {asset} ({status})")]
    AlreadyHeld {
        /// The asset.
        asset: AssetKey,
        /// The holder.
        holder: Holder,
        /// The existing holding's status.
        status: HoldingStatus,
    },
    /// The holder does not hold the asset.
    #[error("{holder} does not hold {asset}")]
    NotHeld {
        /// The asset.
        asset: AssetKey,
        /// The holder.
        holder: Holder,
    },
    /// The holding is not in a status the operation applies to.
    #[error("cannot {operation} {asset} for {holder}: the holding is {status}")]
    WrongStatus {
        /// The asset.
        asset: AssetKey,
        /// The holder.
        holder: Holder,
        /// The holding's status.
        status: HoldingStatus,
        /// The refused operation (`confirm`, `roll back`, `release`, ...).
        operation: &'static str,
    },
    /// A device licence of an asset that is not device-assignable (books never are; invariant 5).
    #[error("{asset} ({product_type}) cannot be assigned to a device")]
    NotDeviceAssignable {
        /// The asset.
        asset: AssetKey,
        /// App or Book.
        product_type: ProductType,
    },
    /// Books are never released (invariant 5).
    #[error("{asset} is a book: book licences are never released")]
    BookNotReleasable {
        /// The asset.
        asset: AssetKey,
    },
    /// The asset's licences cannot be taken back.
    #[error("{asset} is not revocable")]
    NotRevocable {
        /// The asset.
        asset: AssetKey,
    },
    /// The VPP user is retired or deleted at Apple.
    #[error("{holder} is {status} at Apple and cannot receive licences")]
    UserInactive {
        /// The user.
        holder: Holder,
        /// Apple's status of the user.
        status: VppUserStatus,
    },
    /// The event id is already recorded for an operation.
    #[error("event {event_id} is already recorded")]
    EventAlreadyRecorded {
        /// The event.
        event_id: EventId,
    },
    /// An event of another kind than the one recorded.
    #[error("event {event_id} was recorded as {recorded:?}, reported as {reported:?}")]
    EventKindMismatch {
        /// The event.
        event_id: EventId,
        /// The kind recorded with the reservation or release.
        recorded: EventKind,
        /// The kind reported by Apple.
        reported: EventKind,
    },
    /// An operation given no holdings.
    #[error("the operation names no holding")]
    Empty,
    /// A count change that would leave the counts impossible.
    #[error("count change of {delta} on {asset} with total {total} leaves an impossible count")]
    CountOutOfRange {
        /// The asset.
        asset: AssetKey,
        /// Apple's total before the change.
        total: u32,
        /// The requested change.
        delta: i64,
    },
    /// The snapshot token is not the one open (another snapshot began, or it was finished).
    #[error("snapshot {generation} is not open")]
    SnapshotNotOpen {
        /// The token's generation.
        generation: u32,
    },
}

/// Why a journal could not be replayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The entries are not numbered 1, 2, 3 ... without gaps.
    #[error("journal entry {found} found where {expected} was expected")]
    SequenceGap {
        /// The next sequence number expected.
        expected: u64,
        /// The one found.
        found: u64,
    },
    /// An entry of another location.
    #[error("journal entry {seq} belongs to location {found}, not {expected}")]
    WrongLocation {
        /// The entry.
        seq: u64,
        /// The ledger's location.
        expected: LocationId,
        /// The entry's location.
        found: LocationId,
    },
    /// An entry that does not fit the state built so far (a corrupted or reordered journal).
    #[error("journal entry {seq} does not apply: {reason}")]
    Inapplicable {
        /// The entry.
        seq: u64,
        /// What does not fit.
        reason: String,
    },
}
