//! Sync bookkeeping, sync pages (one transaction each, cursor included) and assets.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use vppkit_core::{Asset, AssetCounts, AssetKey, AssetMetadata, LocationId, Platform, ProductType};
use vppkit_store::{
    AssetRecord, Result, StoreError, SyncCursor, SyncEndpoint, SyncPage, SyncStatus, SyncSummary,
};

use crate::codec::{self, from_json, to_json};
use crate::error::{db_error, TxResult};
use crate::holdings::{self, KeysByAsset};
use crate::records::append_journal_in;
use crate::store::require_location;
use crate::PostgresStore;

/// outcome time, success, message
type StateRow = (Option<DateTime<Utc>>, Option<bool>, Option<String>);

pub(crate) async fn status(store: &PostgresStore, location: &LocationId) -> Result<SyncStatus> {
    let state: Option<StateRow> = sqlx::query_as(
        "SELECT outcome_at, outcome_success, outcome_message \
             FROM sync_state WHERE location_id = $1",
    )
    .bind(location.as_str())
    .fetch_optional(&store.pool)
    .await
    .map_err(|e| db_error(e, "reading the sync status"))?;
    let Some((at, success, message)) = state else {
        return Err(StoreError::not_found("location", location));
    };
    let cursors: Vec<(String, String, Option<i64>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT endpoint, version_id, next_page, updated_at FROM sync_cursors \
         WHERE location_id = $1",
    )
    .bind(location.as_str())
    .fetch_all(&store.pool)
    .await
    .map_err(|e| db_error(e, "reading sync cursors"))?;
    let mut status = SyncStatus::default();
    status.last_summary = match (at, success) {
        (Some(at), Some(true)) => {
            let mut o = SyncSummary::success(at);
            o.message = message;
            Some(o)
        }
        (Some(at), Some(false)) => {
            let mut o = SyncSummary::failure(at, "");
            o.message = message;
            Some(o)
        }
        _ => None,
    };
    for (endpoint, version, next, updated_at) in cursors {
        let endpoint: SyncEndpoint = codec::parse(&endpoint, "sync endpoint")?;
        let next = next.map(|n| codec::to_u32(n, "next page")).transpose()?;
        status
            .cursors
            .push((endpoint, SyncCursor::new(version, next, updated_at)));
    }
    status.cursors.sort_by_key(|(e, _)| *e);
    Ok(status)
}

pub(crate) async fn record_summary(
    store: &PostgresStore,
    location: &LocationId,
    summary: &SyncSummary,
) -> Result<()> {
    let done = sqlx::query(
        "UPDATE sync_state SET outcome_at = $2, outcome_success = $3, outcome_message = $4 \
         WHERE location_id = $1",
    )
    .bind(location.as_str())
    .bind(summary.at)
    .bind(summary.success)
    .bind(&summary.message)
    .execute(&store.pool)
    .await
    .map_err(|e| db_error(e, "recording a sync summary"))?;
    if done.rows_affected() == 0 {
        return Err(StoreError::not_found("location", location));
    }
    Ok(())
}

