//! Checklist 14: the legacy content metadata lookup.

use serde_json::Value;
use vppkit_sim::{demo, Preset};

use crate::support::{start, Harness};

async fn lookup(h: &Harness, ids: &str, cookie: Option<&str>) -> (u16, Value) {
    let url = format!(
        "{}?version=2&id={ids}&p=mdm-lockup&caller=MDM&platform=enterprisestore&cc=us&l=en",
        h.sim.metadata_url()
    );
    let mut req = h.http.get(url);
    if let Some(c) = cookie {
        req = req.header("Cookie", format!("itvt={c}"));
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn every_seeded_asset_has_name_bundle_and_artwork() {
    let h = start(Preset::Demo).await;
    let cookie = h.bearer(demo::ACME_LONDON);
    let ids: Vec<String> = demo::CATALOG.iter().map(|c| c.0.to_string()).collect();
    let (status, body) = lookup(&h, &ids.join(","), Some(&cookie)).await;
    assert_eq!(status, 200);
    let results = body["results"].as_object().unwrap();
    for (adam, name, bundle, kind) in demo::CATALOG {
        let e = &results[&adam.to_string()];
        assert_eq!(e["name"], *name, "{adam}");
        assert_eq!(e["id"], adam.to_string());
        if kind.contains("book") {
            assert_eq!(e["kind"], "epubBook", "the live lookup's kind for books");
            assert!(e.get("bundleId").is_none());
        } else {
            assert_eq!(e["bundleId"], *bundle);
        }
        let art = e["artwork"]["url"].as_str().unwrap();
        assert!(
            art.contains("{w}") && art.contains("{h}") && art.contains("{f}"),
            "{art}"
        );
        assert!(e["offers"][0]["version"]["display"].is_string());
        assert!(e["deviceFamilies"].is_array());
        // The artwork is served by the simulator.
        let png = h
            .http
            .get(
                art.replace("{w}", "64")
                    .replace("{h}", "64")
                    .replace("{f}", "png"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(png.headers()["content-type"], "image/png");
    }
}

#[tokio::test]
async fn custom_apps_need_an_owning_token_and_bad_cookies_are_refused() {
    let h = start(Preset::Demo).await;
    let custom = demo::CUSTOM_APP.to_string();
    let (_, public) = lookup(&h, &format!("{custom},1200000001"), None).await;
    assert!(public["results"].get(&custom).is_none());
    assert!(public["results"].get("1200000001").is_some());
    let (_, school) = lookup(&h, &custom, Some(&h.bearer(demo::SPRINGFIELD_HIGH))).await;
    assert!(school["results"].get(&custom).is_none());
    let (_, acme) = lookup(&h, &custom, Some(&h.bearer(demo::ACME_BERLIN))).await;
    assert_eq!(acme["results"][&custom]["name"], "Payroll Viewer");
    let (status, _) = lookup(&h, &custom, Some("garbage")).await;
    assert_eq!(status, 403);
    let (status, _) = lookup(&h, "", None).await;
    assert_eq!(status, 403);
    // Unknown ids are simply missing.
    let (status, body) = lookup(&h, "999", None).await;
    assert_eq!(status, 200);
    assert!(body["results"].as_object().unwrap().is_empty());
}

#[tokio::test]
async fn scale_like_assets_added_at_run_time_are_looked_up() {
    let h = start(Preset::Empty).await;
    let t = h
        .sim
        .control()
        .add_location(
            vppkit_sim::LocationSpec::new("Lookup Office").asset(
                vppkit_sim::AssetSpec::app(1_500_000_001, 5)
                    .named("Runtime App", Some("com.example.runtime")),
            ),
        )
        .unwrap();
    let (_, body) = lookup(&h, "1500000001", Some(t.content.expose())).await;
    assert_eq!(
        body["results"]["1500000001"]["bundleId"],
        "com.example.runtime"
    );
}

/// The live lookup's `kind` values: `epubBook` for a book, `desktopApp` for a
/// Mac-only app, `iosSoftware` for every other app.
#[tokio::test]
async fn kinds_are_the_live_lookups_values() {
    use vppkit_core::Platform;
    use vppkit_sim::AssetSpec;
    let h = start(Preset::Demo).await;
    let control = h.sim.control();
    let (mac, both, book) = (1_800_000_001u64, 1_800_000_002u64, 1_800_000_003u64);
    control
        .add_asset(
            demo::ACME_LONDON,
            AssetSpec::app(mac, 5).platforms(vec![Platform::MacOs]),
        )
        .unwrap();
    control
        .add_asset(
            demo::ACME_LONDON,
            AssetSpec::app(both, 5).platforms(vec![Platform::Ios, Platform::MacOs]),
        )
        .unwrap();
    control
        .add_asset(demo::ACME_LONDON, AssetSpec::book(book, 5))
        .unwrap();
    let cookie = h.bearer(demo::ACME_LONDON);
    let (status, body) = lookup(&h, &format!("{mac},{both},{book}"), Some(&cookie)).await;
    assert_eq!(status, 200, "{body}");
    let kind = |adam: u64| body["results"][adam.to_string()]["kind"].clone();
    assert_eq!(kind(mac), "desktopApp");
    assert_eq!(kind(both), "iosSoftware");
    assert_eq!(kind(book), "epubBook");
}
