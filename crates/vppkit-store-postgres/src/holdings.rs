//! Holdings: atomic reservations, transitions and paged reads.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use vppkit_core::{AssetKey, Holder, HoldingStatus, LocationId};
use vppkit_store::{
    HoldingCounts, HoldingKey, HoldingRecord, HoldingTransition, NewJournalRecord, Reservation,
    Result, StoreError,
};

use crate::codec::{self, build};
use crate::error::{db_error, TxResult};
use crate::records::append_journal_in;
use crate::store::require_location;
use crate::PostgresStore;

/// The columns [`from_row`] reads, as a literal for `concat!`.
macro_rules! holding_columns {
    () => {
        "adam_id, pricing_param, holder, status, operation_id, updated_at"
    };
}

/// `FROM` items for the stored holdings of asset (`$2`, `$3`) in location `$1`
/// among the holders `$4`, as `x.row_id` (`ctid`), `x.holder`, `x.status`: one
/// primary-key lookup per holder. `OFFSET 0` keeps the planner from turning it
/// into a join, which on a young table (stale statistics) it may plan as a scan of
/// every holding of the asset; `holder = ANY($4)` has the same risk. Callers hold
/// the asset's row lock, so no other writer changes these rows meanwhile and a
/// `ctid` found here stays valid until commit.
macro_rules! stored_among {
    () => {
        " FROM UNNEST($4::text[]) AS u(k), \
          LATERAL (SELECT i.ctid AS row_id, i.holder, i.status FROM holdings i \
                    WHERE i.location_id = $1 AND i.adam_id = $2 \
                      AND i.pricing_param = $3 AND i.holder = u.k OFFSET 0) x "
    };
}

/// The columns [`from_row`] reads.
pub(crate) const COLUMNS: &str = holding_columns!();

/// A holding row of `location`.
pub(crate) fn from_row(location: &LocationId, row: &PgRow) -> Result<HoldingRecord> {
    from_row_of(location, None, row)
}

/// A holding row of `location`, of `asset` when the query selected one asset.
fn from_row_of(
    location: &LocationId,
    asset: Option<&AssetKey>,
    row: &PgRow,
) -> Result<HoldingRecord> {
    let get = |e: sqlx::Error| db_error(e, "reading a holding");
    // With a known asset the row starts at `holder`.
    let (asset, at) = match asset {
        Some(a) => (a.clone(), 0),
        None => (
            codec::asset_key(
                row.try_get::<&str, _>(0).map_err(get)?,
                row.try_get::<&str, _>(1).map_err(get)?,
            )?,
            2,
        ),
    };
    let holder = codec::holder(row.try_get::<&str, _>(at).map_err(get)?)?;
    let status: HoldingStatus = codec::parse(
        row.try_get::<&str, _>(at + 1).map_err(get)?,
        "holding status",
    )?;
    let operation_id: Option<String> = row.try_get(at + 2).map_err(get)?;
    let updated_at: DateTime<Utc> = row.try_get(at + 3).map_err(get)?;
    Ok(build::holding(
        location.clone(),
        asset,
        holder,
        status,
        operation_id,
        updated_at,
    ))
}

fn rows(location: &LocationId, rows: &[PgRow]) -> Result<Vec<HoldingRecord>> {
    rows.iter().map(|r| from_row(location, r)).collect()
}

pub(crate) async fn reserve(store: &PostgresStore, r: &Reservation) -> Result<u32> {
    let holders: Vec<String> = r.holders.iter().map(ToString::to_string).collect();
    store
        .retry("reserving licences", || reserve_once(store, r, &holders))
        .await
}

