//! Storage for vppkit: the [`Store`] trait, its records and errors, encryption of
//! secrets at rest ([`SecretCipher`]), the in-memory store and, behind the
//! `testkit` feature, the conformance suite every backend runs.
//!
//! Backends: [`MemoryStore`] (here; tests and demos), `vppkit-store-sqlite` (the
//! embedded default) and `vppkit-store-postgres` (several manager instances).
//!
//! # Error model
//!
//! Every method returns [`StoreError`]; branch on [`StoreError::kind`]
//! ([`ErrorKind::NotFound`], [`ErrorKind::Conflict`], [`ErrorKind::VersionMismatch`],
//! [`ErrorKind::InsufficientLicences`], [`ErrorKind::Unavailable`], ...). No driver
//! type is part of the API: backend errors are boxed as the error's `source`.
//! Secrets never appear in errors or `Debug` output.
//!
//! # Features
//!
//! | feature   | what it adds |
//! |-----------|--------------|
//! | `testkit` | [`testkit`]: the backend conformance suite (outside semver) |
//!
//! # Quick start
//!
//! ```
//! use std::sync::Arc;
//! use chrono::Utc;
//! use vppkit_core::*;
//! use vppkit_store::{LocationRecord, MemoryStore, Reservation, Store, SyncPage};
//!
//! # tokio_test_block_on(async {
//! let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
//! let now = Utc::now();
//! let loc = LocationId::new("school-1")?;
//! let record = LocationRecord::new(loc.clone(), "School", Secret::new("token"), now, now);
//! store.save_location(&record).await?;
//!
//! let app = AssetKey::new(AdamId::from(409203825), PricingParam::Stdq);
//! let asset = Asset::new(app.clone(), ProductType::App, true, true, vec![], AssetCounts::new(2, 0, 2, 0));
//! let mut page = SyncPage::new(now);
//! page.upsert_assets = vec![asset];
//! store.apply_sync_page(&loc, &page).await?;
//!
//! let ipad = Holder::Device(SerialNumber::new("C02000000001")?);
//! let left = store.reserve(&Reservation::new(loc.clone(), app.clone(), vec![ipad], "op-1", now)).await?;
//! assert_eq!(left, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```

mod asset;
mod cipher;
mod document;
mod error;
mod holding;
mod install;
mod journal;
mod lease;
mod location;
mod memory;
mod operation;
mod store;
mod sync;
mod text_enum;
mod user;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use asset::AssetRecord;
pub use cipher::SecretCipher;
pub use document::{Document, DocumentQuery, DocumentStore, NewDocument};
pub use error::{BoxError, ErrorKind, Result, StoreError};
pub use holding::{
    sort_key as holding_sort_key, HoldingCounts, HoldingKey, HoldingRecord, HoldingTransition,
    HoldingUpsert, Reservation,
};
pub use install::{InstallRecord, InstallState};
pub use journal::{
    JournalBody, JournalQuery, JournalRecord, NewJournalRecord, PackedJournal, APPENDS_PER_READ,
};
pub use lease::{Fence, Lease};
pub use location::{LocationRecord, NotificationSettings};
pub use memory::MemoryStore;
pub use operation::{Operation, OperationKind, OperationStatus, OperationUpdate};
/// Every role trait of [`Store`], for calling store methods on a concrete backend
/// type (`use vppkit_store::prelude::*;`); `dyn Store` needs no import.
pub mod prelude {
    pub use crate::document::DocumentStore;
    pub use crate::store::{
        HoldingStore, JournalStore, LeaseStore, LocationStore, NotificationStore, OperationStore,
        Store,
    };
}

pub use store::{
    HoldingStore, JournalStore, LeaseStore, LocationStore, NotificationStore, OperationStore, Store,
};
pub use sync::{CursorUpdate, SyncCursor, SyncEndpoint, SyncPage, SyncStatus, SyncSummary};
pub use user::UserRecord;
