//! `manager`: a command-line Apple Apps and Books (VPP) licence manager composed from the
//! vppkit crates.
//!
//! ```text
//! cargo run --example manager                 # the whole demo against the simulator
//! cargo run --example manager -- --help       # token, sync, plan, apply, report, serve ...
//! ```
//!
//! The code lives in `lib.rs` and its modules so that `tests/manager_demo.rs` can run the
//! same demo in-process and check it against the simulator's ground truth.

#[path = "lib.rs"]
mod manager;

fn main() -> std::process::ExitCode {
    manager::cli::main()
}
