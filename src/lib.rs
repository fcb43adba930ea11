//! vppkit: manage Apple Apps and Books (VPP) licences from an MDM.
//!
//! This facade re-exports every vppkit crate as a module, so an embedder depends on one
//! crate and never keeps versions in step by hand. See the README and `docs/` for the
//! guides; each module's own docs open with a quick start.
//!
//! | feature | module | what it brings | default |
//! |---|---|---|---|
//! | (always) | [`core`] | ids, value types, content-token parsing | yes |
//! | `client` | `client` | Apple's Apps and Books API v2 client | yes |
//! | `ledger` | `ledger` | licence accounting (pure) | yes |
//! | `rules` | `rules` | policies, directory, planner (pure) | yes |
//! | `store` | `store` | the `Store` trait and the in-memory store | yes |
//! | `sqlite` | `store_sqlite` | the embedded SQLite backend | yes |
//! | `postgres` | `store_postgres` | the PostgreSQL backend for several instances | no |
//! | `sim` | `sim` | the simulator of Apple's API (tests, demos) | no |
//! | `engine` | `engine` | onboarding, sync, notifications, apply | yes |
//! | `full` | all of the above | | no |
//! | `rustls-tls` | | TLS to Apple with rustls (passed to `vppkit-client`, `vppkit-engine` and, for its https notification deliveries, `vppkit-sim`) | yes |
//! | `native-tls` | | TLS to Apple with the platform's stack; with `default-features = false` and without `rustls-tls`, rustls is not built | no |

#![cfg_attr(docsrs, feature(doc_cfg))]

#[doc(inline)]
pub use vppkit_core as core;

#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
#[doc(inline)]
pub use vppkit_client as client;

#[cfg(feature = "ledger")]
#[cfg_attr(docsrs, doc(cfg(feature = "ledger")))]
#[doc(inline)]
pub use vppkit_ledger as ledger;

#[cfg(feature = "rules")]
#[cfg_attr(docsrs, doc(cfg(feature = "rules")))]
#[doc(inline)]
pub use vppkit_rules as rules;

#[cfg(feature = "store")]
#[cfg_attr(docsrs, doc(cfg(feature = "store")))]
#[doc(inline)]
pub use vppkit_store as store;

#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
#[doc(inline)]
pub use vppkit_store_sqlite as store_sqlite;

#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
#[doc(inline)]
pub use vppkit_store_postgres as store_postgres;

#[cfg(feature = "sim")]
#[cfg_attr(docsrs, doc(cfg(feature = "sim")))]
#[doc(inline)]
pub use vppkit_sim as sim;

#[cfg(feature = "engine")]
#[cfg_attr(docsrs, doc(cfg(feature = "engine")))]
#[doc(inline)]
pub use vppkit_engine as engine;
