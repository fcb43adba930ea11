//! Ids and small value types, validated on construction.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A value that does not satisfy its type's rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// The value is empty.
    #[error("{kind} must not be empty")]
    Empty {
        /// Which type rejected it.
        kind: &'static str,
    },
    /// The value is longer than allowed.
    #[error("{kind} is {len} characters long, at most {max} allowed")]
    TooLong {
        /// Which type rejected it.
        kind: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The value contains a character the type does not allow.
    #[error("{kind} {value:?} contains a character that is not allowed ({rule})")]
    BadCharacter {
        /// Which type rejected it.
        kind: &'static str,
        /// The value (ids only, never secrets).
        value: String,
        /// What is allowed.
        rule: &'static str,
    },
    /// The value is not one of the known names.
    #[error("{kind} {value:?} is not one of {allowed}")]
    Unknown {
        /// Which type rejected it.
        kind: &'static str,
        /// The value.
        value: String,
        /// The allowed values.
        allowed: &'static str,
    },
}

fn check(
    kind: &'static str,
    value: &str,
    max: usize,
    rule: &'static str,
    ok: impl Fn(char) -> bool,
) -> Result<(), ValueError> {
    if value.is_empty() {
        return Err(ValueError::Empty { kind });
    }
    let len = value.chars().count();
    if len > max {
        return Err(ValueError::TooLong { kind, len, max });
    }
    if !value.chars().all(ok) {
        return Err(ValueError::BadCharacter {
            kind,
            value: value.chars().take(80).collect(),
            rule,
        });
    }
    Ok(())
}

