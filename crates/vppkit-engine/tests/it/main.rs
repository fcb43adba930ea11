//! End-to-end tests of the engine against the simulator.

mod faults;
mod licences;
mod onboarding;
#[allow(dead_code)] // helpers shared by the test modules; not every module uses each
mod support;
mod sync;
mod tokens;
