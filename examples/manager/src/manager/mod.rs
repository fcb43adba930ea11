//! The manager's modules (shared with `tests/demo.rs`).
//!
//! - [`cli`]: the command line (clap) and its error handling;
//! - [`app`]: opening the store and the engine from `--db`, `--apple-url` and the secret key;
//! - [`state`]: what the manager keeps in the store besides the engine's data;
//! - [`commands`], [`apply`]: one function per subcommand;
//! - [`report`]: the report (JSON and text tables);
//! - [`demo`]: the whole story against the simulator;
//! - [`serve`]: the long-running manager (scheduler and notification webhook);
//! - [`table`]: text tables; [`status`]: the manager's own lines on stderr (text or JSON);
//! - [`webhook`], [`progress`], [`sink`]: the notification receiver, the sync progress
//!   bars and the MDM command outbox;

pub(crate) mod app;
pub(crate) mod apply;
pub(crate) mod cli;
pub(crate) mod commands;
pub(crate) mod demo;
pub(crate) mod error;
pub(crate) mod progress;
pub(crate) mod report;
pub(crate) mod serve;
pub(crate) mod sink;
pub(crate) mod state;
pub(crate) mod status;
pub(crate) mod table;
pub(crate) mod webhook;
