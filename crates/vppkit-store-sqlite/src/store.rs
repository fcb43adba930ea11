//! `SqliteStore`: the [`Store`] implementation.

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
    Reservation, Result, SecretCipher, StoreError, SyncCursor, SyncEndpoint, SyncOutcome, SyncPage,
    SyncStatus, UserRecord,
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
    pool: SqlitePool,
    cipher: SecretCipher,
    url: String,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("url", &self.url)
            .field("connections", &self.pool.size())
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

    pub(crate) fn from_parts(pool: SqlitePool, cipher: SecretCipher, url: String) -> Self {
        Self { pool, cipher, url }
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
        self.pool.close().await;
    }

    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub(crate) async fn write(&self) -> Result<sqlx::Transaction<'static, Sqlite>> {
        self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)
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

/// Appends journal records with multi-row `INSERT ... VALUES` statements.
///
/// Not `json_each`: with a JSON body per record, unpacking nested arrays made
/// SQLite re-parse every row several times and measured slower (see
/// docs/performance.md).
async fn append_journal_in(
    conn: &mut SqliteConnection,
    location: &LocationId,
    records: &[NewJournalRecord],
) -> Result<u64> {
    if records.is_empty() {
        let seq: Option<i64> = sqlx::query_scalar("SELECT journal_seq FROM locations WHERE id = ?")
            .bind(location.as_str())
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
        let seq = seq.ok_or_else(|| StoreError::not_found("location", location))?;
        return to_u64(seq, "journal seq");
    }
    let n = i64::try_from(records.len()).map_err(|_| StoreError::invalid("journal", "too many"))?;
    let last: Option<i64> = sqlx::query_scalar(
        "UPDATE locations SET journal_seq = journal_seq + ? WHERE id = ? RETURNING journal_seq",
    )
    .bind(n)
    .bind(location.as_str())
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?;
    let last = last.ok_or_else(|| StoreError::not_found("location", location))?;
    let mut seq = last - n;
    for chunk in records.chunks(CHUNK) {
        let mut rows = Vec::with_capacity(chunk.len());
        for r in chunk {
            seq += 1;
            rows.push((
                seq,
                ts(r.at)?,
                r.asset.as_ref().map(|a| a.adam_id.as_str().to_owned()),
                r.asset.as_ref().map(|a| a.pricing_param.as_str()),
                r.holder.as_ref().map(ToString::to_string),
                r.cause.clone(),
                r.kind.clone(),
                json_text(&r.body)?,
            ));
        }
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO journal (location_id, seq, at, adam_id, pricing_param, holder, cause, kind, body) ",
        );
        qb.push_values(rows, |mut b, row| {
            b.push_bind(location.as_str().to_owned())
                .push_bind(row.0)
                .push_bind(row.1)
                .push_bind(row.2)
                .push_bind(row.3)
                .push_bind(row.4)
                .push_bind(row.5)
                .push_bind(row.6)
                .push_bind(row.7);
        });
        qb.build().execute(&mut *conn).await.map_err(db)?;
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

fn journal_from_row(location: &LocationId, row: &SqliteRow) -> Result<JournalRecord> {
    let adam: Option<String> = row.try_get("adam_id").map_err(db)?;
    let pp: Option<String> = row.try_get("pricing_param").map_err(db)?;
    let asset = match (adam, pp) {
        (Some(a), Some(p)) => Some(asset_key(&a, &p)?),
        _ => None,
    };
    let h: Option<String> = row.try_get("holder").map_err(db)?;
    let body: String = row.try_get("body").map_err(db)?;
    let mut r = NewJournalRecord::new(
        from_ts(row.try_get("at").map_err(db)?),
        row.try_get::<String, _>("cause").map_err(db)?,
        row.try_get::<String, _>("kind").map_err(db)?,
        from_json(&body, "journal body")?,
    );
    r.asset = asset;
    r.holder = h.map(|h| holder(&h)).transpose()?;
    Ok(JournalRecord::from_new(
        location.clone(),
        to_u64(row.try_get("seq").map_err(db)?, "journal seq")?,
        r,
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

#[async_trait]
impl LocationStore for SqliteStore {
    async fn save_location(&self, r: &LocationRecord) -> Result<u64> {
        let token = self.cipher.seal(&r.token, &token_context(&r.id));
        let auth = r
            .notification
            .as_ref()
            .map(|n| self.cipher.seal(&n.auth_token, &auth_context(&r.id)));
        let types = r
            .notification
            .as_ref()
            .map(|n| json_text(&n.types))
            .transpose()?;
        let mdm = r.mdm_info.as_ref().map(json_text).transpose()?;
        let config = r.service_config.as_ref().map(json_text).transpose()?;
        let mut tx = self.write().await?;
        let current: Option<i64> =
            sqlx::query_scalar("SELECT revision FROM locations WHERE id = ?")
                .bind(r.id.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        let new_revision = match (current, r.revision) {
            (Some(_), 0) => return Err(StoreError::already_exists("location", &r.id)),
            (None, 0) => 1,
            (None, _) => return Err(StoreError::not_found("location", &r.id)),
            (Some(c), rev) if to_u64(c, "revision")? != rev => {
                return Err(StoreError::version_mismatch("location", &r.id, rev, c))
            }
            (Some(_), rev) => rev + 1,
        };
        sqlx::query(
            "INSERT INTO locations (id, name, token, token_expires_at, token_state, uid, country, \
             account_type, apple_account_name, mdm_info, notification_url, \
             notification_auth_token, notification_types, service_config, created_at, \
             updated_at, revision) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, token = excluded.token, \
             token_expires_at = excluded.token_expires_at, token_state = excluded.token_state, \
             uid = excluded.uid, country = excluded.country, account_type = excluded.account_type, \
             apple_account_name = excluded.apple_account_name, mdm_info = excluded.mdm_info, \
             notification_url = excluded.notification_url, \
             notification_auth_token = excluded.notification_auth_token, \
             notification_types = excluded.notification_types, \
             service_config = excluded.service_config, created_at = excluded.created_at, \
             updated_at = excluded.updated_at, revision = excluded.revision",
        )
        .bind(r.id.as_str())
        .bind(&r.name)
        .bind(token)
        .bind(ts(r.token_expires_at)?)
        .bind(r.token_state.as_str())
        .bind(r.uid.as_ref().map(|u| u.as_str()))
        .bind(r.country.as_deref())
        .bind(r.account_type.map(|a| a.as_str()))
        .bind(r.apple_account_name.as_deref())
        .bind(mdm)
        .bind(r.notification.as_ref().map(|n| n.url.as_str()))
        .bind(auth)
        .bind(types)
        .bind(config)
        .bind(ts(r.created_at)?)
        .bind(ts(r.updated_at)?)
        .bind(to_i64(new_revision, "revision")?)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(new_revision)
    }

    async fn location(&self, id: &LocationId) -> Result<Option<LocationRecord>> {
        sqlx::query("SELECT * FROM locations WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .map(|row| self.location_from_row(&row))
            .transpose()
    }

    async fn locations(&self) -> Result<Vec<LocationRecord>> {
        sqlx::query("SELECT * FROM locations ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(|row| self.location_from_row(row))
            .collect()
    }

    async fn delete_location(&self, id: &LocationId) -> Result<bool> {
        let mut tx = self.write().await?;
        // Holdings first, without the per-row count trigger work on assets that go too.
        sqlx::query("DELETE FROM holdings WHERE location_id = ?")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let n = sqlx::query("DELETE FROM locations WHERE id = ?")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
        tx.commit().await.map_err(db)?;
        Ok(n > 0)
    }

    async fn sync_status(&self, location: &LocationId) -> Result<SyncStatus> {
        let row = sqlx::query(
            "SELECT last_sync_at, last_sync_success, last_sync_message \
             FROM locations WHERE id = ?",
        )
        .bind(location.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?
        .ok_or_else(|| StoreError::not_found("location", location))?;
        let at: Option<i64> = row.try_get("last_sync_at").map_err(db)?;
        let last_outcome = match at {
            None => None,
            Some(at) => {
                let success: bool = row.try_get("last_sync_success").map_err(db)?;
                let message: Option<String> = row.try_get("last_sync_message").map_err(db)?;
                Some(if success {
                    let mut o = SyncOutcome::success(from_ts(at));
                    o.message = message;
                    o
                } else {
                    let mut o = SyncOutcome::failure(from_ts(at), "");
                    o.message = message;
                    o
                })
            }
        };
        let rows = sqlx::query(
            "SELECT endpoint, version_id, next_page, updated_at FROM sync_cursors \
             WHERE location_id = ?",
        )
        .bind(location.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let mut cursors = Vec::with_capacity(rows.len());
        for row in &rows {
            let ep: String = row.try_get("endpoint").map_err(db)?;
            let next: Option<i64> = row.try_get("next_page").map_err(db)?;
            cursors.push((
                parse::<SyncEndpoint>(&ep, "sync endpoint")?,
                SyncCursor::new(
                    row.try_get::<String, _>("version_id").map_err(db)?,
                    next.map(|n| to_u32(n, "next page")).transpose()?,
                    from_ts(row.try_get("updated_at").map_err(db)?),
                ),
            ));
        }
        cursors.sort_by_key(|(e, _)| *e);
        Ok(SyncStatus::new(cursors, last_outcome))
    }

    async fn record_sync_outcome(
        &self,
        location: &LocationId,
        outcome: &SyncOutcome,
    ) -> Result<()> {
        let n = sqlx::query(
            "UPDATE locations SET last_sync_at = ?, last_sync_success = ?, last_sync_message = ? \
             WHERE id = ?",
        )
        .bind(ts(outcome.at)?)
        .bind(outcome.success)
        .bind(outcome.message.as_deref())
        .bind(location.as_str())
        .execute(&self.pool)
        .await
        .map_err(db)?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::not_found("location", location));
        }
        Ok(())
    }

    async fn asset(&self, location: &LocationId, key: &AssetKey) -> Result<Option<AssetRecord>> {
        sqlx::query(
            "SELECT * FROM assets WHERE location_id = ? AND adam_id = ? AND pricing_param = ?",
        )
        .bind(location.as_str())
        .bind(key.adam_id.as_str())
        .bind(key.pricing_param.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?
        .as_ref()
        .map(asset_from_row)
        .transpose()
    }

    async fn assets(&self, location: &LocationId) -> Result<Vec<AssetRecord>> {
        sqlx::query("SELECT * FROM assets WHERE location_id = ? ORDER BY adam_id, pricing_param")
            .bind(location.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(asset_from_row)
            .collect()
    }

    async fn user(&self, location: &LocationId, id: &ClientUserId) -> Result<Option<UserRecord>> {
        sqlx::query("SELECT * FROM users WHERE location_id = ? AND client_user_id = ?")
            .bind(location.as_str())
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn users_page(
        &self,
        location: &LocationId,
        after: Option<&ClientUserId>,
        limit: u32,
    ) -> Result<Vec<UserRecord>> {
        let limit = check_limit(limit)?;
        sqlx::query(
            "SELECT * FROM users WHERE location_id = ? AND client_user_id > ? \
             ORDER BY client_user_id LIMIT ?",
        )
        .bind(location.as_str())
        .bind(after.map(|a| a.as_str()).unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?
        .iter()
        .map(user_from_row)
        .collect()
    }
}

#[async_trait]
impl HoldingStore for SqliteStore {
    async fn apply_sync_page(&self, location: &LocationId, page: &SyncPage) -> Result<Option<u64>> {
        let at = ts(page.at.unwrap_or_else(Utc::now))?;
        let mut tx = self.write().await?;
        check_fence(&mut tx, page.fence.as_ref()).await?;
        require_location(&mut tx, location).await?;
        let loc = location.as_str().to_owned();
        if let Some(id) = &page.notification {
            let n = sqlx::query(
                "INSERT INTO notifications (id, location_id, at) VALUES (?, ?, ?) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(id.as_str())
            .bind(&loc)
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::already_exists("notification", id));
            }
        }
        for d in &page.documents {
            put_document_in(&mut tx, d, None).await?;
        }

        for chunk in page.upsert_assets.chunks(CHUNK) {
            let mut rows = Vec::with_capacity(chunk.len());
            for a in chunk {
                rows.push((a, json_text(&a.supported_platforms)?));
            }
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO assets (location_id, adam_id, pricing_param, product_type, \
                 device_assignable, revocable, platforms, total_count, assigned_count, \
                 available_count, retired_count, updated_at) ",
            );
            qb.push_values(rows, |mut b, (a, platforms)| {
                b.push_bind(loc.clone())
                    .push_bind(a.key.adam_id.as_str().to_owned())
                    .push_bind(a.key.pricing_param.as_str())
                    .push_bind(a.product_type.as_str())
                    .push_bind(a.device_assignable)
                    .push_bind(a.revocable)
                    .push_bind(platforms)
                    .push_bind(i64::from(a.counts.total))
                    .push_bind(i64::from(a.counts.assigned))
                    .push_bind(i64::from(a.counts.available))
                    .push_bind(i64::from(a.counts.retired))
                    .push_bind(at);
            });
            qb.push(
                " ON CONFLICT (location_id, adam_id, pricing_param) DO UPDATE SET \
                 product_type = excluded.product_type, \
                 device_assignable = excluded.device_assignable, \
                 revocable = excluded.revocable, platforms = excluded.platforms, \
                 total_count = excluded.total_count, assigned_count = excluded.assigned_count, \
                 available_count = excluded.available_count, \
                 retired_count = excluded.retired_count, updated_at = excluded.updated_at",
            );
            qb.build().execute(&mut *tx).await.map_err(db)?;
        }
        for (key, metadata) in &page.asset_metadata {
            let n = sqlx::query(
                "UPDATE assets SET metadata = ?, updated_at = ? \
                 WHERE location_id = ? AND adam_id = ? AND pricing_param = ?",
            )
            .bind(json_text(metadata)?)
            .bind(at)
            .bind(&loc)
            .bind(key.adam_id.as_str())
            .bind(key.pricing_param.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::not_found("asset", key));
            }
        }
        for chunk in page.upsert_users.chunks(CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO users (location_id, client_user_id, email, managed_apple_id, \
                 invite_code, id_hash, status, managed_by_us, updated_at) ",
            );
            qb.push_values(chunk, |mut b, (u, managed)| {
                b.push_bind(loc.clone())
                    .push_bind(u.client_user_id.as_str().to_owned())
                    .push_bind(u.email.clone())
                    .push_bind(u.managed_apple_id.clone())
                    .push_bind(u.invite_code.clone())
                    .push_bind(u.id_hash.clone())
                    .push_bind(u.status.as_str())
                    .push_bind(*managed)
                    .push_bind(at);
            });
            qb.push(
                " ON CONFLICT (location_id, client_user_id) DO UPDATE SET email = excluded.email, \
                 managed_apple_id = excluded.managed_apple_id, \
                 invite_code = excluded.invite_code, id_hash = excluded.id_hash, \
                 status = excluded.status, managed_by_us = excluded.managed_by_us, \
                 updated_at = excluded.updated_at",
            );
            qb.build().execute(&mut *tx).await.map_err(db)?;
        }
        for chunk in page.delete_users.chunks(CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new("DELETE FROM users WHERE location_id = ");
            qb.push_bind(loc.clone()).push(" AND client_user_id IN (");
            let mut sep = qb.separated(", ");
            for id in chunk {
                sep.push_bind(id.as_str().to_owned());
            }
            qb.push(")");
            qb.build().execute(&mut *tx).await.map_err(db)?;
        }
        upsert_holdings_in(&mut tx, location, &page.upsert_holdings, at).await?;
        delete_holdings_in(&mut tx, location, &page.delete_holdings).await?;
        let last = append_journal_in(&mut tx, location, &page.journal).await?;
        if let Some(update) = &page.cursor {
            match &update.cursor {
                Some(c) => {
                    sqlx::query(
                        "INSERT INTO sync_cursors (location_id, endpoint, version_id, next_page, \
                         updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (location_id, endpoint) \
                         DO UPDATE SET version_id = excluded.version_id, \
                         next_page = excluded.next_page, updated_at = excluded.updated_at",
                    )
                    .bind(&loc)
                    .bind(update.endpoint.as_str())
                    .bind(&c.version_id)
                    .bind(c.next_page.map(i64::from))
                    .bind(ts(c.updated_at)?)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                }
                None => {
                    sqlx::query("DELETE FROM sync_cursors WHERE location_id = ? AND endpoint = ?")
                        .bind(&loc)
                        .bind(update.endpoint.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                }
            }
        }
        tx.commit().await.map_err(db)?;
        Ok((!page.journal.is_empty()).then_some(last))
    }

    async fn reserve(&self, r: &Reservation) -> Result<u32> {
        let mut seen = HashSet::new();
        for h in &r.holders {
            if !seen.insert(h) {
                return Err(StoreError::invalid(
                    "holders",
                    format!("{h} appears more than once"),
                ));
            }
        }
        let at = ts(r.at)?;
        let mut tx = self.write().await?;
        check_fence(&mut tx, r.fence.as_ref()).await?;
        require_location(&mut tx, &r.location).await?;
        let loc = r.location.as_str();
        let row = sqlx::query(
            "SELECT total_count, retired_count, held_count FROM assets \
             WHERE location_id = ? AND adam_id = ? AND pricing_param = ?",
        )
        .bind(loc)
        .bind(r.asset.adam_id.as_str())
        .bind(r.asset.pricing_param.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?
        .ok_or_else(|| StoreError::not_found("asset", &r.asset))?;
        let total: i64 = row.try_get("total_count").map_err(db)?;
        let retired: i64 = row.try_get("retired_count").map_err(db)?;
        let held: i64 = row.try_get("held_count").map_err(db)?;

        let mut texts: Vec<String> = r.holders.iter().map(ToString::to_string).collect();
        texts.sort();
        for chunk in texts.chunks(CHUNK) {
            let mut qb =
                QueryBuilder::<Sqlite>::new("SELECT holder FROM holdings WHERE location_id = ");
            qb.push_bind(loc.to_owned())
                .push(" AND adam_id = ")
                .push_bind(r.asset.adam_id.as_str().to_owned())
                .push(" AND pricing_param = ")
                .push_bind(r.asset.pricing_param.as_str())
                .push(" AND holder IN (");
            let mut sep = qb.separated(", ");
            for t in chunk {
                sep.push_bind(t.clone());
            }
            qb.push(") ORDER BY holder LIMIT 1");
            let existing: Option<String> = qb
                .build_query_scalar()
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
            if let Some(text) = existing {
                return Err(StoreError::AlreadyHeld {
                    asset: r.asset.clone(),
                    holder: holder(&text)?,
                });
            }
        }

        let holdable = (total - retired).max(0);
        let available = (holdable - held).max(0);
        let requested = i64::try_from(r.holders.len()).unwrap_or(i64::MAX);
        if requested > available {
            return Err(StoreError::InsufficientLicences {
                asset: r.asset.clone(),
                requested: u32::try_from(requested).unwrap_or(u32::MAX),
                available: u32::try_from(available).unwrap_or(u32::MAX),
            });
        }
        let ups: Vec<HoldingUpsert> = r
            .holders
            .iter()
            .map(|h| {
                HoldingUpsert::new(r.asset.clone(), h.clone(), HoldingStatus::Reserved)
                    .with_operation(r.operation_id.clone())
            })
            .collect();
        upsert_holdings_in(&mut tx, &r.location, &ups, at).await?;
        append_journal_in(&mut tx, &r.location, &r.journal).await?;
        tx.commit().await.map_err(db)?;
        Ok(u32::try_from(available - requested).unwrap_or(u32::MAX))
    }

    async fn transition_holdings(
        &self,
        location: &LocationId,
        transitions: &[HoldingTransition],
        journal: &[NewJournalRecord],
        at: DateTime<Utc>,
    ) -> Result<()> {
        let at = ts(at)?;
        let mut keys = HashSet::new();
        for t in transitions {
            if !keys.insert(t.key.sort_key()) {
                return Err(StoreError::invalid(
                    "transitions",
                    format!("{} {} appears more than once", t.key.asset, t.key.holder),
                ));
            }
        }
        let mut tx = self.write().await?;
        require_location(&mut tx, location).await?;
        let loc = location.as_str();
        let mut deletes = Vec::new();
        for t in transitions {
            let what = || format!("{} {}", t.key.asset, t.key.holder);
            let status: Option<String> = sqlx::query_scalar(
                "SELECT status FROM holdings WHERE location_id = ? AND adam_id = ? \
                 AND pricing_param = ? AND holder = ?",
            )
            .bind(loc)
            .bind(t.key.asset.adam_id.as_str())
            .bind(t.key.asset.pricing_param.as_str())
            .bind(t.key.holder.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
            let Some(status) = status else {
                return Err(StoreError::not_found("holding", what()));
            };
            let status = parse::<HoldingStatus>(&status, "holding status")?;
            if let Some(expected) = t.expected {
                if status != expected {
                    return Err(StoreError::version_mismatch(
                        "holding",
                        what(),
                        expected,
                        status,
                    ));
                }
            }
            match t.new_status {
                None => {
                    deletes.push(t.key.clone());
                }
                Some(new) => {
                    sqlx::query(
                        "UPDATE holdings SET status = ?, \
                         operation_id = COALESCE(?, operation_id), updated_at = ? \
                         WHERE location_id = ? AND adam_id = ? AND pricing_param = ? AND holder = ?",
                    )
                    .bind(new.as_str())
                    .bind(t.operation_id.as_deref())
                    .bind(at)
                    .bind(loc)
                    .bind(t.key.asset.adam_id.as_str())
                    .bind(t.key.asset.pricing_param.as_str())
                    .bind(t.key.holder.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                }
            }
        }
        delete_holdings_in(&mut tx, location, &deletes).await?;
        append_journal_in(&mut tx, location, journal).await?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn holding(
        &self,
        location: &LocationId,
        asset: &AssetKey,
        holder: &Holder,
    ) -> Result<Option<HoldingRecord>> {
        sqlx::query(&format!(
            "SELECT {HOLDING_COLS} FROM holdings WHERE location_id = ? AND adam_id = ? \
             AND pricing_param = ? AND holder = ?"
        ))
        .bind(location.as_str())
        .bind(asset.adam_id.as_str())
        .bind(asset.pricing_param.as_str())
        .bind(holder.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?
        .map(|row| holding_from_row(location, &row))
        .transpose()
    }

    async fn holdings_by_asset(
        &self,
        location: &LocationId,
        asset: &AssetKey,
        after: Option<&Holder>,
        limit: u32,
    ) -> Result<Vec<HoldingRecord>> {
        let limit = check_limit(limit)?;
        sqlx::query(&format!(
            "SELECT {HOLDING_COLS} FROM holdings WHERE location_id = ? AND adam_id = ? \
             AND pricing_param = ? AND holder > ? ORDER BY holder LIMIT ?"
        ))
        .bind(location.as_str())
        .bind(asset.adam_id.as_str())
        .bind(asset.pricing_param.as_str())
        .bind(after.map(ToString::to_string).unwrap_or_default())
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(db)
        .and_then(|rows| holdings_from_rows(location, &rows))
    }

    async fn holdings_by_holder(
        &self,
        location: &LocationId,
        holder: &Holder,
    ) -> Result<Vec<HoldingRecord>> {
        sqlx::query(&format!(
            "SELECT {HOLDING_COLS} FROM holdings WHERE location_id = ? AND holder = ? \
             ORDER BY adam_id, pricing_param"
        ))
        .bind(location.as_str())
        .bind(holder.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(db)
        .and_then(|rows| holdings_from_rows(location, &rows))
    }

    async fn holdings_by_operation(
        &self,
        location: &LocationId,
        operation_id: &str,
    ) -> Result<Vec<HoldingRecord>> {
        sqlx::query(&format!(
            "SELECT {HOLDING_COLS} FROM holdings WHERE location_id = ? AND operation_id = ? \
             ORDER BY adam_id, pricing_param, holder"
        ))
        .bind(location.as_str())
        .bind(operation_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db)
        .and_then(|rows| holdings_from_rows(location, &rows))
    }

    async fn holdings_page(
        &self,
        location: &LocationId,
        after: Option<&HoldingKey>,
        limit: u32,
    ) -> Result<Vec<HoldingRecord>> {
        let limit = check_limit(limit)?;
        let mut qb = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {HOLDING_COLS} FROM holdings WHERE location_id = "
        ));
        qb.push_bind(location.as_str().to_owned());
        self.holdings_after(qb, location, after, limit).await
    }

    async fn holding_counts(
        &self,
        location: &LocationId,
        asset: &AssetKey,
    ) -> Result<HoldingCounts> {
        let rows = sqlx::query(
            "SELECT status, COUNT(*) AS n FROM holdings WHERE location_id = ? AND adam_id = ? \
             AND pricing_param = ? GROUP BY status",
        )
        .bind(location.as_str())
        .bind(asset.adam_id.as_str())
        .bind(asset.pricing_param.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let mut counts = HoldingCounts::default();
        for row in rows {
            let status: String = row.try_get("status").map_err(db)?;
            let n: i64 = row.try_get("n").map_err(db)?;
            counts.add(
                parse::<HoldingStatus>(&status, "holding status")?,
                to_u64(n, "count")?,
            );
        }
        Ok(counts)
    }
}

#[async_trait]
impl JournalStore for SqliteStore {
    async fn append_journal(
        &self,
        location: &LocationId,
        records: &[NewJournalRecord],
    ) -> Result<u64> {
        let mut tx = self.write().await?;
        let last = append_journal_in(&mut tx, location, records).await?;
        tx.commit().await.map_err(db)?;
        Ok(last)
    }

    async fn read_journal(&self, q: &JournalQuery) -> Result<Vec<JournalRecord>> {
        let limit = check_limit(q.limit)?;
        let mut qb = QueryBuilder::<Sqlite>::new("SELECT * FROM journal WHERE location_id = ");
        qb.push_bind(q.location.as_str().to_owned());
        if let Some(a) = &q.asset {
            qb.push(" AND adam_id = ")
                .push_bind(a.adam_id.as_str().to_owned())
                .push(" AND pricing_param = ")
                .push_bind(a.pricing_param.as_str());
        }
        if let Some(h) = &q.holder {
            qb.push(" AND holder = ").push_bind(h.to_string());
        }
        if let Some(since) = q.since {
            qb.push(" AND at >= ").push_bind(ts(since)?);
        }
        if let Some(until) = q.until {
            qb.push(" AND at < ").push_bind(ts(until)?);
        }
        if let Some(after) = q.after_seq {
            qb.push(" AND seq > ")
                .push_bind(to_i64(after, "journal seq")?);
        }
        qb.push(" ORDER BY seq LIMIT ").push_bind(limit);
        qb.build()
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(|row| journal_from_row(&q.location, row))
            .collect()
    }
}

#[async_trait]
impl OperationStore for SqliteStore {
    async fn insert_operation(&self, op: &Operation) -> Result<()> {
        if op.id.is_empty() {
            return Err(StoreError::invalid("operation id", "must not be empty"));
        }
        let mut tx = self.write().await?;
        require_location(&mut tx, &op.location).await?;
        let r = sqlx::query(
            "INSERT INTO operations (id, location_id, kind, request, event_id, status, result, \
             created_at, deadline, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&op.id)
        .bind(op.location.as_str())
        .bind(op.kind.as_str())
        .bind(json_text(&op.request)?)
        .bind(op.event_id.as_ref().map(|e| e.as_str()))
        .bind(op.status.as_str())
        .bind(op.result.as_ref().map(json_text).transpose()?)
        .bind(ts(op.created_at)?)
        .bind(opt_ts(op.deadline)?)
        .bind(ts(op.updated_at)?)
        .execute(&mut *tx)
        .await;
        match r {
            Ok(_) => {}
            Err(e) => {
                let e = db(e);
                if e.kind() == vppkit_store::ErrorKind::Conflict {
                    return Err(StoreError::already_exists("operation", &op.id));
                }
                return Err(e);
            }
        }
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn update_operation(&self, id: &str, u: &OperationUpdate) -> Result<Operation> {
        let mut tx = self.write().await?;
        check_fence(&mut tx, u.fence.as_ref()).await?;
        let mut op = sqlx::query("SELECT * FROM operations WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?
            .as_ref()
            .map(operation_from_row)
            .transpose()?
            .ok_or_else(|| StoreError::not_found("operation", id))?;
        if let Some(expected) = u.expected_status {
            if op.status != expected {
                return Err(StoreError::version_mismatch(
                    "operation",
                    id,
                    expected,
                    op.status,
                ));
            }
        }
        u.apply_to(&mut op);
        sqlx::query(
            "UPDATE operations SET status = ?, event_id = ?, result = ?, deadline = ?, \
             updated_at = ? WHERE id = ?",
        )
        .bind(op.status.as_str())
        .bind(op.event_id.as_ref().map(|e| e.as_str()))
        .bind(op.result.as_ref().map(json_text).transpose()?)
        .bind(opt_ts(op.deadline)?)
        .bind(ts(op.updated_at)?)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(op)
    }

    async fn operation(&self, id: &str) -> Result<Option<Operation>> {
        sqlx::query("SELECT * FROM operations WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .as_ref()
            .map(operation_from_row)
            .transpose()
    }

    async fn operation_by_event(
        &self,
        location: &LocationId,
        event_id: &EventId,
    ) -> Result<Option<Operation>> {
        sqlx::query(
            "SELECT * FROM operations WHERE location_id = ? AND event_id = ? \
             ORDER BY created_at, id LIMIT 1",
        )
        .bind(location.as_str())
        .bind(event_id.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?
        .as_ref()
        .map(operation_from_row)
        .transpose()
    }

    async fn unfinished_operations(&self, location: Option<&LocationId>) -> Result<Vec<Operation>> {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "SELECT * FROM operations WHERE status NOT IN ('complete', 'failed', 'rolled_back')",
        );
        if let Some(l) = location {
            qb.push(" AND location_id = ")
                .push_bind(l.as_str().to_owned());
        }
        qb.push(" ORDER BY created_at, id");
        qb.build()
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(operation_from_row)
            .collect()
    }

    async fn prune_operations(&self, before: DateTime<Utc>) -> Result<u64> {
        Ok(sqlx::query(
            "DELETE FROM operations WHERE status IN ('complete', 'failed', 'rolled_back') \
             AND updated_at < ?",
        )
        .bind(ts(before)?)
        .execute(&self.pool)
        .await
        .map_err(db)?
        .rows_affected())
    }

    async fn put_install_status(&self, r: &InstallRecord) -> Result<()> {
        let mut tx = self.write().await?;
        require_location(&mut tx, &r.location).await?;
        sqlx::query(
            "INSERT INTO installs (location_id, holder, adam_id, pricing_param, state, \
             command_uuid, detail, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (location_id, holder, adam_id, pricing_param) DO UPDATE SET \
             state = excluded.state, command_uuid = excluded.command_uuid, \
             detail = excluded.detail, updated_at = excluded.updated_at",
        )
        .bind(r.location.as_str())
        .bind(r.holder.to_string())
        .bind(r.asset.adam_id.as_str())
        .bind(r.asset.pricing_param.as_str())
        .bind(r.state.as_str())
        .bind(r.command_uuid.as_deref())
        .bind(r.detail.as_ref().map(json_text).transpose()?)
        .bind(ts(r.updated_at)?)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn install_status(
        &self,
        location: &LocationId,
        holder: &Holder,
        asset: &AssetKey,
    ) -> Result<Option<InstallRecord>> {
        sqlx::query(
            "SELECT * FROM installs WHERE location_id = ? AND holder = ? AND adam_id = ? \
             AND pricing_param = ?",
        )
        .bind(location.as_str())
        .bind(holder.to_string())
        .bind(asset.adam_id.as_str())
        .bind(asset.pricing_param.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?
        .map(|row| install_from_row(location, &row))
        .transpose()
    }

    async fn install_statuses(
        &self,
        location: &LocationId,
        holder: &Holder,
    ) -> Result<Vec<InstallRecord>> {
        sqlx::query(
            "SELECT * FROM installs WHERE location_id = ? AND holder = ? \
             ORDER BY adam_id, pricing_param",
        )
        .bind(location.as_str())
        .bind(holder.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(db)?
        .iter()
        .map(|row| install_from_row(location, row))
        .collect()
    }
}

#[async_trait]
impl NotificationStore for SqliteStore {
    async fn record_notification(
        &self,
        location: &LocationId,
        id: &NotificationId,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.write().await?;
        require_location(&mut tx, location).await?;
        let n = sqlx::query(
            "INSERT INTO notifications (id, location_id, at) VALUES (?, ?, ?) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id.as_str())
        .bind(location.as_str())
        .bind(ts(at)?)
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
        tx.commit().await.map_err(db)?;
        Ok(n == 1)
    }

    async fn prune_notifications(&self, before: DateTime<Utc>) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM notifications WHERE at < ?")
            .bind(ts(before)?)
            .execute(&self.pool)
            .await
            .map_err(db)?
            .rows_affected())
    }
}

#[async_trait]
impl LeaseStore for SqliteStore {
    async fn acquire_lease(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<Lease> {
        Lease::check_args(name, owner, ttl)?;
        let mut tx = self.write().await?;
        let existing = lease_in(&mut tx, name).await?;
        let lease = Lease::acquire(existing.as_ref(), name, owner, ttl, now)?;
        put_lease_in(&mut tx, &lease).await?;
        tx.commit().await.map_err(db)?;
        Ok(lease)
    }

    async fn renew_lease(
        &self,
        name: &str,
        owner: &str,
        token: u64,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<Lease> {
        Lease::check_args(name, owner, ttl)?;
        let mut tx = self.write().await?;
        let existing = lease_in(&mut tx, name).await?;
        let lease = Lease::renew(existing.as_ref(), name, owner, token, ttl, now)?;
        put_lease_in(&mut tx, &lease).await?;
        tx.commit().await.map_err(db)?;
        Ok(lease)
    }

    async fn release_lease(&self, name: &str, owner: &str, token: u64) -> Result<bool> {
        // Keep the row, expired, so the next token is higher.
        let n = sqlx::query(
            "UPDATE leases SET expires_at = 0 WHERE name = ? AND owner = ? AND token = ?",
        )
        .bind(name)
        .bind(owner)
        .bind(to_i64(token, "lease token")?)
        .execute(&self.pool)
        .await
        .map_err(db)?
        .rows_affected();
        Ok(n > 0)
    }

    async fn lease(&self, name: &str) -> Result<Option<Lease>> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        lease_in(&mut conn, name).await
    }
}
