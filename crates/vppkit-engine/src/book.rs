//! A location's ledger kept in memory and persisted to the store: every ledger
//! journal entry is written to the store's journal (as a serialized record) in the
//! same transaction as its effect on assets, holdings and users, so replaying the
//! store's journal rebuilds the ledger after a restart or on another instance.

use std::collections::HashSet;
use std::sync::Arc;

use tracing::Instrument;

use chrono::{DateTime, Utc};
use vppkit_core::{AssetCounts, AssetKey, AssetMetadata, ClientUserId, LocationId};
use vppkit_ledger::{Change, JournalEntry, Ledger};
use vppkit_store::{
    CursorUpdate, HoldingKey, HoldingUpsert, JournalBody, JournalQuery, NewJournalRecord, Store,
    SyncPage,
};

use crate::engine::LocationGuard;
use crate::error::EngineError;

/// The `kind` of store journal records that hold a serialized ledger entry.
pub(crate) const LEDGER_KIND: &str = "ledger";
/// The `kind` of store journal records that hold a token state transition.
pub(crate) const TOKEN_KIND: &str = "token";
/// The `kind` of store journal records that hold an install status change.
pub(crate) const INSTALL_KIND: &str = "install";

const JOURNAL_PAGE: u32 = 5_000;

/// One location's ledger and what the engine needs beside it.
#[derive(Debug)]
pub(crate) struct Book {
    pub(crate) ledger: Ledger,
    /// Users this manager created (its own `clientUserId`s).
    pub(crate) own_users: HashSet<ClientUserId>,
    /// The store journal sequence read up to.
    store_seq: u64,
    /// Ranges of journal sequence numbers after `store_seq` that this instance
    /// wrote itself (ascending), which `catch_up` need not read back.
    own: Vec<(u64, u64)>,
    /// The lease this instance holds the location with, while it does: every
    /// page written carries it, and the store refuses the page once another
    /// instance took the location over.
    pub(crate) fence: Option<vppkit_store::Fence>,
    /// How many assignments Apple put in a full page of this location, as last
    /// seen (Apple chooses the page size; `None` until a walk had two pages).
    pub(crate) assignments_page: Option<u64>,
    /// The ledger's entries numbered below this are in the store (written by this
    /// instance and confirmed, or read from the store). A ledger whose next entry number is
    /// higher holds changes the store never confirmed: the work that made them was dropped
    /// before their write ended (a caller's timeout), so the next lock of the location
    /// reads the ledger again ([`Book::is_ahead`]).
    confirmed_next: u64,
    /// Held by the page write in flight, if any (see [`PageBuilder::start`]).
    writing: Arc<tokio::sync::Mutex<()>>,
}

