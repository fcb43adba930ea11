//! Sync pages, cursors and summaries.

use chrono::{DateTime, Utc};
use vppkit_core::{Asset, AssetMetadata, ClientUserId, NotificationId, VppUser};

use crate::holding::{HoldingKey, HoldingUpsert};
use crate::journal::NewJournalRecord;
use crate::text_enum::text_enum;

text_enum!(
    /// A paginated Apple endpoint a sync walks.
    SyncEndpoint, "sync endpoint", {
        /// `GET assets`.
        Assets = "assets",
        /// `GET assignments`.
        Assignments = "assignments",
        /// `GET users`.
        Users = "users",
    }
);

/// How far a sync of one endpoint got.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyncCursor {
    /// The `versionId` of the walk's first page (the next `sinceVersionId`).
    pub version_id: String,
    /// The next page to fetch, while a walk is in progress; `None` once complete.
    pub next_page: Option<u32>,
    /// When it was written.
    pub updated_at: DateTime<Utc>,
}

impl SyncCursor {
    /// Builds a cursor.
    pub fn new(version_id: impl Into<String>, next_page: Option<u32>, at: DateTime<Utc>) -> Self {
        Self {
            version_id: version_id.into(),
            next_page,
            updated_at: at,
        }
    }
}

/// Sets or clears (`cursor: None`, e.g. after Apple rejects a version id) one endpoint's cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CursorUpdate {
    /// The endpoint.
    pub endpoint: SyncEndpoint,
    /// The new cursor, or `None` to clear it.
    pub cursor: Option<SyncCursor>,
}

impl CursorUpdate {
    /// Sets a cursor.
    pub fn set(endpoint: SyncEndpoint, cursor: SyncCursor) -> Self {
        Self {
            endpoint,
            cursor: Some(cursor),
        }
    }

    /// Clears a cursor.
    pub fn clear(endpoint: SyncEndpoint) -> Self {
        Self {
            endpoint,
            cursor: None,
        }
    }
}

/// One batch of changes written in ONE transaction: a page of a sync, or any other
/// set of changes that must land together with their journal records.
///
/// Applied in this order: assets, metadata, users, user deletions, holding upserts,
/// holding deletions, journal records, cursor. Holdings must
/// reference assets that exist (in the store or earlier in the same page). If any
/// part fails nothing is written, the cursor included.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SyncPage {
    /// When (stored as `updated_at` of every row written).
    pub at: Option<DateTime<Utc>>,
    /// Assets to insert or overwrite (properties and counts; metadata is kept).
    pub upsert_assets: Vec<Asset>,
    /// Metadata to set on assets (of this page or already stored).
    pub asset_metadata: Vec<(vppkit_core::AssetKey, AssetMetadata)>,
    /// Users to insert or overwrite, with whether this manager created them.
    pub upsert_users: Vec<(VppUser, bool)>,
    /// Users to delete (absent: ignored).
    pub delete_users: Vec<ClientUserId>,
    /// Holdings to insert or overwrite.
    pub upsert_holdings: Vec<HoldingUpsert>,
    /// Holdings to delete (absent: ignored).
    pub delete_holdings: Vec<HoldingKey>,
    /// Journal records to append.
    pub journal: Vec<NewJournalRecord>,
    /// The cursor to commit with the data.
    pub cursor: Option<CursorUpdate>,
    /// A notification whose effect this page is: its id is recorded in the same
    /// transaction, and the page fails with
    /// [`AlreadyExists`](crate::StoreError::AlreadyExists) (`notification`) when the
    /// id was recorded before, writing nothing.
    pub notification: Option<NotificationId>,
    /// Documents written (unconditionally) in the same transaction.
    pub documents: Vec<crate::NewDocument>,
    /// The writer's lease: the page is refused when it is no longer held.
    pub fence: Option<crate::Fence>,
}

impl SyncPage {
    /// An empty page written at `at`.
    pub fn new(at: DateTime<Utc>) -> Self {
        Self {
            at: Some(at),
            ..Self::default()
        }
    }

    /// Whether the page writes nothing.
    pub fn is_empty(&self) -> bool {
        self.upsert_assets.is_empty()
            && self.asset_metadata.is_empty()
            && self.upsert_users.is_empty()
            && self.delete_users.is_empty()
            && self.upsert_holdings.is_empty()
            && self.delete_holdings.is_empty()
            && self.journal.is_empty()
            && self.cursor.is_none()
            && self.notification.is_none()
            && self.documents.is_empty()
    }
}

/// How the last sync run ended, in short, as the store keeps it (the engine's
/// `SyncOutcome` is the full report of a run).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyncSummary {
    /// When it ended.
    pub at: DateTime<Utc>,
    /// Whether it succeeded.
    pub success: bool,
    /// A short description (an error message; never a secret).
    pub message: Option<String>,
}

impl SyncSummary {
    /// A successful run.
    pub fn success(at: DateTime<Utc>) -> Self {
        Self {
            at,
            success: true,
            message: None,
        }
    }

    /// A failed run.
    pub fn failure(at: DateTime<Utc>, message: impl Into<String>) -> Self {
        Self {
            at,
            success: false,
            message: Some(message.into()),
        }
    }
}

/// A location's sync bookkeeping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyncStatus {
    /// The cursor of each endpoint that has one, ordered by endpoint.
    pub cursors: Vec<(SyncEndpoint, SyncCursor)>,
    /// The summary of the last sync run recorded.
    pub last_summary: Option<SyncSummary>,
}

impl SyncStatus {
    /// Builds a sync status.
    pub fn new(
        cursors: Vec<(SyncEndpoint, SyncCursor)>,
        last_summary: Option<SyncSummary>,
    ) -> Self {
        Self {
            cursors,
            last_summary,
        }
    }

    /// The cursor of one endpoint.
    pub fn cursor(&self, endpoint: SyncEndpoint) -> Option<&SyncCursor> {
        self.cursors
            .iter()
            .find(|(e, _)| *e == endpoint)
            .map(|(_, c)| c)
    }
}
