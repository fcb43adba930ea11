//! Sync: Apple's assets, users and assignments streamed page by page through the
//! ledger into the store, each page written with its cursor in one transaction.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use futures::TryStreamExt;
use tracing::Instrument;
use vppkit_client::{
    AssetFilter, AssignmentFilter, ErrorNumber, MetadataQuery, Page, PageStream, UserFilter,
};
use vppkit_core::{AccountType, AdamId, Asset, AssetKey, LocationId, VppUser};
use vppkit_ledger::{AppleHolding, AssignmentChanges, Cause, JournalEntry, Rejection};
use vppkit_store::{CursorUpdate, SyncCursor, SyncEndpoint};

use crate::book::{PageBuilder, PendingWrite};
use crate::engine::{Engine, LocationGuard};
use crate::error::{EngineError, Result};
use crate::progress::{ProgressReporter, SyncKind, SyncOutcome, SyncProgress, SyncStep};
use crate::token_state::TokenObservation;

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    assets: u64,
    assignments: u64,
    users: u64,
}

impl Engine {
    /// Syncs one location now: assets in full, then users and assignments in
    /// full (`SyncKind::Full`, or when no cursor exists yet) or since the last
    /// version (`SyncKind::Incremental`), and metadata for new assets. Progress
    /// goes to `progress`; the outcome is stored with the location.
    pub async fn sync(
        &self,
        location: &LocationId,
        kind: SyncKind,
        progress: &ProgressReporter,
    ) -> Result<SyncOutcome> {
        let span = tracing::info_span!("vppkit.sync", location = %location, kind = ?kind);
        async {
            let inner = &self.inner;
            let mut guard = inner.lock_location(location).await?;
            let started_at = inner.now();
            // Say what will run: a first sync is full whatever was asked.
            let kind = match inner.store.sync_status(location).await {
                Ok(status) if kind == SyncKind::Incremental && !has_cursors(&status) => {
                    SyncKind::Full
                }
                _ => kind,
            };
            progress.report(SyncProgress::Started {
                location: location.clone(),
                kind,
            });
            let seq_before = guard.book().store_seq();
            guard.skipped_records = 0;
            let result = self.sync_locked(&mut guard, kind, progress).await;
            let skipped_records = guard.skipped_records;
            let changed = result.is_ok() && guard.book().store_seq() > seq_before;
            let finished_at = inner.now();
            let (outcome, ret) = match result {
                Ok((kind, c)) => {
                    let o = SyncOutcome {
                        kind,
                        started_at,
                        finished_at,
                        assets: c.assets,
                        assignments: c.assignments,
                        users: c.users,
                        skipped_records,
                        error: None,
                    };
                    (o.clone(), Ok(o))
                }
                Err(e) => {
                    if matches!(e, EngineError::Store(_) | EngineError::Corrupt(_)) {
                        guard.invalidate();
                    }
                    let o = SyncOutcome {
                        kind,
                        started_at,
                        finished_at,
                        assets: 0,
                        assignments: 0,
                        users: 0,
                        skipped_records,
                        error: Some(e.to_string()),
                    };
                    (o, Err(e))
                }
            };
            let stored = match &outcome.error {
                None => vppkit_store::SyncSummary::success(finished_at),
                Some(m) => vppkit_store::SyncSummary::failure(finished_at, m.clone()),
            };
            if let Err(e) = inner.store.record_sync_summary(location, &stored).await {
                tracing::warn!(error = %e, "could not record the sync summary");
            }
            guard.release(inner).await;
            if changed {
                // What Apple told may change the plan (purchases, refunds,
                // accepted invitations, another MDM's changes).
                inner
                    .set_mark_or_log(
                        crate::marks::Mark::Reconcile,
                        location,
                        "a sync found changes",
                    )
                    .await;
            }
            progress.report(SyncProgress::Finished {
                location: location.clone(),
                outcome,
            });
            match &ret {
                Ok(o) if o.skipped_records > 0 => tracing::warn!(
                    assets = o.assets,
                    assignments = o.assignments,
                    users = o.users,
                    skipped_records = o.skipped_records,
                    "sync finished; records Apple sent that could not be read were left out, and no removal was concluded from the walks that skipped them"
                ),
                Ok(o) => tracing::info!(
                    assets = o.assets,
                    assignments = o.assignments,
                    users = o.users,
                    "sync finished"
                ),
                Err(e) => tracing::warn!(error = %e, "sync failed"),
            }
            ret
        }
        .instrument(span)
        .await
    }