impl Book {
    /// Rebuilds the ledger of a location from the store's journal.
    pub(crate) async fn load(
        store: &dyn Store,
        location: &LocationId,
    ) -> Result<Self, EngineError> {
        let mut book = Book {
            ledger: Ledger::new(location.clone()),
            own_users: HashSet::new(),
            store_seq: 0,
            own: Vec::new(),
            fence: None,
            confirmed_next: 0,
            writing: Arc::default(),
            assignments_page: None,
        };
        book.confirmed_next = book.ledger.next_seq();
        book.catch_up(store).await?;
        let mut after: Option<ClientUserId> = None;
        loop {
            let page = store.users_page(location, after.as_ref(), 1_000).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.user.client_user_id.clone());
            for u in &page {
                if u.managed_by_us {
                    book.own_users.insert(u.user.client_user_id.clone());
                }
            }
        }
        Ok(book)
    }

    /// Notes that the ledger's entries numbered below `next` are in the store.
    pub(crate) fn confirm(&mut self, next: u64) {
        self.confirmed_next = self.confirmed_next.max(next);
    }

    /// Whether the ledger holds entries the store never confirmed (see `confirmed_next`).
    pub(crate) fn is_ahead(&self) -> bool {
        self.ledger.next_seq() > self.confirmed_next
    }

    /// Waits for a page write a dropped walk left running (a write is never cut off
    /// halfway: it ends on its own, whole or refused).
    pub(crate) async fn writes_ended(&self) {
        drop(self.writing.lock().await);
    }

    /// Applies the ledger entries written to the store since the last read (by
    /// this instance or another one that held the location before).
    pub(crate) async fn catch_up(&mut self, store: &dyn Store) -> Result<(), EngineError> {
        let location = self.ledger.location().clone();
        loop {
            self.skip_own();
            // Read up to the next range of our own records at most.
            let limit = match self.own.first() {
                Some(&(first, _)) => u32::try_from(first - self.store_seq - 1)
                    .map_or(JOURNAL_PAGE, |gap| gap.min(JOURNAL_PAGE)),
                None => JOURNAL_PAGE,
            };
            let query = JournalQuery::new(location.clone(), limit).after(self.store_seq);
            let records = store.read_journal(&query).await?;
            let Some(last) = records.last() else {
                return Ok(());
            };
            self.store_seq = last.seq;
            for r in &records {
                if r.kind != LEDGER_KIND {
                    continue;
                }
                let entry: JournalEntry = serde_json::from_value(r.body.clone()).map_err(|e| {
                    EngineError::Corrupt(format!("journal record {} of {location}: {e}", r.seq))
                })?;
                self.confirm(entry.seq + 1);
                if entry.seq < self.ledger.next_seq() {
                    continue; // already applied (written by us)
                }
                self.ledger
                    .apply_entry(&entry)
                    .map_err(|e| EngineError::Corrupt(format!("journal of {location}: {e}")))?;
            }
            if records.len() < limit as usize {
                self.skip_own();
                return Ok(());
            }
        }
    }

    /// Notes that this instance appended `count` journal records, numbered by the
    /// store consecutively up to `last`, so `catch_up` need not read them back.
    /// The read position moves past them only when they follow right after it:
    /// otherwise another writer's records may lie in between, and `catch_up`
    /// reads that gap alone, then jumps over these.
    pub(crate) fn wrote(&mut self, count: usize, last: u64) {
        let Some(first) = last.checked_sub(count as u64).map(|before| before + 1) else {
            return;
        };
        if count == 0 || last <= self.store_seq {
            return;
        }
        self.own.push((first, last));
        self.skip_own();
    }

    /// Moves the read position over our own ranges that follow right after it.
    fn skip_own(&mut self) {
        self.own.retain(|&(_, last)| last > self.store_seq);
        while let Some(&(first, last)) = self.own.first() {
            if first > self.store_seq + 1 {
                break;
            }
            self.store_seq = last;
            self.own.remove(0);
        }
    }

    /// The store journal sequence number read up to.
    pub(crate) fn store_seq(&self) -> u64 {
        self.store_seq
    }
}

/// A store journal record holding a ledger entry.
pub(crate) fn journal_record(entry: &JournalEntry) -> NewJournalRecord {
    // A ledger entry always serializes (derived, string keys only); serialized straight
    // to text, with no `serde_json::Value` tree per record.
    let body = JournalBody::of(entry).unwrap_or_else(|_| serde_json::Value::Null.into());
    let mut r = NewJournalRecord::new(entry.at, entry.cause.to_string(), LEDGER_KIND, body);
    if let Some(a) = entry.asset() {
        r = r.with_asset(a.clone());
    }
    if let Some(h) = entry.holder() {
        r = r.with_holder(h);
    }
    r
}

/// What a batch of ledger entries changes in the store, besides the journal.
#[derive(Debug, Default)]
pub(crate) struct PageBuilder {
    page: SyncPage,
    removed_assets: Vec<AssetKey>,
    /// One past the highest ledger entry number the page carries (0: none).
    ledger_next: u64,
}

impl PageBuilder {
    pub(crate) fn new(at: DateTime<Utc>) -> Self {
        Self {
            page: SyncPage::new(at),
            removed_assets: Vec::new(),
            ledger_next: 0,
        }
    }

    /// Adds the entries and their effects. `operation` tags holdings that an
    /// operation moves; `own_users` says which users are ours.
    pub(crate) fn entries(
        &mut self,
        entries: &[JournalEntry],
        operation: Option<&str>,
        own_users: &HashSet<ClientUserId>,
    ) -> &mut Self {
        for e in entries {
            self.ledger_next = self.ledger_next.max(e.seq + 1);
            self.page.journal.push(journal_record(e));
            match &e.change {
                Change::AssetChanged { asset, .. } => self.page.upsert_assets.push(asset.clone()),
                Change::AssetRemoved { asset } => {
                    // The store keeps every asset it saw; a removed one stays with
                    // zero counts (see `write`).
                    self.page.upsert_assets.retain(|a| &a.key != asset);
                    self.removed_assets.push(asset.clone());
                }
                Change::Holding {
                    asset,
                    holder,
                    from,
                    to,
                    ..
                } => {
                    if from == to {
                        continue; // event recorded: the holding itself is unchanged
                    }
                    match to {
                        Some(status) => {
                            let mut up = HoldingUpsert::new(asset.clone(), holder.clone(), *status);
                            if let Some(op) = operation {
                                up = up.with_operation(op);
                            }
                            self.page.upsert_holdings.push(up);
                        }
                        None => self
                            .page
                            .delete_holdings
                            .push(HoldingKey::new(asset.clone(), holder.clone())),
                    }
                }
                Change::User { user, .. } => {
                    let ours = own_users.contains(&user.client_user_id);
                    self.page.upsert_users.push((user.clone(), ours));
                }
                _ => {}
            }
        }
        self
    }

