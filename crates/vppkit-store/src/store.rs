//! The `Store` trait and its role traits.

use std::fmt::Debug;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use vppkit_core::{AssetKey, ClientUserId, EventId, Holder, LocationId, NotificationId};

use crate::asset::AssetRecord;
use crate::document::DocumentStore;
use crate::error::Result;
use crate::holding::{HoldingCounts, HoldingKey, HoldingRecord, HoldingTransition, Reservation};
use crate::install::InstallRecord;
use crate::journal::{JournalQuery, JournalRecord, NewJournalRecord};
use crate::lease::Lease;
use crate::location::LocationRecord;
use crate::operation::{Operation, OperationUpdate};
use crate::sync::{SyncPage, SyncStatus, SyncSummary};
use crate::user::UserRecord;

/// Everything vppkit persists, behind one object-safe async trait (`Arc<dyn Store>`).
///
/// `Store` is the sum of small role traits, so a new backend can be written (and
/// run through the conformance suite) one role at a time; every type that
/// implements them all is a `Store`:
///
/// | role | what it keeps |
/// |---|---|
/// | [`LocationStore`] | locations, sync status, assets, VPP users |
/// | [`HoldingStore`] | holdings and reservations, written by sync pages |
/// | [`JournalStore`] | the append-only journal |
/// | [`OperationStore`] | Apple operations in flight, install statuses |
/// | [`NotificationStore`] | processed notification ids |
/// | [`LeaseStore`] | leases and their fencing tokens |
/// | [`DocumentStore`] | the engine's own state: desired state, command outbox, requests, marks |
///
/// A method called on `dyn Store` needs no import of its role trait.
///
/// Every record except documents without a location and leases belongs to a location: writing one for
/// a location that does not exist fails with [`ErrorKind::NotFound`](crate::ErrorKind::NotFound),
/// and [`LocationStore::delete_location`] removes them all. Reads of a missing record
/// return `Ok(None)` (or an empty list). Timestamps are supplied by the caller, so
/// the engine's clock (and a test's) is the only clock.
///
/// Paged reads take an exclusive `after` position and a `limit` (at least 1) and
/// return records in a stable order; an empty page means the end.
///
/// Backends run the conformance suite in `vppkit_store::testkit` (feature `testkit`).
pub trait Store:
    LocationStore
    + HoldingStore
    + JournalStore
    + OperationStore
    + NotificationStore
    + LeaseStore
    + DocumentStore
    + Debug
    + 'static
{
}

impl<T> Store for T where
    T: LocationStore
        + HoldingStore
        + JournalStore
        + OperationStore
        + NotificationStore
        + LeaseStore
        + DocumentStore
        + Debug
        + 'static
{
}

/// Locations, their sync status, and what a sync stores per location: assets and VPP users.
///
/// A role of [`Store`]: a backend implements each role; see [`Store`] for the rules
/// every role follows.
#[async_trait]
pub trait LocationStore: Send + Sync {
    /// Inserts (when `record.revision` is 0) or updates (when the stored revision
    /// equals `record.revision`) a location, returning its new revision.
    /// Inserting an existing id is [`AlreadyExists`](crate::StoreError::AlreadyExists);
    /// updating with a stale revision is a version mismatch; updating a missing one is not found.
    async fn save_location(&self, record: &LocationRecord) -> Result<u64>;

    /// One location, secrets decrypted.
    async fn location(&self, id: &LocationId) -> Result<Option<LocationRecord>>;

    /// Every location, ordered by id.
    async fn locations(&self) -> Result<Vec<LocationRecord>>;

    /// Deletes a location and everything that belongs to it. Returns whether it existed.
    async fn delete_location(&self, id: &LocationId) -> Result<bool>;

    /// Cursors and last sync summary of a location.
    async fn sync_status(&self, location: &LocationId) -> Result<SyncStatus>;

    /// Records how a sync run ended.
    async fn record_sync_summary(&self, location: &LocationId, summary: &SyncSummary)
        -> Result<()>;

