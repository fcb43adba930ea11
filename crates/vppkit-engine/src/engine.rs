//! The engine: shared state, location locking (in-process mutex + store lease),
//! Apple clients per location, and token state bookkeeping.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex as StdMutex};

use chrono::{DateTime, Utc};
use vppkit_client::{Client, ClientBuilder, Envelope};
use vppkit_core::{LocationId, MdmInfo, TokenState};
use vppkit_store::{
    ErrorKind, Fence, Lease, LocationRecord, NewDocument, NewJournalRecord, Store, StoreError,
};

use crate::book::{Book, TOKEN_KIND};
use crate::clock::{Clock, SystemClock};
use crate::config::EngineConfig;
use crate::error::{EngineError, Result};
use crate::report::PlanItems;
use crate::sink::CommandSink;
use crate::token_state::{observe, TokenFacts, TokenObservation, TokenRejection};

type ClientCustomizer = Arc<dyn Fn(ClientBuilder) -> ClientBuilder + Send + Sync>;

/// A step of an apply, for fault injection in tests (outside semver).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ApplyStep {
    /// Licences reserved in the ledger and the store, operation stored.
    Reserved,
    /// The operation is marked as sent; the request is about to go to Apple.
    MarkedSent,
    /// Apple accepted the request; its event id is not yet recorded.
    AppleAccepted,
    /// The event id is recorded in the store and the ledger.
    EventRecorded,
    /// The event's outcome is applied (confirm or roll back).
    OutcomeApplied,
    /// The MDM commands were handed to the sink; the operation is not yet closed.
    CommandsSent,
}

/// Decides, at each apply step, whether to "crash" there (feature `test-hooks`).
#[cfg(feature = "test-hooks")]
pub type CrashHook = Arc<dyn Fn(ApplyStep) -> bool + Send + Sync>;

/// Builds an [`Engine`].
pub struct EngineBuilder {
    store: Arc<dyn Store>,
    config: EngineConfig,
    clock: Arc<dyn Clock>,
    sink: Option<Arc<dyn CommandSink>>,
    base_url: Option<String>,
    customize: Option<ClientCustomizer>,
    #[cfg(feature = "test-hooks")]
    crash_hook: Option<CrashHook>,
}

impl fmt::Debug for EngineBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineBuilder")
            .field("config", &self.config)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl EngineBuilder {
    /// The clock (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Where MDM commands go (required).
    pub fn sink(mut self, sink: Arc<dyn CommandSink>) -> Self {
        self.sink = Some(sink);
        self
    }

    /// Apple's base URL (default: Apple's production URL); the simulator's URL in tests.
    pub fn apple_base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// Adjusts every Apple client the engine builds (timeouts, retry policy,
    /// pacing, your own `reqwest::Client`, the metadata lookup URL, ...).
    pub fn customize_client(
        mut self,
        f: impl Fn(ClientBuilder) -> ClientBuilder + Send + Sync + 'static,
    ) -> Self {
        self.customize = Some(Arc::new(f));
        self
    }

    /// Stops an apply at a step as if the process had crashed (feature
    /// `test-hooks`, for tests; outside semver).
    #[cfg(feature = "test-hooks")]
    pub fn crash_hook(mut self, hook: CrashHook) -> Self {
        self.crash_hook = Some(hook);
        self
    }

    /// Builds the engine.
    pub fn build(self) -> Result<Engine> {
        self.config.validate()?;
        let sink = self
            .sink
            .ok_or(EngineError::Config(crate::ConfigError::MissingSink))?;
        Ok(Engine {
            inner: Arc::new(Inner {
                store: self.store,
                config: self.config,
                clock: self.clock,
                sink,
                base_url: self.base_url,
                customize: self.customize,
                #[cfg(feature = "test-hooks")]
                crash_hook: self.crash_hook,
                clients: StdMutex::new(HashMap::new()),
                books: StdMutex::new(BookCache::default()),
                plan_sessions: tokio::sync::Mutex::new(HashMap::new()),
                desired_parts: StdMutex::new(crate::desired::PartCache::default()),
                wake: tokio::sync::Notify::new(),
            }),
        })
    }
}

