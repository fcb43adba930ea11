//! Reconciliation against Apple: full snapshots streamed page by page, increments, event
//! outcomes and notifications. Inputs are plain values; the engine converts Apple's answers.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use vppkit_core::{Asset, AssetKey, EventId, Holder, HoldingStatus, NotificationId, VppUser};

use crate::ledger::{AssetIdx, Rec};
use crate::{
    AssetReason, Cause, Change, EventKind, HoldingReason, JournalEntry, Ledger, Rejection,
};

/// One licence Apple reports: an asset held by a device or a user, as an assignments walk or
/// an `ASSET_MANAGEMENT` notification gives it to the ledger (Apple's own record is
/// `vppkit_client::Assignment`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub struct AppleHolding {
    /// The asset.
    pub asset: AssetKey,
    /// The device or user.
    pub holder: Holder,
}

impl AppleHolding {
    /// Builds an Apple holding.
    pub fn new(asset: AssetKey, holder: Holder) -> Self {
        Self { asset, holder }
    }
}

/// A full assignments walk in progress, from [`Ledger::begin_snapshot`].
#[derive(Debug, PartialEq, Eq)]
pub struct SnapshotToken {
    generation: u32,
    /// The assets the walk covers (`None`: every asset).
    scope: Option<Vec<AssetIdx>>,
}

impl SnapshotToken {
    /// The walk's generation number (grows with every walk begun on this ledger).
    pub fn generation(&self) -> u32 {
        self.generation
    }
}

/// Changed assignments from a `sinceVersionId` walk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AssignmentChanges {
    /// Assignments Apple has now.
    pub present: Vec<AppleHolding>,
    /// Assignments Apple no longer has.
    pub removed: Vec<AppleHolding>,
}

impl AssignmentChanges {
    /// Builds a change set.
    pub fn new(present: Vec<AppleHolding>, removed: Vec<AppleHolding>) -> Self {
        Self { present, removed }
    }
}

/// Apple's status of an asynchronous event (`eventStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventStatusKind {
    /// Still running.
    Pending,
    /// Every task succeeded.
    Complete,
    /// Some or all tasks failed.
    Failed,
}

/// One failure entry of an event status (`failures[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventFailure {
    /// Apple's error number (9709 not enough licences, 9609 user not found, ...).
    pub error_number: u32,
    /// The devices and users it names (`errorInfo`); empty when it names none.
    pub holders: Vec<Holder>,
    /// The assets it names, when it names some; empty means every asset of the event.
    pub assets: Vec<AssetKey>,
}

impl EventFailure {
    /// Builds a failure entry.
    pub fn new(error_number: u32, holders: Vec<Holder>, assets: Vec<AssetKey>) -> Self {
        Self {
            error_number,
            holders,
            assets,
        }
    }

    fn names(&self, asset: &AssetKey, holder: &Holder) -> bool {
        (self.holders.is_empty() || self.holders.contains(holder))
            && (self.assets.is_empty() || self.assets.contains(asset))
    }
}

/// The result of polling `GET /status?eventId=`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventOutcome {
    /// The event.
    pub event_id: EventId,
    /// Its type (`eventType`).
    pub kind: EventKind,
    /// Its status.
    pub status: EventStatusKind,
    /// Its failures. A failed event whose failures name no holder failed for every holding.
    pub failures: Vec<EventFailure>,
}

impl EventOutcome {
    /// Builds an outcome.
    pub fn new(
        event_id: EventId,
        kind: EventKind,
        status: EventStatusKind,
        failures: Vec<EventFailure>,
    ) -> Self {
        Self {
            event_id,
            kind,
            status,
            failures,
        }
    }

    fn failed(&self, asset: &AssetKey, holder: &Holder) -> bool {
        match self.status {
            EventStatusKind::Pending | EventStatusKind::Complete => false,
            EventStatusKind::Failed => {
                self.failures.is_empty() || self.failures.iter().any(|f| f.names(asset, holder))
            }
        }
    }
}

