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
    /// VPP users this apply asked Apple to create that Apple has once they are
    /// read back after the event (a user another MDM created meanwhile under
    /// the same id counts too). Users created by an operation that finished
    /// after the apply stopped waiting are counted by no apply.
    pub users_created: usize,
    /// VPP users this apply asked Apple to retire that Apple shows retired once
    /// read back (same rules as `users_created`).
    pub users_retired: usize,
    /// Invitation links for users without a device to send `InviteToProgram` to.
    pub invitation_links: Vec<(ClientUserId, String)>,
    /// MDM commands queued for the sink (the outbox hands them out).
    pub commands_sent: usize,
    /// Releases the plan asked for that were not done, with the reason
    /// (another MDM's user, a licence in flight, a book or non-revocable app).
    pub left_alone: Vec<(AssetKey, Holder, String)>,
    /// Users the plan asked to retire that were left alone, with the reason.
    pub users_left_alone: Vec<(ClientUserId, String)>,
    /// Operations still waiting for Apple when the apply returned.
    pub pending_operations: usize,
    /// Operations left open earlier (by a crash, or by another instance) that
    /// this apply finished or rolled back before doing anything new.
    pub recovered_operations: usize,
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
    ///
    /// Every MDM command goes through the engine's outbox (see
    /// [`Engine::outbox`]): stored first, then handed to the sink, retried
    /// while the sink fails. Prefer the reconcile loop
    /// ([`Engine::set_desired_state`], [`Engine::reconcile`]), which plans from
    /// the stored desired state and keeps applying it.
    pub async fn apply(&self, plan: &Plan) -> Result<ApplyReport> {
        self.apply_revision(plan, None).await
    }

    /// Applies a plan made from desired-state `revision` (named in the journal).
    pub(crate) async fn apply_revision(
        &self,
        plan: &Plan,
        revision: Option<u64>,
    ) -> Result<ApplyReport> {
        let span = tracing::info_span!(
            "vppkit.apply",
            locations = plan.locations.len(),
            revision = revision.unwrap_or(0)
        );
        self.apply_inner(plan, revision).instrument(span).await
    }

    async fn apply_inner(&self, plan: &Plan, revision: Option<u64>) -> Result<ApplyReport> {
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
                .map(|c| {
                    QueuedCommand::new(c.device, c.command, None, None, c.policy)
                        .on_channel(c.channel)
                })
                .collect();
            report.commands_sent += self.enqueue(queued, false, None).await?.queued;
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
                async move { engine.apply_location(&lp, cmds, revision).await }
            }))
            .buffer_unordered(n)
            .collect()
            .await;
        for r in results {
            match r {
                Ok(l) => report.locations.push(l),
                #[cfg(feature = "test-hooks")]
                Err(e @ EngineError::Crashed(_)) => return Err(e),
                Err(e) => report.locations.push(LocationApplyReport {
                    skipped: Some(e.to_string()),
                    ..Default::default()
                }),
            }
        }
        report.locations.sort_by(|a, b| a.location.cmp(&b.location));
        if report.commands_sent > 0 {
            // Commands of no location (removals that wait for no release).
            if let Err(e) = self.dispatch_commands(None).await {
                tracing::warn!(error = %e, "commands stay queued; handed out later");
            }
        }
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
            invalid_policies: plan.invalid_policies.clone(),
            planned_at: Some(self.inner.now()),
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
        revision: Option<u64>,
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
            // 0. Operations a crash or a dead instance left open here are
            //    finished or rolled back before anything new is sent.
            let left: Vec<String> = inner
                .store
                .unfinished_operations(Some(&location))
                .await?
                .into_iter()
                .map(|o| o.id)
                .collect();
            // Counted apart: another apply (perhaps in flight in another
            // instance) reports their licences.
            let mut earlier = LocationApplyReport::default();
            let settled = self.settle_locked(guard, &left, &mut earlier).await?;
            report.recovered_operations = left.len() - earlier.pending_operations;
            let Some(mut guard) = settled else {
                report.pending_operations = earlier.pending_operations;
                report.skipped = earlier.skipped;
                return Ok(report);
            };

            // 1. Users, then invitations. Users Apple already has (a
            //    `users/create` whose answer was lost before a crash) are read
            //    back first and never created twice.
            let mut ops = Vec::new();
            let mut sent_users: Vec<ClientUserId> = Vec::new();
            if !lp.create_users.is_empty() {
                self.read_back_users(&mut guard).await?;
            }
            for batch in &lp.create_users {
                let known: Vec<ClientUserId> = batch
                    .users
                    .iter()
                    .filter(|u| guard.book().ledger.user(&u.client_user_id).is_some())
                    .map(|u| u.client_user_id.clone())
                    .collect();
                if !known.is_empty() {
                    tracing::info!(
                        users = known.len(),
                        "users Apple already has are not created again"
                    );
                    guard.book().own_users.extend(known.iter().cloned());
                    // The read-back stored them as another MDM's users: store
                    // them as ours too, or a restart forgets it.
                    let mut page = vppkit_store::SyncPage::new(inner.now());
                    page.fence = Some(guard.fence());
                    page.upsert_users = known
                        .iter()
                        .filter_map(|id| guard.book().ledger.user(id).cloned())
                        .map(|u| (u, true))
                        .collect();
                    inner.store.apply_sync_page(&location, &page).await?;
                }
                let users: Vec<RequestUser> = batch
                    .users
                    .iter()
                    .filter(|u| !known.contains(&u.client_user_id))
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
                if users.is_empty() {
                    continue;
                }
                guard.keep_lease(inner).await?;
                let ids: Vec<ClientUserId> =
                    users.iter().map(|u| u.client_user_id.clone()).collect();
                guard.book().own_users.extend(ids.iter().cloned());
                let call = OpCall::CreateUsers {
                    request: ManageUsersRequest::new(users),
                };
                if let Some(id) = self.submit(&mut guard, call, Vec::new(), Vec::new()).await? {
                    ops.push(id);
                    sent_users.extend(ids);
                }
            }
            let guard = self.settle_locked(guard, &ops, &mut report).await?;
            let Some(mut guard) = guard else {
                return Ok(report);
            };
            if !ops.is_empty() {
                // What Apple has now is what was created: counted from the
                // read-back, never from the request less its failure entries.
                self.read_back_users(&mut guard).await?;
                report.users_created += count_users(&mut guard, &sent_users, |s| {
                    *s != VppUserStatus::Retired
                });
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
                    for (i, d) in inv.devices.iter().enumerate() {
                        let channel = inv.channels.get(i).copied().unwrap_or_default();
                        invite_cmds.push(
                            QueuedCommand::new(
                                d.clone(),
                                inv.command(link.clone()),
                                Some(location.clone()),
                                None,
                                None,
                            )
                            .on_channel(channel),
                        );
                    }
                }
            }
            if !invite_cmds.is_empty() {
                report.commands_sent += self.enqueue(invite_cmds, false, None).await?.queued;
            }

            // 2. Licences: associate, disassociate, revoke.
            let mut pending_cmds: Vec<DeviceCommand> = commands;
            let mut ops = Vec::new();
            for batch in &lp.associate {
                let (ids, refused) = self
                    .submit_associate(&mut guard, batch, &mut pending_cmds, revision)
                    .await?;
                report.refused.extend(refused);
                ops.extend(ids);
            }
            let plan_note = |why: String| match revision {
                Some(r) => format!("{why} (desired state revision {r})"),
                None => why,
            };
            for batch in &lp.disassociate {
                guard.keep_lease(inner).await?;
                let why = plan_note(format!("{:?}", batch.reason));
                let (ids, left) = self
                    .submit_disassociate(&mut guard, batch.holdings(), &why, &mut pending_cmds)
                    .await?;
                ops.extend(ids);
                report.left_alone.extend(left);
            }
            for batch in &lp.revoke {
                guard.keep_lease(inner).await?;
                let why = plan_note("revoke".to_owned());
                let (id, left) = self.submit_revoke(&mut guard, &batch.targets, &why).await?;
                ops.extend(id);
                report.left_alone.extend(left);
            }
            // Commands whose licence is already there (or that need none) go now.
            let now_cmds = self.commands_ready_now(&mut guard, &mut pending_cmds);
            if !now_cmds.is_empty() {
                report.commands_sent += self.deliver(&mut guard, now_cmds, None).await?;
            }
            for c in &pending_cmds {
                tracing::info!(device = %c.device, "command not queued: its licence could not be reserved");
            }
            let guard = self.settle_locked(guard, &ops, &mut report).await?;
            let Some(mut guard) = guard else {
                return Ok(report);
            };

            // 3. Retire users. As for users/create, what Apple has is read back
            //    first: a retire whose answer was lost is never sent again.
            let mut ops = Vec::new();
            let mut sent_users: Vec<ClientUserId> = Vec::new();
            if !lp.retire_users.is_empty() {
                self.read_back_users(&mut guard).await?;
            }
            for batch in &lp.retire_users {
                let own: Vec<ClientUserId> = batch
                    .client_user_ids
                    .iter()
                    .filter(|u| guard.book().own_users.contains(*u))
                    .cloned()
                    .collect();
                for u in batch
                    .client_user_ids
                    .iter()
                    .filter(|u| !own.contains(*u))
                {
                    report.users_left_alone.push((
                        u.clone(),
                        "another MDM created this VPP user; it is never retired".to_owned(),
                    ));
                }
                // Already retired at Apple (read back above): nothing to send.
                let own: Vec<ClientUserId> = own
                    .into_iter()
                    .filter(|u| {
                        let retired = guard
                            .book()
                            .ledger
                            .user(u)
                            .is_some_and(|x| x.status == VppUserStatus::Retired);
                        !retired
                    })
                    .collect();
                if own.is_empty() {
                    continue;
                }
                let call = OpCall::RetireUsers {
                    request: ManageUsersRequest::new(
                        own.iter().cloned().map(RequestUser::new).collect(),
                    ),
                };
                if let Some(id) = self.submit(&mut guard, call, Vec::new(), Vec::new()).await? {
                    ops.push(id);
                    sent_users.extend(own);
                }
            }
            if let Some(mut g) = self.settle_locked(guard, &ops, &mut report).await? {
                if !ops.is_empty() {
                    // As for users/create: counted from what Apple has now. The
                    // retire is done at Apple: a failed read-back only leaves
                    // the count to the next sync (marked when the retire ended).
                    match self.read_back_users(&mut g).await {
                        Ok(()) => {
                            report.users_retired += count_users(&mut g, &sent_users, |s| {
                                *s == VppUserStatus::Retired
                            })
                        }
                        Err(e) => tracing::warn!(
                            error = %e,
                            "retired users not read back; the next sync reads them"
                        ),
                    }
                }
                g.release(inner).await;
            }
            if let Err(e) = self.dispatch_commands(Some(&location)).await {
                tracing::warn!(location = %location, error = %e, "commands stay queued; handed out later");
            }
            Ok(report)
        }
        .instrument(span)
        .await
    }

    /// Reads the location's VPP users back from Apple (incrementally): before a
    /// users/create or users/retire, so a write whose answer was lost is never
    /// sent again for users Apple already has (or already retired).
    async fn read_back_users(&self, guard: &mut LocationGuard) -> Result<()> {
        let since = self
            .inner
            .store
            .sync_status(&guard.id())
            .await?
            .cursor(vppkit_store::SyncEndpoint::Users)
            .filter(|c| c.next_page.is_none())
            .map(|c| c.version_id.clone());
        self.sync_users(guard, since, &ProgressReporter::none())
            .await
            .map(drop)
    }

    /// Locks a location, waiting for another instance's lease to end (up to the
    /// lease duration).
    pub(crate) async fn lock_waiting(&self, location: &LocationId) -> Result<LocationGuard> {
        let inner = &self.inner;
        let deadline = std::time::Instant::now() + inner.config.lease_duration;
        let mut said = false;
        loop {
            match inner.lock_location(location).await {
                Err(EngineError::Busy(_)) if std::time::Instant::now() < deadline => {
                    if !said {
                        said = true;
                        let lease = inner
                            .store
                            .lease(&crate::engine::lease_name(location))
                            .await
                            .ok()
                            .flatten();
                        tracing::warn!(
                            location = %location,
                            holder = lease.as_ref().map_or("", |l| l.owner.as_str()),
                            until = ?lease.as_ref().map(|l| l.expires_at),
                            "another instance holds the location: waiting for its lease to end"
                        );
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                other => return other,
            }
        }
    }
}

/// How many of `users` the location's ledger (just read back from Apple)
/// holds with a status `counted` accepts.
fn count_users(
    guard: &mut LocationGuard,
    users: &[ClientUserId],
    counted: impl Fn(&VppUserStatus) -> bool,
) -> usize {
    let ledger = &guard.book().ledger;
    users
        .iter()
        .filter(|u| ledger.user(u).is_some_and(|x| counted(&x.status)))
        .count()
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
        | BlockReason::AdoptedKept { location }
        | BlockReason::ForeignUser { location } => Some(location),
        _ => None,
    }
}
