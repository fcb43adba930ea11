//! The start API and the demo preset answer.

use vppkit_sim::{demo, Preset};

use crate::support::start;

#[tokio::test]
async fn demo_starts_and_serves_client_config() {
    let h = start(Preset::Demo).await;
    assert!(h.sim.base_url().starts_with("http://127.0.0.1:"));
    assert!(h.sim.base_url().ends_with("/mdm/v2"));
    assert_eq!(h.sim.token_files().len(), 4);
    let cfg = h.get(demo::SPRINGFIELD_HIGH, "/client/config").await.ok();
    assert_eq!(cfg["locationName"], "Springfield High School");
    assert_eq!(cfg["uId"], demo::SPRINGFIELD_HIGH);
    assert_eq!(cfg["defaultPlatform"], "volumestore");
    let berlin = h.get(demo::ACME_BERLIN, "/client/config").await.ok();
    assert_eq!(berlin["mdmInfo"]["id"], demo::OTHER_MDM_ID);
    assert_eq!(berlin["websiteURL"], "https://business.apple.com");
}

#[tokio::test]
async fn debug_output_never_shows_a_content_token() {
    let h = start(Preset::Demo).await;
    let outputs = [
        format!("{:?}", h.sim),
        format!("{:#?}", h.sim),
        format!("{:?}", h.sim.control()),
    ];
    for t in h.sim.token_files() {
        for out in &outputs {
            assert!(!out.contains(t.content.expose()), "{}", t.file_name);
        }
    }
}
