//! The report: per location and app (Apple's total and retired, owned, used, reserved,
//! free), each app summed across locations, waitlists, blocked items with reasons, token
//! states and expiry; as JSON (`--json`) or text tables.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::Serialize;
use vppkit::core::{AdamId, ProductType, TokenState};
use vppkit::engine::{
    app_totals, AppReport, AppTotal, LocationReport, OutboxSummary, PlanItems, ReportOptions,
    StoredRequest,
};
use vppkit::rules::{Blocked, PendingRelease, PolicyViolation, Waitlisted};

use super::app::App;
use super::error::Result;
use super::table;
use super::webhook::NotificationCounts;

/// Everything the manager knows, in one document.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ManagerReport {
    pub(crate) generated_at: DateTime<Utc>,
    /// This manager's `mdmInfo.id`.
    pub(crate) mdm_id: String,
    /// Per location: token, last sync, and per app the counts, waitlist and blocked items.
    pub(crate) locations: Vec<LocationReport>,
    /// Each app summed across the locations that hold it (the same app bought under
    /// several content tokens is listed once per location above, and once here).
    pub(crate) app_totals: Vec<AppTotal>,
    /// What the last applied plan said, whole (also the items tied to no location).
    pub(crate) last_plan: LastPlan,
    /// The desired-state revision the engine converges to (0: none stored yet).
    pub(crate) desired_revision: u64,
    /// Self-service requests still waiting for a licence.
    pub(crate) pending_requests: Vec<StoredRequest>,
    /// MDM commands in the engine's outbox, by request type.
    pub(crate) commands_sent: BTreeMap<String, u64>,
    /// MDM commands in the engine's outbox, by type and by status.
    pub(crate) outbox: OutboxSummary,
    /// Notifications the webhook received (only when this process ran it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) notifications: Option<NotificationCounts>,
}

/// What the last applied plan said, whole: the engine's waitlists and blocked items (per
/// location and those tied to no location, each once) and the manager's notes.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LastPlan {
    pub(crate) planned_at: Option<DateTime<Utc>>,
    pub(crate) waitlisted: Vec<Waitlisted>,
    pub(crate) blocked: Vec<Blocked>,
    pub(crate) invalid_policies: Vec<PolicyViolation>,
    pub(crate) pending_releases: Vec<PendingRelease>,
}

impl LastPlan {
    fn collect(
        locations: &[LocationReport],
        unplaced: PlanItems,
        pending_releases: Vec<PendingRelease>,
    ) -> Self {
        let mut waitlisted = unplaced.waitlisted;
        let mut blocked = unplaced.blocked;
        for app in locations.iter().flat_map(|l| &l.apps) {
            for w in &app.waitlist {
                if !waitlisted.contains(w) {
                    waitlisted.push(w.clone());
                }
            }
            for b in &app.blocked {
                if !blocked.contains(b) {
                    blocked.push(b.clone());
                }
            }
        }
        Self {
            planned_at: unplaced.planned_at,
            waitlisted,
            blocked,
            invalid_policies: unplaced.invalid_policies,
            pending_releases,
        }
    }
}

/// Builds the report from the engine's reports and the manager's stored notes.
pub(crate) async fn build(app: &App) -> Result<ManagerReport> {
    let locations = app.engine.reports(ReportOptions::summary()).await?;
    let unplaced = app.engine.unplaced_plan_items().await?;
    let pending_releases = app.engine.pending_releases().await?;
    let last_plan = LastPlan::collect(&locations, unplaced, pending_releases);
    let outbox = app.engine.outbox_summary().await?;
    Ok(ManagerReport {
        generated_at: Utc::now(),
        mdm_id: app.identity.mdm_id.clone(),
        app_totals: app_totals(&locations),
        locations,
        desired_revision: app.engine.desired_revision().await?,
        pending_requests: app.engine.install_requests().await?,
        commands_sent: outbox.by_type.clone(),
        outbox,
        last_plan,
        notifications: None,
    })
}

fn app_names(report: &ManagerReport) -> BTreeMap<AdamId, String> {
    report
        .locations
        .iter()
        .flat_map(|l| &l.apps)
        .filter_map(|a| Some((a.asset.adam_id.clone(), a.name.clone()?)))
        .collect()
}

