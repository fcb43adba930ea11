//! The SQLite backend of vppkit's [`Store`](vppkit_store::Store): the embedded
//! default for a single manager server.
//!
//! - bundled SQLite through sqlx, WAL, a busy timeout, foreign keys;
//! - versioned migrations embedded in the binary: opening an older database
//!   upgrades it, opening one written by a newer vppkit fails with
//!   [`StoreError::SchemaTooNew`](vppkit_store::StoreError::SchemaTooNew);
//! - content tokens and notification auth tokens sealed with the
//!   [`SecretCipher`](vppkit_store::SecretCipher) given at connect time;
//! - every write on one connection of the store's own (reads use a pool of
//!   others), in a `BEGIN IMMEDIATE` transaction where it takes more than one
//!   statement, so reservations stay correct with several stores or processes
//!   on one file.
//!
//! ```no_run
//! # async fn run() -> Result<(), vppkit_store::StoreError> {
//! use vppkit_store::SecretCipher;
//! use vppkit_store_sqlite::SqliteStore;
//!
//! let cipher = SecretCipher::from_base64(&std::env::var("VPPKIT_SECRET_KEY").unwrap())?;
//! let store = SqliteStore::connect("sqlite:///var/lib/mdm/vpp.db?mode=rwc", cipher).await?;
//! # Ok(()) }
//! ```
//!
//! Errors are [`StoreError`](vppkit_store::StoreError)s; no sqlx type appears in the API.

mod codec;
mod documents;
mod error;
mod migrate;
mod options;
mod store;

pub use options::SqliteStoreOptions;
pub use store::SqliteStore;
