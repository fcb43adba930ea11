//! The append-only journal of every change to holdings and counts.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vppkit_core::{AdamId, AssetKey, Holder, LocationId, PricingParam};

use crate::StoreError;

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
    pub body: JournalBody,
}

impl NewJournalRecord {
    /// Builds an entry with no asset or holder.
    pub fn new(
        at: DateTime<Utc>,
        cause: impl Into<String>,
        kind: impl Into<String>,
        body: impl Into<JournalBody>,
    ) -> Self {
        Self {
            at,
            asset: None,
            holder: None,
            cause: cause.into(),
            kind: kind.into(),
            body: body.into(),
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

/// The body of a journal record to append: one JSON value, kept as the text the store
/// writes.
///
/// A writer that journals many records (a sync page adopts up to a thousand holdings)
/// serializes each entry straight to text with [`JournalBody::of`], instead of building a
/// `serde_json::Value` tree per record that the store would serialize again. Records read
/// back carry a parsed `serde_json::Value` ([`JournalRecord::body`]).
///
/// The wrapped type is `serde_json`'s `RawValue`; it is not exposed, so a change of how
/// the text is held is not a breaking change.
#[derive(Clone)]
pub struct JournalBody(Box<serde_json::value::RawValue>);

impl JournalBody {
    /// Serializes `value` into a body.
    ///
    /// Fails with [`StoreError::Invalid`] when `value` does not serialize to JSON (a map
    /// whose keys are not strings, a `Serialize` implementation that fails).
    pub fn of<T: Serialize + ?Sized>(value: &T) -> Result<Self, StoreError> {
        serde_json::value::to_raw_value(value)
            .map(Self)
            .map_err(|e| StoreError::invalid("journal body", e.to_string()))
    }

    /// The JSON text.
    pub fn as_json(&self) -> &str {
        self.0.get()
    }

    /// The body parsed into a `serde_json::Value`.
    pub fn to_value(&self) -> serde_json::Value {
        // The text was produced by serde_json from a value, so it parses.
        serde_json::from_str(self.0.get()).unwrap_or(serde_json::Value::Null)
    }
}

impl From<serde_json::Value> for JournalBody {
    fn from(value: serde_json::Value) -> Self {
        // Serializing a `Value` cannot fail: its map keys are strings.
        Self::of(&value).unwrap_or_else(|_| Self::from(serde_json::Value::Null))
    }
}

impl PartialEq for JournalBody {
    fn eq(&self, other: &Self) -> bool {
        self.as_json() == other.as_json()
    }
}

impl std::fmt::Debug for JournalBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("JournalBody").field(&self.as_json()).finish()
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
            body: record.body.to_value(),
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

/// The records of one append packed into one text, for backends that store an
/// append (a sync page, an apply step) as one row instead of one row per record.
///
/// The SQLite and PostgreSQL backends store one row per append with this text,
/// plus the distinct assets and holders it names in narrow index tables, so a
/// page of 1,000 holdings costs one journal row rather than 1,000 rows with
/// their indexes, while reads by asset, holder, time and sequence are still
/// served by an index. Records get consecutive sequence numbers from the
/// append's first one, in order.
///
/// The text is a JSON array with one array per record:
/// `[at (Unix nanoseconds), adamId | null, pricingParam | null, holder | null, cause, kind, body]`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PackedJournal {
    /// The records, as one JSON text.
    pub text: String,
    /// How many records the text holds.
    pub len: usize,
    /// The earliest `at` of the records.
    pub min_at: DateTime<Utc>,
    /// The latest `at` of the records.
    pub max_at: DateTime<Utc>,
    /// The distinct assets the records name, sorted.
    pub assets: Vec<AssetKey>,
    /// The distinct holders the records name, sorted.
    pub holders: Vec<Holder>,
}

/// One record in the packed text (see [`PackedJournal`]).
#[derive(Serialize)]
struct PackedOut<'a>(
    i64,
    Option<&'a str>,
    Option<&'a str>,
    Option<String>,
    &'a str,
    &'a str,
    &'a serde_json::value::RawValue,
);

#[derive(Deserialize)]
struct PackedIn(
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    String,
    serde_json::Value,
);

/// How many appends [`PackedJournal::read`] asks a backend for at a time.
pub const APPENDS_PER_READ: u32 = 16;

impl PackedJournal {
    /// Answers `query` (its limit included) from stored appends, read in order a batch at
    /// a time: `fetch(after)` returns, in `first_seq` order, at most [`APPENDS_PER_READ`]
    /// appends `(first_seq, text)` that may hold a matching record (the backend narrows
    /// by its indexes), starting after the append whose `first_seq` is `after`.
    pub async fn read<F, Fut>(
        query: &JournalQuery,
        mut fetch: F,
    ) -> Result<Vec<JournalRecord>, StoreError>
    where
        F: FnMut(Option<u64>) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<(u64, String)>, StoreError>>,
    {
        let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let appends = fetch(after).await?;
            let done = appends.len() < APPENDS_PER_READ as usize;
            for (first_seq, text) in appends {
                out.extend(Self::unpack(query, first_seq, &text)?);
                after = Some(first_seq);
                if out.len() >= limit {
                    out.truncate(limit);
                    return Ok(out);
                }
            }
            if done {
                return Ok(out);
            }
        }
    }

