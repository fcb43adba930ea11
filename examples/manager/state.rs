//! What the manager keeps in the store besides the engine's own data, as named JSON
//! documents (`DocumentStore::put_document`): its identity, the inputs of the last apply, what the
//! last plan said beyond the engine's notes (ignored policies, pending releases), pending
//! self-service requests and the MDM
//! command outbox. Kept in the database so that every subcommand, run as its own process,
//! sees the same manager.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use vppkit::core::{AdamId, Secret, SerialNumber};
use vppkit::engine::QueuedCommand;
use vppkit::rules::{Directory, InstallRequest, PendingRelease, Plan, PolicySet, PolicyViolation};
use vppkit::store::{ErrorKind, NewDocument, SecretCipher, Store};

use super::error::{ManagerError, Result};

/// The store collection of the manager's documents.
const COLLECTION: &str = "vppkit-manager";
const CONFIG: &str = "config";
const INPUTS: &str = "inputs";
const LAST_PLAN: &str = "last-plan";
const REQUESTS: &str = "requests";
const OUTBOX: &str = "outbox";
const KEY_CHECK: &str = "vppkit-manager key check";
/// How many recent commands the outbox keeps.
const OUTBOX_RECENT: usize = 200;

/// The manager's identity: its `mdmInfo.id` (stable across runs, written to every token it
/// claims) and the secret Apple must send with notifications.
#[derive(Debug, Clone)]
pub(crate) struct ManagerIdentity {
    pub(crate) mdm_id: String,
    pub(crate) notification_secret: Secret,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigDoc {
    mdm_id: String,
    key_check: String,
    notification_auth_token: String,
    created_at: DateTime<Utc>,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(text: &str) -> Result<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| ManagerError::Key("the manager's stored configuration is damaged".into()))
}

async fn read<T: DeserializeOwned>(store: &Arc<dyn Store>, name: &str) -> Result<Option<T>> {
    match store.document(COLLECTION, name).await? {
        None => Ok(None),
        Some(rec) => serde_json::from_value(rec.body).map(Some).map_err(|e| {
            ManagerError::usage(format!("stored document {name} cannot be read: {e}"))
        }),
    }
}

async fn write<T: Serialize>(store: &Arc<dyn Store>, name: &str, value: &T) -> Result<()> {
    let doc = serde_json::to_value(value)
        .map_err(|e| ManagerError::usage(format!("cannot encode {name}: {e}")))?;
    let doc = NewDocument::new(COLLECTION, name, "stored", doc, Utc::now());
    store.put_document(&doc, None).await?;
    Ok(())
}

/// Loads the manager's identity, creating it on first use. Fails with one clear line when
/// the key does not open this database.
pub(crate) async fn identity(
    store: &Arc<dyn Store>,
    cipher: &SecretCipher,
) -> Result<ManagerIdentity> {
    for _ in 0..3 {
        if let Some(doc) = read::<ConfigDoc>(store, CONFIG).await? {
            let wrong_key = || {
                ManagerError::Key(
                    "VPPKIT_SECRET_KEY does not open this database (it was created with another key)"
                        .into(),
                )
            };
            cipher
                .open(&unb64(&doc.key_check)?, KEY_CHECK, "key check")
                .map_err(|_| wrong_key())?;
            let notification_secret = cipher
                .open(
                    &unb64(&doc.notification_auth_token)?,
                    "vppkit-manager notification auth token",
                    "notification auth token",
                )
                .map_err(|_| wrong_key())?;
            return Ok(ManagerIdentity {
                mdm_id: doc.mdm_id,
                notification_secret,
            });
        }
        let secret = Secret::new(format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        ));
        let doc = ConfigDoc {
            mdm_id: uuid::Uuid::new_v4().to_string(),
            key_check: b64(&cipher.seal(&Secret::new("vppkit"), KEY_CHECK)),
            notification_auth_token: b64(
                &cipher.seal(&secret, "vppkit-manager notification auth token")
            ),
            created_at: Utc::now(),
        };
        let value = serde_json::to_value(&doc)
            .map_err(|e| ManagerError::usage(format!("cannot encode the configuration: {e}")))?;
        let value = NewDocument::new(COLLECTION, CONFIG, "stored", value, Utc::now());
        match store.put_document(&value, Some(0)).await {
            Ok(_) => {
                return Ok(ManagerIdentity {
                    mdm_id: doc.mdm_id,
                    notification_secret: secret,
                })
            }
            // Another process created it first: read theirs.
            Err(e) if matches!(e.kind(), ErrorKind::Conflict | ErrorKind::VersionMismatch) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Err(ManagerError::usage(
        "could not create the manager's configuration",
    ))
}

/// The policies and directory of the last apply (used by `request-install` and `serve`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Inputs {
    pub(crate) policies: PolicySet,
    pub(crate) directory: Directory,
    pub(crate) applied_at: DateTime<Utc>,
}

