//! Users, the journal, operations, notification ids and install statuses.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, QueryBuilder, Row};
use vppkit_core::{
    AssetKey, ClientUserId, EventId, Holder, LocationId, NotificationId, VppUser, VppUserStatus,
};
use vppkit_store::{
    InstallRecord, InstallState, JournalQuery, JournalRecord, NewJournalRecord, Operation,
    OperationKind, OperationUpdate, PackedJournal, Result, StoreError, UserRecord,
    APPENDS_PER_READ,
};

use crate::codec;
use crate::error::{db_error, TxResult};
use crate::store::require_location;
use crate::PostgresStore;

// ---- users ----

const USER_COLUMNS: &str =
    "client_user_id, email, managed_apple_id, invite_code, id_hash, status, managed_by_us, updated_at";

fn user_from_row(row: &PgRow) -> Result<UserRecord> {
    let get = |e: sqlx::Error| db_error(e, "reading a user");
    let id = ClientUserId::new(row.try_get::<String, _>(0).map_err(get)?)
        .map_err(|e| StoreError::corrupt("clientUserId", e))?;
    let status: VppUserStatus =
        codec::parse(row.try_get::<&str, _>(5).map_err(get)?, "user status")?;
    let mut user = VppUser::new(id, status);
    user.email = row.try_get(1).map_err(get)?;
    user.managed_apple_id = row.try_get(2).map_err(get)?;
    user.invite_code = row.try_get(3).map_err(get)?;
    user.id_hash = row.try_get(4).map_err(get)?;
    Ok(UserRecord::new(
        user,
        row.try_get(6).map_err(get)?,
        row.try_get(7).map_err(get)?,
    ))
}

pub(crate) async fn user(
    store: &PostgresStore,
    location: &LocationId,
    id: &ClientUserId,
) -> Result<Option<UserRecord>> {
    let row = sqlx::query(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE location_id = $1 AND client_user_id = $2"
    ))
    .bind(location.as_str())
    .bind(id.as_str())
    .fetch_optional(&store.pool)
    .await
    .map_err(|e| db_error(e, "reading a user"))?;
    row.as_ref().map(user_from_row).transpose()
}

pub(crate) async fn users_page(
    store: &PostgresStore,
    location: &LocationId,
    after: Option<&ClientUserId>,
    limit: u32,
) -> Result<Vec<UserRecord>> {
    let limit = codec::limit(limit)?;
    let rows = sqlx::query(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE location_id = $1 \
         AND client_user_id > $2 ORDER BY client_user_id LIMIT $3"
    ))
    .bind(location.as_str())
    // Ids are never empty: after "" is the first page (one index-friendly statement).
    .bind(after.map_or("", |a| a.as_str()))
    .bind(limit)
    .fetch_all(&store.pool)
    .await
    .map_err(|e| db_error(e, "reading users"))?;
    rows.iter().map(user_from_row).collect()
}

// ---- journal ----

