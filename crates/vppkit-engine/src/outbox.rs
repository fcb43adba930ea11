//! The MDM command outbox: every command the engine decides on is stored first,
//! one document per command, then handed to the [`CommandSink`](crate::CommandSink)
//! at least once, retried with backoff while the sink fails. The command's UUID
//! is fixed when it is stored, so the MDM can deduplicate on it, and results
//! come back by that UUID ([`Engine::command_result`]).
//!
//! A command is keyed by what it does (device, request type, app): while one
//! such command is queued or handed out, another identical one is not queued
//! again, and once the MDM has answered it, a re-plan does not queue it again
//! for the same desired-state revision before the cooldown
//! ([`EngineConfig::command_cooldown`](crate::EngineConfig::command_cooldown)).
//! A command that follows a licence Apple just confirmed is queued even when the same
//! command was answered within the cooldown, and even when it was handed out without an
//! answer yet if it followed another operation's licence (the licence was lost and
//! obtained again: the first install may have failed or been undone); while the same
//! command is queued or being handed out, or was handed out after the same operation (a
//! crash between hand-off and closing the operation), it is not queued again.
//!
//! Hand-off: a due command is claimed (status `sending`, revision-checked, so
//! two instances never hand out the same row at once), handed to the sink, then
//! marked `handed-out`. A crash between hand-off and mark hands it out again
//! after the claim expires, with the same UUID.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use vppkit_core::{LocationId, SerialNumber};
use vppkit_store::{Document, DocumentQuery, ErrorKind, NewDocument};

use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::sink::{CommandResult, QueuedCommand};

pub(crate) const OUTBOX: &str = "vppkit-engine/outbox";
/// Commands handed to the sink in one call at most.
const BATCH: u32 = 500;
/// Longest pause between two hand-off attempts of a command.
const MAX_BACKOFF_SECS: i64 = 300;

/// Where a command stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum CommandStatus {
    /// Stored, waiting to be handed to the sink (or to be retried).
    Queued,
    /// Being handed to the sink by an instance.
    Sending,
    /// The sink accepted it; no result yet.
    HandedOut,
    /// The device acknowledged it.
    Acknowledged,
    /// The device answered `NotNow`; the MDM sends it again.
    NotNow,
    /// The app or book is installed.
    Installed,
    /// The app or book was removed.
    Removed,
    /// The device refused it or it failed.
    Failed,
    /// The MDM gave up on it.
    Cancelled,
}

impl CommandStatus {
    const ALL: [(CommandStatus, &'static str); 9] = [
        (CommandStatus::Queued, "queued"),
        (CommandStatus::Sending, "sending"),
        (CommandStatus::HandedOut, "handed-out"),
        (CommandStatus::Acknowledged, "acknowledged"),
        (CommandStatus::NotNow, "not-now"),
        (CommandStatus::Installed, "installed"),
        (CommandStatus::Removed, "removed"),
        (CommandStatus::Failed, "failed"),
        (CommandStatus::Cancelled, "cancelled"),
    ];

    /// The stored word.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(s, _)| *s == self)
            .map_or("queued", |(_, w)| w)
    }

    fn parse(word: &str) -> Option<Self> {
        Self::ALL.iter().find(|(_, w)| *w == word).map(|(s, _)| *s)
    }

    /// Whether the MDM has not answered it yet (queued, sending or handed out).
    pub fn is_open(self) -> bool {
        matches!(
            self,
            CommandStatus::Queued | CommandStatus::Sending | CommandStatus::HandedOut
        )
    }

    fn of(result: &CommandResult) -> Self {
        match result {
            CommandResult::Acknowledged => CommandStatus::Acknowledged,
            CommandResult::NotNow => CommandStatus::NotNow,
            CommandResult::Installed => CommandStatus::Installed,
            CommandResult::Removed => CommandStatus::Removed,
            CommandResult::Failed(_) => CommandStatus::Failed,
            CommandResult::Cancelled => CommandStatus::Cancelled,
        }
    }
}

impl std::fmt::Display for CommandStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One command of the outbox, as [`Engine::outbox`] lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct OutboxEntry {
    /// The command, with its UUID and reference.
    pub command: QueuedCommand,
    /// Where it stands.
    pub status: CommandStatus,
    /// Hand-off attempts that failed.
    pub failed_attempts: u32,
    /// The last hand-off error, if any.
    pub last_error: Option<String>,
    /// When it was queued.
    pub queued_at: DateTime<Utc>,
    /// When the sink accepted it.
    pub handed_out_at: Option<DateTime<Utc>>,
    /// The desired-state revision whose plan asked for it (0: none).
    pub desired_revision: u64,
}

