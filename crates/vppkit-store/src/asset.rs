//! Assets of a location with their metadata.

use chrono::{DateTime, Utc};
use vppkit_core::{Asset, AssetMetadata};

/// An asset as stored: Apple's properties and counts, plus display metadata once looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AssetRecord {
    /// The asset and its counts.
    pub asset: Asset,
    /// Names, bundle id, artwork, when known.
    pub metadata: Option<AssetMetadata>,
    /// When the asset row was last written.
    pub updated_at: DateTime<Utc>,
}

impl AssetRecord {
    /// Builds an asset record.
    pub fn new(asset: Asset, metadata: Option<AssetMetadata>, updated_at: DateTime<Utc>) -> Self {
        Self {
            asset,
            metadata,
            updated_at,
        }
    }
}
