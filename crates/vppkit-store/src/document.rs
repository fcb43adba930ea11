//! Documents: small JSON records kept one row each, written with an optimistic
//! revision check, found by key, by tag, or by status and due time.
//!
//! The engine keeps its own state this way (desired-state revisions, the MDM
//! command outbox, pending releases, self-service requests, "needs a sync"
//! marks), each item in its own row, so two writers never lose each other's
//! changes: every write names the revision it read, and a stale one fails with
//! a version mismatch instead of overwriting.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use vppkit_core::LocationId;

use crate::error::{Result, StoreError};

/// One stored document.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Document {
    /// The collection (a namespace such as `vppkit-engine/outbox`).
    pub collection: String,
    /// The key, unique within the collection.
    pub key: String,
    /// A second lookup key (not unique), for example a command UUID.
    pub tag: Option<String>,
    /// The location the document belongs to: deleted with it.
    pub location: Option<LocationId>,
    /// A short status word the collection's owner queries by.
    pub status: String,
    /// When the document wants attention (a retry, a deadline), if ever.
    pub due_at: Option<DateTime<Utc>>,
    /// The content.
    pub body: serde_json::Value,
    /// Starts at 1, incremented by every write.
    pub revision: u64,
    /// When it was last written.
    pub updated_at: DateTime<Utc>,
}

/// A document to write (its revision is the store's business).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct NewDocument {
    /// The collection.
    pub collection: String,
    /// The key within the collection (not empty).
    pub key: String,
    /// A second lookup key.
    pub tag: Option<String>,
    /// The location it belongs to.
    pub location: Option<LocationId>,
    /// The status word.
    pub status: String,
    /// When it wants attention.
    pub due_at: Option<DateTime<Utc>>,
    /// The content.
    pub body: serde_json::Value,
    /// When it is written.
    pub at: DateTime<Utc>,
}

impl NewDocument {
    /// A document with a status, no tag, no location and no due time.
    pub fn new(
        collection: impl Into<String>,
        key: impl Into<String>,
        status: impl Into<String>,
        body: serde_json::Value,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            collection: collection.into(),
            key: key.into(),
            tag: None,
            location: None,
            status: status.into(),
            due_at: None,
            body,
            at,
        }
    }

    /// Sets the tag.
    pub fn with_tag(mut self, tag: impl Into<String>) -> Self {
        self.tag = Some(tag.into());
        self
    }

    /// Sets the location.
    pub fn with_location(mut self, location: LocationId) -> Self {
        self.location = Some(location);
        self
    }

    /// Sets the due time.
    pub fn with_due_at(mut self, due_at: Option<DateTime<Utc>>) -> Self {
        self.due_at = due_at;
        self
    }

    /// Checks what every backend refuses.
    pub fn validate(&self) -> Result<()> {
        if self.collection.is_empty() {
            return Err(StoreError::invalid(
                "document collection",
                "must not be empty",
            ));
        }
        if self.key.is_empty() {
            return Err(StoreError::invalid("document key", "must not be empty"));
        }
        Ok(())
    }

    /// The stored form of this document at `revision`.
    pub fn stored(&self, revision: u64) -> Document {
        Document {
            collection: self.collection.clone(),
            key: self.key.clone(),
            tag: self.tag.clone(),
            location: self.location.clone(),
            status: self.status.clone(),
            due_at: self.due_at,
            body: self.body.clone(),
            revision,
            updated_at: self.at,
        }
    }
}

impl Document {
    /// The document as a write of the same content (to change and write back).
    pub fn to_new(&self, at: DateTime<Utc>) -> NewDocument {
        NewDocument {
            collection: self.collection.clone(),
            key: self.key.clone(),
            tag: self.tag.clone(),
            location: self.location.clone(),
            status: self.status.clone(),
            due_at: self.due_at,
            body: self.body.clone(),
            at,
        }
    }
}

/// Which documents of a collection to list, in key order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DocumentQuery {
    /// The collection.
    pub collection: String,
    /// Only this location's.
    pub location: Option<LocationId>,
    /// Only those with one of these statuses (any when empty).
    pub statuses: Vec<String>,
    /// Only those due at or before this time (documents with no due time are left out).
    pub due_by: Option<DateTime<Utc>>,
    /// Only those with this tag.
    pub tag: Option<String>,
    /// Only those whose key starts with this.
    pub key_prefix: Option<String>,
    /// Exclusive start key.
    pub after: Option<String>,
    /// Page size (at least 1).
    pub limit: u32,
}

