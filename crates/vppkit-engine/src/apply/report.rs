//! Apply, step 4: what an apply did, counted for its report.

use vppkit_core::HoldingStatus;
use vppkit_ledger::EventKind;
use vppkit_store::{Operation, OperationStatus};

use crate::engine::{Engine, LocationGuard};
use crate::ops::OpRequest;

use super::*;

impl Engine {
    /// Adds an operation that finished while the location was unlocked (a
    /// notification completed it) to the apply report, commands handed out
    /// with it included.
    pub(crate) fn count_finished_elsewhere(
        &self,
        guard: &mut LocationGuard,
        op: &Operation,
        req: &OpRequest,
        report: &mut LocationApplyReport,
    ) {
        if op.status == OperationStatus::Complete || op.status == OperationStatus::Failed {
            self.count_outcome(guard, req, report);
            report.commands_sent += ready_commands(guard, req).len();
        }
    }

    /// Adds a finished operation's outcome to the apply report: licences
    /// confirmed or refused and licences released (from the ledger). Used by whoever sees the
    /// operation finish first in an apply, the poll or (through the store) a
    /// notification that completed it.
    pub(crate) fn count_outcome(
        &self,
        guard: &mut LocationGuard,
        req: &OpRequest,
        report: &mut LocationApplyReport,
    ) {
        match req.call.event_kind() {
            Some(EventKind::Associate) => {
                for (a, h) in &req.items {
                    match guard.book().ledger.holding(a, h) {
                        Some(HoldingStatus::Active) | Some(HoldingStatus::Adopted) => {
                            report.confirmed += 1
                        }
                        _ => report.refused.push((
                            a.clone(),
                            h.clone(),
                            "refused by Apple".to_owned(),
                        )),
                    }
                }
            }
            Some(_) => {
                report.released += req
                    .items
                    .iter()
                    .filter(|(a, h)| guard.book().ledger.holding(a, h).is_none())
                    .count();
            }
            None => {}
        }
        // Users created or retired are counted by the apply from what Apple
        // has once they are read back, not here from the event's failures.
    }
}
