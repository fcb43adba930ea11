//! Apply, step 3: commands out to the outbox once their licence is there;
//! what became of them back from the MDM.

use vppkit_core::{AssetKey, Holder, HoldingStatus, LocationId};
use vppkit_rules::{DeviceCommand, MdmCommand, Precondition};
use vppkit_store::{InstallRecord, InstallState};

use crate::book::INSTALL_KIND;
use crate::engine::{Engine, LocationGuard};
use crate::error::Result;
use crate::sink::{CommandResult, QueuedCommand, RejectionReason};

use super::*;

impl Engine {
    /// Commands that can go now: no precondition, or a licence already confirmed.
    pub(crate) fn commands_ready_now(
        &self,
        guard: &mut LocationGuard,
        pending: &mut Vec<DeviceCommand>,
    ) -> Vec<QueuedCommand> {
        let location = guard.id();
        let mut out = Vec::new();
        pending.retain(|c| match &c.after {
            Precondition::Associated {
                location: l,
                asset,
                holder,
            } if *l == location => {
                let held = guard.book().ledger.holding(asset, holder);
                if matches!(
                    held,
                    Some(HoldingStatus::Active) | Some(HoldingStatus::Adopted)
                ) {
                    out.push(queued(c, &location, Some((asset.clone(), holder.clone()))));
                    false
                } else {
                    true
                }
            }
            Precondition::Associated { .. } => true,
            _ => {
                out.push(queued(c, &location, None));
                false
            }
        });
        out
    }

    /// Queues the commands of licences Apple confirmed (or released) in the
    /// outbox, which hands them to the sink; `operation`: the operation that
    /// confirmed them, when one just did. Returns how many were queued.
    pub(crate) async fn deliver(
        &self,
        _guard: &mut LocationGuard,
        cmds: Vec<QueuedCommand>,
        operation: Option<&str>,
    ) -> Result<usize> {
        Ok(self.enqueue(cmds, true, operation).await?.queued)
    }

    /// Records what became of an MDM command: feeds the install status in the
    /// report and, for an install that was abandoned (cancelled, or failed for a
    /// reason that will not go away), releases the device's licence.
    ///
    /// The command is found by its UUID (the `CommandUUID` the MDM sent it
    /// with, [`CommandRef::command_uuid`](crate::CommandRef::command_uuid)); an
    /// unknown UUID is [`EngineError::UnknownCommand`](crate::EngineError::UnknownCommand).
    pub async fn command_result(&self, command_uuid: &str, result: CommandResult) -> Result<()> {
        let inner = &self.inner;
        let queued = self.record_command_result(command_uuid, &result).await?;
        let command = &queued.reference;
        let (Some(location), Some((asset, holder))) = (&command.location, &command.licence) else {
            return Ok(());
        };
        let now = inner.now();
        let (state, detail) = match &result {
            CommandResult::Acknowledged => (InstallState::Acknowledged, None),
            CommandResult::NotNow => (InstallState::NotNow, None),
            CommandResult::Installed => (InstallState::Installed, None),
            CommandResult::Removed => (InstallState::Removed, None),
            CommandResult::Failed(r) => (
                InstallState::Failed,
                Some(serde_json::json!({ "reason": r.as_str() })),
            ),
            CommandResult::Cancelled => (
                InstallState::Failed,
                Some(serde_json::json!({ "reason": "Cancelled" })),
            ),
        };
        let mut record =
            InstallRecord::new(location.clone(), holder.clone(), asset.clone(), state, now)
                .with_command(command.command_uuid.clone());
        if let Some(d) = detail.clone() {
            record = record.with_detail(d);
        }
        inner.store.put_install_status(&record).await?;
        let body = serde_json::json!({
            "command": command.command_uuid,
            "requestType": command.request_type,
            "state": state.to_string(),
            "detail": detail,
        });
        inner
            .store
            .append_journal(
                location,
                &[
                    vppkit_store::NewJournalRecord::new(now, "mdm", INSTALL_KIND, body)
                        .with_asset(asset.clone())
                        .with_holder(holder.clone()),
                ],
            )
            .await?;
        let abandoned = command.request_type == "InstallApplication"
            && match &result {
                CommandResult::Cancelled => true,
                CommandResult::Failed(r) => {
                    !r.is_transient() && *r != RejectionReason::AppAlreadyInstalled
                }
                _ => false,
            };
        if abandoned && holder.is_device() {
            self.release_abandoned(location, asset, holder).await?;
        }
        Ok(())
    }

    /// Releases the licence of an install that will not happen.
    pub(crate) async fn release_abandoned(
        &self,
        location: &LocationId,
        asset: &AssetKey,
        holder: &Holder,
    ) -> Result<()> {
        let mut guard = self.lock_waiting(location).await?;
        let result = async {
            self.inner.check_writes(&guard.record)?;
            if guard.book().ledger.holding(asset, holder) != Some(HoldingStatus::Active) {
                return Ok(());
            }
            let revocable = guard
                .book()
                .ledger
                .asset_view(asset)
                .is_some_and(|v| v.revocable);
            if !revocable {
                return Ok(());
            }
            let mut none = Vec::new();
            self.submit_disassociate(
                &mut guard,
                vec![(asset.clone(), holder.clone())],
                "install abandoned",
                &mut none,
            )
            .await?;
            Ok(())
        }
        .await;
        guard.release(&self.inner).await;
        result
    }

    /// Takes back every revocable licence this manager holds in a location (the
    /// ones it made: its devices' and its own users'), waiting for Apple. Each
    /// licence is disassociated rather than revoked wholesale, so licences found
    /// at Apple (another MDM's, a person's) on the same devices are left alone.
    pub(crate) async fn revoke_everything(&self, location: &LocationId) -> Result<()> {
        let mut guard = self.lock_waiting(location).await?;
        self.inner.check_writes(&guard.record)?;
        let own: Vec<(AssetKey, Holder)> = guard
            .book()
            .ledger
            .holdings()
            .filter(|(_, _, s)| *s == HoldingStatus::Active)
            .map(|(a, h, _)| (a.clone(), h.clone()))
            .collect();
        let mut none = Vec::new();
        let (ops, _) = self
            .submit_disassociate(&mut guard, own, "location removed", &mut none)
            .await?;
        let mut report = LocationApplyReport::default();
        if let Some(g) = self.settle_locked(guard, &ops, &mut report).await? {
            g.release(&self.inner).await;
        }
        Ok(())
    }
}

/// Whether a command removes this asset.
pub(crate) fn removal_matches(c: &MdmCommand, asset: &AssetKey) -> bool {
    match c {
        MdmCommand::RemoveApplication { adam_id, .. } | MdmCommand::RemoveMedia { adam_id } => {
            *adam_id == asset.adam_id
        }
        _ => false,
    }
}

/// The queued form of a planned command: for a location and, when it waits for
/// one, a licence; on the channel the plan chose.
pub(crate) fn queued(
    c: &DeviceCommand,
    location: &LocationId,
    licence: Option<(AssetKey, Holder)>,
) -> QueuedCommand {
    QueuedCommand::new(
        c.device.clone(),
        c.command.clone(),
        Some(location.clone()),
        licence,
        c.policy.clone(),
    )
    .on_channel(c.channel)
}
