//! Apply: a plan from the rules turned into reservations, Apple calls, event
//! outcomes and, only then, MDM commands.
//!
//! For each licence operation the order is fixed, and a crash between any two
//! steps is recovered on restart ([`Engine::recover`]):
//!
//! 1. the operation is stored (`prepared`) and the licences are reserved in the
//!    ledger and, atomically, in the store;
//! 2. the operation is marked `sent`, then the request goes to Apple;
//! 3. Apple's `eventId` is recorded in the store before anything else;
//! 4. the event's outcome (status poll or notification) confirms or rolls back
//!    each licence;
//! 5. only then are the MDM commands for confirmed licences handed to the sink,
//!    and the operation is closed.
//!
//! A request whose answer was lost (`sent` or `outcome_unknown`) is never resent
//! blindly: the assignments are checked, and what Apple does not have after the
//! re-check delay is rolled back for the next plan to try again.

use std::collections::{BTreeMap, HashSet};

use tracing::Instrument;
use vppkit_client::{ManageUsersRequest, RequestUser};
use vppkit_core::{AssetKey, ClientUserId, Holder, LocationId, VppUserStatus};
use vppkit_rules::{DeviceCommand, LocationPlan, Plan, Precondition};

use crate::engine::{Engine, LocationGuard};
use crate::error::{EngineError, Result};
use crate::ops::OpCall;
use crate::progress::ProgressReporter;
use crate::report::PlanItems;
use crate::sink::QueuedCommand;

mod handoff;
mod report;
mod settle;
mod submit;

pub(crate) use handoff::*;
pub(crate) use settle::*;

/// What an apply did, per location.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApplyReport {
    /// One entry per location of the plan.
    pub locations: Vec<LocationApplyReport>,
    /// Commands with no licence precondition handed to the sink.
    pub commands_sent: usize,
}

/// What an apply did in one location.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LocationApplyReport {
    /// The location.
    pub location: Option<LocationId>,
    /// Why nothing was done (token state, another instance at work, an error).
    pub skipped: Option<String>,
    /// Licences Apple confirmed.
    pub confirmed: usize,
    /// Licences Apple refused or that could not be reserved, with the reason.
    pub refused: Vec<(AssetKey, Holder, String)>,
    /// Licences released.
    pub released: usize,
    /// VPP users created.
    pub users_created: usize,
    /// VPP users retired.
    pub users_retired: usize,
    /// Invitation links for users without a device to send `InviteToProgram` to.
    pub invitation_links: Vec<(ClientUserId, String)>,
    /// MDM commands handed to the sink.
    pub commands_sent: usize,
    /// Operations still waiting for Apple when the apply returned.
    pub pending_operations: usize,
}

impl Engine {
    /// Applies a plan from `vppkit-rules`: for each location, creates users, sends
    /// invitations, associates (after reserving), disassociates and revokes, and
    /// retires users, waiting for Apple's outcome of each step (polling event status
    /// every [`event_poll_interval`](crate::EngineConfig::event_poll_interval), up to
    /// the [`event_recheck_after`](crate::EngineConfig::event_recheck_after) delay);
    /// then hands out the MDM commands whose licences Apple confirmed. The
    /// plan's waitlists and blocked items are stored (per location, as a named
    /// store document) for [`Engine::report`], in this process or any other.
    pub async fn apply(&self, plan: &Plan) -> Result<ApplyReport> {
        let span = tracing::info_span!("vppkit.apply", locations = plan.locations.len());
        self.apply_inner(plan).instrument(span).await
    }

    pub(crate) async fn apply_inner(&self, plan: &Plan) -> Result<ApplyReport> {
        use futures::StreamExt;
        let inner = &self.inner;
        self.remember_plan(plan).await?;
        let mut report = ApplyReport::default();

        // Commands tied to a licence go with the operation that makes the licence;
        // the rest go out now.
        let mut by_location: BTreeMap<LocationId, Vec<DeviceCommand>> = BTreeMap::new();
        let mut free_commands = Vec::new();
        for c in &plan.commands {
            match &c.after {
                Precondition::Associated { location, .. } => by_location
                    .entry(location.clone())
                    .or_default()
                    .push(c.clone()),
                _ => match removal_location(plan, c) {
                    Some(l) => by_location.entry(l).or_default().push(c.clone()),
                    None => free_commands.push(c.clone()),
                },
            }
        }
        if !free_commands.is_empty() {
            let queued: Vec<QueuedCommand> = free_commands
                .into_iter()
                .map(|c| QueuedCommand::new(c.device, c.command, None, None, c.policy))
                .collect();
            report.commands_sent += queued.len();
            inner.sink.send(queued).await?;
        }

        let n = inner.config.max_concurrent_locations;
        let mut jobs: Vec<(LocationPlan, Vec<DeviceCommand>)> = plan
            .locations
            .iter()
            .map(|lp| {
                let cmds = by_location.remove(&lp.location).unwrap_or_default();
                (lp.clone(), cmds)
            })
            .collect();
        // Commands for locations with nothing else to do.
        jobs.extend(
            by_location
                .into_iter()
                .map(|(l, cmds)| (LocationPlan::new(l), cmds)),
        );
        let results: Vec<Result<LocationApplyReport>> =
            futures::stream::iter(jobs.into_iter().map(|(lp, cmds)| {
                let engine = self.clone();
                async move { engine.apply_location(&lp, cmds).await }
            }))
            .buffer_unordered(n)
            .collect()
            .await;
        for r in results {
            match r {
                Ok(l) => report.locations.push(l),
                Err(e @ EngineError::Crashed(_)) => return Err(e),
                Err(e) => report.locations.push(LocationApplyReport {
                    skipped: Some(e.to_string()),
                    ..Default::default()
                }),
            }
        }
        report.locations.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(report)
    }

