//! The README's example, compiled and run; the workspace's `tests/readme.rs` checks
//! that the README shows it verbatim (the body of `readme_example`, kept at column 0).

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
