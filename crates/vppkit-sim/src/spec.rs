//! Descriptions of locations and assets to create (presets and `add_location`).

use vppkit_core::{
    AccountType, AdamId, AssetKey, AssetMetadata, MdmInfo, Platform, PricingParam, ProductType,
    Uid, UNLIMITED_COUNT,
};

/// An asset to put in a location, with its store metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AssetSpec {
    /// `(adamId, pricingParam)`.
    pub key: AssetKey,
    /// App or Book.
    pub product_type: ProductType,
    /// Can go to serial numbers.
    pub device_assignable: bool,
    /// Can be taken back.
    pub revocable: bool,
    /// `supportedPlatforms`.
    pub platforms: Vec<Platform>,
    /// `totalCount` (use [`UNLIMITED_COUNT`] for a free asset).
    pub total: u32,
    /// `retiredCount`.
    pub retired: u32,
    /// Name, bundle id, version for the metadata lookup.
    pub metadata: AssetMetadata,
    /// A custom (B2B) app: the metadata lookup shows it only with the `itvt`
    /// cookie of a token of a location that owns it.
    pub custom: bool,
}

impl AssetSpec {
    /// A paid app with `total` licences: device-assignable, revocable, iOS.
    pub fn app(adam_id: u64, total: u32) -> Self {
        Self {
            key: AssetKey::new(AdamId::from(adam_id), PricingParam::Stdq),
            product_type: ProductType::App,
            device_assignable: true,
            revocable: true,
            platforms: vec![Platform::Ios],
            total,
            retired: 0,
            metadata: AssetMetadata::new(format!("App {adam_id}")),
            custom: false,
        }
    }

    /// A free app: unlimited licences (`totalCount` 2147483647).
    pub fn free_app(adam_id: u64) -> Self {
        Self::app(adam_id, UNLIMITED_COUNT)
    }

    /// A book with `total` licences: user-only, not revocable.
    pub fn book(adam_id: u64, total: u32) -> Self {
        Self {
            product_type: ProductType::Book,
            device_assignable: false,
            revocable: false,
            platforms: vec![Platform::Ios, Platform::MacOs],
            metadata: AssetMetadata::new(format!("Book {adam_id}")),
            ..Self::app(adam_id, total)
        }
    }

    /// Sets the pricing parameter.
    pub fn pricing(mut self, pricing: PricingParam) -> Self {
        self.key.pricing_param = pricing;
        self
    }

    /// Sets `deviceAssignable`.
    pub fn device_assignable(mut self, yes: bool) -> Self {
        self.device_assignable = yes;
        self
    }

    /// Sets `revocable`.
    pub fn revocable(mut self, yes: bool) -> Self {
        self.revocable = yes;
        self
    }

    /// Sets the platforms.
    pub fn platforms(mut self, platforms: Vec<Platform>) -> Self {
        self.platforms = platforms;
        self
    }

    /// Sets `retiredCount`.
    pub fn retired(mut self, retired: u32) -> Self {
        self.retired = retired;
        self
    }

    /// Sets the display name and (apps) bundle id.
    pub fn named(mut self, name: &str, bundle_id: Option<&str>) -> Self {
        self.metadata.name = name.to_owned();
        self.metadata.bundle_id = bundle_id.map(str::to_owned);
        self
    }

    /// Marks it as a custom (B2B) app.
    pub fn custom(mut self, yes: bool) -> Self {
        self.custom = yes;
        self
    }

    /// Whether it is free (unlimited).
    pub fn is_unlimited(&self) -> bool {
        self.total >= UNLIMITED_COUNT
    }
}

/// A location (organisational unit, one content token) to create.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LocationSpec {
    /// `locationName`.
    pub name: String,
    /// `orgName` in the token file.
    pub org_name: String,
    /// `uId`; generated (deterministic, `73…`) when `None`.
    pub uid: Option<Uid>,
    /// Business (`enterprisestore`) or education (`volumestore`).
    pub account: AccountType,
    /// `countryISO2ACode`.
    pub country: String,
    /// Assets owned.
    pub assets: Vec<AssetSpec>,
    /// An `mdmInfo` already on the token (another MDM's claim).
    pub mdm_info: Option<MdmInfo>,
}

impl LocationSpec {
    /// An empty business location in the US named `name`.
    pub fn new(name: impl Into<String>) -> Self {
        let name = name.into();
        Self {
            org_name: name.clone(),
            name,
            uid: None,
            account: AccountType::Business,
            country: "US".to_owned(),
            assets: Vec::new(),
            mdm_info: None,
        }
    }

    /// Sets the `uId`.
    pub fn uid(mut self, uid: Uid) -> Self {
        self.uid = Some(uid);
        self
    }

    /// Sets the organisation name.
    pub fn org_name(mut self, org: impl Into<String>) -> Self {
        self.org_name = org.into();
        self
    }

    /// Sets business or education.
    pub fn account(mut self, account: AccountType) -> Self {
        self.account = account;
        self
    }

    /// Sets the country code.
    pub fn country(mut self, iso2: impl Into<String>) -> Self {
        self.country = iso2.into();
        self
    }

    /// Adds an asset.
    pub fn asset(mut self, asset: AssetSpec) -> Self {
        self.assets.push(asset);
        self
    }

    /// Puts another MDM's `mdmInfo` on the token.
    pub fn claimed_by(mut self, info: MdmInfo) -> Self {
        self.mdm_info = Some(info);
        self
    }
}
