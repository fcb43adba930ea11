//! vppkit: manage Apple Apps and Books (VPP) licences from an MDM.
//!
//! The facade re-exports every vppkit crate as a module, behind a feature.

#[doc(inline)]
pub use vppkit_core as core;
#[cfg(feature = "client")]
#[doc(inline)]
pub use vppkit_client as client;
#[cfg(feature = "ledger")]
#[doc(inline)]
pub use vppkit_ledger as ledger;
#[cfg(feature = "rules")]
#[doc(inline)]
pub use vppkit_rules as rules;
#[cfg(feature = "store")]
#[doc(inline)]
pub use vppkit_store as store;
#[cfg(feature = "sqlite")]
#[doc(inline)]
pub use vppkit_store_sqlite as store_sqlite;
#[cfg(feature = "postgres")]
#[doc(inline)]
pub use vppkit_store_postgres as store_postgres;
#[cfg(feature = "sim")]
#[doc(inline)]
pub use vppkit_sim as sim;
#[cfg(feature = "engine")]
#[doc(inline)]
pub use vppkit_engine as engine;
