//! A `Store` that delegates to another one and fails (or holds back) chosen
//! writes: the fault injection behind the exactly-once tests.
//!
//! Rules match sync pages (`apply_sync_page`), reservations (`reserve`),
//! operation updates (`update_operation`) or lease renewals (`renew_lease`); a
//! matching write either fails with a transient (`Unavailable`) error before
//! reaching the inner store, or waits at a [`Gate`] until the test opens it
//! (a process paused mid-write: a long GC pause, a stalled disk), then goes on.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use vppkit_core::{AssetKey, ClientUserId, EventId, Holder, LocationId, NotificationId};
use vppkit_store::{
    AssetRecord, Document, DocumentQuery, DocumentStore, HoldingCounts, HoldingKey, HoldingRecord,
    HoldingStore, HoldingTransition, InstallRecord, JournalQuery, JournalRecord, JournalStore,
    Lease, LeaseStore, LocationRecord, LocationStore, NewDocument, NewJournalRecord,
    NotificationStore, Operation, OperationStore, OperationUpdate, Reservation, Result, Store,
    StoreError, SyncPage, SyncStatus, SyncSummary, UserRecord,
};

/// Where a paused write waits.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    reached: tokio::sync::Notify,
    open: tokio::sync::Notify,
}

impl Gate {
    pub(crate) fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Waits until a write is held at the gate.
    pub(crate) async fn reached(&self) {
        self.reached.notified().await;
    }

    /// Lets the held write go on.
    pub(crate) fn open(&self) {
        self.open.notify_one();
    }
}

/// What a matching write meets.
#[derive(Clone)]
pub(crate) enum Fault {
    /// Fails with `Unavailable`; nothing is written.
    Fail,
    /// Waits at the gate, then is written (or refused) as usual.
    Pause(Arc<Gate>),
}

type PagePredicate = Box<dyn Fn(&LocationId, &SyncPage) -> bool + Send + Sync>;
type ReservePredicate = Box<dyn Fn(&Reservation) -> bool + Send + Sync>;
type UpdatePredicate = Box<dyn Fn(&str, &OperationUpdate) -> bool + Send + Sync>;
type RenewPredicate = Box<dyn Fn(&str) -> bool + Send + Sync>;

struct Rule<P> {
    matches: P,
    times: usize,
    fault: Fault,
}

/// The fault-injecting wrapper.
pub(crate) struct FaultyStore {
    inner: Arc<dyn Store>,
    pages: Mutex<Vec<Rule<PagePredicate>>>,
    reservations: Mutex<Vec<Rule<ReservePredicate>>>,
    updates: Mutex<Vec<Rule<UpdatePredicate>>>,
    renewals: Mutex<Vec<Rule<RenewPredicate>>>,
    /// Writes failed on purpose so far.
    pub(crate) failed: AtomicUsize,
    /// Writes held at a gate so far.
    pub(crate) paused: AtomicUsize,
    /// What became of each write held at a gate once let go: written, or
    /// the store's error (`Debug`).
    pub(crate) held: Mutex<Vec<std::result::Result<(), String>>>,
}

