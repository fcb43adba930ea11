//! What the manager's end-to-end tests share.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The manager example's binary, built by `cargo test` with the other examples (or built
/// here when it is missing).
pub(crate) fn manager_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let bin = profile_dir
        .join("examples")
        .join(format!("manager{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--example", "manager"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo runs");
        assert!(status.success(), "cargo build --example manager");
    }
    bin
}