fn count(unlimited: bool, n: u64) -> String {
    if unlimited {
        "unlimited".into()
    } else {
        n.to_string()
    }
}

fn kind(p: ProductType) -> &'static str {
    if p == ProductType::Book {
        "book"
    } else {
        "app"
    }
}

/// A token state in words (`claimed elsewhere`, not `claimed_elsewhere`).
pub(crate) fn state_words(state: TokenState) -> String {
    state.to_string().replace('_', " ")
}

/// The days-left cell: a number while the token can be used, else why not.
fn days_left(l: &LocationReport) -> String {
    match (l.token_days_left, l.token_state) {
        (Some(d), _) => d.to_string(),
        (None, TokenState::Expired) => "expired".into(),
        (None, _) => "unusable".into(),
    }
}

/// The last-sync cell: when (date and time, UTC) and how.
fn last_sync(l: &LocationReport) -> String {
    match &l.last_sync {
        Some(s) if s.succeeded => format!("ok {}", s.at.format("%Y-%m-%d %H:%M:%S UTC")),
        Some(s) => format!(
            "FAILED {}: {}",
            s.at.format("%Y-%m-%d %H:%M:%S UTC"),
            s.message.clone().unwrap_or_default()
        ),
        None => "never".into(),
    }
}

fn location_title(l: &LocationReport) -> String {
    let mut t = format!("{} ({})", l.name, l.location);
    if let Some(uid) = &l.uid {
        let _ = write!(t, "  uId {uid}");
    }
    if let Some(a) = l.account_type {
        let _ = write!(t, "  {a}");
    }
    if let Some(c) = &l.country {
        let _ = write!(t, " {c}");
    }
    t
}

/// Columns of the app tables right-aligned from this one on (the counts).
const APP_HEADER: [&str; 12] = [
    "adamId", "name", "price", "type", "total", "retired", "owned", "used", "reserved", "free",
    "waiting", "blocked",
];

fn app_row(a: &AppReport) -> Vec<String> {
    vec![
        a.asset.adam_id.to_string(),
        a.name.clone().unwrap_or_default(),
        a.asset.pricing_param.to_string(),
        kind(a.product_type).into(),
        count(a.unlimited, a.total),
        a.retired.to_string(),
        count(a.unlimited, a.owned),
        a.used.to_string(),
        (a.reserved + a.releasing).to_string(),
        count(a.unlimited, a.free),
        a.waitlist.len().to_string(),
        a.blocked.len().to_string(),
    ]
}

fn total_row(t: &AppTotal) -> Vec<String> {
    vec![
        t.asset.adam_id.to_string(),
        t.name.clone().unwrap_or_default(),
        t.asset.pricing_param.to_string(),
        kind(t.product_type).into(),
        t.locations.len().to_string(),
        count(t.unlimited, t.total),
        t.retired.to_string(),
        count(t.unlimited, t.owned),
        t.used.to_string(),
        (t.reserved + t.releasing).to_string(),
        count(t.unlimited, t.free),
        t.waiting.to_string(),
        t.blocked.to_string(),
    ]
}

