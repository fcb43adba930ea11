//! How to open a SQLite store.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use vppkit_store::{Result, SecretCipher, StoreError};

use crate::SqliteStore;

/// Options for [`SqliteStore`]: a database URL (`sqlite://path?mode=rwc`,
/// `sqlite:relative.db`) or an in-memory database, pool size and busy timeout.
///
/// Every connection uses WAL, `synchronous = NORMAL`, foreign keys and the busy
/// timeout, so concurrent writers (several pools, several processes) wait for
/// each other instead of failing.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SqliteStoreOptions {
    url: String,
    in_memory: bool,
    max_connections: u32,
    busy_timeout: Duration,
    wal_autocheckpoint: u32,
}

impl SqliteStoreOptions {
    /// Options for a database URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            in_memory: false,
            max_connections: 4,
            busy_timeout: Duration::from_secs(10),
            wal_autocheckpoint: 10_000,
        }
    }

    /// Options for a private in-memory database (one connection, lost when the store is dropped).
    pub fn in_memory() -> Self {
        Self {
            url: "sqlite::memory:".into(),
            in_memory: true,
            max_connections: 1,
            busy_timeout: Duration::from_secs(10),
            wal_autocheckpoint: 10_000,
        }
    }

    /// The most connections the pool of readers opens (default 4), besides the one
    /// connection every write goes through; in memory, one connection does both.
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// How long a writer waits for another writer's lock (default 10 s).
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// After how many WAL pages (4 KiB each) SQLite copies the WAL back into the
    /// database (default 10,000, about 40 MiB; SQLite's own default is 1,000).
    /// Fewer checkpoints mean fewer `fsync`s during bulk syncs; durability of
    /// committed transactions is the same either way.
    pub fn wal_autocheckpoint(mut self, pages: u32) -> Self {
        self.wal_autocheckpoint = pages;
        self
    }

    /// The URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Opens the pool, migrates the schema and returns the store.
    pub async fn connect(self, cipher: SecretCipher) -> Result<SqliteStore> {
        let connect = SqliteConnectOptions::from_str(&self.url)
            .map_err(|e| StoreError::invalid("sqlite url", e.to_string()))?
            .foreign_keys(true)
            .busy_timeout(self.busy_timeout)
            .synchronous(SqliteSynchronous::Normal)
            .pragma("temp_store", "memory")
            // 16 MiB a connection: with a sync's pages written in batches on one
            // connection, 64 MiB made a first sync of 1,000,000 assignments no faster
            // (12.7 s against 12.9 s) and its peak memory 57 MiB higher.
            .pragma("cache_size", "-16384");
        let connect = if self.in_memory {
            connect
        } else {
            connect
                .journal_mode(SqliteJournalMode::Wal)
                .pragma("wal_autocheckpoint", self.wal_autocheckpoint.to_string())
        };
        let acquire_timeout = self.busy_timeout + Duration::from_secs(20);
        if self.in_memory {
            // The database lives as long as its one connection, which reads and writes.
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .acquire_timeout(acquire_timeout)
                .connect_with(connect)
                .await
                .map_err(crate::error::db)?;
            crate::migrate::migrate(&pool).await?;
            return Ok(SqliteStore::from_parts(
                pool.clone(),
                pool,
                cipher,
                self.url,
            ));
        }
        // One connection writes (see `SqliteStore`); the others read.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(acquire_timeout)
            .connect_with(connect.clone())
            .await
            .map_err(crate::error::db)?;
        crate::migrate::migrate(&writer).await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(crate::error::db)?;
        Ok(SqliteStore::from_parts(pool, writer, cipher, self.url))
    }
}

impl FromStr for SqliteStoreOptions {
    type Err = StoreError;

    /// Parses a URL; `sqlite::memory:` gives [`SqliteStoreOptions::in_memory`].
    fn from_str(s: &str) -> Result<Self> {
        if s == "sqlite::memory:" || s == ":memory:" {
            return Ok(Self::in_memory());
        }
        SqliteConnectOptions::from_str(s)
            .map_err(|e| StoreError::invalid("sqlite url", e.to_string()))?;
        Ok(Self::new(s))
    }
}