    /// Syncs every location, several at once (at most
    /// [`EngineConfig::max_concurrent_locations`](crate::EngineConfig::max_concurrent_locations)),
    /// each within its own token's rate limit.
    pub async fn sync_all(
        &self,
        kind: SyncKind,
        progress: &ProgressReporter,
    ) -> Result<Vec<(LocationId, Result<SyncOutcome>)>> {
        use futures::StreamExt;
        let locations = self.inner.store.locations().await?;
        let n = self.inner.config.max_concurrent_locations;
        let results = futures::stream::iter(locations.into_iter().map(|l| {
            let engine = self.clone();
            let progress = progress.clone();
            async move {
                let r = engine.sync(&l.id, kind, &progress).await;
                (l.id, r)
            }
        }))
        .buffer_unordered(n)
        .collect::<Vec<_>>()
        .await;
        Ok(results)
    }

    async fn sync_locked(
        &self,
        guard: &mut LocationGuard,
        requested: SyncKind,
        progress: &ProgressReporter,
    ) -> Result<(SyncKind, Counts)> {
        let inner = &self.inner;
        inner
            .observe_token(&mut guard.record, TokenObservation::Tick)
            .await?;
        inner.check_reads(&guard.record)?;
        let status = inner.store.sync_status(&guard.record.id).await?;
        let complete = |e: SyncEndpoint| complete_cursor(&status, e);
        let mut counts = Counts {
            assets: self.sync_assets(guard, progress).await?,
            ..Counts::default()
        };
        let (users_since, assignments_since) = match requested {
            SyncKind::Full => (None, None),
            _ => (
                complete(SyncEndpoint::Users),
                complete(SyncEndpoint::Assignments),
            ),
        };
        let users_full = users_since.is_none();
        counts.users = match self.sync_users(guard, users_since, progress).await {
            Err(e) if is_unknown_version(&e) => self.sync_users(guard, None, progress).await?,
            other => other?,
        };
        let incremental = assignments_since.is_some();
        let since = assignments_since.map_or(Walk::Full, Walk::Since);
        counts.assignments = match self.sync_assignments(guard, since, progress).await {
            Err(e) if is_unknown_version(&e) => {
                self.sync_assignments(guard, Walk::Full, progress).await?
            }
            other => other?,
        };
        let mut walked_everything = !incremental && users_full;
        if incremental && !self.counts_agree(guard) {
            // A removal cannot show in an incremental read: walk again what
            // disagrees, the apps whose counts differ when that reads fewer
            // assignments than walking everything, else everything.
            let (off, pages_per_app, pages_in_all) = self.disagreeing_apps(guard);
            if pages_per_app < pages_in_all {
                tracing::info!(
                    apps = off.len(),
                    "assigned counts differ from Apple's; walking those apps' assignments"
                );
                for (adam, keys) in off {
                    counts.assignments += self
                        .sync_assignments(guard, Walk::App(adam, keys), progress)
                        .await?;
                }
            }
            if !self.counts_agree(guard) {
                tracing::info!(
                    "assigned counts differ from Apple's; running a full assignments walk"
                );
                counts.assignments += self.sync_assignments(guard, Walk::Full, progress).await?;
                walked_everything = users_full;
            }
        }
        if walked_everything {
            inner.set_last_full_sync(&guard.id()).await?;
        }
        let kind = if walked_everything {
            SyncKind::Full
        } else {
            SyncKind::Incremental
        };
        Ok((kind, counts))
    }