// Ids hold their text as `Arc<str>`: a clone (the planner writes a device's serial number
// into each of its commands, the ledger and the engine copy ids around) shares the text
// instead of allocating a copy. The representation is private.
macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:expr, $rule:literal, $ok:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(Arc<str>);

        string_id!(@common $name, $kind, $max, $rule, $ok);
    };
    // An id Apple hands back: validated when an embedder builds it (`new`,
    // `parse`, `try_from`), taken as Apple sends it when read (`from_apple`,
    // and deserialisation, which reads Apple's answers and what was stored from them).
    ($(#[$doc:meta])* lenient $name:ident, $kind:literal, $max:expr, $rule:literal, $ok:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(into = "String")]
        pub struct $name(Arc<str>);

        string_id!(@common $name, $kind, $max, $rule, $ok);

        impl $name {
            /// Takes the value as Apple sent it: any non-empty string. Apple's own
            /// examples use `serial-1` and UUID-like serial numbers, and Apple accepts
            /// made-up ones, so what Apple hands back is not held to [`Self::new`]'s
            /// rule (which is for values an MDM types in).
            pub fn from_apple(value: impl Into<String>) -> Result<Self, ValueError> {
                let value = value.into();
                if value.is_empty() {
                    return Err(ValueError::Empty { kind: $kind });
                }
                Ok(Self(value.into()))
            }

            /// Whether the value also satisfies [`Self::new`]'s rule.
            pub fn is_strictly_valid(&self) -> bool {
                check($kind, &self.0, $max, $rule, $ok).is_ok()
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let value = String::deserialize(d)?;
                Self::from_apple(value).map_err(serde::de::Error::custom)
            }
        }
    };
    (@common $name:ident, $kind:literal, $max:expr, $rule:literal, $ok:expr) => {

        impl $name {
            /// Validates and wraps the value.
            pub fn new(value: impl Into<String>) -> Result<Self, ValueError> {
                let value = value.into();
                check($kind, &value, $max, $rule, $ok)?;
                Ok(Self(value.into()))
            }

            /// The value as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = ValueError;
            fn try_from(value: String) -> Result<Self, ValueError> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0.as_ref().to_owned()
            }
        }

        impl FromStr for $name {
            type Err = ValueError;
            fn from_str(s: &str) -> Result<Self, ValueError> {
                Self::new(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }
    };
}

fn is_id_char(c: char) -> bool {
    !c.is_control() && !c.is_whitespace()
}

string_id!(
    /// An App Store product id ("adam id"): a string of decimal digits in the
    /// Apps and Books API, an integer in MDM commands ([`AdamId::as_u64`]).
    AdamId, "adamId", 19, "decimal digits only", |c: char| c.is_ascii_digit()
);

impl AdamId {
    /// The id as the integer MDM commands carry (`iTunesStoreID`).
    pub fn as_u64(&self) -> u64 {
        // Validated: at most 19 ASCII digits, which always fits in a u64.
        self.0.parse().unwrap_or(0)
    }
}

impl From<u64> for AdamId {
    fn from(value: u64) -> Self {
        Self(value.to_string().into())
    }
}

string_id!(
    /// A device serial number, the device holder of a device licence.
    ///
    /// [`SerialNumber::new`] holds what an MDM types in to letters, digits, `-` and
    /// `_`; a serial number read from Apple ([`SerialNumber::from_apple`], serde) is
    /// any non-empty string.
    lenient SerialNumber, "serialNumber", 64, "letters, digits, '-' and '_'",
    |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_'
);

string_id!(
    /// The MDM's own stable id of a VPP user (`clientUserId`). Apple advises a GUID.
    ///
    /// [`ClientUserId::new`] refuses whitespace and control characters; an id read
    /// from Apple ([`ClientUserId::from_apple`], serde) is any non-empty string.
    lenient ClientUserId, "clientUserId", 255, "no whitespace or control characters", is_id_char
);

string_id!(
    /// The local id of a location (one content token) inside a manager.
    LocationId, "location id", 64, "letters, digits, '-', '_' and '.'",
    |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
);

string_id!(
    /// Apple's id of an organisational unit (`uId`, a long digit string). Two tokens
    /// with the same `uId` manage the same licences.
    Uid, "uId", 128, "no whitespace or control characters", is_id_char
);

string_id!(
    /// The id of an asynchronous Apple operation (`eventId`, a UUID string).
    EventId, "eventId", 128, "no whitespace or control characters", is_id_char
);

string_id!(
    /// The id of a webhook notification (`notificationId`), the de-duplication key.
    NotificationId, "notificationId", 128, "no whitespace or control characters", is_id_char
);

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $allowed:literal, { $($(#[$vdoc:meta])* $variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $wire)] $variant,)+
        }

        impl $name {
            /// Every value, in a stable order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable text form (Apple's name on the wire, or the stored one).
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire,)+ }
            }
        }

        impl FromStr for $name {
            type Err = ValueError;
            fn from_str(s: &str) -> Result<Self, ValueError> {
                match s {
                    $($wire => Ok($name::$variant),)+
                    other => Err(ValueError::Unknown { kind: $kind, value: other.chars().take(40).collect(), allowed: $allowed }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use wire_enum;

/// How many distinct unknown enum values one process keeps (see [`OtherValue`]).
const MAX_OTHER_VALUES: usize = 256;
/// The longest unknown enum value kept whole (longer ones are cut at a character boundary).
const MAX_OTHER_LEN: usize = 64;
/// What [`OtherValue`] holds once [`MAX_OTHER_VALUES`] distinct values were seen.
const TOO_MANY_OTHER_VALUES: &str = "(more unknown values than vppkit keeps)";

static OTHER_VALUES: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());

/// A value of an Apple enum that this version of vppkit does not know (a new user
/// status, a new product type), kept as Apple sent it.
///
/// It stays `Copy` like the known values: each distinct text is stored once per
/// process. The store is bounded (256 distinct values of at most 64 bytes, longer
/// ones cut at a character boundary); past the bound a fixed placeholder is kept
/// instead, so a misbehaving server cannot grow memory without end.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OtherValue(&'static str);

impl OtherValue {
    pub(crate) fn intern(value: &str) -> Self {
        let mut end = value.len().min(MAX_OTHER_LEN);
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        let value = &value[..end];
        let mut names = OTHER_VALUES
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(found) = names.iter().find(|n| **n == value) {
            return Self(found);
        }
        if names.len() >= MAX_OTHER_VALUES {
            return Self(TOO_MANY_OTHER_VALUES);
        }
        let kept: &'static str = Box::leak(value.to_owned().into_boxed_str());
        names.push(kept);
        Self(kept)
    }

    /// The value as Apple sent it.
    pub fn as_str(self) -> &'static str {
        self.0
    }
}

impl fmt::Debug for OtherValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0, f)
    }
}