/// A page turned into column arrays once, before the (possibly retried) transaction.
struct PageColumns {
    at: DateTime<Utc>,
    assets: AssetColumns,
    metadata: (Vec<String>, Vec<&'static str>, Vec<String>),
    users: UserColumns,
    delete_users: Vec<String>,
    /// Holding upserts, the last one of each holding.
    holdings: HoldingColumns,
    /// The assets the metadata and holdings refer to, in page order.
    referenced: Vec<AssetKey>,
    deletes: KeysByAsset,
}

/// The holding upserts of a page: parallel columns, in page order.
#[derive(Default)]
struct HoldingColumns {
    adam: Vec<String>,
    pp: Vec<&'static str>,
    holder: Vec<String>,
    status: Vec<&'static str>,
    operation: Vec<Option<String>>,
}

#[derive(Default)]
struct AssetColumns {
    adam: Vec<String>,
    pp: Vec<&'static str>,
    product_type: Vec<&'static str>,
    device_assignable: Vec<bool>,
    revocable: Vec<bool>,
    platforms: Vec<String>,
    total: Vec<i64>,
    assigned: Vec<i64>,
    available: Vec<i64>,
    retired: Vec<i64>,
}

#[derive(Default)]
struct UserColumns {
    id: Vec<String>,
    email: Vec<Option<String>>,
    managed_apple_id: Vec<Option<String>>,
    invite_code: Vec<Option<String>>,
    id_hash: Vec<Option<String>>,
    status: Vec<&'static str>,
    managed: Vec<bool>,
}

/// Keeps the last of several entries with the same key (a page is applied in order).
fn last_per_key<'a, T, K: std::hash::Hash + Eq>(
    items: &'a [T],
    key: impl Fn(&'a T) -> K,
) -> Vec<&'a T> {
    let mut index: HashMap<K, usize> = HashMap::with_capacity(items.len());
    let mut out: Vec<&T> = Vec::with_capacity(items.len());
    for item in items {
        match index.get(&key(item)) {
            Some(&i) => out[i] = item,
            None => {
                index.insert(key(item), out.len());
                out.push(item);
            }
        }
    }
    out
}

fn columns(page: &SyncPage) -> Result<PageColumns> {
    let mut assets = AssetColumns::default();
    for a in last_per_key(&page.upsert_assets, |a: &Asset| a.key.clone()) {
        assets.adam.push(a.key.adam_id.as_str().to_owned());
        assets.pp.push(a.key.pricing_param.as_str());
        assets.product_type.push(a.product_type.as_str());
        assets.device_assignable.push(a.device_assignable);
        assets.revocable.push(a.revocable);
        assets
            .platforms
            .push(to_json(&a.supported_platforms, "platforms")?.to_string());
        assets.total.push(i64::from(a.counts.total));
        assets.assigned.push(i64::from(a.counts.assigned));
        assets.available.push(i64::from(a.counts.available));
        assets.retired.push(i64::from(a.counts.retired));
    }
    let mut referenced = Vec::new();
    let mut seen_refs = HashSet::new();
    let mut refer = |key: &AssetKey| {
        if seen_refs.insert(key.clone()) {
            referenced.push(key.clone());
        }
    };
    let mut metadata = (Vec::new(), Vec::new(), Vec::new());
    for (key, m) in last_per_key(
        &page.asset_metadata,
        |(k, _): &(AssetKey, AssetMetadata)| k.clone(),
    ) {
        refer(key);
        metadata.0.push(key.adam_id.as_str().to_owned());
        metadata.1.push(key.pricing_param.as_str());
        metadata.2.push(to_json(m, "asset metadata")?.to_string());
    }
    let mut users = UserColumns::default();
    for (u, managed) in last_per_key(
        &page.upsert_users,
        |(u, _): &(vppkit_core::VppUser, bool)| u.client_user_id.clone(),
    ) {
        users.id.push(u.client_user_id.as_str().to_owned());
        users.email.push(u.email.clone());
        users.managed_apple_id.push(u.managed_apple_id.clone());
        users.invite_code.push(u.invite_code.clone());
        users.id_hash.push(u.id_hash.clone());
        users.status.push(u.status.as_str());
        users.managed.push(*managed);
    }
    let mut holdings = HoldingColumns::default();
    for h in last_per_key(&page.upsert_holdings, |h: &vppkit_store::HoldingUpsert| {
        (&h.asset, &h.holder)
    }) {
        refer(&h.asset);
        holdings.adam.push(h.asset.adam_id.as_str().to_owned());
        holdings.pp.push(h.asset.pricing_param.as_str());
        holdings.holder.push(h.holder.to_string());
        holdings.status.push(h.status.as_str());
        holdings.operation.push(h.operation_id.clone());
    }
    let mut deletes = KeysByAsset::default();
    for k in &page.delete_holdings {
        deletes.push(&k.asset, &k.holder);
    }
    Ok(PageColumns {
        at: page.at.unwrap_or_else(Utc::now),
        assets,
        metadata,
        users,
        delete_users: page
            .delete_users
            .iter()
            .map(|u| u.as_str().to_owned())
            .collect(),
        holdings,
        referenced,
        deletes,
    })
}

