//! Shared helpers.

use vppkit_store::SecretCipher;
use vppkit_store_postgres::testing::TestSchema;

/// The key the tests seal secrets with.
pub(crate) fn cipher() -> SecretCipher {
    SecretCipher::from_key_bytes(&[0x5a; 32]).expect("32-byte key")
}

/// A fresh schema, or `None` (skipped, printed on standard output) without
/// `VPPKIT_TEST_POSTGRES_URL`. With `VPPKIT_REQUIRE_POSTGRES` set (as `.ci/run`
/// does) a missing server fails the test instead.
pub(crate) async fn schema() -> Option<TestSchema> {
    TestSchema::from_env()
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL test cannot run: {e}"))
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
