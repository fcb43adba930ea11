//! `SqliteStore`: the connection, the row decoders and the helpers every role shares.
//! Each role of [`Store`] is implemented in its own module under `store/` (locations,
//! holdings, journal, operations, notifications, leases).

mod holdings;
mod journal;
mod leases;
mod locations;
mod notifications;
mod operations;

use std::collections::HashSet;
use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use sqlx::sqlite::{Sqlite, SqliteConnection, SqliteRow};
use sqlx::{QueryBuilder, Row, SqlitePool};
use vppkit_core::{
    AccountType, Asset, AssetCounts, AssetKey, ClientUserId, EventId, Holder, HoldingStatus,
    LocationId, MdmInfo, NotificationId, Platform, ProductType, Secret, TokenState, Uid, VppUser,
    VppUserStatus,
};
use vppkit_store::{
    AssetRecord, HoldingCounts, HoldingKey, HoldingRecord, HoldingStore, HoldingTransition,
    HoldingUpsert, InstallRecord, InstallState, JournalQuery, JournalRecord, JournalStore, Lease,
    LeaseStore, LocationRecord, LocationStore, NewJournalRecord, NotificationSettings,
    NotificationStore, Operation, OperationKind, OperationStatus, OperationStore, OperationUpdate,
    PackedJournal, Reservation, Result, SecretCipher, StoreError, SyncCursor, SyncEndpoint,
    SyncPage, SyncStatus, SyncSummary, UserRecord, APPENDS_PER_READ,
};

use crate::codec::*;
use crate::documents::{check_fence, put_document_in};
use crate::error::db;

/// Rows per multi-row statement (well under SQLite's 32,766 bound parameters).
const CHUNK: usize = 500;

const TOKEN: &str = "content token";
const AUTH_TOKEN: &str = "notification auth token";

/// The SQLite backend of [`Store`](vppkit_store::Store): one database file (or memory), WAL, embedded
/// migrations, secrets sealed with the [`SecretCipher`] given at connect time.
///
/// Every write runs in a `BEGIN IMMEDIATE` transaction, so writers from several
/// pools or processes on the same file serialize (waiting up to the busy
/// timeout) and a reservation's check and insert are atomic.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use vppkit_store::prelude::*;
/// use vppkit_store::SecretCipher;
/// use vppkit_store_sqlite::SqliteStore;
///
/// let key = SecretCipher::generate_key_base64();
/// let store = SqliteStore::in_memory(SecretCipher::from_base64(key.expose())?).await?;
/// assert!(store.locations().await?.is_empty());
/// # Ok::<(), vppkit_store::StoreError>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    /// Reads.
    pool: SqlitePool,
    /// Every write, on one connection: SQLite lets one writer in at a time anyway, and
    /// a connection drops its whole page cache when another connection of the file has
    /// written since its last transaction, so writes spread over the pool would start
    /// cold each time (a first sync spent a fifth of its SQLite time re-reading the
    /// B-tree pages of the page before). In memory, the same pool as reads.
    writer: SqlitePool,
    cipher: SecretCipher,
    url: String,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("url", &self.url)
            .field("connections", &(self.pool.size() + self.writer.size()))
            .field("cipher", &self.cipher)
            .finish()
    }
}

impl SqliteStore {
    /// Finishes a holdings query with the keyset page after `after`, in key order.
    async fn holdings_after(
        &self,
        mut qb: QueryBuilder<'_, Sqlite>,
        location: &LocationId,
        after: Option<&HoldingKey>,
        limit: i64,
    ) -> Result<Vec<HoldingRecord>> {
        if let Some(k) = after {
            qb.push(" AND (adam_id, pricing_param, holder) > (")
                .push_bind(k.asset.adam_id.as_str().to_owned())
                .push(", ")
                .push_bind(k.asset.pricing_param.as_str())
                .push(", ")
                .push_bind(k.holder.to_string())
                .push(")");
        }
        qb.push(" ORDER BY adam_id, pricing_param, holder LIMIT ")
            .push_bind(limit);
        qb.build()
            .fetch_all(&self.pool)
            .await
            .map_err(db)
            .and_then(|rows| holdings_from_rows(location, &rows))
    }

