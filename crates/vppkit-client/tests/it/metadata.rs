//! Content metadata lookup: URL from service config, itvt cookie, batching.

use serde_json::json;
use vppkit_client::MetadataQuery;
use vppkit_core::AdamId;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

use crate::support::{client, server, token_file};

#[tokio::test]
async fn lookup_uses_service_config_url_cookie_and_batches() {
    let server = server().await;
    Mock::given(method("GET"))
        .and(path("/mdm/v2/service/config"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "limits": {}, "urls": {"contentMetadataLookup": format!("{}/WebObjects/MZStorePlatform.woa/wa/lookup", server.uri())}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let cookie = format!("itvt={}", token_file());
    for (ids, body) in [
        (
            "361304891,409203825",
            json!({"results": {
                "361304891": {"name": "Numbers", "bundleId": "com.apple.Numbers",
                              "artwork": {"url": "https://is1.example/{w}x{h}bb.{f}", "width": 512, "height": 512},
                              "offers": [{"version": {"display": "14.1"}}], "deviceFamilies": ["iphone", "ipad"]},
                "409203825": {"name": "Pages", "bundleId": "com.apple.Pages"}
            }}),
        ),
        ("1000000001", json!({"results": {}})),
    ] {
        Mock::given(method("GET"))
            .and(path("/WebObjects/MZStorePlatform.woa/wa/lookup"))
            .and(query_param("id", ids))
            .and(query_param("version", "2"))
            .and(query_param("p", "mdm-lockup"))
            .and(query_param("caller", "MDM"))
            .and(query_param("platform", "volumestore"))
            .and(query_param("cc", "de"))
            .and(header("cookie", cookie.as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .expect(1)
            .mount(&server)
            .await;
    }
    let ids: Vec<AdamId> = ["361304891", "409203825", "1000000001", "361304891"]
        .iter()
        .map(|s| AdamId::new(*s).unwrap())
        .collect();
    let found = client(&server)
        .lookup_metadata(
            &ids,
            &MetadataQuery::new("DE")
                .platform("volumestore")
                .batch_size(2),
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 2);
    let numbers = &found[&ids[0]];
    assert_eq!(numbers.name, "Numbers");
    assert_eq!(numbers.version.as_deref(), Some("14.1"));
    assert_eq!(found[&ids[1]].bundle_id.as_deref(), Some("com.apple.Pages"));
    assert!(!found.contains_key(&ids[2]));
}

#[tokio::test]
async fn lookup_error_is_typed() {
    let server = server().await;
    Mock::given(method("GET"))
        .and(path("/lookup"))
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_string("Invalid Stoken or Empty/Null ids Request Parameter"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let c = crate::support::builder(&server)
        .metadata_lookup_url(format!("{}/lookup", server.uri()))
        .build()
        .unwrap();
    let e = c
        .lookup_metadata(&[AdamId::from(1)], &MetadataQuery::new("us"))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(403));
    assert!(!format!("{e} {e:?}").contains(&token_file()));
}
