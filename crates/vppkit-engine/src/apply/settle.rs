//! Apply, step 2: settle operations in flight (event status, notifications,
//! re-checks of lost answers), then close them.

use std::collections::{BTreeSet, HashSet};

use chrono::Duration;
use futures::TryStreamExt;
use tracing::Instrument;
use vppkit_client::AssignmentFilter;
use vppkit_core::{AssetKey, EventId, Holder, HoldingStatus, LocationId};
use vppkit_ledger::{Cause, EventKind};
use vppkit_store::{Operation, OperationStatus, OperationUpdate};

use crate::engine::{ApplyStep, Engine, LocationGuard};
use crate::error::{EngineError, Result};
use crate::marks::Mark;
use crate::ops::{event_outcome, OpCall, OpRequest};
use crate::sink::QueuedCommand;

use super::*;

impl Engine {
    /// Waits for operations to finish (or the re-check delay to pass), with the
    /// location unlocked between polls so notifications get in. Gives the guard
    /// back, or `None` if the location could not be locked again.
    pub(crate) async fn settle_locked(
        &self,
        guard: LocationGuard,
        ops: &[String],
        report: &mut LocationApplyReport,
    ) -> Result<Option<LocationGuard>> {
        let location = guard.id();
        let mut guard = Some(guard);
        if ops.is_empty() {
            return Ok(guard);
        }
        let inner = &self.inner;
        // Operations whose outcome is in `report` already.
        let mut counted: HashSet<&str> = HashSet::new();
        loop {
            let g = guard.as_mut().expect("held");
            let mut open = 0;
            for id in ops {
                if counted.contains(id.as_str()) {
                    continue;
                }
                let Some(op) = inner.store.operation(id).await? else {
                    continue;
                };
                if op.status.is_finished() {
                    // Finished while the location was unlocked (a notification
                    // completed it): count its outcome here.
                    counted.insert(id);
                    let req = stored_request(&op)?;
                    self.count_finished_elsewhere(g, &op, &req, report);
                    continue;
                }
                let done = self.advance(g, op, report).await?;
                if done {
                    counted.insert(id);
                } else {
                    open += 1;
                }
            }
            if open == 0 {
                return Ok(guard);
            }
            // Let notifications and other work in while Apple works.
            if let Some(g) = guard.take() {
                g.release(inner).await;
            }
            tokio::time::sleep(inner.config.event_poll_interval).await;
            match self.lock_waiting(&location).await {
                Ok(g) => guard = Some(g),
                Err(e) => {
                    report.pending_operations = open;
                    report.skipped = Some(e.to_string());
                    return Ok(None);
                }
            }
        }
    }

