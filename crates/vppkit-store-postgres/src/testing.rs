//! Fresh, uniquely named schemas on a shared PostgreSQL, for tests (this crate's,
//! the conformance suite's, and the engine's: two engines on one database).
//!
//! ```no_run
//! # async fn demo() -> Result<(), vppkit_store::StoreError> {
//! use vppkit_store::SecretCipher;
//! use vppkit_store_postgres::testing::TestSchema;
//!
//! let Some(schema) = TestSchema::from_env().await? else {
//!     return Ok(()); // skipped (printed); an error instead under VPPKIT_REQUIRE_POSTGRES
//! };
//! let a = schema.open(SecretCipher::plaintext()).await?; // instance A
//! let b = schema.open(SecretCipher::plaintext()).await?; // instance B, same data
//! # drop((a, b));
//! schema.drop_schema().await?; // also done, best effort, when `schema` is dropped
//! # Ok(())
//! # }
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::{Connection, PgConnection};
use vppkit_store::{SecretCipher, StoreError};

use crate::error::db_error;
use crate::{PostgresOptions, PostgresStore};

/// The environment variable naming the test server, for example
/// `postgres://postgres@127.0.0.1:5432/test`.
pub const TEST_URL_ENV: &str = "VPPKIT_TEST_POSTGRES_URL";

/// The environment variable that makes a missing [`TEST_URL_ENV`] a failure
/// instead of a skip (set by `.ci/run`, so CI cannot pass without PostgreSQL).
/// Any value but empty or `0` switches it on.
pub const REQUIRE_ENV: &str = "VPPKIT_REQUIRE_POSTGRES";

/// Whether [`REQUIRE_ENV`] asks for PostgreSQL tests to run for real.
pub fn required() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| !v.trim().is_empty() && v.trim() != "0")
}

/// Reports a skipped PostgreSQL test on the real standard output (not the test
/// harness's captured output), so a run without a server shows it; panics when
/// [`REQUIRE_ENV`] is set, so a CI run without a server fails instead.
pub fn skip_or_fail(what: &str) {
    if required() {
        panic!(
            "{REQUIRE_ENV} is set but {TEST_URL_ENV} is not: {what} cannot run without PostgreSQL"
        );
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stdout(),
        "skipped (no PostgreSQL): {what}; set {TEST_URL_ENV} to run it"
    );
}

/// Test schemas are named `vppkit_test_<unix seconds>_<pid>_<n>`.
const PREFIX: &str = "vppkit_test_";

/// Test schemas older than this are dropped when a new one is created (left
/// behind by a test process that was killed).
const STALE_AFTER_SECS: u64 = 6 * 3600;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A schema created for one test (or one suite run) and dropped afterwards.
#[derive(Debug)]
pub struct TestSchema {
    url: String,
    name: String,
    dropped: bool,
}

impl TestSchema {
    /// Creates a fresh schema on the server named by [`TEST_URL_ENV`]; `None`
    /// (after printing the skip on standard output) when it is unset. When
    /// [`REQUIRE_ENV`] is set, an unset [`TEST_URL_ENV`] is an error instead.
    pub async fn from_env() -> Result<Option<Self>, StoreError> {
        match std::env::var(TEST_URL_ENV) {
            Ok(url) if !url.trim().is_empty() => Self::create(url.trim()).await.map(Some),
            _ if required() => Err(StoreError::invalid(
                "test database",
                format!("{REQUIRE_ENV} is set but {TEST_URL_ENV} is not"),
            )),
            _ => {
                skip_or_fail("a PostgreSQL test");
                Ok(None)
            }
        }
    }

    /// Creates a fresh, uniquely named schema in the database at `url`.
    pub async fn create(url: &str) -> Result<Self, StoreError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let name = format!(
            "{PREFIX}{now}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = connect(url).await?;
        drop_stale(&mut conn, now).await;
        sqlx::query(&format!("CREATE SCHEMA \"{name}\""))
            .execute(&mut conn)
            .await
            .map_err(|e| db_error(e, "creating a test schema"))?;
        let _ = conn.close().await;
        Ok(Self {
            url: url.to_owned(),
            name,
            dropped: false,
        })
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The database URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Options for a store in this schema (small pool, migrations on). Its
    /// connections carry the schema's name as their `application_name`, so that
    /// dropping the schema can end the ones a test left open.
    pub fn options(&self, cipher: SecretCipher) -> Result<PostgresOptions, StoreError> {
        Ok(PostgresOptions::from_url(&self.url, cipher)?
            .schema(&self.name)?
            .application_name(&self.name)
            .max_connections(4))
    }

    /// Opens a store in this schema: each call is a separate pool, like another
    /// manager instance on the same database.
    pub async fn open(&self, cipher: SecretCipher) -> Result<PostgresStore, StoreError> {
        PostgresStore::connect(self.options(cipher)?).await
    }

    /// Drops the schema and everything in it.
    pub async fn drop_schema(mut self) -> Result<(), StoreError> {
        self.dropped = true;
        drop_now(&self.url, &self.name).await
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // Best effort, also when a test panicked: a short-lived runtime on its own
        // thread, so it works inside and outside an async context.
        let (url, name) = (self.url.clone(), self.name.clone());
        let worker = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                if let Err(e) = runtime.block_on(drop_now(&url, &name)) {
                    eprintln!("could not drop test schema {name}: {e}");
                }
            }
        });
        let _ = worker.join();
    }
}

async fn connect(url: &str) -> Result<PgConnection, StoreError> {
    let options = PostgresOptions::from_url(url, SecretCipher::plaintext())?;
    PgConnection::connect_with(&options.connect)
        .await
        .map_err(|e| db_error(e, "connecting to PostgreSQL"))
}

/// Ends the connections of the schema's stores still open (a test's pools, or a
/// transaction whose task cannot run any more: `Drop` blocks the thread of a
/// single-threaded test runtime, and a lock such a transaction holds would make
/// `DROP SCHEMA` wait forever), then drops the schema.
async fn drop_now(url: &str, name: &str) -> Result<(), StoreError> {
    crate::options::check_schema_name(name)?;
    let mut conn = connect(url).await?;
    let _ = sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = $1 AND pid <> pg_backend_pid()",
    )
    .bind(name)
    .execute(&mut conn)
    .await;
    let result = sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
        .execute(&mut conn)
        .await;
    let _ = conn.close().await;
    result
        .map(|_| ())
        .map_err(|e| db_error(e, "dropping a test schema"))
}

/// Drops test schemas left behind long ago by killed test processes.
async fn drop_stale(conn: &mut PgConnection, now: u64) {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'vppkit\\_test\\_%'",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap_or_default();
    for name in names {
        let created = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|secs| secs.parse::<u64>().ok());
        if created.is_some_and(|c| c + STALE_AFTER_SECS < now)
            && crate::options::check_schema_name(&name).is_ok()
        {
            let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                .execute(&mut *conn)
                .await;
        }
    }
}
