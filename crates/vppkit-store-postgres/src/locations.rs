//! Locations: one content token each; secrets sealed with the store's cipher.

use sqlx::postgres::PgRow;
use sqlx::Row;
use vppkit_core::{AccountType, LocationId, MdmInfo, TokenState, Uid};
use vppkit_store::{LocationRecord, NotificationSettings, Result, StoreError};

use crate::codec::{self, from_json, to_json};
use crate::error::TxResult;
use crate::PostgresStore;

const COLUMNS: &str = "id, name, token_sealed, token_expires_at, token_state, uid, country, \
    account_type, apple_account_name, mdm_info, notification_url, notification_token_sealed, \
    notification_types, service_config, created_at, updated_at, revision";

fn token_context(id: &LocationId) -> String {
    format!("location:{id}:token")
}

fn notification_context(id: &LocationId) -> String {
    format!("location:{id}:notification_auth_token")
}

/// The column values of a record, secrets sealed.
struct Columns {
    token: Vec<u8>,
    mdm_info: Option<serde_json::Value>,
    notification_url: Option<String>,
    notification_token: Option<Vec<u8>>,
    notification_types: Option<serde_json::Value>,
}

fn columns(store: &PostgresStore, r: &LocationRecord) -> Result<Columns> {
    let token = store.cipher.seal(&r.token, &token_context(&r.id));
    let mdm_info = r
        .mdm_info
        .as_ref()
        .map(|m| to_json(m, "mdmInfo"))
        .transpose()?;
    let (notification_url, notification_token, notification_types) = match &r.notification {
        Some(n) => (
            Some(n.url.clone()),
            Some(
                store
                    .cipher
                    .seal(&n.auth_token, &notification_context(&r.id)),
            ),
            Some(to_json(&n.types, "notification types")?),
        ),
        None => (None, None, None),
    };
    Ok(Columns {
        token,
        mdm_info,
        notification_url,
        notification_token,
        notification_types,
    })
}

fn from_row(store: &PostgresStore, row: &PgRow) -> Result<LocationRecord> {
    let get = |e: sqlx::Error| crate::error::db_error(e, "reading a location");
    let id = codec::location_id(row.try_get::<&str, _>("id").map_err(get)?)?;
    let sealed: Vec<u8> = row.try_get("token_sealed").map_err(get)?;
    let token = store
        .cipher
        .open(&sealed, &token_context(&id), "content token")?;
    let mut r = LocationRecord::new(
        id.clone(),
        row.try_get::<String, _>("name").map_err(get)?,
        token,
        row.try_get("token_expires_at").map_err(get)?,
        row.try_get("created_at").map_err(get)?,
    );
    r.token_state = codec::parse::<TokenState>(
        row.try_get::<&str, _>("token_state").map_err(get)?,
        "token state",
    )?;
    r.uid = row
        .try_get::<Option<&str>, _>("uid")
        .map_err(get)?
        .map(|u| Uid::new(u).map_err(|e| StoreError::corrupt("uId", e)))
        .transpose()?;
    r.country = row.try_get("country").map_err(get)?;
    r.account_type = row
        .try_get::<Option<&str>, _>("account_type")
        .map_err(get)?
        .map(|t| codec::parse::<AccountType>(t, "account type"))
        .transpose()?;
    r.apple_account_name = row.try_get("apple_account_name").map_err(get)?;
    r.mdm_info = row
        .try_get::<Option<serde_json::Value>, _>("mdm_info")
        .map_err(get)?
        .map(|v| from_json::<MdmInfo>(v, "mdmInfo"))
        .transpose()?;
    let url: Option<String> = row.try_get("notification_url").map_err(get)?;
    let sealed: Option<Vec<u8>> = row.try_get("notification_token_sealed").map_err(get)?;
    let types: Option<serde_json::Value> = row.try_get("notification_types").map_err(get)?;
    r.notification = match (url, sealed) {
        (Some(url), Some(sealed)) => {
            let auth = store.cipher.open(
                &sealed,
                &notification_context(&id),
                "notification auth token",
            )?;
            let types: Vec<String> = match types {
                Some(v) => from_json(v, "notification types")?,
                None => Vec::new(),
            };
            Some(NotificationSettings::new(url, auth, types))
        }
        _ => None,
    };
    r.service_config = row.try_get("service_config").map_err(get)?;
    r.updated_at = row.try_get("updated_at").map_err(get)?;
    r.revision = codec::to_u64(row.try_get("revision").map_err(get)?, "location revision")?;
    Ok(r)
}