impl fmt::Debug for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyStore")
            .field("inner", &self.inner)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl FaultyStore {
    pub(crate) fn new(inner: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            pages: Mutex::new(Vec::new()),
            reservations: Mutex::new(Vec::new()),
            updates: Mutex::new(Vec::new()),
            renewals: Mutex::new(Vec::new()),
            failed: AtomicUsize::new(0),
            paused: AtomicUsize::new(0),
            held: Mutex::new(Vec::new()),
        })
    }

    /// The next `times` sync pages that `matches` meet `fault`.
    pub(crate) fn on_page(
        &self,
        times: usize,
        fault: Fault,
        matches: impl Fn(&LocationId, &SyncPage) -> bool + Send + Sync + 'static,
    ) {
        self.pages.lock().unwrap().push(Rule {
            matches: Box::new(matches),
            times,
            fault,
        });
    }

    /// Counts the sync pages with holdings that reach this store, in order, and notes how
    /// many holdings each carried (a rule that never matches).
    pub(crate) fn count_holdings_pages(&self) -> (Arc<AtomicUsize>, Arc<Mutex<Vec<usize>>>) {
        let seen = Arc::new(AtomicUsize::new(0));
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let (counter, sized) = (seen.clone(), sizes.clone());
        self.on_page(usize::MAX, Fault::Fail, move |_, p| {
            if !p.upsert_holdings.is_empty() {
                counter.fetch_add(1, Ordering::SeqCst);
                sized.lock().unwrap().push(p.upsert_holdings.len());
            }
            false
        });
        (seen, sizes)
    }

    /// Holds the sync page with holdings that comes after `n - 1` others (as counted by
    /// `seen`, from [`FaultyStore::count_holdings_pages`]) at `gate`.
    pub(crate) fn pause_holdings_page(&self, seen: &Arc<AtomicUsize>, n: usize, gate: &Arc<Gate>) {
        let seen = seen.clone();
        self.on_page(1, Fault::Pause(gate.clone()), move |_, p| {
            !p.upsert_holdings.is_empty() && seen.load(Ordering::SeqCst) == n
        });
    }

    /// The next `times` reservations that `matches` meet `fault`.
    pub(crate) fn on_reserve(
        &self,
        times: usize,
        fault: Fault,
        matches: impl Fn(&Reservation) -> bool + Send + Sync + 'static,
    ) {
        self.reservations.lock().unwrap().push(Rule {
            matches: Box::new(matches),
            times,
            fault,
        });
    }

    /// The next `times` operation updates that `matches` meet `fault`.
    pub(crate) fn on_update_operation(
        &self,
        times: usize,
        fault: Fault,
        matches: impl Fn(&str, &OperationUpdate) -> bool + Send + Sync + 'static,
    ) {
        self.updates.lock().unwrap().push(Rule {
            matches: Box::new(matches),
            times,
            fault,
        });
    }

    /// The next `times` lease renewals whose lease name `matches` meet `fault`.
    pub(crate) fn on_renew(
        &self,
        times: usize,
        fault: Fault,
        matches: impl Fn(&str) -> bool + Send + Sync + 'static,
    ) {
        self.renewals.lock().unwrap().push(Rule {
            matches: Box::new(matches),
            times,
            fault,
        });
    }

    fn take<P>(rules: &Mutex<Vec<Rule<P>>>, hit: impl Fn(&P) -> bool) -> Option<Fault> {
        let mut rules = rules.lock().unwrap();
        let rule = rules.iter_mut().find(|r| r.times > 0 && hit(&r.matches))?;
        rule.times -= 1;
        Some(rule.fault.clone())
    }

    /// Notes what became of a write that waited at a gate.
    fn after<T>(&self, paused: bool, r: Result<T>) -> Result<T> {
        if paused {
            self.held
                .lock()
                .unwrap()
                .push(r.as_ref().map(drop).map_err(|e| format!("{e:?}")));
        }
        r
    }

    /// Meets a fault; returns whether the write waited at a gate.
    async fn meet(&self, fault: Option<Fault>, what: &str) -> Result<bool> {
        match fault {
            None => Ok(false),
            Some(Fault::Fail) => {
                self.failed.fetch_add(1, Ordering::SeqCst);
                Err(StoreError::unavailable(
                    format!("injected fault: {what} refused"),
                    None,
                ))
            }
            Some(Fault::Pause(gate)) => {
                self.paused.fetch_add(1, Ordering::SeqCst);
                gate.reached.notify_one();
                gate.open.notified().await;
                Ok(true)
            }
        }
    }
}

#[async_trait]
impl DocumentStore for FaultyStore {
    async fn put_document(&self, document: &NewDocument, expected: Option<u64>) -> Result<u64> {
        self.inner.put_document(document, expected).await
    }

    async fn document(&self, collection: &str, key: &str) -> Result<Option<Document>> {
        self.inner.document(collection, key).await
    }

    async fn documents(&self, query: &DocumentQuery) -> Result<Vec<Document>> {
        self.inner.documents(query).await
    }

    async fn delete_document(
        &self,
        collection: &str,
        key: &str,
        expected: Option<u64>,
    ) -> Result<bool> {
        self.inner.delete_document(collection, key, expected).await
    }

    async fn prune_documents(
        &self,
        collection: &str,
        statuses: &[&str],
        before: DateTime<Utc>,
    ) -> Result<u64> {
        self.inner
            .prune_documents(collection, statuses, before)
            .await
    }

    async fn insert_documents(&self, documents: &[NewDocument]) -> Result<Vec<String>> {
        self.inner.insert_documents(documents).await
    }

    async fn all_documents(&self, query: &DocumentQuery) -> Result<Vec<Document>> {
        self.inner.all_documents(query).await
    }
}

#[async_trait]
impl LocationStore for FaultyStore {
    async fn save_location(&self, record: &LocationRecord) -> Result<u64> {
        self.inner.save_location(record).await
    }

    async fn location(&self, id: &LocationId) -> Result<Option<LocationRecord>> {
        self.inner.location(id).await
    }

    async fn locations(&self) -> Result<Vec<LocationRecord>> {
        self.inner.locations().await
    }

    async fn delete_location(&self, id: &LocationId) -> Result<bool> {
        self.inner.delete_location(id).await
    }

    async fn sync_status(&self, location: &LocationId) -> Result<SyncStatus> {
        self.inner.sync_status(location).await
    }