    /// Moves one unfinished operation forward. Returns whether it is finished.
    pub(crate) async fn advance(
        &self,
        guard: &mut LocationGuard,
        op: Operation,
        report: &mut LocationApplyReport,
    ) -> Result<bool> {
        let inner = &self.inner;
        let req = stored_request(&op)?;
        let now = inner.now();
        let age = now - op.created_at;
        let recheck =
            Duration::from_std(inner.config.event_recheck_after).unwrap_or(Duration::minutes(10));
        match op.status {
            OperationStatus::Prepared => {
                // Never sent: give back every licence reserved for it (the store
                // knows them even if the final request was not written).
                let mut req = req;
                for h in inner
                    .store
                    .holdings_by_operation(&op.location, &op.id)
                    .await?
                {
                    let item = (h.asset.clone(), h.holder.clone());
                    if !req.items.contains(&item) {
                        req.items.push(item);
                    }
                }
                self.undo(guard, &op.id, &req, "not sent before a restart")
                    .await?;
                Ok(true)
            }
            OperationStatus::Sent | OperationStatus::OutcomeUnknown => {
                self.resolve_unknown(guard, &op, &req, age >= recheck, report)
                    .await
            }
            OperationStatus::Pending => {
                let Some(event_id) = op.event_id.clone() else {
                    return self
                        .resolve_unknown(guard, &op, &req, age >= recheck, report)
                        .await;
                };
                if op
                    .result
                    .as_ref()
                    .is_some_and(|r| r.get("outcome").is_some())
                {
                    // Outcome applied before a restart: finish the commands.
                    return self.finish(guard, &op, &req, report).await;
                }
                let client = inner.client(&guard.record)?;
                let status = match client
                    .event_status(&event_id)
                    .instrument(
                        tracing::info_span!("vppkit.apple", call = "GET status", event = %event_id),
                    )
                    .await
                {
                    Ok(s) => s,
                    Err(e) if e.is_retryable() => return Ok(false),
                    Err(e) => return Err(inner.observe_error(&mut guard.record, e).await),
                };
                inner
                    .observe_envelope(&mut guard.record, &status.envelope)
                    .await?;
                if !status.body.is_finished() {
                    if age >= recheck {
                        return self.resolve_unknown(guard, &op, &req, true, report).await;
                    }
                    return Ok(false);
                }
                self.apply_outcome(guard, &op, &req, &event_id, &status.body)
                    .await?;
                self.finish(guard, &op, &req, report).await
            }
            _ => Ok(true),
        }
    }

    /// Applies a finished event's status to the ledger and the store.
    pub(crate) async fn apply_outcome(
        &self,
        guard: &mut LocationGuard,
        op: &Operation,
        req: &OpRequest,
        event_id: &EventId,
        status: &vppkit_client::EventStatus,
    ) -> Result<()> {
        let inner = &self.inner;
        let now = inner.now();
        let failed = status.event_status == vppkit_client::EventStatusKind::Failed;
        if let Some(kind) = req.call.event_kind() {
            let outcome = event_outcome(event_id, kind, status);
            let entries = guard.book().ledger.apply_event_outcome(&outcome, now)?;
            // Holdings of this operation not covered by the event (recorded before
            // a restart without the event) are settled one by one.
            self.write_entries(guard, &entries, Some(&op.id)).await?;
            self.settle_leftovers(guard, op, req, &outcome).await?;
        }
        if matches!(req.call, OpCall::RetireUsers { .. }) {
            inner
                .set_mark_or_log(Mark::Sync, &guard.id(), "users changed at Apple")
                .await;
        }
        self.update_op(
            guard,
            &op.id,
            OperationUpdate::new(OperationStatus::Pending, now).with_result(serde_json::json!({
                "request": req.to_json(),
                "outcome": if failed { "failed" } else { "complete" },
                "failures": status.failures,
            })),
        )
        .await?;
        inner.crash_at(ApplyStep::OutcomeApplied)?;
        Ok(())
    }

    /// After an event outcome: holdings of the operation still reserved or
    /// releasing under no event (the event was never recorded) follow the outcome.
    pub(crate) async fn settle_leftovers(
        &self,
        guard: &mut LocationGuard,
        op: &Operation,
        req: &OpRequest,
        outcome: &vppkit_ledger::EventOutcome,
    ) -> Result<()> {
        let now = self.inner.now();
        let cause = Cause::event(outcome.event_id.clone());
        let failed_all =
            outcome.status == vppkit_ledger::EventStatusKind::Failed && outcome.failures.is_empty();
        let mut entries = Vec::new();
        for (a, h) in &req.items {
            let named = outcome.failures.iter().any(|f| {
                (f.holders.is_empty() || f.holders.contains(h))
                    && (f.assets.is_empty() || f.assets.contains(a))
            });
            let failed = failed_all || named;
            let ledger = &mut guard.book().ledger;
            let e = match (req.call.event_kind(), ledger.holding(a, h)) {
                (Some(EventKind::Associate), Some(HoldingStatus::Reserved)) => {
                    if failed {
                        ledger.roll_back(a, h, cause.clone(), now)
                    } else {
                        ledger.confirm(a, h, cause.clone(), now)
                    }
                }
                (Some(k), Some(HoldingStatus::Releasing)) if k.releases() => {
                    if failed {
                        ledger.cancel_release(a, h, cause.clone(), now)
                    } else {
                        ledger.complete_release(a, h, cause.clone(), now)
                    }
                }
                _ => continue,
            };
            entries.extend(e.ok());
        }
        self.write_entries(guard, &entries, Some(&op.id)).await
    }

