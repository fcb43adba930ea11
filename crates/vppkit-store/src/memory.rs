//! The in-memory store: the reference implementation and the fake for tests.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use vppkit_core::{
    AssetKey, ClientUserId, EventId, Holder, HoldingStatus, LocationId, NotificationId,
};

use crate::asset::AssetRecord;
use crate::document::{Document, DocumentQuery, DocumentStore, NewDocument};
use crate::error::{Result, StoreError};
use crate::holding::{
    sort_key, HoldingCounts, HoldingKey, HoldingRecord, HoldingTransition, Reservation,
};
use crate::install::InstallRecord;
use crate::journal::{JournalQuery, JournalRecord, NewJournalRecord};
use crate::lease::{Fence, Lease};
use crate::location::LocationRecord;
use crate::operation::{Operation, OperationUpdate};
use crate::store::{
    HoldingStore, JournalStore, LeaseStore, LocationStore, NotificationStore, OperationStore,
};
use crate::sync::{SyncCursor, SyncEndpoint, SyncPage, SyncStatus, SyncSummary};
use crate::user::UserRecord;

type AssetSort = (String, &'static str);
type HoldingSort = (String, &'static str, String);

fn asset_sort(key: &AssetKey) -> AssetSort {
    (key.adam_id.as_str().to_owned(), key.pricing_param.as_str())
}

/// Every record of one location.
#[derive(Default)]
struct LocationData {
    record: Option<LocationRecord>,
    cursors: BTreeMap<SyncEndpoint, SyncCursor>,
    last_summary: Option<SyncSummary>,
    assets: BTreeMap<AssetSort, AssetRecord>,
    holdings: BTreeMap<HoldingSort, HoldingRecord>,
    holdings_per_asset: HashMap<AssetSort, u64>,
    users: BTreeMap<String, UserRecord>,
    journal: Vec<JournalRecord>,
    installs: BTreeMap<(String, AssetSort), InstallRecord>,
}

impl LocationData {
    fn insert_holding(&mut self, record: HoldingRecord) {
        let key = sort_key(&record.asset, &record.holder);
        let asset = (key.0.clone(), key.1);
        if self.holdings.insert(key, record).is_none() {
            *self.holdings_per_asset.entry(asset).or_default() += 1;
        }
    }

    fn remove_holding(&mut self, key: &HoldingSort) -> Option<HoldingRecord> {
        let removed = self.holdings.remove(key)?;
        if let Some(n) = self.holdings_per_asset.get_mut(&(key.0.clone(), key.1)) {
            *n = n.saturating_sub(1);
        }
        Some(removed)
    }

    fn append(&mut self, location: &LocationId, records: &[NewJournalRecord]) -> u64 {
        let mut seq = self.journal.last().map_or(0, |r| r.seq);
        for r in records {
            seq += 1;
            self.journal.push(JournalRecord {
                location: location.clone(),
                seq,
                at: r.at,
                asset: r.asset.clone(),
                holder: r.holder.clone(),
                cause: r.cause.clone(),
                kind: r.kind.clone(),
                body: r.body.to_value(),
            });
        }
        seq
    }
}

#[derive(Default)]
struct State {
    locations: BTreeMap<LocationId, LocationData>,
    operations: BTreeMap<String, Operation>,
    notifications: HashMap<NotificationId, (LocationId, DateTime<Utc>)>,
    documents: BTreeMap<(String, String), Document>,
    leases: BTreeMap<String, Lease>,
}

impl State {
    fn loc(&self, id: &LocationId) -> Option<&LocationData> {
        self.locations.get(id).filter(|d| d.record.is_some())
    }

    fn check_fence(&self, fence: Option<&Fence>) -> Result<()> {
        match fence {
            Some(f) => f.check(self.leases.get(&f.lease)),
            None => Ok(()),
        }
    }

    fn put_document(&mut self, d: &NewDocument, expected: Option<u64>) -> Result<u64> {
        d.validate()?;
        if let Some(l) = &d.location {
            if self.loc(l).is_none() {
                return Err(StoreError::not_found("location", l));
            }
        }
        let key = (d.collection.clone(), d.key.clone());
        let current = self.documents.get(&key).map_or(0, |x| x.revision);
        StoreError::check_revision("document", &d.key, expected, current)?;
        self.documents.insert(key, d.stored(current + 1));
        Ok(current + 1)
    }

    fn loc_mut(&mut self, id: &LocationId) -> Result<&mut LocationData> {
        self.locations
            .get_mut(id)
            .filter(|d| d.record.is_some())
            .ok_or_else(|| StoreError::not_found("location", id))
    }
}

/// A [`Store`](crate::Store) kept in memory: fast, complete, and lost when dropped.
///
/// Clones share the same data (two clones behave like two handles on one database).
/// Secrets are held as [`Secret`](vppkit_core::Secret) values in memory; nothing is
/// written to disk, so there is nothing to encrypt.
#[derive(Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data: every write
        // validates before it mutates.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("MemoryStore")
            .field("locations", &state.locations.len())
            .field("operations", &state.operations.len())
            .field("documents", &state.documents.len())
            .finish_non_exhaustive()
    }
}

