//! Fixtures shared by the tests.

use chrono::{DateTime, TimeZone, Utc};
use vppkit_core::{
    AdamId, Asset, AssetCounts, AssetKey, ClientUserId, EventId, Holder, LocationId,
    NotificationId, Platform, PricingParam, ProductType, SerialNumber, VppUser, VppUserStatus,
    UNLIMITED_COUNT,
};
use vppkit_ledger::{Cause, JournalEntry, Ledger};

pub(crate) fn loc() -> LocationId {
    LocationId::new("loc-1").unwrap()
}

pub(crate) fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 2, 3, 4, 5).unwrap()
}

pub(crate) fn key(n: u64) -> AssetKey {
    AssetKey::new(AdamId::from(n), PricingParam::Stdq)
}

pub(crate) fn device(n: u32) -> Holder {
    Holder::Device(SerialNumber::new(format!("SERIAL{n:04}")).unwrap())
}

pub(crate) fn user(n: u32) -> Holder {
    Holder::User(ClientUserId::new(format!("user-{n}")).unwrap())
}

pub(crate) fn user_id(n: u32) -> ClientUserId {
    ClientUserId::new(format!("user-{n}")).unwrap()
}

pub(crate) fn vpp_user(n: u32, status: VppUserStatus) -> VppUser {
    VppUser::new(user_id(n), status)
}

pub(crate) fn event(n: u32) -> EventId {
    EventId::new(format!("ev-{n}")).unwrap()
}

pub(crate) fn nid(n: u32) -> NotificationId {
    NotificationId::new(format!("n-{n}")).unwrap()
}

/// A device-assignable, revocable app with `total` licences.
pub(crate) fn app(n: u64, total: u32) -> Asset {
    Asset::new(
        key(n),
        ProductType::App,
        true,
        true,
        vec![Platform::Ios],
        AssetCounts::new(total, 0, total, 0),
    )
}

/// A user-only (not device-assignable), revocable app.
pub(crate) fn user_app(n: u64, total: u32) -> Asset {
    Asset::new(
        key(n),
        ProductType::App,
        false,
        true,
        vec![Platform::Ios],
        AssetCounts::new(total, 0, total, 0),
    )
}

/// A device-assignable app whose licences cannot be taken back.
pub(crate) fn irrevocable_app(n: u64, total: u32) -> Asset {
    Asset::new(
        key(n),
        ProductType::App,
        true,
        false,
        vec![Platform::Ios],
        AssetCounts::new(total, 0, total, 0),
    )
}

pub(crate) fn book(n: u64, total: u32) -> Asset {
    Asset::new(
        key(n),
        ProductType::Book,
        false,
        false,
        vec![Platform::Ios],
        AssetCounts::new(total, 0, total, 0),
    )
}

pub(crate) fn free_app(n: u64) -> Asset {
    Asset::new(
        key(n),
        ProductType::App,
        true,
        true,
        vec![Platform::Ios],
        AssetCounts::new(UNLIMITED_COUNT, 0, UNLIMITED_COUNT, 0),
    )
}

pub(crate) fn policy() -> Cause {
    Cause::policy("policy-1")
}

pub(crate) fn sync() -> Cause {
    Cause::sync(Some("v1".to_owned()))
}

/// A ledger with these assets, and its journal so far.
pub(crate) fn ledger_with(assets: &[Asset]) -> (Ledger, Vec<JournalEntry>) {
    let mut ledger = Ledger::new(loc());
    let journal = ledger.reconcile_assets(assets, sync(), now());
    (ledger, journal)
}

/// Checks that the journal replays to the ledger, also after a JSON round trip.
pub(crate) fn assert_replays(ledger: &Ledger, journal: &[JournalEntry]) {
    let replayed = Ledger::replay(loc(), journal).expect("replay");
    assert_eq!(&replayed, ledger, "replay differs");
    let json: Vec<String> = journal
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    let parsed: Vec<JournalEntry> = json
        .iter()
        .map(|s| serde_json::from_str(s).unwrap())
        .collect();
    assert_eq!(parsed, journal);
}
