//! The README's example, compiled (not run: it connects to a PostgreSQL server); the workspace's
//! `tests/readme.rs` checks that the README shows it verbatim (the body of `readme_example`,
//! kept at column 0).

#[rustfmt::skip]
#[allow(dead_code)] // compiled, never called
async fn readme_example() -> Result<(), Box<dyn std::error::Error>> {
use vppkit_store::SecretCipher;
use vppkit_store_postgres::{PostgresOptions, PostgresStore};

let options = PostgresOptions::from_url(
    "postgres://vppkit@db.internal/mdm",
    SecretCipher::from_base64(&std::env::var("VPPKIT_SECRET_KEY")?)?,
)?
.schema("vppkit")?
.create_schema(true);
let store = PostgresStore::connect(options).await?;
drop(store);
Ok(())
}
