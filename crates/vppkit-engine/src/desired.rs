//! The desired state: the MDM's directory and policies (release rules
//! included), stored through the store as numbered revisions, so any instance,
//! after any restart, knows what to converge to.
//!
//! Layout (documents): the head (`vppkit-engine/desired-state`, key `head`)
//! names the current revision and the documents holding the directory and the
//! policies; each part is its own document (`vppkit-engine/desired-part`, key
//! `directory/<revision>-<nonce>` or `policies/<revision>-<nonce>`), so
//! changing the policies does not rewrite a 100,000-device directory. A part is
//! written once under a key no other writer uses, and never changed: two
//! writers racing for the same revision number each write their own part, and
//! the one whose head loses the revision check retries on top of the winner's.
//! The head is written last, with a revision check: a crash before it leaves
//! the previous revision in force (its orphan part is pruned later), and two
//! writers never lose each other's edit silently.
//!
//! Because parts never change under their key, an engine keeps the parts it
//! last parsed: a reconcile pass reads the small head and parses a district's
//! directory again only when the head names a new one.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use vppkit_rules::{Directory, PolicySet};
use vppkit_store::{DocumentQuery, ErrorKind, NewDocument};

use crate::engine::{lock, Engine};
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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Head {
    revision: u64,
    directory: u64,
    policies: u64,
    /// The part documents' keys; absent in heads written before parts had
    /// keys of their own (then `part_key(name, revision)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    directory_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    policies_key: Option<String>,
}

impl Head {
    fn directory_key(&self) -> String {
        self.directory_key
            .clone()
            .unwrap_or_else(|| part_key("directory", self.directory))
    }

    fn policies_key(&self) -> String {
        self.policies_key
            .clone()
            .unwrap_or_else(|| part_key("policies", self.policies))
    }
}

/// The parts an engine last parsed, by document key.
#[derive(Default)]
pub(crate) struct PartCache {
    directory: Option<(String, Arc<Directory>)>,
    policies: Option<(String, Arc<PolicySet>)>,
}

/// The current desired state as a reconcile pass reads it: shared parts.
pub(crate) struct CurrentDesired {
    pub(crate) revision: u64,
    pub(crate) directory: Arc<Directory>,
    pub(crate) policies: Arc<PolicySet>,
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
        let Some((current, at)) = self.current_desired().await? else {
            return Ok(None);
        };
        Ok(Some(DesiredRevision {
            revision: current.revision,
            state: DesiredState::new(
                Directory::clone(&current.directory),
                PolicySet::clone(&current.policies),
            ),
            at,
        }))
    }

    /// The current desired state with its parts shared: read from the store
    /// only when the head names parts this engine has not parsed yet.
    pub(crate) async fn current_desired(
        &self,
    ) -> Result<Option<(CurrentDesired, chrono::DateTime<chrono::Utc>)>> {
        let store = &self.inner.store;
        let Some(doc) = store.document(HEAD, HEAD_KEY).await? else {
            return Ok(None);
        };
        let head: Head = serde_json::from_value(doc.body)
            .map_err(|e| EngineError::Corrupt(format!("desired-state head: {e}")))?;
        let (dir_key, pol_key) = (head.directory_key(), head.policies_key());
        let cached = {
            let cache = lock(&self.inner.desired_parts);
            (
                cache
                    .directory
                    .as_ref()
                    .filter(|(k, _)| *k == dir_key)
                    .map(|(_, d)| Arc::clone(d)),
                cache
                    .policies
                    .as_ref()
                    .filter(|(k, _)| *k == pol_key)
                    .map(|(_, p)| Arc::clone(p)),
            )
        };
        let directory = match cached.0 {
            Some(d) => d,
            None => {
                let d: Arc<Directory> = Arc::new(self.part(&dir_key).await?);
                lock(&self.inner.desired_parts).directory = Some((dir_key, Arc::clone(&d)));
                d
            }
        };
        let policies = match cached.1 {
            Some(p) => p,
            None => {
                let p: Arc<PolicySet> = Arc::new(self.part(&pol_key).await?);
                lock(&self.inner.desired_parts).policies = Some((pol_key, Arc::clone(&p)));
                p
            }
        };
        Ok(Some((
            CurrentDesired {
                revision: head.revision,
                directory,
                policies,
            },
            doc.updated_at,
        )))
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

    async fn part<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<T> {
        let doc = self
            .inner
            .store
            .document(PARTS, key)
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
            let revision = old.as_ref().map_or(1, |h| h.revision + 1);
            let mut head = old.unwrap_or(Head {
                revision,
                directory: 0,
                policies: 0,
                directory_key: None,
                policies_key: None,
            });
            head.revision = revision;
            let (directory, policies) = match &edit {
                Edit::Both(s) => (Some(&s.directory), Some(&s.policies)),
                Edit::Directory(d) => (Some(d), None),
                Edit::Policies(p) => (None, Some(p)),
            };
            if let Some(d) = directory {
                head.directory_key = Some(self.write_part("directory", revision, d, now).await?);
                head.directory = revision;
            }
            if let Some(p) = policies {
                head.policies_key = Some(self.write_part("policies", revision, p, now).await?);
                head.policies = revision;
            }
            if head.directory == 0 || head.policies == 0 {
                return Err(EngineError::NoDesiredState(
                    "store a whole desired state (set_desired_state) before changing one part"
                        .to_owned(),
                ));
            }
            let body = serde_json::to_value(&head).unwrap_or_default();
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

    /// Writes a part under a key of its own (create-only) and returns the key.
    async fn write_part<T: Serialize>(
        &self,
        name: &str,
        revision: u64,
        value: &T,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<String> {
        let body = serde_json::to_value(value)
            .map_err(|e| EngineError::Corrupt(format!("cannot encode the {name}: {e}")))?;
        let key = format!(
            "{}-{}",
            part_key(name, revision),
            uuid::Uuid::new_v4().simple()
        );
        let doc = NewDocument::new(PARTS, key.clone(), "stored", body, at);
        self.inner.store.put_document(&doc, Some(0)).await?;
        Ok(key)
    }

    /// Keeps the newest few parts of each kind besides the current ones (an
    /// orphan part a lost race or a crash left behind ages out the same way).
    async fn prune_parts(&self, head: Head) {
        for (name, current) in [
            ("directory", head.directory_key()),
            ("policies", head.policies_key()),
        ] {
            let q = DocumentQuery::new(PARTS, 1000).key_prefix(format!("{name}/"));
            let Ok(docs) = self.inner.store.all_documents(&q).await else {
                return;
            };
            let mut others: Vec<(u64, &str)> = docs
                .iter()
                .filter(|d| d.key != current)
                .filter_map(|d| Some((part_revision(&d.key)?, d.key.as_str())))
                .collect();
            others.sort_unstable_by(|a, b| b.cmp(a));
            for (_, old) in others.into_iter().skip(KEPT_REVISIONS) {
                if let Err(e) = self.inner.store.delete_document(PARTS, old, None).await {
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

/// The revision of a part's key (`name/<revision>` or `name/<revision>-<nonce>`).
fn part_revision(key: &str) -> Option<u64> {
    let tail = key.rsplit('/').next()?;
    tail.split('-').next()?.parse().ok()
}