/// What the outbox holds, counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct OutboxSummary {
    /// Commands per status.
    pub by_status: BTreeMap<String, u64>,
    /// Commands per request type (`InstallApplication`, ...).
    pub by_type: BTreeMap<String, u64>,
    /// Every command stored.
    pub total: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    command: QueuedCommand,
    #[serde(default)]
    failed_attempts: u32,
    #[serde(default)]
    last_error: Option<String>,
    queued_at: DateTime<Utc>,
    #[serde(default)]
    handed_out_at: Option<DateTime<Utc>>,
    #[serde(default)]
    desired_revision: u64,
    #[serde(default)]
    result: Option<CommandResult>,
    /// The operation whose confirmed licence the command follows, if any.
    #[serde(default)]
    follows: Option<String>,
}

/// What queuing did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Queued {
    /// New commands stored.
    pub(crate) queued: usize,
    /// Commands left out because the same command is open or was just answered.
    pub(crate) deduplicated: usize,
}

/// What one hand-off round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DispatchReport {
    /// Commands the sink accepted.
    pub handed_out: usize,
    /// Commands the sink refused this time (retried later).
    pub retrying: usize,
}

/// The key of what a command does: one open command per key.
fn command_key(c: &QueuedCommand) -> String {
    let what = match c.command.adam_id() {
        Some(a) => a.as_str().to_owned(),
        None => c
            .reference
            .location
            .as_ref()
            .map_or_else(|| "-".to_owned(), |l| l.as_str().to_owned()),
    };
    format!(
        "{}/{}/{}",
        c.reference.device.as_str(),
        c.reference.request_type,
        what
    )
}

fn decode(doc: &Document) -> Result<(CommandStatus, Body)> {
    let status = CommandStatus::parse(&doc.status)
        .ok_or_else(|| EngineError::Corrupt(format!("outbox status {}", doc.status)))?;
    let body: Body = serde_json::from_value(doc.body.clone())
        .map_err(|e| EngineError::Corrupt(format!("outbox command {}: {e}", doc.key)))?;
    Ok((status, body))
}

fn encode(
    key: &str,
    status: CommandStatus,
    body: &Body,
    due_at: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
) -> NewDocument {
    let mut doc = NewDocument::new(
        OUTBOX,
        key,
        status.as_str(),
        serde_json::to_value(body).unwrap_or_default(),
        at,
    )
    .with_tag(body.command.reference.command_uuid.clone())
    .with_due_at(due_at);
    if let Some(l) = &body.command.reference.location {
        doc = doc.with_location(l.clone());
    }
    doc
}

fn entry(status: CommandStatus, body: Body) -> OutboxEntry {
    OutboxEntry {
        command: body.command,
        status,
        failed_attempts: body.failed_attempts,
        last_error: body.last_error,
        queued_at: body.queued_at,
        handed_out_at: body.handed_out_at,
        desired_revision: body.desired_revision,
    }
}