    /// Stores the plan's waitlists and blocked items per location: an item that
    /// names its location goes there, any other to every location that owns the
    /// asset; what no location gets is stored apart ([`Engine::unplaced_plan_items`]).
    pub(crate) async fn remember_plan(&self, plan: &Plan) -> Result<()> {
        let locations = self.inner.store.locations().await?;
        let mut placed_waits = vec![false; plan.waitlisted.len()];
        let mut placed_blocks = vec![false; plan.blocked.len()];
        for l in locations {
            let holds: HashSet<_> = self
                .inner
                .store
                .assets(&l.id)
                .await?
                .into_iter()
                .map(|a| a.asset.key.adam_id)
                .collect();
            let mut notes = PlanItems::default();
            for (i, w) in plan.waitlisted.iter().enumerate() {
                let here = w
                    .location
                    .as_ref()
                    .map_or(holds.contains(&w.adam_id), |x| *x == l.id);
                if here {
                    placed_waits[i] = true;
                    notes.waitlisted.push(w.clone());
                }
            }
            for (i, b) in plan.blocked.iter().enumerate() {
                let here =
                    holds.contains(&b.adam_id) && blocked_location(b).is_none_or(|x| *x == l.id);
                if here {
                    placed_blocks[i] = true;
                    notes.blocked.push(b.clone());
                }
            }
            self.inner.set_plan_notes(Some(&l.id), &notes).await?;
        }
        let unplaced = PlanItems {
            waitlisted: plan
                .waitlisted
                .iter()
                .zip(&placed_waits)
                .filter(|(_, placed)| !**placed)
                .map(|(w, _)| w.clone())
                .collect(),
            blocked: plan
                .blocked
                .iter()
                .zip(&placed_blocks)
                .filter(|(_, placed)| !**placed)
                .map(|(b, _)| b.clone())
                .collect(),
        };
        self.inner.set_plan_notes(None, &unplaced).await?;
        Ok(())
    }

    /// The last applied plan's waitlists and blocked items that belong to no
    /// location (for example a policy for an app no location owns); the others
    /// are in each location's [`Engine::report`]. Read from the store, so any
    /// instance sees what another one applied.
    pub async fn unplaced_plan_items(&self) -> Result<PlanItems> {
        self.inner.plan_notes(None).await
    }