fn check_limit(limit: u32) -> Result<usize> {
    if limit == 0 {
        return Err(StoreError::invalid("limit", "must be at least 1"));
    }
    Ok(limit as usize)
}

/// The values of `map` whose keys come after `after` (all of them without one), in key order:
/// the keyset pagination every `*_page` method shares.
fn values_after<K: Ord, V>(map: &BTreeMap<K, V>, after: Option<K>) -> impl Iterator<Item = &V> {
    let start = match after {
        Some(k) => std::ops::Bound::Excluded(k),
        None => std::ops::Bound::Unbounded,
    };
    map.range((start, std::ops::Bound::Unbounded))
        .map(|(_, v)| v)
}

fn holder_text(h: &Holder) -> String {
    h.to_string()
}

#[async_trait]
impl LocationStore for MemoryStore {
    async fn save_location(&self, record: &LocationRecord) -> Result<u64> {
        let mut state = self.lock();
        let entry = state.locations.entry(record.id.clone()).or_default();
        match (&entry.record, record.revision) {
            (Some(_), 0) => Err(StoreError::already_exists("location", &record.id)),
            (None, 0) => {
                let mut stored = record.clone();
                stored.revision = 1;
                entry.record = Some(stored);
                Ok(1)
            }
            (None, _) => {
                state.locations.remove(&record.id);
                Err(StoreError::not_found("location", &record.id))
            }
            (Some(current), rev) if current.revision != rev => Err(StoreError::version_mismatch(
                "location",
                &record.id,
                rev,
                current.revision,
            )),
            (Some(_), rev) => {
                let mut stored = record.clone();
                stored.revision = rev + 1;
                entry.record = Some(stored);
                Ok(rev + 1)
            }
        }
    }

    async fn location(&self, id: &LocationId) -> Result<Option<LocationRecord>> {
        Ok(self.lock().loc(id).and_then(|d| d.record.clone()))
    }

    async fn locations(&self) -> Result<Vec<LocationRecord>> {
        Ok(self
            .lock()
            .locations
            .values()
            .filter_map(|d| d.record.clone())
            .collect())
    }

    async fn delete_location(&self, id: &LocationId) -> Result<bool> {
        let mut state = self.lock();
        let existed = state
            .locations
            .remove(id)
            .is_some_and(|d| d.record.is_some());
        state.operations.retain(|_, op| &op.location != id);
        state.notifications.retain(|_, (loc, _)| loc != id);
        state
            .documents
            .retain(|_, d| d.location.as_ref() != Some(id));
        Ok(existed)
    }

    async fn sync_status(&self, location: &LocationId) -> Result<SyncStatus> {
        let state = self.lock();
        let data = state
            .loc(location)
            .ok_or_else(|| StoreError::not_found("location", location))?;
        Ok(SyncStatus {
            cursors: data.cursors.iter().map(|(e, c)| (*e, c.clone())).collect(),
            last_summary: data.last_summary.clone(),
        })
    }

    async fn record_sync_summary(
        &self,
        location: &LocationId,
        summary: &SyncSummary,
    ) -> Result<()> {
        self.lock().loc_mut(location)?.last_summary = Some(summary.clone());
        Ok(())
    }

    async fn asset(&self, location: &LocationId, key: &AssetKey) -> Result<Option<AssetRecord>> {
        Ok(self
            .lock()
            .loc(location)
            .and_then(|d| d.assets.get(&asset_sort(key)).cloned()))
    }

