//! `plan`, `apply` and `request-install`: the engine keeps the desired state (directory
//! and policies) and converges to it; `apply` stores a new revision and runs one reconcile
//! pass, `request-install` stores a self-service request and runs one pass, `plan` shows
//! what a pass would do without changing anything.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use vppkit::core::{AdamId, Holder, LocationId, SerialNumber};
use vppkit::engine::{DesiredState, HeldReleases, ReconcileReport, RequestOutcome};
use vppkit::rules::{Directory, Plan, PolicySet};

use super::app::App;
use super::error::{ManagerError, Result};
use super::serve::StopSignal;

/// Reads a policy file.
pub(crate) fn read_policies(path: &Path) -> Result<PolicySet> {
    let text = std::fs::read_to_string(path).map_err(|e| ManagerError::file(path, e))?;
    PolicySet::from_json(&text).map_err(|source| ManagerError::Format {
        path: path.display().to_string(),
        source,
    })
}

/// Reads a directory file.
pub(crate) fn read_directory(path: &Path) -> Result<Directory> {
    let text = std::fs::read_to_string(path).map_err(|e| ManagerError::file(path, e))?;
    Directory::from_json(&text).map_err(|source| ManagerError::Format {
        path: path.display().to_string(),
        source,
    })
}

/// The plan and its explanation (`plan`, a dry run).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Planned {
    pub(crate) apple_calls: usize,
    pub(crate) commands: usize,
    pub(crate) waitlisted: usize,
    pub(crate) blocked: usize,
    pub(crate) invalid_policies: usize,
    pub(crate) explain: Vec<String>,
    pub(crate) plan: Plan,
}

impl Planned {
    pub(crate) fn of(plan: Plan) -> Self {
        Self {
            apple_calls: plan.apple_calls(),
            commands: plan.commands.len(),
            waitlisted: plan.waitlisted.len(),
            blocked: plan.blocked.len(),
            invalid_policies: plan.invalid_policies.len(),
            explain: plan.explain(),
            plan,
        }
    }

    pub(crate) fn text(&self) -> String {
        let mut s = format!(
            "plan: {} Apple requests, {} MDM commands, {} waitlisted, {} blocked, {} policies ignored\n",
            self.apple_calls, self.commands, self.waitlisted, self.blocked, self.invalid_policies
        );
        for line in self.explain.iter().take(80) {
            s.push_str(&format!("  - {line}\n"));
        }
        if self.explain.len() > 80 {
            s.push_str(&format!(
                "  ... and {} more (use --json)\n",
                self.explain.len() - 80
            ));
        }
        s
    }
}

/// `plan --policies FILE --directory FILE`: what `apply` would do with these files, over
/// the current licence state and the stored requests and grace periods; nothing changes.
pub(crate) async fn plan(
    app: &App,
    policies: &PolicySet,
    directory: &Directory,
) -> Result<Planned> {
    let ctx = app.engine.plan_context().await?;
    Ok(Planned::of(
        app.engine.plan(directory, policies, &ctx).await?,
    ))
}

/// One location's part of an apply.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AppliedLocation {
    pub(crate) location: Option<LocationId>,
    pub(crate) skipped: Option<String>,
    pub(crate) confirmed: usize,
    pub(crate) refused: Vec<String>,
    pub(crate) released: usize,
    pub(crate) left_alone: Vec<String>,
    pub(crate) users_created: usize,
    pub(crate) users_retired: usize,
    pub(crate) invitation_links: usize,
    pub(crate) commands_sent: usize,
    pub(crate) pending_operations: usize,
    pub(crate) recovered_operations: usize,
}

/// What `apply` (and `request-install`) did: one reconcile pass.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Applied {
    /// The desired-state revision the pass converged to.
    pub(crate) desired_revision: u64,
    /// Apple requests the plan asked for, those held back by the guard included.
    pub(crate) apple_calls: usize,
    /// Of those, the release requests the blast-radius guard held back (not sent).
    pub(crate) apple_calls_held: usize,
    pub(crate) locations: Vec<AppliedLocation>,
    /// MDM commands handed to the MDM in this pass, by request type.
    pub(crate) commands_by_type: BTreeMap<String, usize>,
    pub(crate) waitlisted: usize,
    pub(crate) blocked: usize,
    pub(crate) invalid_policies: usize,
    /// Releases the blast-radius guard held back (run `apply --confirm-releases` to let
    /// them through).
    pub(crate) held: Vec<HeldReleases>,
    /// Operations a crash or a dead instance had left open, finished before the pass.
    pub(crate) recovered_operations: usize,
    /// Operations still open at Apple after the pass.
    pub(crate) open_operations: usize,
    /// Locations another live instance was working on.
    pub(crate) busy: Vec<LocationId>,
    /// Whether everything the plan asked for is done or waiting only for licences or
    /// invitations (no held releases, no operation still open at Apple, no location
    /// busy or skipped).
    pub(crate) complete: bool,
    #[serde(skip)]
    pub(crate) report: ReconcileReport,
}

