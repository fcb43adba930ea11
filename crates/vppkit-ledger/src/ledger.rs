//! The ledger of one location: state, the operations that change it, and replay.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;

use chrono::{DateTime, Utc};
use vppkit_core::{
    Asset, AssetKey, ClientUserId, EventId, Holder, HoldingStatus, LocationId, NotificationId,
    VppUser,
};

use crate::{
    AssetReason, AssetTally, Cause, Change, EventKind, HoldingReason, JournalEntry, PendingEvent,
    Rejection, ReplayError,
};

/// How many `ASSET_COUNT` notification ids the ledger remembers to ignore repeats.
pub const REMEMBERED_COUNT_NOTIFICATIONS: usize = 16_384;

pub(crate) type AssetIdx = u32;
pub(crate) type HolderIdx = u32;

/// One asset with the ledger's tallies of its holdings.
#[derive(Debug, Clone)]
pub(crate) struct AssetSlot {
    pub(crate) asset: Asset,
    pub(crate) reserved: u32,
    pub(crate) active: u32,
    pub(crate) releasing: u32,
    pub(crate) adopted: u32,
    /// False once Apple no longer lists it (the slot stays to keep indices stable).
    pub(crate) present: bool,
    /// Changes whenever what [`Ledger::holders_of`] returns for it may change; see
    /// [`Ledger::holdings_version`].
    pub(crate) holdings_version: u64,
}

/// The process-wide source of holdings versions: every number is handed out once, so
/// two ledgers (a clone, a rebuild) never show the same version for different holdings.
static NEXT_HOLDINGS_VERSION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A holdings version never handed out before in this process: the one counter behind
/// [`Ledger::holdings_version`] and the versions of `vppkit_rules::LicenceView` (a view
/// that reports versions takes them from here, so no two views ever show one number for
/// different holdings).
pub fn next_holdings_version() -> u64 {
    NEXT_HOLDINGS_VERSION.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl AssetSlot {
    pub(crate) fn tally(&self) -> AssetTally {
        AssetTally {
            apple: self.asset.counts,
            reserved: self.reserved,
            active: self.active,
            releasing: self.releasing,
            adopted: self.adopted,
        }
    }

    fn counter(&mut self, status: HoldingStatus) -> &mut u32 {
        match status {
            HoldingStatus::Reserved => &mut self.reserved,
            HoldingStatus::Active => &mut self.active,
            HoldingStatus::Releasing => &mut self.releasing,
            // Adopted, and any status a later core adds: counted as held by someone else.
            _ => &mut self.adopted,
        }
    }

    pub(crate) fn holdings(&self) -> u64 {
        self.tally().in_use()
    }
}

/// One holding: 12 bytes, keyed by (asset index, holder index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rec {
    pub(crate) status: HoldingStatus,
    /// Slot of the Apple operation in flight, 0 for none.
    pub(crate) event: u32,
    /// Generation of the last change or snapshot sighting.
    pub(crate) stamp: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct EventSlot {
    pub(crate) id: EventId,
    pub(crate) kind: EventKind,
    /// Holdings attached to it at some point (check `Rec::event` before trusting one).
    pub(crate) items: Vec<(AssetIdx, HolderIdx)>,
    /// Holdings still attached.
    pub(crate) live: u32,
}

/// The licences of one location (one content token) and every movement of them.
///
/// Every operation either returns the [`JournalEntry`]s that describe what it changed, or a
/// [`Rejection`] and changes nothing. The ledger has no clock and does no I/O: the caller passes
/// `now` and persists the entries. [`Ledger::replay`] rebuilds an equal ledger from them.
///
/// ```
/// use chrono::Utc;
/// use vppkit_core::*;
/// use vppkit_ledger::{Cause, Ledger};
///
/// let mut ledger = Ledger::new(LocationId::new("school")?);
/// let key = AssetKey::new(AdamId::new("409203825")?, PricingParam::Stdq);
/// let app = Asset::new(key.clone(), ProductType::App, true, true, vec![Platform::Ios],
///                      AssetCounts::new(1, 0, 1, 0));
/// let now = Utc::now();
/// let mut journal = Vec::new();
/// journal.extend(ledger.upsert_asset(app, Cause::sync(None), now));
/// let ipad = Holder::Device(SerialNumber::new("DMPZQ1ABCDEF")?);
/// journal.push(ledger.reserve(&key, &ipad, Cause::policy("p1"), now)?);
/// // The only licence is reserved: a second holder is refused.
/// let mac = Holder::Device(SerialNumber::new("C02XK0AAJGH5")?);
/// assert!(ledger.reserve(&key, &mac, Cause::policy("p1"), now).is_err());
/// assert_eq!(Ledger::replay(LocationId::new("school")?, &journal)?, ledger);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Ledger {
    pub(crate) location: LocationId,
    pub(crate) next_seq: u64,
    pub(crate) assets: Vec<AssetSlot>,
    pub(crate) asset_index: HashMap<AssetKey, AssetIdx>,
    pub(crate) holders: Vec<Holder>,
    pub(crate) holder_index: HashMap<Holder, HolderIdx>,
    pub(crate) holdings: BTreeMap<(AssetIdx, HolderIdx), Rec>,
    pub(crate) users: BTreeMap<ClientUserId, VppUser>,
    pub(crate) events: HashMap<u32, EventSlot>,
    pub(crate) event_index: HashMap<EventId, u32>,
    pub(crate) next_event_slot: u32,
    pub(crate) seen_count_notifications: HashSet<NotificationId>,
    pub(crate) count_notification_order: VecDeque<NotificationId>,
    pub(crate) generation: u32,
    pub(crate) open_snapshot: Option<u32>,
}