pub(crate) async fn apply_page(
    store: &PostgresStore,
    location: &LocationId,
    page: &SyncPage,
) -> Result<Option<u64>> {
    let cols = columns(page)?;
    store
        .retry("applying a sync page", || {
            apply_page_once(store, location, page, &cols)
        })
        .await
}

async fn apply_page_once(
    store: &PostgresStore,
    location: &LocationId,
    page: &SyncPage,
    c: &PageColumns,
) -> TxResult<Option<u64>> {
    let loc = location.as_str();
    let mut tx = if store.durable_sync_pages {
        store.pool.begin().await?
    } else {
        // See `PostgresOptions::durable_sync_pages`: atomic and ordered, one disk
        // flush less.
        store
            .pool
            .begin_with("BEGIN; SET LOCAL synchronous_commit = off")
            .await?
    };
    crate::documents::check_fence(&mut tx, page.fence.as_ref()).await?;
    if let Some(id) = &page.notification {
        require_location(&mut tx, location).await?;
        let done = sqlx::query(
            "INSERT INTO notifications_seen (location_id, notification_id, seen_at) \
             VALUES ($1, $2, $3) ON CONFLICT (notification_id) DO NOTHING",
        )
        .bind(loc)
        .bind(id.as_str())
        .bind(page.at.unwrap_or_else(Utc::now))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::already_exists("notification", id).into());
        }
    }
    for d in &page.documents {
        crate::documents::put_document_in(&mut tx, d, None).await?;
    }
    // The hot page of a sync: holdings of stored assets (and perhaps journal
    // records and a cursor). Its holdings statement locks the asset rows itself.
    let holdings_only = c.assets.adam.is_empty()
        && c.metadata.0.is_empty()
        && c.deletes.is_empty()
        && !c.holdings.holder.is_empty();
    let has_locks = !c.referenced.is_empty() || !c.deletes.is_empty();
    if holdings_only {
        let locked = upsert_holdings(&mut tx, location, c, true).await?;
        if locked < c.referenced.len() {
            // An asset (or the location) is missing: nothing is kept.
            drop(tx);
            let mut conn = store.pool.acquire().await?;
            require_location(&mut conn, location).await?;
            let found = holdings::existing_assets(&mut conn, location, &c.referenced).await?;
            for k in &c.referenced {
                if !found.contains(&(
                    k.adam_id.as_str().to_owned(),
                    k.pricing_param.as_str().to_owned(),
                )) {
                    return Err(StoreError::not_found("asset", k).into());
                }
            }
            return Err(StoreError::not_found("asset", &c.referenced[0]).into());
        }
    } else if has_locks && c.assets.adam.is_empty() {
        // The common page (holdings of stored assets): locked asset rows prove the
        // location exists, one round trip less.
        lock_assets(&mut tx, location, &c.referenced, &[&c.deletes]).await?;
    } else {
        require_location(&mut tx, location).await?;
    }
    if !c.assets.adam.is_empty() {
        let a = &c.assets;
        sqlx::query(
            "INSERT INTO assets (location_id, adam_id, pricing_param, product_type, \
             device_assignable, revocable, platforms, total_count, assigned_count, \
             available_count, retired_count, updated_at) \
             SELECT $1, a, p, t, d, r, pl::jsonb, tc, ac, av, rc, $12 \
             FROM UNNEST($2::text[], $3::text[], $4::text[], $5::bool[], $6::bool[], \
                         $7::text[], $8::int8[], $9::int8[], $10::int8[], $11::int8[]) \
                  AS u(a, p, t, d, r, pl, tc, ac, av, rc) \
             ON CONFLICT (location_id, adam_id, pricing_param) DO UPDATE SET \
               product_type = EXCLUDED.product_type, \
               device_assignable = EXCLUDED.device_assignable, \
               revocable = EXCLUDED.revocable, platforms = EXCLUDED.platforms, \
               total_count = EXCLUDED.total_count, assigned_count = EXCLUDED.assigned_count, \
               available_count = EXCLUDED.available_count, \
               retired_count = EXCLUDED.retired_count, updated_at = EXCLUDED.updated_at",
        )
        .bind(loc)
        .bind(&a.adam)
        .bind(&a.pp)
        .bind(&a.product_type)
        .bind(&a.device_assignable)
        .bind(&a.revocable)
        .bind(&a.platforms)
        .bind(&a.total)
        .bind(&a.assigned)
        .bind(&a.available)
        .bind(&a.retired)
        .bind(c.at)
        .execute(&mut *tx)
        .await?;
    }
    if has_locks && !c.assets.adam.is_empty() {
        lock_assets(&mut tx, location, &c.referenced, &[&c.deletes]).await?;
    }
    if !c.metadata.0.is_empty() {
        sqlx::query(
            "UPDATE assets a SET metadata = u.m::jsonb, updated_at = $5 \
             FROM UNNEST($2::text[], $3::text[], $4::text[]) AS u(ad, p, m) \
             WHERE a.location_id = $1 AND a.adam_id = u.ad AND a.pricing_param = u.p",
        )
        .bind(loc)
        .bind(&c.metadata.0)
        .bind(&c.metadata.1)
        .bind(&c.metadata.2)
        .bind(c.at)
        .execute(&mut *tx)
        .await?;
    }
    if !c.users.id.is_empty() {
        let u = &c.users;
        sqlx::query(
            "INSERT INTO users (location_id, client_user_id, email, managed_apple_id, \
             invite_code, id_hash, status, managed_by_us, updated_at) \
             SELECT $1, i, e, m, c, h, s, b, $9 \
             FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
                         $7::text[], $8::bool[]) AS u(i, e, m, c, h, s, b) \
             ON CONFLICT (location_id, client_user_id) DO UPDATE SET \
               email = EXCLUDED.email, managed_apple_id = EXCLUDED.managed_apple_id, \
               invite_code = EXCLUDED.invite_code, id_hash = EXCLUDED.id_hash, \
               status = EXCLUDED.status, managed_by_us = EXCLUDED.managed_by_us, \
               updated_at = EXCLUDED.updated_at",
        )
        .bind(loc)
        .bind(&u.id)
        .bind(&u.email)
        .bind(&u.managed_apple_id)
        .bind(&u.invite_code)
        .bind(&u.id_hash)
        .bind(&u.status)
        .bind(&u.managed)
        .bind(c.at)
        .execute(&mut *tx)
        .await?;
    }
    if !c.delete_users.is_empty() {
        sqlx::query("DELETE FROM users WHERE location_id = $1 AND client_user_id = ANY($2)")
            .bind(loc)
            .bind(&c.delete_users)
            .execute(&mut *tx)
            .await?;
    }
    if !c.holdings.holder.is_empty() && !holdings_only {
        upsert_holdings(&mut tx, location, c, false).await?;
    }
    if !c.deletes.is_empty() {
        holdings::delete_keys(&mut tx, location, &c.deletes).await?;
    }
    let last = append_journal_in(&mut tx, location, &page.journal).await?;
    if let Some(update) = &page.cursor {
        match &update.cursor {
            Some(cursor) => {
                sqlx::query(
                    "INSERT INTO sync_cursors (location_id, endpoint, version_id, next_page, \
                     updated_at) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (location_id, endpoint) DO UPDATE SET \
                       version_id = EXCLUDED.version_id, next_page = EXCLUDED.next_page, \
                       updated_at = EXCLUDED.updated_at",
                )
                .bind(loc)
                .bind(update.endpoint.as_str())
                .bind(&cursor.version_id)
                .bind(cursor.next_page.map(i64::from))
                .bind(cursor.updated_at)
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM sync_cursors WHERE location_id = $1 AND endpoint = $2")
                    .bind(loc)
                    .bind(update.endpoint.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
        }
    }
    tx.commit().await?;
    Ok((!page.journal.is_empty()).then_some(last))
}

/// Locks the rows of the assets a page refers to (see [`holdings::lock_assets`]),
/// or fails with the first one, in page order, that is not stored.
/// The assets of the page's deletions are locked too (a missing one is no error
/// there).
async fn lock_assets(
    conn: &mut PgConnection,
    location: &LocationId,
    keys: &[AssetKey],
    also: &[&KeysByAsset],
) -> TxResult<()> {
    let mut sorted: Vec<(&str, &str)> = keys
        .iter()
        .map(|k| (k.adam_id.as_str(), k.pricing_param.as_str()))
        .chain(also.iter().flat_map(|k| k.assets()))
        .collect();
    sorted.sort_unstable();
    sorted.dedup();
    let found = holdings::lock_assets(conn, location, &sorted).await?;
    if found.len() < sorted.len() {
        require_location(conn, location).await?;
    }
    for k in keys {
        let pair = (
            k.adam_id.as_str().to_owned(),
            k.pricing_param.as_str().to_owned(),
        );
        if !found.contains(&pair) {
            return Err(StoreError::not_found("asset", k).into());
        }
    }
    Ok(())
}

/// Upserts a page's holdings in one statement, under the asset locks taken by
/// [`lock_assets`]: the holders already stored are found by primary-key lookups
/// (the `OFFSET 0` fence keeps the planner from turning them into a scan of the
/// asset's holdings when the statistics are stale); those rows are overwritten by
/// an `INSERT ... ON CONFLICT DO UPDATE` whose conflicts are found the same way;
/// the others are inserted by a plain `INSERT` (no per-row speculative insertion,
/// about half the cost: no other writer can insert these rows while the asset
/// rows are locked); and each asset's count is raised by its inserted rows.
///
/// With `lock`, the statement also locks the asset rows (in key order) before it
/// looks anything up, and returns how many of the page's assets it locked: fewer
/// than the page names means one is missing, and the caller must roll back.
async fn upsert_holdings(
    conn: &mut PgConnection,
    location: &LocationId,
    c: &PageColumns,
    lock: bool,
) -> TxResult<usize> {
    const LOCKED: &str = "locked AS ( \
           SELECT a.adam_id, a.pricing_param FROM assets a \
           WHERE a.location_id = $1 AND (a.adam_id, a.pricing_param) IN (SELECT a, p FROM u) \
           ORDER BY a.adam_id, a.pricing_param FOR NO KEY UPDATE), ";
    const STORED_FROM_LOCKED: &str = "stored AS ( \
           SELECT u.a, u.p, u.k FROM u \
             JOIN locked l ON l.adam_id = u.a AND l.pricing_param = u.p, ";
    const STORED: &str = "stored AS ( \
           SELECT u.a, u.p, u.k FROM u, ";
    let h = &c.holdings;
    let (locked, stored, count) = if lock {
        (LOCKED, STORED_FROM_LOCKED, "(SELECT count(*) FROM locked)")
    } else {
        ("", STORED, "-1::bigint")
    };
    let sql = format!(
        "WITH u AS ( \
           SELECT * FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) \
                      AS u(a, p, k, s, o)), \
         {locked}{stored}
             LATERAL (SELECT 1 FROM holdings i WHERE i.location_id = $1 AND i.adam_id = u.a \
                        AND i.pricing_param = u.p AND i.holder = u.k OFFSET 0) x), \
         overwritten AS ( \
           INSERT INTO holdings (location_id, adam_id, pricing_param, holder, status, \
                                 operation_id, updated_at) \
           SELECT $1, u.a, u.p, u.k, u.s, u.o, $7 FROM u JOIN stored USING (a, p, k) \
           ON CONFLICT (location_id, adam_id, pricing_param, holder) DO UPDATE SET \
             status = EXCLUDED.status, operation_id = EXCLUDED.operation_id, \
             updated_at = EXCLUDED.updated_at \
           RETURNING 1), \
         inserted AS ( \
           INSERT INTO holdings (location_id, adam_id, pricing_param, holder, status, \
                                 operation_id, updated_at) \
           SELECT $1, u.a, u.p, u.k, u.s, u.o, $7 FROM u \
           WHERE NOT EXISTS (SELECT 1 FROM stored WHERE stored.a = u.a AND stored.p = u.p \
                               AND stored.k = u.k) \
           RETURNING adam_id, pricing_param), \
         counted AS ( \
           UPDATE assets a SET held_count = a.held_count + n.n \
           FROM (SELECT adam_id, pricing_param, count(*) AS n FROM inserted \
                 GROUP BY adam_id, pricing_param) n \
           WHERE a.location_id = $1 AND a.adam_id = n.adam_id \
             AND a.pricing_param = n.pricing_param) \
         SELECT {count}, (SELECT count(*) FROM overwritten), (SELECT count(*) FROM inserted)"
    );
    let (locked, _, _): (i64, i64, i64) = sqlx::query_as(&sql)
        .bind(location.as_str())
        .bind(&h.adam)
        .bind(&h.pp)
        .bind(&h.holder)
        .bind(&h.status)
        .bind(&h.operation)
        .bind(c.at)
        .fetch_one(&mut *conn)
        .await?;
    Ok(usize::try_from(locked).unwrap_or(0))
}

