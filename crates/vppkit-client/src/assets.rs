//! `GET assets`: filters, the wire asset, and its conversion to [`vppkit_core::Asset`].

use serde::{Deserialize, Serialize};
use vppkit_core::{
    AdamId, Asset, AssetCounts, AssetKey, Platform, PricingParam, ProductType, UNLIMITED_COUNT,
};

use crate::envelope::enveloped;
use crate::pagination::{PageFields, RawPage};
use crate::records::Records;

/// Query filters of `GET assets` (all optional, combined with AND).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AssetFilter {
    /// `productType`: App or Book.
    pub product_type: Option<ProductType>,
    /// `pricingParam`: STDQ or PLUS.
    pub pricing_param: Option<PricingParam>,
    /// `revocable`.
    pub revocable: Option<bool>,
    /// `deviceAssignable`.
    pub device_assignable: Option<bool>,
    /// `minAvailableCount` (inclusive).
    pub min_available_count: Option<u32>,
    /// `maxAvailableCount` (inclusive).
    pub max_available_count: Option<u32>,
    /// `minAssignedCount` (inclusive).
    pub min_assigned_count: Option<u32>,
    /// `maxAssignedCount` (inclusive).
    pub max_assigned_count: Option<u32>,
    /// `adamId`: one product.
    pub adam_id: Option<AdamId>,
    /// `unlimited`: `true` puts free assets in `unlimitedAssets`, `false` leaves them
    /// out, absent lists them in `assets` with `totalCount` 2147483647.
    pub unlimited: Option<bool>,
}

impl AssetFilter {
    /// No filter: every asset.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only one product.
    pub fn adam_id(mut self, adam_id: AdamId) -> Self {
        self.adam_id = Some(adam_id);
        self
    }

    /// Only apps or only books.
    pub fn product_type(mut self, t: ProductType) -> Self {
        self.product_type = Some(t);
        self
    }

    /// Only one pricing param.
    pub fn pricing_param(mut self, p: PricingParam) -> Self {
        self.pricing_param = Some(p);
        self
    }

    /// Only revocable (or irrevocable) assets.
    pub fn revocable(mut self, v: bool) -> Self {
        self.revocable = Some(v);
        self
    }

    /// Only device-assignable (or not) assets.
    pub fn device_assignable(mut self, v: bool) -> Self {
        self.device_assignable = Some(v);
        self
    }

    /// Bounds on `availableCount` (inclusive).
    pub fn available_count(mut self, min: Option<u32>, max: Option<u32>) -> Self {
        self.min_available_count = min;
        self.max_available_count = max;
        self
    }

    /// Bounds on `assignedCount` (inclusive).
    pub fn assigned_count(mut self, min: Option<u32>, max: Option<u32>) -> Self {
        self.min_assigned_count = min;
        self.max_assigned_count = max;
        self
    }

    /// The `unlimited` switch.
    pub fn unlimited(mut self, v: bool) -> Self {
        self.unlimited = Some(v);
        self
    }

    /// The query pairs, in a stable order.
    pub fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if let Some(v) = self.product_type {
            q.push(("productType", v.as_str().to_owned()));
        }
        if let Some(v) = self.pricing_param {
            q.push(("pricingParam", v.as_str().to_owned()));
        }
        if let Some(v) = self.revocable {
            q.push(("revocable", v.to_string()));
        }
        if let Some(v) = self.device_assignable {
            q.push(("deviceAssignable", v.to_string()));
        }
        if let Some(v) = self.min_available_count {
            q.push(("minAvailableCount", v.to_string()));
        }
        if let Some(v) = self.max_available_count {
            q.push(("maxAvailableCount", v.to_string()));
        }
        if let Some(v) = self.min_assigned_count {
            q.push(("minAssignedCount", v.to_string()));
        }
        if let Some(v) = self.max_assigned_count {
            q.push(("maxAssignedCount", v.to_string()));
        }
        if let Some(v) = &self.adam_id {
            q.push(("adamId", v.as_str().to_owned()));
        }
        if let Some(v) = self.unlimited {
            q.push(("unlimited", v.to_string()));
        }
        q
    }
}

/// One asset as Apple sends it (`ResponseAsset`, or `UnlimitedResponseAsset` when
/// [`ResponseAsset::unlimited`] is set: those have no total, available or retired count).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ResponseAsset {
    /// Product id.
    pub adam_id: AdamId,
    /// Store quality.
    pub pricing_param: PricingParam,
    /// App or Book.
    pub product_type: ProductType,
    /// Can be assigned to serial numbers.
    #[serde(default)]
    pub device_assignable: bool,
    /// Licences can be taken back.
    #[serde(default)]
    pub revocable: bool,
    /// Platforms as Apple names them (unknown names kept).
    #[serde(default)]
    pub supported_platforms: Vec<String>,
    /// `totalCount`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_count: Option<u32>,
    /// `assignedCount`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_count: Option<u32>,
    /// `availableCount`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_count: Option<u32>,
    /// `retiredCount`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_count: Option<u32>,
    /// Whether it came in `unlimitedAssets`.
    #[serde(skip)]
    pub unlimited: bool,
}

impl ResponseAsset {
    /// `(adamId, pricingParam)`.
    pub fn key(&self) -> AssetKey {
        AssetKey::new(self.adam_id.clone(), self.pricing_param)
    }