/// Appends journal records inside the caller's transaction; returns the location's
/// last sequence number. The journal head's row lock orders concurrent appends.
pub(crate) async fn append_journal_in(
    conn: &mut PgConnection,
    location: &LocationId,
    records: &[NewJournalRecord],
) -> TxResult<u64> {
    let Some(packed) = PackedJournal::pack(records)? else {
        let last: Option<i64> =
            sqlx::query_scalar("SELECT last_seq FROM journal_heads WHERE location_id = $1")
                .bind(location.as_str())
                .fetch_optional(&mut *conn)
                .await?;
        return match last {
            Some(last) => Ok(codec::to_u64(last, "journal sequence")?),
            None => Err(StoreError::not_found("location", location).into()),
        };
    };
    let n = i64::try_from(packed.len).unwrap_or(i64::MAX);
    let last: Option<i64> = sqlx::query_scalar(
        "UPDATE journal_heads SET last_seq = last_seq + $2 WHERE location_id = $1 \
         RETURNING last_seq",
    )
    .bind(location.as_str())
    .bind(n)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(last) = last else {
        return Err(StoreError::not_found("location", location).into());
    };
    let first = last - n + 1;
    sqlx::query(
        "INSERT INTO journal_appends (location_id, first_seq, last_seq, min_at, max_at, records) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(location.as_str())
    .bind(first)
    .bind(last)
    .bind(packed.min_at)
    .bind(packed.max_at)
    .bind(&packed.text)
    .execute(&mut *conn)
    .await?;
    if !packed.assets.is_empty() {
        let adam: Vec<&str> = packed.assets.iter().map(|a| a.adam_id.as_str()).collect();
        let pp: Vec<&str> = packed
            .assets
            .iter()
            .map(|a| a.pricing_param.as_str())
            .collect();
        sqlx::query(
            "INSERT INTO journal_assets (location_id, adam_id, pricing_param, first_seq) \
             SELECT $1, u.a, u.p, $2 FROM UNNEST($3::text[], $4::text[]) AS u(a, p)",
        )
        .bind(location.as_str())
        .bind(first)
        .bind(&adam)
        .bind(&pp)
        .execute(&mut *conn)
        .await?;
    }
    if !packed.holders.is_empty() {
        let holders: Vec<String> = packed.holders.iter().map(ToString::to_string).collect();
        sqlx::query(
            "INSERT INTO journal_holders (location_id, holder, first_seq) \
             SELECT $1, h, $2 FROM UNNEST($3::text[]) AS h",
        )
        .bind(location.as_str())
        .bind(first)
        .bind(&holders)
        .execute(&mut *conn)
        .await?;
    }
    Ok(codec::to_u64(last, "journal sequence")?)
}

pub(crate) async fn append_journal(
    store: &PostgresStore,
    location: &LocationId,
    records: &[NewJournalRecord],
) -> Result<u64> {
    store
        .retry("appending to the journal", || async move {
            let mut tx = store.pool.begin().await?;
            let last = append_journal_in(&mut tx, location, records).await?;
            tx.commit().await?;
            Ok(last)
        })
        .await
}

pub(crate) async fn read_journal(
    store: &PostgresStore,
    q: &JournalQuery,
) -> Result<Vec<JournalRecord>> {
    codec::limit(q.limit)?;
    PackedJournal::read(q, |after_first| journal_appends(store, q, after_first)).await
}

/// The next appends that may hold records `q` matches, after the one starting at
/// `after_first` (see [`PackedJournal::read`]). Only the filters in use appear in the
/// statement, so each combination gets a plan that uses its index.
async fn journal_appends(
    store: &PostgresStore,
    q: &JournalQuery,
    after_first: Option<u64>,
) -> Result<Vec<(u64, String)>> {
    let mut sql =
        QueryBuilder::new("SELECT first_seq, records FROM journal_appends j WHERE location_id = ");
    sql.push_bind(q.location.as_str().to_owned());
    if let Some(asset) = &q.asset {
        sql.push(
            " AND first_seq IN (SELECT first_seq FROM journal_assets \
             WHERE location_id = j.location_id AND adam_id = ",
        )
        .push_bind(asset.adam_id.as_str().to_owned())
        .push(" AND pricing_param = ")
        .push_bind(asset.pricing_param.as_str())
        .push(")");
    }
    if let Some(holder) = &q.holder {
        sql.push(
            " AND first_seq IN (SELECT first_seq FROM journal_holders \
             WHERE location_id = j.location_id AND holder = ",
        )
        .push_bind(holder.to_string())
        .push(")");
    }
    if let Some(since) = q.since {
        sql.push(" AND max_at >= ").push_bind(since);
    }
    if let Some(until) = q.until {
        sql.push(" AND min_at < ").push_bind(until);
    }
    if let Some(after) = q.after_seq {
        // The append holding `after` (or the first after it) starts the range: a seek
        // on the primary key, not a scan of every append for `last_seq`.
        let after = codec::to_i64(after, "journal sequence")?;
        sql.push(" AND last_seq > ")
            .push_bind(after)
            .push(
                " AND first_seq >= (SELECT COALESCE(MAX(first_seq), 0) \
                 FROM journal_appends WHERE location_id = j.location_id AND first_seq <= ",
            )
            .push_bind(after)
            .push(")");
    }
    if let Some(first) = after_first {
        sql.push(" AND first_seq > ")
            .push_bind(codec::to_i64(first, "journal sequence")?);
    }
    sql.push(" ORDER BY first_seq LIMIT ")
        .push_bind(i64::from(APPENDS_PER_READ));
    let get = |e: sqlx::Error| db_error(e, "reading the journal");
    let rows = sql.build().fetch_all(&store.pool).await.map_err(get)?;
    rows.iter()
        .map(|row| {
            let first: i64 = row.try_get(0).map_err(get)?;
            let text: String = row.try_get(1).map_err(get)?;
            Ok((codec::to_u64(first, "journal sequence")?, text))
        })
        .collect()
}

// ---- operations ----

const OPERATION_COLUMNS: &str =
    "id, location_id, kind, request, event_id, status, result, created_at, deadline, updated_at";

fn operation_from_row(row: &PgRow) -> Result<Operation> {
    let get = |e: sqlx::Error| db_error(e, "reading an operation");
    let kind: OperationKind =
        codec::parse(row.try_get::<&str, _>(2).map_err(get)?, "operation kind")?;
    let mut op = Operation::new(
        row.try_get::<String, _>(0).map_err(get)?,
        codec::location_id(row.try_get::<&str, _>(1).map_err(get)?)?,
        kind,
        row.try_get(3).map_err(get)?,
        row.try_get(7).map_err(get)?,
    );
    op.event_id = row
        .try_get::<Option<String>, _>(4)
        .map_err(get)?
        .map(|e| EventId::new(e).map_err(|e| StoreError::corrupt("eventId", e)))
        .transpose()?;
    op.status = codec::parse(row.try_get::<&str, _>(5).map_err(get)?, "operation status")?;
    op.result = row.try_get(6).map_err(get)?;
    op.deadline = row.try_get(8).map_err(get)?;
    op.updated_at = row.try_get(9).map_err(get)?;
    Ok(op)
}

pub(crate) async fn insert_operation(store: &PostgresStore, op: &Operation) -> Result<()> {
    store
        .retry("storing an operation", || async move {
            let mut conn = store.pool.acquire().await?;
            require_location(&mut conn, &op.location).await?;
            if op.id.is_empty() {
                return Err(StoreError::invalid("operation id", "must not be empty").into());
            }
            let done = sqlx::query(
                "INSERT INTO operations (id, location_id, kind, request, event_id, status, \
                 finished, result, created_at, deadline, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(&op.id)
            .bind(op.location.as_str())
            .bind(op.kind.as_str())
            .bind(&op.request)
            .bind(op.event_id.as_ref().map(|e| e.as_str()))
            .bind(op.status.as_str())
            .bind(op.status.is_finished())
            .bind(&op.result)
            .bind(op.created_at)
            .bind(op.deadline)
            .bind(op.updated_at)
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::already_exists("operation", &op.id).into());
            }
            Ok(())
        })
        .await
}

