//! Content metadata (names, bundle ids, icons) through the legacy lookup
//! (`urls.contentMetadataLookup` of service config).

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use vppkit_core::{AdamId, AssetMetadata};

use crate::DecodeError;

/// The default legacy lookup URL, used when service config does not name one.
pub const DEFAULT_METADATA_LOOKUP_URL: &str =
    "https://uclient-api.itunes.apple.com/WebObjects/MZStorePlatform.woa/wa/lookup";

/// What to look up with: storefront, platform, language, ids per request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetadataQuery {
    /// Storefront (`cc`), lower case: the location's `countryISO2ACode`.
    pub storefront: String,
    /// `platform`: `defaultPlatform` of client config (`enterprisestore` or `volumestore`).
    pub platform: String,
    /// `l`: language, e.g. `en-US`.
    pub language: Option<String>,
    /// Ids per request (comma-separated in `id`).
    pub batch_size: usize,
}

impl MetadataQuery {
    /// A query for a storefront (e.g. `us`), `enterprisestore`, 50 ids per request.
    pub fn new(storefront: impl Into<String>) -> Self {
        Self {
            storefront: storefront.into().to_ascii_lowercase(),
            platform: "enterprisestore".to_owned(),
            language: None,
            batch_size: 50,
        }
    }

    /// Sets the platform (`defaultPlatform` of client config).
    pub fn platform(mut self, platform: impl Into<String>) -> Self {
        self.platform = platform.into();
        self
    }

    /// Sets the language.
    pub fn language(mut self, language: impl Into<String>) -> Self {
        self.language = Some(language.into());
        self
    }

    /// Sets how many ids go in one request (at least 1).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.max(1);
        self
    }

    /// The query pairs for one batch of ids.
    pub fn query(&self, ids: &[AdamId]) -> Vec<(&'static str, String)> {
        let ids: Vec<&str> = ids.iter().map(AdamId::as_str).collect();
        let mut q = vec![
            ("version", "2".to_owned()),
            ("id", ids.join(",")),
            ("p", "mdm-lockup".to_owned()),
            ("caller", "MDM".to_owned()),
            ("platform", self.platform.clone()),
            ("cc", self.storefront.clone()),
        ];
        if let Some(l) = &self.language {
            q.push(("l", l.clone()));
        }
        q
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLookup {
    #[serde(default)]
    results: BTreeMap<String, Box<serde_json::value::RawValue>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawItem {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    bundle_id: Option<String>,
    #[serde(default)]
    artwork: Option<RawArtworks>,
    #[serde(default)]
    offers: Vec<RawOffer>,
    #[serde(default)]
    device_families: Vec<String>,
}

#[derive(Deserialize)]
struct RawArtwork {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    width: Option<u32>,
}

/// `artwork` comes in two forms: one object (a URL template with `{w}`, `{h}`,
/// `{f}`: the B2B and current answers) or an array of sized images (the example of
/// Apple's "Getting app and book information (Legacy)" page). Both are read.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawArtworks {
    One(RawArtwork),
    Many(Vec<RawArtwork>),
}

impl RawArtworks {
    /// The template, or else the largest sized image.
    fn url(self) -> Option<String> {
        match self {
            RawArtworks::One(a) => a.url,
            RawArtworks::Many(list) => list
                .into_iter()
                .filter(|a| a.url.is_some())
                .max_by_key(|a| a.width.unwrap_or(0))
                .and_then(|a| a.url),
        }
    }
}

#[derive(Deserialize)]
struct RawOffer {
    #[serde(default)]
    version: Option<RawVersion>,
}

#[derive(Deserialize)]
struct RawVersion {
    #[serde(default)]
    display: Option<String>,
}

/// Parses a lookup answer (`{"results": {"<adamId>": {...}}}`). Ids missing from
/// the storefront are simply absent; keys that are not adam ids are skipped.
pub fn parse_metadata_lookup(body: &[u8]) -> Result<HashMap<AdamId, AssetMetadata>, DecodeError> {
    let raw: RawLookup = serde_json::from_slice(body).map_err(DecodeError::new)?;
    Ok(raw
        .results
        .into_iter()
        .filter_map(|(id, raw)| {
            let id = AdamId::new(id).ok()?;
            // One product whose entry cannot be read is left out (and logged), not
            // the whole batch.
            let item: RawItem = match serde_json::from_str(raw.get()) {
                Ok(item) => item,
                Err(e) => {
                    tracing::warn!(adam_id = %id, reason = %e, "skipped a metadata entry that cannot be read");
                    return None;
                }
            };
            let mut meta = AssetMetadata::new(item.name.unwrap_or_default());
            meta.bundle_id = item.bundle_id;
            meta.artwork_url = item.artwork.and_then(RawArtworks::url);
            meta.version = item
                .offers
                .into_iter()
                .find_map(|o| o.version.and_then(|v| v.display));
            meta.platforms = item.device_families;
            Some((id, meta))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lookup() {
        let m = parse_metadata_lookup(
            br#"{"results":{"361304891":{"name":"Numbers","bundleId":"com.apple.Numbers",
            "artwork":{"url":"https://is1.example/{w}x{h}bb.{f}","width":1024,"height":1024},
            "offers":[{"version":{"display":"14.1"}}],"deviceFamilies":["iphone","ipad"],"kind":"iosSoftware"},
            "bogus":{"name":"x"}}}"#,
        )
        .unwrap();
        assert_eq!(m.len(), 1);
        let n = &m[&AdamId::new("361304891").unwrap()];
        assert_eq!(n.name, "Numbers");
        assert_eq!(n.bundle_id.as_deref(), Some("com.apple.Numbers"));
        assert_eq!(n.version.as_deref(), Some("14.1"));
        assert_eq!(n.platforms, vec!["iphone", "ipad"]);
        assert!(n.artwork_url.as_deref().unwrap().contains("{w}"));
        assert!(parse_metadata_lookup(br#"{}"#).unwrap().is_empty());
    }

    #[test]
    fn query_shape() {
        let q = MetadataQuery::new("DE")
            .platform("volumestore")
            .language("de-DE");
        let pairs = q.query(&[AdamId::from(1), AdamId::from(2)]);
        assert!(pairs.contains(&("id", "1,2".into())));
        assert!(pairs.contains(&("cc", "de".into())));
        assert!(pairs.contains(&("p", "mdm-lockup".into())));
        assert!(pairs.contains(&("platform", "volumestore".into())));
        assert!(pairs.contains(&("l", "de-DE".into())));
    }
}
