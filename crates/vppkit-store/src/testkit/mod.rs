//! The conformance suite every [`Store`] backend runs (feature `testkit`).
//!
//! Outside semver: checks are added as the store grows. Each check is a
//! `pub async fn(&dyn StoreFactory)` that panics on failure. A backend runs them
//! all, one test per check, with [`store_conformance_tests!`](crate::store_conformance_tests):
//!
//! ```ignore
//! struct Factory;
//! #[async_trait::async_trait]
//! impl vppkit_store::testkit::StoreFactory for Factory { /* fresh_pair */ }
//! vppkit_store::store_conformance_tests!(Factory);
//! ```
//!
//! The macro expands to `#[tokio::test]` functions, so the calling crate needs
//! `tokio` (with `macros` and `rt-multi-thread`) as a dev-dependency.
//! [`run_all`] runs every check in sequence instead.

use std::sync::Arc;

use async_trait::async_trait;

use crate::Store;

mod checks_documents;
mod checks_holdings;
mod checks_misc;
mod checks_records;
mod checks_sync;
mod fixtures;

pub use checks_documents::*;
pub use checks_holdings::*;
pub use checks_misc::*;
pub use checks_records::*;
pub use checks_sync::*;
pub use fixtures::*;

/// Makes fresh, empty stores for the checks.
#[async_trait]
pub trait StoreFactory: Send + Sync {
    /// A name for messages.
    fn name(&self) -> String;

    /// Two handles on one fresh, empty store: for a database, two separate
    /// connection pools on one new database or schema; for an in-memory store,
    /// two clones sharing data. `None` when the backend is not available here
    /// (the check then prints that it was skipped and passes).
    async fn fresh_pair(&self) -> Option<(Arc<dyn Store>, Arc<dyn Store>)>;
}

/// Opens one fresh store, or prints why the check is skipped.
pub async fn fresh(factory: &dyn StoreFactory, check: &str) -> Option<Arc<dyn Store>> {
    match factory.fresh_pair().await {
        Some((a, _)) => Some(a),
        None => {
            eprintln!("{check}: skipped, {} is not available", factory.name());
            None
        }
    }
}

/// Opens two handles on one fresh store, or prints why the check is skipped.
pub async fn fresh_pair(
    factory: &dyn StoreFactory,
    check: &str,
) -> Option<(Arc<dyn Store>, Arc<dyn Store>)> {
    let pair = factory.fresh_pair().await;
    if pair.is_none() {
        eprintln!("{check}: skipped, {} is not available", factory.name());
    }
    pair
}

/// Calls `$m!(check_name, ...)` with the name of every check.
#[doc(hidden)]
#[macro_export]
macro_rules! __for_each_check {
    ([$($cb:tt)*] $($args:tt)*) => {
        $($cb)*!($($args)*;
            locations_round_trip,
            location_revisions,
            secrets_stay_out_of_debug,
            delete_location_cascades,
            writes_need_a_location,
            limits_must_be_positive,
            assets_round_trip,
            users_round_trip,
            reserve_respects_counts,
            reserve_counts_every_status,
            reserve_conflicts_write_nothing,
            reserve_last_100_concurrently,
            transitions_are_atomic,
            holdings_are_paged_in_order,
            sync_page_applies_everything,
            failing_page_leaves_cursor_and_data,
            cursors_and_summaries,
            journal_sequences_and_queries,
            operations_lifecycle,
            operation_updates_are_fenced,
            notifications_are_deduplicated,
            documents_have_revisions,
            notification_ids_are_recorded_with_their_effect,
            fences_refuse_writes_after_a_takeover,
            install_statuses_round_trip,
            leases_acquire_renew_release_expire
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests_inner {
    ($factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let factory = $factory;
                $crate::testkit::$name(&factory).await;
            }
        )*
    };
}

/// Expands to one `#[tokio::test]` per conformance check, each calling it with
/// the factory expression (evaluated once per test).
#[macro_export]
macro_rules! store_conformance_tests {
    ($factory:expr) => {
        $crate::__for_each_check!([$crate::__conformance_tests_inner] $factory);
    };
}

macro_rules! run_all_inner {
    ($factory:expr; $($name:ident),* $(,)?) => {
        $( $name($factory).await; )*
    };
}

/// Runs every check in sequence (panics on the first failure).
pub async fn run_all(factory: &dyn StoreFactory) {
    crate::__for_each_check!([run_all_inner] factory);
}