const ASSET_COLUMNS: &str = "adam_id, pricing_param, product_type, device_assignable, revocable, \
    platforms, total_count, assigned_count, available_count, retired_count, metadata, updated_at";

fn asset_from_row(row: &PgRow) -> Result<AssetRecord> {
    let get = |e: sqlx::Error| db_error(e, "reading an asset");
    let key = codec::asset_key(
        row.try_get::<&str, _>(0).map_err(get)?,
        row.try_get::<&str, _>(1).map_err(get)?,
    )?;
    let product_type: ProductType =
        codec::parse(row.try_get::<&str, _>(2).map_err(get)?, "product type")?;
    let platforms: Vec<Platform> = from_json(row.try_get(5).map_err(get)?, "platforms")?;
    let count = |i: usize| -> Result<u32> {
        codec::to_u32(row.try_get::<i64, _>(i).map_err(get)?, "asset count")
    };
    let counts = AssetCounts::new(count(6)?, count(7)?, count(8)?, count(9)?);
    let metadata = row
        .try_get::<Option<serde_json::Value>, _>(10)
        .map_err(get)?
        .map(|m| from_json::<AssetMetadata>(m, "asset metadata"))
        .transpose()?;
    let asset = Asset::new(
        key,
        product_type,
        row.try_get(3).map_err(get)?,
        row.try_get(4).map_err(get)?,
        platforms,
        counts,
    );
    Ok(AssetRecord::new(
        asset,
        metadata,
        row.try_get(11).map_err(get)?,
    ))
}

pub(crate) async fn asset(
    store: &PostgresStore,
    location: &LocationId,
    key: &AssetKey,
) -> Result<Option<AssetRecord>> {
    let row = sqlx::query(&format!(
        "SELECT {ASSET_COLUMNS} FROM assets WHERE location_id = $1 AND adam_id = $2 \
         AND pricing_param = $3"
    ))
    .bind(location.as_str())
    .bind(key.adam_id.as_str())
    .bind(key.pricing_param.as_str())
    .fetch_optional(&store.pool)
    .await
    .map_err(|e| db_error(e, "reading an asset"))?;
    row.as_ref().map(asset_from_row).transpose()
}

pub(crate) async fn assets(
    store: &PostgresStore,
    location: &LocationId,
) -> Result<Vec<AssetRecord>> {
    let found = sqlx::query(&format!(
        "SELECT {ASSET_COLUMNS} FROM assets WHERE location_id = $1 \
         ORDER BY adam_id, pricing_param"
    ))
    .bind(location.as_str())
    .fetch_all(&store.pool)
    .await
    .map_err(|e| db_error(e, "reading assets"))?;
    found.iter().map(asset_from_row).collect()
}
