//! Shared ids, value types and content-token parsing for vppkit.
//!
//! Every other vppkit crate speaks in these types. Each one validates on
//! construction, so a value that exists is a value Apple would accept:
//!
//! ```
//! use vppkit_core::{AdamId, AssetKey, Holder, PricingParam, SerialNumber};
//!
//! let app = AssetKey::new(AdamId::new("409203825")?, PricingParam::Stdq);
//! let holder = Holder::Device(SerialNumber::new("C02000000000")?);
//! assert_eq!(app.adam_id.as_u64(), 409203825);
//! assert!(holder.is_device());
//! assert!(AdamId::new("not-a-number").is_err());
//! # Ok::<(), vppkit_core::ValueError>(())
//! ```
//!
//! The content token (`.vpptoken` file) is parsed by [`ContentToken::parse`]; its
//! secret never appears in `Debug` or `Display` output and is zeroed on drop.
//!
//! ```
//! use vppkit_core::ContentToken;
//!
//! let file = ContentToken::encode_file("opaque", "2031-03-01T10:00:00-0800", "Example School");
//! let token = ContentToken::parse(&file)?;
//! assert_eq!(token.org_name(), "Example School");
//! assert!(!format!("{token:?}").contains(&file));
//! # Ok::<(), vppkit_core::TokenError>(())
//! ```

mod datetime;
mod domain;
mod ids;
mod mdm_info;
mod secret;
mod token;

pub use datetime::{format_apple_datetime, parse_apple_datetime, DateTimeError};
pub use domain::{
    AccountType, Asset, AssetCounts, AssetMetadata, HoldingStatus, TokenState, VppUser,
    VppUserStatus, UNLIMITED_COUNT,
};
pub use ids::{
    AdamId, AssetKey, ClientUserId, EventId, Holder, LocationId, NotificationId, OtherValue,
    Platform, PricingParam, ProductType, SerialNumber, Uid, ValueError,
};
pub use mdm_info::{
    MdmInfo, MdmInfoError, MAX_ID_LEN as MAX_MDM_ID_LEN, MAX_METADATA_LEN as MAX_MDM_METADATA_LEN,
    MAX_NAME_LEN as MAX_MDM_NAME_LEN,
};
pub use secret::Secret;
pub use token::{ContentToken, TokenError, MAX_TOKEN_FILE_LEN};