/// A webhook notification in the form the ledger applies ([`Ledger::apply_notification`]):
/// already authenticated, parsed and checked by the engine, reduced to what moves the ledger.
/// Apple's own payload is `vppkit_client::Notification`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LedgerNotification {
    /// `notificationId`, the de-duplication key.
    pub id: NotificationId,
    /// What it says.
    pub body: NotificationBody,
}

impl LedgerNotification {
    /// Builds a ledger notification.
    pub fn new(id: NotificationId, body: NotificationBody) -> Self {
        Self { id, body }
    }
}

/// The part of a notification the ledger uses.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotificationBody {
    /// `ASSET_COUNT`: licences bought, refunded or transferred.
    AssetCount {
        /// The asset.
        asset: AssetKey,
        /// `countDelta`: positive means more licences.
        count_delta: i64,
    },
    /// `ASSET_MANAGEMENT`: the result of an associate, disassociate or revoke for some holdings
    /// (Apple sends at most 100 per notification).
    AssetManagement {
        /// `type`.
        kind: EventKind,
        /// `eventId`.
        event_id: EventId,
        /// `result` is `SUCCESS`.
        succeeded: bool,
        /// `assignments`.
        assignments: Vec<AppleHolding>,
        /// `error.errorNumber` on failure.
        error_number: Option<u32>,
    },
    /// `USER_MANAGEMENT`: users created, updated or retired.
    UserManagement {
        /// `eventId`.
        event_id: EventId,
        /// `result` is `SUCCESS`.
        succeeded: bool,
        /// `users`.
        users: Vec<VppUser>,
    },
    /// `USER_ASSOCIATED`: users accepted their invitation.
    UserAssociated {
        /// `associatedUsers`.
        users: Vec<VppUser>,
    },
}

impl Ledger {
    /// Reconciles the location's assets with Apple's full list: new assets are added, changed
    /// counts explained (purchase, refund), and assets Apple no longer lists are removed once no
    /// holding is left (until then their counts drop to zero). Applying it twice changes nothing.
    pub fn reconcile_assets(
        &mut self,
        assets: &[Asset],
        cause: Cause,
        now: DateTime<Utc>,
    ) -> Vec<JournalEntry> {
        let mut entries = Vec::new();
        let listed: HashSet<&AssetKey> = assets.iter().map(|a| &a.key).collect();
        for asset in assets {
            entries.extend(self.upsert_asset(asset.clone(), cause.clone(), now));
        }
        let gone: Vec<AssetIdx> = (0..self.assets.len() as AssetIdx)
            .filter(|&a| {
                let slot = &self.assets[a as usize];
                slot.present && !listed.contains(&slot.asset.key)
            })
            .collect();
        for a in gone {
            let slot = &self.assets[a as usize];
            let key = slot.asset.key.clone();
            if slot.holdings() == 0 {
                entries.push(self.emit(cause.clone(), Change::AssetRemoved { asset: key }, now));
            } else if slot.asset.counts != vppkit_core::AssetCounts::default() {
                let mut emptied = slot.asset.clone();
                emptied.counts = vppkit_core::AssetCounts::default();
                entries.push(self.emit(
                    cause.clone(),
                    Change::AssetChanged {
                        asset: emptied,
                        reason: AssetReason::Refunded,
                    },
                    now,
                ));
            }
        }
        entries
    }

    /// Applies Apple's users (a `GET /users` page, full or incremental).
    pub fn apply_users(
        &mut self,
        users: &[VppUser],
        cause: Cause,
        now: DateTime<Utc>,
    ) -> Vec<JournalEntry> {
        users
            .iter()
            .filter_map(|u| self.upsert_user(u.clone(), cause.clone(), now))
            .collect()
    }

