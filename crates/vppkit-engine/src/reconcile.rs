//! The reconcile pass: read the stored desired state, plan over the current
//! licence state, hold what the blast-radius guard refuses, apply the rest,
//! hand out the commands, and settle the self-service requests. Level-triggered:
//! each pass reads everything afresh, so a lost trigger only delays
//! convergence until the next pass (the scheduler's slow tick at the latest).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use tracing::Instrument;
use vppkit_core::{Holder, HoldingStatus, LocationId};
use vppkit_rules::{Directory, LocationPlan, Plan, PlanSession, Planner, Precondition};
use vppkit_store::NewDocument;

use crate::apply::ApplyReport;
use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::outbox::DispatchReport;
use crate::requests::RequestStatus;

const CONFIRMATION: &str = "vppkit-engine/release-confirmation";
const CONFIRMATION_KEY: &str = "current";

/// Releases of one location the blast-radius guard held back.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct HeldReleases {
    /// The location.
    pub location: LocationId,
    /// Licences the plan would release, disassociate or revoke there.
    pub would_release: u64,
    /// Licences held there now.
    pub held: u64,
    /// The desired-state revision to confirm to let them go
    /// ([`Engine::confirm_releases`]).
    pub revision: u64,
    /// What would be done, one sentence per Apple request.
    pub steps: Vec<String>,
}

impl HeldReleases {
    /// One sentence.
    pub fn explain(&self) -> String {
        format!(
            "Held: the plan would release {} of the {} licences held in location {}; confirm desired-state revision {} to apply it.",
            self.would_release, self.held, self.location, self.revision
        )
    }
}

/// What a reconcile pass did.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ReconcileReport {
    /// The desired-state revision the pass converged to (0: none stored yet,
    /// and nothing was done).
    pub desired_revision: u64,
    /// The plan, as made (before the guard held anything back).
    pub plan: Plan,
    /// What the apply did.
    pub applied: ApplyReport,
    /// Releases held by the blast-radius guard.
    pub held: Vec<HeldReleases>,
    /// Commands handed to the sink in this pass.
    pub dispatched: DispatchReport,
    /// The self-service requests and what became of them.
    pub requests: Vec<RequestStatus>,
    /// Operations a crash or a dead instance had left open, finished or rolled
    /// back before the pass planned anything.
    pub recovered_operations: usize,
    /// Operations still open at Apple when the pass returned (left open earlier,
    /// or sent by this pass and still waiting for Apple).
    pub open_operations: usize,
    /// Locations another live instance was working on (their leftovers are its).
    pub busy: Vec<LocationId>,
}

