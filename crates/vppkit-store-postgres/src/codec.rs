//! Conversions between the store's values and their column forms.

use std::fmt::Display;
use std::str::FromStr;

use vppkit_core::{AdamId, AssetKey, Holder, LocationId, PricingParam};
use vppkit_store::StoreError;

/// A `u64` as `bigint`; values past `i64::MAX` are refused.
pub(crate) fn to_i64(value: u64, what: &'static str) -> Result<i64, StoreError> {
    i64::try_from(value)
        .map_err(|_| StoreError::invalid(what, format!("{value} is larger than {}", i64::MAX)))
}

/// A `bigint` read back as `u64`.
pub(crate) fn to_u64(value: i64, what: &'static str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::corrupt(what, format!("negative value {value}")))
}

/// A `bigint` read back as `u32`.
pub(crate) fn to_u32(value: i64, what: &'static str) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| StoreError::corrupt(what, format!("{value} is not a u32")))
}

/// Parses a stored text form (ids, enums), reporting a bad one as corrupt.
pub(crate) fn parse<T>(text: &str, what: &'static str) -> Result<T, StoreError>
where
    T: FromStr,
    T::Err: Display,
{
    text.parse::<T>()
        .map_err(|e| StoreError::corrupt(what, e.to_string()))
}

/// A stored holder (`device:SERIAL` / `user:ID`).
pub(crate) fn holder(text: &str) -> Result<Holder, StoreError> {
    parse(text, "holder")
}

/// A stored location id.
pub(crate) fn location_id(text: &str) -> Result<LocationId, StoreError> {
    LocationId::new(text).map_err(|e| StoreError::corrupt("location id", e))
}

/// A stored asset key.
pub(crate) fn asset_key(adam_id: &str, pricing_param: &str) -> Result<AssetKey, StoreError> {
    let adam = AdamId::new(adam_id).map_err(|e| StoreError::corrupt("adamId", e))?;
    let pp: PricingParam = parse(pricing_param, "pricingParam")?;
    Ok(AssetKey::new(adam, pp))
}

/// A stored JSON value decoded into a type.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
    what: &'static str,
) -> Result<T, StoreError> {
    serde_json::from_value(value).map_err(|e| StoreError::corrupt(what, e))
}

/// A value encoded as JSON for a `jsonb` column.
pub(crate) fn to_json<T: serde::Serialize>(
    value: &T,
    what: &'static str,
) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(value).map_err(|e| StoreError::invalid(what, e.to_string()))
}

/// Checks a paged read's limit (at least 1) and returns it as `bigint`.
pub(crate) fn limit(limit: u32) -> Result<i64, StoreError> {
    if limit == 0 {
        return Err(StoreError::invalid("limit", "must be at least 1"));
    }
    Ok(i64::from(limit))
}

/// How a holding is named in errors.
pub(crate) fn holding_name(asset: &AssetKey, holder: &Holder) -> String {
    format!("{asset} {holder}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use vppkit_store::ErrorKind;

    #[test]
    fn conversions_refuse_out_of_range_values() {
        assert_eq!(to_i64(5, "x").unwrap(), 5);
        assert_eq!(
            to_i64(u64::MAX, "x").unwrap_err().kind(),
            ErrorKind::Invalid
        );
        assert_eq!(to_u64(-1, "x").unwrap_err().kind(), ErrorKind::Corrupt);
        assert_eq!(to_u32(1 << 40, "x").unwrap_err().kind(), ErrorKind::Corrupt);
        assert_eq!(limit(0).unwrap_err().kind(), ErrorKind::Invalid);
    }

    #[test]
    fn stored_text_is_parsed_or_corrupt() {
        assert!(holder("device:C02").unwrap().is_device());
        assert_eq!(holder("group:x").unwrap_err().kind(), ErrorKind::Corrupt);
        let key = asset_key("409203825", "PLUS").unwrap();
        assert_eq!(key.to_string(), "409203825/PLUS");
        assert_eq!(
            asset_key("x", "STDQ").unwrap_err().kind(),
            ErrorKind::Corrupt
        );
        assert_eq!(
            asset_key("1", "GOLD").unwrap_err().kind(),
            ErrorKind::Corrupt
        );
        assert_eq!(
            location_id("bad id").unwrap_err().kind(),
            ErrorKind::Corrupt
        );
    }
}

/// Stored records built from their columns.
pub(crate) mod build {
    use chrono::{DateTime, Utc};
    use vppkit_core::{AssetKey, Holder, HoldingStatus, LocationId};
    use vppkit_store::{HoldingRecord, HoldingUpsert};

    pub(crate) fn holding(
        location: LocationId,
        asset: AssetKey,
        holder: Holder,
        status: HoldingStatus,
        operation_id: Option<String>,
        updated_at: DateTime<Utc>,
    ) -> HoldingRecord {
        let mut upsert = HoldingUpsert::new(asset, holder, status);
        upsert.operation_id = operation_id;
        HoldingRecord::from_upsert(location, upsert, updated_at)
    }
}
