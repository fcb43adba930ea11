//! Serde helpers for Apple's shapes: dates, secrets, lenient `mdmInfo`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serializer};
use vppkit_core::{format_apple_datetime, parse_apple_datetime, MdmInfo, Secret};

/// `Option<DateTime<Utc>>` in any of Apple's date forms.
pub(crate) fn opt_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) if s.trim().is_empty() => Ok(None),
        Some(s) => parse_apple_datetime(&s)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

/// Writes `Option<DateTime<Utc>>` the way Apple does.
pub(crate) fn ser_opt_date<S: Serializer>(
    value: &Option<DateTime<Utc>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(dt) => s.serialize_some(&format_apple_datetime(*dt)),
        None => s.serialize_none(),
    }
}

/// An optional secret string.
pub(crate) fn opt_secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(Secret::new))
}

/// Sends an optional secret (the one place it leaves the process).
pub(crate) fn ser_opt_secret<S: Serializer>(
    value: &Option<Secret>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(secret) => s.serialize_some(secret.expose()),
        None => s.serialize_none(),
    }
}

/// `mdmInfo` as Apple echoes it; a missing field becomes empty rather than failing
/// the whole answer.
pub(crate) fn opt_mdm_info<'de, D: Deserializer<'de>>(d: D) -> Result<Option<MdmInfo>, D::Error> {
    #[derive(Deserialize)]
    struct Raw {
        #[serde(default)]
        id: Option<String>,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        metadata: Option<String>,
    }
    Ok(Option::<Raw>::deserialize(d)?.map(|r| {
        MdmInfo::new_unchecked(
            r.id.unwrap_or_default(),
            r.name.unwrap_or_default(),
            r.metadata.unwrap_or_default(),
        )
    }))
}