    /// Begins a full assignments walk. Pages are applied with [`Ledger::apply_snapshot_page`] as
    /// they arrive (in any order, none buffered); [`Ledger::finish_snapshot`] then marks the
    /// confirmed holdings no page named as lost. Beginning another walk abandons this one.
    pub fn begin_snapshot(&mut self) -> SnapshotToken {
        self.generation = self.generation.wrapping_add(1);
        self.open_snapshot = Some(self.generation);
        SnapshotToken {
            generation: self.generation,
            scope: None,
        }
    }

    /// Begins a walk of some assets only (Apple's assignments filtered by `adamId`):
    /// [`Ledger::finish_snapshot`] then finds lost holdings of these assets only. Assets the
    /// ledger does not list are ignored.
    pub fn begin_assets_snapshot(&mut self, assets: &[AssetKey]) -> SnapshotToken {
        let mut token = self.begin_snapshot();
        let mut scope: Vec<AssetIdx> = assets
            .iter()
            .filter_map(|k| self.asset_index.get(k).copied())
            .collect();
        scope.sort_unstable();
        scope.dedup();
        token.scope = Some(scope);
        token
    }

    /// Abandons a walk (it failed part-way): nothing is marked lost.
    pub fn abandon_snapshot(&mut self, token: SnapshotToken) {
        if self.open_snapshot == Some(token.generation) {
            self.open_snapshot = None;
        }
    }

    fn check_open(&self, token: &SnapshotToken) -> Result<(), Rejection> {
        if self.open_snapshot == Some(token.generation) {
            Ok(())
        } else {
            Err(Rejection::SnapshotNotOpen {
                generation: token.generation,
            })
        }
    }

    fn resolve_assets(&self, assignments: &[AppleHolding]) -> Result<Vec<AssetIdx>, Rejection> {
        assignments
            .iter()
            .map(|x| self.present_asset(&x.asset))
            .collect()
    }

    /// Applies one page of a full walk: holdings Apple has are kept (reservations become
    /// confirmed, unknown ones are adopted). Refused as a whole, changing nothing, when it names
    /// an asset the ledger does not know: reconcile the assets first, then apply it again.
    pub fn apply_snapshot_page(
        &mut self,
        token: &SnapshotToken,
        assignments: &[AppleHolding],
        cause: Cause,
        now: DateTime<Utc>,
    ) -> Result<Vec<JournalEntry>, Rejection> {
        self.check_open(token)?;
        let idx = self.resolve_assets(assignments)?;
        let mut entries = Vec::new();
        for (x, a) in assignments.iter().zip(idx) {
            entries.extend(self.apple_has(a, &x.holder, &cause, now));
            if let Some(&h) = self.holder_index.get(&x.holder) {
                if let Some(rec) = self.holdings.get_mut(&(a, h)) {
                    rec.stamp = token.generation;
                }
            }
        }
        Ok(entries)
    }

