//! The whole conformance suite against [`MemoryStore`], one test per check.

use std::sync::Arc;

use vppkit_store::testkit::StoreFactory;
use vppkit_store::{MemoryStore, Store};

struct Memory;

#[async_trait::async_trait]
impl StoreFactory for Memory {
    fn name(&self) -> String {
        "memory".into()
    }

    async fn fresh_pair(&self) -> Option<(Arc<dyn Store>, Arc<dyn Store>)> {
        let store = MemoryStore::new();
        Some((Arc::new(store.clone()), Arc::new(store)))
    }
}

vppkit_store::store_conformance_tests!(Memory);

#[tokio::test]
async fn run_all_runs_every_check() {
    vppkit_store::testkit::run_all(&Memory).await;
}
