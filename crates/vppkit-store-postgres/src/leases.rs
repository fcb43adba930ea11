//! Leases: one owner at a time for a named piece of work, safe across instances.
//!
//! Each call is one statement: PostgreSQL's row lock on the lease row (taken by
//! `INSERT ... ON CONFLICT DO UPDATE` and `UPDATE`) decides between instances.
//! Released leases keep their row (expired at the Unix epoch), so the fencing
//! token only grows.

use chrono::{DateTime, Duration, Utc};
use vppkit_store::{Lease, Result, StoreError};

use crate::codec;
use crate::error::db_error;
use crate::PostgresStore;

type LeaseRow = (String, i64, DateTime<Utc>, DateTime<Utc>);

fn check_args(name: &str, owner: &str, ttl: Duration) -> Result<()> {
    if name.is_empty() {
        return Err(StoreError::invalid("lease name", "must not be empty"));
    }
    if owner.is_empty() {
        return Err(StoreError::invalid("lease owner", "must not be empty"));
    }
    if ttl <= Duration::zero() {
        return Err(StoreError::invalid("lease ttl", "must be positive"));
    }
    Ok(())
}

fn expiry(now: DateTime<Utc>, ttl: Duration) -> Result<DateTime<Utc>> {
    now.checked_add_signed(ttl)
        .ok_or_else(|| StoreError::invalid("lease ttl", "ends past the representable time"))
}

fn lease(name: &str, (owner, token, acquired_at, expires_at): LeaseRow) -> Result<Lease> {
    Ok(Lease::new(
        name,
        owner,
        codec::to_u64(token, "lease token")?,
        acquired_at,
        expires_at,
    ))
}

pub(crate) async fn acquire(
    store: &PostgresStore,
    name: &str,
    owner: &str,
    ttl: Duration,
    now: DateTime<Utc>,
) -> Result<Lease> {
    check_args(name, owner, ttl)?;
    let expires = expiry(now, ttl)?;
    let taken: Option<LeaseRow> = store
        .retry("acquiring a lease", || async move {
            Ok(sqlx::query_as(
                "INSERT INTO leases AS l (name, owner, token, acquired_at, expires_at) \
                 VALUES ($1, $2, 1, $3, $4) \
                 ON CONFLICT (name) DO UPDATE SET \
                   token = CASE WHEN l.owner = EXCLUDED.owner \
                                     AND l.expires_at > $3 \
                                THEN l.token ELSE l.token + 1 END, \
                   acquired_at = CASE WHEN l.owner = EXCLUDED.owner \
                                           AND l.expires_at > $3 \
                                      THEN l.acquired_at ELSE EXCLUDED.acquired_at END, \
                   owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at \
                 WHERE l.owner = EXCLUDED.owner OR l.expires_at <= $3 \
                 RETURNING owner, token, acquired_at, expires_at",
            )
            .bind(name)
            .bind(owner)
            .bind(now)
            .bind(expires)
            .fetch_optional(&store.pool)
            .await?)
        })
        .await?;
    if let Some(row) = taken {
        return lease(name, row);
    }
    // Held by another owner and live: report until when.
    let until: Option<DateTime<Utc>> =
        sqlx::query_scalar("SELECT expires_at FROM leases WHERE name = $1")
            .bind(name)
            .fetch_optional(&store.pool)
            .await
            .map_err(|e| db_error(e, "reading a lease"))?;
    Err(StoreError::LeaseHeld {
        name: name.to_owned(),
        expires_at: until.unwrap_or(now),
    })
}

pub(crate) async fn renew(
    store: &PostgresStore,
    name: &str,
    owner: &str,
    token: u64,
    ttl: Duration,
    now: DateTime<Utc>,
) -> Result<Lease> {
    check_args(name, owner, ttl)?;
    let expires = expiry(now, ttl)?;
    let token = codec::to_i64(token, "lease token")?;
    let renewed: Option<LeaseRow> = store
        .retry("renewing a lease", || async move {
            Ok(sqlx::query_as(
                "UPDATE leases SET expires_at = $5 \
                 WHERE name = $1 AND owner = $2 AND token = $3 \
                   AND expires_at > $4 \
                 RETURNING owner, token, acquired_at, expires_at",
            )
            .bind(name)
            .bind(owner)
            .bind(token)
            .bind(now)
            .bind(expires)
            .fetch_optional(&store.pool)
            .await?)
        })
        .await?;
    if let Some(row) = renewed {
        return lease(name, row);
    }
    let live: Option<DateTime<Utc>> =
        sqlx::query_scalar("SELECT expires_at FROM leases WHERE name = $1 AND expires_at > $2")
            .bind(name)
            .bind(now)
            .fetch_optional(&store.pool)
            .await
            .map_err(|e| db_error(e, "reading a lease"))?;
    Err(match live {
        Some(expires_at) => StoreError::LeaseHeld {
            name: name.to_owned(),
            expires_at,
        },
        None => StoreError::not_found("lease", name),
    })
}

pub(crate) async fn release(
    store: &PostgresStore,
    name: &str,
    owner: &str,
    token: u64,
) -> Result<bool> {
    let Ok(token) = i64::try_from(token) else {
        return Ok(false);
    };
    store
        .retry("releasing a lease", || async move {
            let done = sqlx::query(
                "UPDATE leases SET expires_at = $4 WHERE name = $1 AND owner = $2 AND token = $3",
            )
            .bind(name)
            .bind(owner)
            .bind(token)
            .bind(DateTime::<Utc>::UNIX_EPOCH)
            .execute(&store.pool)
            .await?;
            Ok(done.rows_affected() > 0)
        })
        .await
}

pub(crate) async fn get(store: &PostgresStore, name: &str) -> Result<Option<Lease>> {
    let row: Option<LeaseRow> =
        sqlx::query_as("SELECT owner, token, acquired_at, expires_at FROM leases WHERE name = $1")
            .bind(name)
            .fetch_optional(&store.pool)
            .await
            .map_err(|e| db_error(e, "reading a lease"))?;
    row.map(|r| lease(name, r)).transpose()
}