    /// The platforms this crate knows (unknown names are skipped).
    pub fn platforms(&self) -> Vec<Platform> {
        self.supported_platforms
            .iter()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    /// Whether licences are unlimited (free product).
    pub fn is_unlimited(&self) -> bool {
        self.unlimited || self.total_count.is_some_and(|t| t >= UNLIMITED_COUNT)
    }
}

impl From<&Asset> for ResponseAsset {
    /// The wire form of a core asset (for fakes and tests). Unlimited assets are
    /// written as Apple lists them without `unlimited=true`: in `assets`, with
    /// `totalCount` 2147483647.
    fn from(a: &Asset) -> Self {
        Self {
            adam_id: a.key.adam_id.clone(),
            pricing_param: a.key.pricing_param,
            product_type: a.product_type,
            device_assignable: a.device_assignable,
            revocable: a.revocable,
            supported_platforms: a
                .supported_platforms
                .iter()
                .map(|p| p.as_str().to_owned())
                .collect(),
            total_count: Some(a.counts.total),
            assigned_count: Some(a.counts.assigned),
            available_count: Some(a.counts.available),
            retired_count: Some(a.counts.retired),
            unlimited: false,
        }
    }
}

/// A wire value that lacks what the core type needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} has no `{field}`")]
#[non_exhaustive]
pub struct ConversionError {
    /// What was being converted.
    pub what: String,
    /// The missing field.
    pub field: &'static str,
}

impl TryFrom<ResponseAsset> for Asset {
    type Error = ConversionError;

    /// Unlimited assets get a total of 2147483647 (available = total - assigned);
    /// limited ones need total, assigned and available counts.
    fn try_from(a: ResponseAsset) -> Result<Self, ConversionError> {
        let key = a.key();
        let platforms = a.platforms();
        let counts = if a.unlimited {
            let assigned = a.assigned_count.unwrap_or(0);
            AssetCounts::new(
                UNLIMITED_COUNT,
                assigned,
                UNLIMITED_COUNT.saturating_sub(assigned),
                0,
            )
        } else {
            let missing = |field| ConversionError {
                what: format!("asset {key}"),
                field,
            };
            AssetCounts::new(
                a.total_count.ok_or_else(|| missing("totalCount"))?,
                a.assigned_count.ok_or_else(|| missing("assignedCount"))?,
                a.available_count.ok_or_else(|| missing("availableCount"))?,
                a.retired_count.unwrap_or(0),
            )
        };
        Ok(Asset::new(
            key,
            a.product_type,
            a.device_assignable,
            a.revocable,
            platforms,
            counts,
        ))
    }
}

enveloped! {
    pub(crate) struct RawAssetsPage {
        #[serde(default)]
        assets: Records<ResponseAsset>,
        #[serde(default)]
        unlimited_assets: Records<ResponseAsset>,
        #[serde(default)]
        current_page_index: Option<u32>,
        #[serde(default)]
        next_page_index: Option<u32>,
        #[serde(default)]
        size: Option<u32>,
        #[serde(default)]
        total_pages: Option<u32>,
        #[serde(default)]
        version_id: Option<String>,
    }
}

impl RawPage for RawAssetsPage {
    type Item = ResponseAsset;
    fn into_fields(mut self) -> PageFields<ResponseAsset> {
        let envelope = self.take_envelope();
        let mut skipped = self.assets.skipped("assets");
        skipped.extend(self.unlimited_assets.skipped("unlimitedAssets"));
        let mut items = self.assets.items;
        items.extend(self.unlimited_assets.items.into_iter().map(|mut a| {
            a.unlimited = true;
            a
        }));
        PageFields {
            items,
            skipped,
            current_page_index: self.current_page_index,
            next_page_index: self.next_page_index,
            size: self.size,
            total_pages: self.total_pages,
            version_id: self.version_id,
            envelope,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_limited_and_unlimited() {
        let page: RawAssetsPage = serde_json::from_str(
            r#"{"assets":[{"adamId":"1200000001","pricingParam":"STDQ","productType":"App","deviceAssignable":true,
            "revocable":true,"supportedPlatforms":["iOS","macOS","xrOS"],"totalCount":50,"assignedCount":12,
            "availableCount":38,"retiredCount":0,"newField":{"x":1}}],
            "unlimitedAssets":[{"adamId":"55","pricingParam":"STDQ","productType":"App","deviceAssignable":true,"revocable":true,"supportedPlatforms":[],"assignedCount":3}],
            "currentPageIndex":0,"size":2,"totalPages":1,"versionId":"v1","uId":"7300112233445566"}"#,
        )
        .unwrap();
        let f = page.into_fields();
        assert_eq!(f.items.len(), 2);
        let a = Asset::try_from(f.items[0].clone()).unwrap();
        assert_eq!(a.counts, AssetCounts::new(50, 12, 38, 0));
        assert_eq!(a.supported_platforms, vec![Platform::Ios, Platform::MacOs]);
        let u = Asset::try_from(f.items[1].clone()).unwrap();
        assert!(u.counts.is_unlimited());
        assert_eq!(u.counts.assigned, 3);
        assert_eq!(Asset::try_from(ResponseAsset::from(&a)).unwrap(), a);
        let mut broken = f.items[0].clone();
        broken.total_count = None;
        assert_eq!(Asset::try_from(broken).unwrap_err().field, "totalCount");
    }

    #[test]
    fn filter_query() {
        let f = AssetFilter::new()
            .product_type(ProductType::Book)
            .pricing_param(PricingParam::Plus)
            .revocable(false)
            .device_assignable(true)
            .available_count(Some(1), Some(9))
            .assigned_count(Some(0), Some(5))
            .adam_id(AdamId::new("42").unwrap())
            .unlimited(true);
        let q = f.query();
        assert_eq!(q.len(), 10);
        assert!(q.contains(&("productType", "Book".into())));
        assert!(q.contains(&("maxAssignedCount", "5".into())));
        assert!(q.contains(&("unlimited", "true".into())));
    }
}