    /// Adds metadata of assets.
    pub(crate) fn metadata(&mut self, metadata: Vec<(AssetKey, AssetMetadata)>) -> &mut Self {
        self.page.asset_metadata.extend(metadata);
        self
    }

    /// Sets the cursor written with the page.
    pub(crate) fn cursor(&mut self, cursor: CursorUpdate) -> &mut Self {
        self.page.cursor = Some(cursor);
        self
    }

    /// Writes the page in one transaction to the book's location, and moves the
    /// book's journal read position past the records it wrote (see [`Book::wrote`]).
    pub(crate) async fn write(
        mut self,
        store: &dyn Store,
        book: &mut Book,
    ) -> Result<(), EngineError> {
        let location = book.ledger.location().clone();
        self.page.fence = book.fence.clone();
        let records = self.page.journal.len();
        let written = write_page(store, &location, self.page, self.removed_assets).await;
        book.written(records, written, self.ledger_next)
    }

    /// How many journal records the page holds.
    pub(crate) fn records(&self) -> usize {
        self.page.journal.len()
    }

    /// Appends `next` to this page, so both are written in one transaction, when that
    /// writes what writing them one after the other would: neither deletes anything
    /// (a store applies a page's upserts before its deletions), carries a notification
    /// id or documents. Holdings, users and assets upserted twice end with `next`'s
    /// value, as the store keeps the last occurrence of a key; the journal records
    /// keep their order; `next`'s cursor, if any, replaces this one's, and its time
    /// stamps every row of the transaction. Otherwise `next` is handed back.
    pub(crate) fn absorb(&mut self, next: PageBuilder) -> Option<PageBuilder> {
        let appendable = |b: &PageBuilder| {
            b.removed_assets.is_empty()
                && b.page.delete_holdings.is_empty()
                && b.page.delete_users.is_empty()
                && b.page.notification.is_none()
                && b.page.documents.is_empty()
        };
        if !appendable(self) || !appendable(&next) {
            return Some(next);
        }
        let PageBuilder {
            page, ledger_next, ..
        } = next;
        self.ledger_next = self.ledger_next.max(ledger_next);
        let mine = &mut self.page;
        mine.at = page.at.or(mine.at);
        mine.upsert_assets.extend(page.upsert_assets);
        mine.asset_metadata.extend(page.asset_metadata);
        mine.upsert_users.extend(page.upsert_users);
        mine.upsert_holdings.extend(page.upsert_holdings);
        mine.journal.extend(page.journal);
        if page.cursor.is_some() {
            mine.cursor = page.cursor;
        }
        None
    }

    /// Starts writing the page (as [`PageBuilder::write`] does) on a task of its own, so
    /// the caller can go on with the next page while the store works. `None` when the
    /// page holds nothing to write.
    ///
    /// The caller hands the write back to [`PendingWrite::finish`] before any other write
    /// of the location's journal, before it ends its work and before it gives up the
    /// location, whatever happened in between: pages reach the store one at a time, in
    /// order, each in one transaction with its cursor.
    ///
    /// The task keeps the location's cache slot (so the ledger is not evicted and read
    /// again while it runs) and the book's write lock (see [`Book::writes_ended`]).
    pub(crate) fn start(
        mut self,
        store: &Arc<dyn Store>,
        guard: &mut LocationGuard,
    ) -> Option<PendingWrite> {
        if self.page.is_empty() && self.removed_assets.is_empty() {
            return None;
        }
        let slot = guard.slot();
        let book = guard.book();
        let location = book.ledger.location().clone();
        self.page.fence = book.fence.clone();
        let records = self.page.journal.len();
        let ledger_next = self.ledger_next;
        let store = Arc::clone(store);
        let writing = Arc::clone(&book.writing)
            .try_lock_owned()
            .expect("a location has one page write in flight at most");
        let task = tokio::spawn(
            async move {
                let written =
                    write_page(store.as_ref(), &location, self.page, self.removed_assets).await;
                drop((writing, slot));
                written
            }
            .instrument(tracing::Span::current()),
        );
        Some(PendingWrite {
            records,
            ledger_next,
            task,
        })
    }
}

/// A page write started by [`PageBuilder::start`]. Dropped unfinished (the work that
/// started it was dropped), the write still runs to its end on its own task (a
/// transaction is not cut off halfway); the next lock of the location waits for it, and
/// reads the ledger again, since the book never saw the write confirmed
/// ([`Book::is_ahead`]).
#[derive(Debug)]
pub(crate) struct PendingWrite {
    records: usize,
    ledger_next: u64,
    task: tokio::task::JoinHandle<Result<Option<u64>, vppkit_store::StoreError>>,
}

