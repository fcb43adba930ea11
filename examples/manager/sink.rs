//! The MDM command sink: the engine hands out `InstallApplication`, `InstallMedia`,
//! `RemoveApplication` and `InviteToProgram` commands only once Apple confirmed the
//! licences. This example has no devices, so it keeps them in the store's outbox document
//! and remembers the ones of the current run.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use vppkit::engine::{CommandSink, QueuedCommand, SinkError};
use vppkit::store::Store;

use super::state;

/// Keeps every queued command in the store's outbox.
pub(crate) struct OutboxSink {
    store: Arc<dyn Store>,
    this_run: Mutex<Vec<QueuedCommand>>,
}

impl OutboxSink {
    pub(crate) fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            this_run: Mutex::new(Vec::new()),
        }
    }

    /// The commands handed out since the last call.
    pub(crate) fn take(&self) -> Vec<QueuedCommand> {
        std::mem::take(&mut *self.this_run.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[async_trait]
impl CommandSink for OutboxSink {
    async fn send(&self, commands: Vec<QueuedCommand>) -> Result<(), SinkError> {
        state::append_outbox(&self.store, &commands)
            .await
            .map_err(|e| SinkError::new(format!("could not write the outbox: {e}")))?;
        self.this_run
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(commands);
        Ok(())
    }
}
