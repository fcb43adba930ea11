//! Paginated reads as streams of pages.
//!
//! Pages are zero-based. The walk fetches page 0, then keeps up to
//! `pages_in_flight` further pages in flight (Apple allows five), yields them in
//! order, and stops at the first page without `nextPageIndex`. The first page's
//! `versionId` is kept ([`PageStream::first_version_id`]) so the next read can ask
//! only for changes (`sinceVersionId`). A `versionId` that changes in the middle of
//! a walk is reported, or the walk restarts, as [`VersionChangePolicy`] says.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use futures::stream::{BoxStream, FuturesOrdered};
use futures::{Stream, StreamExt};
use serde::de::DeserializeOwned;

use crate::{Envelope, Error, SkippedRecord};

/// What to do when `versionId` changes in the middle of a walk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VersionChangePolicy {
    /// Start again from page 0 (up to the client's `max_walk_restarts`, then
    /// fail with [`Error::VersionChanged`]). The first page of a new walk has
    /// [`Page::walk`] one higher and index 0: drop what the old walk gave.
    #[default]
    Restart,
    /// Fail the walk with [`Error::VersionChanged`].
    Error,
}

/// One page of a paginated read.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Page<T> {
    /// The zero-based page index.
    pub index: u32,
    /// The records of this page.
    pub items: Vec<T>,
    /// This page's `versionId`.
    pub version_id: Option<String>,
    /// `nextPageIndex`: absent on the last page.
    pub next_page_index: Option<u32>,
    /// `totalPages` as this page reported it (can change during a walk).
    pub total_pages: Option<u32>,
    /// `size`: records on this page, as Apple reported it.
    pub size: Option<u32>,
    /// `uId`, `tokenExpirationDate`, `mdmInfo`.
    pub envelope: Envelope,
    /// Which walk this page belongs to: 0, then 1, 2... after each restart.
    pub walk: u32,
    /// Records of this page that could not be read and were left out of
    /// [`Page::items`] (each also logged at `warn` level). Always empty with
    /// [`ClientBuilder::strict_records`], which fails instead.
    ///
    /// [`ClientBuilder::strict_records`]: crate::ClientBuilder::strict_records
    pub skipped: Vec<SkippedRecord>,
}

impl<T> Page<T> {
    /// Builds a page of the first walk (for fakes and tests; the client builds
    /// pages from Apple's answers).
    pub fn new(
        index: u32,
        items: Vec<T>,
        version_id: Option<String>,
        next_page_index: Option<u32>,
        envelope: Envelope,
    ) -> Self {
        Self {
            index,
            size: Some(items.len() as u32),
            items,
            version_id,
            next_page_index,
            total_pages: None,
            envelope,
            walk: 0,
            skipped: Vec::new(),
        }
    }

    /// Whether this page starts a restarted walk (drop the earlier pages).
    pub fn starts_restart(&self) -> bool {
        self.walk > 0 && self.index == 0
    }

    /// Whether this is the last page.
    pub fn is_last(&self) -> bool {
        self.next_page_index.is_none()
    }
}

/// What every paginated answer carries.
#[derive(Debug)]
pub(crate) struct PageFields<T> {
    pub(crate) items: Vec<T>,
    pub(crate) current_page_index: Option<u32>,
    pub(crate) next_page_index: Option<u32>,
    pub(crate) size: Option<u32>,
    pub(crate) total_pages: Option<u32>,
    pub(crate) version_id: Option<String>,
    pub(crate) envelope: Envelope,
    pub(crate) skipped: Vec<SkippedRecord>,
}

/// A wire page type.
pub(crate) trait RawPage: DeserializeOwned + Send + 'static {
    type Item: Send + 'static;
    fn into_fields(self) -> PageFields<Self::Item>;
}

pub(crate) type FetchPage<T> =
    Arc<dyn Fn(u32) -> BoxFuture<'static, Result<PageFields<T>, Error>> + Send + Sync>;

/// Settings of one walk.
#[derive(Debug, Clone)]
pub(crate) struct WalkSettings {
    pub(crate) path: String,
    pub(crate) pages_in_flight: usize,
    pub(crate) policy: VersionChangePolicy,
    pub(crate) max_restarts: u32,
}

/// A stream of pages (`Result<Page<T>, Error>`); ends after the last page or the
/// first error.
#[must_use = "streams do nothing unless polled"]
pub struct PageStream<T> {
    inner: BoxStream<'static, Result<Page<T>, Error>>,
    version: Arc<Mutex<Option<String>>>,
}

