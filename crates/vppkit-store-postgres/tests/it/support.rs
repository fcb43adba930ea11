//! Shared helpers.

use vppkit_store::SecretCipher;
use vppkit_store_postgres::testing::TestSchema;

/// The key the tests seal secrets with.
pub(crate) fn cipher() -> SecretCipher {
    SecretCipher::from_key_bytes(&[0x5a; 32]).expect("32-byte key")
}

/// A fresh schema, or `None` (skipped) without `VPPKIT_TEST_POSTGRES_URL`.
pub(crate) async fn schema() -> Option<TestSchema> {
    TestSchema::from_env().await.expect("create a test schema")
}

/// A raw connection searching only the schema, for inspecting rows.
pub(crate) async fn raw(schema: &TestSchema) -> sqlx::PgConnection {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(schema.url())
        .await
        .expect("connect");
    sqlx::query(&format!("SET search_path = \"{}\"", schema.name()))
        .execute(&mut conn)
        .await
        .expect("search_path");
    conn
}