impl ReconcileReport {
    /// Whether the pass left nothing undone but what waits for licences or
    /// invitations: no held releases, no operation open, no location busy or
    /// skipped.
    pub fn is_complete(&self) -> bool {
        self.held.is_empty()
            && self.open_operations == 0
            && self.busy.is_empty()
            && self.applied.locations.iter().all(|l| l.skipped.is_none())
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Confirmation {
    revision: u64,
}

impl Engine {
    /// Runs one reconcile pass for one location: plans over every location
    /// (routing between tokens needs them all) from the stored desired state,
    /// and applies this location's part. Reports what it did.
    pub async fn reconcile(&self, location: &LocationId) -> Result<ReconcileReport> {
        let span = tracing::info_span!("vppkit.reconcile", location = %location);
        self.reconcile_scope(Some(location)).instrument(span).await
    }

    /// Runs one reconcile pass over every location.
    pub async fn reconcile_all(&self) -> Result<ReconcileReport> {
        let span = tracing::info_span!("vppkit.reconcile", location = "*");
        self.reconcile_scope(None).instrument(span).await
    }

    /// Lets the releases of desired-state `revision` through the blast-radius
    /// guard (an operator looked at what [`ReconcileReport::held`] listed). A
    /// later revision is guarded again.
    pub async fn confirm_releases(&self, revision: u64) -> Result<()> {
        let current = self.desired_revision().await?;
        if revision == 0 || revision != current {
            return Err(EngineError::Conflict(format!(
                "revision {revision} is not the current desired state (revision {current})"
            )));
        }
        let body = serde_json::to_value(Confirmation { revision }).unwrap_or_default();
        let doc = NewDocument::new(
            CONFIRMATION,
            CONFIRMATION_KEY,
            "confirmed",
            body,
            self.inner.now(),
        );
        self.inner.store.put_document(&doc, None).await?;
        self.want_reconcile_everywhere("releases confirmed").await
    }

    /// Plans like [`Engine::plan`], through the engine's [`PlanSession`]: the
    /// same plan, computed again only for the apps whose inputs changed since
    /// the previous pass (a purchase, an accepted invitation, one directory edit).
    async fn plan_incrementally(
        &self,
        scope: Option<&LocationId>,
        directory: &Directory,
        policies: &vppkit_rules::PolicySet,
        context: &vppkit_rules::PlanContext,
    ) -> Result<Plan> {
        let state = self.licence_state().await?;
        let limits = self.limits().await;
        let mut sessions = self.inner.plan_sessions.lock().await;
        let session = sessions
            .entry(scope.cloned())
            .or_insert_with(|| PlanSession::new(Planner::new().with_limits(limits)));
        if *session.planner().limits() != limits {
            *session = PlanSession::new(Planner::new().with_limits(limits));
        }
        let plan = session.plan(directory, policies, &state, context)?;
        tracing::debug!(stats = ?session.last(), "planned");
        Ok(plan)
    }

    async fn confirmed_revision(&self) -> Result<u64> {
        let Some(doc) = self
            .inner
            .store
            .document(CONFIRMATION, CONFIRMATION_KEY)
            .await?
        else {
            return Ok(0);
        };
        Ok(serde_json::from_value::<Confirmation>(doc.body).map_or(0, |c| c.revision))
    }

    async fn reconcile_scope(&self, scope: Option<&LocationId>) -> Result<ReconcileReport> {
        // Before anything else: what a crash or a dead instance left open.
        let (recovered_operations, left_open, busy) = self.finish_left_open(scope).await?;
        let Some((desired, _)) = self.current_desired().await? else {
            return Ok(ReconcileReport {
                recovered_operations,
                open_operations: left_open,
                busy,
                ..ReconcileReport::default()
            });
        };
        let revision = desired.revision;
        let context = self.plan_context().await?;
        let plan = self
            .plan_incrementally(scope, &desired.directory, &desired.policies, &context)
            .await?;
        self.store_pending_releases(&plan).await?;
        let mut to_apply = plan.clone();
        let held = if self.confirmed_revision().await? == revision {
            Vec::new()
        } else {
            self.hold_wide_releases(&mut to_apply, revision, &desired.directory)
                .await?
        };
        for h in &held {
            tracing::warn!(location = %h.location, would_release = h.would_release, held = h.held, revision, "releases held by the blast-radius guard");
        }
        if let Some(l) = scope {
            restrict(&mut to_apply, l);
        }
        let applied = self.apply_revision(&to_apply, Some(revision)).await?;
        let dispatched = self.dispatch_commands(scope).await?;
        let requests = self.settle_requests(&plan, &desired.directory).await?;
        let sent_open: usize = applied.locations.iter().map(|l| l.pending_operations).sum();
        Ok(ReconcileReport {
            desired_revision: revision,
            plan,
            applied,
            held,
            dispatched,
            requests,
            recovered_operations,
            open_operations: left_open + sent_open,
            busy,
        })
    }

    /// Finishes or rolls back every operation left open in scope, waiting for a
    /// dead instance's lease to expire (up to the lease duration). Returns how
    /// many were settled, how many are still open, and the locations a live
    /// instance holds.
    async fn finish_left_open(
        &self,
        scope: Option<&LocationId>,
    ) -> Result<(usize, usize, Vec<LocationId>)> {
        let ops = self.inner.store.unfinished_operations(scope).await?;
        let mut by_location: BTreeMap<LocationId, Vec<String>> = BTreeMap::new();
        for op in ops {
            by_location.entry(op.location).or_default().push(op.id);
        }
        let (mut settled, mut open, mut busy) = (0, 0, Vec::new());
        for (location, ids) in by_location {
            let guard = match self.lock_waiting(&location).await {
                Ok(g) => g,
                Err(EngineError::Busy(l)) => {
                    open += ids.len();
                    busy.push(l);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let mut report = crate::apply::LocationApplyReport::default();
            let n = ids.len();
            if let Some(g) = self.settle_locked(guard, &ids, &mut report).await? {
                g.release(&self.inner).await;
            }
            open += report.pending_operations;
            settled += n - report.pending_operations;
            if report.pending_operations > 0 {
                tracing::warn!(location = %location, open = report.pending_operations, "operations left open earlier are still waiting for Apple");
            }
        }
        Ok((settled, open, busy))
    }

    /// Takes out of the plan the releases of every location where they exceed
    /// the guard, and reports them.
    async fn hold_wide_releases(
        &self,
        plan: &mut Plan,
        revision: u64,
        directory: &Directory,
    ) -> Result<Vec<HeldReleases>> {
        let guard = self.inner.config.blast_radius;
        let mut held_out = Vec::new();
        let mut held_removals: BTreeSet<(String, String)> = BTreeSet::new();
        for lp in plan.locations.iter_mut() {
            if lp.disassociate.is_empty() && lp.revoke.is_empty() && lp.retire_users.is_empty() {
                continue;
            }
            let (would, held) = self.release_size(lp, directory).await?;
            if !guard.exceeded(would, held) {
                continue;
            }
            let steps = release_steps(lp);
            for b in &lp.disassociate {
                for (a, h) in b.holdings() {
                    held_removals.insert((a.adam_id.as_str().to_owned(), h.to_string()));
                }
            }
            lp.disassociate.clear();
            lp.revoke.clear();
            lp.retire_users.clear();
            held_out.push(HeldReleases {
                location: lp.location.clone(),
                would_release: would,
                held,
                revision,
                steps,
            });
        }
        // Removal commands that go with a held release wait with it.
        plan.commands.retain(|c| {
            let device = Holder::Device(c.device.clone()).to_string();
            !(is_removal(c)
                && c.command
                    .adam_id()
                    .is_some_and(|a| held_removals.contains(&(a.as_str().to_owned(), device))))
        });
        Ok(held_out)
    }

    /// How many licences a location's plan would release, and how many this
    /// manager manages there: the ones it assigned, and the ones found at
    /// Apple on devices its directory lists (another MDM's are never at stake).
    async fn release_size(&self, lp: &LocationPlan, directory: &Directory) -> Result<(u64, u64)> {
        let (mut book, _) = self.inner.read_location(&lp.location).await?;
        let book = book.as_mut().expect("read_location loads the book");
        let ledger = &book.ledger;
        let held = ledger
            .holdings()
            .filter(|(_, h, s)| match s {
                HoldingStatus::Active => true,
                HoldingStatus::Adopted => {
                    matches!(h, Holder::Device(d) if directory.device(d).is_some())
                }
                _ => false,
            })
            .count() as u64;
        let mut released: BTreeSet<(String, String)> = BTreeSet::new();
        for b in &lp.disassociate {
            for (a, h) in b.holdings() {
                released.insert((a.to_string(), h.to_string()));
            }
        }
        let mut holders: Vec<Holder> = Vec::new();
        for b in &lp.revoke {
            holders.extend(b.targets.holders());
        }
        for b in &lp.retire_users {
            holders.extend(b.client_user_ids.iter().cloned().map(Holder::User));
        }
        for h in holders {
            for x in ledger.holder_view(&h).holdings {
                if matches!(x.status, HoldingStatus::Active | HoldingStatus::Adopted) {
                    released.insert((x.asset.to_string(), h.to_string()));
                }
            }
        }
        Ok((released.len() as u64, held))
    }
}

fn is_removal(c: &vppkit_rules::DeviceCommand) -> bool {
    c.command.request_type().starts_with("Remove")
}

/// One sentence per release request of a location plan.
fn release_steps(lp: &LocationPlan) -> Vec<String> {
    let mut out = Vec::new();
    for b in &lp.disassociate {
        out.push(format!(
            "disassociate {} asset(s) from {} holder(s): {}",
            b.assets.len(),
            b.targets.len(),
            b.reason
        ));
    }
    for b in &lp.revoke {
        out.push(format!(
            "revoke every licence of {} holder(s): {}",
            b.targets.len(),
            b.reason
        ));
    }
    for b in &lp.retire_users {
        out.push(format!("retire {} VPP user(s)", b.client_user_ids.len()));
    }
    out
}

/// Keeps only one location's part of a plan: its Apple requests and the
/// commands that wait for its licences or go with its releases.
fn restrict(plan: &mut Plan, location: &LocationId) {
    plan.locations.retain(|lp| lp.location == *location);
    let removals: BTreeMap<(String, String), ()> = plan
        .locations
        .iter()
        .flat_map(|lp| lp.disassociate.iter())
        .flat_map(|b| b.holdings())
        .map(|(a, h)| ((a.adam_id.as_str().to_owned(), h.to_string()), ()))
        .collect();
    plan.commands.retain(|c| match &c.after {
        Precondition::Associated { location: l, .. } => l == location,
        _ => {
            let device = Holder::Device(c.device.clone()).to_string();
            c.command
                .adam_id()
                .is_some_and(|a| removals.contains_key(&(a.as_str().to_owned(), device)))
        }
    });
}
