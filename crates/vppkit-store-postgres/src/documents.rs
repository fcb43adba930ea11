//! The documents role ([`DocumentStore`]), and the fencing check every fenced
//! write runs in its transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Postgres, QueryBuilder, Row};
use vppkit_core::LocationId;
use vppkit_store::{
    Document, DocumentQuery, DocumentStore, Fence, NewDocument, Result, StoreError,
};

use crate::codec;
use crate::error::{db_error, TxResult};
use crate::store::require_location;
use crate::PostgresStore;

/// Refuses the transaction's writes unless `fence` still holds its lease. The
/// lease row is share-locked until commit, so a takeover (which updates it)
/// waits for this transaction: a write is either before the takeover, and the
/// new holder reads it, or refused.
pub(crate) async fn check_fence(conn: &mut PgConnection, fence: Option<&Fence>) -> TxResult<()> {
    let Some(f) = fence else { return Ok(()) };
    let token: Option<i64> =
        sqlx::query_scalar("SELECT token FROM leases WHERE name = $1 FOR SHARE")
            .bind(&f.lease)
            .fetch_optional(&mut *conn)
            .await?;
    match token {
        Some(t) if codec::to_u64(t, "lease token")? == f.token => Ok(()),
        _ => Err(StoreError::Fenced {
            name: f.lease.clone(),
        }
        .into()),
    }
}

/// Writes a document inside a transaction (revision rule of [`DocumentStore`]).
pub(crate) async fn put_document_in(
    conn: &mut PgConnection,
    d: &NewDocument,
    expected: Option<u64>,
) -> TxResult<u64> {
    if let Some(l) = &d.location {
        require_location(conn, l).await?;
    }
    if expected.is_none() {
        // Written regardless: one upsert, so two writers never race on a
        // missing row.
        let revision: i64 = sqlx::query_scalar(
            "INSERT INTO documents AS x (collection, key, tag, location_id, status, due_at, \
             body, revision, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8) \
             ON CONFLICT (collection, key) DO UPDATE SET tag = EXCLUDED.tag, \
             location_id = EXCLUDED.location_id, status = EXCLUDED.status, \
             due_at = EXCLUDED.due_at, body = EXCLUDED.body, revision = x.revision + 1, \
             updated_at = EXCLUDED.updated_at RETURNING revision",
        )
        .bind(&d.collection)
        .bind(&d.key)
        .bind(d.tag.as_deref())
        .bind(d.location.as_ref().map(|l| l.as_str()))
        .bind(&d.status)
        .bind(d.due_at)
        .bind(&d.body)
        .bind(d.at)
        .fetch_one(&mut *conn)
        .await?;
        return Ok(codec::to_u64(revision, "document revision")?);
    }
    let current: Option<i64> = sqlx::query_scalar(
        "SELECT revision FROM documents WHERE collection = $1 AND key = $2 FOR UPDATE",
    )
    .bind(&d.collection)
    .bind(&d.key)
    .fetch_optional(&mut *conn)
    .await?;
    let current = current
        .map(|c| codec::to_u64(c, "document revision"))
        .transpose()?
        .unwrap_or(0);
    StoreError::check_revision("document", &d.key, expected, current)?;
    let revision = current + 1;
    let written = sqlx::query(
        "INSERT INTO documents (collection, key, tag, location_id, status, due_at, body, \
         revision, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (collection, key) DO UPDATE SET tag = EXCLUDED.tag, \
         location_id = EXCLUDED.location_id, status = EXCLUDED.status, \
         due_at = EXCLUDED.due_at, body = EXCLUDED.body, revision = EXCLUDED.revision, \
         updated_at = EXCLUDED.updated_at WHERE documents.revision = $10",
    )
    .bind(&d.collection)
    .bind(&d.key)
    .bind(d.tag.as_deref())
    .bind(d.location.as_ref().map(|l| l.as_str()))
    .bind(&d.status)
    .bind(d.due_at)
    .bind(&d.body)
    .bind(codec::to_i64(revision, "document revision")?)
    .bind(d.at)
    .bind(codec::to_i64(current, "document revision")?)
    .execute(&mut *conn)
    .await?;
    if written.rows_affected() == 0 {
        // Inserted concurrently after our read (no row to lock then).
        return Err(StoreError::version_mismatch("document", &d.key, current, "newer").into());
    }
    Ok(revision)
}

fn document_from_row(row: &PgRow) -> Result<Document> {
    let get = |e: sqlx::Error| db_error(e, "reading a document");
    let location: Option<String> = row.try_get("location_id").map_err(get)?;
    let mut d = NewDocument::new(
        row.try_get::<String, _>("collection").map_err(get)?,
        row.try_get::<String, _>("key").map_err(get)?,
        row.try_get::<String, _>("status").map_err(get)?,
        row.try_get::<serde_json::Value, _>("body").map_err(get)?,
        row.try_get("updated_at").map_err(get)?,
    )
    .with_due_at(row.try_get("due_at").map_err(get)?);
    d.tag = row.try_get("tag").map_err(get)?;
    d.location = location
        .map(|l| LocationId::new(l).map_err(|e| StoreError::corrupt("location id", e)))
        .transpose()?;
    Ok(d.stored(codec::to_u64(
        row.try_get("revision").map_err(get)?,
        "document revision",
    )?))
}