    /// One asset.
    async fn asset(&self, location: &LocationId, key: &AssetKey) -> Result<Option<AssetRecord>>;

    /// Every asset of a location (thousands at most), in key order (bytes of adamId, then pricingParam).
    async fn assets(&self, location: &LocationId) -> Result<Vec<AssetRecord>>;

    /// One VPP user.
    async fn user(&self, location: &LocationId, id: &ClientUserId) -> Result<Option<UserRecord>>;

    /// VPP users ordered by `clientUserId` bytes, after `after`.
    async fn users_page(
        &self,
        location: &LocationId,
        after: Option<&ClientUserId>,
        limit: u32,
    ) -> Result<Vec<UserRecord>>;
}

/// Holdings and reservations: sync pages (every change of the licence state, in one transaction with its journal records), reservations, transitions and reads.
///
/// A role of [`Store`]: a backend implements each role; see [`Store`] for the rules
/// every role follows.
#[async_trait]
pub trait HoldingStore: Send + Sync {
    /// Applies a page of changes in one transaction, cursor included (see [`SyncPage`]).
    ///
    /// Returns the sequence number assigned to the page's last journal record, or
    /// `None` when the page has no journal records. The page's records got the
    /// consecutive numbers ending there, so a reader that knows it read up to the
    /// number just before the first of them can move its read position past them.
    async fn apply_sync_page(&self, location: &LocationId, page: &SyncPage) -> Result<Option<u64>>;

    /// Reserves one licence for each holder, all or nothing, atomically across
    /// processes (see [`Reservation`]). Returns how many licences are left after it.
    ///
    /// Errors: the asset is missing (not found), too few licences
    /// ([`InsufficientLicences`](crate::StoreError::InsufficientLicences)), a holder
    /// already holds it ([`AlreadyHeld`](crate::StoreError::AlreadyHeld), a conflict),
    /// duplicate holders in the request (invalid).
    async fn reserve(&self, reservation: &Reservation) -> Result<u32>;

    /// Applies status changes and deletions to existing holdings, all or nothing,
    /// with journal records, in one transaction. A missing holding is not found; a
    /// holding whose status is not the expected one is a version mismatch.
    async fn transition_holdings(
        &self,
        location: &LocationId,
        transitions: &[HoldingTransition],
        journal: &[NewJournalRecord],
        at: DateTime<Utc>,
    ) -> Result<()>;

    /// One holding.
    async fn holding(
        &self,
        location: &LocationId,
        asset: &AssetKey,
        holder: &Holder,
    ) -> Result<Option<HoldingRecord>>;

    /// Holdings of one asset, ordered by holder text, after `after`.
    async fn holdings_by_asset(
        &self,
        location: &LocationId,
        asset: &AssetKey,
        after: Option<&Holder>,
        limit: u32,
    ) -> Result<Vec<HoldingRecord>>;

    /// Every holding of one holder (one per asset at most), in holding order.
    async fn holdings_by_holder(
        &self,
        location: &LocationId,
        holder: &Holder,
    ) -> Result<Vec<HoldingRecord>>;

    /// Holdings tied to an operation, in holding order.
    async fn holdings_by_operation(
        &self,
        location: &LocationId,
        operation_id: &str,
    ) -> Result<Vec<HoldingRecord>>;

    /// Every holding of a location, in holding order (see [`HoldingKey`]), after `after`.
    async fn holdings_page(
        &self,
        location: &LocationId,
        after: Option<&HoldingKey>,
        limit: u32,
    ) -> Result<Vec<HoldingRecord>>;

    /// How many holdings of an asset are in each state.
    async fn holding_counts(
        &self,
        location: &LocationId,
        asset: &AssetKey,
    ) -> Result<HoldingCounts>;
}

/// The append-only journal of every change, per location.
///
/// A role of [`Store`]: a backend implements each role; see [`Store`] for the rules
/// every role follows.
#[async_trait]
pub trait JournalStore: Send + Sync {
    /// Appends journal records; returns the location's last sequence number after it.
    async fn append_journal(
        &self,
        location: &LocationId,
        records: &[NewJournalRecord],
    ) -> Result<u64>;