    /// The outcome is applied: hand out the commands whose licence is there,
    /// then close the operation.
    pub(crate) async fn finish(
        &self,
        guard: &mut LocationGuard,
        op: &Operation,
        req: &OpRequest,
        report: &mut LocationApplyReport,
    ) -> Result<bool> {
        let inner = &self.inner;
        let ready = ready_commands(guard, req);
        // The outcome as stored (apply_outcome may have written it after `op`
        // was read).
        let op = match inner.store.operation(&op.id).await? {
            Some(stored) => stored,
            None => op.clone(),
        };
        let op = &op;
        self.count_outcome(guard, req, report);
        report.commands_sent += self.deliver(guard, ready, Some(&op.id)).await?;
        inner.crash_at(ApplyStep::CommandsSent)?;
        let failed = op
            .result
            .as_ref()
            .and_then(|r| r.get("outcome"))
            .and_then(|o| o.as_str())
            == Some("failed");
        let status = if failed {
            OperationStatus::Failed
        } else {
            OperationStatus::Complete
        };
        self.update_op(guard, &op.id, OperationUpdate::new(status, inner.now()))
            .await?;
        Ok(true)
    }

    /// A request whose answer was lost: look at Apple's assignments instead of
    /// resending. Licences Apple has are confirmed (or released ones completed);
    /// after the re-check delay, the rest is rolled back.
    pub(crate) async fn resolve_unknown(
        &self,
        guard: &mut LocationGuard,
        op: &Operation,
        req: &OpRequest,
        give_up: bool,
        report: &mut LocationApplyReport,
    ) -> Result<bool> {
        let inner = &self.inner;
        let Some(kind) = req.call.event_kind() else {
            // Users: a sync tells what Apple has; the operation is closed.
            if give_up {
                inner
                    .set_mark_or_log(Mark::Sync, &guard.id(), "users changed at Apple")
                    .await;
                self.close(
                    guard,
                    op,
                    OperationStatus::Failed,
                    "outcome unknown; users re-read by the next sync",
                )
                .await?;
                return Ok(true);
            }
            return Ok(false);
        };
        let client = inner.client(&guard.record)?;
        let mut present: HashSet<(AssetKey, Holder)> = HashSet::new();
        let assets: BTreeSet<AssetKey> = req.items.iter().map(|(a, _)| a.clone()).collect();
        for asset in assets {
            let filter = AssignmentFilter::new()
                .adam_id(asset.adam_id.clone())
                .pricing_param(asset.pricing_param);
            let mut stream = client.assignments(filter);
            loop {
                let page = match stream
                    .try_next()
                    .instrument(tracing::info_span!(
                        "vppkit.apple",
                        call = "GET assignments (re-check)"
                    ))
                    .await
                {
                    Ok(Some(p)) => p,
                    Ok(None) => break,
                    Err(e) if e.is_retryable() => return Ok(false),
                    Err(e) => return Err(inner.observe_error(&mut guard.record, e).await),
                };
                for a in page.items {
                    if let Some(h) = a.holder() {
                        present.insert((a.asset_key(), h));
                    }
                }
            }
        }
        let now = inner.now();
        let cause = Cause::operator("engine", Some(format!("re-check of operation {}", op.id)));
        let mut entries = Vec::new();
        let mut unresolved = 0;
        for (a, h) in &req.items {
            let has = present.contains(&(a.clone(), h.clone()));
            let ledger = &mut guard.book().ledger;
            let status = ledger.holding(a, h);
            let e = match (kind, status, has) {
                (EventKind::Associate, Some(HoldingStatus::Reserved), true) => {
                    ledger.confirm(a, h, cause.clone(), now)
                }
                (EventKind::Associate, Some(HoldingStatus::Reserved), false) if give_up => {
                    ledger.roll_back(a, h, cause.clone(), now)
                }
                (k, Some(HoldingStatus::Releasing), false) if k.releases() => {
                    ledger.complete_release(a, h, cause.clone(), now)
                }
                (k, Some(HoldingStatus::Releasing), true) if k.releases() && give_up => {
                    ledger.cancel_release(a, h, cause.clone(), now)
                }
                (_, Some(HoldingStatus::Reserved) | Some(HoldingStatus::Releasing), _) => {
                    unresolved += 1;
                    continue;
                }
                _ => continue,
            };
            entries.extend(e.ok());
        }
        self.write_entries(guard, &entries, Some(&op.id)).await?;
        if unresolved > 0 {
            return Ok(false);
        }
        self.update_op(
            guard,
            &op.id,
            OperationUpdate::new(OperationStatus::Pending, now).with_result(
                serde_json::json!({ "request": req.to_json(), "outcome": "complete", "resolvedBy": "assignments" }),
            ),
        )
        .await?;
        let op = inner
            .store
            .operation(&op.id)
            .await?
            .unwrap_or_else(|| op.clone());
        self.finish(guard, &op, req, report).await
    }