    /// Re-reads one location's assets (its licence counts) from Apple, one
    /// `GET assets` walk: a purchase or a refund whose notification never came
    /// (none configured, or lost) is seen now rather than at the next sync.
    /// Returns whether a count moved; a reconcile pass is then marked. The
    /// scheduler runs it for every location on its slow tick
    /// ([`EngineConfig::reconcile_interval`](crate::EngineConfig::reconcile_interval)).
    ///
    /// Errors: another instance holds the location ([`EngineError::Busy`]), the
    /// token allows no reads, or Apple's and the store's errors.
    pub async fn refresh_counts(&self, location: &LocationId) -> Result<bool> {
        let span = tracing::info_span!("vppkit.refresh_counts", location = %location);
        async {
            let inner = &self.inner;
            let mut guard = inner.lock_location(location).await?;
            let result = async {
                inner
                    .observe_token(&mut guard.record, TokenObservation::Tick)
                    .await?;
                inner.check_reads(&guard.record)?;
                let before = guard.book().store_seq();
                self.sync_assets(&mut guard, &ProgressReporter::none())
                    .await?;
                Ok(guard.book().store_seq() > before)
            }
            .await;
            if matches!(result, Err(EngineError::Store(_) | EngineError::Corrupt(_))) {
                guard.invalidate();
            }
            guard.release(inner).await;
            let changed = result?;
            if changed {
                tracing::info!("licence counts changed at Apple");
                inner
                    .set_mark_or_log(
                        crate::marks::Mark::Reconcile,
                        location,
                        "licence counts changed at Apple",
                    )
                    .await;
            }
            Ok(changed)
        }
        .instrument(span)
        .await
    }

    /// Whether every asset's confirmed holdings match Apple's assigned count.
    fn counts_agree(&self, guard: &mut LocationGuard) -> bool {
        guard
            .book()
            .ledger
            .asset_views()
            .iter()
            .all(|v| v.unlimited || counts_match(v))
    }

    /// The apps with an asset whose confirmed holdings differ from Apple's
    /// assigned count (with every asset of each such app, as an `adamId` walk
    /// reads them all), how many pages walking each of them takes in all, and
    /// how many a full walk takes (estimated from Apple's assigned counts and
    /// the page size Apple last used here, 1,000 when not seen yet).
    fn disagreeing_apps(
        &self,
        guard: &mut LocationGuard,
    ) -> (Vec<(AdamId, Vec<AssetKey>)>, u64, u64) {
        let page = guard.book().assignments_page.unwrap_or(1_000).max(1);
        let views = guard.book().ledger.asset_views();
        let off: BTreeSet<&AdamId> = views
            .iter()
            .filter(|v| !v.unlimited && !counts_match(v))
            .map(|v| &v.key.adam_id)
            .collect();
        let mut apps: BTreeMap<AdamId, (Vec<AssetKey>, u64)> = BTreeMap::new();
        let mut all_assigned = 0u64;
        for v in &views {
            let assigned = u64::from(v.apple.assigned);
            all_assigned += assigned;
            if off.contains(&v.key.adam_id) {
                let app = apps.entry(v.key.adam_id.clone()).or_default();
                app.0.push(v.key.clone());
                app.1 += assigned;
            }
        }
        let pages = |n: u64| n.div_ceil(page).max(1);
        let per_app = apps.values().map(|(_, n)| pages(*n)).sum();
        let apps = apps.into_iter().map(|(a, (keys, _))| (a, keys)).collect();
        (apps, per_app, pages(all_assigned))
    }