impl PendingWrite {
    /// Whether the store has answered (finishing it will not wait).
    pub(crate) fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits for the write to end and notes it in the book, as [`PageBuilder::write`]
    /// does.
    pub(crate) async fn finish(self, book: &mut Book) -> Result<(), EngineError> {
        match self.task.await {
            Ok(written) => book.written(self.records, written, self.ledger_next),
            Err(e) => Err(EngineError::Unexpected(format!(
                "the task writing a sync page ended without an answer: {e}"
            ))),
        }
    }
}

/// Writes one page in one transaction; a removed asset stays in the store with zero
/// counts. `Some(last)`: the journal sequence number of the page's last record.
async fn write_page(
    store: &dyn Store,
    location: &LocationId,
    mut page: SyncPage,
    removed_assets: Vec<AssetKey>,
) -> Result<Option<u64>, vppkit_store::StoreError> {
    for key in removed_assets {
        if let Some(record) = store.asset(location, &key).await? {
            let mut asset = record.asset;
            asset.counts = AssetCounts::default();
            page.upsert_assets.push(asset);
        }
    }
    if page.is_empty() {
        return Ok(None);
    }
    store.apply_sync_page(location, &page).await
}

impl Book {
    /// Takes in the answer of a page write of `records` journal records.
    fn written(
        &mut self,
        records: usize,
        written: Result<Option<u64>, vppkit_store::StoreError>,
        ledger_next: u64,
    ) -> Result<(), EngineError> {
        match written {
            Ok(last) => {
                if let Some(last) = last {
                    self.wrote(records, last);
                }
                self.confirm(ledger_next);
                Ok(())
            }
            // Another instance took the location over: stop, as a refused
            // reservation or operation update does.
            Err(vppkit_store::StoreError::Fenced { .. }) => {
                Err(EngineError::LeaseLost(self.ledger.location().clone()))
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;
    use vppkit_store::testkit::{add_location, t};
    use vppkit_store::MemoryStore;

    use super::*;

    fn records(n: usize) -> Vec<NewJournalRecord> {
        (0..n)
            .map(|i| NewJournalRecord::new(t(1), "test", INSTALL_KIND, json!(i)))
            .collect()
    }

    async fn write(store: &dyn Store, book: &mut Book, n: usize) {
        let mut page = PageBuilder::new(t(1));
        page.page.journal = records(n);
        page.write(store, book).await.unwrap();
    }

    #[tokio::test]
    async fn own_writes_move_the_read_position_past_them() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let id = add_location(&store, "own").await;
        store.append_journal(&id, &records(2)).await.unwrap();
        let mut book = Book::load(store.as_ref(), &id).await.unwrap();
        assert_eq!(book.store_seq(), 2);

        write(store.as_ref(), &mut book, 3).await;
        write(store.as_ref(), &mut book, 4).await;
        // Nothing left for catch_up to read back.
        assert_eq!(book.store_seq(), 9);
        write(store.as_ref(), &mut book, 0).await;
        assert_eq!(book.store_seq(), 9);
    }

    #[tokio::test]
    async fn a_record_written_by_another_writer_is_never_skipped() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let id = add_location(&store, "other").await;
        let mut book = Book::load(store.as_ref(), &id).await.unwrap();
        write(store.as_ref(), &mut book, 2).await;
        assert_eq!(book.store_seq(), 2);

        // Another instance appends record 3; our page gets 4..=5.
        store.append_journal(&id, &records(1)).await.unwrap();
        write(store.as_ref(), &mut book, 2).await;
        assert_eq!(book.store_seq(), 2, "record 3 must still be read");
        assert_eq!(book.own, [(4, 5)]);
        write(store.as_ref(), &mut book, 3).await;
        assert_eq!(book.own, [(4, 5), (6, 8)]);
        let unread = store
            .read_journal(&JournalQuery::new(id.clone(), 10).after(book.store_seq()))
            .await
            .unwrap();
        assert_eq!(unread.first().map(|r| r.seq), Some(3));
        // catch_up reads the gap (record 3) and jumps over our own 4..=8.
        book.catch_up(store.as_ref()).await.unwrap();
        assert_eq!(book.store_seq(), 8);
        assert!(book.own.is_empty());
        // Another writer after our records: read as usual.
        store.append_journal(&id, &records(2)).await.unwrap();
        book.catch_up(store.as_ref()).await.unwrap();
        assert_eq!(book.store_seq(), 10);
    }
}
