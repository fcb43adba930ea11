//! The README's example, compiled (not run: it opens a database under /var/lib); the workspace's
//! `tests/readme.rs` checks that the README shows it verbatim (the body of `readme_example`,
//! kept at column 0).

#[rustfmt::skip]
#[allow(dead_code)] // compiled, never called
async fn readme_example() -> Result<(), Box<dyn std::error::Error>> {
use vppkit_store::SecretCipher;
use vppkit_store_sqlite::SqliteStore;

let cipher = SecretCipher::from_base64(&std::env::var("VPPKIT_SECRET_KEY")?)?;
let store = SqliteStore::connect("sqlite:///var/lib/mdm/vpp.db?mode=rwc", cipher).await?;
drop(store);
Ok(())
}