impl<T> std::fmt::Debug for PageStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageStream")
            .field(
                "first_version_id",
                &self.version.lock().map(|g| g.clone()).unwrap_or_default(),
            )
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> PageStream<T> {
    pub(crate) fn new(fetch: FetchPage<T>, settings: WalkSettings) -> Self {
        let version = Arc::new(Mutex::new(None));
        let state = WalkState {
            fetch,
            pages_in_flight: settings.pages_in_flight.max(1),
            settings,
            walk: 0,
            first_version: None,
            next_to_request: 0,
            bound: 1,
            pending: FuturesOrdered::new(),
            done: false,
            shared_version: Arc::clone(&version),
        };
        let inner = futures::stream::unfold(state, |mut state| async move {
            let item = state.step().await?;
            Some((item, state))
        })
        .boxed();
        Self { inner, version }
    }

    /// The first page's `versionId` of the current walk, once page 0 has arrived:
    /// pass it as `sinceVersionId` to the next incremental read.
    pub fn first_version_id(&self) -> Option<String> {
        self.version.lock().map(|g| g.clone()).unwrap_or_default()
    }

    /// Reads every page and returns all records with the first page's `versionId`.
    /// Restarted walks are handled (earlier records dropped). Holds everything in
    /// memory: for large reads, consume the stream page by page instead.
    pub async fn collect_all(mut self) -> Result<(Vec<T>, Option<String>), Error> {
        let mut items = Vec::new();
        while let Some(page) = self.next().await {
            let page = page?;
            if page.starts_restart() {
                items.clear();
            }
            items.extend(page.items);
        }
        let version = self.first_version_id();
        Ok((items, version))
    }
}

impl<T> Stream for PageStream<T> {
    type Item = Result<Page<T>, Error>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// A spawned page fetch, aborted when dropped (a walk that ends or restarts
/// abandons the pages it no longer needs).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

type Pending<T> = AbortOnDrop<(u32, Result<PageFields<T>, Error>)>;

struct WalkState<T> {
    fetch: FetchPage<T>,
    settings: WalkSettings,
    pages_in_flight: usize,
    walk: u32,
    /// `Some(version of page 0)` once page 0 arrived.
    first_version: Option<Option<String>>,
    next_to_request: u32,
    /// Pages known to exist (exclusive bound).
    bound: u32,
    pending: FuturesOrdered<Pending<T>>,
    done: bool,
    shared_version: Arc<Mutex<Option<String>>>,
}

impl<T: Send + 'static> WalkState<T> {
    fn fail(&mut self, e: Error) -> Option<Result<Page<T>, Error>> {
        self.done = true;
        self.pending = FuturesOrdered::new();
        Some(Err(e))
    }

    fn restart(&mut self) {
        self.walk += 1;
        self.pending = FuturesOrdered::new();
        self.next_to_request = 0;
        self.bound = 1;
        self.first_version = None;
        if let Ok(mut g) = self.shared_version.lock() {
            *g = None;
        }
    }

    async fn step(&mut self) -> Option<Result<Page<T>, Error>> {
        loop {
            if self.done {
                return None;
            }
            while self.pending.len() < self.pages_in_flight && self.next_to_request < self.bound {
                let index = self.next_to_request;
                let fut = (self.fetch)(index);
                let handle = tokio::spawn(async move { (index, fut.await) });
                self.pending.push_back(AbortOnDrop(handle));
                self.next_to_request += 1;
            }
            let (index, result) = match self.pending.next().await {
                None => {
                    self.done = true;
                    return None;
                }
                Some(Ok(pair)) => pair,
                Some(Err(join)) => {
                    return self.fail(Error::Pagination {
                        path: self.settings.path.clone(),
                        page: self.next_to_request,
                        detail: format!("page task failed: {join}"),
                    })
                }
            };
            let fields = match result {
                Ok(f) => f,
                Err(e) => return self.fail(e),
            };
            if let Some(current) = fields.current_page_index {
                if current != index {
                    return self.fail(Error::Pagination {
                        path: self.settings.path.clone(),
                        page: index,
                        detail: format!("asked for page {index}, got currentPageIndex {current}"),
                    });
                }
            }
            match &self.first_version {
                None => {
                    self.first_version = Some(fields.version_id.clone());
                    if let Ok(mut g) = self.shared_version.lock() {
                        g.clone_from(&fields.version_id);
                    }
                }
                Some(first) if *first != fields.version_id => {
                    let changed = Error::VersionChanged {
                        path: self.settings.path.clone(),
                        page: index,
                        expected: first.clone(),
                        found: fields.version_id.clone(),
                    };
                    match self.settings.policy {
                        VersionChangePolicy::Restart if self.walk < self.settings.max_restarts => {
                            tracing::info!(path = %self.settings.path, page = index, walk = self.walk, "versionId changed during the walk; restarting");
                            self.restart();
                            continue;
                        }
                        _ => return self.fail(changed),
                    }
                }
                Some(_) => {}
            }
            match fields.next_page_index {
                None => {
                    self.done = true;
                    self.pending = FuturesOrdered::new();
                }
                Some(next) if next != index + 1 => {
                    return self.fail(Error::Pagination {
                        path: self.settings.path.clone(),
                        page: index,
                        detail: format!("nextPageIndex {next} does not follow page {index}"),
                    });
                }
                Some(next) => {
                    let total = fields.total_pages.unwrap_or(0);
                    self.bound = self.bound.max(next + 1).max(total);
                }
            }
            return Some(Ok(Page {
                index,
                items: fields.items,
                version_id: fields.version_id,
                next_page_index: fields.next_page_index,
                total_pages: fields.total_pages,
                size: fields.size,
                envelope: fields.envelope,
                walk: self.walk,
                skipped: fields.skipped,
            }));
        }
    }
}
