//! Output, and the `token` and `sync` subcommands (`plan`, `apply` and `request-install`
//! are in `apply.rs`). Each returns a value that prints as JSON (`--json`) or as text.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;
use vppkit::core::{LocationId, Secret, TokenState};
use vppkit::engine::{AddToken, ClaimConsent, EngineError, ProgressReporter, SyncKind};

use super::app::App;
use super::error::{ManagerError, Result};
use super::report::state_words;
use super::table;

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
            Err(e) => super::status::error(&format!("cannot encode the output as JSON: {e}")),
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
    /// What to do next, when anything (another MDM holds the location).
    pub(crate) hint: Option<String>,
}

/// The command that takes location `id` over from another MDM with its token `file`
/// (`--name` when the file's name would give another location id).
fn claim_command(file: &str, id: &LocationId) -> String {
    let same_id = location_id_from_file(Path::new(file)).is_ok_and(|f| &f == id);
    let name = if same_id {
        String::new()
    } else {
        format!(" --name {id}")
    };
    format!("`manager token add {}{name} --claim`", shell_word(file))
}

/// A file path as one shell word (quoted when it needs to be).
fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '+' | ':' | '=')
        });
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

impl TokenAdded {
    pub(crate) fn text(&self) -> String {
        let mut s = format!(
            "{} ({}): token {}",
            self.location,
            self.name,
            state_words(self.token_state)
        );
        if self.claimed {
            s.push_str(", claimed for this manager");
        }
        if let Some(o) = &self.other_mdm {
            s.push_str(&format!(", held by another MDM ({o})"));
        }
        if let Some(h) = &self.hint {
            s.push_str(&format!(": {h}"));
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
    add_token(app, id, token, claim, &file.display().to_string()).await
}

/// Adds a token (or, with `claim`, takes over one already added and held elsewhere).
/// `file` names the token file in hints.
pub(crate) async fn add_token(
    app: &App,
    id: LocationId,
    token: Secret,
    claim: bool,
    file: &str,
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
        Ok(o) => Ok(TokenAdded {
            hint: (o.token_state == TokenState::ClaimedElsewhere).then(|| {
                format!(
                    "read-only here until you take it over with {}",
                    claim_command(file, &o.location)
                )
            }),
            location: o.location,
            name: o.name,
            uid: o.uid.map(|u| u.to_string()),
            token_state: o.token_state,
            claimed: o.claimed,
            other_mdm: o.other_mdm.map(|m| m.name),
            subscribed: o.subscribed,
            subscription_error: o.subscription_error,
        }),
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
                hint: None,
            })
        }
        Err(EngineError::LocationExists(_)) => Err(already_added(app, &id, file).await),
        Err(e) => Err(e.into()),
    }
}

/// The error for a `token add` of a location already added: what to do instead.
async fn already_added(app: &App, id: &LocationId, file: &str) -> ManagerError {
    let record = match app.store.location(id).await {
        Ok(r) => r,
        Err(e) => return e.into(),
    };
    let ours = &app.identity.mdm_id;
    let other = record
        .as_ref()
        .and_then(|r| r.mdm_info.as_ref())
        .filter(|m| &m.id != ours);
    let held_elsewhere = other.is_some()
        || record
            .as_ref()
            .is_some_and(|r| r.token_state == TokenState::ClaimedElsewhere);
    if held_elsewhere {
        let by = other.map(|m| format!(" ({})", m.name)).unwrap_or_default();
        ManagerError::ClaimedElsewhere(format!(
            "location {id} is already added and another MDM{by} holds it: take it over with {}",
            claim_command(file, id)
        ))
    } else {
        ManagerError::usage(format!(
            "location {id} is already added; `manager token renew {id} FILE` replaces its token, \
             `--name` adds the file as another location"
        ))
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
        .map(|r| {
            let token_state = app.engine.token_state_now(&r);
            TokenRow {
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
                token_state,
                expires_at: r.token_expires_at,
            }
        })
        .collect())
}

