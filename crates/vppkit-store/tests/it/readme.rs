//! The README's example, compiled (not run: the record and reservation are the caller's); the workspace's
//! `tests/readme.rs` checks that the README shows it verbatim (the body of `readme_example`,
//! kept at column 0).

use vppkit_store::{LocationRecord, Reservation};

#[rustfmt::skip]
#[allow(dead_code)] // compiled, never called
async fn readme_example(
    record: LocationRecord,
    reservation: Reservation,
) -> Result<(), Box<dyn std::error::Error>> {
use std::sync::Arc;
use vppkit_store::{MemoryStore, Store};

let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
store.save_location(&record).await?;
let left = store.reserve(&reservation).await?; // atomic: never more holdings than licences
let _ = left;
Ok(())
}