    /// Full assets walk, reconciled through the ledger; metadata for new assets.
    pub(crate) async fn sync_assets(
        &self,
        guard: &mut LocationGuard,
        progress: &ProgressReporter,
    ) -> Result<u64> {
        let inner = &self.inner;
        let client = inner.client(&guard.record)?;
        let location = guard.id();
        let mut stream = client.assets(AssetFilter::new());
        let mut assets: Vec<Asset> = Vec::new();
        let mut pages = 0u32;
        let mut skipped = 0u64;
        loop {
            let Some(page) = self.next_page(guard, &mut stream, "GET assets").await? else {
                break;
            };
            guard.keep_lease(inner).await?;
            if page.starts_restart() {
                assets.clear();
                pages = 0;
                skipped = 0;
                progress.report(SyncProgress::Restarted {
                    location: location.clone(),
                    endpoint: SyncStep::Assets,
                });
            }
            skipped += page.skipped.len() as u64;
            for a in page.items {
                let asset =
                    Asset::try_from(a).map_err(|e| EngineError::Unexpected(e.to_string()))?;
                assets.push(asset);
            }
            pages += 1;
            progress.report(SyncProgress::Page {
                location: location.clone(),
                endpoint: SyncStep::Assets,
                pages_done: pages,
                total_pages: page.total_pages,
                items: assets.len() as u64,
            });
        }
        let version = stream.first_version_id();
        let now = inner.now();
        let read = assets.len() as u64;
        if skipped > 0 {
            // A record left out is not an asset Apple stopped listing: the
            // assets not read keep what the ledger knows of them.
            guard.skipped_records += skipped;
            let listed: HashSet<AssetKey> = assets.iter().map(|a| a.key.clone()).collect();
            let ledger = &guard.book().ledger;
            let kept: Vec<Asset> = ledger
                .asset_views()
                .iter()
                .filter(|v| !listed.contains(&v.key))
                .filter_map(|v| ledger.asset(&v.key).cloned())
                .collect();
            assets.extend(kept);
        }
        let entries =
            guard
                .book()
                .ledger
                .reconcile_assets(&assets, Cause::sync(version.clone()), now);
        let metadata = self.new_asset_metadata(guard, &assets, progress).await;
        let mut page = PageBuilder::new(now);
        page.entries(&entries, None, &guard.book().own_users)
            .metadata(metadata);
        if let Some(v) = version {
            page.cursor(CursorUpdate::set(
                SyncEndpoint::Assets,
                SyncCursor::new(v, None, now),
            ));
        }
        if let Err(e) = page.write(inner.store.as_ref(), guard.book()).await {
            guard.invalidate();
            return Err(e);
        }
        Ok(read)
    }