    pub(crate) fn from_parts(
        pool: SqlitePool,
        writer: SqlitePool,
        cipher: SecretCipher,
        url: String,
    ) -> Self {
        Self {
            pool,
            writer,
            cipher,
            url,
        }
    }

    /// Opens (creating with `?mode=rwc`) the database at a URL such as
    /// `sqlite:///var/lib/mdm/vpp.db?mode=rwc` and migrates it.
    pub async fn connect(url: &str, cipher: SecretCipher) -> Result<Self> {
        url.parse::<crate::SqliteStoreOptions>()?
            .connect(cipher)
            .await
    }

    /// A private in-memory database.
    pub async fn in_memory(cipher: SecretCipher) -> Result<Self> {
        crate::SqliteStoreOptions::in_memory().connect(cipher).await
    }

    /// The newest migration applied to the database.
    pub async fn schema_version(&self) -> Result<i64> {
        crate::migrate::applied_version(&self.pool).await
    }

    /// The newest schema version this build knows.
    pub fn latest_schema_version() -> i64 {
        crate::migrate::latest_version()
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }

    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The pool of the one write connection (see [`SqliteStore`]).
    pub(crate) fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    pub(crate) async fn write(&self) -> Result<sqlx::Transaction<'static, Sqlite>> {
        self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(db)
    }

    fn location_from_row(&self, row: &SqliteRow) -> Result<LocationRecord> {
        let id: String = row.try_get("id").map_err(db)?;
        let id = LocationId::new(id).map_err(|e| StoreError::corrupt("location id", e))?;
        let token_blob: Vec<u8> = row.try_get("token").map_err(db)?;
        let token = self.cipher.open(&token_blob, &token_context(&id), TOKEN)?;
        let url: Option<String> = row.try_get("notification_url").map_err(db)?;
        let notification = match url {
            None => None,
            Some(url) => {
                let blob: Option<Vec<u8>> = row.try_get("notification_auth_token").map_err(db)?;
                let auth = match blob {
                    Some(b) => self.cipher.open(&b, &auth_context(&id), AUTH_TOKEN)?,
                    None => Secret::default(),
                };
                let types: Option<String> = row.try_get("notification_types").map_err(db)?;
                let types = match types {
                    Some(t) => from_json(&t, "notification types")?,
                    None => Vec::new(),
                };
                Some(NotificationSettings::new(url, auth, types))
            }
        };
        let uid: Option<String> = row.try_get("uid").map_err(db)?;
        let account: Option<String> = row.try_get("account_type").map_err(db)?;
        let mdm: Option<String> = row.try_get("mdm_info").map_err(db)?;
        let config: Option<String> = row.try_get("service_config").map_err(db)?;
        let state: String = row.try_get("token_state").map_err(db)?;
        let name: String = row.try_get("name").map_err(db)?;
        let mut rec = LocationRecord::new(
            id,
            name,
            token,
            from_ts(row.try_get("token_expires_at").map_err(db)?),
            from_ts(row.try_get("created_at").map_err(db)?),
        );
        rec.token_state = parse::<TokenState>(&state, "token state")?;
        rec.uid = uid
            .map(|u| Uid::new(u).map_err(|e| StoreError::corrupt("uId", e)))
            .transpose()?;
        rec.country = row.try_get("country").map_err(db)?;
        rec.account_type = account
            .map(|a| parse::<AccountType>(&a, "account type"))
            .transpose()?;
        rec.apple_account_name = row.try_get("apple_account_name").map_err(db)?;
        rec.mdm_info = mdm
            .map(|m| from_json::<MdmInfo>(&m, "mdmInfo"))
            .transpose()?;
        rec.notification = notification;
        rec.service_config = config
            .map(|c| from_json(&c, "service config"))
            .transpose()?;
        rec.updated_at = from_ts(row.try_get("updated_at").map_err(db)?);
        rec.revision = to_u64(row.try_get("revision").map_err(db)?, "revision")?;
        Ok(rec)
    }
}