pub(crate) async fn save_inputs(store: &Arc<dyn Store>, inputs: &Inputs) -> Result<()> {
    write(store, INPUTS, inputs).await
}

pub(crate) async fn inputs(store: &Arc<dyn Store>) -> Result<Option<Inputs>> {
    read(store, INPUTS).await
}

/// What the last applied plan said that the engine does not keep: the policies it ignored
/// and the releases in their grace period (the next plan's input). Waitlists and blocked
/// items are stored by the engine (`Engine::report`, `Engine::unplaced_plan_items`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PlanNotes {
    pub(crate) planned_at: Option<DateTime<Utc>>,
    pub(crate) invalid_policies: Vec<PolicyViolation>,
    pub(crate) pending_releases: Vec<PendingRelease>,
}

impl PlanNotes {
    pub(crate) fn of(plan: &Plan, at: DateTime<Utc>) -> Self {
        Self {
            planned_at: Some(at),
            invalid_policies: plan.invalid_policies.clone(),
            pending_releases: plan.pending_releases.clone(),
        }
    }
}

pub(crate) async fn save_plan_notes(store: &Arc<dyn Store>, notes: &PlanNotes) -> Result<()> {
    write(store, LAST_PLAN, notes).await
}

pub(crate) async fn plan_notes(store: &Arc<dyn Store>) -> Result<PlanNotes> {
    Ok(read(store, LAST_PLAN).await?.unwrap_or_default())
}

/// A self-service request (`request-install`), kept until its install command is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Request {
    pub(crate) device: SerialNumber,
    pub(crate) adam_id: AdamId,
    pub(crate) asked_at: DateTime<Utc>,
}

impl Request {
    pub(crate) fn to_rules(&self) -> InstallRequest {
        InstallRequest::new(self.device.clone(), self.adam_id.clone())
    }
}

pub(crate) async fn requests(store: &Arc<dyn Store>) -> Result<Vec<Request>> {
    Ok(read(store, REQUESTS).await?.unwrap_or_default())
}

pub(crate) async fn save_requests(store: &Arc<dyn Store>, requests: &[Request]) -> Result<()> {
    write(store, REQUESTS, &requests).await
}

/// The MDM side of the example: every command the engine handed out, counted by type,
/// the latest ones kept. A real MDM queues them for its devices instead.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Outbox {
    pub(crate) total: u64,
    pub(crate) by_type: BTreeMap<String, u64>,
    pub(crate) recent: Vec<OutboxEntry>,
}

/// One command in the outbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OutboxEntry {
    pub(crate) command_uuid: String,
    pub(crate) device: SerialNumber,
    pub(crate) request_type: String,
    pub(crate) adam_id: Option<AdamId>,
    pub(crate) queued_at: DateTime<Utc>,
}

pub(crate) async fn outbox(store: &Arc<dyn Store>) -> Result<Outbox> {
    Ok(read(store, OUTBOX).await?.unwrap_or_default())
}

/// Adds commands to the outbox (idempotent on the command UUID, as a sink must be).
pub(crate) async fn append_outbox(
    store: &Arc<dyn Store>,
    commands: &[QueuedCommand],
) -> Result<()> {
    if commands.is_empty() {
        return Ok(());
    }
    let mut outbox = outbox(store).await?;
    let now = Utc::now();
    for c in commands {
        if outbox
            .recent
            .iter()
            .any(|e| e.command_uuid == c.reference.command_uuid)
        {
            continue;
        }
        outbox.total += 1;
        *outbox
            .by_type
            .entry(c.reference.request_type.clone())
            .or_default() += 1;
        outbox.recent.push(OutboxEntry {
            command_uuid: c.reference.command_uuid.clone(),
            device: c.reference.device.clone(),
            request_type: c.reference.request_type.clone(),
            adam_id: c.command.adam_id().cloned(),
            queued_at: now,
        });
    }
    let excess = outbox.recent.len().saturating_sub(OUTBOX_RECENT);
    outbox.recent.drain(..excess);
    write(store, OUTBOX, &outbox).await
}