    async fn record_sync_summary(
        &self,
        location: &LocationId,
        summary: &SyncSummary,
    ) -> Result<()> {
        self.inner.record_sync_summary(location, summary).await
    }

    async fn asset(&self, location: &LocationId, key: &AssetKey) -> Result<Option<AssetRecord>> {
        self.inner.asset(location, key).await
    }

    async fn assets(&self, location: &LocationId) -> Result<Vec<AssetRecord>> {
        self.inner.assets(location).await
    }

    async fn user(&self, location: &LocationId, id: &ClientUserId) -> Result<Option<UserRecord>> {
        self.inner.user(location, id).await
    }

    async fn users_page(
        &self,
        location: &LocationId,
        after: Option<&ClientUserId>,
        limit: u32,
    ) -> Result<Vec<UserRecord>> {
        self.inner.users_page(location, after, limit).await
    }
}

#[async_trait]
impl HoldingStore for FaultyStore {
    async fn apply_sync_page(&self, location: &LocationId, page: &SyncPage) -> Result<Option<u64>> {
        let fault = Self::take(&self.pages, |m| m(location, page));
        let paused = self.meet(fault, "sync page").await?;
        let r = self.inner.apply_sync_page(location, page).await;
        self.after(paused, r)
    }

    async fn reserve(&self, reservation: &Reservation) -> Result<u32> {
        let fault = Self::take(&self.reservations, |m| m(reservation));
        let paused = self.meet(fault, "reservation").await?;
        let r = self.inner.reserve(reservation).await;
        self.after(paused, r)
    }

    async fn transition_holdings(
        &self,
        location: &LocationId,
        transitions: &[HoldingTransition],
        journal: &[NewJournalRecord],
        at: DateTime<Utc>,
    ) -> Result<()> {
        self.inner
            .transition_holdings(location, transitions, journal, at)
            .await
    }

    async fn holding(
        &self,
        location: &LocationId,
        asset: &AssetKey,
        holder: &Holder,
    ) -> Result<Option<HoldingRecord>> {
        self.inner.holding(location, asset, holder).await
    }

    async fn holdings_by_asset(
        &self,
        location: &LocationId,
        asset: &AssetKey,
        after: Option<&Holder>,
        limit: u32,
    ) -> Result<Vec<HoldingRecord>> {
        self.inner
            .holdings_by_asset(location, asset, after, limit)
            .await
    }

    async fn holdings_by_holder(
        &self,
        location: &LocationId,
        holder: &Holder,
    ) -> Result<Vec<HoldingRecord>> {
        self.inner.holdings_by_holder(location, holder).await
    }

    async fn holdings_by_operation(
        &self,
        location: &LocationId,
        operation_id: &str,
    ) -> Result<Vec<HoldingRecord>> {
        self.inner
            .holdings_by_operation(location, operation_id)
            .await
    }

    async fn holdings_page(
        &self,
        location: &LocationId,
        after: Option<&HoldingKey>,
        limit: u32,
    ) -> Result<Vec<HoldingRecord>> {
        self.inner.holdings_page(location, after, limit).await
    }

    async fn holding_counts(
        &self,
        location: &LocationId,
        asset: &AssetKey,
    ) -> Result<HoldingCounts> {
        self.inner.holding_counts(location, asset).await
    }
}

#[async_trait]
impl JournalStore for FaultyStore {
    async fn append_journal(
        &self,
        location: &LocationId,
        records: &[NewJournalRecord],
    ) -> Result<u64> {
        self.inner.append_journal(location, records).await
    }

    async fn read_journal(&self, query: &JournalQuery) -> Result<Vec<JournalRecord>> {
        self.inner.read_journal(query).await
    }
}

#[async_trait]
impl OperationStore for FaultyStore {
    async fn insert_operation(&self, operation: &Operation) -> Result<()> {
        self.inner.insert_operation(operation).await
    }

    async fn update_operation(&self, id: &str, update: &OperationUpdate) -> Result<Operation> {
        let fault = Self::take(&self.updates, |m| m(id, update));
        let paused = self.meet(fault, "operation update").await?;
        let r = self.inner.update_operation(id, update).await;
        self.after(paused, r)
    }

    async fn operation(&self, id: &str) -> Result<Option<Operation>> {
        self.inner.operation(id).await
    }

    async fn operation_by_event(
        &self,
        location: &LocationId,
        event_id: &EventId,
    ) -> Result<Option<Operation>> {
        self.inner.operation_by_event(location, event_id).await
    }

    async fn unfinished_operations(&self, location: Option<&LocationId>) -> Result<Vec<Operation>> {
        self.inner.unfinished_operations(location).await
    }

