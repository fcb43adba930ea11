//! `plan`, `apply` and `request-install`: the rules' plan over the engine's licence
//! state, applied through the engine, with what the plan said kept in the store.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::Utc;
use serde::Serialize;
use vppkit::core::{AdamId, Holder, LocationId, SerialNumber};
use vppkit::engine::QueuedCommand;
use vppkit::rules::{BlockReason, Directory, Plan, PlanContext, PolicySet};

use super::app::App;
use super::error::{ManagerError, Result};
use super::state::{self, Inputs, PlanNotes, Request};

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

async fn context(app: &App, extra: Option<&Request>) -> Result<PlanContext> {
    let mut requests = state::requests(&app.store).await?;
    if let Some(r) = extra {
        requests.retain(|x| !(x.device == r.device && x.adam_id == r.adam_id));
        requests.push(r.clone());
    }
    let notes = state::plan_notes(&app.store).await?;
    Ok(PlanContext::new(Utc::now())
        .with_requests(requests.iter().map(Request::to_rules).collect())
        .with_pending(&notes.pending_releases))
}

/// `plan --policies FILE --directory FILE`: what apply would do; nothing is changed.
pub(crate) async fn plan(
    app: &App,
    policies: &PolicySet,
    directory: &Directory,
) -> Result<Planned> {
    let ctx = context(app, None).await?;
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
    pub(crate) users_created: usize,
    pub(crate) users_retired: usize,
    pub(crate) invitation_links: usize,
    pub(crate) commands_sent: usize,
    pub(crate) pending_operations: usize,
}

/// What `apply` (and `request-install`) did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Applied {
    pub(crate) apple_calls: usize,
    pub(crate) locations: Vec<AppliedLocation>,
    pub(crate) commands_by_type: BTreeMap<String, usize>,
    pub(crate) waitlisted: usize,
    pub(crate) blocked: usize,
    pub(crate) invalid_policies: usize,
    #[serde(skip)]
    pub(crate) plan: Plan,
    #[serde(skip)]
    pub(crate) commands: Vec<QueuedCommand>,
}

impl Applied {
    pub(crate) fn text(&self) -> String {
        let mut s = format!(
            "applied: {} Apple requests; {} waitlisted, {} blocked, {} policies ignored (see `report`)\n",
            self.apple_calls, self.waitlisted, self.blocked, self.invalid_policies
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
                    "  {id}: {} licences confirmed, {} released, {} refused, {} users created, {} invitation links, {} commands, {} operations still pending\n",
                    l.confirmed, l.released, l.refused.len(), l.users_created, l.invitation_links,
                    l.commands_sent, l.pending_operations
                )),
            }
            for r in l.refused.iter().take(5) {
                s.push_str(&format!("    refused: {r}\n"));
            }
        }
        for (kind, n) in &self.commands_by_type {
            s.push_str(&format!("  MDM {kind}: {n}\n"));
        }
        s
    }
}

/// Plans and applies `inputs` (with the stored requests and `extra`), then stores what the
/// plan said and which requests still wait.
pub(crate) async fn apply_inputs(
    app: &App,
    inputs: &Inputs,
    extra: Option<&Request>,
) -> Result<Applied> {
    let recovered = app.engine.recover().await?;
    if recovered.found > 0 {
        tracing::info!(
            found = recovered.found,
            "finished operations left in flight"
        );
    }
    let ctx = context(app, extra).await?;
    app.sink.take();
    let plan = app
        .engine
        .plan(&inputs.directory, &inputs.policies, &ctx)
        .await?;
    let report = app.engine.apply(&plan).await?;
    let commands = app.sink.take();
    state::save_inputs(&app.store, inputs).await?;
    state::save_plan_notes(&app.store, &PlanNotes::of(&plan, Utc::now())).await?;
    let mut requests = state::requests(&app.store).await?;
    if let Some(r) = extra {
        requests.retain(|x| !(x.device == r.device && x.adam_id == r.adam_id));
        requests.push(r.clone());
    }
    requests.retain(|r| still_waiting(r, &plan, &inputs.directory, &commands));
    state::save_requests(&app.store, &requests).await?;
    let mut by_type = BTreeMap::new();
    for c in &commands {
        *by_type.entry(c.reference.request_type.clone()).or_default() += 1;
    }
    Ok(Applied {
        apple_calls: plan.apple_calls(),
        locations: report
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
                users_created: l.users_created,
                users_retired: l.users_retired,
                invitation_links: l.invitation_links.len(),
                commands_sent: l.commands_sent,
                pending_operations: l.pending_operations,
            })
            .collect(),
        commands_by_type: by_type,
        waitlisted: plan.waitlisted.len(),
        blocked: plan.blocked.len(),
        invalid_policies: plan.invalid_policies.len(),
        plan,
        commands,
    })
}

