//! Reports and planning: read views over every location's ledger.

use std::collections::HashMap;

use vppkit_core::{Holder, LocationId, TokenState};
use vppkit_rules::{Directory, LicenceState, Limits, Plan, PlanContext, Planner, PolicySet};
use vppkit_store::{InstallState, LocationRecord};

use crate::engine::Engine;
use crate::error::Result;
use crate::report::{
    AppReport, InstallReport, InstallStatus, LastSync, LocationReport, ReportOptions,
};
use crate::sink::RejectionReason;

impl Engine {
    /// The report of one location: token (with the days it has left, when it can
    /// be used), last sync, and per app Apple's total and retired beside owned /
    /// used / reserved / free, waitlists and blocked items from the last plan, and (with
    /// [`ReportOptions::with_installs`]) each holder's install status.
    pub async fn report(
        &self,
        location: &LocationId,
        options: ReportOptions,
    ) -> Result<LocationReport> {
        let inner = &self.inner;
        let (mut book, record) = inner.read_location(location).await?;
        let book = book.as_mut().expect("read_location loads the book");
        let stored: HashMap<_, _> = inner
            .store
            .assets(location)
            .await?
            .into_iter()
            .map(|a| (a.asset.key.clone(), a))
            .collect();
        let notes = inner.plan_notes(Some(location)).await?;
        let status = inner.store.sync_status(location).await?;
        let in_flight = inner
            .store
            .unfinished_operations(Some(location))
            .await?
            .len();
        let mut apps = Vec::new();
        for v in book.ledger.asset_views() {
            let holders = book.ledger.holders_of(&v.key);
            let foreign = holders
                .iter()
                .filter(|(h, _)| matches!(h, Holder::User(u) if !book.own_users.contains(u)))
                .count() as u64;
            let mut installs = Vec::new();
            if options.include_installs {
                for (h, _) in &holders {
                    if let Some(r) = inner.store.install_status(location, h, &v.key).await? {
                        installs.push(InstallReport {
                            holder: h.clone(),
                            asset: v.key.clone(),
                            state: install_status(&r),
                            updated_at: r.updated_at,
                        });
                    }
                }
            }
            apps.push(AppReport {
                asset: v.key.clone(),
                product_type: v.product_type,
                name: stored
                    .get(&v.key)
                    .and_then(|a| a.metadata.as_ref())
                    .map(|m| m.name.clone()),
                total: u64::from(v.apple.total),
                retired: u64::from(v.apple.retired),
                owned: u64::from(v.holdable),
                used: v.used,
                reserved: u64::from(v.reserved),
                releasing: u64::from(v.releasing),
                free: v.free,
                foreign,
                unlimited: v.unlimited,
                waitlist: notes
                    .waitlisted
                    .iter()
                    .filter(|w| w.adam_id == v.key.adam_id)
                    .cloned()
                    .collect(),
                blocked: notes
                    .blocked
                    .iter()
                    .filter(|b| b.adam_id == v.key.adam_id)
                    .cloned()
                    .collect(),
                installs,
            });
        }
        apps.sort_by(|a, b| a.asset.cmp(&b.asset));
        let (own, foreign_users) = book.ledger.users().fold((0u64, 0u64), |(o, f), u| {
            if book.own_users.contains(&u.client_user_id) {
                (o + 1, f)
            } else {
                (o, f + 1)
            }
        });
        let now = inner.now();
        let token_state = inner.facts(&record).state(now, inner.config.expiry_warning);
        Ok(LocationReport {
            location: record.id.clone(),
            name: record.name.clone(),
            uid: record.uid.clone(),
            country: record.country.clone(),
            account_type: record.account_type,
            apple_account_name: record.apple_account_name.clone(),
            token_state,
            token_expires_at: record.token_expires_at,
            token_days_left: days_left(token_state, record.token_expires_at, now),
            writes_allowed: token_state.allows_writes(),
            last_sync: status.last_summary.map(|o| LastSync {
                at: o.at,
                succeeded: o.success,
                message: o.message,
            }),
            apps,
            foreign_users,
            own_users: own,
            operations_in_flight: in_flight as u64,
        })
    }

    /// The state of a location's token at this moment, as [`Engine::report`] shows it:
    /// the stored state, except that a token whose date passed (or came within the
    /// expiry warning) since Apple last answered is expired (or expiring) now, not what
    /// was last stored.
    pub fn token_state_now(&self, record: &LocationRecord) -> TokenState {
        let inner = &self.inner;
        inner
            .facts(record)
            .state(inner.now(), inner.config.expiry_warning)
    }

    /// Reports of every location.
    pub async fn reports(&self, options: ReportOptions) -> Result<Vec<LocationReport>> {
        let mut out = Vec::new();
        for l in self.inner.store.locations().await? {
            out.push(self.report(&l.id, options).await?);
        }
        Ok(out)
    }