impl DocumentQuery {
    /// Every document of a collection, `limit` at a time.
    pub fn new(collection: impl Into<String>, limit: u32) -> Self {
        Self {
            collection: collection.into(),
            location: None,
            statuses: Vec::new(),
            due_by: None,
            tag: None,
            key_prefix: None,
            after: None,
            limit,
        }
    }

    /// Only this location's.
    pub fn location(mut self, location: LocationId) -> Self {
        self.location = Some(location);
        self
    }

    /// Only with this status (call again to allow several).
    pub fn status(mut self, status: impl Into<String>) -> Self {
        self.statuses.push(status.into());
        self
    }

    /// Only due at or before `at`.
    pub fn due_by(mut self, at: DateTime<Utc>) -> Self {
        self.due_by = Some(at);
        self
    }

    /// Only with this tag.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tag = Some(tag.into());
        self
    }

    /// Only keys starting with `prefix`.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = Some(prefix.into());
        self
    }

    /// After this key.
    pub fn after(mut self, key: impl Into<String>) -> Self {
        self.after = Some(key.into());
        self
    }

    /// Whether a document matches (for backends that filter in memory).
    pub fn matches(&self, d: &Document) -> bool {
        d.collection == self.collection
            && self
                .location
                .as_ref()
                .is_none_or(|l| d.location.as_ref() == Some(l))
            && (self.statuses.is_empty() || self.statuses.contains(&d.status))
            && self
                .due_by
                .is_none_or(|by| d.due_at.is_some_and(|due| due <= by))
            && self.tag.as_ref().is_none_or(|t| d.tag.as_ref() == Some(t))
            && self
                .key_prefix
                .as_ref()
                .is_none_or(|p| d.key.starts_with(p.as_str()))
            && self
                .after
                .as_ref()
                .is_none_or(|a| d.key.as_str() > a.as_str())
    }
}

/// The documents role of a [`Store`](crate::Store).
///
/// Writes take the revision the caller read: `Some(0)` means "must not exist"
/// ([`AlreadyExists`](crate::StoreError::AlreadyExists) otherwise), `Some(n)` means
/// the stored revision must be `n` (a version mismatch otherwise, not found when
/// it is gone), `None` writes regardless. A document with a location is deleted
/// with its location; writing one for a missing location is not found.
#[async_trait]
pub trait DocumentStore: Send + Sync {
    /// Writes a document; returns its new revision.
    async fn put_document(
        &self,
        document: &NewDocument,
        expected_revision: Option<u64>,
    ) -> Result<u64>;

    /// One document.
    async fn document(&self, collection: &str, key: &str) -> Result<Option<Document>>;

    /// A page of documents, in key order.
    async fn documents(&self, query: &DocumentQuery) -> Result<Vec<Document>>;

    /// Deletes a document (with the revision check of writes); returns whether it existed.
    async fn delete_document(
        &self,
        collection: &str,
        key: &str,
        expected_revision: Option<u64>,
    ) -> Result<bool>;

    /// Deletes the documents of a collection with one of `statuses` last written
    /// before `before`; returns how many. Retention.
    async fn prune_documents(
        &self,
        collection: &str,
        statuses: &[&str],
        before: DateTime<Utc>,
    ) -> Result<u64>;

    /// Inserts the documents whose key is not taken yet, in one transaction;
    /// returns the keys that were inserted. Provided: one conditional write each.
    async fn insert_documents(&self, documents: &[NewDocument]) -> Result<Vec<String>> {
        let mut inserted = Vec::new();
        for d in documents {
            match self.put_document(d, Some(0)).await {
                Ok(_) => inserted.push(d.key.clone()),
                Err(e) if e.kind() == crate::ErrorKind::Conflict => {}
                Err(e) => return Err(e),
            }
        }
        Ok(inserted)
    }

    /// Every document a query matches, page by page. Provided.
    async fn all_documents(&self, query: &DocumentQuery) -> Result<Vec<Document>> {
        let mut out: Vec<Document> = Vec::new();
        let mut q = query.clone();
        loop {
            let page = self.documents(&q).await?;
            let short = page.len() < q.limit as usize;
            if let Some(last) = page.last() {
                q.after = Some(last.key.clone());
            }
            out.extend(page);
            if short {
                return Ok(out);
            }
        }
    }
}
