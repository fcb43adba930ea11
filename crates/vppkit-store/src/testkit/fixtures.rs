//! Builders the checks share (also handy in backend-specific tests).

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use vppkit_core::{
    AdamId, Asset, AssetCounts, AssetKey, ClientUserId, Holder, LocationId, PricingParam,
    ProductType, Secret, SerialNumber, VppUser,
};

use crate::{HoldingUpsert, LocationRecord, Store, SyncPage};

/// A fixed instant (2030-01-01T00:00:00Z) plus `seconds`.
pub fn t(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::seconds(seconds)
}

/// A location id.
pub fn loc_id(name: &str) -> LocationId {
    LocationId::new(name).expect("valid location id")
}

/// An app asset key with the STDQ pricing param.
pub fn app(adam: u64) -> AssetKey {
    AssetKey::new(AdamId::from(adam), PricingParam::Stdq)
}

/// A device-assignable, revocable app with `total` licences (`retired` of them retired).
pub fn app_asset(key: &AssetKey, total: u32, retired: u32) -> Asset {
    Asset::new(
        key.clone(),
        ProductType::App,
        true,
        true,
        vec![vppkit_core::Platform::Ios],
        AssetCounts::new(total, 0, total.saturating_sub(retired), retired),
    )
}

/// A device holder `D<n>` (zero-padded to 8 digits).
pub fn device(n: u64) -> Holder {
    Holder::Device(SerialNumber::new(format!("D{n:08}")).expect("valid serial"))
}

/// A user holder `u-<n>`.
pub fn user(n: u64) -> Holder {
    Holder::User(ClientUserId::new(format!("u-{n:06}")).expect("valid id"))
}

/// A location record with a recognisable token (never printed).
pub fn location_record(id: &LocationId) -> LocationRecord {
    LocationRecord::new(
        id.clone(),
        format!("Location {id}"),
        Secret::new(format!("TOKEN-SECRET-{id}-Zm9vYmFy")),
        t(86_400 * 365),
        t(0),
    )
}

/// Saves a new location and returns its id.
pub async fn add_location(store: &Arc<dyn Store>, name: &str) -> LocationId {
    let id = loc_id(name);
    store
        .save_location(&location_record(&id))
        .await
        .expect("save location");
    id
}

/// Saves a new location with one app asset of `total` licences.
pub async fn location_with_app(
    store: &Arc<dyn Store>,
    name: &str,
    adam: u64,
    total: u32,
) -> (LocationId, AssetKey) {
    let id = add_location(store, name).await;
    let key = app(adam);
    put_assets(&**store, &id, vec![app_asset(&key, total, 0)], t(1))
        .await
        .expect("put asset");
    (id, key)
}

/// Inserts or overwrites assets in one page (one transaction).
pub async fn put_assets(
    store: &dyn Store,
    location: &LocationId,
    assets: Vec<Asset>,
    at: DateTime<Utc>,
) -> crate::Result<()> {
    let mut page = SyncPage::new(at);
    page.upsert_assets = assets;
    store.apply_sync_page(location, &page).await.map(drop)
}

/// Inserts or overwrites holdings in one page (one transaction).
pub async fn put_holdings(
    store: &dyn Store,
    location: &LocationId,
    holdings: Vec<HoldingUpsert>,
    at: DateTime<Utc>,
) -> crate::Result<()> {
    let mut page = SyncPage::new(at);
    page.upsert_holdings = holdings;
    store.apply_sync_page(location, &page).await.map(drop)
}

/// Inserts or overwrites a VPP user, with whether this manager created it.
pub async fn put_user(
    store: &dyn Store,
    location: &LocationId,
    user: VppUser,
    managed_by_us: bool,
    at: DateTime<Utc>,
) -> crate::Result<()> {
    let mut page = SyncPage::new(at);
    page.upsert_users = vec![(user, managed_by_us)];
    store.apply_sync_page(location, &page).await.map(drop)
}