    /// Names, bundle ids and icons of assets the store has no metadata for,
    /// reported as one [`SyncStep::Metadata`] page when looked up. Failures are
    /// logged, never fatal: metadata is for display.
    async fn new_asset_metadata(
        &self,
        guard: &mut LocationGuard,
        assets: &[Asset],
        progress: &ProgressReporter,
    ) -> Vec<(AssetKey, vppkit_core::AssetMetadata)> {
        let inner = &self.inner;
        let known: HashSet<AssetKey> = match inner.store.assets(&guard.record.id).await {
            Ok(records) => records
                .into_iter()
                .filter(|r| r.metadata.is_some())
                .map(|r| r.asset.key)
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "could not read stored assets");
                return Vec::new();
            }
        };
        let missing: Vec<&Asset> = assets.iter().filter(|a| !known.contains(&a.key)).collect();
        if missing.is_empty() {
            return Vec::new();
        }
        let storefront = guard
            .record
            .country
            .clone()
            .unwrap_or_else(|| "us".to_owned());
        let platform = match guard.record.account_type {
            Some(AccountType::Education) => "volumestore",
            _ => "enterprisestore",
        };
        let ids: Vec<_> = missing.iter().map(|a| a.key.adam_id.clone()).collect();
        let Ok(client) = inner.client(&guard.record) else {
            return Vec::new();
        };
        match client
            .lookup_metadata(&ids, &MetadataQuery::new(storefront).platform(platform))
            .instrument(tracing::info_span!(
                "vppkit.apple",
                call = "metadata lookup"
            ))
            .await
        {
            Ok(found) => {
                let metadata: Vec<_> = missing
                    .iter()
                    .filter_map(|a| {
                        found
                            .get(&a.key.adam_id)
                            .map(|m| (a.key.clone(), m.clone()))
                    })
                    .collect();
                progress.report(SyncProgress::Page {
                    location: guard.id(),
                    endpoint: SyncStep::Metadata,
                    pages_done: 1,
                    total_pages: Some(1),
                    items: metadata.len() as u64,
                });
                metadata
            }
            Err(e) => {
                tracing::warn!(error = %e, "metadata lookup failed");
                Vec::new()
            }
        }
    }

    /// Users: full, or since a version. Returns the number of users read.
    pub(crate) async fn sync_users(
        &self,
        guard: &mut LocationGuard,
        since: Option<String>,
        progress: &ProgressReporter,
    ) -> Result<u64> {
        let inner = &self.inner;
        let client = inner.client(&guard.record)?;
        let location = guard.id();
        let mut filter = UserFilter::new();
        if let Some(v) = &since {
            filter = filter.since_version_id(v.clone());
        }
        let mut stream = client.users(filter);
        let mut n = 0u64;
        let mut skipped = 0u64;
        let mut pages = 0u32;
        loop {
            let Some(page) = self.next_page(guard, &mut stream, "GET users").await? else {
                break;
            };
            guard.keep_lease(inner).await?;
            if page.starts_restart() {
                pages = 0;
                skipped = 0;
                progress.report(SyncProgress::Restarted {
                    location: location.clone(),
                    endpoint: SyncStep::Users,
                });
            }
            // Users are only added or updated by a walk, never removed: one
            // left out is counted, nothing else follows from it.
            skipped += page.skipped.len() as u64;
            let users: Vec<VppUser> = page.items.into_iter().map(VppUser::from).collect();
            n += users.len() as u64;
            pages += 1;
            let now = inner.now();
            let version = stream.first_version_id().unwrap_or_default();
            let cause = Cause::sync(Some(version.clone()));
            let entries = guard.book().ledger.apply_users(&users, cause, now);
            let next = page.next_page_index;
            let mut out = PageBuilder::new(now);
            out.entries(&entries, None, &guard.book().own_users)
                .cursor(CursorUpdate::set(
                    SyncEndpoint::Users,
                    SyncCursor::new(version, next, now),
                ));
            if let Err(e) = out.write(inner.store.as_ref(), guard.book()).await {
                guard.invalidate();
                return Err(e);
            }
            progress.report(SyncProgress::Page {
                location: location.clone(),
                endpoint: SyncStep::Users,
                pages_done: pages,
                total_pages: page.total_pages,
                items: n,
            });
        }
        guard.skipped_records += skipped;
        if pages == 0 {
            self.write_final_cursor(guard, SyncEndpoint::Users, stream.first_version_id())
                .await?;
        }
        Ok(n)
    }

    async fn write_final_cursor(
        &self,
        guard: &mut LocationGuard,
        endpoint: SyncEndpoint,
        version: Option<String>,
    ) -> Result<()> {
        if let Some(v) = version {
            let now = self.inner.now();
            let mut out = PageBuilder::new(now);
            out.cursor(CursorUpdate::set(endpoint, SyncCursor::new(v, None, now)));
            out.write(self.inner.store.as_ref(), guard.book()).await?;
        }
        Ok(())
    }

    /// Assignments: a full walk (snapshot, then unseen holdings lost), the
    /// changes since a version, or a walk of one app (a snapshot of its
    /// assets only; the location's cursor is left as it is). Returns the
    /// number of assignments read.
    pub(crate) async fn sync_assignments(
        &self,
        guard: &mut LocationGuard,
        walk: Walk,
        progress: &ProgressReporter,
    ) -> Result<u64> {
        let inner = &self.inner;
        let client = inner.client(&guard.record)?;
        let location = guard.id();
        let full = matches!(walk, Walk::Full);
        let cursors = !matches!(walk, Walk::App(..));
        let (filter, scope) = match walk {
            Walk::Full => (AssignmentFilter::new(), None),
            Walk::Since(v) => (AssignmentFilter::new().since_version_id(v), None),
            Walk::App(adam, keys) => (AssignmentFilter::new().adam_id(adam), Some(keys)),
        };
        let mut stream = client.assignments(filter);
        let begin = |guard: &mut LocationGuard| match &scope {
            Some(keys) => Some(guard.book().ledger.begin_assets_snapshot(keys)),
            None => full.then(|| guard.book().ledger.begin_snapshot()),
        };
        let mut snapshot = begin(guard);
        let mut n = 0u64;
        let mut skipped = 0u64;
        let mut pages = 0u32;
        let mut assets_refreshed = false;
        // The previous page's write runs while this page is read and applied to the
        // ledger; it is finished before the next write starts and before any return.
        // Pages applied while a write runs wait in `queued` and go to the store
        // together in the next transaction (see `Writes`).
        let mut writes = Writes::default();
        let walked: Result<()> = async {
            loop {
                let Some(page) = self
                    .next_page(guard, &mut stream, "GET assignments")
                    .await?
                else {
                    return Ok(());
                };
                if guard.lease_due(inner) {
                    // A renewal that finds the lease was taken over reads the other
                    // instance's writes into the ledger: the store must first hold
                    // every page the ledger took.
                    writes.drain(guard, &inner.store).await?;
                    guard.keep_lease(inner).await?;
                }
                if page.starts_restart() {
                    pages = 0;
                    n = 0;
                    skipped = 0;
                    if let Some(t) = snapshot.take() {
                        writes.drain(guard, &inner.store).await?;
                        guard.book().ledger.abandon_snapshot(t);
                        snapshot = begin(guard);
                    }
                    progress.report(SyncProgress::Restarted {
                        location: location.clone(),
                        endpoint: SyncStep::Assignments,
                    });
                }
                let items: Vec<AppleHolding> = page
                    .items
                    .iter()
                    .filter_map(|a| a.holder().map(|h| AppleHolding::new(a.asset_key(), h)))
                    .collect();
                // Left out by the client, or naming no holder: not read.
                skipped += (page.skipped.len() + page.items.len() - items.len()) as u64;
                n += items.len() as u64;
                pages += 1;
                let version = stream.first_version_id().unwrap_or_default();
                let cause = Cause::sync(Some(version.clone()));
                let mut entries =
                    self.apply_assignment_page(guard, &snapshot, &items, cause.clone());
                if matches!(entries, Err(Rejection::UnknownAsset { .. })) && !assets_refreshed {
                    // An asset appeared after the assets walk: read the assets again.
                    assets_refreshed = true;
                    writes.drain(guard, &inner.store).await?;
                    self.sync_assets(guard, progress).await?;
                    entries = self.apply_assignment_page(guard, &snapshot, &items, cause.clone());
                }
                if matches!(entries, Err(Rejection::UnknownAsset { .. })) {
                    // Still unknown after reading the assets again (its record
                    // could not be read, say): its assignments are left out and
                    // counted, like a record that could not be read.
                    let ledger = &guard.book().ledger;
                    let known: Vec<AppleHolding> = items
                        .iter()
                        .filter(|h| ledger.asset(&h.asset).is_some())
                        .cloned()
                        .collect();
                    skipped += (items.len() - known.len()) as u64;
                    tracing::warn!(
                        left_out = items.len() - known.len(),
                        "assignments of assets Apple does not list (or whose record could not be read) were left out"
                    );
                    entries = self.apply_assignment_page(guard, &snapshot, &known, cause);
                }
                let entries = entries?;
                let next = page.next_page_index;
                if next.is_some() {
                    // A page with another after it is full: Apple's page size here.
                    let size = page.items.len() as u64;
                    let seen = &mut guard.book().assignments_page;
                    *seen = Some(seen.map_or(size, |s| s.max(size)));
                }
                let now = inner.now();
                let mut out = PageBuilder::new(now);
                out.entries(&entries, None, &guard.book().own_users);
                if !cursors {
                    // A walk of one app: the location's cursor is not its own.
                } else if next.is_some() {
                    out.cursor(CursorUpdate::set(
                        SyncEndpoint::Assignments,
                        SyncCursor::new(version.clone(), next, now),
                    ));
                } else if !full {
                    out.cursor(CursorUpdate::set(
                        SyncEndpoint::Assignments,
                        SyncCursor::new(version.clone(), None, now),
                    ));
                }
                writes.push(guard, &inner.store, out).await?;
                progress.report(SyncProgress::Page {
                    location: location.clone(),
                    endpoint: SyncStep::Assignments,
                    pages_done: pages,
                    total_pages: page.total_pages,
                    items: n,
                });
            }
        }
        .await;
        let drained = writes.drain(guard, &inner.store).await;
        let walked = match (walked, drained) {
            (Ok(()), settled) => settled,
            (Err(e), _) => Err(e),
        };
        if let Err(e) = walked {
            if let Some(t) = snapshot.take() {
                if guard.has_book() {
                    guard.book().ledger.abandon_snapshot(t);
                }
            }
            return Err(e);
        }
        let version = stream.first_version_id();
        guard.skipped_records += skipped;
        if skipped > 0 {
            if let Some(token) = snapshot.take() {
                // A walk that could not read every record concludes no removal:
                // what it did read is applied, what it did not see stays.
                guard.book().ledger.abandon_snapshot(token);
                if cursors {
                    self.write_final_cursor(guard, SyncEndpoint::Assignments, version.clone())
                        .await?;
                }
            }
        }
        if let Some(token) = snapshot {
            let now = inner.now();
            let cause = Cause::sync(version.clone());
            let entries = guard.book().ledger.finish_snapshot(token, cause, now)?;
            let mut out = PageBuilder::new(now);
            out.entries(&entries, None, &guard.book().own_users);
            if let Some(v) = version.filter(|_| cursors) {
                out.cursor(CursorUpdate::set(
                    SyncEndpoint::Assignments,
                    SyncCursor::new(v, None, now),
                ));
            }
            if let Err(e) = out.write(inner.store.as_ref(), guard.book()).await {
                guard.invalidate();
                return Err(e);
            }
        } else if pages == 0 && cursors {
            self.write_final_cursor(guard, SyncEndpoint::Assignments, version)
                .await?;
        }
        Ok(n)
    }

    /// The next page of a walk (`None` at its end), read in a `vppkit.apple` span
    /// naming `call`; its envelope tells the token's state. The caller keeps the lease
    /// (`LocationGuard::keep_lease`) before it writes the page.
    async fn next_page<T>(
        &self,
        guard: &mut LocationGuard,
        stream: &mut PageStream<T>,
        call: &'static str,
    ) -> Result<Option<Page<T>>> {
        let inner = &self.inner;
        let page = match stream
            .try_next()
            .instrument(tracing::info_span!("vppkit.apple", call))
            .await
        {
            Ok(Some(p)) => p,
            Ok(None) => return Ok(None),
            Err(e) => return Err(inner.observe_error(&mut guard.record, e).await),
        };
        inner
            .observe_envelope(&mut guard.record, &page.envelope)
            .await?;
        Ok(Some(page))
    }

    fn apply_assignment_page(
        &self,
        guard: &mut LocationGuard,
        snapshot: &Option<vppkit_ledger::SnapshotToken>,
        items: &[AppleHolding],
        cause: Cause,
    ) -> std::result::Result<Vec<JournalEntry>, Rejection> {
        let now = self.inner.now();
        let ledger = &mut guard.book().ledger;
        match snapshot {
            Some(t) => ledger.apply_snapshot_page(t, items, cause, now),
            None => ledger.apply_assignment_changes(
                &AssignmentChanges::new(items.to_vec(), Vec::new()),
                cause,
                now,
            ),
        }
    }
}