    /// Ends a full walk: every confirmed holding neither named by a page nor changed since the
    /// walk began is gone at Apple (active and adopted ones are lost, releasing ones released).
    /// Reservations in flight are kept: the walk may predate them.
    pub fn finish_snapshot(
        &mut self,
        token: SnapshotToken,
        cause: Cause,
        now: DateTime<Utc>,
    ) -> Result<Vec<JournalEntry>, Rejection> {
        self.check_open(&token)?;
        self.open_snapshot = None;
        let unseen_in = |range: std::collections::btree_map::Range<'_, (AssetIdx, u32), Rec>| {
            range
                .filter(|(_, r)| r.status.is_confirmed() && r.stamp != token.generation)
                .map(|(k, r)| (*k, *r))
                .collect::<Vec<_>>()
        };
        let unseen: Vec<((AssetIdx, u32), Rec)> = match &token.scope {
            None => unseen_in(self.holdings.range(..)),
            Some(scope) => scope
                .iter()
                .flat_map(|&a| unseen_in(self.holdings.range((a, 0)..=(a, u32::MAX))))
                .collect(),
        };
        let mut entries = Vec::with_capacity(unseen.len());
        for ((a, h), rec) in unseen {
            let holder = self.holders[h as usize].clone();
            let reason = if rec.status == HoldingStatus::Releasing {
                HoldingReason::Released
            } else {
                HoldingReason::Lost
            };
            entries.push(self.emit_holding(a, &holder, None, reason, None, cause.clone(), now));
        }
        Ok(entries)
    }

    /// Apple has this holding: confirm a reservation, adopt an unknown one, keep the rest.
    fn apple_has(
        &mut self,
        a: AssetIdx,
        holder: &Holder,
        cause: &Cause,
        now: DateTime<Utc>,
    ) -> Option<JournalEntry> {
        let (to, reason) = match self.rec(a, holder).map(|r| r.status) {
            None => (HoldingStatus::Adopted, HoldingReason::Adopted),
            Some(HoldingStatus::Reserved) => (HoldingStatus::Active, HoldingReason::Confirmed),
            Some(_) => return None,
        };
        Some(self.emit_holding(a, holder, Some(to), reason, None, cause.clone(), now))
    }

    /// Apple no longer has this holding: a confirmed one is lost (a releasing one released);
    /// a reservation in flight is kept.
    fn apple_lacks(
        &mut self,
        a: AssetIdx,
        holder: &Holder,
        reason_if_held: HoldingReason,
        cause: &Cause,
        now: DateTime<Utc>,
    ) -> Option<JournalEntry> {
        let reason = match self.rec(a, holder)?.status {
            HoldingStatus::Reserved => return None,
            HoldingStatus::Releasing => HoldingReason::Released,
            _ => reason_if_held,
        };
        Some(self.emit_holding(a, holder, None, reason, None, cause.clone(), now))
    }

    /// Applies changed assignments from a `sinceVersionId` walk. All or nothing: refused when
    /// it names an unknown asset. A pair named both present and removed counts as present.
    pub fn apply_assignment_changes(
        &mut self,
        changes: &AssignmentChanges,
        cause: Cause,
        now: DateTime<Utc>,
    ) -> Result<Vec<JournalEntry>, Rejection> {
        let removed = self.resolve_assets(&changes.removed)?;
        let present = self.resolve_assets(&changes.present)?;
        let listed: HashSet<&AppleHolding> = changes.present.iter().collect();
        let mut entries = Vec::new();
        for (x, a) in changes.removed.iter().zip(removed) {
            if listed.contains(x) {
                continue; // named both ways: Apple has it now
            }
            entries.extend(self.apple_lacks(a, &x.holder, HoldingReason::Lost, &cause, now));
        }
        for (x, a) in changes.present.iter().zip(present) {
            entries.extend(self.apple_has(a, &x.holder, &cause, now));
        }
        Ok(entries)
    }

    /// Applies the result of polling an event. Pending changes nothing; an event the ledger
    /// does not have in flight (already resolved, or never recorded) changes nothing, so the
    /// same outcome can be applied twice. Associations that succeeded are confirmed and failed
    /// ones rolled back; releases that succeeded are completed and failed ones cancelled.
    pub fn apply_event_outcome(
        &mut self,
        outcome: &EventOutcome,
        now: DateTime<Utc>,
    ) -> Result<Vec<JournalEntry>, Rejection> {
        let Some(&slot) = self.event_index.get(&outcome.event_id) else {
            return Ok(Vec::new());
        };
        let recorded = self.events[&slot].kind;
        if recorded != outcome.kind {
            return Err(Rejection::EventKindMismatch {
                event_id: outcome.event_id.clone(),
                recorded,
                reported: outcome.kind,
            });
        }
        if outcome.status == EventStatusKind::Pending {
            return Ok(Vec::new());
        }
        let items = self.events[&slot].items.clone();
        let cause = Cause::event(outcome.event_id.clone());
        let mut entries = Vec::new();
        for (a, h) in items {
            let Some(rec) = self.holdings.get(&(a, h)).copied() else {
                continue;
            };
            if rec.event != slot {
                continue;
            }
            let holder = self.holders[h as usize].clone();
            let failed = outcome.failed(&self.assets[a as usize].asset.key, &holder);
            let (to, reason) = match (recorded.releases(), failed) {
                (false, false) => (Some(HoldingStatus::Active), HoldingReason::Confirmed),
                (false, true) => (None, HoldingReason::RolledBack),
                (true, false) => (None, HoldingReason::Released),
                (true, true) => (Some(HoldingStatus::Active), HoldingReason::ReleaseCancelled),
            };
            entries.push(self.emit_holding(a, &holder, to, reason, None, cause.clone(), now));
        }
        Ok(entries)
    }

    /// Applies a notification. Repeats change nothing: holding results are idempotent by
    /// nature, and an `ASSET_COUNT` id already applied is ignored.
    pub fn apply_notification(
        &mut self,
        notification: &LedgerNotification,
        now: DateTime<Utc>,
    ) -> Result<Vec<JournalEntry>, Rejection> {
        let id = notification.id.clone();
        match &notification.body {
            NotificationBody::AssetCount { asset, count_delta } => {
                if self.seen_count_notifications.contains(&id) {
                    self.present_asset(asset)?;
                    return Ok(Vec::new());
                }
                let reason = if *count_delta >= 0 {
                    AssetReason::Purchased
                } else {
                    AssetReason::Refunded
                };
                let cause = Cause::notification(id, None);
                Ok(self
                    .change_count(asset, *count_delta, reason, cause, now)?
                    .into_iter()
                    .collect())
            }
            NotificationBody::AssetManagement {
                kind,
                event_id,
                succeeded,
                assignments,
                ..
            } => {
                let idx = self.resolve_assets(assignments)?;
                let cause = Cause::notification(id, Some(event_id.clone()));
                let slot = self.event_index.get(event_id).copied();
                let mut entries = Vec::new();
                for (x, a) in assignments.iter().zip(idx) {
                    let holder = &x.holder;
                    let entry = match (kind.releases(), succeeded) {
                        (false, true) => self.apple_has(a, holder, &cause, now),
                        (true, true) => {
                            self.apple_lacks(a, holder, HoldingReason::Released, &cause, now)
                        }
                        (releases, false) => {
                            self.operation_failed(a, holder, releases, slot, &cause, now)
                        }
                    };
                    entries.extend(entry);
                }
                Ok(entries)
            }
            NotificationBody::UserManagement {
                event_id,
                succeeded,
                users,
            } => {
                if !succeeded {
                    return Ok(Vec::new());
                }
                let cause = Cause::notification(id, Some(event_id.clone()));
                Ok(self.apply_users(users, cause, now))
            }
            NotificationBody::UserAssociated { users } => {
                Ok(self.apply_users(users, Cause::notification(id, None), now))
            }
        }
    }

    /// A failed associate rolls back a reservation (of that event, or of none yet recorded);
    /// a failed release returns a releasing holding to active.
    fn operation_failed(
        &mut self,
        a: AssetIdx,
        holder: &Holder,
        releases: bool,
        slot: Option<u32>,
        cause: &Cause,
        now: DateTime<Utc>,
    ) -> Option<JournalEntry> {
        let rec = self.rec(a, holder)?;
        if rec.event != 0 && Some(rec.event) != slot {
            return None; // a later operation on the same holding
        }
        let (to, reason) = match (releases, rec.status) {
            (false, HoldingStatus::Reserved) => (None, HoldingReason::RolledBack),
            (true, HoldingStatus::Releasing) => {
                (Some(HoldingStatus::Active), HoldingReason::ReleaseCancelled)
            }
            _ => return None,
        };
        Some(self.emit_holding(a, holder, to, reason, None, cause.clone(), now))
    }
}
