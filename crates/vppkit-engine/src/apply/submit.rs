//! Apply, step 1: reserve, store the operation, send it to Apple, record its event.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Duration;
use tracing::Instrument;
use vppkit_client::{ManageAssetsRequest, RevokeAssetsRequest};
use vppkit_core::{AssetKey, ClientUserId, EventId, Holder, HoldingStatus, SerialNumber};
use vppkit_ledger::{Cause, EventKind, JournalEntry, PendingEvent};
use vppkit_rules::{AssetBatch, BatchTargets, DeviceCommand, Precondition};
use vppkit_store::{Operation, OperationStatus, OperationUpdate, Reservation};

use crate::book::{journal_record, PageBuilder};
use crate::engine::{ApplyStep, Engine, LocationGuard};
use crate::error::{EngineError, Result};
use crate::ops::{OpCall, OpRequest};
use crate::sink::QueuedCommand;

use super::*;

impl Engine {
    /// Reserves and sends one associate batch. An Apple request assigns every
    /// asset it names to every target it names, so the batch is regrouped into
    /// requests that are exact products of what could be reserved (assets with
    /// the same holders together): Apple is never asked for a licence that was
    /// not reserved first. Returns the operation ids and the licences that could
    /// not be reserved, with the reason.
    pub(crate) async fn submit_associate(
        &self,
        guard: &mut LocationGuard,
        batch: &AssetBatch,
        pending_cmds: &mut Vec<DeviceCommand>,
        revision: Option<u64>,
    ) -> Result<(Vec<String>, Vec<(AssetKey, Holder, String)>)> {
        let inner = &self.inner;
        let location = guard.id();
        let cause = match batch.policies.first() {
            Some(p) => Cause::policy_at(p.to_string(), revision),
            None => Cause::operator(
                "plan",
                revision.map(|r| format!("desired state revision {r}")),
            ),
        };
        let holders = batch.targets.holders();
        let mut refused = Vec::new();
        // 1. What can be reserved, read from the ledger.
        let mut wanted: Vec<(AssetKey, Holder)> = Vec::new();
        let guard_users = guard.book().own_users.clone();
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
                let foreign = matches!(h, Holder::User(u) if !guard_users.contains(u));
                let why = if foreign {
                    Some(
                        "another MDM created this VPP user; vppkit never gives it a licence"
                            .to_owned(),
                    )
                } else if let Some(st) = ledger.holding(asset, h) {
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
                .with_journal(journal)
                .with_fence(Some(guard.fence()));
                match inner.store.reserve(&reservation).await {
                    Ok(_) => {
                        // The reservation's journal holds these entries.
                        if let Some(last) = entries.iter().map(|e| e.seq).max() {
                            guard.book().confirm(last + 1);
                        }
                        reserved_assets.push(asset)
                    }
                    Err(vppkit_store::StoreError::Fenced { .. }) => {
                        // Another instance took the location over: stop here;
                        // it finishes or rolls back what this one left.
                        guard.invalidate();
                        return Err(EngineError::LeaseLost(location));
                    }
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
                self.update_op(
                    guard,
                    &op_id,
                    OperationUpdate::new(OperationStatus::RolledBack, now)
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
                    commands.push(queued(c, &location, Some((asset.clone(), holder.clone()))));
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
            self.store_request(guard, &op_id, &req).await?;
            inner.crash_at(ApplyStep::Reserved)?;
            self.send(guard, &op_id, &req).await?;
            ops.push(op_id);
        }
        Ok((ops, refused))
    }

    /// Writes the final request of an operation (its status stays `prepared`).
    pub(crate) async fn store_request(
        &self,
        guard: &mut LocationGuard,
        op_id: &str,
        req: &OpRequest,
    ) -> Result<()> {
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
        self.update_op(
            guard,
            op_id,
            OperationUpdate::new(OperationStatus::Prepared, inner.now())
                .expecting(OperationStatus::Prepared)
                .with_result(serde_json::json!({ "request": replacement.request })),
        )
        .await?;
        Ok(())
    }

    /// Updates an operation of the location `guard` holds, fenced by its lease:
    /// when another instance took the location over, the store refuses the
    /// update (changing nothing) and the work stops with
    /// [`EngineError::LeaseLost`]; the new owner settles the operation.
    pub(crate) async fn update_op(
        &self,
        guard: &mut LocationGuard,
        op_id: &str,
        update: OperationUpdate,
    ) -> Result<Operation> {
        let update = update.with_fence(Some(guard.fence()));
        match self.inner.store.update_operation(op_id, &update).await {
            Ok(op) => Ok(op),
            Err(vppkit_store::StoreError::Fenced { .. }) => {
                guard.invalidate();
                Err(EngineError::LeaseLost(guard.id()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Releases holdings (settled device holdings and own users' ones: see
    /// `may_modify`) with disassociate
    /// requests that are exact products of what is released. Returns the
    /// operation ids.
    pub(crate) async fn submit_disassociate(
        &self,
        guard: &mut LocationGuard,
        holdings: Vec<(AssetKey, Holder)>,
        why: &str,
        pending_cmds: &mut Vec<DeviceCommand>,
    ) -> Result<(Vec<String>, Vec<(AssetKey, Holder, String)>)> {
        let location = guard.id();
        let cause = Cause::operator("plan", Some(why.to_owned()));
        let mut releasable = Vec::new();
        let mut left_alone = Vec::new();
        for (asset, holder) in holdings {
            let revocable =
                guard.book().ledger.asset_view(&asset).is_some_and(|v| {
                    v.revocable && v.product_type != vppkit_core::ProductType::Book
                });
            let why = if !revocable {
                Some("a book or a non-revocable app is never released")
            } else if matches!(&holder, Holder::User(u) if !guard.book().own_users.contains(u)) {
                Some("another MDM created this VPP user; its licences are never released")
            } else if !self.may_modify(guard, Some(&asset), &holder) {
                Some("the licence is in flight (being reserved or released)")
            } else {
                None
            };
            match why {
                Some(w) => left_alone.push((asset, holder, w.to_owned())),
                None => releasable.push((asset, holder)),
            }
        }
        if !left_alone.is_empty() {
            tracing::info!(
                left_alone = left_alone.len(),
                "releases left alone: other MDMs' users, licences in flight, books or non-revocable apps"
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
                        commands.push(queued(c, &location, Some((a.clone(), h.clone()))));
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
        Ok((ops, left_alone))
    }

    /// Revokes every revocable licence of the targets (own holders only).
    pub(crate) async fn submit_revoke(
        &self,
        guard: &mut LocationGuard,
        targets: &BatchTargets,
        why: &str,
    ) -> Result<(Option<String>, Vec<(AssetKey, Holder, String)>)> {
        let cause = Cause::operator("plan", Some(why.to_owned()));
        let now = self.inner.now();
        let mut entries = Vec::new();
        let mut holders = Vec::new();
        let mut left_alone = Vec::new();
        for h in targets.holders() {
            if !self.may_modify(guard, None, &h) {
                for x in guard.book().ledger.holder_view(&h).holdings {
                    left_alone.push((
                        x.asset.clone(),
                        h.clone(),
                        "another MDM created this VPP user; its licences are never revoked"
                            .to_owned(),
                    ));
                }
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
            return Ok((None, left_alone));
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
        Ok((Some(op_id), left_alone))
    }

    /// Stores a release operation and its `releasing` holdings in one page.
    pub(crate) async fn start_release(
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
    pub(crate) async fn submit(
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
    pub(crate) async fn send(
        &self,
        guard: &mut LocationGuard,
        op_id: &str,
        req: &OpRequest,
    ) -> Result<()> {
        let inner = &self.inner;
        let now = inner.now();
        self.update_op(
            guard,
            op_id,
            OperationUpdate::new(OperationStatus::Sent, now).expecting(OperationStatus::Prepared),
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
                self.update_op(
                    guard,
                    op_id,
                    OperationUpdate::new(OperationStatus::Pending, inner.now())
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
                self.update_op(
                    guard,
                    op_id,
                    OperationUpdate::new(OperationStatus::OutcomeUnknown, inner.now()),
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
    pub(crate) async fn record_event(
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
    pub(crate) async fn reload(&self, guard: &mut LocationGuard) -> Result<()> {
        let location = guard.id();
        let book = crate::book::Book::load(self.inner.store.as_ref(), &location).await?;
        guard.set_book(book);
        Ok(())
    }

    /// Rolls back what an operation holds (Apple refused it or never got it).
    pub(crate) async fn undo(
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
        self.update_op(
            guard,
            op_id,
            OperationUpdate::new(OperationStatus::RolledBack, now)
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
    pub(crate) fn may_modify(
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
}

/// Groups (asset, holder) pairs into exact products: assets with the same set
/// of holders share a request (at most 25 assets each, Apple's default limit);
/// the pairs of a group are exactly its assets times its holders.
pub(crate) fn group_products(items: &[(AssetKey, Holder)]) -> Vec<(Vec<AssetKey>, Vec<Holder>)> {
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

pub(crate) fn split_holders(
    items: &[(AssetKey, Holder)],
) -> (Vec<SerialNumber>, Vec<ClientUserId>) {
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