fn token_context(id: &LocationId) -> String {
    format!("location:{id}:token")
}

fn auth_context(id: &LocationId) -> String {
    format!("location:{id}:notification_auth_token")
}

async fn require_location(conn: &mut SqliteConnection, id: &LocationId) -> Result<()> {
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM locations WHERE id = ?")
        .bind(id.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
    found
        .map(drop)
        .ok_or_else(|| StoreError::not_found("location", id))
}

/// Rows per statement when a whole batch travels as one JSON parameter (bounds
/// the size of that parameter; SQLite's bound-variable limit does not apply).
const JSON_CHUNK: usize = 5_000;

/// One JSON array per batch, unpacked by SQLite's `json_each`: a single bound
/// parameter instead of one per column and row, which is far cheaper in sqlx.
fn json_rows<T: serde::Serialize>(rows: &[T]) -> Result<String> {
    json_text(rows)
}

/// Appends journal records as one row of [`PackedJournal`] text, plus one row
/// per distinct asset and holder they name in the journal's index tables (each
/// list bound as one JSON parameter, unpacked by `json_each`).
async fn append_journal_in(
    conn: &mut SqliteConnection,
    location: &LocationId,
    records: &[NewJournalRecord],
) -> Result<u64> {
    let Some(packed) = PackedJournal::pack(records)? else {
        let seq: Option<i64> = sqlx::query_scalar("SELECT journal_seq FROM locations WHERE id = ?")
            .bind(location.as_str())
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
        let seq = seq.ok_or_else(|| StoreError::not_found("location", location))?;
        return to_u64(seq, "journal seq");
    };
    let n = i64::try_from(packed.len).map_err(|_| StoreError::invalid("journal", "too many"))?;
    let last: Option<i64> = sqlx::query_scalar(
        "UPDATE locations SET journal_seq = journal_seq + ? WHERE id = ? RETURNING journal_seq",
    )
    .bind(n)
    .bind(location.as_str())
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?;
    let last = last.ok_or_else(|| StoreError::not_found("location", location))?;
    let first = last - n + 1;
    sqlx::query(
        "INSERT INTO journal_appends (location_id, first_seq, last_seq, min_at, max_at, records) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(location.as_str())
    .bind(first)
    .bind(last)
    .bind(ts(packed.min_at)?)
    .bind(ts(packed.max_at)?)
    .bind(&packed.text)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    if !packed.assets.is_empty() {
        let assets: Vec<(&str, &str)> = packed
            .assets
            .iter()
            .map(|a| (a.adam_id.as_str(), a.pricing_param.as_str()))
            .collect();
        sqlx::query(
            "INSERT INTO journal_assets (location_id, adam_id, pricing_param, first_seq) \
             SELECT ?1, value ->> 0, value ->> 1, ?2 FROM json_each(?3)",
        )
        .bind(location.as_str())
        .bind(first)
        .bind(json_rows(&assets)?)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    }
    if !packed.holders.is_empty() {
        let holders: Vec<String> = packed.holders.iter().map(ToString::to_string).collect();
        sqlx::query(
            "INSERT INTO journal_holders (location_id, holder, first_seq) \
             SELECT ?1, value, ?2 FROM json_each(?3)",
        )
        .bind(location.as_str())
        .bind(first)
        .bind(json_rows(&holders)?)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    }
    to_u64(last, "journal seq")
}

/// Per-asset changes of the held count, applied in one statement.
#[derive(Default)]
struct HeldDelta(std::collections::HashMap<(String, String), i64>);

impl HeldDelta {
    fn add(&mut self, adam_id: String, pricing_param: String, n: i64) {
        *self.0.entry((adam_id, pricing_param)).or_default() += n;
    }

    async fn apply(self, conn: &mut SqliteConnection, location: &LocationId) -> Result<()> {
        let deltas: Vec<_> = self.0.into_iter().filter(|(_, n)| *n != 0).collect();
        for chunk in deltas.chunks(CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "UPDATE assets SET held_count = held_count + d.n FROM (SELECT column1 AS adam_id, \
                 column2 AS pricing_param, column3 AS n FROM (VALUES ",
            );
            let mut sep = qb.separated(", ");
            for ((adam, pp), n) in chunk {
                sep.push("(")
                    .push_bind_unseparated(adam.clone())
                    .push_unseparated(", ")
                    .push_bind_unseparated(pp.clone())
                    .push_unseparated(", ")
                    .push_bind_unseparated(*n)
                    .push_unseparated(")");
            }
            qb.push(")) AS d WHERE assets.location_id = ")
                .push_bind(location.as_str().to_owned())
                .push(" AND assets.adam_id = d.adam_id AND assets.pricing_param = d.pricing_param");
            qb.build().execute(&mut *conn).await.map_err(db)?;
        }
        Ok(())
    }
}

fn missing_asset(e: sqlx::Error) -> StoreError {
    let e = db(e);
    if e.kind() == vppkit_store::ErrorKind::NotFound {
        StoreError::not_found("asset", "referenced by a holding of this page")
    } else {
        e
    }
}

/// Inserts new holdings and overwrites existing ones, keeping each asset's held
/// count right; a key repeated in `holdings` ends with its last occurrence.
///
/// Per chunk, two statements with one JSON parameter each: the held counts are
/// raised by the number of distinct keys not stored yet (primary-key probes inside
/// SQLite), then every row goes through one `INSERT ... ON CONFLICT DO UPDATE` in
/// the order given.
async fn upsert_holdings_in(
    conn: &mut SqliteConnection,
    location: &LocationId,
    holdings: &[HoldingUpsert],
    at: i64,
) -> Result<()> {
    for chunk in holdings.chunks(JSON_CHUNK) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|h| {
                (
                    h.asset.adam_id.as_str(),
                    h.asset.pricing_param.as_str(),
                    h.holder.to_string(),
                    h.status.as_str(),
                    h.operation_id.as_deref(),
                )
            })
            .collect();
        let json = json_rows(&rows)?;
        sqlx::query(
            "UPDATE assets SET held_count = held_count + d.n FROM (\
             SELECT p.value ->> 0 AS adam_id, p.value ->> 1 AS pricing_param, \
             COUNT(DISTINCT p.value ->> 2) AS n FROM json_each(?) AS p \
             WHERE NOT EXISTS (SELECT 1 FROM holdings AS h WHERE h.location_id = ? \
             AND h.adam_id = p.value ->> 0 AND h.pricing_param = p.value ->> 1 \
             AND h.holder = p.value ->> 2) GROUP BY 1, 2) AS d \
             WHERE assets.location_id = ? AND assets.adam_id = d.adam_id \
             AND assets.pricing_param = d.pricing_param",
        )
        .bind(json.as_str())
        .bind(location.as_str())
        .bind(location.as_str())
        .execute(&mut *conn)
        .await
        .map_err(db)?;
        sqlx::query(
            "INSERT INTO holdings (location_id, adam_id, pricing_param, holder, status, \
             operation_id, updated_at) \
             SELECT ?, j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, \
             j.value ->> 4, ? FROM json_each(?) AS j WHERE true ORDER BY j.key \
             ON CONFLICT (location_id, adam_id, pricing_param, holder) DO UPDATE SET \
             status = excluded.status, operation_id = excluded.operation_id, \
             updated_at = excluded.updated_at",
        )
        .bind(location.as_str())
        .bind(at)
        .bind(json.as_str())
        .execute(&mut *conn)
        .await
        .map_err(missing_asset)?;
    }
    Ok(())
}

