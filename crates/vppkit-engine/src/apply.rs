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

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::Duration;
use futures::TryStreamExt;
use tracing::Instrument;
use vppkit_client::{
    AssignmentFilter, ManageAssetsRequest, ManageUsersRequest, RequestUser, RevokeAssetsRequest,
};
use vppkit_core::{
    AssetKey, ClientUserId, EventId, Holder, HoldingStatus, LocationId, SerialNumber, VppUserStatus,
};
use vppkit_ledger::{Cause, EventKind, JournalEntry, PendingEvent};
use vppkit_rules::{
    AssetBatch, BatchTargets, DeviceCommand, LocationPlan, MdmCommand, Plan, Precondition,
};
use vppkit_store::{
    InstallRecord, InstallState, Operation, OperationStatus, OperationUpdate, Reservation,
};

use crate::book::{journal_record, PageBuilder, INSTALL_KIND};
use crate::engine::{ApplyStep, Engine, LocationGuard};
use crate::error::{EngineError, Result};
use crate::ops::{event_outcome, OpCall, OpRequest};
use crate::progress::ProgressReporter;
use crate::report::PlanItems;
use crate::sink::{CommandRef, CommandResult, QueuedCommand, RejectionReason};

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

    async fn apply_inner(&self, plan: &Plan) -> Result<ApplyReport> {
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
    async fn remember_plan(&self, plan: &Plan) -> Result<()> {
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

    async fn apply_location(
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

    /// Reserves and sends one associate batch. An Apple request assigns every
    /// asset it names to every target it names, so the batch is regrouped into
    /// requests that are exact products of what could be reserved (assets with
    /// the same holders together): Apple is never asked for a licence that was
    /// not reserved first. Returns the operation ids and the licences that could
    /// not be reserved, with the reason.
    async fn submit_associate(
        &self,
        guard: &mut LocationGuard,
        batch: &AssetBatch,
        pending_cmds: &mut Vec<DeviceCommand>,
    ) -> Result<(Vec<String>, Vec<(AssetKey, Holder, String)>)> {
        let inner = &self.inner;
        let location = guard.id();
        let cause = match batch.policies.first() {
            Some(p) => Cause::policy(p.to_string()),
            None => Cause::operator("plan", None),
        };
        let holders = batch.targets.holders();
        let mut refused = Vec::new();
        // 1. What can be reserved, read from the ledger.
        let mut wanted: Vec<(AssetKey, Holder)> = Vec::new();
        for asset in &batch.assets {
            let ledger = &guard.book().ledger;
            let Some(view) = ledger.asset_view(asset) else {
                for h in &holders {
                    refused.push((
                        asset.clone(),
                        h.clone(),
                        "asset not in this location".to_owned(),
                    ));
                }
                continue;
            };
            let mut free = view.free;
            for h in &holders {
                let why = if let Some(st) = ledger.holding(asset, h) {
                    Some(format!("already held ({st})"))
                } else if h.is_device()
                    && (!view.device_assignable
                        || view.product_type == vppkit_core::ProductType::Book)
                {
                    Some("not device-assignable".to_owned())
                } else if matches!(h, Holder::User(u) if ledger.user(u).is_some_and(|x| !x.status.is_active()))
                {
                    Some("the user is not active".to_owned())
                } else if free == 0 {
                    Some("no licence free".to_owned())
                } else {
                    None
                };
                match why {
                    Some(w) => refused.push((asset.clone(), h.clone(), w)),
                    None => {
                        free -= 1;
                        wanted.push((asset.clone(), h.clone()));
                    }
                }
            }
        }
        // 2. One operation per exact product.
        let mut ops = Vec::new();
        for (assets, group_holders) in group_products(&wanted) {
            let op_id = uuid::Uuid::new_v4().to_string();
            let now = inner.now();
            // The operation is stored first, so a crash after any reservation finds it.
            let placeholder = OpRequest {
                call: OpCall::Associate {
                    request: ManageAssetsRequest::default(),
                },
                items: Vec::new(),
                commands: Vec::new(),
            };
            inner
                .store
                .insert_operation(&Operation::new(
                    op_id.clone(),
                    location.clone(),
                    placeholder.call.kind(),
                    placeholder.to_json(),
                    now,
                ))
                .await?;
            let mut reserved_assets = Vec::new();
            for asset in assets {
                let mut entries: Vec<JournalEntry> = Vec::new();
                let mut failure = None;
                for h in &group_holders {
                    match guard.book().ledger.reserve(&asset, h, cause.clone(), now) {
                        Ok(e) => entries.push(e),
                        Err(r) => {
                            failure = Some(r.to_string());
                            break;
                        }
                    }
                }
                if let Some(why) = failure {
                    // Not as predicted: give back what was taken for this asset.
                    let undo =
                        Cause::operator("engine", Some(format!("reservation incomplete: {why}")));
                    let mut all = entries.clone();
                    for e in &entries {
                        if let Some(h) = e.holder() {
                            all.extend(
                                guard
                                    .book()
                                    .ledger
                                    .roll_back(&asset, &h, undo.clone(), now)
                                    .ok(),
                            );
                        }
                    }
                    self.write_entries(guard, &all, Some(&op_id)).await?;
                    for h in &group_holders {
                        refused.push((asset.clone(), h.clone(), why.clone()));
                    }
                    continue;
                }
                let journal = entries.iter().map(journal_record).collect();
                let reservation = Reservation::new(
                    location.clone(),
                    asset.clone(),
                    group_holders.clone(),
                    op_id.clone(),
                    now,
                )
                .with_journal(journal);
                match inner.store.reserve(&reservation).await {
                    Ok(_) => reserved_assets.push(asset),
                    Err(e) => {
                        // The store (shared by every instance) refused: the ledger's
                        // last entries were not written, so reload it from the store.
                        tracing::warn!(asset = %asset, error = %e, "reservation refused by the store");
                        guard.invalidate();
                        self.reload(guard).await?;
                        for h in &group_holders {
                            refused.push((asset.clone(), h.clone(), e.to_string()));
                        }
                    }
                }
            }
            if reserved_assets.is_empty() {
                inner
                    .store
                    .update_operation(
                        &op_id,
                        &OperationUpdate::new(OperationStatus::RolledBack, now)
                            .with_result(serde_json::json!({"reason": "nothing reserved"})),
                    )
                    .await?;
                continue;
            }
            let items: Vec<(AssetKey, Holder)> = reserved_assets
                .iter()
                .flat_map(|a| group_holders.iter().map(move |h| (a.clone(), h.clone())))
                .collect();
            // The commands that wait for these licences.
            let mut commands = Vec::new();
            pending_cmds.retain(|c| match &c.after {
                Precondition::Associated {
                    location: l,
                    asset,
                    holder,
                } if *l == location && items.iter().any(|(a, h)| a == asset && h == holder) => {
                    commands.push(QueuedCommand::new(
                        c.device.clone(),
                        c.command.clone(),
                        Some(location.clone()),
                        Some((asset.clone(), holder.clone())),
                        c.policy.clone(),
                    ));
                    false
                }
                _ => true,
            });
            let (serials, users) = split_holders(&items);
            let mut request = ManageAssetsRequest::devices(reserved_assets, serials);
            request.client_user_ids = users;
            let req = OpRequest {
                call: OpCall::Associate { request },
                items,
                commands,
            };
            self.store_request(&op_id, &req).await?;
            inner.crash_at(ApplyStep::Reserved)?;
            self.send(guard, &op_id, &req).await?;
            ops.push(op_id);
        }
        Ok((ops, refused))
    }

    /// Writes the final request of an operation (its status stays `prepared`).
    async fn store_request(&self, op_id: &str, req: &OpRequest) -> Result<()> {
        let inner = &self.inner;
        let op = inner
            .store
            .operation(op_id)
            .await?
            .ok_or_else(|| EngineError::Corrupt(format!("operation {op_id} vanished")))?;
        let mut replacement = op.clone();
        replacement.request = req.to_json();
        // The store keeps the request as inserted; keep the final one in the result
        // of a `prepared` update.
        inner
            .store
            .update_operation(
                op_id,
                &OperationUpdate::new(OperationStatus::Prepared, inner.now())
                    .expecting(OperationStatus::Prepared)
                    .with_result(serde_json::json!({ "request": replacement.request })),
            )
            .await?;
        Ok(())
    }

    /// Releases holdings (settled device holdings and own users' ones: see
    /// `may_modify`) with disassociate
    /// requests that are exact products of what is released. Returns the
    /// operation ids.
    async fn submit_disassociate(
        &self,
        guard: &mut LocationGuard,
        holdings: Vec<(AssetKey, Holder)>,
        why: &str,
        pending_cmds: &mut Vec<DeviceCommand>,
    ) -> Result<Vec<String>> {
        let location = guard.id();
        let cause = Cause::operator("plan", Some(why.to_owned()));
        let mut releasable = Vec::new();
        let mut left_alone = 0usize;
        for (asset, holder) in holdings {
            let revocable =
                guard.book().ledger.asset_view(&asset).is_some_and(|v| {
                    v.revocable && v.product_type != vppkit_core::ProductType::Book
                });
            if !revocable || !self.may_modify(guard, Some(&asset), &holder) {
                left_alone += 1;
                continue;
            }
            releasable.push((asset, holder));
        }
        if left_alone > 0 {
            tracing::info!(
                left_alone,
                "holdings of other MDMs' users, in flight or not revocable are not released"
            );
        }
        let mut ops = Vec::new();
        for (assets, holders) in group_products(&releasable) {
            let now = self.inner.now();
            let mut entries = Vec::new();
            let mut items = Vec::new();
            for a in &assets {
                for h in &holders {
                    if let Ok(e) = guard.book().ledger.release(a, h, cause.clone(), now) {
                        entries.push(e);
                        items.push((a.clone(), h.clone()));
                    }
                }
            }
            if items.len() != assets.len() * holders.len() {
                // Not the product predicted: undo and leave it to the next plan.
                let undo = Cause::operator("engine", Some("release incomplete".to_owned()));
                let mut all = entries.clone();
                for (a, h) in &items {
                    all.extend(
                        guard
                            .book()
                            .ledger
                            .cancel_release(a, h, undo.clone(), now)
                            .ok(),
                    );
                }
                self.write_entries(guard, &all, None).await?;
                continue;
            }
            let mut commands = Vec::new();
            pending_cmds.retain(|c| {
                let hit = items.iter().find(|(a, h)| {
                    removal_matches(&c.command, a) && h == &Holder::Device(c.device.clone())
                });
                match hit {
                    Some((a, h)) => {
                        commands.push(QueuedCommand::new(
                            c.device.clone(),
                            c.command.clone(),
                            Some(location.clone()),
                            Some((a.clone(), h.clone())),
                            c.policy.clone(),
                        ));
                        false
                    }
                    None => true,
                }
            });
            let (serials, users) = split_holders(&items);
            let mut request = ManageAssetsRequest::devices(assets, serials);
            request.client_user_ids = users;
            let req = OpRequest {
                call: OpCall::Disassociate { request },
                items,
                commands,
            };
            let op_id = self.start_release(guard, req.clone(), entries).await?;
            self.send(guard, &op_id, &req).await?;
            ops.push(op_id);
        }
        Ok(ops)
    }

    /// Revokes every revocable licence of the targets (own holders only).
    async fn submit_revoke(
        &self,
        guard: &mut LocationGuard,
        targets: &BatchTargets,
    ) -> Result<Option<String>> {
        let cause = Cause::operator("plan", Some("revoke".to_owned()));
        let now = self.inner.now();
        let mut entries = Vec::new();
        let mut holders = Vec::new();
        for h in targets.holders() {
            if !self.may_modify(guard, None, &h) {
                continue;
            }
            // Revoke takes back every revocable licence of the holder: only when
            // none of them was found at Apple rather than made by us.
            let adopted = guard
                .book()
                .ledger
                .holder_view(&h)
                .holdings
                .iter()
                .any(|x| x.status == HoldingStatus::Adopted);
            if adopted && h.is_device() {
                continue;
            }
            let e = guard.book().ledger.revoke_all(&h, cause.clone(), now);
            if !e.is_empty() {
                entries.extend(e);
                holders.push(h);
            }
        }
        if holders.is_empty() {
            return Ok(None);
        }
        let items: Vec<(AssetKey, Holder)> = entries
            .iter()
            .filter_map(|e| Some((e.asset()?.clone(), e.holder()?)))
            .collect();
        let serials: Vec<SerialNumber> = holders
            .iter()
            .filter_map(|h| match h {
                Holder::Device(s) => Some(s.clone()),
                _ => None,
            })
            .collect();
        let users: Vec<ClientUserId> = holders
            .iter()
            .filter_map(|h| match h {
                Holder::User(u) => Some(u.clone()),
                _ => None,
            })
            .collect();
        let req = OpRequest {
            call: OpCall::Revoke {
                request: RevokeAssetsRequest::new(users, serials),
            },
            items,
            commands: Vec::new(),
        };
        let op_id = self.start_release(guard, req.clone(), entries).await?;
        self.send(guard, &op_id, &req).await?;
        Ok(Some(op_id))
    }

    /// Stores a release operation and its `releasing` holdings in one page.
    async fn start_release(
        &self,
        guard: &mut LocationGuard,
        req: OpRequest,
        entries: Vec<JournalEntry>,
    ) -> Result<String> {
        let inner = &self.inner;
        let location = guard.id();
        let op_id = uuid::Uuid::new_v4().to_string();
        let now = inner.now();
        inner
            .store
            .insert_operation(&Operation::new(
                op_id.clone(),
                location.clone(),
                req.call.kind(),
                req.to_json(),
                now,
            ))
            .await?;
        let mut page = PageBuilder::new(now);
        page.entries(&entries, Some(&op_id), &guard.book().own_users);
        if let Err(e) = page.write(inner.store.as_ref(), guard.book()).await {
            guard.invalidate();
            return Err(e);
        }
        inner.crash_at(ApplyStep::Reserved)?;
        Ok(op_id)
    }

    /// Stores and sends an operation that moves no licence (users).
    async fn submit(
        &self,
        guard: &mut LocationGuard,
        call: OpCall,
        items: Vec<(AssetKey, Holder)>,
        commands: Vec<QueuedCommand>,
    ) -> Result<Option<String>> {
        let inner = &self.inner;
        let op_id = uuid::Uuid::new_v4().to_string();
        let req = OpRequest {
            call,
            items,
            commands,
        };
        inner
            .store
            .insert_operation(&Operation::new(
                op_id.clone(),
                guard.id(),
                req.call.kind(),
                req.to_json(),
                inner.now(),
            ))
            .await?;
        self.send(guard, &op_id, &req).await?;
        Ok(Some(op_id))
    }

    /// Marks an operation sent, sends it, records Apple's event id first thing.
    async fn send(&self, guard: &mut LocationGuard, op_id: &str, req: &OpRequest) -> Result<()> {
        let inner = &self.inner;
        let now = inner.now();
        inner
            .store
            .update_operation(
                op_id,
                &OperationUpdate::new(OperationStatus::Sent, now)
                    .expecting(OperationStatus::Prepared),
            )
            .await?;
        inner.crash_at(ApplyStep::MarkedSent)?;
        let client = inner.client(&guard.record)?;
        let span = tracing::info_span!("vppkit.apple", call = req.call.name(), operation = %op_id);
        let answer = async {
            match &req.call {
                OpCall::Associate { request } => client.associate_assets(request).await,
                OpCall::Disassociate { request } => client.disassociate_assets(request).await,
                OpCall::Revoke { request } => client.revoke_assets(request).await,
                OpCall::CreateUsers { request } => client.create_users(request).await,
                OpCall::RetireUsers { request } => client.retire_users(request).await,
            }
        }
        .instrument(span)
        .await;
        match answer {
            Ok(a) => {
                inner.crash_at(ApplyStep::AppleAccepted)?;
                let event_id = a.body.event_id.clone();
                let deadline = inner.now()
                    + Duration::from_std(inner.config.event_recheck_after)
                        .unwrap_or_else(|_| Duration::minutes(10));
                inner
                    .store
                    .update_operation(
                        op_id,
                        &OperationUpdate::new(OperationStatus::Pending, inner.now())
                            .with_event_id(event_id.clone())
                            .with_deadline(deadline),
                    )
                    .await?;
                if let Some(kind) = req.call.event_kind() {
                    self.record_event(guard, op_id, &event_id, kind, &req.items)
                        .await?;
                }
                inner.crash_at(ApplyStep::EventRecorded)?;
                inner
                    .observe_envelope(&mut guard.record, &a.envelope)
                    .await?;
                Ok(())
            }
            Err(e) if e.is_outcome_unknown() => {
                tracing::warn!(operation = %op_id, "the answer was lost; the outcome will be checked, not resent");
                inner
                    .store
                    .update_operation(
                        op_id,
                        &OperationUpdate::new(OperationStatus::OutcomeUnknown, inner.now()),
                    )
                    .await?;
                Ok(())
            }
            Err(e) => {
                let message = e.to_string();
                let err = inner.observe_error(&mut guard.record, e).await;
                tracing::warn!(operation = %op_id, error = %message, "Apple refused the request");
                self.undo(guard, op_id, req, &message).await?;
                if matches!(
                    err,
                    EngineError::Apple(ref a) if a.token_problem().is_some()
                ) {
                    return Err(err);
                }
                Ok(())
            }
        }
    }

    /// Records an event in the ledger (journal only: holdings keep their status).
    async fn record_event(
        &self,
        guard: &mut LocationGuard,
        op_id: &str,
        event_id: &EventId,
        kind: EventKind,
        items: &[(AssetKey, Holder)],
    ) -> Result<()> {
        let inner = &self.inner;
        let now = inner.now();
        let live: Vec<(AssetKey, Holder)> = items
            .iter()
            .filter(|(a, h)| {
                let want = if kind.releases() {
                    HoldingStatus::Releasing
                } else {
                    HoldingStatus::Reserved
                };
                guard.book().ledger.holding(a, h) == Some(want)
            })
            .cloned()
            .collect();
        if live.is_empty() {
            return Ok(());
        }
        let entries = guard.book().ledger.record_event(
            &PendingEvent::new(event_id.clone(), kind),
            &live,
            Cause::event(event_id.clone()),
            now,
        )?;
        self.write_entries(guard, &entries, Some(op_id)).await
    }

    /// Writes ledger entries and their effects in one store transaction.
    pub(crate) async fn write_entries(
        &self,
        guard: &mut LocationGuard,
        entries: &[JournalEntry],
        operation: Option<&str>,
    ) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut page = PageBuilder::new(self.inner.now());
        page.entries(entries, operation, &guard.book().own_users);
        if let Err(e) = page.write(self.inner.store.as_ref(), guard.book()).await {
            guard.invalidate();
            return Err(e);
        }
        Ok(())
    }

    /// Reloads a location's ledger from the store after it was invalidated.
    async fn reload(&self, guard: &mut LocationGuard) -> Result<()> {
        let location = guard.id();
        let book = crate::book::Book::load(self.inner.store.as_ref(), &location).await?;
        guard.set_book(book);
        Ok(())
    }

    /// Rolls back what an operation holds (Apple refused it or never got it).
    async fn undo(
        &self,
        guard: &mut LocationGuard,
        op_id: &str,
        req: &OpRequest,
        reason: &str,
    ) -> Result<()> {
        let inner = &self.inner;
        let now = inner.now();
        let cause = Cause::operator("engine", Some(format!("rolled back: {reason}")));
        let mut entries = Vec::new();
        for (a, h) in &req.items {
            let status = guard.book().ledger.holding(a, h);
            let e = match (req.call.event_kind(), status) {
                (Some(EventKind::Associate), Some(HoldingStatus::Reserved)) => {
                    guard.book().ledger.roll_back(a, h, cause.clone(), now)
                }
                (Some(k), Some(HoldingStatus::Releasing)) if k.releases() => {
                    guard.book().ledger.cancel_release(a, h, cause.clone(), now)
                }
                _ => continue,
            };
            entries.extend(e.ok());
        }
        self.write_entries(guard, &entries, Some(op_id)).await?;
        inner
            .store
            .update_operation(
                op_id,
                &OperationUpdate::new(OperationStatus::RolledBack, now)
                    .with_result(serde_json::json!({ "error": reason })),
            )
            .await?;
        Ok(())
    }

    /// Whether the engine may release this holding when the plan asks for it:
    /// - a user's holding only when this manager created the user (another MDM's
    ///   users are never modified);
    /// - a device's holding when it is settled: one the engine made (active) or
    ///   one found at Apple (adopted, e.g. a licence that predates onboarding of
    ///   a device this MDM manages). The planner asks to release an adopted
    ///   holding only for a device in the directory (an uninstall) and never for
    ///   a gone holder, so the plan is what protects foreign devices here.
    ///
    /// Holdings in flight (reserved, releasing) are never released.
    fn may_modify(
        &self,
        guard: &mut LocationGuard,
        asset: Option<&AssetKey>,
        holder: &Holder,
    ) -> bool {
        let book = guard.book();
        if let Holder::User(u) = holder {
            return book.own_users.contains(u);
        }
        match asset {
            Some(a) => matches!(
                book.ledger.holding(a, holder),
                Some(HoldingStatus::Active) | Some(HoldingStatus::Adopted)
            ),
            None => true,
        }
    }

    /// Commands that can go now: no precondition, or a licence already confirmed.
    fn commands_ready_now(
        &self,
        guard: &mut LocationGuard,
        pending: &mut Vec<DeviceCommand>,
    ) -> Vec<QueuedCommand> {
        let location = guard.id();
        let mut out = Vec::new();
        pending.retain(|c| match &c.after {
            Precondition::Associated {
                location: l,
                asset,
                holder,
            } if *l == location => {
                let held = guard.book().ledger.holding(asset, holder);
                if matches!(
                    held,
                    Some(HoldingStatus::Active) | Some(HoldingStatus::Adopted)
                ) {
                    out.push(QueuedCommand::new(
                        c.device.clone(),
                        c.command.clone(),
                        Some(location.clone()),
                        Some((asset.clone(), holder.clone())),
                        c.policy.clone(),
                    ));
                    false
                } else {
                    true
                }
            }
            Precondition::Associated { .. } => true,
            _ => {
                out.push(QueuedCommand::new(
                    c.device.clone(),
                    c.command.clone(),
                    Some(location.clone()),
                    None,
                    c.policy.clone(),
                ));
                false
            }
        });
        out
    }

    /// Hands commands to the sink and records the installs as queued.
    async fn deliver(&self, guard: &mut LocationGuard, cmds: Vec<QueuedCommand>) -> Result<usize> {
        let inner = &self.inner;
        if cmds.is_empty() {
            return Ok(0);
        }
        let n = cmds.len();
        let location = guard.id();
        let now = inner.now();
        let mut records = Vec::new();
        for c in &cmds {
            if let (Some((asset, holder)), true) = (&c.reference.licence, is_install(&c.command)) {
                records.push(
                    InstallRecord::new(
                        location.clone(),
                        holder.clone(),
                        asset.clone(),
                        InstallState::Queued,
                        now,
                    )
                    .with_command(c.reference.command_uuid.clone()),
                );
            }
        }
        inner.sink.send(cmds).await?;
        for r in records {
            inner.store.put_install_status(&r).await?;
        }
        Ok(n)
    }

    /// Waits for operations to finish (or the re-check delay to pass), with the
    /// location unlocked between polls so notifications get in. Gives the guard
    /// back, or `None` if the location could not be locked again.
    async fn settle_locked(
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
    async fn apply_outcome(
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
            inner.mark_needs_sync(&guard.id());
        }
        inner
            .store
            .update_operation(
                &op.id,
                &OperationUpdate::new(OperationStatus::Pending, now).with_result(
                    serde_json::json!({
                        "request": req.to_json(),
                        "outcome": if failed { "failed" } else { "complete" },
                        "failures": status.failures,
                    }),
                ),
            )
            .await?;
        inner.crash_at(ApplyStep::OutcomeApplied)?;
        Ok(())
    }

    /// After an event outcome: holdings of the operation still reserved or
    /// releasing under no event (the event was never recorded) follow the outcome.
    async fn settle_leftovers(
        &self,
        guard: &mut LocationGuard,
        op: &Operation,
        req: &OpRequest,
        outcome: &vppkit_ledger::EventOutcome,
    ) -> Result<()> {
        let now = self.inner.now();
        let cause = Cause::event(outcome.event_id.clone());
        let failed_all =
            outcome.status == vppkit_ledger::EventStatus::Failed && outcome.failures.is_empty();
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

    /// Adds an operation that finished while the location was unlocked (a
    /// notification completed it) to the apply report, commands handed out
    /// with it included.
    fn count_finished_elsewhere(
        &self,
        guard: &mut LocationGuard,
        op: &Operation,
        req: &OpRequest,
        report: &mut LocationApplyReport,
    ) {
        if op.status == OperationStatus::Complete || op.status == OperationStatus::Failed {
            self.count_outcome(guard, op, req, report);
            report.commands_sent += ready_commands(guard, req).len();
        }
    }

    /// Adds a finished operation's outcome to the apply report: licences
    /// confirmed or refused (from the ledger), licences released, users created
    /// or retired (from the stored outcome's failures). Used by whoever sees the
    /// operation finish first in an apply, the poll or (through the store) a
    /// notification that completed it.
    fn count_outcome(
        &self,
        guard: &mut LocationGuard,
        op: &Operation,
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
        let result = op.result.as_ref();
        if result.and_then(|r| r.get("outcome")).is_none() {
            return;
        }
        let failures = result
            .and_then(|r| r.get("failures"))
            .and_then(|f| f.as_array())
            .map_or(0, Vec::len);
        match &req.call {
            OpCall::CreateUsers { request } => {
                report.users_created += request.users.len().saturating_sub(failures);
            }
            OpCall::RetireUsers { request } => {
                report.users_retired += request.users.len().saturating_sub(failures);
            }
            _ => {}
        }
    }

    /// The outcome is applied: hand out the commands whose licence is there,
    /// then close the operation.
    async fn finish(
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
        self.count_outcome(guard, op, req, report);
        report.commands_sent += self.deliver(guard, ready).await?;
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
        inner
            .store
            .update_operation(&op.id, &OperationUpdate::new(status, inner.now()))
            .await?;
        Ok(true)
    }

    /// A request whose answer was lost: look at Apple's assignments instead of
    /// resending. Licences Apple has are confirmed (or released ones completed);
    /// after the re-check delay, the rest is rolled back.
    async fn resolve_unknown(
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
                inner.mark_needs_sync(&guard.id());
                self.close(
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
        inner
            .store
            .update_operation(
                &op.id,
                &OperationUpdate::new(OperationStatus::Pending, now).with_result(
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

    async fn close(&self, op: &Operation, status: OperationStatus, why: &str) -> Result<()> {
        self.inner
            .store
            .update_operation(
                &op.id,
                &OperationUpdate::new(status, self.inner.now())
                    .with_result(serde_json::json!({ "reason": why })),
            )
            .await?;
        Ok(())
    }

    /// Takes back every revocable licence this manager holds in a location (the
    /// ones it made: its devices' and its own users'), waiting for Apple. Each
    /// licence is disassociated rather than revoked wholesale, so licences found
    /// at Apple (another MDM's, a person's) on the same devices are left alone.
    pub(crate) async fn revoke_everything(&self, location: &LocationId) -> Result<()> {
        let mut guard = self.lock_waiting(location).await?;
        self.inner.check_writes(&guard.record)?;
        let own: Vec<(AssetKey, Holder)> = guard
            .book()
            .ledger
            .holdings()
            .filter(|(_, _, s)| *s == HoldingStatus::Active)
            .map(|(a, h, _)| (a.clone(), h.clone()))
            .collect();
        let mut none = Vec::new();
        let ops = self
            .submit_disassociate(&mut guard, own, "location removed", &mut none)
            .await?;
        let mut report = LocationApplyReport::default();
        if let Some(g) = self.settle_locked(guard, &ops, &mut report).await? {
            g.release(&self.inner).await;
        }
        Ok(())
    }

    /// Records what became of an MDM command: feeds the install status in the
    /// report and, for an install that was abandoned (cancelled, or failed for a
    /// reason that will not go away), releases the device's licence.
    pub async fn command_result(&self, command: &CommandRef, result: CommandResult) -> Result<()> {
        let inner = &self.inner;
        let (Some(location), Some((asset, holder))) = (&command.location, &command.licence) else {
            return Ok(());
        };
        let now = inner.now();
        let (state, detail) = match &result {
            CommandResult::Acknowledged => (InstallState::Acknowledged, None),
            CommandResult::NotNow => (InstallState::NotNow, None),
            CommandResult::Installed => (InstallState::Installed, None),
            CommandResult::Removed => (InstallState::Removed, None),
            CommandResult::Failed(r) => (
                InstallState::Failed,
                Some(serde_json::json!({ "reason": r.as_str() })),
            ),
            CommandResult::Cancelled => (
                InstallState::Failed,
                Some(serde_json::json!({ "reason": "Cancelled" })),
            ),
        };
        let mut record =
            InstallRecord::new(location.clone(), holder.clone(), asset.clone(), state, now)
                .with_command(command.command_uuid.clone());
        if let Some(d) = detail.clone() {
            record = record.with_detail(d);
        }
        inner.store.put_install_status(&record).await?;
        let body = serde_json::json!({
            "command": command.command_uuid,
            "requestType": command.request_type,
            "state": state.to_string(),
            "detail": detail,
        });
        inner
            .store
            .append_journal(
                location,
                &[
                    vppkit_store::NewJournalRecord::new(now, "mdm", INSTALL_KIND, body)
                        .with_asset(asset.clone())
                        .with_holder(holder.clone()),
                ],
            )
            .await?;
        let abandoned = command.request_type == "InstallApplication"
            && match &result {
                CommandResult::Cancelled => true,
                CommandResult::Failed(r) => {
                    !r.is_transient() && *r != RejectionReason::AppAlreadyInstalled
                }
                _ => false,
            };
        if abandoned && holder.is_device() {
            self.release_abandoned(location, asset, holder).await?;
        }
        Ok(())
    }

    /// Releases the licence of an install that will not happen.
    async fn release_abandoned(
        &self,
        location: &LocationId,
        asset: &AssetKey,
        holder: &Holder,
    ) -> Result<()> {
        let mut guard = self.lock_waiting(location).await?;
        let result = async {
            self.inner.check_writes(&guard.record)?;
            if guard.book().ledger.holding(asset, holder) != Some(HoldingStatus::Active) {
                return Ok(());
            }
            let revocable = guard
                .book()
                .ledger
                .asset_view(asset)
                .is_some_and(|v| v.revocable);
            if !revocable {
                return Ok(());
            }
            let mut none = Vec::new();
            self.submit_disassociate(
                &mut guard,
                vec![(asset.clone(), holder.clone())],
                "install abandoned",
                &mut none,
            )
            .await?;
            Ok(())
        }
        .await;
        guard.release(&self.inner).await;
        result
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

fn stored_request(op: &Operation) -> Result<OpRequest> {
    // The final request is kept in the result of the `prepared` update (the
    // store keeps the inserted request unchanged).
    if let Some(r) = op.result.as_ref().and_then(|r| r.get("request")) {
        return serde_json::from_value(r.clone())
            .map_err(|e| EngineError::Corrupt(format!("operation {}: {e}", op.id)));
    }
    OpRequest::from_op(op)
}

/// Groups (asset, holder) pairs into exact products: assets with the same set
/// of holders share a request (at most 25 assets each, Apple's default limit);
/// the pairs of a group are exactly its assets times its holders.
fn group_products(items: &[(AssetKey, Holder)]) -> Vec<(Vec<AssetKey>, Vec<Holder>)> {
    let mut by_asset: BTreeMap<AssetKey, BTreeSet<Holder>> = BTreeMap::new();
    for (a, h) in items {
        by_asset.entry(a.clone()).or_default().insert(h.clone());
    }
    let mut by_holders: BTreeMap<Vec<Holder>, Vec<AssetKey>> = BTreeMap::new();
    for (a, hs) in by_asset {
        by_holders
            .entry(hs.into_iter().collect())
            .or_default()
            .push(a);
    }
    let mut out = Vec::new();
    for (holders, assets) in by_holders {
        for chunk in assets.chunks(25) {
            out.push((chunk.to_vec(), holders.clone()));
        }
    }
    out
}

fn split_holders(items: &[(AssetKey, Holder)]) -> (Vec<SerialNumber>, Vec<ClientUserId>) {
    let mut serials = BTreeSet::new();
    let mut users = BTreeSet::new();
    for (_, h) in items {
        match h {
            Holder::Device(s) => {
                serials.insert(s.clone());
            }
            Holder::User(u) => {
                users.insert(u.clone());
            }
            _ => {}
        }
    }
    (serials.into_iter().collect(), users.into_iter().collect())
}

fn is_install(c: &MdmCommand) -> bool {
    matches!(
        c,
        MdmCommand::InstallApplication(_) | MdmCommand::InstallMedia { .. }
    )
}

/// Whether a command removes this asset.
fn removal_matches(c: &MdmCommand, asset: &AssetKey) -> bool {
    match c {
        MdmCommand::RemoveApplication { adam_id, .. } | MdmCommand::RemoveMedia { adam_id } => {
            *adam_id == asset.adam_id
        }
        _ => false,
    }
}

/// The location whose disassociation a removal command should wait for.
fn removal_location(plan: &Plan, c: &DeviceCommand) -> Option<LocationId> {
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

/// The commands of a finished operation whose licence is there (associate) or
/// gone (release): the ones `finish` hands out.
fn ready_commands(guard: &mut LocationGuard, req: &OpRequest) -> Vec<QueuedCommand> {
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

/// The location a blocked item names, if its reason names one.
fn blocked_location(b: &vppkit_rules::Blocked) -> Option<&LocationId> {
    use vppkit_rules::BlockReason;
    match &b.reason {
        BlockReason::AwaitingInvitation { location }
        | BlockReason::ReleaseInFlight { location }
        | BlockReason::NotRevocable { location }
        | BlockReason::AdoptedKept { location } => Some(location),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vppkit_core::{AdamId, PricingParam};

    fn a(n: u64) -> AssetKey {
        AssetKey::new(AdamId::from(n), PricingParam::Stdq)
    }

    fn d(s: &str) -> Holder {
        Holder::Device(SerialNumber::new(s).unwrap())
    }

    #[test]
    fn products_never_name_a_pair_that_was_not_asked() {
        // Asset 1 for three devices, asset 2 only for two of them.
        let items = vec![
            (a(1), d("S1")),
            (a(1), d("S2")),
            (a(1), d("S3")),
            (a(2), d("S1")),
            (a(2), d("S2")),
            (a(3), d("S1")),
            (a(3), d("S2")),
        ];
        let groups = group_products(&items);
        let mut pairs = BTreeSet::new();
        for (assets, holders) in &groups {
            for x in assets {
                for h in holders {
                    assert!(pairs.insert((x.clone(), h.clone())), "named twice");
                }
            }
        }
        let asked: BTreeSet<_> = items.into_iter().collect();
        assert_eq!(pairs, asked);
        assert_eq!(groups.len(), 2, "assets 2 and 3 share a request");
    }

    #[test]
    fn products_respect_the_asset_limit() {
        let items: Vec<_> = (0..60).map(|n| (a(n + 1), d("S1"))).collect();
        let groups = group_products(&items);
        assert_eq!(groups.len(), 3);
        assert!(groups.iter().all(|(assets, _)| assets.len() <= 25));
    }
}