fn sent_install(commands: &[QueuedCommand], device: &SerialNumber, adam: &AdamId) -> bool {
    commands.iter().any(|c| {
        &c.reference.device == device
            && c.command.adam_id() == Some(adam)
            && c.reference.request_type.starts_with("Install")
    })
}

/// The holders that stand for a device's request: the device, and its user.
fn request_holders(r: &Request, directory: &Directory) -> Vec<Holder> {
    let mut holders = vec![Holder::Device(r.device.clone())];
    if let Some(u) = directory
        .device(&r.device)
        .and_then(|d| d.licence_user().cloned())
    {
        holders.push(Holder::User(u));
    }
    holders
}

/// A request stays while it waits for a licence (waitlisted, or its user has not accepted
/// the invitation yet); it goes once its install was sent or it cannot be served.
fn still_waiting(r: &Request, plan: &Plan, directory: &Directory, sent: &[QueuedCommand]) -> bool {
    if sent_install(sent, &r.device, &r.adam_id) {
        return false;
    }
    let holders = request_holders(r, directory);
    let waitlisted = plan
        .waitlisted
        .iter()
        .any(|w| w.adam_id == r.adam_id && holders.contains(&w.holder));
    let awaiting = plan.blocked.iter().any(|b| {
        b.adam_id == r.adam_id
            && holders.contains(&b.holder)
            && matches!(
                b.reason,
                BlockReason::AwaitingInvitation { .. } | BlockReason::ReleaseInFlight { .. }
            )
    });
    waitlisted || awaiting
}

/// `apply --policies FILE --directory FILE`.
pub(crate) async fn apply(app: &App, policies: PolicySet, directory: Directory) -> Result<Applied> {
    let inputs = Inputs {
        policies,
        directory,
        applied_at: Utc::now(),
    };
    apply_inputs(app, &inputs, None).await
}

/// What became of a self-service request.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Requested {
    pub(crate) device: SerialNumber,
    pub(crate) adam_id: AdamId,
    /// `installing`, `waitlisted` or `waiting` (for the user's invitation).
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
/// Plans and applies with the last applied policies and directory.
pub(crate) async fn request_install(app: &App, holder: &str, adam: &str) -> Result<Requested> {
    let device = parse_device(holder)?;
    let adam_id = AdamId::new(adam).map_err(|e| ManagerError::usage(format!("APP: {e}")))?;
    let inputs = state::inputs(&app.store).await?.ok_or_else(|| {
        ManagerError::usage(
            "no policies applied yet: run `apply --policies FILE --directory FILE` first",
        )
    })?;
    let request = Request {
        device: device.clone(),
        adam_id: adam_id.clone(),
        asked_at: Utc::now(),
    };
    let applied = apply_inputs(app, &inputs, Some(&request)).await?;
    let holders = request_holders(&request, &inputs.directory);
    let plan = &applied.plan;
    let (outcome, explain) = if sent_install(&applied.commands, &device, &adam_id) {
        (
            "installing",
            format!("{device} gets {adam_id}: Apple confirmed the licence and the install command was handed to the MDM"),
        )
    } else if let Some(w) = plan
        .waitlisted
        .iter()
        .find(|w| w.adam_id == adam_id && holders.contains(&w.holder))
    {
        ("waitlisted", w.explain())
    } else if let Some(b) = plan
        .blocked
        .iter()
        .find(|b| b.adam_id == adam_id && holders.contains(&b.holder))
    {
        if !matches!(b.reason, BlockReason::AwaitingInvitation { .. }) {
            return Err(ManagerError::usage(b.explain()));
        }
        ("waiting", b.explain())
    } else {
        return Err(ManagerError::usage(format!(
            "nothing to do: {device} already has {adam_id} or no Available policy offers it"
        )));
    };
    Ok(Requested {
        device,
        adam_id,
        outcome: outcome.to_owned(),
        explain,
        applied,
    })
}
