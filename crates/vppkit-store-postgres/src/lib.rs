//! The PostgreSQL backend of vppkit's [`Store`](vppkit_store::Store): for several
//! manager instances sharing one database.
//!
//! - **Connect** from a URL or options ([`PostgresOptions`]); a pool per store;
//!   optionally in a dedicated schema ([`PostgresOptions::schema`]).
//! - **Migrations** are embedded and versioned; connecting upgrades an older
//!   schema and refuses a newer one with [`StoreError::SchemaTooNew`](vppkit_store::StoreError::SchemaTooNew).
//! - **Reservations** are atomic across processes: one transaction locks the
//!   asset's row (`SELECT ... FOR UPDATE`), reads the per-asset holding count every
//!   write keeps exact under that lock, and inserts the reserved holdings with
//!   their journal records.
//! - **Sync pages** (bulk `UNNEST` statements) land in one transaction with their
//!   cursor; they lock the asset rows they touch, so they and reservations of the
//!   same asset are ordered.
//! - **Leases** are single statements decided by PostgreSQL's row locks.
//! - **Secrets** (content tokens, notification auth tokens) are sealed with the
//!   [`SecretCipher`](vppkit_store::SecretCipher) given in the options.
//!
//! ```no_run
//! use std::sync::Arc;
//! use vppkit_store::{SecretCipher, Store};
//! use vppkit_store_postgres::{PostgresOptions, PostgresStore};
//!
//! # async fn demo(key: &str) -> Result<(), vppkit_store::StoreError> {
//! let options = PostgresOptions::from_url(
//!     "postgres://vppkit@db.internal/mdm",
//!     SecretCipher::from_base64(key)?,
//! )?
//! .schema("vppkit")?
//! .create_schema(true);
//! let store: Arc<dyn Store> = Arc::new(PostgresStore::connect(options).await?);
//! let locations = store.locations().await?;
//! # drop(locations);
//! # Ok(())
//! # }
//! ```
//!
//! # Errors
//!
//! Every call returns [`StoreError`](vppkit_store::StoreError). SQLSTATE codes are
//! mapped to its kinds: unique violation → conflict, foreign key violation → not
//! found, connection and resource errors → unavailable. Serialization failures and
//! deadlocks are retried with backoff ([`PostgresOptions::max_conflict_retries`]),
//! then reported as unavailable.
//!
//! # Tests
//!
//! [`testing::TestSchema`] makes a fresh schema per test on the server named by
//! `VPPKIT_TEST_POSTGRES_URL`; without it, tests print that they were skipped.

mod codec;
mod documents;
mod error;
mod holdings;
mod leases;
mod locations;
mod migrate;
mod options;
mod records;
mod store;
mod sync;
#[cfg(feature = "testing")]
pub mod testing;

pub use options::PostgresOptions;
pub use store::PostgresStore;