/// Drives Apple VPP locations for an MDM. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("instance", &self.inner.config.instance_id)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) config: EngineConfig,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) sink: Arc<dyn CommandSink>,
    base_url: Option<String>,
    customize: Option<ClientCustomizer>,
    #[cfg(feature = "test-hooks")]
    crash_hook: Option<CrashHook>,
    clients: StdMutex<HashMap<LocationId, (String, Client)>>,
    books: StdMutex<BookCache>,
    /// The reconcile loop's incremental planners, one per pass scope (every
    /// location, or one): a pass after one change re-plans only the apps the
    /// change can affect.
    pub(crate) plan_sessions:
        tokio::sync::Mutex<HashMap<Option<LocationId>, vppkit_rules::PlanSession>>,
    /// The desired-state parts last read, by document key (a part is never
    /// rewritten under its key): a pass reads the small head and parses the
    /// directory again only when it changed.
    pub(crate) desired_parts: StdMutex<crate::desired::PartCache>,
    /// Wakes the scheduler: a trigger was stored, or commands were queued.
    pub(crate) wake: tokio::sync::Notify,
}

pub(crate) fn lock<T>(m: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Engine {
    /// Starts building an engine over a store with a configuration.
    pub fn builder(store: Arc<dyn Store>, config: EngineConfig) -> EngineBuilder {
        EngineBuilder {
            store,
            config,
            clock: Arc::new(SystemClock),
            sink: None,
            base_url: None,
            customize: None,
            #[cfg(feature = "test-hooks")]
            crash_hook: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// How many locations' ledgers this instance holds in memory (at most
    /// [`EngineConfig::ledger_cache_capacity`](crate::EngineConfig::ledger_cache_capacity)
    /// while none is in use).
    pub fn cached_ledgers(&self) -> usize {
        lock(&self.inner.books).slots.len()
    }
}

impl Inner {
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub(crate) fn our_mdm_id(&self) -> &str {
        &self.config.mdm_info.id
    }

    /// Whether the crash hook asks to stop at this step.
    pub(crate) fn crash_at(&self, step: ApplyStep) -> Result<()> {
        #[cfg(feature = "test-hooks")]
        if let Some(h) = &self.crash_hook {
            if h(step) {
                return Err(EngineError::Crashed(step));
            }
        }
        let _ = step;
        Ok(())
    }

    /// A client builder for a token, with the engine's settings.
    pub(crate) fn client_builder(&self, token: &vppkit_core::Secret) -> ClientBuilder {
        let mut b = ClientBuilder::new(token).expected_mdm_id(self.our_mdm_id().to_owned());
        if let Some(url) = &self.base_url {
            b = b.base_url(url.clone());
        }
        if let Some(f) = &self.customize {
            b = f(b);
        }
        b
    }

    /// The location's client (one per token, so pacing is per token).
    pub(crate) fn client(&self, record: &LocationRecord) -> Result<Client> {
        let fingerprint = token_fingerprint(&record.token);
        let mut clients = lock(&self.clients);
        if let Some((fp, c)) = clients.get(&record.id) {
            if *fp == fingerprint {
                return Ok(c.clone());
            }
        }
        let client = self.client_builder(&record.token).build()?;
        clients.insert(record.id.clone(), (fingerprint, client.clone()));
        Ok(client)
    }

    pub(crate) fn forget_client(&self, location: &LocationId) {
        lock(&self.clients).remove(location);
    }

    fn book_slot(&self, location: &LocationId) -> Arc<tokio::sync::Mutex<Option<Book>>> {
        let capacity = self.config.ledger_cache_capacity;
        lock(&self.books).slot(location, capacity)
    }

    pub(crate) fn forget_book(&self, location: &LocationId) {
        lock(&self.books).slots.remove(location);
    }

    /// Locks a location for work: in-process first, then the store lease (so
    /// other engine instances keep off), then brings its ledger up to date.
    pub(crate) async fn lock_location(&self, location: &LocationId) -> Result<LocationGuard> {
        let slot = self.book_slot(location);
        let mut book = slot.lock_owned().await;
        let record = self
            .store
            .location(location)
            .await?
            .ok_or_else(|| EngineError::UnknownLocation(location.clone()))?;
        let lease = self.acquire_lease(location).await?;
        forget_unconfirmed(&mut book).await;
        let loaded = match book.as_mut() {
            Some(b) => b.catch_up(self.store.as_ref()).await,
            None => match Book::load(self.store.as_ref(), location).await {
                Ok(b) => {
                    *book = Some(b);
                    Ok(())
                }
                Err(e) => Err(e),
            },
        };
        if let Err(e) = loaded {
            *book = None;
            let _ = self
                .store
                .release_lease(&lease.name, &lease.owner, lease.token)
                .await;
            return Err(e);
        }
        if let Some(b) = book.as_mut() {
            b.fence = Some(Fence::of(&lease));
        }
        Ok(LocationGuard {
            book,
            record,
            lease,
            skipped_records: 0,
        })
    }

    /// Locks a location's ledger in this process only (reads: reports, plans).
    pub(crate) async fn read_location(
        &self,
        location: &LocationId,
    ) -> Result<(tokio::sync::OwnedMutexGuard<Option<Book>>, LocationRecord)> {
        let slot = self.book_slot(location);
        let mut book = slot.lock_owned().await;
        let record = self
            .store
            .location(location)
            .await?
            .ok_or_else(|| EngineError::UnknownLocation(location.clone()))?;
        forget_unconfirmed(&mut book).await;
        let loaded = match book.as_mut() {
            Some(b) => b.catch_up(self.store.as_ref()).await,
            None => Book::load(self.store.as_ref(), location).await.map(|b| {
                *book = Some(b);
            }),
        };
        if let Err(e) = loaded {
            *book = None;
            return Err(e);
        }
        Ok((book, record))
    }

    fn lease_ttl(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.config.lease_duration)
            .unwrap_or_else(|_| chrono::Duration::minutes(2))
    }

    async fn acquire_lease(&self, location: &LocationId) -> Result<Lease> {
        let name = lease_name(location);
        let take = || {
            self.store.acquire_lease(
                &name,
                &self.config.instance_id,
                self.lease_ttl(),
                self.now(),
            )
        };
        let taken = match take().await {
            Err(StoreError::LeaseHeld { .. }) if self.take_over_if_gone(&name).await? => {
                take().await
            }
            other => other,
        };
        match taken {
            Ok(l) => Ok(l),
            Err(StoreError::LeaseHeld { .. }) => Err(EngineError::Busy(location.clone())),
            Err(e) => Err(e.into()),
        }
    }

    /// Releases lease `name` when [`EngineConfig::instance_liveness`] says its holder is
    /// gone (its fencing token then rises with the next holder, so a late write of the
    /// gone holder is refused); returns whether it did.
    async fn take_over_if_gone(&self, name: &str) -> Result<bool> {
        let Some(liveness) = &self.config.instance_liveness else {
            return Ok(false);
        };
        let Some(lease) = self.store.lease(name).await? else {
            return Ok(false);
        };
        if lease.owner == self.config.instance_id || !liveness.is_gone(&lease.owner).await {
            return Ok(false);
        }
        let released = self
            .store
            .release_lease(name, &lease.owner, lease.token)
            .await?;
        if released {
            tracing::warn!(
                lease = name,
                holder = %lease.owner,
                "took over the lease of an instance that is gone"
            );
        }
        Ok(released)
    }

    /// The facts behind a location's token state, from its record.
    pub(crate) fn facts(&self, record: &LocationRecord) -> TokenFacts {
        let mut facts = TokenFacts::new(record.token_expires_at);
        facts.rejection = match record.token_state {
            TokenState::Revoked => Some(TokenRejection::Revoked),
            TokenState::Invalid => Some(TokenRejection::Invalid),
            TokenState::Expired if record.token_expires_at > self.now() => {
                Some(TokenRejection::Expired)
            }
            _ => None,
        };
        facts.claimed_by = record
            .mdm_info
            .clone()
            .filter(|m| m.id != self.our_mdm_id());
        if record.token_state == TokenState::DuplicateLocation {
            facts.duplicate_of = Some(record.id.clone());
        }
        facts
    }

    /// Applies a token observation to a location record; saves the record and
    /// journals the transition when anything changed. Returns the new state.
    pub(crate) async fn observe_token(
        &self,
        record: &mut LocationRecord,
        observation: TokenObservation,
    ) -> Result<TokenState> {
        let now = self.now();
        let facts = self.facts(record);
        let (next, transition) = observe(
            &record.id,
            Some(record.token_state),
            &facts,
            &observation,
            self.our_mdm_id(),
            now,
            self.config.expiry_warning,
        );
        let state = next.state(now, self.config.expiry_warning);
        let mdm_info: Option<MdmInfo> = match &observation {
            TokenObservation::Answer { mdm_info, .. } => mdm_info.clone(),
            TokenObservation::ClaimedByUs => Some(self.config.mdm_info.clone()),
            _ => record.mdm_info.clone(),
        };
        let changed = state != record.token_state
            || next.expires_at != record.token_expires_at
            || mdm_info != record.mdm_info;
        if !changed {
            return Ok(state);
        }
        if let Some(t) = &transition {
            tracing::info!(
                location = %record.id,
                from = ?t.from,
                to = %t.to,
                cause = ?t.cause,
                "token state changed"
            );
        }
        let expires_at = next.expires_at;
        let saved = self
            .save_record(record, |r| {
                r.token_state = state;
                r.token_expires_at = expires_at;
                r.mdm_info = mdm_info.clone();
                r.updated_at = now;
            })
            .await?;
        *record = saved;
        if let Some(t) = transition {
            let body = serde_json::to_value(&t).unwrap_or(serde_json::Value::Null);
            let rec = NewJournalRecord::new(now, format!("{:?}", t.cause), TOKEN_KIND, body);
            self.store.append_journal(&record.id, &[rec]).await?;
        }
        Ok(state)
    }

    /// Saves a change to a location record, reloading and reapplying it if the
    /// stored revision moved on.
    pub(crate) async fn save_record(
        &self,
        record: &LocationRecord,
        change: impl Fn(&mut LocationRecord) + Send,
    ) -> Result<LocationRecord> {
        let mut current = record.clone();
        for _ in 0..5 {
            change(&mut current);
            match self.store.save_location(&current).await {
                Ok(rev) => {
                    current.revision = rev;
                    return Ok(current);
                }
                Err(e) if e.kind() == ErrorKind::VersionMismatch => {
                    current = self
                        .store
                        .location(&record.id)
                        .await?
                        .ok_or_else(|| EngineError::UnknownLocation(record.id.clone()))?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(EngineError::Busy(record.id.clone()))
    }

    /// Feeds an Apple answer's envelope to the token state.
    pub(crate) async fn observe_envelope(
        &self,
        record: &mut LocationRecord,
        envelope: &Envelope,
    ) -> Result<TokenState> {
        let unchanged = envelope.mdm_info == record.mdm_info
            && envelope
                .token_expiration_date
                .is_none_or(|d| d == record.token_expires_at)
            && !matches!(
                record.token_state,
                TokenState::Invalid | TokenState::Revoked | TokenState::Expired
            );
        if unchanged {
            return Ok(record.token_state);
        }
        self.observe_token(
            record,
            TokenObservation::Answer {
                mdm_info: envelope.mdm_info.clone(),
                expires_at: envelope.token_expiration_date,
            },
        )
        .await
    }

    /// Feeds an Apple error to the token state (when it is about the token) and
    /// gives the error back.
    pub(crate) async fn observe_error(
        &self,
        record: &mut LocationRecord,
        error: vppkit_client::Error,
    ) -> EngineError {
        if let Some(problem) = error.token_problem() {
            let rejection = match problem {
                vppkit_client::TokenProblem::Expired => TokenRejection::Expired,
                vppkit_client::TokenProblem::Revoked => TokenRejection::Revoked,
                _ => TokenRejection::Invalid,
            };
            if let Err(e) = self
                .observe_token(record, TokenObservation::Rejected(rejection))
                .await
            {
                tracing::warn!(location = %record.id, error = %e, "could not record the token state");
            }
        }
        EngineError::Apple(error)
    }

    /// Refuses a write when the token's state stops writes.
    pub(crate) fn check_writes(&self, record: &LocationRecord) -> Result<()> {
        if record.token_state.allows_writes() {
            Ok(())
        } else {
            Err(EngineError::WritesStopped {
                location: record.id.clone(),
                state: record.token_state,
            })
        }
    }

    /// Refuses a read when the token's state stops reads.
    pub(crate) fn check_reads(&self, record: &LocationRecord) -> Result<()> {
        if record.token_state.allows_reads() {
            Ok(())
        } else {
            Err(EngineError::ReadsStopped {
                location: record.id.clone(),
                state: record.token_state,
            })
        }
    }

    /// Wakes the scheduler (it looks at the stored marks at once).
    pub(crate) fn wake_scheduler(&self) {
        self.wake.notify_one();
    }

    /// Wakes the scheduler to hand out queued commands.
    pub(crate) fn wake_dispatcher(&self) {
        self.wake.notify_one();
    }

    /// Records that a location's users and assignments were just walked in full.
    pub(crate) async fn set_last_full_sync(&self, location: &LocationId) -> Result<()> {
        let doc = NewDocument::new(
            LAST_FULL_SYNC,
            location.as_str(),
            "done",
            serde_json::json!({ "at": self.now() }),
            self.now(),
        )
        .with_location(location.clone());
        self.store.put_document(&doc, None).await?;
        Ok(())
    }

    /// When a location's users and assignments were last walked in full, if known.
    pub(crate) async fn last_full_sync(
        &self,
        location: &LocationId,
    ) -> Result<Option<DateTime<Utc>>> {
        let Some(doc) = self
            .store
            .document(LAST_FULL_SYNC, location.as_str())
            .await?
        else {
            return Ok(None);
        };
        Ok(doc
            .body
            .get("at")
            .and_then(|v| serde_json::from_value(v.clone()).ok()))
    }

    /// Stores what the last plan said about a location (`None`: the items
    /// attributed to no location).
    pub(crate) async fn set_plan_notes(
        &self,
        location: Option<&LocationId>,
        notes: &PlanItems,
    ) -> Result<()> {
        let body = serde_json::to_value(notes).unwrap_or_default();
        let mut doc = NewDocument::new(
            PLAN_NOTES,
            plan_notes_key(location),
            "planned",
            body,
            self.now(),
        );
        if let Some(l) = location {
            doc = doc.with_location(l.clone());
        }
        self.store.put_document(&doc, None).await?;
        Ok(())
    }

    /// What the last plan applied (by any instance, in any process) said about a
    /// location (`None`: the items attributed to no location); empty when no
    /// plan was applied yet.
    pub(crate) async fn plan_notes(&self, location: Option<&LocationId>) -> Result<PlanItems> {
        let Some(doc) = self
            .store
            .document(PLAN_NOTES, &plan_notes_key(location))
            .await?
        else {
            return Ok(PlanItems::default());
        };
        Ok(serde_json::from_value(doc.body).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "stored plan notes are unreadable; ignored");
            PlanItems::default()
        }))
    }
}

/// When each location was last walked in full (key: the location id).
const LAST_FULL_SYNC: &str = "vppkit-engine/last-full-sync";
/// What the last plan said per location (key: the location id, or `*` for the
/// items of no location).
const PLAN_NOTES: &str = "vppkit-engine/plan-notes";

fn plan_notes_key(location: Option<&LocationId>) -> String {
    location.map_or_else(|| "*".to_owned(), |l| l.as_str().to_owned())
}

/// The name of the lease that gives one instance a location.
pub(crate) fn lease_name(location: &LocationId) -> String {
    format!("vppkit-engine/location/{location}")
}

/// A short, non-reversible fingerprint of a token, to notice a renewed token
/// without keeping or comparing secrets in the clear.
fn token_fingerprint(token: &vppkit_core::Secret) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    token.expose().hash(&mut h);
    format!("{:016x}", h.finish())
}

/// One location's ledger, loaded on first use, locked while in use.
type BookSlot = Arc<tokio::sync::Mutex<Option<Book>>>;

/// The ledgers of the locations this instance works on, bounded: past the
/// capacity, the least recently used ledger nobody is using is dropped (it is
/// rebuilt from the store's journal when needed again).
#[derive(Default)]
struct BookCache {
    slots: HashMap<LocationId, (u64, BookSlot)>,
    clock: u64,
}

impl BookCache {
    fn slot(
        &mut self,
        location: &LocationId,
        capacity: usize,
    ) -> Arc<tokio::sync::Mutex<Option<Book>>> {
        self.clock += 1;
        let now = self.clock;
        if let Some((used, slot)) = self.slots.get_mut(location) {
            *used = now;
            return slot.clone();
        }
        while self.slots.len() >= capacity {
            // The oldest slot no task holds (only the map refers to it).
            let victim = self
                .slots
                .iter()
                .filter(|(_, (_, slot))| Arc::strong_count(slot) == 1)
                .min_by_key(|(_, (used, _))| *used)
                .map(|(l, _)| l.clone());
            match victim {
                Some(l) => {
                    self.slots.remove(&l);
                }
                None => break,
            }
        }
        let slot = Arc::new(tokio::sync::Mutex::new(None));
        self.slots.insert(location.clone(), (now, slot.clone()));
        slot
    }
}

/// Drops a cached ledger that holds changes the store never confirmed (the work that made
/// them was dropped before their write ended: `Book::is_ahead`), once a write such work
/// left running ended; the caller reads it again from the store.
async fn forget_unconfirmed(book: &mut Option<Book>) {
    if let Some(b) = book.as_ref() {
        b.writes_ended().await;
        if b.is_ahead() {
            tracing::info!(
                location = %b.ledger.location(),
                "the cached ledger holds changes the store never confirmed: reading it again"
            );
            *book = None;
        }
    }
}

/// A location locked for work by this instance.
pub(crate) struct LocationGuard {
    book: tokio::sync::OwnedMutexGuard<Option<Book>>,
    pub(crate) record: LocationRecord,
    lease: Lease,
    /// Records Apple sent that the walks under this guard could not read (left
    /// out and logged by the client; counted for the sync's outcome).
    pub(crate) skipped_records: u64,
}

impl LocationGuard {
    /// The fencing token of the lease this guard holds.
    pub(crate) fn fence(&self) -> Fence {
        Fence::of(&self.lease)
    }

    pub(crate) fn book(&mut self) -> &mut Book {
        self.book
            .as_mut()
            .expect("a location guard always holds a loaded book")
    }

    /// The location's ledger cache slot (held, it is not evicted).
    pub(crate) fn slot(&self) -> BookSlot {
        tokio::sync::OwnedMutexGuard::mutex(&self.book).clone()
    }

    pub(crate) fn id(&self) -> LocationId {
        self.record.id.clone()
    }

    /// Whether the guard still holds its ledger (see [`LocationGuard::invalidate`]).
    pub(crate) fn has_book(&self) -> bool {
        self.book.is_some()
    }

    /// Drops the cached ledger (after a failed write, it may be ahead of the store).
    pub(crate) fn invalidate(&mut self) {
        *self.book = None;
    }

    /// Puts a freshly loaded ledger in place.
    pub(crate) fn set_book(&mut self, book: Book) {
        *self.book = Some(book);
    }

    /// Whether [`LocationGuard::keep_lease`] would go to the store now: less than half
    /// of the lease is left.
    pub(crate) fn lease_due(&self, inner: &Inner) -> bool {
        self.lease.expires_at - inner.now() <= inner.lease_ttl() / 2
    }

    /// Renews the lease when less than half of it is left. When the lease ran out and
    /// another instance held the location meanwhile, the ledger reads what it wrote: the
    /// caller's ledger must match the store then (no page applied but not yet written).
    pub(crate) async fn keep_lease(&mut self, inner: &Inner) -> Result<()> {
        let now = inner.now();
        if !self.lease_due(inner) {
            return Ok(());
        }
        match inner
            .store
            .renew_lease(
                &self.lease.name,
                &self.lease.owner,
                self.lease.token,
                inner.lease_ttl(),
                now,
            )
            .await
        {
            Ok(l) => {
                self.lease = l;
                Ok(())
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                // Our lease ran out (a slow store, a long page) and nobody took
                // it: take it again, and read what another instance may have
                // written meanwhile before going on.
                let lease = inner.acquire_lease(&self.record.id).await?;
                let renewed = lease.token == self.lease.token;
                if let Some(book) = self.book.as_mut() {
                    book.fence = Some(Fence::of(&lease));
                }
                self.lease = lease;
                if !renewed {
                    if let Some(book) = self.book.as_mut() {
                        book.catch_up(inner.store.as_ref()).await?;
                    }
                }
                Ok(())
            }
            Err(e) if e.kind() == ErrorKind::Conflict => {
                Err(EngineError::Busy(self.record.id.clone()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Releases the lease (the in-process lock goes with the guard).
    pub(crate) async fn release(self, inner: &Inner) {
        if let Err(e) = inner
            .store
            .release_lease(&self.lease.name, &self.lease.owner, self.lease.token)
            .await
        {
            tracing::warn!(location = %self.record.id, error = %e, "could not release the lease");
        }
    }
}
