//! Stored marks: "this location needs a sync" and "this location needs a
//! reconcile pass", each with its cause, one document per location, so that a
//! restart or another instance sees them. Setting a mark is idempotent; taking
//! one deletes it only if nobody set it again since it was read (revision
//! check), so a trigger is never lost between a read and a delete.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vppkit_core::LocationId;
use vppkit_store::{DocumentQuery, ErrorKind, NewDocument};

use crate::engine::{Engine, Inner};
use crate::error::Result;

/// What a mark asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mark {
    /// An incremental sync.
    Sync,
    /// A reconcile pass.
    Reconcile,
}

impl Mark {
    fn collection(self) -> &'static str {
        match self {
            Mark::Sync => "vppkit-engine/sync-wanted",
            Mark::Reconcile => "vppkit-engine/reconcile-wanted",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    causes: Vec<String>,
    since: DateTime<Utc>,
}

/// A mark as read, to take it afterwards.
#[derive(Debug, Clone)]
pub(crate) struct TakenMark {
    pub(crate) location: LocationId,
    pub(crate) causes: Vec<String>,
    revision: u64,
}

/// The mark's document: written in the same transaction as a change when the
/// change is a page (see `SyncPage::documents`).
pub(crate) fn mark_document(
    mark: Mark,
    location: &LocationId,
    cause: &str,
    at: DateTime<Utc>,
) -> NewDocument {
    let body = Body {
        causes: vec![cause.to_owned()],
        since: at,
    };
    NewDocument::new(
        mark.collection(),
        location.as_str(),
        "wanted",
        serde_json::to_value(body).unwrap_or_default(),
        at,
    )
    .with_location(location.clone())
    .with_due_at(Some(at))
}

impl Inner {
    /// Sets a mark (keeps the causes already there, up to a few).
    pub(crate) async fn set_mark(
        &self,
        mark: Mark,
        location: &LocationId,
        cause: &str,
    ) -> Result<()> {
        let now = self.now();
        for _ in 0..5 {
            let existing = self
                .store
                .document(mark.collection(), location.as_str())
                .await?;
            let (expected, mut body) = match &existing {
                Some(d) => (
                    d.revision,
                    serde_json::from_value::<Body>(d.body.clone()).unwrap_or(Body {
                        causes: Vec::new(),
                        since: now,
                    }),
                ),
                None => (
                    0,
                    Body {
                        causes: Vec::new(),
                        since: now,
                    },
                ),
            };
            if !body.causes.iter().any(|c| c == cause) && body.causes.len() < 8 {
                body.causes.push(cause.to_owned());
            }
            let mut doc = mark_document(mark, location, cause, body.since);
            doc.body = serde_json::to_value(&body).unwrap_or_default();
            doc.at = now;
            match self.store.put_document(&doc, Some(expected)).await {
                Ok(_) => {
                    self.wake_scheduler();
                    return Ok(());
                }
                Err(e) if matches!(e.kind(), ErrorKind::VersionMismatch | ErrorKind::Conflict) => {}
                // The location is gone: nothing to mark.
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Sets a mark, logging instead of failing (for paths that already failed).
    pub(crate) async fn set_mark_or_log(&self, mark: Mark, location: &LocationId, cause: &str) {
        if let Err(e) = self.set_mark(mark, location, cause).await {
            tracing::warn!(location = %location, error = %e, ?mark, "could not store the mark");
        }
    }

    /// The marks set, oldest key first.
    pub(crate) async fn marks(&self, mark: Mark) -> Result<Vec<TakenMark>> {
        let docs = self
            .store
            .all_documents(&DocumentQuery::new(mark.collection(), 500))
            .await?;
        Ok(docs
            .into_iter()
            .filter_map(|d| {
                let body: Body = serde_json::from_value(d.body).ok()?;
                Some(TakenMark {
                    location: d.location?,
                    causes: body.causes,
                    revision: d.revision,
                })
            })
            .collect())
    }

    /// Deletes a mark as read (a mark set again since stays).
    pub(crate) async fn clear_mark(&self, mark: Mark, taken: &TakenMark) -> Result<()> {
        match self
            .store
            .delete_document(
                mark.collection(),
                taken.location.as_str(),
                Some(taken.revision),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.kind(), ErrorKind::VersionMismatch | ErrorKind::NotFound) => {
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl Engine {
    /// Asks for a reconcile pass of every location (the desired state changed).
    pub(crate) async fn want_reconcile_everywhere(&self, cause: &str) -> Result<()> {
        for l in self.inner.store.locations().await? {
            self.inner.set_mark(Mark::Reconcile, &l.id, cause).await?;
        }
        Ok(())
    }
}
