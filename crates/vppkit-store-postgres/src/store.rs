//! The PostgreSQL store: connecting, retrying, and the `Store` implementation.

use std::fmt;
use std::future::Future;
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};
use vppkit_core::{AssetKey, ClientUserId, EventId, Holder, LocationId, NotificationId};
use vppkit_store::{
    AssetRecord, HoldingCounts, HoldingKey, HoldingRecord, HoldingStore, HoldingTransition,
    InstallRecord, JournalQuery, JournalRecord, JournalStore, Lease, LeaseStore, LocationRecord,
    LocationStore, NewJournalRecord, NotificationStore, Operation, OperationStore, OperationUpdate,
    Reservation, Result, SecretCipher, StoreError, SyncPage, SyncStatus, SyncSummary, UserRecord,
};

use crate::error::{db_error, TxResult};
use crate::options::PostgresOptions;
use crate::{holdings, leases, locations, migrate, records, sync};

/// A [`Store`](vppkit_store::Store) on PostgreSQL, for one or several manager instances sharing a database.
///
/// Cheap to clone (clones share the connection pool). Every write that must be
/// atomic runs in one transaction; reservations lock the asset's row
/// (`SELECT ... FOR UPDATE`), so two instances never spend the same licence.
/// Transactions PostgreSQL aborts for a serialization failure or a deadlock are run
/// again a bounded number of times ([`PostgresOptions::max_conflict_retries`]).
#[derive(Clone)]
pub struct PostgresStore {
    pub(crate) pool: PgPool,
    pub(crate) cipher: SecretCipher,
    schema: Option<String>,
    max_retries: u32,
    pub(crate) durable_sync_pages: bool,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.schema)
            .field("pool_size", &self.pool.size())
            .field("cipher", &self.cipher)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects, creates the schema when asked to, and migrates (see [`PostgresOptions`]).
    ///
    /// Errors: the server cannot be reached (unavailable), the schema is newer
    /// than this build ([`StoreError::SchemaTooNew`]) or a migration fails.
    pub async fn connect(options: PostgresOptions) -> Result<Self> {
        if let (Some(schema), true) = (&options.schema, options.create_schema) {
            create_schema(&options, schema).await?;
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .min_connections(options.min_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(options.connect.clone())
            .await
            .map_err(|e| db_error(e, "connecting to PostgreSQL"))?;
        migrate::prepare(&pool, options.migrate).await?;
        Ok(Self {
            pool,
            cipher: options.cipher,
            schema: options.schema,
            max_retries: options.max_conflict_retries,
            durable_sync_pages: options.durable_sync_pages,
        })
    }

    /// Connects with a URL and default settings (see [`PostgresOptions::from_url`]).
    pub async fn connect_url(url: &str, cipher: SecretCipher) -> Result<Self> {
        Self::connect(PostgresOptions::from_url(url, cipher)?).await
    }

    /// Opens a store whose tables live in `schema` of the database at `url`,
    /// creating the schema when needed. Several stores (several "instances") can
    /// be opened on one schema; stores on different schemas never see each other.
    pub async fn connect_in_schema(url: &str, schema: &str, cipher: SecretCipher) -> Result<Self> {
        Self::connect(
            PostgresOptions::from_url(url, cipher)?
                .schema(schema)?
                .create_schema(true),
        )
        .await
    }

    /// The schema version of the database (the newest migration applied).
    pub async fn schema_version(&self) -> Result<i64> {
        migrate::applied_version(&self.pool).await
    }

    /// The newest schema version this build knows and migrates to.
    pub fn supported_schema_version() -> i64 {
        migrate::latest_version()
    }

    /// The schema the store works in, when one was chosen.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// Closes every connection of the pool; later calls fail as unavailable.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Runs `body` (usually one transaction) and runs it again when PostgreSQL
    /// aborted it for a serialization failure or a deadlock, up to the configured
    /// number of times; then the call fails as unavailable.
    pub(crate) async fn retry<T, F, Fut>(&self, what: &'static str, body: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = TxResult<T>>,
    {
        retry(self.max_retries, what, body).await
    }
}

/// Runs `body` again (after a short, growing, jittered pause) while it fails with
/// a serialization failure or a deadlock, at most `max_retries` more times.
pub(crate) async fn retry<T, F, Fut>(max_retries: u32, what: &'static str, mut body: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = TxResult<T>>,
{
    let mut attempt = 0u32;
    loop {
        match body().await {
            Ok(value) => return Ok(value),
            Err(failure) if failure.is_retryable() && attempt < max_retries => {
                drop(failure);
                attempt += 1;
                tracing::debug!(what, attempt, "transaction aborted by a conflict; retrying");
                tokio::time::sleep(backoff(attempt)).await;
            }
            Err(failure) => return Err(failure.into_store(what)),
        }
    }
}

/// Exponential backoff with jitter: 2 ms, 4 ms, ... capped at 250 ms, plus up to as much again.
fn backoff(attempt: u32) -> StdDuration {
    use rand::Rng as _;
    let base = 2u64.saturating_mul(1u64 << attempt.min(7)).min(250);
    let jitter = rand::thread_rng().gen_range(0..=base);
    StdDuration::from_millis(base + jitter)
}

async fn create_schema(options: &PostgresOptions, schema: &str) -> Result<()> {
    let mut conn = PgConnection::connect_with(&options.connect)
        .await
        .map_err(|e| db_error(e, "connecting to PostgreSQL"))?;
    // The name was checked to be a plain identifier: quoting it is enough.
    let sql = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
    let result = sqlx::query(&sql).execute(&mut conn).await;
    let _ = conn.close().await;
    match result {
        Ok(_) => Ok(()),
        // Two instances creating it at once: one of them loses the race, harmlessly.
        Err(e)
            if matches!(
                crate::error::sqlstate(&e).as_deref(),
                Some("23505" | "42P06")
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(db_error(e, "creating the schema")),
    }
}

#[async_trait]
impl LocationStore for PostgresStore {
    async fn save_location(&self, record: &LocationRecord) -> Result<u64> {
        locations::save(self, record).await
    }

    async fn location(&self, id: &LocationId) -> Result<Option<LocationRecord>> {
        locations::get(self, id).await
    }

    async fn locations(&self) -> Result<Vec<LocationRecord>> {
        locations::list(self).await
    }

    async fn delete_location(&self, id: &LocationId) -> Result<bool> {
        locations::delete(self, id).await
    }

    async fn sync_status(&self, location: &LocationId) -> Result<SyncStatus> {
        sync::status(self, location).await
    }

    async fn record_sync_summary(
        &self,
        location: &LocationId,
        summary: &SyncSummary,
    ) -> Result<()> {
        sync::record_summary(self, location, summary).await
    }

    async fn asset(&self, location: &LocationId, key: &AssetKey) -> Result<Option<AssetRecord>> {
        sync::asset(self, location, key).await
    }

    async fn assets(&self, location: &LocationId) -> Result<Vec<AssetRecord>> {
        sync::assets(self, location).await
    }

    async fn user(&self, location: &LocationId, id: &ClientUserId) -> Result<Option<UserRecord>> {
        records::user(self, location, id).await
    }

    async fn users_page(
        &self,
        location: &LocationId,
        after: Option<&ClientUserId>,
        limit: u32,
    ) -> Result<Vec<UserRecord>> {
        records::users_page(self, location, after, limit).await
    }
}

#[async_trait]
impl HoldingStore for PostgresStore {
    async fn apply_sync_page(&self, location: &LocationId, page: &SyncPage) -> Result<Option<u64>> {
        sync::apply_page(self, location, page).await
    }

    async fn reserve(&self, reservation: &Reservation) -> Result<u32> {
        holdings::reserve(self, reservation).await
    }

    async fn transition_holdings(
        &self,
        location: &LocationId,
        transitions: &[HoldingTransition],
        journal: &[NewJournalRecord],
        at: DateTime<Utc>,
    ) -> Result<()> {
        holdings::transition(self, location, transitions, journal, at).await
    }

    async fn holding(
        &self,
        location: &LocationId,
        asset: &AssetKey,
        holder: &Holder,
    ) -> Result<Option<HoldingRecord>> {
        holdings::get(self, location, asset, holder).await
    }

    async fn holdings_by_asset(
        &self,
        location: &LocationId,
        asset: &AssetKey,
        after: Option<&Holder>,
        limit: u32,
    ) -> Result<Vec<HoldingRecord>> {
        holdings::by_asset(self, location, asset, after, limit).await
    }

    async fn holdings_by_holder(
        &self,
        location: &LocationId,
        holder: &Holder,
    ) -> Result<Vec<HoldingRecord>> {
        holdings::by_holder(self, location, holder).await
    }

    async fn holdings_by_operation(
        &self,
        location: &LocationId,
        operation_id: &str,
    ) -> Result<Vec<HoldingRecord>> {
        holdings::by_operation(self, location, operation_id).await
    }

    async fn holdings_page(
        &self,
        location: &LocationId,
        after: Option<&HoldingKey>,
        limit: u32,
    ) -> Result<Vec<HoldingRecord>> {
        holdings::page(self, location, after, limit).await
    }

    async fn holding_counts(
        &self,
        location: &LocationId,
        asset: &AssetKey,
    ) -> Result<HoldingCounts> {
        holdings::counts(self, location, asset).await
    }
}

#[async_trait]
impl JournalStore for PostgresStore {
    async fn append_journal(
        &self,
        location: &LocationId,
        records: &[NewJournalRecord],
    ) -> Result<u64> {
        records::append_journal(self, location, records).await
    }

    async fn read_journal(&self, query: &JournalQuery) -> Result<Vec<JournalRecord>> {
        records::read_journal(self, query).await
    }
}

#[async_trait]
impl OperationStore for PostgresStore {
    async fn insert_operation(&self, operation: &Operation) -> Result<()> {
        records::insert_operation(self, operation).await
    }

    async fn update_operation(&self, id: &str, update: &OperationUpdate) -> Result<Operation> {
        records::update_operation(self, id, update).await
    }

    async fn operation(&self, id: &str) -> Result<Option<Operation>> {
        records::operation(self, id).await
    }

    async fn operation_by_event(
        &self,
        location: &LocationId,
        event_id: &EventId,
    ) -> Result<Option<Operation>> {
        records::operation_by_event(self, location, event_id).await
    }

    async fn unfinished_operations(&self, location: Option<&LocationId>) -> Result<Vec<Operation>> {
        records::unfinished_operations(self, location).await
    }

    async fn prune_operations(&self, before: DateTime<Utc>) -> Result<u64> {
        records::prune_operations(self, before).await
    }

    async fn put_install_status(&self, record: &InstallRecord) -> Result<()> {
        records::put_install_status(self, record).await
    }

    async fn install_status(
        &self,
        location: &LocationId,
        holder: &Holder,
        asset: &AssetKey,
    ) -> Result<Option<InstallRecord>> {
        records::install_status(self, location, holder, asset).await
    }

    async fn install_statuses(
        &self,
        location: &LocationId,
        holder: &Holder,
    ) -> Result<Vec<InstallRecord>> {
        records::install_statuses(self, location, holder).await
    }
}

#[async_trait]
impl NotificationStore for PostgresStore {
    async fn record_notification(
        &self,
        location: &LocationId,
        id: &NotificationId,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        records::record_notification(self, location, id, at).await
    }

    async fn prune_notifications(&self, before: DateTime<Utc>) -> Result<u64> {
        records::prune_notifications(self, before).await
    }
}

#[async_trait]
impl LeaseStore for PostgresStore {
    async fn acquire_lease(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<Lease> {
        leases::acquire(self, name, owner, ttl, now).await
    }

    async fn renew_lease(
        &self,
        name: &str,
        owner: &str,
        token: u64,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<Lease> {
        leases::renew(self, name, owner, token, ttl, now).await
    }

    async fn release_lease(&self, name: &str, owner: &str, token: u64) -> Result<bool> {
        leases::release(self, name, owner, token).await
    }

    async fn lease(&self, name: &str) -> Result<Option<Lease>> {
        leases::get(self, name).await
    }
}

/// Checks that the location exists (inside a transaction or not).
pub(crate) async fn require_location(
    conn: &mut PgConnection,
    location: &LocationId,
) -> TxResult<()> {
    let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM locations WHERE id = $1")
        .bind(location.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    match found {
        Some(_) => Ok(()),
        None => Err(StoreError::not_found("location", location).into()),
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::error::Error as StdError;
    use std::sync::atomic::{AtomicU32, Ordering};

    use sqlx::error::{DatabaseError, ErrorKind as SqlxKind};
    use vppkit_store::ErrorKind;

    use super::*;
    use crate::error::Failure;

    /// A database error with a chosen SQLSTATE, as PostgreSQL would send it.
    #[derive(Debug)]
    struct FakeDbError(&'static str);

    impl fmt::Display for FakeDbError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "fake error {}", self.0)
        }
    }

    impl StdError for FakeDbError {}

    impl DatabaseError for FakeDbError {
        fn message(&self) -> &str {
            "fake"
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(self.0))
        }
        fn as_error(&self) -> &(dyn StdError + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn StdError + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn StdError + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> SqlxKind {
            SqlxKind::Other
        }
    }

    fn db(code: &'static str) -> Failure {
        Failure::Db(sqlx::Error::Database(Box::new(FakeDbError(code))))
    }

    async fn run(code: &'static str, fail_times: u32, max: u32) -> (Result<u32>, u32) {
        let calls = AtomicU32::new(0);
        let result = retry(max, "test", || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < fail_times {
                    Err(db(code))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        (result, calls.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn conflicts_are_retried_a_bounded_number_of_times() {
        // A deadlock twice, then success.
        let (result, calls) = run("40P01", 2, 5).await;
        assert_eq!(result.unwrap(), 2);
        assert_eq!(calls, 3);
        // Serialization failures past the budget: unavailable, after 1 + 3 runs.
        let (result, calls) = run("40001", 100, 3).await;
        let e = result.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.to_string().contains("concurrent"), "{e}");
        assert_eq!(calls, 4);
    }

    #[tokio::test]
    async fn other_errors_are_not_retried_and_are_classified() {
        for (code, kind) in [
            ("23505", ErrorKind::Conflict),
            ("23503", ErrorKind::NotFound),
            ("23514", ErrorKind::Invalid),
            ("22003", ErrorKind::Invalid),
            ("08006", ErrorKind::Unavailable),
            ("57P01", ErrorKind::Unavailable),
            ("53300", ErrorKind::Unavailable),
            ("42601", ErrorKind::Other),
        ] {
            let (result, calls) = run(code, 1, 5).await;
            assert_eq!(result.unwrap_err().kind(), kind, "{code}");
            assert_eq!(calls, 1, "{code} is not retried");
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(1) >= StdDuration::from_millis(4));
        assert!(backoff(1) <= StdDuration::from_millis(8));
        assert!(backoff(30) <= StdDuration::from_millis(500));
    }
}