    /// Reads journal records, ordered by sequence number.
    async fn read_journal(&self, query: &JournalQuery) -> Result<Vec<JournalRecord>>;
}

/// Apple operations in flight, and what became of the MDM commands (install statuses).
///
/// A role of [`Store`]: a backend implements each role; see [`Store`] for the rules
/// every role follows.
#[async_trait]
pub trait OperationStore: Send + Sync {
    /// Stores a new operation; an existing id is a conflict.
    async fn insert_operation(&self, operation: &Operation) -> Result<()>;

    /// Updates an operation and returns it as stored. With
    /// [`OperationUpdate::fence`], the fence is checked in the same transaction: a
    /// lease taken over since is [`Fenced`](crate::StoreError::Fenced) and changes
    /// nothing.
    async fn update_operation(&self, id: &str, update: &OperationUpdate) -> Result<Operation>;

    /// One operation.
    async fn operation(&self, id: &str) -> Result<Option<Operation>>;

    /// The operation with Apple's event id in a location.
    async fn operation_by_event(
        &self,
        location: &LocationId,
        event_id: &EventId,
    ) -> Result<Option<Operation>>;

    /// Operations not finished (see [`OperationStatus::is_finished`](crate::OperationStatus::is_finished)),
    /// of one location or all, ordered by creation time then id.
    async fn unfinished_operations(&self, location: Option<&LocationId>) -> Result<Vec<Operation>>;

    /// Deletes finished operations last updated before `before`; returns how many.
    async fn prune_operations(&self, before: DateTime<Utc>) -> Result<u64>;

    /// Writes the install status of an asset for a holder (replacing the previous one).
    async fn put_install_status(&self, record: &InstallRecord) -> Result<()>;

    /// The install status of an asset for a holder.
    async fn install_status(
        &self,
        location: &LocationId,
        holder: &Holder,
        asset: &AssetKey,
    ) -> Result<Option<InstallRecord>>;

    /// Every install status of a holder, in asset order.
    async fn install_statuses(
        &self,
        location: &LocationId,
        holder: &Holder,
    ) -> Result<Vec<InstallRecord>>;
}

/// Processed notification ids (the de-duplication of Apple's notifications).
///
/// A role of [`Store`]: a backend implements each role; see [`Store`] for the rules
/// every role follows.
#[async_trait]
pub trait NotificationStore: Send + Sync {
    /// Records a notification id; returns `true` if it was not seen before.
    async fn record_notification(
        &self,
        location: &LocationId,
        id: &NotificationId,
        at: DateTime<Utc>,
    ) -> Result<bool>;

    /// Forgets notification ids recorded before `before`; returns how many.
    async fn prune_notifications(&self, before: DateTime<Utc>) -> Result<u64>;
}

/// Leases: one owner at a time for a named piece of work, with fencing tokens.
///
/// A role of [`Store`]: a backend implements each role; see [`Store`] for the rules
/// every role follows.
#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Takes a lease for `ttl`: when free, expired, or already ours (then it is
    /// extended and keeps its token). Held by another owner and not expired:
    /// [`LeaseHeld`](crate::StoreError::LeaseHeld).
    async fn acquire_lease(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<Lease>;

    /// Extends a lease we hold (same owner and token, not expired) to `now + ttl`.
    /// Taken by another owner: a conflict; expired or gone: not found.
    async fn renew_lease(
        &self,
        name: &str,
        owner: &str,
        token: u64,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<Lease>;

    /// Releases a lease we hold; returns whether it was ours.
    async fn release_lease(&self, name: &str, owner: &str, token: u64) -> Result<bool>;

    /// The lease as stored (possibly expired).
    async fn lease(&self, name: &str) -> Result<Option<Lease>>;
}

/// Fails to compile if [`Store`] stops being object-safe.
#[allow(dead_code)]
fn assert_object_safe(_: &dyn Store) {}
