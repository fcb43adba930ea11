//! The README's example, compiled (not run: the record and reservation are the caller's); the test below checks that the
//! README shows it verbatim (the body of `readme_example`, kept at column 0).

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

#[test]
fn the_readme_shows_this_example() {
    let readme = include_str!("../../README.md");
    let block = readme
        .split("```rust\n")
        .nth(1)
        .and_then(|b| b.split("```").next());
    let this = include_str!("readme.rs");
    assert!(
        block.is_some_and(|b| this.contains(b)),
        "README and tests/it/readme.rs differ"
    );
}