/// The JSON array `[[adam_id, pricing_param, holder], ...]` of some holding keys.
fn keys_json(keys: &[HoldingKey]) -> Result<String> {
    let rows: Vec<_> = keys
        .iter()
        .map(|k| {
            (
                k.asset.adam_id.as_str(),
                k.asset.pricing_param.as_str(),
                k.holder.to_string(),
            )
        })
        .collect();
    json_rows(&rows)
}

/// Deletes holdings by key, keeping the held counts right; returns how many.
async fn delete_holdings_in(
    conn: &mut SqliteConnection,
    location: &LocationId,
    keys: &[HoldingKey],
) -> Result<u64> {
    let mut delta = HeldDelta::default();
    let mut n = 0;
    for chunk in keys.chunks(JSON_CHUNK) {
        let deleted = sqlx::query(
            "DELETE FROM holdings WHERE location_id = ? \
             AND (adam_id, pricing_param, holder) IN \
             (SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?)) \
             RETURNING adam_id, pricing_param",
        )
        .bind(location.as_str())
        .bind(keys_json(chunk)?)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
        for row in deleted {
            delta.add(row.try_get(0).map_err(db)?, row.try_get(1).map_err(db)?, -1);
            n += 1;
        }
    }
    delta.apply(conn, location).await?;
    Ok(n)
}