impl fmt::Display for OtherValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Like `wire_enum!`, for values Apple may extend: an unknown name parses to
/// `Other(OtherValue)` instead of failing.
macro_rules! open_wire_enum {
    ($(#[$doc:meta])* $name:ident, { $($(#[$vdoc:meta])* $variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
            /// A value this version of vppkit does not know, kept as Apple sent it.
            Other($crate::OtherValue),
        }

        impl $name {
            /// Every known value, in a stable order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The text form (Apple's name on the wire).
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire,)+ $name::Other(v) => v.as_str() }
            }

            /// Whether this is a value vppkit knows (not [`Self::Other`]).
            pub fn is_known(self) -> bool {
                !matches!(self, $name::Other(_))
            }

            /// Reads a name: a known one, or `Other` with the text kept.
            pub fn from_wire(s: &str) -> Self {
                match s {
                    $($wire => $name::$variant,)+
                    other => $name::Other($crate::OtherValue::intern(other)),
                }
            }
        }

        impl FromStr for $name {
            type Err = ValueError;
            /// Never fails: an unknown name becomes `Other`.
            fn from_str(s: &str) -> Result<Self, ValueError> {
                Ok(Self::from_wire(s))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
                Ok(Self::from_wire(&text))
            }
        }
    };
}
pub(crate) use open_wire_enum;

wire_enum!(
    /// The store quality of a product (`pricingParam`).
    PricingParam, "pricingParam", "STDQ, PLUS", {
        /// Standard quality.
        Stdq = "STDQ",
        /// High quality.
        Plus = "PLUS",
    }
);

#[allow(clippy::derivable_impls)] // the enum is generated by a macro
impl Default for PricingParam {
    fn default() -> Self {
        Self::Stdq
    }
}

open_wire_enum!(
    /// What kind of product an asset is (`productType`). A value Apple adds later is
    /// kept as [`ProductType::Other`].
    ProductType, {
        /// An app.
        App = "App",
        /// A book (user licences only, never revocable).
        Book = "Book",
    }
);

wire_enum!(
    /// A platform an asset supports (`supportedPlatforms`).
    Platform, "platform", "iOS, macOS, tvOS, watchOS, visionOS", {
        /// iOS and iPadOS.
        Ios = "iOS",
        /// macOS.
        MacOs = "macOS",
        /// tvOS.
        TvOs = "tvOS",
        /// watchOS.
        WatchOs = "watchOS",
        /// visionOS.
        VisionOs = "visionOS",
    }
);

/// One asset of a location: `(adamId, pricingParam)`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AssetKey {
    /// The product.
    pub adam_id: AdamId,
    /// Its store quality.
    pub pricing_param: PricingParam,
}

impl AssetKey {
    /// Builds an asset key.
    pub fn new(adam_id: AdamId, pricing_param: PricingParam) -> Self {
        Self {
            adam_id,
            pricing_param,
        }
    }
}

impl fmt::Display for AssetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.adam_id, self.pricing_param)
    }
}

/// Who holds a licence: a device (device licensing) or a VPP user (user licensing).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum Holder {
    /// A device, by serial number.
    Device(SerialNumber),
    /// A VPP user, by the MDM's `clientUserId`.
    User(ClientUserId),
}

impl Holder {
    /// Whether this is a device.
    pub fn is_device(&self) -> bool {
        matches!(self, Holder::Device(_))
    }

    /// Whether this is a user.
    pub fn is_user(&self) -> bool {
        matches!(self, Holder::User(_))
    }

    /// The holder's id as text.
    pub fn id(&self) -> &str {
        match self {
            Holder::Device(s) => s.as_str(),
            Holder::User(u) => u.as_str(),
        }
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Holder::Device(s) => write!(f, "device:{s}"),
            Holder::User(u) => write!(f, "user:{u}"),
        }
    }
}

