//! Conversions between store values and SQLite columns.

use chrono::{DateTime, Utc};
use vppkit_core::{AdamId, AssetKey, Holder, PricingParam};
use vppkit_store::{Result, StoreError};

/// Nanoseconds since the epoch (exact round trip for 1677..2262).
pub(crate) fn ts(dt: DateTime<Utc>) -> Result<i64> {
    dt.timestamp_nanos_opt()
        .ok_or_else(|| StoreError::invalid("timestamp", format!("{dt} is outside 1677..2262")))
}

pub(crate) fn from_ts(n: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(n)
}

pub(crate) fn opt_ts(dt: Option<DateTime<Utc>>) -> Result<Option<i64>> {
    dt.map(ts).transpose()
}

pub(crate) fn to_i64(n: u64, what: &'static str) -> Result<i64> {
    i64::try_from(n).map_err(|_| StoreError::invalid(what, "too large"))
}

pub(crate) fn to_u64(n: i64, what: &'static str) -> Result<u64> {
    u64::try_from(n).map_err(|_| StoreError::corrupt(what, format!("negative value {n}")))
}

pub(crate) fn to_u32(n: i64, what: &'static str) -> Result<u32> {
    u32::try_from(n).map_err(|_| StoreError::corrupt(what, format!("out of range value {n}")))
}

pub(crate) fn holder(text: &str) -> Result<Holder> {
    text.parse().map_err(|e| StoreError::corrupt("holder", e))
}

pub(crate) fn asset_key(adam_id: &str, pricing_param: &str) -> Result<AssetKey> {
    let adam = AdamId::new(adam_id).map_err(|e| StoreError::corrupt("adamId", e))?;
    let pp: PricingParam = pricing_param
        .parse()
        .map_err(|e| StoreError::corrupt("pricingParam", e))?;
    Ok(AssetKey::new(adam, pp))
}

pub(crate) fn parse<T: std::str::FromStr>(text: &str, what: &'static str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|e| StoreError::corrupt(what, e))
}

pub(crate) fn json_text<T: serde::Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::invalid("json", e.to_string()))
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    text: &str,
    what: &'static str,
) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::corrupt(what, e))
}

pub(crate) fn check_limit(limit: u32) -> Result<i64> {
    if limit == 0 {
        return Err(StoreError::invalid("limit", "must be at least 1"));
    }
    Ok(i64::from(limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_to_the_nanosecond() {
        let now = Utc::now();
        assert_eq!(from_ts(ts(now).unwrap()), now);
        assert!(ts(DateTime::<Utc>::MAX_UTC).is_err());
        assert!(holder("group:x").is_err());
        assert_eq!(asset_key("12", "PLUS").unwrap().to_string(), "12/PLUS");
        assert!(asset_key("12", "GOLD").is_err());
        assert!(to_u64(-1, "x").is_err());
    }
}
