//! One function per subcommand. Each returns a value that prints as JSON (`--json`) or
//! as text.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;
use vppkit::core::{AdamId, Holder, LocationId, Secret, SerialNumber, TokenState};
use vppkit::engine::{
    AddToken, ClaimConsent, EngineError, ProgressReporter, QueuedCommand, SyncKind,
};
use vppkit::rules::{BlockReason, Directory, Plan, PlanContext, PolicySet};

use super::app::App;
use super::error::{ManagerError, Result};
use super::loopback;
use super::state::{self, Inputs, PlanNotes, Request};

/// Writes to stdout; a closed pipe (`manager report | head`) is not an error.
pub(crate) fn out(text: &str) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
}

/// Prints a value as pretty JSON, or its text form.
pub(crate) fn emit<T: Serialize>(json: bool, value: &T, text: impl FnOnce(&T) -> String) {
    if json {
        match serde_json::to_string_pretty(value) {
            Ok(s) => out(&(s + "\n")),
            Err(e) => eprintln!("error: cannot encode the output as JSON: {e}"),
        }
    } else {
        out(&text(value));
    }
}

// ---------------------------------------------------------------- tokens

/// What `token add` did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TokenAdded {
    pub(crate) location: LocationId,
    pub(crate) name: String,
    pub(crate) uid: Option<String>,
    pub(crate) token_state: TokenState,
    pub(crate) claimed: bool,
    pub(crate) other_mdm: Option<String>,
    pub(crate) subscribed: bool,
    pub(crate) subscription_error: Option<String>,
}

impl TokenAdded {
    pub(crate) fn text(&self) -> String {
        let mut s = format!(
            "{} ({}): token {}",
            self.location, self.name, self.token_state
        );
        if self.claimed {
            s.push_str(", claimed for this manager");
        }
        if let Some(o) = &self.other_mdm {
            s.push_str(&format!(
                ", held by another MDM ({o}): read-only until `token add FILE --claim`"
            ));
        }
        if self.subscribed {
            s.push_str(", notifications subscribed");
        }
        if let Some(e) = &self.subscription_error {
            s.push_str(&format!(", notifications not subscribed ({e})"));
        }
        s + "\n"
    }
}

/// A location id from a token file name: `Springfield High.vpptoken` -> `springfield-high`.
pub(crate) fn location_id_from_file(path: &Path) -> Result<LocationId> {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let mut id = String::new();
    for c in stem.chars() {
        let c = if c.is_ascii_alphanumeric() || matches!(c, '_' | '.') {
            c
        } else {
            '-'
        };
        if !(c == '-' && (id.is_empty() || id.ends_with('-'))) {
            id.push(c);
        }
    }
    let id: String = id.trim_end_matches('-').chars().take(64).collect();
    LocationId::new(if id.is_empty() { "location".into() } else { id })
        .map_err(|e| ManagerError::usage(format!("--name is needed: {e}")))
}

fn read_token(path: &Path) -> Result<Secret> {
    let text = std::fs::read_to_string(path).map_err(|e| ManagerError::file(path, e))?;
    Ok(Secret::new(text.trim()))
}

/// `token add FILE [--name NAME] [--claim]`.
pub(crate) async fn token_add(
    app: &App,
    file: &Path,
    name: Option<String>,
    claim: bool,
) -> Result<TokenAdded> {
    let token = read_token(file)?;
    let id = match name {
        Some(n) => LocationId::new(n).map_err(|e| ManagerError::usage(format!("--name: {e}")))?,
        None => location_id_from_file(file)?,
    };
    add_token(app, id, token, claim).await
}

