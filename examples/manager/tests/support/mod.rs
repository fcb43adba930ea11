//! What the manager's end-to-end tests share.

use std::path::PathBuf;

/// The `manager` binary, which Cargo builds before it runs this package's integration tests.
pub(crate) fn manager_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_manager"))
}