impl fmt::Debug for Ledger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ledger")
            .field("location", &self.location)
            .field("next_seq", &self.next_seq)
            .field("assets", &self.asset_index.len())
            .field("holdings", &self.holdings.len())
            .field("users", &self.users.len())
            .field("events_in_flight", &self.events.len())
            .finish_non_exhaustive()
    }
}

impl Ledger {
    /// An empty ledger for a location.
    pub fn new(location: LocationId) -> Self {
        Self {
            location,
            next_seq: 1,
            assets: Vec::new(),
            asset_index: HashMap::new(),
            holders: Vec::new(),
            holder_index: HashMap::new(),
            holdings: BTreeMap::new(),
            users: BTreeMap::new(),
            events: HashMap::new(),
            event_index: HashMap::new(),
            next_event_slot: 1,
            seen_count_notifications: HashSet::new(),
            count_notification_order: VecDeque::new(),
            generation: 0,
            open_snapshot: None,
        }
    }

    /// The location this ledger accounts for.
    pub fn location(&self) -> &LocationId {
        &self.location
    }

    /// The sequence number the next journal entry will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Rebuilds a ledger from its journal, in order from the first entry.
    pub fn replay<I>(location: LocationId, entries: I) -> Result<Self, ReplayError>
    where
        I: IntoIterator,
        I::Item: Borrow<JournalEntry>,
    {
        let mut ledger = Ledger::new(location);
        for entry in entries {
            ledger.apply_entry(entry.borrow())?;
        }
        Ok(ledger)
    }

    /// Applies one persisted entry (the next in sequence) to this ledger: how a ledger catches
    /// up with entries written by another manager instance.
    pub fn apply_entry(&mut self, entry: &JournalEntry) -> Result<(), ReplayError> {
        if entry.seq != self.next_seq {
            return Err(ReplayError::SequenceGap {
                expected: self.next_seq,
                found: entry.seq,
            });
        }
        if entry.location != self.location {
            return Err(ReplayError::WrongLocation {
                seq: entry.seq,
                expected: self.location.clone(),
                found: entry.location.clone(),
            });
        }
        self.check_applicable(&entry.change)
            .map_err(|reason| ReplayError::Inapplicable {
                seq: entry.seq,
                reason,
            })?;
        self.apply_change(&entry.cause, &entry.change);
        self.next_seq += 1;
        Ok(())
    }

    // ----- internal state access -------------------------------------------------------------

    pub(crate) fn present_asset(&self, key: &AssetKey) -> Result<AssetIdx, Rejection> {
        match self.asset_index.get(key) {
            Some(&a) if self.assets[a as usize].present => Ok(a),
            _ => Err(Rejection::UnknownAsset { asset: key.clone() }),
        }
    }

