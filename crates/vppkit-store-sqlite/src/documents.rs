//! The documents role ([`DocumentStore`]), and the fencing check every fenced
//! write runs in its transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{Sqlite, SqliteConnection, SqliteRow};
use sqlx::{QueryBuilder, Row};
use vppkit_core::LocationId;
use vppkit_store::{
    Document, DocumentQuery, DocumentStore, Fence, NewDocument, Result, StoreError,
};

use crate::codec::*;
use crate::error::db;
use crate::store::{lease_in, SqliteStore};

/// Refuses the transaction's writes unless `fence` still holds its lease.
pub(crate) async fn check_fence(conn: &mut SqliteConnection, fence: Option<&Fence>) -> Result<()> {
    match fence {
        Some(f) => f.check(lease_in(conn, &f.lease).await?.as_ref()),
        None => Ok(()),
    }
}

/// Writes a document inside a transaction (revision rule of [`DocumentStore`]).
pub(crate) async fn put_document_in(
    conn: &mut SqliteConnection,
    d: &NewDocument,
    expected: Option<u64>,
) -> Result<u64> {
    d.validate()?;
    if let Some(l) = &d.location {
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM locations WHERE id = ?")
            .bind(l.as_str())
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
        if found.is_none() {
            return Err(StoreError::not_found("location", l));
        }
    }
    let current: Option<i64> =
        sqlx::query_scalar("SELECT revision FROM documents WHERE collection = ? AND key = ?")
            .bind(&d.collection)
            .bind(&d.key)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
    let current = current
        .map(|c| to_u64(c, "document revision"))
        .transpose()?
        .unwrap_or(0);
    StoreError::check_revision("document", &d.key, expected, current)?;
    let revision = current + 1;
    sqlx::query(
        "INSERT INTO documents (collection, key, tag, location_id, status, due_at, body, \
         revision, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (collection, key) DO UPDATE SET tag = excluded.tag, \
         location_id = excluded.location_id, status = excluded.status, \
         due_at = excluded.due_at, body = excluded.body, revision = excluded.revision, \
         updated_at = excluded.updated_at",
    )
    .bind(&d.collection)
    .bind(&d.key)
    .bind(d.tag.as_deref())
    .bind(d.location.as_ref().map(|l| l.as_str().to_owned()))
    .bind(&d.status)
    .bind(opt_ts(d.due_at)?)
    .bind(json_text(&d.body)?)
    .bind(to_i64(revision, "document revision")?)
    .bind(ts(d.at)?)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(revision)
}

fn document_from_row(row: &SqliteRow) -> Result<Document> {
    let location: Option<String> = row.try_get("location_id").map_err(db)?;
    let due: Option<i64> = row.try_get("due_at").map_err(db)?;
    let body: String = row.try_get("body").map_err(db)?;
    let mut d = NewDocument::new(
        row.try_get::<String, _>("collection").map_err(db)?,
        row.try_get::<String, _>("key").map_err(db)?,
        row.try_get::<String, _>("status").map_err(db)?,
        from_json(&body, "document body")?,
        from_ts(row.try_get("updated_at").map_err(db)?),
    )
    .with_due_at(due.map(from_ts));
    d.tag = row.try_get("tag").map_err(db)?;
    d.location = location
        .map(|l| LocationId::new(l).map_err(|e| StoreError::corrupt("location id", e)))
        .transpose()?;
    Ok(d.stored(to_u64(
        row.try_get("revision").map_err(db)?,
        "document revision",
    )?))
}

#[async_trait]
impl DocumentStore for SqliteStore {
    async fn put_document(
        &self,
        document: &NewDocument,
        expected_revision: Option<u64>,
    ) -> Result<u64> {
        let mut tx = self.write().await?;
        let revision = put_document_in(&mut tx, document, expected_revision).await?;
        tx.commit().await.map_err(db)?;
        Ok(revision)
    }