impl Engine {
    /// Stores commands in the outbox (see the module docs for when a command is
    /// left out as a duplicate). `follows_licence`: the commands follow a
    /// licence Apple just confirmed (or released), and are queued even when the
    /// same command was answered within the cooldown; `operation`: the operation
    /// that confirmed it, when one did.
    pub(crate) async fn enqueue(
        &self,
        commands: Vec<QueuedCommand>,
        follows_licence: bool,
        operation: Option<&str>,
    ) -> Result<Queued> {
        let mut out = Queued::default();
        if commands.is_empty() {
            return Ok(out);
        }
        let inner = &self.inner;
        let revision = self.desired_revision().await?;
        let cooldown = Duration::from_std(inner.config.command_cooldown)
            .unwrap_or_else(|_| Duration::hours(24));
        let now = inner.now();
        // One document per key: a second identical command in the batch is a duplicate.
        let mut docs: BTreeMap<String, (NewDocument, Body)> = BTreeMap::new();
        for command in commands {
            let key = command_key(&command);
            if docs.contains_key(&key) {
                out.deduplicated += 1;
                continue;
            }
            let body = Body {
                command,
                failed_attempts: 0,
                last_error: None,
                queued_at: now,
                handed_out_at: None,
                desired_revision: revision,
                result: None,
                follows: operation.map(str::to_owned),
            };
            let doc = encode(&key, CommandStatus::Queued, &body, Some(now), now);
            docs.insert(key, (doc, body));
        }
        // New keys (the common case) in one transaction; the others one by one.
        let fresh: Vec<NewDocument> = docs.values().map(|(d, _)| d.clone()).collect();
        let inserted = inner.store.insert_documents(&fresh).await?;
        out.queued += inserted.len();
        for key in &inserted {
            docs.remove(key);
        }
        for (key, (doc, body)) in docs {
            let Some(existing) = inner.store.document(OUTBOX, &key).await? else {
                // Deleted in between (pruned): the next pass queues it again.
                out.deduplicated += 1;
                continue;
            };
            let (status, old) = decode(&existing)?;
            let same = old.command.reference.command_uuid == body.command.reference.command_uuid;
            let recent = old.desired_revision == revision && now - existing.updated_at < cooldown;
            // Handed out before a licence that another operation confirmed since (the
            // licence was lost and obtained again): stale, a new one goes out.
            let stale = status == CommandStatus::HandedOut
                && body.follows.is_some()
                && body.follows != old.follows;
            let open = status.is_open() && !stale;
            if same || open || (!follows_licence && recent) {
                out.deduplicated += 1;
                continue;
            }
            match inner
                .store
                .put_document(&doc, Some(existing.revision))
                .await
            {
                Ok(_) => out.queued += 1,
                // Another writer queued or changed it first: theirs stands.
                Err(e) if matches!(e.kind(), ErrorKind::Conflict | ErrorKind::VersionMismatch) => {
                    out.deduplicated += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
        if out.queued > 0 {
            self.inner.wake_dispatcher();
        }
        Ok(out)
    }

    /// Hands every due command to the sink (of one location, or all), in
    /// batches; a batch the sink refuses is retried with backoff. Called after
    /// every apply and by the scheduler; safe to call from several instances.
    pub async fn dispatch_commands(&self, location: Option<&LocationId>) -> Result<DispatchReport> {
        self.dispatch(location, false).await
    }

    /// Hands out due commands; with `now_all`, every queued command whatever
    /// its backoff (on start: the sink may be back). Commands another instance
    /// is handing out right now are left to it until its claim expires.
    pub(crate) async fn dispatch(
        &self,
        location: Option<&LocationId>,
        now_all: bool,
    ) -> Result<DispatchReport> {
        let mut report = DispatchReport::default();
        loop {
            let round = self.dispatch_round(location, now_all).await?;
            report.handed_out += round.handed_out;
            report.retrying += round.retrying;
            if round.handed_out < BATCH as usize || round.retrying > 0 {
                return Ok(report);
            }
        }
    }

    async fn dispatch_round(
        &self,
        location: Option<&LocationId>,
        now_all: bool,
    ) -> Result<DispatchReport> {
        let inner = &self.inner;
        let now = inner.now();
        let scoped = |mut q: DocumentQuery| {
            if let Some(l) = location {
                q = q.location(l.clone());
            }
            q
        };
        let queued = DocumentQuery::new(OUTBOX, BATCH).status(CommandStatus::Queued.as_str());
        let queued = if now_all { queued } else { queued.due_by(now) };
        let mut due = inner.store.documents(&scoped(queued)).await?;
        if due.len() < BATCH as usize {
            // Claims that expired: their instance died while handing them out.
            let stale = DocumentQuery::new(OUTBOX, BATCH - due.len() as u32)
                .status(CommandStatus::Sending.as_str())
                .due_by(now);
            due.extend(inner.store.documents(&scoped(stale)).await?);
        }
        let claim_until = now + lease_ttl(inner);
        let mut claimed: Vec<(String, u64, Body)> = Vec::new();
        for doc in due {
            let (_, body) = decode(&doc)?;
            let claim = encode(
                &doc.key,
                CommandStatus::Sending,
                &body,
                Some(claim_until),
                now,
            );
            match inner.store.put_document(&claim, Some(doc.revision)).await {
                Ok(rev) => claimed.push((doc.key, rev, body)),
                Err(e) if matches!(e.kind(), ErrorKind::VersionMismatch | ErrorKind::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if claimed.is_empty() {
            return Ok(DispatchReport::default());
        }
        let batch: Vec<QueuedCommand> = claimed.iter().map(|(_, _, b)| b.command.clone()).collect();
        let sent = inner.sink.send(batch).await;
        let now = inner.now();
        let mut report = DispatchReport::default();
        for (key, rev, mut body) in claimed {
            let (status, due) = match &sent {
                Ok(()) => {
                    body.handed_out_at = Some(now);
                    body.last_error = None;
                    (CommandStatus::HandedOut, None)
                }
                Err(e) => {
                    body.failed_attempts += 1;
                    body.last_error = Some(e.message.clone());
                    let pause = (1i64 << body.failed_attempts.min(9)).min(MAX_BACKOFF_SECS);
                    (CommandStatus::Queued, Some(now + Duration::seconds(pause)))
                }
            };
            let doc = encode(&key, status, &body, due, now);
            match inner.store.put_document(&doc, Some(rev)).await {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::VersionMismatch => {}
                Err(e) => return Err(e.into()),
            }
            if sent.is_ok() {
                report.handed_out += 1;
                self.record_queued_install(&body.command).await?;
            } else {
                report.retrying += 1;
            }
        }
        if let Err(e) = sent {
            tracing::warn!(error = %e, retrying = report.retrying, "the MDM command sink failed; commands kept and retried");
        }
        Ok(report)
    }

    /// The install status "queued" of an install the sink accepted.
    async fn record_queued_install(&self, c: &QueuedCommand) -> Result<()> {
        let (Some(location), Some((asset, holder))) = (&c.reference.location, &c.reference.licence)
        else {
            return Ok(());
        };
        if !c.reference.request_type.starts_with("Install") {
            return Ok(());
        }
        let record = vppkit_store::InstallRecord::new(
            location.clone(),
            holder.clone(),
            asset.clone(),
            vppkit_store::InstallState::Queued,
            self.inner.now(),
        )
        .with_command(c.reference.command_uuid.clone());
        match self.inner.store.put_install_status(&record).await {
            Ok(()) => Ok(()),
            // The location was removed meanwhile.
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The stored command with this UUID.
    pub async fn command(&self, command_uuid: &str) -> Result<Option<OutboxEntry>> {
        Ok(self
            .command_doc(command_uuid)
            .await?
            .map(|(_, status, body)| entry(status, body)))
    }

    async fn command_doc(&self, uuid: &str) -> Result<Option<(Document, CommandStatus, Body)>> {
        let q = DocumentQuery::new(OUTBOX, 2).tag(uuid);
        let Some(doc) = self.inner.store.documents(&q).await?.into_iter().next() else {
            return Ok(None);
        };
        let (status, body) = decode(&doc)?;
        Ok(Some((doc, status, body)))
    }

    /// Records the MDM's answer on a stored command; returns the command.
    pub(crate) async fn record_command_result(
        &self,
        command_uuid: &str,
        result: &CommandResult,
    ) -> Result<QueuedCommand> {
        for _ in 0..5 {
            let Some((doc, _, mut body)) = self.command_doc(command_uuid).await? else {
                return Err(EngineError::UnknownCommand(command_uuid.to_owned()));
            };
            body.result = Some(result.clone());
            let now = self.inner.now();
            let new = encode(&doc.key, CommandStatus::of(result), &body, None, now);
            match self
                .inner
                .store
                .put_document(&new, Some(doc.revision))
                .await
            {
                Ok(_) => return Ok(body.command),
                Err(e) if e.kind() == ErrorKind::VersionMismatch => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(EngineError::Conflict(format!(
            "command {command_uuid} kept changing"
        )))
    }

    /// The outbox's commands, oldest key first: of one device, or all, at most `limit`.
    pub async fn outbox(
        &self,
        device: Option<&SerialNumber>,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>> {
        let mut q = DocumentQuery::new(OUTBOX, limit.max(1));
        if let Some(d) = device {
            q = q.key_prefix(format!("{}/", d.as_str()));
        }
        let mut out = Vec::new();
        for doc in self.inner.store.documents(&q).await? {
            let (status, body) = decode(&doc)?;
            out.push(entry(status, body));
        }
        Ok(out)
    }

    /// Every command of the outbox, counted by status and by request type.
    pub async fn outbox_summary(&self) -> Result<OutboxSummary> {
        let mut s = OutboxSummary::default();
        let docs = self
            .inner
            .store
            .all_documents(&DocumentQuery::new(OUTBOX, 1000))
            .await?;
        for doc in docs {
            let (status, body) = decode(&doc)?;
            s.total += 1;
            *s.by_status.entry(status.as_str().to_owned()).or_default() += 1;
            *s.by_type
                .entry(body.command.reference.request_type.clone())
                .or_default() += 1;
        }
        Ok(s)
    }

    /// Forgets answered commands last changed before `before`; returns how many.
    pub(crate) async fn prune_outbox(&self, before: DateTime<Utc>) -> Result<u64> {
        let answered = [
            CommandStatus::Acknowledged.as_str(),
            CommandStatus::NotNow.as_str(),
            CommandStatus::Installed.as_str(),
            CommandStatus::Removed.as_str(),
            CommandStatus::Failed.as_str(),
            CommandStatus::Cancelled.as_str(),
            CommandStatus::HandedOut.as_str(),
        ];
        Ok(self
            .inner
            .store
            .prune_documents(OUTBOX, &answered, before)
            .await?)
    }
}

fn lease_ttl(inner: &crate::engine::Inner) -> Duration {
    Duration::from_std(inner.config.lease_duration).unwrap_or_else(|_| Duration::minutes(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip() {
        for (s, w) in CommandStatus::ALL {
            assert_eq!(CommandStatus::parse(w), Some(s));
            assert_eq!(s.as_str(), w);
        }
        assert!(CommandStatus::HandedOut.is_open());
        assert!(!CommandStatus::Installed.is_open());
    }
}
