//! `manager`: a command-line Apple Apps and Books (VPP) licence manager composed from the
//! vppkit crates.
//!
//! ```text
//! cargo run -p vppkit-manager                 # the whole demo against the simulator
//! cargo run -p vppkit-manager -- --help       # token, sync, plan, apply, report, serve ...
//! ```
//!
//! The code lives in `manager/` so that `tests/demo.rs` can compile the same modules and run
//! the demo in-process, checked against the simulator's ground truth.

mod manager;

fn main() -> std::process::ExitCode {
    manager::cli::main()
}