pub(crate) async fn update_operation(
    store: &PostgresStore,
    id: &str,
    update: &OperationUpdate,
) -> Result<Operation> {
    store
        .retry("updating an operation", || async move {
            let mut tx = store.pool.begin().await?;
            crate::documents::check_fence(&mut tx, update.fence.as_ref()).await?;
            let row = sqlx::query(&format!(
                "SELECT {OPERATION_COLUMNS} FROM operations WHERE id = $1 FOR UPDATE"
            ))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else {
                return Err(StoreError::not_found("operation", id).into());
            };
            let mut op = operation_from_row(&row)?;
            if let Some(expected) = update.expected_status {
                if op.status != expected {
                    return Err(
                        StoreError::version_mismatch("operation", id, expected, op.status).into(),
                    );
                }
            }
            update.apply_to(&mut op);
            sqlx::query(
                "UPDATE operations SET status = $2, finished = $3, event_id = $4, result = $5, \
                 deadline = $6, updated_at = $7 WHERE id = $1",
            )
            .bind(id)
            .bind(op.status.as_str())
            .bind(op.status.is_finished())
            .bind(op.event_id.as_ref().map(|e| e.as_str()))
            .bind(&op.result)
            .bind(op.deadline)
            .bind(op.updated_at)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(op)
        })
        .await
}