/// The report as text tables.
pub(crate) fn render(report: &ManagerReport) -> String {
    let mut out = String::new();
    let names = app_names(report);
    let name_of = |a: &AdamId| names.get(a).cloned().unwrap_or_default();
    let _ = writeln!(out, "TOKENS");
    out.push_str(&table::render(
        &[
            "location",
            "state",
            "expires",
            "days left",
            "writes",
            "last sync",
        ],
        &[3],
        report.locations.iter().map(|l| {
            vec![
                l.location.to_string(),
                state_words(l.token_state),
                l.token_expires_at.format("%Y-%m-%d").to_string(),
                days_left(l),
                if l.writes_allowed { "yes" } else { "no" }.to_owned(),
                last_sync(l),
            ]
        }),
    ));
    for l in &report.locations {
        let _ = writeln!(out, "\n{}", location_title(l));
        let _ = writeln!(
            out,
            "  users: {} created by this manager, {} by others; operations in flight: {}",
            l.own_users, l.foreign_users, l.operations_in_flight
        );
        out.push_str(&table::render(
            &APP_HEADER,
            &[4, 5, 6, 7, 8, 9, 10, 11],
            l.apps.iter().map(app_row),
        ));
    }
    let _ = writeln!(
        out,
        "\nAPPS ACROSS LOCATIONS (each app summed over the tokens that hold it)"
    );
    if report.app_totals.is_empty() {
        let _ = writeln!(out, "  no apps yet");
    } else {
        let mut header: Vec<&str> = APP_HEADER[..4].to_vec();
        header.push("locations");
        header.extend_from_slice(&APP_HEADER[4..]);
        out.push_str(&table::render(
            &header,
            &[4, 5, 6, 7, 8, 9, 10, 11, 12],
            report.app_totals.iter().map(total_row),
        ));
    }
    let notes = &report.last_plan;
    let _ = writeln!(out, "\nWAITLISTS");
    let mut by_app: BTreeMap<&AdamId, Vec<_>> = BTreeMap::new();
    for w in &notes.waitlisted {
        by_app.entry(&w.adam_id).or_default().push(w);
    }
    if by_app.is_empty() {
        let _ = writeln!(out, "  nobody is waiting for a licence");
    }
    for (adam, mut list) in by_app {
        list.sort_by_key(|w| w.position);
        let _ = writeln!(out, "  {adam} {}: {} waiting", name_of(adam), list.len());
        for w in list.iter().take(10) {
            let _ = writeln!(
                out,
                "    {:>3}. {} (policy {}, {})",
                w.position, w.holder, w.policy, w.intent
            );
        }
        if list.len() > 10 {
            let _ = writeln!(out, "    ... and {} more", list.len() - 10);
        }
    }
    let _ = writeln!(out, "\nBLOCKED");
    if notes.blocked.is_empty() && notes.invalid_policies.is_empty() {
        let _ = writeln!(out, "  nothing is blocked");
    }
    for b in notes.blocked.iter().take(25) {
        let _ = writeln!(out, "  - {}", b.explain());
    }
    if notes.blocked.len() > 25 {
        let _ = writeln!(out, "  ... and {} more", notes.blocked.len() - 25);
    }
    for p in &notes.invalid_policies {
        let _ = writeln!(out, "  - {}", p.explain());
    }
    if !notes.pending_releases.is_empty() {
        let _ = writeln!(out, "\nRELEASES IN THEIR GRACE PERIOD");
        for p in notes.pending_releases.iter().take(10) {
            let _ = writeln!(out, "  - {}", p.explain());
        }
    }
    let _ = writeln!(out, "\nSELF-SERVICE REQUESTS");
    if report.pending_requests.is_empty() {
        let _ = writeln!(out, "  none pending");
    }
    for r in &report.pending_requests {
        let _ = writeln!(
            out,
            "  {} asked for {} {} at {}",
            r.device,
            r.adam_id,
            name_of(&r.adam_id),
            r.asked_at.format("%Y-%m-%d %H:%M:%S")
        );
    }
    let _ = writeln!(
        out,
        "\nMDM COMMANDS (engine outbox, desired state revision {})",
        report.desired_revision
    );
    if report.commands_sent.is_empty() {
        let _ = writeln!(out, "  none yet");
    }
    if !report.commands_sent.is_empty() {
        out.push_str(&table::render(
            &["request type", "commands"],
            &[1],
            report
                .commands_sent
                .iter()
                .map(|(kind, n)| vec![kind.clone(), n.to_string()]),
        ));
    }
    if !report.outbox.by_status.is_empty() {
        let statuses: Vec<String> = report
            .outbox
            .by_status
            .iter()
            .map(|(s, n)| format!("{n} {s}"))
            .collect();
        let _ = writeln!(out, "  by status: {}", statuses.join(", "));
    }
    if let Some(n) = &report.notifications {
        let _ = writeln!(
            out,
            "\nNOTIFICATIONS RECEIVED\n  applied {}, duplicates {}, test {}, ignored {}, deferred {}, refused {}",
            n.applied, n.duplicate, n.test, n.ignored, n.deferred, n.refused
        );
    }
    out
}