/// The page writes of a walk: at most one in flight, and the pages applied while it
/// runs, waiting to be written together in the next transaction.
///
/// When the store is the slower side, pages pile up while a write runs and the next
/// transaction carries several of them (at most [`Writes::BATCH_RECORDS`] journal
/// records): fewer commits, and the index pages several pages touch written once.
/// Pages still reach the store in order, each with its cursor or a later one.
#[derive(Default)]
struct Writes {
    pending: Option<PendingWrite>,
    queued: Option<PageBuilder>,
}

impl Writes {
    /// A transaction takes more pages while the one before it runs, up to this many
    /// journal records (five of Apple's largest assignments pages). Measured on a first
    /// sync of 1,000,000 assignments into SQLite (`cargo bench -p vppkit --bench scale`):
    /// one page a transaction 19.8 s; 3,000 records 14.0 s; 5,000 13.6 s and a peak of
    /// 264 MiB; 10,000 12.9 s and 322 MiB (what waits is held in memory, per location).
    const BATCH_RECORDS: usize = 5_000;

    /// Adds a page; writes what is queued when the store is free or the batch is full.
    async fn push(
        &mut self,
        guard: &mut LocationGuard,
        store: &std::sync::Arc<dyn vppkit_store::Store>,
        page: PageBuilder,
    ) -> Result<()> {
        let page = match self.queued.as_mut() {
            None => Some(page),
            Some(queued) => queued.absorb(page),
        };
        if let Some(page) = page {
            // Not appendable to what waits: that goes first, on its own.
            if let Some(queued) = self.queued.take() {
                self.settle(guard).await?;
                self.pending = queued.start(store, guard);
            }
            self.queued = Some(page);
        }
        let free = self.pending.as_ref().is_none_or(PendingWrite::is_finished);
        let full = self
            .queued
            .as_ref()
            .is_some_and(|q| q.records() >= Self::BATCH_RECORDS);
        if free || full {
            self.settle(guard).await?;
            if let Some(queued) = self.queued.take() {
                self.pending = queued.start(store, guard);
            }
        }
        Ok(())
    }

