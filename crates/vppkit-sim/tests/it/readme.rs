//! The README's example, compiled and run; the test below checks that the README shows it
//! verbatim (the body of `readme_example`, kept at column 0).

#[rustfmt::skip]
async fn readme_example() -> Result<(), Box<dyn std::error::Error>> {
use vppkit_sim::{Preset, SimClock, Simulator};

let sim = Simulator::builder()
    .preset(Preset::Demo)
    .clock(SimClock::manual())
    .allow_http_loopback_notifications(true)
    .start()
    .await?;
let base = sim.base_url(); // http://127.0.0.1:PORT/mdm/v2
let token = &sim.token_files()[0]; // token.content is the bearer credential
sim.control().advance(std::time::Duration::from_secs(1))?; // pending events complete
let _ = (base, token);
Ok(())
}

#[tokio::test]
async fn the_readme_example_runs() {
    readme_example().await.unwrap();
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