pub(crate) fn token_list_text(rows: &[TokenRow]) -> String {
    if rows.is_empty() {
        return "(no tokens: add one with `token add FILE`)\n".into();
    }
    table::render(
        &[
            "location",
            "name",
            "uId",
            "state",
            "expires",
            "claimed by",
            "notifications",
        ],
        &[],
        rows.iter().map(|r| {
            vec![
                r.location.to_string(),
                r.name.clone(),
                r.uid.clone().unwrap_or_default(),
                state_words(r.token_state),
                r.expires_at.format("%Y-%m-%d").to_string(),
                r.claimed_by.clone().unwrap_or_else(|| "nobody".into()),
                if r.notifications { "yes" } else { "no" }.to_owned(),
            ]
        }),
    )
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
    /// Records Apple sent that could not be read (left out, logged; no removal
    /// was concluded from the walks that skipped them).
    pub(crate) skipped_records: u64,
    pub(crate) error: Option<String>,
    /// Another MDM that this sync found holding the location (it was not before): the
    /// location is read-only from now on.
    pub(crate) claimed_by: Option<String>,
    /// What to do about it.
    pub(crate) hint: Option<String>,
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
    // Token states before, to tell a claim by another MDM this sync found.
    let before: std::collections::HashMap<LocationId, TokenState> = app
        .store
        .locations()
        .await?
        .into_iter()
        .map(|r| (r.id, r.token_state))
        .collect();
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
                skipped_records: o.skipped_records,
                error: o.error,
                claimed_by: None,
                hint: None,
            },
            Err(e) => SyncRow {
                location,
                succeeded: false,
                kind: None,
                assets: 0,
                assignments: 0,
                users: 0,
                skipped_records: 0,
                error: Some(e.to_string()),
                claimed_by: None,
                hint: None,
            },
        })
        .collect();
    let ours = &app.identity.mdm_id;
    for record in app.store.locations().await? {
        let newly_claimed = record.token_state == TokenState::ClaimedElsewhere
            && before.get(&record.id) != Some(&TokenState::ClaimedElsewhere);
        let Some(row) = rows.iter_mut().find(|r| r.location == record.id) else {
            continue;
        };
        if newly_claimed {
            let other = record.mdm_info.as_ref().filter(|m| &m.id != ours);
            row.claimed_by = Some(other.map_or_else(|| "name unknown".into(), |m| m.name.clone()));
            row.hint = Some(format!(
                "the location is read-only from now on; take it back with {}",
                claim_command("FILE.vpptoken", &record.id)
            ));
        }
    }
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
                r.kind.map(|k| k.as_str()).unwrap_or("no"),
                r.assets,
                r.assignments,
                r.users
            )),
            Some(e) => s.push_str(&format!("{}: FAILED: {e}\n", r.location)),
        }
        if r.skipped_records > 0 {
            s.push_str(&format!(
                "{}: {} records Apple sent could not be read: left out (see the log), and nothing was taken as removed\n",
                r.location, r.skipped_records
            ));
        }
        if let (Some(by), Some(hint)) = (&r.claimed_by, &r.hint) {
            s.push_str(&format!(
                "{}: now held by another MDM ({by}): {hint}\n",
                r.location
            ));
        }
    }
    if rows.is_empty() {
        s.push_str("(no tokens to sync)\n");
    }
    s
}

/// The error for the failed rows of a sync, if any (naming as well the locations it found
/// taken); else for the locations the sync found held by another MDM (exit status 4).
pub(crate) fn sync_failures(rows: &[SyncRow]) -> Result<()> {
    let failed: Vec<String> = rows
        .iter()
        .filter(|r| !r.succeeded)
        .map(|r| format!("{}: {}", r.location, r.error.clone().unwrap_or_default()))
        .collect();
    let taken: Vec<String> = rows
        .iter()
        .filter(|r| r.claimed_by.is_some())
        .map(|r| r.location.to_string())
        .collect();
    if !failed.is_empty() {
        let also = if taken.is_empty() {
            String::new()
        } else {
            format!(
                "; now held by another MDM: {} (`token add FILE --claim` takes it back)",
                taken.join(", ")
            )
        };
        return Err(ManagerError::usage(format!(
            "sync failed for {} of {} locations ({}){also}",
            failed.len(),
            rows.len(),
            failed.join("; ")
        )));
    }
    let claimed: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            let by = r.claimed_by.as_ref()?;
            Some(format!(
                "{} is now held by another MDM ({by}): {}",
                r.location,
                r.hint.clone().unwrap_or_default()
            ))
        })
        .collect();
    if claimed.is_empty() {
        Ok(())
    } else {
        Err(ManagerError::ClaimedElsewhere(claimed.join("; ")))
    }
}