async fn reserve_once(store: &PostgresStore, r: &Reservation, holders: &[String]) -> TxResult<u32> {
    let loc = r.location.as_str();
    let adam = r.asset.adam_id.as_str();
    let pp = r.asset.pricing_param.as_str();
    let mut tx = store.pool.begin().await?;
    crate::documents::check_fence(&mut tx, r.fence.as_ref()).await?;
    // The asset's row lock orders every reservation of this asset, across
    // connections, pools and processes; held until commit.
    let counts: Option<(i64, i64, i64)> = sqlx::query_as(
        "SELECT total_count, retired_count, held_count FROM assets \
         WHERE location_id = $1 AND adam_id = $2 AND pricing_param = $3 FOR UPDATE",
    )
    .bind(loc)
    .bind(adam)
    .bind(pp)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((total, retired, held)) = counts else {
        require_location(&mut tx, &r.location).await?;
        return Err(StoreError::not_found("asset", &r.asset).into());
    };
    let already: Vec<String> = sqlx::query_scalar(concat!("SELECT x.holder", stored_among!()))
        .bind(loc)
        .bind(adam)
        .bind(pp)
        .bind(holders)
        .fetch_all(&mut *tx)
        .await?;
    let already: HashSet<&str> = already.iter().map(String::as_str).collect();
    let holdable = u64::try_from(total.saturating_sub(retired)).unwrap_or(0);
    let held = codec::to_u64(held, "held count")?;
    let left = r.check(holdable, held, |h| already.contains(h.to_string().as_str()))?;
    let requested = holders.len() as u64;
    sqlx::query(
        "INSERT INTO holdings (location_id, adam_id, pricing_param, holder, status, \
         operation_id, updated_at) \
         SELECT $1, $2, $3, h, 'reserved', $5, $6 FROM UNNEST($4::text[]) AS u(h)",
    )
    .bind(loc)
    .bind(adam)
    .bind(pp)
    .bind(holders)
    .bind(&r.operation_id)
    .bind(r.at)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE assets SET held_count = held_count + $4 \
         WHERE location_id = $1 AND adam_id = $2 AND pricing_param = $3",
    )
    .bind(loc)
    .bind(adam)
    .bind(pp)
    .bind(i64::try_from(requested).unwrap_or(i64::MAX))
    .execute(&mut *tx)
    .await?;
    append_journal_in(&mut tx, &r.location, &r.journal).await?;
    tx.commit().await?;
    Ok(left)
}