impl FromStr for Holder {
    type Err = ValueError;
    /// Parses `device:SERIAL` or `user:CLIENT_USER_ID` (the [`Display`](fmt::Display)
    /// form, which stores use). The id after the prefix is taken as Apple may have
    /// sent it ([`SerialNumber::from_apple`], [`ClientUserId::from_apple`]): any
    /// non-empty string.
    fn from_str(s: &str) -> Result<Self, ValueError> {
        if let Some(rest) = s.strip_prefix("device:") {
            return Ok(Holder::Device(SerialNumber::from_apple(rest)?));
        }
        if let Some(rest) = s.strip_prefix("user:") {
            return Ok(Holder::User(ClientUserId::from_apple(rest)?));
        }
        Err(ValueError::Unknown {
            kind: "holder",
            value: s.chars().take(80).collect(),
            allowed: "device:SERIAL or user:CLIENT_USER_ID",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adam_ids_are_digits() {
        assert_eq!(AdamId::new("361304891").unwrap().as_u64(), 361304891);
        assert!(matches!(AdamId::new(""), Err(ValueError::Empty { .. })));
        assert!(matches!(
            AdamId::new("12a"),
            Err(ValueError::BadCharacter { .. })
        ));
        assert!(matches!(
            AdamId::new("1".repeat(20)),
            Err(ValueError::TooLong { .. })
        ));
        assert_eq!(AdamId::from(42).as_str(), "42");
    }

    #[test]
    fn serde_validates() {
        let key: AssetKey =
            serde_json::from_str(r#"{"adamId":"409203825","pricingParam":"STDQ"}"#).unwrap();
        assert_eq!(key.to_string(), "409203825/STDQ");
        assert!(
            serde_json::from_str::<AssetKey>(r#"{"adamId":"x","pricingParam":"STDQ"}"#).is_err()
        );
        assert!(
            serde_json::from_str::<AssetKey>(r#"{"adamId":"1","pricingParam":"GOLD"}"#).is_err()
        );
        assert_eq!(
            serde_json::to_string(&Platform::VisionOs).unwrap(),
            "\"visionOS\""
        );
    }

    #[test]
    fn holders_parse_and_print() {
        let d: Holder = "device:C02000000000".parse().unwrap();
        assert!(d.is_device());
        assert_eq!(d.to_string(), "device:C02000000000");
        let u: Holder = "user:u-7f3a".parse().unwrap();
        assert_eq!(u.id(), "u-7f3a");
        assert!("group:x".parse::<Holder>().is_err());
        assert!(SerialNumber::new("C02 000").is_err());
        assert!(ClientUserId::new("a\tb").is_err());
    }

    #[test]
    fn ids_from_apple_are_lenient_ids_typed_in_are_not() {
        // Apple's documented examples: UUID-like serials, `serial-1`, and serial
        // numbers or user ids with a space or a dot that Apple accepts.
        for serial in [
            "b6817f44-6229-4f1b-ba16-9eef9ebf24c6",
            "serial-1",
            "C02 000",
            "sn.1",
        ] {
            let s: SerialNumber = serde_json::from_str(&format!("{serial:?}")).unwrap();
            assert_eq!(s.as_str(), serial);
            assert_eq!(SerialNumber::from_apple(serial).unwrap(), s);
        }
        assert!(SerialNumber::new("C02 000").is_err());
        assert!(SerialNumber::new("sn.1").is_err());
        assert!(!SerialNumber::from_apple("sn.1")
            .unwrap()
            .is_strictly_valid());
        assert!(SerialNumber::from_apple("C02").unwrap().is_strictly_valid());
        let u: ClientUserId = serde_json::from_str(r#""ana maria.1""#).unwrap();
        assert_eq!(u.as_str(), "ana maria.1");
        assert!(ClientUserId::new("ana maria.1").is_err());
        assert!(serde_json::from_str::<SerialNumber>(r#""""#).is_err());
        assert!(serde_json::from_str::<ClientUserId>(r#""""#).is_err());
        // What a store wrote from Apple's answer reads back.
        let h: Holder = "device:C02 000".parse().unwrap();
        assert_eq!(h.to_string(), "device:C02 000");
        assert!("device:".parse::<Holder>().is_err());
    }

    #[test]
    fn unknown_enum_values_are_kept() {
        let p: ProductType = serde_json::from_str(r#""Subscription""#).unwrap();
        assert!(!p.is_known());
        assert_eq!(p.as_str(), "Subscription");
        assert_eq!(serde_json::to_string(&p).unwrap(), r#""Subscription""#);
        assert_eq!("Subscription".parse::<ProductType>().unwrap(), p);
        assert!(matches!(p, ProductType::Other(v) if v.as_str() == "Subscription"));
        assert!(ProductType::App.is_known());
        let long = "x".repeat(200);
        assert_eq!(ProductType::from_wire(&long).as_str().len(), MAX_OTHER_LEN);
    }

    #[test]
    fn wire_enums_round_trip() {
        for p in Platform::ALL {
            assert_eq!(p.as_str().parse::<Platform>().unwrap(), *p);
        }
        assert_eq!("Book".parse::<ProductType>().unwrap(), ProductType::Book);
        assert!(!"book".parse::<ProductType>().unwrap().is_known());
        assert!("GOLD".parse::<PricingParam>().is_err());
    }
}
