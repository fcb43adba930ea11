//! The README's example, compiled (not run: it reads a content token and calls Apple); the workspace's
//! `tests/readme.rs` checks that the README shows it verbatim (the body of `readme_example`,
//! kept at column 0).

#[rustfmt::skip]
#[allow(dead_code)] // compiled, never called
async fn readme_example() -> Result<(), Box<dyn std::error::Error>> {
use futures::TryStreamExt;
use vppkit_client::{AssignmentFilter, Client, ClientBuilder};
use vppkit_core::ContentToken;

let token = ContentToken::parse(&std::fs::read_to_string("location.vpptoken")?)?;
let client: Client = ClientBuilder::new(&token).build()?;

let config = client.client_config().await?;
println!("{}", config.body.location_name.unwrap_or_default());

let mut pages = client.assignments(AssignmentFilter::new());
while let Some(page) = pages.try_next().await? {
    for assignment in &page.items {
        if let Some(holder) = assignment.holder() {
            println!("{} -> {holder}", assignment.asset_key());
        }
    }
}
Ok(())
}
