//! What the manager's end-to-end tests share.

use std::path::PathBuf;

/// The `manager` binary, which Cargo builds before it runs this package's integration tests.
pub(crate) fn manager_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_manager"))
}

/// The simulator's demo preset on a loopback port, its clock running at real speed (events
/// complete within 50 ms).
#[allow(dead_code)] // not every test binary starts one
pub(crate) async fn demo_simulator() -> vppkit_sim::RunningSimulator {
    vppkit_sim::Simulator::builder()
        .preset(vppkit_sim::Preset::Demo)
        .clock(vppkit_sim::SimClock::real_time(
            std::time::Duration::from_millis(50),
        ))
        .start()
        .await
        .expect("simulator")
}