impl Applied {
    pub(crate) fn of(
        report: ReconcileReport,
        handed_out: &[vppkit::engine::QueuedCommand],
    ) -> Self {
        let mut by_type = BTreeMap::new();
        for c in handed_out {
            *by_type.entry(c.reference.request_type.clone()).or_default() += 1;
        }
        let plan = &report.plan;
        let locations: Vec<AppliedLocation> = report
            .applied
            .locations
            .iter()
            .map(|l| AppliedLocation {
                location: l.location.clone(),
                skipped: l.skipped.clone(),
                confirmed: l.confirmed,
                refused: l
                    .refused
                    .iter()
                    .map(|(a, h, why)| format!("{h} {a}: {why}"))
                    .collect(),
                released: l.released,
                left_alone: l
                    .left_alone
                    .iter()
                    .map(|(a, h, why)| format!("{h} {a}: {why}"))
                    .chain(
                        l.users_left_alone
                            .iter()
                            .map(|(u, why)| format!("user:{u}: {why}")),
                    )
                    .collect(),
                users_created: l.users_created,
                users_retired: l.users_retired,
                invitation_links: l.invitation_links.len(),
                commands_sent: l.commands_sent,
                pending_operations: l.pending_operations,
                recovered_operations: l.recovered_operations,
            })
            .collect();
        let complete = report.is_complete();
        Self {
            desired_revision: report.desired_revision,
            apple_calls: plan.apple_calls(),
            apple_calls_held: report.held.iter().map(|h| h.steps.len()).sum(),
            locations,
            commands_by_type: by_type,
            waitlisted: plan.waitlisted.len(),
            blocked: plan.blocked.len(),
            invalid_policies: plan.invalid_policies.len(),
            held: report.held.clone(),
            recovered_operations: report.recovered_operations,
            open_operations: report.open_operations,
            busy: report.busy.clone(),
            complete,
            report,
        }
    }

    /// What is left undone, in one line (for the exit status), or `None`.
    pub(crate) fn unfinished(&self) -> Option<String> {
        if self.complete {
            return None;
        }
        let open = self.open_operations;
        let skipped = self
            .locations
            .iter()
            .filter(|l| l.skipped.is_some())
            .count();
        let mut parts = Vec::new();
        if !self.held.is_empty() {
            parts.push(format!(
                "releases held in {} location(s): check them, then `apply --confirm-releases`",
                self.held.len()
            ));
        }
        if open > 0 {
            parts.push(format!(
                "{open} operation(s) still open at Apple: `serve` (or the next `apply`) finishes them"
            ));
        }
        if skipped > 0 {
            parts.push(format!("{skipped} location(s) skipped (see above)"));
        }
        if !self.busy.is_empty() {
            let ids: Vec<String> = self.busy.iter().map(ToString::to_string).collect();
            parts.push(format!(
                "another instance is working on {} (its operations are its own)",
                ids.join(", ")
            ));
        }
        Some(parts.join("; "))
    }

    pub(crate) fn text(&self) -> String {
        let held = match self.apple_calls_held {
            0 => String::new(),
            n => format!(" ({n} held back, not sent)"),
        };
        let mut s = format!(
            "applied desired state revision {}: {} Apple requests planned{held}; {} waitlisted, {} blocked, {} policies ignored (see `report`)\n",
            self.desired_revision, self.apple_calls, self.waitlisted, self.blocked, self.invalid_policies
        );
        for l in &self.locations {
            let id = l
                .location
                .as_ref()
                .map(|l| l.to_string())
                .unwrap_or_default();
            match &l.skipped {
                Some(why) => s.push_str(&format!("  {id}: skipped: {why}\n")),
                None => s.push_str(&format!(
                    "  {id}: {} licences confirmed, {} released, {} refused, {} left alone, {} users created, {} invitation links, {} commands, {} operations still pending\n",
                    l.confirmed, l.released, l.refused.len(), l.left_alone.len(), l.users_created,
                    l.invitation_links, l.commands_sent, l.pending_operations
                )),
            }
            if l.recovered_operations > 0 {
                s.push_str(&format!(
                    "    {} operation(s) left open earlier were finished first\n",
                    l.recovered_operations
                ));
            }
            for r in l.refused.iter().take(5) {
                s.push_str(&format!("    refused: {r}\n"));
            }
            for r in l.left_alone.iter().take(5) {
                s.push_str(&format!("    left alone: {r}\n"));
            }
        }
        if self.recovered_operations > 0 {
            s.push_str(&format!(
                "  {} operation(s) left open by a crash or a stopped instance were finished first\n",
                self.recovered_operations
            ));
        }
        for h in &self.held {
            s.push_str(&format!("  {}\n", h.explain()));
            for step in &h.steps {
                s.push_str(&format!("    would {step}\n"));
            }
        }
        for (kind, n) in &self.commands_by_type {
            s.push_str(&format!("  MDM {kind}: {n}\n"));
        }
        s
    }
}