    /// Packs the records of one append; `None` when there are none.
    ///
    /// Fails with [`StoreError::Invalid`] when a record's time is outside what
    /// nanoseconds since 1970 in an `i64` can say (years 1677 to 2262).
    pub fn pack(records: &[NewJournalRecord]) -> Result<Option<Self>, StoreError> {
        let Some(first) = records.first() else {
            return Ok(None);
        };
        let mut rows = Vec::with_capacity(records.len());
        let mut assets = BTreeSet::new();
        let mut holders = BTreeSet::new();
        let (mut min_at, mut max_at) = (first.at, first.at);
        for r in records {
            let at = r.at.timestamp_nanos_opt().ok_or_else(|| {
                StoreError::invalid("journal time", format!("{} is outside 1677..2262", r.at))
            })?;
            min_at = min_at.min(r.at);
            max_at = max_at.max(r.at);
            if let Some(a) = &r.asset {
                assets.insert(a);
            }
            if let Some(h) = &r.holder {
                holders.insert(h);
            }
            rows.push(PackedOut(
                at,
                r.asset.as_ref().map(|a| a.adam_id.as_str()),
                r.asset.as_ref().map(|a| a.pricing_param.as_str()),
                r.holder.as_ref().map(ToString::to_string),
                &r.cause,
                &r.kind,
                &r.body.0,
            ));
        }
        let text = serde_json::to_string(&rows)
            .map_err(|e| StoreError::invalid("journal record", e.to_string()))?;
        Ok(Some(Self {
            text,
            len: records.len(),
            min_at,
            max_at,
            assets: assets.into_iter().cloned().collect(),
            holders: holders.into_iter().cloned().collect(),
        }))
    }

    /// Reads back the records of a packed text whose first record has sequence
    /// number `first_seq`, keeping those `query` matches (its limit aside).
    ///
    /// Fails with [`StoreError::Corrupt`] when the text is not what
    /// [`PackedJournal::pack`] wrote.
    pub fn unpack(
        query: &JournalQuery,
        first_seq: u64,
        text: &str,
    ) -> Result<Vec<JournalRecord>, StoreError> {
        let rows: Vec<PackedIn> =
            serde_json::from_str(text).map_err(|e| StoreError::corrupt("journal", e))?;
        let mut out = Vec::new();
        for (i, PackedIn(at, adam, pp, holder, cause, kind, body)) in rows.into_iter().enumerate() {
            let seq = first_seq + i as u64;
            if query.after_seq.is_some_and(|after| seq <= after) {
                continue;
            }
            let asset = match (adam, pp) {
                (Some(adam), Some(pp)) => Some(AssetKey::new(
                    AdamId::new(adam).map_err(|e| StoreError::corrupt("journal adamId", e))?,
                    pp.parse::<PricingParam>()
                        .map_err(|e| StoreError::corrupt("journal pricingParam", e))?,
                )),
                (None, None) => None,
                _ => return Err(StoreError::corrupt("journal", "half an asset key")),
            };
            let holder = holder
                .map(|h| h.parse::<Holder>())
                .transpose()
                .map_err(|e| StoreError::corrupt("journal holder", e))?;
            let record = JournalRecord {
                location: query.location.clone(),
                seq,
                at: DateTime::from_timestamp_nanos(at),
                asset,
                holder,
                cause,
                kind,
                body,
            };
            if query.matches(&record) {
                out.push(record);
            }
        }
        Ok(out)
    }
}