    pub(crate) async fn apply_location(
        &self,
        lp: &LocationPlan,
        commands: Vec<DeviceCommand>,
    ) -> Result<LocationApplyReport> {
        let inner = &self.inner;
        let location = lp.location.clone();
        let span = tracing::info_span!("vppkit.apply.location", location = %location);
        async move {
            let mut report = LocationApplyReport {
                location: Some(location.clone()),
                ..Default::default()
            };
            let mut guard = match self.lock_waiting(&location).await {
                Ok(g) => g,
                Err(e) => {
                    report.skipped = Some(e.to_string());
                    return Ok(report);
                }
            };
            inner
                .observe_token(&mut guard.record, crate::token_state::TokenObservation::Tick)
                .await?;
            if let Err(e) = inner.check_writes(&guard.record) {
                guard.release(inner).await;
                report.skipped = Some(e.to_string());
                return Ok(report);
            }

            // 1. Users, then invitations.
            let mut ops = Vec::new();
            for batch in &lp.create_users {
                let users: Vec<RequestUser> = batch
                    .users
                    .iter()
                    .map(|u| {
                        let mut r = RequestUser::new(u.client_user_id.clone());
                        if let Some(e) = &u.email {
                            r = r.with_email(e.clone());
                        }
                        if let Some(m) = &u.managed_apple_id {
                            r = r.with_managed_apple_id(m.clone());
                        }
                        r
                    })
                    .collect();
                let ids: Vec<ClientUserId> =
                    users.iter().map(|u| u.client_user_id.clone()).collect();
                guard.book().own_users.extend(ids.iter().cloned());
                let call = OpCall::CreateUsers {
                    request: ManageUsersRequest::new(users),
                };
                if let Some(id) = self.submit(&mut guard, call, Vec::new(), Vec::new()).await? {
                    ops.push(id);
                }
            }
            let guard = self.settle_locked(guard, &ops, &mut report).await?;
            let Some(mut guard) = guard else {
                return Ok(report);
            };
            if !lp.create_users.is_empty() {
                let since = inner
                    .store
                    .sync_status(&location)
                    .await?
                    .cursor(vppkit_store::SyncEndpoint::Users)
                    .filter(|c| c.next_page.is_none())
                    .map(|c| c.version_id.clone());
                self.sync_users(&mut guard, since, &ProgressReporter::none())
                    .await?;
            }
            let mut invite_cmds = Vec::new();
            for inv in &lp.invitations {
                let code = inv.invite_code.clone().or_else(|| {
                    guard
                        .book()
                        .ledger
                        .user(&inv.client_user_id)
                        .filter(|u| u.status == VppUserStatus::Registered)
                        .and_then(|u| u.invite_code.clone())
                });
                let Some(code) = code else { continue };
                let link = match inner.client(&guard.record)?.cached_service_config().await {
                    Ok(cfg) => cfg.urls.invitation_link(&code),
                    Err(_) => None,
                };
                let Some(link) = link else { continue };
                if inv.devices.is_empty() {
                    report
                        .invitation_links
                        .push((inv.client_user_id.clone(), link));
                } else {
                    for d in &inv.devices {
                        invite_cmds.push(QueuedCommand::new(
                            d.clone(),
                            inv.command(link.clone()),
                            Some(location.clone()),
                            None,
                            None,
                        ));
                    }
                }
            }
            if !invite_cmds.is_empty() {
                report.commands_sent += invite_cmds.len();
                inner.sink.send(invite_cmds).await?;
            }

            // 2. Licences: associate, disassociate, revoke.
            let mut pending_cmds: Vec<DeviceCommand> = commands;
            let mut ops = Vec::new();
            for batch in &lp.associate {
                let (ids, refused) = self
                    .submit_associate(&mut guard, batch, &mut pending_cmds)
                    .await?;
                report.refused.extend(refused);
                ops.extend(ids);
            }
            for batch in &lp.disassociate {
                let why = format!("{:?}", batch.reason);
                ops.extend(
                    self.submit_disassociate(&mut guard, batch.holdings(), &why, &mut pending_cmds)
                        .await?,
                );
            }
            for batch in &lp.revoke {
                ops.extend(self.submit_revoke(&mut guard, &batch.targets).await?);
            }
            // Commands whose licence is already there (or that need none) go now.
            let now_cmds = self.commands_ready_now(&mut guard, &mut pending_cmds);
            if !now_cmds.is_empty() {
                report.commands_sent += self.deliver(&mut guard, now_cmds).await?;
            }
            for c in &pending_cmds {
                tracing::info!(device = %c.device, "command dropped: its licence could not be reserved");
            }
            let guard = self.settle_locked(guard, &ops, &mut report).await?;
            let Some(mut guard) = guard else {
                return Ok(report);
            };

            // 3. Retire users.
            let mut ops = Vec::new();
            for batch in &lp.retire_users {
                let own: Vec<ClientUserId> = batch
                    .client_user_ids
                    .iter()
                    .filter(|u| guard.book().own_users.contains(*u))
                    .cloned()
                    .collect();
                if own.is_empty() {
                    continue;
                }
                let call = OpCall::RetireUsers {
                    request: ManageUsersRequest::new(
                        own.into_iter().map(RequestUser::new).collect(),
                    ),
                };
                ops.extend(self.submit(&mut guard, call, Vec::new(), Vec::new()).await?);
            }
            if let Some(g) = self.settle_locked(guard, &ops, &mut report).await? {
                g.release(inner).await;
            }
            Ok(report)
        }
        .instrument(span)
        .await
    }

    /// Locks a location, waiting for another instance's lease to end (up to the
    /// lease duration).
    pub(crate) async fn lock_waiting(&self, location: &LocationId) -> Result<LocationGuard> {
        let inner = &self.inner;
        let deadline = std::time::Instant::now() + inner.config.lease_duration;
        loop {
            match inner.lock_location(location).await {
                Err(EngineError::Busy(_)) if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                other => return other,
            }
        }
    }
}

/// The location whose disassociation a removal command should wait for.
pub(crate) fn removal_location(plan: &Plan, c: &DeviceCommand) -> Option<LocationId> {
    let holder = Holder::Device(c.device.clone());
    plan.locations
        .iter()
        .find(|lp| {
            lp.disassociate.iter().any(|b| {
                b.holdings()
                    .iter()
                    .any(|(a, h)| *h == holder && removal_matches(&c.command, a))
            })
        })
        .map(|lp| lp.location.clone())
}

/// The location a blocked item names, if its reason names one.
pub(crate) fn blocked_location(b: &vppkit_rules::Blocked) -> Option<&LocationId> {
    use vppkit_rules::BlockReason;
    match &b.reason {
        BlockReason::AwaitingInvitation { location }
        | BlockReason::ReleaseInFlight { location }
        | BlockReason::NotRevocable { location }
        | BlockReason::AdoptedKept { location } => Some(location),
        _ => None,
    }
}