/// Decodes the rows of a holdings query.
fn holdings_from_rows(location: &LocationId, rows: &[SqliteRow]) -> Result<Vec<HoldingRecord>> {
    rows.iter()
        .map(|row| holding_from_row(location, row))
        .collect()
}

fn holding_from_row(location: &LocationId, row: &SqliteRow) -> Result<HoldingRecord> {
    let adam: String = row.try_get("adam_id").map_err(db)?;
    let pp: String = row.try_get("pricing_param").map_err(db)?;
    let holder_text: String = row.try_get("holder").map_err(db)?;
    let status: String = row.try_get("status").map_err(db)?;
    let mut upsert = HoldingUpsert::new(
        asset_key(&adam, &pp)?,
        holder(&holder_text)?,
        parse::<HoldingStatus>(&status, "holding status")?,
    );
    if let Some(op) = row
        .try_get::<Option<String>, _>("operation_id")
        .map_err(db)?
    {
        upsert = upsert.with_operation(op);
    }
    Ok(HoldingRecord::from_upsert(
        location.clone(),
        upsert,
        from_ts(row.try_get("updated_at").map_err(db)?),
    ))
}

const HOLDING_COLS: &str = "adam_id, pricing_param, holder, status, operation_id, updated_at";

fn asset_from_row(row: &SqliteRow) -> Result<AssetRecord> {
    let adam: String = row.try_get("adam_id").map_err(db)?;
    let pp: String = row.try_get("pricing_param").map_err(db)?;
    let product: String = row.try_get("product_type").map_err(db)?;
    let platforms: String = row.try_get("platforms").map_err(db)?;
    let platforms: Vec<Platform> = from_json(&platforms, "platforms")?;
    let counts = AssetCounts::new(
        to_u32(row.try_get("total_count").map_err(db)?, "total count")?,
        to_u32(row.try_get("assigned_count").map_err(db)?, "assigned count")?,
        to_u32(
            row.try_get("available_count").map_err(db)?,
            "available count",
        )?,
        to_u32(row.try_get("retired_count").map_err(db)?, "retired count")?,
    );
    let asset = Asset::new(
        asset_key(&adam, &pp)?,
        parse::<ProductType>(&product, "product type")?,
        row.try_get("device_assignable").map_err(db)?,
        row.try_get("revocable").map_err(db)?,
        platforms,
        counts,
    );
    let metadata: Option<String> = row.try_get("metadata").map_err(db)?;
    Ok(AssetRecord::new(
        asset,
        metadata
            .map(|m| from_json(&m, "asset metadata"))
            .transpose()?,
        from_ts(row.try_get("updated_at").map_err(db)?),
    ))
}

fn user_from_row(row: &SqliteRow) -> Result<UserRecord> {
    let id: String = row.try_get("client_user_id").map_err(db)?;
    let status: String = row.try_get("status").map_err(db)?;
    let mut user = VppUser::new(
        ClientUserId::new(id).map_err(|e| StoreError::corrupt("clientUserId", e))?,
        parse::<VppUserStatus>(&status, "user status")?,
    );
    user.email = row.try_get("email").map_err(db)?;
    user.managed_apple_id = row.try_get("managed_apple_id").map_err(db)?;
    user.invite_code = row.try_get("invite_code").map_err(db)?;
    user.id_hash = row.try_get("id_hash").map_err(db)?;
    Ok(UserRecord::new(
        user,
        row.try_get("managed_by_us").map_err(db)?,
        from_ts(row.try_get("updated_at").map_err(db)?),
    ))
}