pub(crate) async fn save(store: &PostgresStore, record: &LocationRecord) -> Result<u64> {
    let cols = columns(store, record)?;
    if record.revision == 0 {
        store
            .retry("saving a location", || insert(store, record, &cols))
            .await
    } else {
        let expected = codec::to_i64(record.revision, "location revision")?;
        store
            .retry("saving a location", || {
                update(store, record, &cols, expected)
            })
            .await
    }
}

async fn insert(store: &PostgresStore, r: &LocationRecord, c: &Columns) -> TxResult<u64> {
    let mut tx = store.pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO locations (id, name, token_sealed, token_expires_at, token_state, uid, \
         country, account_type, apple_account_name, mdm_info, notification_url, \
         notification_token_sealed, notification_types, service_config, created_at, updated_at, \
         revision) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, 1) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(r.id.as_str())
    .bind(&r.name)
    .bind(&c.token)
    .bind(r.token_expires_at)
    .bind(r.token_state.as_str())
    .bind(r.uid.as_ref().map(|u| u.as_str()))
    .bind(&r.country)
    .bind(r.account_type.map(|t| t.as_str()))
    .bind(&r.apple_account_name)
    .bind(&c.mdm_info)
    .bind(&c.notification_url)
    .bind(&c.notification_token)
    .bind(&c.notification_types)
    .bind(&r.service_config)
    .bind(r.created_at)
    .bind(r.updated_at)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(StoreError::already_exists("location", &r.id).into());
    }
    sqlx::query("INSERT INTO journal_heads (location_id) VALUES ($1)")
        .bind(r.id.as_str())
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO sync_state (location_id) VALUES ($1)")
        .bind(r.id.as_str())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(1)
}

async fn update(
    store: &PostgresStore,
    r: &LocationRecord,
    c: &Columns,
    expected: i64,
) -> TxResult<u64> {
    let new: Option<i64> = sqlx::query_scalar(
        "UPDATE locations SET name = $2, token_sealed = $3, token_expires_at = $4, \
         token_state = $5, uid = $6, country = $7, account_type = $8, apple_account_name = $9, \
         mdm_info = $10, notification_url = $11, notification_token_sealed = $12, \
         notification_types = $13, service_config = $14, created_at = $15, updated_at = $16, \
         revision = revision + 1 \
         WHERE id = $1 AND revision = $17 RETURNING revision",
    )
    .bind(r.id.as_str())
    .bind(&r.name)
    .bind(&c.token)
    .bind(r.token_expires_at)
    .bind(r.token_state.as_str())
    .bind(r.uid.as_ref().map(|u| u.as_str()))
    .bind(&r.country)
    .bind(r.account_type.map(|t| t.as_str()))
    .bind(&r.apple_account_name)
    .bind(&c.mdm_info)
    .bind(&c.notification_url)
    .bind(&c.notification_token)
    .bind(&c.notification_types)
    .bind(&r.service_config)
    .bind(r.created_at)
    .bind(r.updated_at)
    .bind(expected)
    .fetch_optional(&store.pool)
    .await?;
    if let Some(revision) = new {
        return Ok(codec::to_u64(revision, "location revision")?);
    }
    let current: Option<i64> = sqlx::query_scalar("SELECT revision FROM locations WHERE id = $1")
        .bind(r.id.as_str())
        .fetch_optional(&store.pool)
        .await?;
    Err(match current {
        None => StoreError::not_found("location", &r.id),
        Some(found) => StoreError::version_mismatch("location", &r.id, expected, found),
    }
    .into())
}

pub(crate) async fn get(store: &PostgresStore, id: &LocationId) -> Result<Option<LocationRecord>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM locations WHERE id = $1"))
        .bind(id.as_str())
        .fetch_optional(&store.pool)
        .await
        .map_err(|e| crate::error::db_error(e, "reading a location"))?;
    row.map(|r| from_row(store, &r)).transpose()
}

pub(crate) async fn list(store: &PostgresStore) -> Result<Vec<LocationRecord>> {
    let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM locations ORDER BY id"))
        .fetch_all(&store.pool)
        .await
        .map_err(|e| crate::error::db_error(e, "reading locations"))?;
    rows.iter().map(|r| from_row(store, r)).collect()
}

pub(crate) async fn delete(store: &PostgresStore, id: &LocationId) -> Result<bool> {
    store
        .retry("deleting a location", || async move {
            let mut tx = store.pool.begin().await?;
            // First the location, which cascades to every table with a foreign key
            // (assets included: their deletion waits for writers holding their
            // locks), then the holdings, which have none; this statement sees the
            // holdings those writers committed.
            let done = sqlx::query("DELETE FROM locations WHERE id = $1")
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM holdings WHERE location_id = $1")
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(done.rows_affected() > 0)
        })
        .await
}
