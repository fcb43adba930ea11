//! The desired state: the MDM's directory and policies (release rules
//! included), stored through the store as numbered revisions, so any instance,
//! after any restart, knows what to converge to.
//!
//! Layout (documents): the head (`vppkit-engine/desired-state`, key `head`)
//! names the current revision and which revision holds the directory and which
//! the policies; each part is its own document (`vppkit-engine/desired-part`,
//! key `directory/<revision>` or `policies/<revision>`), so changing the
//! policies does not rewrite a 100,000-device directory. The head is written
//! last, with a revision check: a crash before it leaves the previous revision
//! in force, and two writers never lose each other's edit silently (the second
//! one reads the new head and applies its edit on top).

use serde::{Deserialize, Serialize};
use vppkit_rules::{Directory, PolicySet};
use vppkit_store::{DocumentQuery, ErrorKind, NewDocument};

use crate::engine::Engine;
use crate::error::{EngineError, Result};

pub(crate) const HEAD: &str = "vppkit-engine/desired-state";
const HEAD_KEY: &str = "head";
const PARTS: &str = "vppkit-engine/desired-part";
/// How many revisions of each part are kept besides the current one.
const KEPT_REVISIONS: usize = 4;

/// The MDM's desired state: who should have what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DesiredState {
    /// Users, devices and groups.
    pub directory: Directory,
    /// Policies and release rules.
    pub policies: PolicySet,
}

impl DesiredState {
    /// A desired state.
    pub fn new(directory: Directory, policies: PolicySet) -> Self {
        Self {
            directory,
            policies,
        }
    }
}

/// A stored revision of the desired state.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DesiredRevision {
    /// The revision number (1 for the first one, +1 for every change).
    pub revision: u64,
    /// The state.
    pub state: DesiredState,
    /// When it was stored.
    pub at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Head {
    revision: u64,
    directory: u64,
    policies: u64,
}

/// Which parts an edit replaces.
enum Edit {
    Both(DesiredState),
    Directory(Directory),
    Policies(PolicySet),
}

impl Engine {
    /// Stores a new revision of the desired state (directory and policies) and
    /// returns its number. The reconcile loop converges to it; any instance
    /// reads it back with [`Engine::desired_state`].
    pub async fn set_desired_state(&self, state: DesiredState) -> Result<u64> {
        self.edit_desired(Edit::Both(state)).await
    }

    /// Replaces the directory, keeping the policies: a new revision.
    pub async fn update_directory(&self, directory: Directory) -> Result<u64> {
        self.edit_desired(Edit::Directory(directory)).await
    }

    /// Replaces the policies (and release rules), keeping the directory: a new revision.
    pub async fn update_policies(&self, policies: PolicySet) -> Result<u64> {
        self.edit_desired(Edit::Policies(policies)).await
    }

    /// The current desired state, `None` before the first one was stored.
    pub async fn desired_state(&self) -> Result<Option<DesiredRevision>> {
        let store = &self.inner.store;
        let Some(doc) = store.document(HEAD, HEAD_KEY).await? else {
            return Ok(None);
        };
        let head: Head = serde_json::from_value(doc.body)
            .map_err(|e| EngineError::Corrupt(format!("desired-state head: {e}")))?;
        let directory: Directory = self.part("directory", head.directory).await?;
        let policies: PolicySet = self.part("policies", head.policies).await?;
        Ok(Some(DesiredRevision {
            revision: head.revision,
            state: DesiredState::new(directory, policies),
            at: doc.updated_at,
        }))
    }

    /// The current desired-state revision number (0: none yet), read cheaply.
    pub async fn desired_revision(&self) -> Result<u64> {
        let Some(doc) = self.inner.store.document(HEAD, HEAD_KEY).await? else {
            return Ok(0);
        };
        let head: Head = serde_json::from_value(doc.body)
            .map_err(|e| EngineError::Corrupt(format!("desired-state head: {e}")))?;
        Ok(head.revision)
    }

