//! Store metadata for the content metadata lookup (legacy `results` shape).

use serde_json::{json, Value};
use vppkit_core::{Platform, ProductType};

use crate::hash::FastMap;
use crate::spec::AssetSpec;

/// Store facts about one product.
#[derive(Debug, Clone)]
pub(crate) struct CatalogEntry {
    pub(crate) name: String,
    pub(crate) bundle_id: Option<String>,
    pub(crate) kind: ProductType,
    pub(crate) version: String,
    pub(crate) platforms: Vec<Platform>,
    pub(crate) custom: bool,
}

/// Every product any location owns, by adam id.
#[derive(Debug, Default)]
pub(crate) struct Catalog {
    entries: FastMap<u64, CatalogEntry>,
}

impl Catalog {
    /// Records the metadata of an asset spec (first one wins).
    pub(crate) fn add(&mut self, spec: &AssetSpec) {
        let adam = spec.key.adam_id.as_u64();
        self.entries.entry(adam).or_insert_with(|| CatalogEntry {
            name: spec.metadata.name.clone(),
            bundle_id: match spec.product_type {
                ProductType::Book => None,
                _ => Some(
                    spec.metadata
                        .bundle_id
                        .clone()
                        .unwrap_or_else(|| format!("com.vppkit.sim.app{adam}")),
                ),
            },
            kind: spec.product_type,
            version: spec
                .metadata
                .version
                .clone()
                .unwrap_or_else(|| "1.0".to_owned()),
            platforms: spec.platforms.clone(),
            custom: spec.custom,
        });
    }

    pub(crate) fn get(&self, adam: u64) -> Option<&CatalogEntry> {
        self.entries.get(&adam)
    }
}

fn device_families(platforms: &[Platform]) -> Vec<&'static str> {
    let mut out = Vec::new();
    for p in platforms {
        match p {
            Platform::Ios => out.extend(["iphone", "ipad"]),
            Platform::MacOs => out.push("mac"),
            Platform::TvOs => out.push("tvos"),
            Platform::WatchOs => out.push("watch"),
            Platform::VisionOs => out.push("realityDevice"),
            _ => {}
        }
    }
    out
}

/// One lookup result in the legacy `mdm-lockup` shape.
pub(crate) fn lookup_entry(root: &str, adam: u64, e: &CatalogEntry, cc: &str) -> Value {
    // The `kind` values the live lookup answers with.
    let kind = match e.kind {
        ProductType::Book => "epubBook",
        _ if e.platforms == [Platform::MacOs] => "desktopApp",
        _ => "iosSoftware",
    };
    let store = if e.kind == ProductType::Book {
        "books.apple.com"
    } else {
        "apps.apple.com"
    };
    let path = if e.kind == ProductType::Book {
        "book"
    } else {
        "app"
    };
    let mut v = json!({
        "artistName": "vppkit simulator",
        "artwork": {
            "height": 1024,
            "url": format!("{root}/artwork/{adam}/{{w}}x{{h}}bb.{{f}}"),
            "width": 1024,
        },
        "deviceFamilies": device_families(&e.platforms),
        "id": adam.to_string(),
        "kind": kind,
        "name": e.name,
        "offers": [{"price": 0.0, "type": "get", "version": {"display": e.version}}],
        "url": format!("https://{store}/{cc}/{path}/id{adam}"),
    });
    if let Some(b) = &e.bundle_id {
        v["bundleId"] = json!(b);
    }
    v
}

/// A 1x1 PNG served for every artwork URL.
pub(crate) const ARTWORK_PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x60, 0x60, 0xf8, 0xcf,
    0x00, 0x00, 0x03, 0x04, 0x01, 0x00, 0x8a, 0xc8, 0x4b, 0x3f, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];