    pub(crate) fn rec(&self, a: AssetIdx, holder: &Holder) -> Option<Rec> {
        let h = *self.holder_index.get(holder)?;
        self.holdings.get(&(a, h)).copied()
    }

    pub(crate) fn event_of(&self, rec: Rec) -> Option<PendingEvent> {
        if rec.event == 0 {
            return None;
        }
        self.events
            .get(&rec.event)
            .map(|e| PendingEvent::new(e.id.clone(), e.kind))
    }

    fn intern_holder(&mut self, holder: &Holder) -> HolderIdx {
        if let Some(&h) = self.holder_index.get(holder) {
            return h;
        }
        let h = self.holders.len() as HolderIdx;
        self.holders.push(holder.clone());
        self.holder_index.insert(holder.clone(), h);
        h
    }

    fn intern_asset(&mut self, asset: &Asset) -> AssetIdx {
        if let Some(&a) = self.asset_index.get(&asset.key) {
            return a;
        }
        let a = self.assets.len() as AssetIdx;
        self.assets.push(AssetSlot {
            asset: asset.clone(),
            reserved: 0,
            active: 0,
            releasing: 0,
            adopted: 0,
            present: true,
            holdings_version: next_holdings_version(),
        });
        self.asset_index.insert(asset.key.clone(), a);
        a
    }

    fn change_asset_idx(&self, change: &Change) -> Option<AssetIdx> {
        let key = match change {
            Change::AssetChanged { asset, .. } => &asset.key,
            Change::AssetRemoved { asset } | Change::Holding { asset, .. } => asset,
            Change::User { .. } => return None,
        };
        self.asset_index.get(key).copied()
    }

    fn tally_of(&self, a: Option<AssetIdx>) -> Option<AssetTally> {
        let slot = &self.assets[a? as usize];
        slot.present.then(|| slot.tally())
    }

    /// Records a change: applies it, numbers it and returns its entry. Callers validated it.
    pub(crate) fn emit(
        &mut self,
        cause: Cause,
        change: Change,
        now: DateTime<Utc>,
    ) -> JournalEntry {
        let before = self.tally_of(self.change_asset_idx(&change));
        self.apply_change(&cause, &change);
        let after = self.tally_of(self.change_asset_idx(&change));
        let seq = self.next_seq;
        self.next_seq += 1;
        JournalEntry {
            seq,
            at: now,
            location: self.location.clone(),
            cause,
            change,
            before,
            after,
        }
    }