/// Holding keys grouped by asset (in key order): each statement names one asset
/// and its holders (see [`stored_among`]).
#[derive(Default)]
pub(crate) struct KeysByAsset {
    groups: BTreeMap<(String, &'static str), Vec<String>>,
}

impl KeysByAsset {
    pub(crate) fn push(&mut self, asset: &AssetKey, holder: &Holder) {
        self.groups
            .entry((
                asset.adam_id.as_str().to_owned(),
                asset.pricing_param.as_str(),
            ))
            .or_default()
            .push(holder.to_string());
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// The assets, in key order.
    pub(crate) fn assets(&self) -> Vec<(&str, &'static str)> {
        self.groups.keys().map(|(a, p)| (a.as_str(), *p)).collect()
    }

    /// `(adamId, pricingParam, holders)` per asset, in key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &'static str, &[String])> {
        self.groups
            .iter()
            .map(|((a, p), h)| (a.as_str(), *p, h.as_slice()))
    }
}

pub(crate) async fn transition(
    store: &PostgresStore,
    location: &LocationId,
    transitions: &[HoldingTransition],
    journal: &[NewJournalRecord],
    at: DateTime<Utc>,
) -> Result<()> {
    let mut keys = KeysByAsset::default();
    for t in transitions {
        keys.push(&t.key.asset, &t.key.holder);
    }
    store
        .retry("changing holdings", || {
            transition_once(store, location, transitions, &keys, journal, at)
        })
        .await
}

async fn transition_once(
    store: &PostgresStore,
    location: &LocationId,
    transitions: &[HoldingTransition],
    keys: &KeysByAsset,
    journal: &[NewJournalRecord],
    at: DateTime<Utc>,
) -> TxResult<()> {
    let loc = location.as_str();
    let mut tx = store.pool.begin().await?;
    require_location(&mut tx, location).await?;
    // The asset rows first, in key order, like every writer of holdings: this
    // waits for reservations and sync pages of these assets instead of deadlocking.
    lock_assets(&mut tx, location, &keys.assets()).await?;
    let mut current: HashMap<(String, &'static str, String), String> = HashMap::new();
    for (adam, pp, holders) in keys.iter() {
        let rows: Vec<(String, String)> =
            sqlx::query_as(concat!("SELECT x.holder, x.status", stored_among!()))
                .bind(loc)
                .bind(adam)
                .bind(pp)
                .bind(holders)
                .fetch_all(&mut *tx)
                .await?;
        for (holder, status) in rows {
            current.insert((adam.to_owned(), pp, holder), status);
        }
    }

    let mut seen = HashSet::new();
    let mut deletes = KeysByAsset::default();
    // (asset, new status, new operation id) -> holders
    let mut updates: BTreeMap<(String, &'static str, &'static str, Option<&str>), Vec<String>> =
        BTreeMap::new();
    for t in transitions {
        let name = || codec::holding_name(&t.key.asset, &t.key.holder);
        let key = (
            t.key.asset.adam_id.as_str().to_owned(),
            t.key.asset.pricing_param.as_str(),
            t.key.holder.to_string(),
        );
        if !seen.insert(key.clone()) {
            return Err(StoreError::invalid(
                "transitions",
                format!("{} appears more than once", name()),
            )
            .into());
        }
        let Some(status) = current.get(&key) else {
            return Err(StoreError::not_found("holding", name()).into());
        };
        if let Some(expected) = t.expected {
            if status != expected.as_str() {
                return Err(
                    StoreError::version_mismatch("holding", name(), expected, status).into(),
                );
            }
        }
        match t.new_status {
            None => deletes.push(&t.key.asset, &t.key.holder),
            Some(new) => updates
                .entry((key.0, key.1, new.as_str(), t.operation_id.as_deref()))
                .or_default()
                .push(key.2),
        }
    }
    if !deletes.is_empty() {
        delete_keys(&mut tx, location, &deletes).await?;
    }
    for ((adam, pp, status, operation), holders) in &updates {
        sqlx::query(concat!(
            "UPDATE holdings h SET status = $5, operation_id = COALESCE($6, h.operation_id), \
                    updated_at = $7 FROM (SELECT x.row_id",
            stored_among!(),
            ") s WHERE h.ctid = s.row_id"
        ))
        .bind(loc)
        .bind(adam)
        .bind(pp)
        .bind(holders)
        .bind(status)
        .bind(operation)
        .bind(at)
        .execute(&mut *tx)
        .await?;
    }
    append_journal_in(&mut tx, location, journal).await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes holdings by key and lowers their assets' counts; returns how many went.
/// The caller holds the assets' row locks.
pub(crate) async fn delete_keys(
    conn: &mut PgConnection,
    location: &LocationId,
    keys: &KeysByAsset,
) -> TxResult<u64> {
    let mut total = 0;
    for (adam, pp, holders) in keys.iter() {
        let deleted: Option<i64> = sqlx::query_scalar(concat!(
            "WITH gone AS (DELETE FROM holdings h USING (SELECT x.row_id",
            stored_among!(),
            ") s WHERE h.ctid = s.row_id RETURNING 1), \
             n AS (SELECT count(*) AS n FROM gone), \
             lowered AS (UPDATE assets a SET held_count = a.held_count - n.n FROM n \
                          WHERE a.location_id = $1 AND a.adam_id = $2 \
                            AND a.pricing_param = $3 AND n.n > 0) \
             SELECT n FROM n"
        ))
        .bind(location.as_str())
        .bind(adam)
        .bind(pp)
        .bind(holders)
        .fetch_one(&mut *conn)
        .await?;
        total += deleted.map_or(0, |n| u64::try_from(n).unwrap_or(0));
    }
    Ok(total)
}

/// Locks the rows of these assets (in key order, so two writers cannot deadlock)
/// and returns those that exist. Every writer of holdings takes these locks
/// first: reservations, sync pages, transitions and sweeps of one asset are
/// ordered, a reservation never counts holdings without the ones a page adds,
/// and an asset cannot be deleted under a writer.
pub(crate) async fn lock_assets(
    conn: &mut PgConnection,
    location: &LocationId,
    assets: &[(&str, &str)],
) -> TxResult<HashSet<(String, String)>> {
    let adam: Vec<&str> = assets.iter().map(|k| k.0).collect();
    let pp: Vec<&str> = assets.iter().map(|k| k.1).collect();
    assets_among(conn, location, &adam, &pp, true).await
}

/// Which of these assets exist (no lock).
pub(crate) async fn existing_assets(
    conn: &mut PgConnection,
    location: &LocationId,
    assets: &[AssetKey],
) -> TxResult<HashSet<(String, String)>> {
    let adam: Vec<&str> = assets.iter().map(|k| k.adam_id.as_str()).collect();
    let pp: Vec<&str> = assets.iter().map(|k| k.pricing_param.as_str()).collect();
    assets_among(conn, location, &adam, &pp, false).await
}

/// The stored assets among the `(adam[i], pp[i])` keys of a location; with `lock`, their rows
/// are locked in key order (see [`lock_assets`]).
async fn assets_among(
    conn: &mut PgConnection,
    location: &LocationId,
    adam: &[&str],
    pp: &[&str],
    lock: bool,
) -> TxResult<HashSet<(String, String)>> {
    macro_rules! find {
        () => {
            "SELECT a.adam_id, a.pricing_param FROM assets a \
             JOIN UNNEST($2::text[], $3::text[]) AS u(ad, p) \
               ON a.adam_id = u.ad AND a.pricing_param = u.p \
             WHERE a.location_id = $1"
        };
    }
    const FIND_AND_LOCK: &str = concat!(
        find!(),
        " ORDER BY a.adam_id, a.pricing_param FOR NO KEY UPDATE OF a"
    );
    let found: Vec<(String, String)> = sqlx::query_as(if lock { FIND_AND_LOCK } else { find!() })
        .bind(location.as_str())
        .bind(adam)
        .bind(pp)
        .fetch_all(&mut *conn)
        .await?;
    Ok(found.into_iter().collect())
}

pub(crate) async fn get(
    store: &PostgresStore,
    location: &LocationId,
    asset: &AssetKey,
    holder: &Holder,
) -> Result<Option<HoldingRecord>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM holdings WHERE location_id = $1 AND adam_id = $2 \
         AND pricing_param = $3 AND holder = $4"
    ))
    .bind(location.as_str())
    .bind(asset.adam_id.as_str())
    .bind(asset.pricing_param.as_str())
    .bind(holder.to_string())
    .fetch_optional(&store.pool)
    .await
    .map_err(|e| db_error(e, "reading a holding"))?;
    row.map(|r| from_row(location, &r)).transpose()
}

