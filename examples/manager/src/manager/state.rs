//! What the manager keeps in the store besides the engine's own data: its identity (its
//! `mdmInfo.id` and the notification secret), one document written once. Everything else
//! (the desired state, self-service requests, pending releases, the command outbox) is the
//! engine's, so every subcommand, run as its own process, sees the same manager.

use std::sync::Arc;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use vppkit::core::Secret;
use vppkit::store::{ErrorKind, NewDocument, SecretCipher, Store};

use super::error::{ManagerError, Result};

/// The store collection of the manager's documents.
const COLLECTION: &str = "vppkit-manager";
const CONFIG: &str = "config";
const KEY_CHECK: &str = "vppkit-manager key check";

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