    async fn prune_operations(&self, before: DateTime<Utc>) -> Result<u64> {
        self.inner.prune_operations(before).await
    }

    async fn put_install_status(&self, record: &InstallRecord) -> Result<()> {
        self.inner.put_install_status(record).await
    }

    async fn install_status(
        &self,
        location: &LocationId,
        holder: &Holder,
        asset: &AssetKey,
    ) -> Result<Option<InstallRecord>> {
        self.inner.install_status(location, holder, asset).await
    }

    async fn install_statuses(
        &self,
        location: &LocationId,
        holder: &Holder,
    ) -> Result<Vec<InstallRecord>> {
        self.inner.install_statuses(location, holder).await
    }
}

#[async_trait]
impl NotificationStore for FaultyStore {
    async fn record_notification(
        &self,
        location: &LocationId,
        id: &NotificationId,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        self.inner.record_notification(location, id, at).await
    }

    async fn prune_notifications(&self, before: DateTime<Utc>) -> Result<u64> {
        self.inner.prune_notifications(before).await
    }
}

#[async_trait]
impl LeaseStore for FaultyStore {
    async fn acquire_lease(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<Lease> {
        self.inner.acquire_lease(name, owner, ttl, now).await
    }

    async fn renew_lease(
        &self,
        name: &str,
        owner: &str,
        token: u64,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<Lease> {
        let fault = Self::take(&self.renewals, |m| m(name));
        let paused = self.meet(fault, "lease renewal").await?;
        let r = self.inner.renew_lease(name, owner, token, ttl, now).await;
        self.after(paused, r)
    }

    async fn release_lease(&self, name: &str, owner: &str, token: u64) -> Result<bool> {
        self.inner.release_lease(name, owner, token).await
    }

    async fn lease(&self, name: &str) -> Result<Option<Lease>> {
        self.inner.lease(name).await
    }
}

/// A short name of what the engine made of a notification.
pub(crate) fn outcome_name(o: &vppkit_engine::NotificationOutcome) -> &'static str {
    use vppkit_engine::NotificationOutcome as O;
    match o {
        O::Applied { .. } => "applied",
        O::Duplicate => "duplicate",
        O::Test => "test",
        O::Ignored(_) => "ignored",
        O::Deferred(_) => "deferred",
        _ => "other",
    }
}

/// An engine over `store` (not the world's), whose webhook receiver hands
/// Apple's notifications to it and keeps every answer it gave.
pub(crate) struct Hooked {
    pub(crate) engine: vppkit_engine::Engine,
    pub(crate) sink: Arc<crate::support::RecordingSink>,
    pub(crate) answers: Arc<Mutex<Vec<(u16, &'static str)>>>,
}

pub(crate) async fn hooked_engine(
    w: &crate::support::World,
    store: Arc<dyn Store>,
    config: vppkit_engine::EngineConfig,
    f: impl FnOnce(vppkit_engine::EngineBuilder) -> vppkit_engine::EngineBuilder,
) -> Hooked {
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};

    type Slot = Arc<Mutex<Option<vppkit_engine::Engine>>>;
    #[derive(Clone)]
    struct Hook {
        slot: Slot,
        answers: Arc<Mutex<Vec<(u16, &'static str)>>>,
    }
    async fn hook(State(h): State<Hook>, headers: HeaderMap, body: Bytes) -> StatusCode {
        let engine = h.slot.lock().unwrap().clone();
        let Some(engine) = engine else {
            return StatusCode::SERVICE_UNAVAILABLE;
        };
        let pairs: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let (status, what) = match engine.handle_notification(pairs, &body).await {
            Ok(o) => (o.http_status(), outcome_name(&o)),
            Err(e) => (e.http_status(), "refused"),
        };
        h.answers.lock().unwrap().push((status, what));
        StatusCode::from_u16(status).unwrap()
    }

    let slot: Slot = Arc::default();
    let answers: Arc<Mutex<Vec<(u16, &'static str)>>> = Arc::default();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(Hook {
            slot: slot.clone(),
            answers: answers.clone(),
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let config = config.with_webhook(
        vppkit_engine::WebhookConfig::loopback_http(
            &url,
            vppkit_core::Secret::new(crate::support::HOOK_SECRET),
        )
        .unwrap(),
    );
    let sink = Arc::new(crate::support::RecordingSink::default());
    let b = vppkit_engine::Engine::builder(store, config)
        .sink(sink.clone())
        .apple_base_url(w.sim.base_url())
        .customize_client(|c| {
            c.pacing(vppkit_client::Pacing::Off)
                .retry_policy(crate::support::fast_retries())
        });
    let engine = f(b).build().unwrap();
    *slot.lock().unwrap() = Some(engine.clone());
    Hooked {
        engine,
        sink,
        answers,
    }
}