    /// The licence state of every location, as the planner reads it.
    pub async fn licence_state(&self) -> Result<LicenceState> {
        let inner = &self.inner;
        let mut state = LicenceState::new();
        for record in inner.store.locations().await? {
            let id = record.id.clone();
            let (mut book, record) = inner.read_location(&id).await?;
            let book = book.as_mut().expect("read_location loads the book");
            state.add_location(id.clone(), record.token_state);
            let stored: HashMap<_, _> = inner
                .store
                .assets(&id)
                .await?
                .into_iter()
                .map(|a| (a.asset.key.clone(), a))
                .collect();
            for v in book.ledger.asset_views() {
                let Some(rec) = stored.get(&v.key) else {
                    continue;
                };
                let mut asset = rec.asset.clone();
                asset.counts = v.apple;
                let bundle = rec.metadata.as_ref().and_then(|m| m.bundle_id.clone());
                state.add_asset(&id, asset, bundle);
                for (h, s) in book.ledger.holders_of(&v.key) {
                    // A user holder Apple lists only in assignments: ours only
                    // when this manager created it.
                    if let Holder::User(u) = &h {
                        if !book.own_users.contains(u) {
                            state.set_user_owned(&id, u, false);
                        }
                    }
                    state.set_holding(&id, &v.key, h, s);
                }
            }
            // Users another MDM (or someone before onboarding) created are not
            // ours: the planner never retires or revokes them for being absent
            // from the directory.
            for u in book.ledger.users() {
                state.set_user_owned(
                    &id,
                    &u.client_user_id,
                    book.own_users.contains(&u.client_user_id),
                );
                state.set_user(&id, u.clone());
            }
        }
        Ok(state)
    }

    /// Plans with `vppkit-rules` over the current licence state of every location,
    /// with Apple's request limits from `service/config`.
    pub async fn plan(
        &self,
        directory: &Directory,
        policies: &PolicySet,
        context: &PlanContext,
    ) -> Result<Plan> {
        let state = self.licence_state().await?;
        let limits = self.limits().await;
        let planner = Planner::new().with_limits(limits);
        Ok(planner.plan(directory, policies, &state, context)?)
    }

    /// Plans, then applies the plan.
    pub async fn plan_and_apply(
        &self,
        directory: &Directory,
        policies: &PolicySet,
        context: &PlanContext,
    ) -> Result<(Plan, crate::ApplyReport)> {
        let plan = self.plan(directory, policies, context).await?;
        let report = self.apply(&plan).await?;
        Ok((plan, report))
    }

    /// Apple's request limits, from the first location whose token answers.
    pub(crate) async fn limits(&self) -> Limits {
        let inner = &self.inner;
        let Ok(locations) = inner.store.locations().await else {
            return Limits::apple();
        };
        for l in locations.iter().filter(|l| l.token_state.allows_reads()) {
            if let Ok(c) = inner.client(l) {
                if let Ok(x) = c.limits().await {
                    let n = |v: u32, d: usize| if v == 0 { d } else { v as usize };
                    let d = Limits::apple();
                    return Limits::new(
                        n(x.max_assets, d.max_assets),
                        n(x.max_serial_numbers, d.max_serial_numbers),
                        n(x.max_client_user_ids, d.max_client_user_ids),
                        n(x.max_revoke_serial_numbers, d.max_revoke_serial_numbers),
                        n(x.max_revoke_client_user_ids, d.max_revoke_client_user_ids),
                        n(x.max_users, d.max_users),
                    );
                }
            }
        }
        Limits::apple()
    }
}

/// Whole days a token has left, or `None` when its state says it cannot be used
/// (Apple refused it as expired, revoked or invalid, whatever its date says).
fn days_left(
    state: TokenState,
    expires_at: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<i64> {
    use vppkit_core::TokenState;
    match state {
        TokenState::Expired | TokenState::Revoked | TokenState::Invalid => None,
        _ => Some((expires_at - now).num_days().max(0)),
    }
}

fn install_status(r: &vppkit_store::InstallRecord) -> InstallStatus {
    match r.state {
        InstallState::Queued => InstallStatus::Queued,
        InstallState::Acknowledged => InstallStatus::Acknowledged,
        InstallState::NotNow => InstallStatus::NotNow,
        InstallState::Installed => InstallStatus::Installed,
        InstallState::Removed => InstallStatus::Removed,
        _ => {
            let reason = r
                .detail
                .as_ref()
                .and_then(|d| d.get("reason"))
                .and_then(|v| v.as_str())
                .unwrap_or("unknown");
            InstallStatus::Failed(
                reason
                    .parse()
                    .unwrap_or(RejectionReason::Other(reason.to_owned())),
            )
        }
    }
}