/// Adds a token (or, with `claim`, takes over one already added and held elsewhere).
pub(crate) async fn add_token(
    app: &App,
    id: LocationId,
    token: Secret,
    claim: bool,
) -> Result<TokenAdded> {
    let consent = if claim {
        ClaimConsent::TakeOver
    } else {
        ClaimConsent::OnlyIfUnclaimed
    };
    match app
        .engine
        .add_token(AddToken::new(id.clone(), token).consent(consent))
        .await
    {
        Ok(o) => {
            let mut added = TokenAdded {
                location: o.location,
                name: o.name,
                uid: o.uid.map(|u| u.to_string()),
                token_state: o.token_state,
                claimed: o.claimed,
                other_mdm: o.other_mdm.map(|m| m.name),
                subscribed: o.subscribed,
                subscription_error: o.subscription_error,
            };
            subscribe_loopback(app, &mut added).await;
            Ok(added)
        }
        Err(EngineError::LocationExists(_)) if claim => {
            let state = app.engine.claim(&id, ClaimConsent::TakeOver).await?;
            let record = app.store.location(&id).await?;
            Ok(TokenAdded {
                location: id,
                name: record.as_ref().map(|r| r.name.clone()).unwrap_or_default(),
                uid: record
                    .as_ref()
                    .and_then(|r| r.uid.as_ref().map(|u| u.to_string())),
                token_state: state,
                claimed: true,
                other_mdm: None,
                subscribed: record.is_some_and(|r| r.notification.is_some()),
                subscription_error: None,
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// A plain-http loopback webhook (the simulator) is subscribed by the manager itself:
/// see `loopback.rs`.
async fn subscribe_loopback(app: &App, added: &mut TokenAdded) {
    let Some(url) = &app.options.webhook_url else {
        return;
    };
    if added.subscribed || !added.token_state.allows_writes() || !loopback::needed(url) {
        return;
    }
    match loopback::subscribe(app, &app.options.apple_url, &added.location, url).await {
        Ok(()) => {
            added.subscribed = true;
            added.subscription_error = None;
        }
        Err(e) => added.subscription_error = Some(e.one_line()),
    }
}

/// One row of `token list`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TokenRow {
    pub(crate) location: LocationId,
    pub(crate) name: String,
    pub(crate) uid: Option<String>,
    pub(crate) token_state: TokenState,
    pub(crate) expires_at: DateTime<Utc>,
    pub(crate) claimed_by: Option<String>,
    pub(crate) notifications: bool,
}

/// `token list`.
pub(crate) async fn token_list(app: &App) -> Result<Vec<TokenRow>> {
    let ours = &app.identity.mdm_id;
    Ok(app
        .store
        .locations()
        .await?
        .into_iter()
        .map(|r| TokenRow {
            claimed_by: r.mdm_info.as_ref().map(|m| {
                if &m.id == ours {
                    "this manager".to_owned()
                } else {
                    m.name.clone()
                }
            }),
            notifications: r.notification.is_some(),
            location: r.id,
            name: r.name,
            uid: r.uid.map(|u| u.to_string()),
            token_state: r.token_state,
            expires_at: r.token_expires_at,
        })
        .collect())
}

pub(crate) fn token_list_text(rows: &Vec<TokenRow>) -> String {
    let mut s = format!(
        "{:<28} {:<28} {:<18} {:<18} {:<12} {:<16} notifications\n",
        "location", "name", "uId", "state", "expires", "claimed by"
    );
    for r in rows {
        s.push_str(&format!(
            "{:<28} {:<28} {:<18} {:<18} {:<12} {:<16} {}\n",
            r.location.to_string(),
            r.name,
            r.uid.clone().unwrap_or_default(),
            r.token_state.to_string(),
            r.expires_at.format("%Y-%m-%d").to_string(),
            r.claimed_by.clone().unwrap_or_else(|| "nobody".into()),
            if r.notifications { "yes" } else { "no" }
        ));
    }
    if rows.is_empty() {
        s.push_str("(no tokens: add one with `token add FILE`)\n");
    }
    s
}

fn location_arg(id: &str) -> Result<LocationId> {
    LocationId::new(id).map_err(|e| ManagerError::usage(format!("location: {e}")))
}

/// `token renew ID FILE`.
pub(crate) async fn token_renew(app: &App, id: &str, file: &Path) -> Result<TokenState> {
    let token = read_token(file)?;
    Ok(app.engine.renew_token(&location_arg(id)?, token).await?)
}

/// `token remove ID [--revoke]`.
pub(crate) async fn token_remove(app: &App, id: &str, revoke: bool) -> Result<()> {
    Ok(app
        .engine
        .remove_location(&location_arg(id)?, revoke)
        .await?)
}

// ---------------------------------------------------------------- sync

/// One location's sync result.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SyncRow {
    pub(crate) location: LocationId,
    pub(crate) succeeded: bool,
    pub(crate) kind: Option<SyncKind>,
    pub(crate) assets: u64,
    pub(crate) assignments: u64,
    pub(crate) users: u64,
    pub(crate) error: Option<String>,
}

/// `sync [LOCATION] [--full]`. Fails when any location failed, after syncing the others.
pub(crate) async fn sync(
    app: &App,
    location: Option<&str>,
    full: bool,
    progress: &ProgressReporter,
) -> Result<Vec<SyncRow>> {
    let kind = if full {
        SyncKind::Full
    } else {
        SyncKind::Incremental
    };
    let results = match location {
        Some(id) => {
            let id = location_arg(id)?;
            let r = app.engine.sync(&id, kind, progress).await?;
            vec![(id, Ok(r))]
        }
        None => app.engine.sync_all(kind, progress).await?,
    };
    let mut rows: Vec<SyncRow> = results
        .into_iter()
        .map(|(location, r)| match r {
            Ok(o) => SyncRow {
                location,
                succeeded: o.succeeded(),
                kind: Some(o.kind),
                assets: o.assets,
                assignments: o.assignments,
                users: o.users,
                error: o.error,
            },
            Err(e) => SyncRow {
                location,
                succeeded: false,
                kind: None,
                assets: 0,
                assignments: 0,
                users: 0,
                error: Some(e.to_string()),
            },
        })
        .collect();
    rows.sort_by(|a, b| a.location.cmp(&b.location));
    Ok(rows)
}

/// The sync rows as text.
pub(crate) fn sync_text(rows: &Vec<SyncRow>) -> String {
    let mut s = String::new();
    for r in rows {
        match &r.error {
            None => s.push_str(&format!(
                "{}: {} sync, {} assets, {} assignments, {} users\n",
                r.location,
                r.kind
                    .map(|k| format!("{k:?}").to_lowercase())
                    .unwrap_or_default(),
                r.assets,
                r.assignments,
                r.users
            )),
            Some(e) => s.push_str(&format!("{}: FAILED: {e}\n", r.location)),
        }
    }
    if rows.is_empty() {
        s.push_str("(no tokens to sync)\n");
    }
    s
}

/// The error for the failed rows of a sync, if any.
pub(crate) fn sync_failures(rows: &[SyncRow]) -> Result<()> {
    let failed: Vec<String> = rows
        .iter()
        .filter(|r| !r.succeeded)
        .map(|r| format!("{}: {}", r.location, r.error.clone().unwrap_or_default()))
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(ManagerError::usage(format!(
            "sync failed for {} of {} locations ({})",
            failed.len(),
            rows.len(),
            failed.join("; ")
        )))
    }
}

// ---------------------------------------------------------------- plan and apply

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