pub(crate) async fn by_asset(
    store: &PostgresStore,
    location: &LocationId,
    asset: &AssetKey,
    after: Option<&Holder>,
    limit: u32,
) -> Result<Vec<HoldingRecord>> {
    let limit = codec::limit(limit)?;
    // Holders are never empty, so "after the empty string" is the first page, and
    // one statement keeps an index range scan for every page. The asset is known:
    // only the other columns travel.
    let found = sqlx::query(
        "SELECT holder, status, operation_id, updated_at FROM holdings \
         WHERE location_id = $1 AND adam_id = $2 AND pricing_param = $3 AND holder > $4 \
         ORDER BY holder LIMIT $5",
    )
    .bind(location.as_str())
    .bind(asset.adam_id.as_str())
    .bind(asset.pricing_param.as_str())
    .bind(after.map(ToString::to_string).unwrap_or_default())
    .bind(limit)
    .fetch_all(&store.pool)
    .await
    .map_err(|e| db_error(e, "reading holdings"))?;
    found
        .iter()
        .map(|r| from_row_of(location, Some(asset), r))
        .collect()
}

pub(crate) async fn by_holder(
    store: &PostgresStore,
    location: &LocationId,
    holder: &Holder,
) -> Result<Vec<HoldingRecord>> {
    let found = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM holdings WHERE location_id = $1 AND holder = $2 \
         ORDER BY adam_id, pricing_param"
    ))
    .bind(location.as_str())
    .bind(holder.to_string())
    .fetch_all(&store.pool)
    .await
    .map_err(|e| db_error(e, "reading holdings"))?;
    rows(location, &found)
}

pub(crate) async fn by_operation(
    store: &PostgresStore,
    location: &LocationId,
    operation_id: &str,
) -> Result<Vec<HoldingRecord>> {
    let found = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM holdings WHERE location_id = $1 AND operation_id = $2 \
         ORDER BY adam_id, pricing_param, holder"
    ))
    .bind(location.as_str())
    .bind(operation_id)
    .fetch_all(&store.pool)
    .await
    .map_err(|e| db_error(e, "reading holdings"))?;
    rows(location, &found)
}

pub(crate) async fn page(
    store: &PostgresStore,
    location: &LocationId,
    after: Option<&HoldingKey>,
    limit: u32,
) -> Result<Vec<HoldingRecord>> {
    let limit = codec::limit(limit)?;
    let found = match after {
        None => sqlx::query(concat!(
            "SELECT ",
            holding_columns!(),
            " FROM holdings WHERE location_id = $1 \
             ORDER BY adam_id, pricing_param, holder LIMIT $2"
        ))
        .bind(location.as_str())
        .bind(limit),
        Some(k) => sqlx::query(concat!(
            "SELECT ",
            holding_columns!(),
            " FROM holdings WHERE location_id = $1 \
             AND (adam_id, pricing_param, holder) > ($2, $3, $4) \
             ORDER BY adam_id, pricing_param, holder LIMIT $5"
        ))
        .bind(location.as_str())
        .bind(k.asset.adam_id.as_str())
        .bind(k.asset.pricing_param.as_str())
        .bind(k.holder.to_string())
        .bind(limit),
    }
    .fetch_all(&store.pool)
    .await
    .map_err(|e| db_error(e, "reading holdings"))?;
    rows(location, &found)
}

pub(crate) async fn counts(
    store: &PostgresStore,
    location: &LocationId,
    asset: &AssetKey,
) -> Result<HoldingCounts> {
    let found: Vec<(String, i64)> = sqlx::query_as(
        "SELECT status, count(*) FROM holdings WHERE location_id = $1 AND adam_id = $2 \
         AND pricing_param = $3 GROUP BY status",
    )
    .bind(location.as_str())
    .bind(asset.adam_id.as_str())
    .bind(asset.pricing_param.as_str())
    .fetch_all(&store.pool)
    .await
    .map_err(|e| db_error(e, "counting holdings"))?;
    let mut counts = HoldingCounts::default();
    for (status, n) in found {
        let status: HoldingStatus = codec::parse(&status, "holding status")?;
        counts.add(status, codec::to_u64(n, "holding count")?);
    }
    Ok(counts)
}