    async fn document(&self, collection: &str, key: &str) -> Result<Option<Document>> {
        sqlx::query("SELECT * FROM documents WHERE collection = ? AND key = ?")
            .bind(collection)
            .bind(key)
            .fetch_optional(self.pool())
            .await
            .map_err(db)?
            .as_ref()
            .map(document_from_row)
            .transpose()
    }

    async fn documents(&self, q: &DocumentQuery) -> Result<Vec<Document>> {
        let limit = check_limit(q.limit)?;
        let mut qb = QueryBuilder::<Sqlite>::new("SELECT * FROM documents WHERE collection = ");
        qb.push_bind(q.collection.clone());
        if let Some(l) = &q.location {
            qb.push(" AND location_id = ")
                .push_bind(l.as_str().to_owned());
        }
        if !q.statuses.is_empty() {
            qb.push(" AND status IN (");
            let mut sep = qb.separated(", ");
            for s in &q.statuses {
                sep.push_bind(s.clone());
            }
            qb.push(")");
        }
        if let Some(by) = q.due_by {
            qb.push(" AND due_at IS NOT NULL AND due_at <= ")
                .push_bind(ts(by)?);
        }
        if let Some(t) = &q.tag {
            qb.push(" AND tag = ").push_bind(t.clone());
        }
        if let Some(p) = &q.key_prefix {
            // substr compares bytes exactly (LIKE would treat % and _ as patterns).
            qb.push(" AND substr(key, 1, length(")
                .push_bind(p.clone())
                .push(")) = ")
                .push_bind(p.clone());
        }
        if let Some(a) = &q.after {
            qb.push(" AND key > ").push_bind(a.clone());
        }
        qb.push(" ORDER BY key LIMIT ").push_bind(limit);
        qb.build()
            .fetch_all(self.pool())
            .await
            .map_err(db)?
            .iter()
            .map(document_from_row)
            .collect()
    }

    async fn delete_document(
        &self,
        collection: &str,
        key: &str,
        expected_revision: Option<u64>,
    ) -> Result<bool> {
        let mut tx = self.write().await?;
        let current: Option<i64> =
            sqlx::query_scalar("SELECT revision FROM documents WHERE collection = ? AND key = ?")
                .bind(collection)
                .bind(key)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        let current = current
            .map(|c| to_u64(c, "document revision"))
            .transpose()?
            .unwrap_or(0);
        if expected_revision.is_some_and(|e| e != 0) {
            StoreError::check_revision("document", key, expected_revision, current)?;
        }
        let n = sqlx::query("DELETE FROM documents WHERE collection = ? AND key = ?")
            .bind(collection)
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
        tx.commit().await.map_err(db)?;
        Ok(n > 0)
    }

    async fn prune_documents(
        &self,
        collection: &str,
        statuses: &[&str],
        before: DateTime<Utc>,
    ) -> Result<u64> {
        if statuses.is_empty() {
            return Ok(0);
        }
        let mut qb = QueryBuilder::<Sqlite>::new("DELETE FROM documents WHERE collection = ");
        qb.push_bind(collection.to_owned())
            .push(" AND updated_at < ")
            .push_bind(ts(before)?)
            .push(" AND status IN (");
        let mut sep = qb.separated(", ");
        for s in statuses {
            sep.push_bind((*s).to_owned());
        }
        qb.push(")");
        Ok(qb
            .build()
            .execute(self.writer())
            .await
            .map_err(db)?
            .rows_affected())
    }

    async fn insert_documents(&self, documents: &[NewDocument]) -> Result<Vec<String>> {
        for d in documents {
            d.validate()?;
        }
        let mut tx = self.write().await?;
        let mut inserted = Vec::new();
        for d in documents {
            let exists: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM documents WHERE collection = ? AND key = ?")
                    .bind(&d.collection)
                    .bind(&d.key)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db)?;
            if exists.is_some() {
                continue;
            }
            put_document_in(&mut tx, d, Some(0)).await?;
            inserted.push(d.key.clone());
        }
        tx.commit().await.map_err(db)?;
        Ok(inserted)
    }
}
