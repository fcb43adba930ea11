//! The MDM command sink of the example. The engine stores every command in its outbox
//! first and hands it here once Apple has confirmed the licence it needs; a real MDM
//! queues it for the device (APNs push, then the device fetches it). This example has no
//! devices: it remembers what this process was handed, so `apply` can say what went out
//! (the engine's outbox keeps the record across processes: `report`).

use std::sync::Mutex;

use async_trait::async_trait;
use vppkit::engine::{CommandSink, QueuedCommand, SinkError};

/// Remembers the commands handed out in this process.
#[derive(Default)]
pub(crate) struct RecordingSink {
    this_run: Mutex<Vec<QueuedCommand>>,
}

impl RecordingSink {
    /// The commands handed out since the last call.
    pub(crate) fn take(&self) -> Vec<QueuedCommand> {
        std::mem::take(&mut *self.this_run.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[async_trait]
impl CommandSink for RecordingSink {
    async fn send(&self, commands: Vec<QueuedCommand>) -> Result<(), SinkError> {
        let mut seen = self.this_run.lock().unwrap_or_else(|e| e.into_inner());
        for c in commands {
            // Idempotent on the command UUID, as a sink must be.
            if !seen
                .iter()
                .any(|s| s.reference.command_uuid == c.reference.command_uuid)
            {
                seen.push(c);
            }
        }
        Ok(())
    }
}