pub(crate) async fn operation(store: &PostgresStore, id: &str) -> Result<Option<Operation>> {
    let row = sqlx::query(&format!(
        "SELECT {OPERATION_COLUMNS} FROM operations WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&store.pool)
    .await
    .map_err(|e| db_error(e, "reading an operation"))?;
    row.as_ref().map(operation_from_row).transpose()
}

pub(crate) async fn operation_by_event(
    store: &PostgresStore,
    location: &LocationId,
    event_id: &EventId,
) -> Result<Option<Operation>> {
    let row = sqlx::query(&format!(
        "SELECT {OPERATION_COLUMNS} FROM operations WHERE location_id = $1 AND event_id = $2 \
         ORDER BY id LIMIT 1"
    ))
    .bind(location.as_str())
    .bind(event_id.as_str())
    .fetch_optional(&store.pool)
    .await
    .map_err(|e| db_error(e, "reading an operation"))?;
    row.as_ref().map(operation_from_row).transpose()
}

pub(crate) async fn unfinished_operations(
    store: &PostgresStore,
    location: Option<&LocationId>,
) -> Result<Vec<Operation>> {
    let rows = sqlx::query(&format!(
        "SELECT {OPERATION_COLUMNS} FROM operations WHERE NOT finished \
         AND ($1::text IS NULL OR location_id = $1) ORDER BY created_at, id"
    ))
    .bind(location.map(|l| l.as_str()))
    .fetch_all(&store.pool)
    .await
    .map_err(|e| db_error(e, "reading operations"))?;
    rows.iter().map(operation_from_row).collect()
}

pub(crate) async fn prune_operations(store: &PostgresStore, before: DateTime<Utc>) -> Result<u64> {
    store
        .retry("pruning operations", || async move {
            let done = sqlx::query("DELETE FROM operations WHERE finished AND updated_at < $1")
                .bind(before)
                .execute(&store.pool)
                .await?;
            Ok(done.rows_affected())
        })
        .await
}

// ---- notifications ----

pub(crate) async fn record_notification(
    store: &PostgresStore,
    location: &LocationId,
    id: &NotificationId,
    at: DateTime<Utc>,
) -> Result<bool> {
    store
        .retry("recording a notification", || async move {
            let mut conn = store.pool.acquire().await?;
            require_location(&mut conn, location).await?;
            let done = sqlx::query(
                "INSERT INTO notifications_seen (location_id, notification_id, seen_at) \
                 VALUES ($1, $2, $3) ON CONFLICT (notification_id) DO NOTHING",
            )
            .bind(location.as_str())
            .bind(id.as_str())
            .bind(at)
            .execute(&mut *conn)
            .await?;
            Ok(done.rows_affected() == 1)
        })
        .await
}

pub(crate) async fn prune_notifications(
    store: &PostgresStore,
    before: DateTime<Utc>,
) -> Result<u64> {
    store
        .retry("pruning notifications", || async move {
            let done = sqlx::query("DELETE FROM notifications_seen WHERE seen_at < $1")
                .bind(before)
                .execute(&store.pool)
                .await?;
            Ok(done.rows_affected())
        })
        .await
}

// ---- install status ----

const INSTALL_COLUMNS: &str =
    "holder, adam_id, pricing_param, state, command_uuid, detail, updated_at";

fn install_from_row(location: &LocationId, row: &PgRow) -> Result<InstallRecord> {
    let get = |e: sqlx::Error| db_error(e, "reading an install status");
    let holder = codec::holder(row.try_get::<&str, _>(0).map_err(get)?)?;
    let asset: AssetKey = codec::asset_key(
        row.try_get::<&str, _>(1).map_err(get)?,
        row.try_get::<&str, _>(2).map_err(get)?,
    )?;
    let state: InstallState =
        codec::parse(row.try_get::<&str, _>(3).map_err(get)?, "install state")?;
    let mut r = InstallRecord::new(
        location.clone(),
        holder,
        asset,
        state,
        row.try_get(6).map_err(get)?,
    );
    r.command_uuid = row.try_get(4).map_err(get)?;
    r.detail = row.try_get(5).map_err(get)?;
    Ok(r)
}

pub(crate) async fn put_install_status(store: &PostgresStore, r: &InstallRecord) -> Result<()> {
    store
        .retry("writing an install status", || async move {
            let mut conn = store.pool.acquire().await?;
            require_location(&mut conn, &r.location).await?;
            sqlx::query(
                "INSERT INTO install_status (location_id, holder, adam_id, pricing_param, state, \
                 command_uuid, detail, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (location_id, holder, adam_id, pricing_param) DO UPDATE SET \
                   state = EXCLUDED.state, command_uuid = EXCLUDED.command_uuid, \
                   detail = EXCLUDED.detail, updated_at = EXCLUDED.updated_at",
            )
            .bind(r.location.as_str())
            .bind(r.holder.to_string())
            .bind(r.asset.adam_id.as_str())
            .bind(r.asset.pricing_param.as_str())
            .bind(r.state.as_str())
            .bind(&r.command_uuid)
            .bind(&r.detail)
            .bind(r.updated_at)
            .execute(&mut *conn)
            .await?;
            Ok(())
        })
        .await
}

pub(crate) async fn install_status(
    store: &PostgresStore,
    location: &LocationId,
    holder: &Holder,
    asset: &AssetKey,
) -> Result<Option<InstallRecord>> {
    let row = sqlx::query(&format!(
        "SELECT {INSTALL_COLUMNS} FROM install_status WHERE location_id = $1 AND holder = $2 \
         AND adam_id = $3 AND pricing_param = $4"
    ))
    .bind(location.as_str())
    .bind(holder.to_string())
    .bind(asset.adam_id.as_str())
    .bind(asset.pricing_param.as_str())
    .fetch_optional(&store.pool)
    .await
    .map_err(|e| db_error(e, "reading an install status"))?;
    row.map(|r| install_from_row(location, &r)).transpose()
}

pub(crate) async fn install_statuses(
    store: &PostgresStore,
    location: &LocationId,
    holder: &Holder,
) -> Result<Vec<InstallRecord>> {
    let rows = sqlx::query(&format!(
        "SELECT {INSTALL_COLUMNS} FROM install_status WHERE location_id = $1 AND holder = $2 \
         ORDER BY adam_id, pricing_param"
    ))
    .bind(location.as_str())
    .bind(holder.to_string())
    .fetch_all(&store.pool)
    .await
    .map_err(|e| db_error(e, "reading install statuses"))?;
    rows.iter().map(|r| install_from_row(location, r)).collect()
}
