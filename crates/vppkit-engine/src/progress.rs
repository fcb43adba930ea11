//! Progress of a sync, reported through a channel or a callback.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vppkit_core::LocationId;

/// Full (everything) or incremental (`sinceVersionId`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum SyncKind {
    /// Assets, assignments and users from scratch.
    Full,
    /// Assets in full, assignments and users since the stored version ids.
    Incremental,
}

impl SyncKind {
    /// `"full"` or `"incremental"`, as serialised and shown to people.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncKind::Full => "full",
            SyncKind::Incremental => "incremental",
        }
    }
}

impl fmt::Display for SyncKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which step of a sync a page belongs to: one of Apple's collections walked page by page, or
/// the content metadata lookups ([`vppkit_store::SyncEndpoint`] names only the walks that keep a
/// cursor). Serialised as `"assets"`, `"assignments"`, `"users"` or `"metadata"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum SyncStep {
    /// `GET assets`.
    Assets,
    /// `GET assignments`.
    Assignments,
    /// `GET users`.
    Users,
    /// Content metadata lookups for new assets.
    Metadata,
}

/// A progress event of a sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
#[non_exhaustive]
pub enum SyncProgress {
    /// A sync of a location began.
    Started {
        /// The location.
        location: LocationId,
        /// What will run: full when asked, or when the location has no complete
        /// cursor yet (its first sync), else incremental. The outcome's kind says
        /// what ran in the end (an incremental sync can turn full when Apple has
        /// forgotten its version or the counts disagree).
        kind: SyncKind,
    },
    /// A page was stored (with its cursor).
    Page {
        /// The location.
        location: LocationId,
        /// The step (a collection, or the metadata lookups).
        endpoint: SyncStep,
        /// Pages stored so far for this collection.
        pages_done: u32,
        /// Total pages as Apple last said (may change during a walk).
        total_pages: Option<u32>,
        /// Items stored so far for this collection.
        items: u64,
    },
    /// Apple changed the data during a walk and the walk was restarted.
    Restarted {
        /// The location.
        location: LocationId,
        /// The step (a collection, or the metadata lookups).
        endpoint: SyncStep,
    },
    /// The sync ended.
    Finished {
        /// The location.
        location: LocationId,
        /// How it ended.
        outcome: SyncOutcome,
    },
}

/// How a sync ended: stored with the location and shown in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct SyncOutcome {
    /// What ran: full when users and assignments were all walked, else
    /// incremental.
    pub kind: SyncKind,
    /// When it began.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
    /// Assets seen.
    pub assets: u64,
    /// Assignments seen.
    pub assignments: u64,
    /// Users seen.
    pub users: u64,
    /// Records Apple sent that could not be read (an asset, assignment or user
    /// of an unexpected shape), left out and logged with their page; counted
    /// once by each walk that met them (a sync that walks an endpoint twice
    /// counts a record twice). A walk that left one out concludes no removal
    /// from it: what the location held stays until a walk reads every record.
    #[serde(default)]
    pub skipped_records: u64,
    /// `None` on success, else what went wrong (never containing a secret).
    pub error: Option<String>,
}

impl SyncOutcome {
    /// Whether the sync succeeded.
    pub fn succeeded(&self) -> bool {
        self.error.is_none()
    }
}

type Callback = Arc<dyn Fn(&SyncProgress) + Send + Sync>;

/// Where progress goes: nowhere, a channel, or a callback.
#[derive(Clone, Default)]
pub struct ProgressReporter {
    inner: Option<ReporterKind>,
}

#[derive(Clone)]
enum ReporterKind {
    Channel(tokio::sync::mpsc::UnboundedSender<SyncProgress>),
    Callback(Callback),
}

impl ProgressReporter {
    /// Progress is dropped.
    pub fn none() -> Self {
        Self { inner: None }
    }

    /// Progress is sent on a channel; a closed channel is ignored.
    pub fn channel(sender: tokio::sync::mpsc::UnboundedSender<SyncProgress>) -> Self {
        Self {
            inner: Some(ReporterKind::Channel(sender)),
        }
    }

    /// A new channel and the reporter feeding it.
    pub fn new_channel() -> (Self, tokio::sync::mpsc::UnboundedReceiver<SyncProgress>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (Self::channel(tx), rx)
    }

    /// Progress is passed to a callback (keep it quick: it runs inside the sync).
    pub fn callback(f: impl Fn(&SyncProgress) + Send + Sync + 'static) -> Self {
        Self {
            inner: Some(ReporterKind::Callback(Arc::new(f))),
        }
    }

    /// Reports one step.
    pub fn report(&self, progress: SyncProgress) {
        match &self.inner {
            None => {}
            Some(ReporterKind::Channel(tx)) => {
                let _ = tx.send(progress);
            }
            Some(ReporterKind::Callback(f)) => f(&progress),
        }
    }
}

impl fmt::Debug for ProgressReporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.inner {
            None => "none",
            Some(ReporterKind::Channel(_)) => "channel",
            Some(ReporterKind::Callback(_)) => "callback",
        };
        f.debug_tuple("ProgressReporter").field(&kind).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn started() -> SyncProgress {
        SyncProgress::Started {
            location: LocationId::new("l").unwrap(),
            kind: SyncKind::Full,
        }
    }

    #[test]
    fn channel_and_callback() {
        let (r, mut rx) = ProgressReporter::new_channel();
        r.report(started());
        assert_eq!(rx.try_recv().unwrap(), started());
        drop(rx);
        r.report(started()); // closed channel: ignored

        let n = Arc::new(AtomicUsize::new(0));
        let n2 = n.clone();
        let r = ProgressReporter::callback(move |_| {
            n2.fetch_add(1, Ordering::SeqCst);
        });
        r.report(started());
        r.report(started());
        assert_eq!(n.load(Ordering::SeqCst), 2);
        ProgressReporter::none().report(started());
        assert_eq!(format!("{r:?}"), "ProgressReporter(\"callback\")");
    }

    #[test]
    fn sync_kinds_read_as_words() {
        assert_eq!(SyncKind::Full.to_string(), "full");
        assert_eq!(SyncKind::Incremental.to_string(), "incremental");
        for k in [SyncKind::Full, SyncKind::Incremental] {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
    }

    #[test]
    fn progress_serialises_in_camel_case() {
        let page = SyncProgress::Page {
            location: LocationId::new("l").unwrap(),
            endpoint: SyncStep::Assignments,
            pages_done: 2,
            total_pages: Some(3),
            items: 10,
        };
        let json = serde_json::to_value(&page).unwrap();
        assert_eq!(json["page"]["pagesDone"], 2, "{json}");
        assert_eq!(json["page"]["totalPages"], 3);
        assert_eq!(json["page"]["endpoint"], "assignments");
        let back: SyncProgress = serde_json::from_value(json).unwrap();
        assert_eq!(back, page);
    }
}