    async fn part<T: serde::de::DeserializeOwned>(&self, name: &str, revision: u64) -> Result<T> {
        let key = part_key(name, revision);
        let doc = self
            .inner
            .store
            .document(PARTS, &key)
            .await?
            .ok_or_else(|| EngineError::Corrupt(format!("desired-state part {key} is missing")))?;
        serde_json::from_value(doc.body)
            .map_err(|e| EngineError::Corrupt(format!("desired-state part {key}: {e}")))
    }

    async fn edit_desired(&self, edit: Edit) -> Result<u64> {
        let store = &self.inner.store;
        for _ in 0..10 {
            let now = self.inner.now();
            let current = store.document(HEAD, HEAD_KEY).await?;
            let (expected, old) = match &current {
                Some(doc) => {
                    let head: Head = serde_json::from_value(doc.body.clone())
                        .map_err(|e| EngineError::Corrupt(format!("desired-state head: {e}")))?;
                    (doc.revision, Some(head))
                }
                None => (0, None),
            };
            let revision = old.map_or(1, |h| h.revision + 1);
            let mut head = old.unwrap_or(Head {
                revision,
                directory: 0,
                policies: 0,
            });
            head.revision = revision;
            let (directory, policies) = match &edit {
                Edit::Both(s) => (Some(&s.directory), Some(&s.policies)),
                Edit::Directory(d) => (Some(d), None),
                Edit::Policies(p) => (None, Some(p)),
            };
            if let Some(d) = directory {
                self.write_part("directory", revision, d, now).await?;
                head.directory = revision;
            }
            if let Some(p) = policies {
                self.write_part("policies", revision, p, now).await?;
                head.policies = revision;
            }
            if head.directory == 0 || head.policies == 0 {
                return Err(EngineError::NoDesiredState(
                    "store a whole desired state (set_desired_state) before changing one part"
                        .to_owned(),
                ));
            }
            let body = serde_json::to_value(head).unwrap_or_default();
            let doc = NewDocument::new(HEAD, HEAD_KEY, "current", body, now);
            match store.put_document(&doc, Some(expected)).await {
                Ok(_) => {
                    tracing::info!(revision, "desired state stored");
                    self.prune_parts(head).await;
                    self.want_reconcile_everywhere("desired state changed")
                        .await?;
                    return Ok(revision);
                }
                // Another writer stored a revision meanwhile: apply ours on top.
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::VersionMismatch | ErrorKind::Conflict | ErrorKind::NotFound
                    ) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(EngineError::Conflict(
            "the desired state kept changing under this write".to_owned(),
        ))
    }

    async fn write_part<T: Serialize>(
        &self,
        name: &str,
        revision: u64,
        value: &T,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<()> {
        let body = serde_json::to_value(value)
            .map_err(|e| EngineError::Corrupt(format!("cannot encode the {name}: {e}")))?;
        let doc = NewDocument::new(PARTS, part_key(name, revision), "stored", body, at);
        self.inner.store.put_document(&doc, None).await?;
        Ok(())
    }

    /// Keeps the newest few revisions of each part (the current ones always).
    async fn prune_parts(&self, head: Head) {
        for (name, current) in [("directory", head.directory), ("policies", head.policies)] {
            let q = DocumentQuery::new(PARTS, 1000).key_prefix(format!("{name}/"));
            let Ok(docs) = self.inner.store.all_documents(&q).await else {
                return;
            };
            let mut revisions: Vec<u64> = docs
                .iter()
                .filter_map(|d| d.key.rsplit('/').next()?.parse().ok())
                .filter(|r| *r != current)
                .collect();
            revisions.sort_unstable_by(|a, b| b.cmp(a));
            for old in revisions.into_iter().skip(KEPT_REVISIONS) {
                if let Err(e) = self
                    .inner
                    .store
                    .delete_document(PARTS, &part_key(name, old), None)
                    .await
                {
                    tracing::debug!(error = %e, "an old desired-state part was not pruned");
                }
            }
        }
    }
}

/// Revisions are zero-padded so the keys sort in revision order.
fn part_key(name: &str, revision: u64) -> String {
    format!("{name}/{revision:020}")
}