    /// Records a holding change from its current status to `to`.
    #[allow(clippy::too_many_arguments)] // internal: every field of a holding entry
    pub(crate) fn emit_holding(
        &mut self,
        a: AssetIdx,
        holder: &Holder,
        to: Option<HoldingStatus>,
        reason: HoldingReason,
        event: Option<PendingEvent>,
        cause: Cause,
        now: DateTime<Utc>,
    ) -> JournalEntry {
        let h = self.intern_holder(holder);
        let old = self.holdings.get(&(a, h)).copied();
        let before = self.tally_of(Some(a));
        self.apply_holding(a, h, old, to, event.as_ref());
        let after = self.tally_of(Some(a));
        let change = Change::Holding {
            asset: self.assets[a as usize].asset.key.clone(),
            holder: holder.clone(),
            from: old.map(|r| r.status),
            to,
            reason,
            event,
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        JournalEntry {
            seq,
            at: now,
            location: self.location.clone(),
            cause,
            change,
            before,
            after,
        }
    }

    /// Moves holding (a, h) from `old` to `to`, keeping the tallies and events in step.
    fn apply_holding(
        &mut self,
        a: AssetIdx,
        h: HolderIdx,
        old: Option<Rec>,
        to: Option<HoldingStatus>,
        event: Option<&PendingEvent>,
    ) {
        let new_event = match event {
            Some(ev) => self.event_slot(ev),
            None => 0,
        };
        self.assets[a as usize].holdings_version = next_holdings_version();
        if let Some(old) = old {
            *self.assets[a as usize].counter(old.status) -= 1;
            if old.event != 0 && old.event != new_event {
                self.detach_event(old.event);
            }
        }
        match to {
            Some(status) => {
                *self.assets[a as usize].counter(status) += 1;
                if new_event != 0 && old.map(|o| o.event) != Some(new_event) {
                    if let Some(slot) = self.events.get_mut(&new_event) {
                        slot.items.push((a, h));
                        slot.live += 1;
                    }
                }
                let rec = Rec {
                    status,
                    event: new_event,
                    stamp: self.generation,
                };
                match old {
                    Some(_) => {
                        if let Some(r) = self.holdings.get_mut(&(a, h)) {
                            *r = rec;
                        }
                    }
                    None => {
                        self.holdings.insert((a, h), rec);
                    }
                }
            }
            None => {
                self.holdings.remove(&(a, h));
            }
        }
    }

    /// Whether a persisted change fits the current state (replay only; operations validate
    /// with typed rejections before emitting).
    fn check_applicable(&self, change: &Change) -> Result<(), String> {
        match change {
            Change::AssetChanged { .. } | Change::User { .. } => Ok(()),
            Change::AssetRemoved { asset } => {
                let a = self.present_asset(asset).map_err(|e| e.to_string())?;
                match self.assets[a as usize].holdings() {
                    0 => Ok(()),
                    n => Err(format!("asset {asset} still has {n} holdings")),
                }
            }
            Change::Holding {
                asset,
                holder,
                from,
                to,
                reason,
                event,
            } => {
                let a = self.present_asset(asset).map_err(|e| e.to_string())?;
                let current = self.rec(a, holder).map(|r| r.status);
                if current != *from {
                    return Err(format!(
                        "{holder} holds {asset} as {current:?}, the entry expects {from:?}"
                    ));
                }
                if from == to && *reason != HoldingReason::EventRecorded {
                    return Err(format!("{reason:?} without a change of status"));
                }
                if let Some(ev) = event {
                    if to.is_none() {
                        return Err("an event on a holding that is gone".to_owned());
                    }
                    if let Some(slot) = self.event_index.get(&ev.event_id) {
                        let recorded = self.events[slot].kind;
                        if recorded != ev.kind {
                            return Err(format!(
                                "event {} recorded as {recorded:?}, entry says {:?}",
                                ev.event_id, ev.kind
                            ));
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// Applies a change to the state. The same code runs for operations and for replay, which
    /// is what makes replay give an equal ledger.
    fn apply_change(&mut self, cause: &Cause, change: &Change) {
        match change {
            Change::AssetChanged { asset, .. } => {
                let a = self.intern_asset(asset);
                let slot = &mut self.assets[a as usize];
                slot.asset = asset.clone();
                if !slot.present {
                    slot.present = true;
                    slot.holdings_version = next_holdings_version();
                }
                if let Cause::Notification {
                    notification_id, ..
                } = cause
                {
                    self.remember_count_notification(notification_id);
                }
            }
            Change::AssetRemoved { asset } => {
                if let Some(&a) = self.asset_index.get(asset) {
                    let slot = &mut self.assets[a as usize];
                    slot.present = false;
                    slot.holdings_version = next_holdings_version();
                }
            }
            Change::Holding {
                asset,
                holder,
                to,
                event,
                ..
            } => {
                let Some(&a) = self.asset_index.get(asset) else {
                    return;
                };
                let h = self.intern_holder(holder);
                let old = self.holdings.get(&(a, h)).copied();
                self.apply_holding(a, h, old, *to, event.as_ref());
            }
            Change::User { user, .. } => {
                self.users.insert(user.client_user_id.clone(), user.clone());
            }
        }
    }

    fn event_slot(&mut self, ev: &PendingEvent) -> u32 {
        if let Some(&slot) = self.event_index.get(&ev.event_id) {
            return slot;
        }
        let slot = self.next_event_slot;
        self.next_event_slot += 1;
        self.event_index.insert(ev.event_id.clone(), slot);
        self.events.insert(
            slot,
            EventSlot {
                id: ev.event_id.clone(),
                kind: ev.kind,
                items: Vec::new(),
                live: 0,
            },
        );
        slot
    }

    fn detach_event(&mut self, slot: u32) {
        let Some(ev) = self.events.get_mut(&slot) else {
            return;
        };
        ev.live = ev.live.saturating_sub(1);
        if ev.live == 0 {
            let id = ev.id.clone();
            self.events.remove(&slot);
            self.event_index.remove(&id);
        }
    }

    fn remember_count_notification(&mut self, id: &NotificationId) {
        if self.seen_count_notifications.insert(id.clone()) {
            self.count_notification_order.push_back(id.clone());
            while self.count_notification_order.len() > REMEMBERED_COUNT_NOTIFICATIONS {
                if let Some(old) = self.count_notification_order.pop_front() {
                    self.seen_count_notifications.remove(&old);
                }
            }
        }
    }

    /// A canonical form of the state for equality: what replay must reproduce.
    fn canonical(&self) -> Canonical<'_> {
        let assets = self
            .assets
            .iter()
            .filter(|s| s.present)
            .map(|s| (&s.asset.key, (&s.asset, s.tally())))
            .collect();
        let holdings = self
            .holdings
            .iter()
            .map(|(&(a, h), rec)| {
                (
                    (
                        &self.assets[a as usize].asset.key,
                        &self.holders[h as usize],
                    ),
                    (rec.status, self.event_of(*rec)),
                )
            })
            .collect();
        let events = self
            .events
            .values()
            .map(|e| (&e.id, (e.kind, e.live)))
            .collect();
        Canonical {
            location: &self.location,
            next_seq: self.next_seq,
            assets,
            holdings,
            users: &self.users,
            events,
            notifications: &self.count_notification_order,
        }
    }
}

type CanonicalHoldings<'a> =
    BTreeMap<(&'a AssetKey, &'a Holder), (HoldingStatus, Option<PendingEvent>)>;

#[derive(PartialEq, Eq)]
struct Canonical<'a> {
    location: &'a LocationId,
    next_seq: u64,
    assets: BTreeMap<&'a AssetKey, (&'a Asset, AssetTally)>,
    holdings: CanonicalHoldings<'a>,
    users: &'a BTreeMap<ClientUserId, VppUser>,
    events: BTreeMap<&'a EventId, (EventKind, u32)>,
    notifications: &'a VecDeque<NotificationId>,
}

/// Two ledgers are equal when they hold the same assets, holdings (with their operations in
/// flight), users and journal position. An open snapshot walk is not part of the state.
impl PartialEq for Ledger {
    fn eq(&self, other: &Self) -> bool {
        self.canonical() == other.canonical()
    }
}

impl Eq for Ledger {}

// ----- operations ----------------------------------------------------------------------------

impl Ledger {
    /// Adds an asset or updates its properties and counts from Apple. Returns no entry when
    /// nothing differs.
    pub fn upsert_asset(
        &mut self,
        asset: Asset,
        cause: Cause,
        now: DateTime<Utc>,
    ) -> Option<JournalEntry> {
        let reason = match self.asset_index.get(&asset.key) {
            Some(&a) if self.assets[a as usize].present => {
                let old = &self.assets[a as usize].asset;
                if *old == asset {
                    return None;
                }
                match asset.counts.total.cmp(&old.counts.total) {
                    std::cmp::Ordering::Greater => AssetReason::Purchased,
                    std::cmp::Ordering::Less => AssetReason::Refunded,
                    std::cmp::Ordering::Equal => AssetReason::Synced,
                }
            }
            _ => AssetReason::Added,
        };
        Some(self.emit(cause, Change::AssetChanged { asset, reason }, now))
    }

    /// Applies a change of Apple's licence count (purchase, refund, transfer): `delta` is added
    /// to the total and to the available count, as Apple's `ASSET_COUNT` notification means it.
    /// A delta of zero changes nothing.
    pub fn change_count(
        &mut self,
        asset: &AssetKey,
        delta: i64,
        reason: AssetReason,
        cause: Cause,
        now: DateTime<Utc>,
    ) -> Result<Option<JournalEntry>, Rejection> {
        let a = self.present_asset(asset)?;
        if delta == 0 {
            return Ok(None);
        }
        let mut updated = self.assets[a as usize].asset.clone();
        let counts = updated.counts;
        let out_of_range = || Rejection::CountOutOfRange {
            asset: asset.clone(),
            total: counts.total,
            delta,
        };
        if counts.is_unlimited() {
            // Free assets: Apple keeps the total at its maximum; nothing to account.
            return Ok(None);
        }
        let total = i64::from(counts.total) + delta;
        if total < i64::from(counts.retired) || total >= i64::from(vppkit_core::UNLIMITED_COUNT) {
            return Err(out_of_range());
        }
        let available = (i64::from(counts.available) + delta).clamp(0, total);
        updated.counts.total = u32::try_from(total).map_err(|_| out_of_range())?;
        updated.counts.available = u32::try_from(available).map_err(|_| out_of_range())?;
        Ok(Some(self.emit(
            cause,
            Change::AssetChanged {
                asset: updated,
                reason,
            },
            now,
        )))
    }

    /// Reserves a licence for `holder` before an associate call. Refused when no licence is free
    /// (reservations in flight count), when the holder already holds the asset, when a device is
    /// given an asset that is not device-assignable, and for a retired user.
    pub fn reserve(
        &mut self,
        asset: &AssetKey,
        holder: &Holder,
        cause: Cause,
        now: DateTime<Utc>,
    ) -> Result<JournalEntry, Rejection> {
        let a = self.present_asset(asset)?;
        let slot = &self.assets[a as usize];
        if holder.is_device() && (!slot.asset.device_assignable || slot.asset.is_book()) {
            return Err(Rejection::NotDeviceAssignable {
                asset: asset.clone(),
                product_type: slot.asset.product_type,
            });
        }
        if let Holder::User(id) = holder {
            if let Some(user) = self.users.get(id) {
                if !user.status.is_active() {
                    return Err(Rejection::UserInactive {
                        holder: holder.clone(),
                        status: user.status,
                    });
                }
            }
        }
        if let Some(rec) = self.rec(a, holder) {
            return Err(Rejection::AlreadyHeld {
                asset: asset.clone(),
                holder: holder.clone(),
                status: rec.status,
            });
        }
        let tally = slot.tally();
        if tally.free() == 0 {
            return Err(Rejection::NoLicenceFree {
                asset: asset.clone(),
                holdable: tally.apple.holdable(),
                in_use: tally.in_use(),
            });
        }
        Ok(self.emit_holding(
            a,
            holder,
            Some(HoldingStatus::Reserved),
            HoldingReason::Reserved,
            None,
            cause,
            now,
        ))
    }

    fn held(&self, asset: &AssetKey, holder: &Holder) -> Result<(AssetIdx, Rec), Rejection> {
        let a = self.present_asset(asset)?;
        let rec = self.rec(a, holder).ok_or_else(|| Rejection::NotHeld {
            asset: asset.clone(),
            holder: holder.clone(),
        })?;
        Ok((a, rec))
    }

    fn expect_status(
        asset: &AssetKey,
        holder: &Holder,
        rec: Rec,
        allowed: &[HoldingStatus],
        operation: &'static str,
    ) -> Result<(), Rejection> {
        if allowed.contains(&rec.status) {
            Ok(())
        } else {
            Err(Rejection::WrongStatus {
                asset: asset.clone(),
                holder: holder.clone(),
                status: rec.status,
                operation,
            })
        }
    }

    /// The one-holding transitions: the holding must exist with one of the `from` statuses; it
    /// then moves to `to` (`None`: gone) with `reason`, and its pending event is cleared.
    #[allow(clippy::too_many_arguments)]
    fn transition(
        &mut self,
        asset: &AssetKey,
        holder: &Holder,
        from: &[HoldingStatus],
        operation: &'static str,
        to: Option<HoldingStatus>,
        reason: HoldingReason,
        cause: Cause,
        now: DateTime<Utc>,
    ) -> Result<JournalEntry, Rejection> {
        let (a, rec) = self.held(asset, holder)?;
        Self::expect_status(asset, holder, rec, from, operation)?;
        Ok(self.emit_holding(a, holder, to, reason, None, cause, now))
    }

    /// Records the Apple event of the operation in flight for these holdings: reserved ones for
    /// an associate, releasing ones for a disassociate or revoke. All or nothing.
    pub fn record_event(
        &mut self,
        event: &PendingEvent,
        items: &[(AssetKey, Holder)],
        cause: Cause,
        now: DateTime<Utc>,
    ) -> Result<Vec<JournalEntry>, Rejection> {
        if items.is_empty() {
            return Err(Rejection::Empty);
        }
        if self.event_index.contains_key(&event.event_id) {
            return Err(Rejection::EventAlreadyRecorded {
                event_id: event.event_id.clone(),
            });
        }
        let wanted = if event.kind.releases() {
            HoldingStatus::Releasing
        } else {
            HoldingStatus::Reserved
        };
        let mut resolved = Vec::with_capacity(items.len());
        for (asset, holder) in items {
            let (a, rec) = self.held(asset, holder)?;
            Self::expect_status(asset, holder, rec, &[wanted], "record an event for")?;
            resolved.push((a, holder));
        }
        let mut entries = Vec::with_capacity(items.len());
        for (a, holder) in resolved {
            if self.rec(a, holder).and_then(|r| self.event_of(r)).as_ref() == Some(event) {
                continue; // named twice in `items`
            }
            entries.push(self.emit_holding(
                a,
                holder,
                Some(wanted),
                HoldingReason::EventRecorded,
                Some(event.clone()),
                cause.clone(),
                now,
            ));
        }
        Ok(entries)
    }

    /// Apple confirmed a reservation: reserved -> active.
    pub fn confirm(
        &mut self,
        asset: &AssetKey,
        holder: &Holder,
        cause: Cause,
        now: DateTime<Utc>,
    ) -> Result<JournalEntry, Rejection> {
        self.transition(
            asset,
            holder,
            &[HoldingStatus::Reserved],
            "confirm",
            Some(HoldingStatus::Active),
            HoldingReason::Confirmed,
            cause,
            now,
        )
    }

    /// The association failed or was abandoned: the reservation is dropped.
    pub fn roll_back(
        &mut self,
        asset: &AssetKey,
        holder: &Holder,
        cause: Cause,
        now: DateTime<Utc>,
    ) -> Result<JournalEntry, Rejection> {
        self.transition(
            asset,
            holder,
            &[HoldingStatus::Reserved],
            "roll back",
            None,
            HoldingReason::RolledBack,
            cause,
            now,
        )
    }

    /// Starts a disassociate: active or adopted -> releasing. Refused for books and for assets
    /// that are not revocable (invariant 5). The licence stays counted until Apple confirms.
    pub fn release(
        &mut self,
        asset: &AssetKey,
        holder: &Holder,
        cause: Cause,
        now: DateTime<Utc>,
    ) -> Result<JournalEntry, Rejection> {
        let a = self.present_asset(asset)?;
        self.check_releasable(a)?;
        self.transition(
            asset,
            holder,
            &[HoldingStatus::Active, HoldingStatus::Adopted],
            "release",
            Some(HoldingStatus::Releasing),
            HoldingReason::ReleaseStarted,
            cause,
            now,
        )
    }

    fn check_releasable(&self, a: AssetIdx) -> Result<(), Rejection> {
        let asset = &self.assets[a as usize].asset;
        if asset.is_book() {
            return Err(Rejection::BookNotReleasable {
                asset: asset.key.clone(),
            });
        }
        if !asset.revocable {
            return Err(Rejection::NotRevocable {
                asset: asset.key.clone(),
            });
        }
        Ok(())
    }

    /// Apple confirmed the release: releasing -> gone.
    pub fn complete_release(
        &mut self,
        asset: &AssetKey,
        holder: &Holder,
        cause: Cause,
        now: DateTime<Utc>,
    ) -> Result<JournalEntry, Rejection> {
        self.transition(
            asset,
            holder,
            &[HoldingStatus::Releasing],
            "complete the release of",
            None,
            HoldingReason::Released,
            cause,
            now,
        )
    }

    /// The release failed: releasing -> active.
    pub fn cancel_release(
        &mut self,
        asset: &AssetKey,
        holder: &Holder,
        cause: Cause,
        now: DateTime<Utc>,
    ) -> Result<JournalEntry, Rejection> {
        self.transition(
            asset,
            holder,
            &[HoldingStatus::Releasing],
            "cancel the release of",
            Some(HoldingStatus::Active),
            HoldingReason::ReleaseCancelled,
            cause,
            now,
        )
    }

    /// Starts a revoke of everything revocable the holder has (Apple's `assets/revoke`): every
    /// active or adopted holding of a revocable asset becomes releasing. Books and other
    /// irrevocable holdings stay. Returns no entry when there is nothing to revoke.
    pub fn revoke_all(
        &mut self,
        holder: &Holder,
        cause: Cause,
        now: DateTime<Utc>,
    ) -> Vec<JournalEntry> {
        let targets: Vec<AssetIdx> = self
            .holdings_of_holder_idx(holder)
            .filter(|&(a, rec)| {
                matches!(rec.status, HoldingStatus::Active | HoldingStatus::Adopted)
                    && self.check_releasable(a).is_ok()
            })
            .map(|(a, _)| a)
            .collect();
        targets
            .into_iter()
            .map(|a| {
                self.emit_holding(
                    a,
                    holder,
                    Some(HoldingStatus::Releasing),
                    HoldingReason::RevokeStarted,
                    None,
                    cause.clone(),
                    now,
                )
            })
            .collect()
    }

    /// The holdings of a holder as (asset index, record), in asset order.
    pub(crate) fn holdings_of_holder_idx<'a>(
        &'a self,
        holder: &Holder,
    ) -> impl Iterator<Item = (AssetIdx, Rec)> + 'a {
        let h = self.holder_index.get(holder).copied();
        (0..self.assets.len() as AssetIdx).filter_map(move |a| {
            let rec = self.holdings.get(&(a, h?))?;
            Some((a, *rec))
        })
    }

    /// Takes over a holding Apple has that we did not ask for: none -> adopted.
    pub fn adopt(
        &mut self,
        asset: &AssetKey,
        holder: &Holder,
        cause: Cause,
        now: DateTime<Utc>,
    ) -> Result<JournalEntry, Rejection> {
        let a = self.present_asset(asset)?;
        if let Some(rec) = self.rec(a, holder) {
            return Err(Rejection::AlreadyHeld {
                asset: asset.clone(),
                holder: holder.clone(),
                status: rec.status,
            });
        }
        Ok(self.emit_holding(
            a,
            holder,
            Some(HoldingStatus::Adopted),
            HoldingReason::Adopted,
            None,
            cause,
            now,
        ))
    }

    /// Apple no longer has a confirmed holding: active, adopted or releasing -> gone.
    /// A reservation is never lost (roll it back instead).
    pub fn mark_lost(
        &mut self,
        asset: &AssetKey,
        holder: &Holder,
        cause: Cause,
        now: DateTime<Utc>,
    ) -> Result<JournalEntry, Rejection> {
        self.transition(
            asset,
            holder,
            &[
                HoldingStatus::Active,
                HoldingStatus::Adopted,
                HoldingStatus::Releasing,
            ],
            "mark lost",
            None,
            HoldingReason::Lost,
            cause,
            now,
        )
    }

    /// Adds or updates a VPP user. Returns no entry when nothing differs. Apple may list a
    /// retired record beside the active one with the same `clientUserId`: an inactive record
    /// replaces an active one only when it is the same account (same `idHash` or `inviteCode`,
    /// or the stored one has neither).
    pub fn upsert_user(
        &mut self,
        user: VppUser,
        cause: Cause,
        now: DateTime<Utc>,
    ) -> Option<JournalEntry> {
        let before = self.users.get(&user.client_user_id);
        if let Some(old) = before {
            if *old == user {
                return None;
            }
            if old.status.is_active() && !user.status.is_active() {
                let same_hash = old.id_hash.is_some() && old.id_hash == user.id_hash;
                let same_invite = old.invite_code.is_some() && old.invite_code == user.invite_code;
                let anonymous = old.id_hash.is_none() && old.invite_code.is_none();
                if !(same_hash || same_invite || anonymous) {
                    return None;
                }
            }
        }
        let before = before.map(|u| u.status);
        Some(self.emit(cause, Change::User { user, before }, now))
    }
}