    pub(crate) async fn close(
        &self,
        guard: &mut LocationGuard,
        op: &Operation,
        status: OperationStatus,
        why: &str,
    ) -> Result<()> {
        self.update_op(
            guard,
            &op.id,
            OperationUpdate::new(status, self.inner.now())
                .with_result(serde_json::json!({ "reason": why })),
        )
        .await?;
        Ok(())
    }

    /// Moves every unfinished operation of a location forward once (no waiting).
    /// Returns how many are still open.
    pub(crate) async fn poll_operations(&self, location: &LocationId) -> Result<usize> {
        let inner = &self.inner;
        let ops = inner.store.unfinished_operations(Some(location)).await?;
        if ops.is_empty() {
            return Ok(0);
        }
        let mut guard = inner.lock_location(location).await?;
        let mut report = LocationApplyReport::default();
        let mut open = 0;
        let mut result = Ok(());
        for op in ops {
            match self.advance(&mut guard, op, &mut report).await {
                Ok(true) => {}
                Ok(false) => open += 1,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        guard.release(inner).await;
        result.map(|_| open)
    }
}

pub(crate) fn stored_request(op: &Operation) -> Result<OpRequest> {
    // The final request is kept in the result of the `prepared` update (the
    // store keeps the inserted request unchanged).
    if let Some(r) = op.result.as_ref().and_then(|r| r.get("request")) {
        return serde_json::from_value(r.clone())
            .map_err(|e| EngineError::Corrupt(format!("operation {}: {e}", op.id)));
    }
    OpRequest::from_op(op)
}

/// The commands of a finished operation whose licence is there (associate) or
/// gone (release): the ones `finish` hands out.
pub(crate) fn ready_commands(guard: &mut LocationGuard, req: &OpRequest) -> Vec<QueuedCommand> {
    let mut ready = Vec::new();
    for c in &req.commands {
        let Some((asset, holder)) = &c.reference.licence else {
            ready.push(c.clone());
            continue;
        };
        let status = guard.book().ledger.holding(asset, holder);
        let ok = match req.call.event_kind() {
            Some(EventKind::Associate) => matches!(
                status,
                Some(HoldingStatus::Active) | Some(HoldingStatus::Adopted)
            ),
            Some(_) => status.is_none(),
            None => true,
        };
        if ok {
            ready.push(c.clone());
        }
    }
    ready
}