fn operation_from_row(row: &SqliteRow) -> Result<Operation> {
    let location: String = row.try_get("location_id").map_err(db)?;
    let kind: String = row.try_get("kind").map_err(db)?;
    let status: String = row.try_get("status").map_err(db)?;
    let request: String = row.try_get("request").map_err(db)?;
    let mut op = Operation::new(
        row.try_get::<String, _>("id").map_err(db)?,
        LocationId::new(location).map_err(|e| StoreError::corrupt("location id", e))?,
        parse::<OperationKind>(&kind, "operation kind")?,
        from_json(&request, "operation request")?,
        from_ts(row.try_get("created_at").map_err(db)?),
    );
    op.status = parse::<OperationStatus>(&status, "operation status")?;
    op.event_id = row
        .try_get::<Option<String>, _>("event_id")
        .map_err(db)?
        .map(|e| EventId::new(e).map_err(|e| StoreError::corrupt("eventId", e)))
        .transpose()?;
    op.result = row
        .try_get::<Option<String>, _>("result")
        .map_err(db)?
        .map(|r| from_json(&r, "operation result"))
        .transpose()?;
    op.deadline = row
        .try_get::<Option<i64>, _>("deadline")
        .map_err(db)?
        .map(from_ts);
    op.updated_at = from_ts(row.try_get("updated_at").map_err(db)?);
    Ok(op)
}

fn install_from_row(location: &LocationId, row: &SqliteRow) -> Result<InstallRecord> {
    let h: String = row.try_get("holder").map_err(db)?;
    let adam: String = row.try_get("adam_id").map_err(db)?;
    let pp: String = row.try_get("pricing_param").map_err(db)?;
    let state: String = row.try_get("state").map_err(db)?;
    let mut r = InstallRecord::new(
        location.clone(),
        holder(&h)?,
        asset_key(&adam, &pp)?,
        parse::<InstallState>(&state, "install state")?,
        from_ts(row.try_get("updated_at").map_err(db)?),
    );
    r.command_uuid = row.try_get("command_uuid").map_err(db)?;
    r.detail = row
        .try_get::<Option<String>, _>("detail")
        .map_err(db)?
        .map(|d| from_json(&d, "install detail"))
        .transpose()?;
    Ok(r)
}

fn lease_from_row(row: &SqliteRow) -> Result<Lease> {
    Ok(Lease::new(
        row.try_get::<String, _>("name").map_err(db)?,
        row.try_get::<String, _>("owner").map_err(db)?,
        to_u64(row.try_get("token").map_err(db)?, "lease token")?,
        from_ts(row.try_get("acquired_at").map_err(db)?),
        from_ts(row.try_get("expires_at").map_err(db)?),
    ))
}

pub(crate) async fn lease_in(conn: &mut SqliteConnection, name: &str) -> Result<Option<Lease>> {
    sqlx::query("SELECT name, owner, token, acquired_at, expires_at FROM leases WHERE name = ?")
        .bind(name)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?
        .as_ref()
        .map(lease_from_row)
        .transpose()
}

async fn put_lease_in(conn: &mut SqliteConnection, lease: &Lease) -> Result<()> {
    sqlx::query(
        "INSERT INTO leases (name, owner, token, acquired_at, expires_at) VALUES (?, ?, ?, ?, ?) \
         ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, token = excluded.token, \
         acquired_at = excluded.acquired_at, expires_at = excluded.expires_at",
    )
    .bind(&lease.name)
    .bind(&lease.owner)
    .bind(to_i64(lease.token, "lease token")?)
    .bind(ts(lease.acquired_at)?)
    .bind(ts(lease.expires_at)?)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}
