//! The README's example, compiled (not run: it opens a database under /var/lib); the test below checks that the
//! README shows it verbatim (the body of `readme_example`, kept at column 0).

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
