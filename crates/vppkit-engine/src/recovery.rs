//! Start-up recovery and event polling.

use tracing::Instrument;
use vppkit_core::LocationId;

use crate::engine::Engine;
use crate::error::{EngineError, Result};

/// What [`Engine::recover`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// Operations found unfinished.
    pub found: usize,
    /// Operations still open afterwards (waiting for Apple or for the re-check delay).
    pub still_open: usize,
    /// Locations that another instance holds (left to it).
    pub busy: Vec<LocationId>,
    /// Queued MDM commands handed to the sink.
    pub commands_handed_out: usize,
}

impl Engine {
    /// Finds every operation left in flight (by a crash, or by another instance
    /// whose lease expired) and moves it forward: never-sent ones are rolled
    /// back, lost answers are resolved from Apple's assignments, pending events
    /// are polled, and confirmed licences get their MDM commands. Call it on start
    /// (the scheduler does).
    pub async fn recover(&self) -> Result<RecoveryReport> {
        let span = tracing::info_span!("vppkit.recover");
        async {
            let ops = self.inner.store.unfinished_operations(None).await?;
            let mut report = RecoveryReport {
                found: ops.len(),
                ..Default::default()
            };
            let mut locations: Vec<LocationId> = ops.into_iter().map(|o| o.location).collect();
            locations.sort();
            locations.dedup();
            for l in locations {
                match self.poll_operations(&l).await {
                    Ok(open) => report.still_open += open,
                    Err(EngineError::Busy(l)) => report.busy.push(l),
                    Err(e) => return Err(e),
                }
            }
            // Commands queued before a crash (or a sink that failed) go out now.
            report.commands_handed_out = self.dispatch(None, true).await?.handed_out;
            tracing::info!(
                found = report.found,
                open = report.still_open,
                handed_out = report.commands_handed_out,
                "recovery done"
            );
            Ok(report)
        }
        .instrument(span)
        .await
    }

    /// Polls the status of a location's operations in flight once (the fallback
    /// when notifications do not come), applies finished outcomes and hands out
    /// their commands. An operation still pending after the re-check delay is
    /// checked against Apple's assignments, and the location is marked for an
    /// incremental sync. Returns how many operations are still open.
    pub async fn poll_events(&self, location: &LocationId) -> Result<usize> {
        let span = tracing::info_span!("vppkit.poll", location = %location);
        self.poll_operations(location).instrument(span).await
    }
}