const COLUMNS: &str =
    "collection, key, tag, location_id, status, due_at, body, revision, updated_at";

#[async_trait]
impl DocumentStore for PostgresStore {
    async fn put_document(
        &self,
        document: &NewDocument,
        expected_revision: Option<u64>,
    ) -> Result<u64> {
        document.validate()?;
        self.retry("writing a document", || async move {
            let mut tx = self.pool.begin().await?;
            let revision = put_document_in(&mut tx, document, expected_revision).await?;
            tx.commit().await?;
            Ok(revision)
        })
        .await
    }

    async fn document(&self, collection: &str, key: &str) -> Result<Option<Document>> {
        let sql = format!("SELECT {COLUMNS} FROM documents WHERE collection = $1 AND key = $2");
        sqlx::query(&sql)
            .bind(collection)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_error(e, "reading a document"))?
            .as_ref()
            .map(document_from_row)
            .transpose()
    }

    async fn documents(&self, q: &DocumentQuery) -> Result<Vec<Document>> {
        if q.limit == 0 {
            return Err(StoreError::invalid("limit", "must be at least 1"));
        }
        let mut qb = QueryBuilder::<Postgres>::new(format!(
            "SELECT {COLUMNS} FROM documents WHERE collection = "
        ));
        qb.push_bind(q.collection.clone());
        if let Some(l) = &q.location {
            qb.push(" AND location_id = ")
                .push_bind(l.as_str().to_owned());
        }
        if !q.statuses.is_empty() {
            qb.push(" AND status = ANY(")
                .push_bind(q.statuses.clone())
                .push(")");
        }
        if let Some(by) = q.due_by {
            qb.push(" AND due_at <= ").push_bind(by);
        }
        if let Some(t) = &q.tag {
            qb.push(" AND tag = ").push_bind(t.clone());
        }
        if let Some(p) = &q.key_prefix {
            qb.push(" AND left(key, length(")
                .push_bind(p.clone())
                .push(")) = ")
                .push_bind(p.clone());
        }
        if let Some(a) = &q.after {
            qb.push(" AND key > ").push_bind(a.clone());
        }
        qb.push(" ORDER BY key LIMIT ")
            .push_bind(i64::from(q.limit));
        qb.build()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_error(e, "reading documents"))?
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
        self.retry("deleting a document", || async move {
            let mut tx = self.pool.begin().await?;
            let current: Option<i64> = sqlx::query_scalar(
                "SELECT revision FROM documents WHERE collection = $1 AND key = $2 FOR UPDATE",
            )
            .bind(collection)
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
            let current = current
                .map(|c| codec::to_u64(c, "document revision"))
                .transpose()?
                .unwrap_or(0);
            if expected_revision.is_some_and(|e| e != 0) {
                StoreError::check_revision("document", key, expected_revision, current)?;
            }
            let done = sqlx::query("DELETE FROM documents WHERE collection = $1 AND key = $2")
                .bind(collection)
                .bind(key)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(done.rows_affected() > 0)
        })
        .await
    }

    async fn prune_documents(
        &self,
        collection: &str,
        statuses: &[&str],
        before: DateTime<Utc>,
    ) -> Result<u64> {
        let statuses: Vec<String> = statuses.iter().map(|s| (*s).to_owned()).collect();
        let statuses = &statuses;
        self.retry("pruning documents", || async move {
            let done = sqlx::query(
                "DELETE FROM documents WHERE collection = $1 AND status = ANY($2) \
                 AND updated_at < $3",
            )
            .bind(collection)
            .bind(statuses)
            .bind(before)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected())
        })
        .await
    }

    async fn insert_documents(&self, documents: &[NewDocument]) -> Result<Vec<String>> {
        for d in documents {
            d.validate()?;
        }
        self.retry("inserting documents", || async move {
            let mut tx = self.pool.begin().await?;
            let mut inserted = Vec::new();
            for d in documents {
                if let Some(l) = &d.location {
                    require_location(&mut tx, l).await?;
                }
                let done = sqlx::query(
                    "INSERT INTO documents (collection, key, tag, location_id, status, due_at, \
                     body, revision, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8) \
                     ON CONFLICT (collection, key) DO NOTHING",
                )
                .bind(&d.collection)
                .bind(&d.key)
                .bind(d.tag.as_deref())
                .bind(d.location.as_ref().map(|l| l.as_str()))
                .bind(&d.status)
                .bind(d.due_at)
                .bind(&d.body)
                .bind(d.at)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 1 {
                    inserted.push(d.key.clone());
                }
            }
            tx.commit().await?;
            Ok(inserted)
        })
        .await
    }
}
