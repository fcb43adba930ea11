//! The store crate's conformance suite, every check in its own fresh schema.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use vppkit_store::testkit::StoreFactory;
use vppkit_store::Store;
use vppkit_store_postgres::testing::TestSchema;

/// Two stores (two pools, like two manager instances) on one fresh schema; the
/// schemas are dropped with the factory, at the end of each test.
struct PgFactory {
    schemas: Mutex<Vec<TestSchema>>,
}

impl PgFactory {
    fn new() -> Self {
        Self {
            schemas: Mutex::new(Vec::new()),
        }
    }
}

#[async_trait]
impl StoreFactory for PgFactory {
    fn name(&self) -> String {
        "PostgreSQL (VPPKIT_TEST_POSTGRES_URL not set)".to_owned()
    }

    async fn fresh_pair(&self) -> Option<(Arc<dyn Store>, Arc<dyn Store>)> {
        let schema = super::support::schema().await?;
        let a = schema.open(super::support::cipher()).await.expect("open a");
        let b = schema.open(super::support::cipher()).await.expect("open b");
        self.schemas.lock().expect("lock").push(schema);
        Some((Arc::new(a), Arc::new(b)))
    }
}

vppkit_store::store_conformance_tests!(PgFactory::new());
