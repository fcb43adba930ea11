//! The append-only journal of every change to holdings and counts.

use chrono::{DateTime, Utc};
use vppkit_core::{AssetKey, Holder, LocationId};

/// A journal entry to append. The store assigns its sequence number.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct NewJournalRecord {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// The asset concerned, if any.
    pub asset: Option<AssetKey>,
    /// The holder concerned, if any.
    pub holder: Option<Holder>,
    /// Why: `event:<id>`, `notification:<id>`, `sync:<version>`, `policy:<name>`, `operator:<who>`.
    pub cause: String,
    /// What kind of entry (the ledger's name for it).
    pub kind: String,
    /// The serialized entry.
    pub body: serde_json::Value,
}

impl NewJournalRecord {
    /// Builds an entry with no asset or holder.
    pub fn new(
        at: DateTime<Utc>,
        cause: impl Into<String>,
        kind: impl Into<String>,
        body: serde_json::Value,
    ) -> Self {
        Self {
            at,
            asset: None,
            holder: None,
            cause: cause.into(),
            kind: kind.into(),
            body,
        }
    }

    /// Sets the asset.
    pub fn with_asset(mut self, asset: AssetKey) -> Self {
        self.asset = Some(asset);
        self
    }

    /// Sets the holder.
    pub fn with_holder(mut self, holder: Holder) -> Self {
        self.holder = Some(holder);
        self
    }
}

/// A stored journal entry.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JournalRecord {
    /// The location.
    pub location: LocationId,
    /// Assigned by the store: strictly increasing per location, starting at 1.
    pub seq: u64,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// The asset concerned, if any.
    pub asset: Option<AssetKey>,
    /// The holder concerned, if any.
    pub holder: Option<Holder>,
    /// Why.
    pub cause: String,
    /// What kind of entry.
    pub kind: String,
    /// The serialized entry.
    pub body: serde_json::Value,
}

impl JournalRecord {
    /// The stored form of an appended entry.
    pub fn from_new(location: LocationId, seq: u64, record: NewJournalRecord) -> Self {
        Self {
            location,
            seq,
            at: record.at,
            asset: record.asset,
            holder: record.holder,
            cause: record.cause,
            kind: record.kind,
            body: record.body,
        }
    }
}

/// Which journal entries to read: one location, optionally narrowed; ordered by `seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JournalQuery {
    /// The location.
    pub location: LocationId,
    /// Only entries about this asset.
    pub asset: Option<AssetKey>,
    /// Only entries about this holder.
    pub holder: Option<Holder>,
    /// Only entries at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only entries strictly before this time.
    pub until: Option<DateTime<Utc>>,
    /// Only entries with a sequence number greater than this (paging).
    pub after_seq: Option<u64>,
    /// At most this many entries (must be at least 1).
    pub limit: u32,
}

impl JournalQuery {
    /// Every entry of a location, up to `limit`.
    pub fn new(location: LocationId, limit: u32) -> Self {
        Self {
            location,
            asset: None,
            holder: None,
            since: None,
            until: None,
            after_seq: None,
            limit,
        }
    }

    /// Only entries about this asset.
    pub fn asset(mut self, asset: AssetKey) -> Self {
        self.asset = Some(asset);
        self
    }

    /// Only entries about this holder.
    pub fn holder(mut self, holder: Holder) -> Self {
        self.holder = Some(holder);
        self
    }

    /// Only entries in `[since, until)`.
    pub fn between(mut self, since: Option<DateTime<Utc>>, until: Option<DateTime<Utc>>) -> Self {
        self.since = since;
        self.until = until;
        self
    }

    /// Only entries after this sequence number.
    pub fn after(mut self, seq: u64) -> Self {
        self.after_seq = Some(seq);
        self
    }

    /// Whether an entry matches the filters (not the limit).
    pub fn matches(&self, r: &JournalRecord) -> bool {
        r.location == self.location
            && self
                .asset
                .as_ref()
                .is_none_or(|a| r.asset.as_ref() == Some(a))
            && self
                .holder
                .as_ref()
                .is_none_or(|h| r.holder.as_ref() == Some(h))
            && self.since.is_none_or(|t| r.at >= t)
            && self.until.is_none_or(|t| r.at < t)
            && self.after_seq.is_none_or(|s| r.seq > s)
    }
}