    /// Writes everything, in order, and waits for the store.
    async fn drain(
        &mut self,
        guard: &mut LocationGuard,
        store: &std::sync::Arc<dyn vppkit_store::Store>,
    ) -> Result<()> {
        self.settle(guard).await?;
        if let Some(queued) = self.queued.take() {
            self.pending = queued.start(store, guard);
            self.settle(guard).await?;
        }
        Ok(())
    }

    /// Waits for the write in flight; when it failed, the location's ledger (ahead of
    /// the store) is dropped, to be read again, and what is queued is dropped with it.
    async fn settle(&mut self, guard: &mut LocationGuard) -> Result<()> {
        let Some(pending) = self.pending.take() else {
            return Ok(());
        };
        let finished = pending.finish(guard.book()).await;
        if finished.is_err() {
            self.queued = None;
            guard.invalidate();
        }
        finished
    }
}

/// What an assignments walk reads.
pub(crate) enum Walk {
    /// Everything (a snapshot of every asset).
    Full,
    /// The changes since a version id.
    Since(String),
    /// One app (`adamId`), a snapshot of these assets of it.
    App(AdamId, Vec<AssetKey>),
}

/// Whether an asset's confirmed holdings match Apple's assigned count.
fn counts_match(v: &vppkit_ledger::AssetView) -> bool {
    u64::from(v.active) + u64::from(v.adopted) + u64::from(v.releasing)
        == u64::from(v.apple.assigned)
}

fn is_unknown_version(e: &EngineError) -> bool {
    matches!(e, EngineError::Apple(a) if a.error_number() == Some(ErrorNumber::InvalidVersionId))
}

/// The version id of an endpoint's cursor when its last walk finished.
fn complete_cursor(status: &vppkit_store::SyncStatus, e: SyncEndpoint) -> Option<String> {
    status
        .cursor(e)
        .filter(|c| c.next_page.is_none())
        .map(|c| c.version_id.clone())
}

/// Whether an incremental sync can run: users and assignments were walked to the end
/// before (else the sync is full).
fn has_cursors(status: &vppkit_store::SyncStatus) -> bool {
    complete_cursor(status, SyncEndpoint::Users).is_some()
        && complete_cursor(status, SyncEndpoint::Assignments).is_some()
}