    async fn assets(&self, location: &LocationId) -> Result<Vec<AssetRecord>> {
        Ok(self
            .lock()
            .loc(location)
            .map(|d| d.assets.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn user(&self, location: &LocationId, id: &ClientUserId) -> Result<Option<UserRecord>> {
        Ok(self
            .lock()
            .loc(location)
            .and_then(|d| d.users.get(id.as_str()).cloned()))
    }

    async fn users_page(
        &self,
        location: &LocationId,
        after: Option<&ClientUserId>,
        limit: u32,
    ) -> Result<Vec<UserRecord>> {
        let limit = check_limit(limit)?;
        let state = self.lock();
        let Some(data) = state.loc(location) else {
            return Ok(Vec::new());
        };
        Ok(
            values_after(&data.users, after.map(|id| id.as_str().to_owned()))
                .take(limit)
                .cloned()
                .collect(),
        )
    }
}

#[async_trait]
impl HoldingStore for MemoryStore {
    async fn apply_sync_page(&self, location: &LocationId, page: &SyncPage) -> Result<Option<u64>> {
        let mut state = self.lock();
        state.check_fence(page.fence.as_ref())?;
        state.loc_mut(location)?;
        if let Some(id) = &page.notification {
            if state.notifications.contains_key(id) {
                return Err(StoreError::already_exists("notification", id));
            }
        }
        for d in &page.documents {
            d.validate()?;
            if let Some(l) = &d.location {
                if state.loc(l).is_none() {
                    return Err(StoreError::not_found("location", l));
                }
            }
        }
        if let Some(id) = &page.notification {
            let at = page.at.unwrap_or_else(Utc::now);
            state
                .notifications
                .insert(id.clone(), (location.clone(), at));
        }
        for d in &page.documents {
            state.put_document(d, None)?;
        }
        let data = state.loc_mut(location)?;
        let at = page.at.unwrap_or_else(Utc::now);

        // Validate everything first, so a failure writes nothing.
        let page_assets: HashSet<AssetSort> = page
            .upsert_assets
            .iter()
            .map(|a| asset_sort(&a.key))
            .collect();
        let asset_known = |k: &AssetKey| {
            page_assets.contains(&asset_sort(k)) || data.assets.contains_key(&asset_sort(k))
        };
        for (key, _) in &page.asset_metadata {
            if !asset_known(key) {
                return Err(StoreError::not_found("asset", key));
            }
        }
        for h in &page.upsert_holdings {
            if !asset_known(&h.asset) {
                return Err(StoreError::not_found("asset", &h.asset));
            }
        }

        for asset in &page.upsert_assets {
            let key = asset_sort(&asset.key);
            let metadata = data.assets.get(&key).and_then(|r| r.metadata.clone());
            data.assets
                .insert(key, AssetRecord::new(asset.clone(), metadata, at));
        }
        for (key, metadata) in &page.asset_metadata {
            if let Some(r) = data.assets.get_mut(&asset_sort(key)) {
                r.metadata = Some(metadata.clone());
                r.updated_at = at;
            }
        }
        for (user, managed) in &page.upsert_users {
            data.users.insert(
                user.client_user_id.as_str().to_owned(),
                UserRecord::new(user.clone(), *managed, at),
            );
        }
        for id in &page.delete_users {
            data.users.remove(id.as_str());
        }
        for h in &page.upsert_holdings {
            data.insert_holding(HoldingRecord {
                location: location.clone(),
                asset: h.asset.clone(),
                holder: h.holder.clone(),
                status: h.status,
                operation_id: h.operation_id.clone(),
                updated_at: at,
            });
        }
        for k in &page.delete_holdings {
            data.remove_holding(&k.sort_key());
        }
        let last = data.append(location, &page.journal);
        if let Some(update) = &page.cursor {
            match &update.cursor {
                Some(c) => {
                    data.cursors.insert(update.endpoint, c.clone());
                }
                None => {
                    data.cursors.remove(&update.endpoint);
                }
            }
        }
        Ok((!page.journal.is_empty()).then_some(last))
    }

    async fn reserve(&self, r: &Reservation) -> Result<u32> {
        let mut state = self.lock();
        state.check_fence(r.fence.as_ref())?;
        let data = state.loc_mut(&r.location)?;
        let akey = asset_sort(&r.asset);
        let Some(asset) = data.assets.get(&akey) else {
            return Err(StoreError::not_found("asset", &r.asset));
        };
        let holdable = u64::from(asset.asset.counts.holdable());
        let held = data.holdings_per_asset.get(&akey).copied().unwrap_or(0);
        let left = r.check(holdable, held, |h| {
            data.holdings.contains_key(&sort_key(&r.asset, h))
        })?;
        for h in &r.holders {
            data.insert_holding(HoldingRecord {
                location: r.location.clone(),
                asset: r.asset.clone(),
                holder: h.clone(),
                status: HoldingStatus::Reserved,
                operation_id: Some(r.operation_id.clone()),
                updated_at: r.at,
            });
        }
        data.append(&r.location, &r.journal);
        Ok(left)
    }

    async fn transition_holdings(
        &self,
        location: &LocationId,
        transitions: &[HoldingTransition],
        journal: &[NewJournalRecord],
        at: DateTime<Utc>,
    ) -> Result<()> {
        let mut state = self.lock();
        let data = state.loc_mut(location)?;
        let mut keys = HashSet::new();
        for t in transitions {
            let key = t.key.sort_key();
            if !keys.insert(key.clone()) {
                return Err(StoreError::invalid(
                    "transitions",
                    format!("{} {} appears more than once", t.key.asset, t.key.holder),
                ));
            }
            let Some(current) = data.holdings.get(&key) else {
                return Err(StoreError::not_found(
                    "holding",
                    format!("{} {}", t.key.asset, t.key.holder),
                ));
            };
            if let Some(expected) = t.expected {
                if current.status != expected {
                    return Err(StoreError::version_mismatch(
                        "holding",
                        format!("{} {}", t.key.asset, t.key.holder),
                        expected,
                        current.status,
                    ));
                }
            }
        }
        for t in transitions {
            let key = t.key.sort_key();
            match t.new_status {
                None => {
                    data.remove_holding(&key);
                }
                Some(status) => {
                    if let Some(r) = data.holdings.get_mut(&key) {
                        r.status = status;
                        if let Some(op) = &t.operation_id {
                            r.operation_id = Some(op.clone());
                        }
                        r.updated_at = at;
                    }
                }
            }
        }
        data.append(location, journal);
        Ok(())
    }

    async fn holding(
        &self,
        location: &LocationId,
        asset: &AssetKey,
        holder: &Holder,
    ) -> Result<Option<HoldingRecord>> {
        Ok(self
            .lock()
            .loc(location)
            .and_then(|d| d.holdings.get(&sort_key(asset, holder)).cloned()))
    }

    async fn holdings_by_asset(
        &self,
        location: &LocationId,
        asset: &AssetKey,
        after: Option<&Holder>,
        limit: u32,
    ) -> Result<Vec<HoldingRecord>> {
        let limit = check_limit(limit)?;
        let state = self.lock();
        let Some(data) = state.loc(location) else {
            return Ok(Vec::new());
        };
        let (adam, pp) = asset_sort(asset);
        let start = match after {
            Some(h) => std::ops::Bound::Excluded((adam.clone(), pp, holder_text(h))),
            None => std::ops::Bound::Included((adam.clone(), pp, String::new())),
        };
        Ok(data
            .holdings
            .range((start, std::ops::Bound::Unbounded))
            .take_while(|(k, _)| k.0 == adam && k.1 == pp)
            .take(limit)
            .map(|(_, v)| v.clone())
            .collect())
    }

    async fn holdings_by_holder(
        &self,
        location: &LocationId,
        holder: &Holder,
    ) -> Result<Vec<HoldingRecord>> {
        Ok(self
            .lock()
            .loc(location)
            .map(|d| {
                d.holdings
                    .values()
                    .filter(|r| &r.holder == holder)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn holdings_by_operation(
        &self,
        location: &LocationId,
        operation_id: &str,
    ) -> Result<Vec<HoldingRecord>> {
        Ok(self
            .lock()
            .loc(location)
            .map(|d| {
                d.holdings
                    .values()
                    .filter(|r| r.operation_id.as_deref() == Some(operation_id))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn holdings_page(
        &self,
        location: &LocationId,
        after: Option<&HoldingKey>,
        limit: u32,
    ) -> Result<Vec<HoldingRecord>> {
        let limit = check_limit(limit)?;
        let state = self.lock();
        let Some(data) = state.loc(location) else {
            return Ok(Vec::new());
        };
        Ok(
            values_after(&data.holdings, after.map(HoldingKey::sort_key))
                .take(limit)
                .cloned()
                .collect(),
        )
    }

    async fn holding_counts(
        &self,
        location: &LocationId,
        asset: &AssetKey,
    ) -> Result<HoldingCounts> {
        let state = self.lock();
        let mut counts = HoldingCounts::default();
        if let Some(data) = state.loc(location) {
            let (adam, pp) = asset_sort(asset);
            for (_, r) in data
                .holdings
                .range((adam.clone(), pp, String::new())..)
                .take_while(|(k, _)| k.0 == adam && k.1 == pp)
            {
                counts.add(r.status, 1);
            }
        }
        Ok(counts)
    }
}

#[async_trait]
impl JournalStore for MemoryStore {
    async fn append_journal(
        &self,
        location: &LocationId,
        records: &[NewJournalRecord],
    ) -> Result<u64> {
        let mut state = self.lock();
        Ok(state.loc_mut(location)?.append(location, records))
    }

    async fn read_journal(&self, query: &JournalQuery) -> Result<Vec<JournalRecord>> {
        let limit = check_limit(query.limit)?;
        let state = self.lock();
        let Some(data) = state.loc(&query.location) else {
            return Ok(Vec::new());
        };
        Ok(data
            .journal
            .iter()
            .filter(|r| query.matches(r))
            .take(limit)
            .cloned()
            .collect())
    }
}

#[async_trait]
impl OperationStore for MemoryStore {
    async fn insert_operation(&self, operation: &Operation) -> Result<()> {
        let mut state = self.lock();
        state.loc_mut(&operation.location)?;
        if operation.id.is_empty() {
            return Err(StoreError::invalid("operation id", "must not be empty"));
        }
        if state.operations.contains_key(&operation.id) {
            return Err(StoreError::already_exists("operation", &operation.id));
        }
        state
            .operations
            .insert(operation.id.clone(), operation.clone());
        Ok(())
    }

    async fn update_operation(&self, id: &str, update: &OperationUpdate) -> Result<Operation> {
        let mut state = self.lock();
        state.check_fence(update.fence.as_ref())?;
        let Some(op) = state.operations.get_mut(id) else {
            return Err(StoreError::not_found("operation", id));
        };
        if let Some(expected) = update.expected_status {
            if op.status != expected {
                return Err(StoreError::version_mismatch(
                    "operation",
                    id,
                    expected,
                    op.status,
                ));
            }
        }
        update.apply_to(op);
        Ok(op.clone())
    }

    async fn operation(&self, id: &str) -> Result<Option<Operation>> {
        Ok(self.lock().operations.get(id).cloned())
    }

    async fn operation_by_event(
        &self,
        location: &LocationId,
        event_id: &EventId,
    ) -> Result<Option<Operation>> {
        Ok(self
            .lock()
            .operations
            .values()
            .find(|op| &op.location == location && op.event_id.as_ref() == Some(event_id))
            .cloned())
    }

    async fn unfinished_operations(&self, location: Option<&LocationId>) -> Result<Vec<Operation>> {
        let state = self.lock();
        let mut ops: Vec<Operation> = state
            .operations
            .values()
            .filter(|op| !op.status.is_finished())
            .filter(|op| location.is_none_or(|l| &op.location == l))
            .cloned()
            .collect();
        ops.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(ops)
    }

    async fn prune_operations(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut state = self.lock();
        let n = state.operations.len();
        state
            .operations
            .retain(|_, op| !(op.status.is_finished() && op.updated_at < before));
        Ok((n - state.operations.len()) as u64)
    }

    async fn put_install_status(&self, record: &InstallRecord) -> Result<()> {
        let mut state = self.lock();
        let data = state.loc_mut(&record.location)?;
        data.installs.insert(
            (holder_text(&record.holder), asset_sort(&record.asset)),
            record.clone(),
        );
        Ok(())
    }

    async fn install_status(
        &self,
        location: &LocationId,
        holder: &Holder,
        asset: &AssetKey,
    ) -> Result<Option<InstallRecord>> {
        Ok(self.lock().loc(location).and_then(|d| {
            d.installs
                .get(&(holder_text(holder), asset_sort(asset)))
                .cloned()
        }))
    }

    async fn install_statuses(
        &self,
        location: &LocationId,
        holder: &Holder,
    ) -> Result<Vec<InstallRecord>> {
        let text = holder_text(holder);
        Ok(self
            .lock()
            .loc(location)
            .map(|d| {
                d.installs
                    .iter()
                    .filter(|((h, _), _)| *h == text)
                    .map(|(_, v)| v.clone())
                    .collect()
            })
            .unwrap_or_default())
    }
}

#[async_trait]
impl NotificationStore for MemoryStore {
    async fn record_notification(
        &self,
        location: &LocationId,
        id: &NotificationId,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let mut state = self.lock();
        state.loc_mut(location)?;
        if state.notifications.contains_key(id) {
            return Ok(false);
        }
        state
            .notifications
            .insert(id.clone(), (location.clone(), at));
        Ok(true)
    }

    async fn prune_notifications(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut state = self.lock();
        let n = state.notifications.len();
        state.notifications.retain(|_, (_, at)| *at >= before);
        Ok((n - state.notifications.len()) as u64)
    }
}

#[async_trait]
impl LeaseStore for MemoryStore {
    async fn acquire_lease(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<Lease> {
        let mut state = self.lock();
        let lease = Lease::acquire(state.leases.get(name), name, owner, ttl, now)?;
        state.leases.insert(name.to_owned(), lease.clone());
        Ok(lease)
    }

    async fn renew_lease(
        &self,
        name: &str,
        owner: &str,
        token: u64,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<Lease> {
        let mut state = self.lock();
        let lease = Lease::renew(state.leases.get(name), name, owner, token, ttl, now)?;
        state.leases.insert(name.to_owned(), lease.clone());
        Ok(lease)
    }

    async fn release_lease(&self, name: &str, owner: &str, token: u64) -> Result<bool> {
        let mut state = self.lock();
        match state.leases.get_mut(name) {
            Some(l) if l.is_held_by(owner, token) => {
                // Keep the row with an expiry in the past, so the next token is higher.
                l.expires_at = DateTime::<Utc>::UNIX_EPOCH;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn lease(&self, name: &str) -> Result<Option<Lease>> {
        Ok(self.lock().leases.get(name).cloned())
    }
}

#[async_trait]
impl DocumentStore for MemoryStore {
    async fn put_document(
        &self,
        document: &NewDocument,
        expected_revision: Option<u64>,
    ) -> Result<u64> {
        self.lock().put_document(document, expected_revision)
    }

    async fn document(&self, collection: &str, key: &str) -> Result<Option<Document>> {
        Ok(self
            .lock()
            .documents
            .get(&(collection.to_owned(), key.to_owned()))
            .cloned())
    }

    async fn documents(&self, query: &DocumentQuery) -> Result<Vec<Document>> {
        let limit = check_limit(query.limit)?;
        let state = self.lock();
        let start = (query.collection.clone(), String::new());
        Ok(state
            .documents
            .range(start..)
            .take_while(|((c, _), _)| *c == query.collection)
            .map(|(_, d)| d)
            .filter(|d| query.matches(d))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn delete_document(
        &self,
        collection: &str,
        key: &str,
        expected_revision: Option<u64>,
    ) -> Result<bool> {
        let mut state = self.lock();
        let k = (collection.to_owned(), key.to_owned());
        let current = state.documents.get(&k).map_or(0, |d| d.revision);
        if expected_revision.is_some_and(|e| e != 0) {
            StoreError::check_revision("document", key, expected_revision, current)?;
        }
        Ok(state.documents.remove(&k).is_some())
    }

    async fn prune_documents(
        &self,
        collection: &str,
        statuses: &[&str],
        before: DateTime<Utc>,
    ) -> Result<u64> {
        let mut state = self.lock();
        let n = state.documents.len();
        state.documents.retain(|(c, _), d| {
            !(c == collection && statuses.contains(&d.status.as_str()) && d.updated_at < before)
        });
        Ok((n - state.documents.len()) as u64)
    }

    async fn insert_documents(&self, documents: &[NewDocument]) -> Result<Vec<String>> {
        let mut state = self.lock();
        for d in documents {
            d.validate()?;
        }
        let mut inserted = Vec::new();
        for d in documents {
            let k = (d.collection.clone(), d.key.clone());
            if state.documents.contains_key(&k) {
                continue;
            }
            state.put_document(d, Some(0))?;
            inserted.push(d.key.clone());
        }
        Ok(inserted)
    }
}