/// Stores the desired state (a new revision), confirms its releases when asked, and runs
/// one reconcile pass.
pub(crate) async fn apply(
    app: &App,
    policies: PolicySet,
    directory: Directory,
    confirm_releases: bool,
    stop: StopSignal,
) -> Result<Applied> {
    let revision = app
        .engine
        .set_desired_state(DesiredState::new(directory, policies))
        .await?;
    if confirm_releases {
        app.engine.confirm_releases(revision).await?;
    }
    reconcile(app, stop).await
}

/// One reconcile pass of the stored desired state (operations a crash left open are
/// finished first, by the engine). SIGTERM or Ctrl-C during the pass does not cut it: it
/// is finished first (its reservations confirmed or rolled back, its commands queued), then
/// the command ends, so a stop never leaves a licence reserved behind. `stop` is listened
/// for from the command's start, so a signal before the pass does not kill the process.
pub(crate) async fn reconcile(app: &App, stop: StopSignal) -> Result<Applied> {
    app.sink.take();
    let pass = app.engine.reconcile_all();
    tokio::pin!(pass);
    let report = tokio::select! {
        r = &mut pass => r?,
        which = stop => {
            super::status::info(&format!(
                "{which}: finishing the reconcile pass under way, then stopping"
            ));
            pass.await?
        }
    };
    let handed_out = app.sink.take();
    Ok(Applied::of(report, &handed_out))
}

/// What became of a self-service request.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Requested {
    pub(crate) device: SerialNumber,
    pub(crate) adam_id: AdamId,
    /// `installing`, `waitlisted` or `waiting` (for the user's invitation); `queued` or
    /// `handled` when another instance (`serve`) holds the locations and serves it.
    pub(crate) outcome: String,
    pub(crate) explain: String,
    pub(crate) applied: Applied,
}

/// Parses `SERIAL` or `device:SERIAL`.
pub(crate) fn parse_device(holder: &str) -> Result<SerialNumber> {
    let serial = match holder.parse::<Holder>() {
        Ok(Holder::Device(s)) => return Ok(s),
        Ok(_) => {
            return Err(ManagerError::usage(
                "HOLDER must be a device (self-service requests come from a device)",
            ))
        }
        Err(_) => holder,
    };
    SerialNumber::new(serial).map_err(|e| ManagerError::usage(format!("HOLDER: {e}")))
}

/// `request-install HOLDER APP`: a device asks for an app an Available policy offers it.
/// The engine keeps the request until it is served.
pub(crate) async fn request_install(
    app: &App,
    holder: &str,
    adam: &str,
    stop: StopSignal,
) -> Result<Requested> {
    let device = parse_device(holder)?;
    let adam_id = AdamId::new(adam).map_err(|e| ManagerError::usage(format!("APP: {e}")))?;
    if app.engine.desired_revision().await? == 0 {
        return Err(ManagerError::usage(
            "no policies applied yet: run `apply --policies FILE --directory FILE` first",
        ));
    }
    app.engine
        .request_install(device.clone(), adam_id.clone())
        .await?;
    let applied = reconcile(app, stop).await?;
    let status = applied
        .report
        .requests
        .iter()
        .find(|r| r.request.device == device && r.request.adam_id == adam_id)
        .cloned();
    let (outcome, explain) = match status.map(|s| s.outcome) {
        Some(RequestOutcome::Installing { explain }) => ("installing", explain),
        Some(RequestOutcome::Waitlisted { explain }) => ("waitlisted", explain),
        Some(RequestOutcome::Waiting { explain }) => ("waiting", explain),
        Some(RequestOutcome::Refused { explain }) => return Err(ManagerError::usage(explain)),
        Some(_) => (
            "unknown",
            "the engine reported an outcome this manager does not know; see `report`".to_owned(),
        ),
        // Not in this pass: another instance (`serve`) holds the locations and serves
        // requests on its own passes; it may have served this one already.
        None => {
            let stored = app
                .engine
                .install_requests()
                .await?
                .iter()
                .any(|r| r.device == device && r.adam_id == adam_id);
            let busy = if applied.busy.is_empty() {
                "another instance".to_owned()
            } else {
                let ids: Vec<String> = applied.busy.iter().map(ToString::to_string).collect();
                format!("another instance (working on {})", ids.join(", "))
            };
            if stored {
                (
                    "queued",
                    format!("stored; {busy} serves it on its next pass (see `report`)"),
                )
            } else {
                (
                    "handled",
                    format!(
                        "{busy} already took it up; `report` shows the command or the waitlist"
                    ),
                )
            }
        }
    };
    Ok(Requested {
        device,
        adam_id,
        outcome: outcome.to_owned(),
        explain,
        applied,
    })
}
