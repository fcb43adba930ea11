//! The whole conformance suite, on a database file (two pools) and in memory.

use std::sync::{Arc, Mutex};

use tempfile::TempDir;
use vppkit_store::testkit::StoreFactory;
use vppkit_store::{SecretCipher, Store};
use vppkit_store_sqlite::{SqliteStore, SqliteStoreOptions};

/// Two pools on one fresh database file; the files live as long as the factory.
#[derive(Default)]
pub(crate) struct SqliteFile {
    dirs: Mutex<Vec<TempDir>>,
}

#[async_trait::async_trait]
impl StoreFactory for SqliteFile {
    fn name(&self) -> String {
        "sqlite file".into()
    }

    async fn fresh_pair(&self) -> Option<(Arc<dyn Store>, Arc<dyn Store>)> {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("vpp.db").display());
        self.dirs.lock().unwrap().push(dir);
        let cipher = SecretCipher::from_key_bytes(&[42u8; 32]).unwrap();
        let a = SqliteStore::connect(&url, cipher.clone())
            .await
            .expect("open a");
        let b = SqliteStoreOptions::new(url)
            .max_connections(2)
            .connect(cipher)
            .await
            .expect("open b");
        Some((Arc::new(a), Arc::new(b)))
    }
}

/// One in-memory database (both handles share it).
pub(crate) struct SqliteMemory;

#[async_trait::async_trait]
impl StoreFactory for SqliteMemory {
    fn name(&self) -> String {
        "sqlite memory".into()
    }

    async fn fresh_pair(&self) -> Option<(Arc<dyn Store>, Arc<dyn Store>)> {
        let store = SqliteStore::in_memory(SecretCipher::plaintext())
            .await
            .expect("open");
        Some((Arc::new(store.clone()), Arc::new(store)))
    }
}

mod file {
    vppkit_store::store_conformance_tests!(super::SqliteFile::default());
}

mod memory {
    vppkit_store::store_conformance_tests!(super::SqliteMemory);
}
