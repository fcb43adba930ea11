//! The control API over HTTP (`/_sim/v1`): every endpoint, raw HTTP and
//! `serde_json::Value`, each checked through Apple's API or the ground truth.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use vppkit_sim::{demo, Preset, SimClock, Simulator};

use crate::support::{start, start_notifying, start_with, subscribe, Harness, Receiver, Reply};

const UID: &str = demo::SPRINGFIELD_HIGH;

/// A request to the control API (path after `/_sim/v1`).
async fn ctl(h: &Harness, method: Method, path: &str, body: Option<Value>) -> Reply {
    let base = h.sim.control_url().expect("control API on");
    let mut req = h.http.request(method, format!("{base}{path}"));
    if let Some(b) = body {
        req = req
            .header("Content-Type", "application/json")
            .body(b.to_string());
    }
    let resp = req.send().await.expect("request sent");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.expect("body read");
    Reply {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

#[track_caller]
fn expect(r: &Reply, status: u16) -> Value {
    assert_eq!(r.status.as_u16(), status, "body: {}", r.body);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "{:?}",
        r.headers
    );
    r.body.clone()
}

#[track_caller]
fn expect_error(r: &Reply, status: u16, error: &str) {
    let body = expect(r, status);
    assert_eq!(body["error"], error, "body: {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "body: {body}"
    );
}

/// Apple's counts of one asset through `GET /mdm/v2/assets`.
async fn apple_asset(h: &Harness, uid: &str, adam: u64, pricing: &str) -> Option<Value> {
    let r = h
        .get(
            uid,
            &format!("/assets?adamId={adam}&pricingParam={pricing}"),
        )
        .await
        .ok();
    r["assets"].as_array().unwrap().first().cloned()
}

fn total(asset: &Value) -> u64 {
    asset["totalCount"].as_u64().unwrap()
}

#[tokio::test]
async fn index_names_the_urls_and_the_clock() {
    let h = start(Preset::Demo).await;
    let body = expect(&ctl(&h, Method::GET, "", None).await, 200);
    assert_eq!(body["baseUrl"], h.sim.base_url());
    assert_eq!(body["rootUrl"], h.sim.root_url());
    assert_eq!(body["metadataUrl"], h.sim.metadata_url());
    assert_eq!(body["controlUrl"].as_str(), h.sim.control_url().as_deref());
    assert_eq!(
        h.sim.control_url().unwrap(),
        format!("{}/_sim/v1", h.sim.root_url())
    );
    assert_eq!(body["clock"]["manual"], true);
    assert_eq!(body["clock"]["nowMillis"], 0);
    assert_eq!(body["locations"], 4);
    // A trailing slash is the same route.
    assert_eq!(expect(&ctl(&h, Method::GET, "/", None).await, 200), body);
}

#[tokio::test]
async fn unknown_routes_methods_and_bodies_are_typed_errors() {
    let h = start(Preset::Demo).await;
    expect_error(
        &ctl(&h, Method::GET, "/nothing", None).await,
        404,
        "not_found",
    );
    let r = ctl(&h, Method::DELETE, "/locations", None).await;
    expect_error(&r, 405, "method_not_allowed");
    assert_eq!(r.headers["allow"], "GET, POST");
    expect_error(
        &ctl(&h, Method::GET, "/locations/999/assets", None).await,
        404,
        "unknown_location",
    );
    let raw = h
        .http
        .post(format!(
            "{}/locations/{UID}/assets/{}/buy",
            h.sim.control_url().unwrap(),
            demo::SHORTAGE_APP
        ))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
    let body: Value = raw.json().await.unwrap();
    assert_eq!(body["error"], "bad_request");
    // Misspelled fields are refused rather than ignored.
    expect_error(
        &ctl(
            &h,
            Method::PUT,
            "/throttling",
            Some(json!({"enable": true})),
        )
        .await,
        400,
        "bad_request",
    );
    // Nothing changed.
    let a = apple_asset(&h, UID, demo::SHORTAGE_APP, "STDQ")
        .await
        .unwrap();
    assert_eq!(total(&a), 50);
}

#[tokio::test]
async fn switched_off_it_is_not_served() {
    let h = start_with(
        Simulator::builder()
            .preset(Preset::Demo)
            .clock(SimClock::manual())
            .control_api(false),
    )
    .await;
    assert!(h.sim.control_url().is_none());
    let url = format!("{}/_sim/v1/locations", h.sim.root_url());
    let r = h.http.get(url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(serde_json::from_slice::<Value>(&r.bytes().await.unwrap()).is_err());
    // Apple's API still works.
    h.get(UID, "/client/config").await.ok();
}

#[tokio::test]
async fn add_and_read_locations() {
    let h = start(Preset::Empty).await;
    let created = expect(
        &ctl(
            &h,
            Method::POST,
            "/locations",
            Some(json!({
                "name": "Shelbyville High",
                "orgName": "Shelbyville Schools",
                "uId": "7300000000000777",
                "account": "education",
                "country": "US",
                "assets": [
                    {"adamId": "1500000001", "totalCount": 10, "name": "Geo Maps", "bundleId": "org.example.geo"},
                    {"adamId": 1500000002, "productType": "Book", "totalCount": 3},
                    {"adamId": "1500000003", "free": true}
                ]
            })),
        )
        .await,
        201,
    );
    assert_eq!(created["uId"], "7300000000000777");
    assert_eq!(created["index"], 0);
    assert_eq!(created["fileName"], "shelbyville-high.vpptoken");
    let bearer = format!("Bearer {}", created["content"].as_str().unwrap());
    // The new token works against Apple's API.
    let config = h
        .raw(Method::GET, "/client/config", Some(&bearer), None, None)
        .await
        .ok();
    assert_eq!(config["uId"], "7300000000000777");
    assert_eq!(config["locationName"], "Shelbyville High");
    assert_eq!(config["defaultPlatform"], "volumestore");
    let assets = h
        .raw(Method::GET, "/assets", Some(&bearer), None, None)
        .await
        .ok();
    assert_eq!(assets["size"], 3);
    let book = assets["assets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["adamId"] == "1500000002")
        .unwrap();
    assert_eq!(book["productType"], "Book");
    assert_eq!(book["deviceAssignable"], false);

    let one = expect(
        &ctl(&h, Method::GET, "/locations/7300000000000777", None).await,
        200,
    );
    assert_eq!(one["locationName"], "Shelbyville High");
    assert_eq!(one["orgName"], "Shelbyville Schools");
    assert_eq!(one["account"], "education");
    assert_eq!(one["assets"], 3);
    assert_eq!(one["mdmInfo"], Value::Null);
    let all = expect(&ctl(&h, Method::GET, "/locations", None).await, 200);
    assert_eq!(all.as_array().unwrap().len(), 1);
    assert_eq!(all[0], one);

    // A generated uId, then a duplicate and a bad input.
    let generated = expect(
        &ctl(
            &h,
            Method::POST,
            "/locations",
            Some(json!({"name": "Plain"})),
        )
        .await,
        201,
    );
    assert!(generated["uId"].as_str().unwrap().starts_with("73"));
    expect_error(
        &ctl(
            &h,
            Method::POST,
            "/locations",
            Some(json!({"name": "Again", "uId": "7300000000000777"})),
        )
        .await,
        409,
        "duplicate_location",
    );
    for bad in [
        json!({}),
        json!({"name": "X", "account": "school"}),
        json!({"name": "X", "country": "usa"}),
        json!({"name": "X", "assets": [{"adamId": "1"}]}),
    ] {
        expect_error(
            &ctl(&h, Method::POST, "/locations", Some(bad)).await,
            400,
            "bad_request",
        );
    }
    assert_eq!(
        expect(&ctl(&h, Method::GET, "/locations", None).await, 200)
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn tokens_second_revoke_expire_restore_and_expiry() {
    let h = start(Preset::Demo).await;
    let list = expect(
        &ctl(&h, Method::GET, &format!("/locations/{UID}/tokens"), None).await,
        200,
    );
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["content"], h.bearer(UID));
    assert_eq!(list[0]["expired"], false);
    let first = format!("Bearer {}", h.bearer(UID));
    let config = |bearer: String| {
        let h = &h;
        async move {
            h.raw(Method::GET, "/client/config", Some(&bearer), None, None)
                .await
        }
    };

    // A second token for the same uId; the first is revoked.
    let second = expect(
        &ctl(
            &h,
            Method::POST,
            &format!("/locations/{UID}/tokens"),
            Some(json!({"revokePrevious": true})),
        )
        .await,
        201,
    );
    assert_eq!(second["index"], 1);
    assert_eq!(second["uId"], UID);
    let second_bearer = format!("Bearer {}", second["content"].as_str().unwrap());
    assert_eq!(config(second_bearer.clone()).await.ok()["uId"], UID);
    config(first.clone()).await.assert_error(9625, 401);
    let list = expect(
        &ctl(&h, Method::GET, &format!("/locations/{UID}/tokens"), None).await,
        200,
    );
    assert_eq!(list[0]["revoked"], true);
    assert_eq!(list[1]["revoked"], false);
    let all = expect(&ctl(&h, Method::GET, "/tokens", None).await, 200);
    assert_eq!(all.as_array().unwrap().len(), 5);
    assert_eq!(
        all.as_array()
            .unwrap()
            .iter()
            .filter(|t| t["uId"] == UID)
            .map(|t| t["index"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![0, 1]
    );

    // Restore the first, expire the second.
    let restored = expect(
        &ctl(
            &h,
            Method::POST,
            &format!("/locations/{UID}/tokens/0/restore"),
            None,
        )
        .await,
        200,
    );
    assert_eq!(restored["revoked"], false);
    config(first.clone()).await.ok();
    let expired = expect(
        &ctl(
            &h,
            Method::POST,
            &format!("/locations/{UID}/tokens/1/expire"),
            None,
        )
        .await,
        200,
    );
    assert_eq!(expired["expired"], true);
    config(second_bearer.clone()).await.assert_error(9621, 401);

    // Revoke and restore again through the dedicated routes.
    ctl(
        &h,
        Method::POST,
        &format!("/locations/{UID}/tokens/0/revoke"),
        None,
    )
    .await;
    config(first.clone()).await.assert_error(9625, 401);
    ctl(
        &h,
        Method::POST,
        &format!("/locations/{UID}/tokens/0/restore"),
        None,
    )
    .await;

    // Another expiry date, in Apple's form, then RFC 3339 in the past.
    let moved = expect(
        &ctl(
            &h,
            Method::PUT,
            &format!("/locations/{UID}/tokens/0/expiration-date"),
            Some(json!({"expirationDate": "2031-05-06T07:08:09+0000"})),
        )
        .await,
        200,
    );
    assert_eq!(moved["tokenExpirationDate"], "2031-05-06T07:08:09+0000");
    assert_eq!(
        config(first.clone()).await.ok()["tokenExpirationDate"],
        "2031-05-06T07:08:09+0000"
    );
    ctl(
        &h,
        Method::PUT,
        &format!("/locations/{UID}/tokens/0/expiration-date"),
        Some(json!({"expirationDate": "2001-01-01T00:00:00Z"})),
    )
    .await;
    config(first).await.assert_error(9621, 401);

    expect_error(
        &ctl(
            &h,
            Method::POST,
            &format!("/locations/{UID}/tokens/7/expire"),
            None,
        )
        .await,
        404,
        "unknown_token",
    );
    expect_error(
        &ctl(
            &h,
            Method::PUT,
            &format!("/locations/{UID}/tokens/0/expiration-date"),
            Some(json!({"expirationDate": "soon"})),
        )
        .await,
        400,
        "bad_request",
    );
    expect_error(
        &ctl(&h, Method::POST, "/locations/999/tokens", None).await,
        404,
        "unknown_location",
    );
}

#[tokio::test]
async fn another_mdm_writes_and_clears_mdm_info() {
    let h = start(Preset::Demo).await;
    let info = json!({"id": "other-mdm-1", "name": "Other MDM", "metadata": "other.example.org"});
    let loc = expect(
        &ctl(
            &h,
            Method::PUT,
            &format!("/locations/{UID}/mdm-info"),
            Some(info.clone()),
        )
        .await,
        200,
    );
    assert_eq!(loc["mdmInfo"], info);
    assert_eq!(h.get(UID, "/client/config").await.ok()["mdmInfo"], info);
    // It is echoed on every authenticated answer.
    assert_eq!(h.get(UID, "/assets").await.ok()["mdmInfo"], info);
    let loc = expect(
        &ctl(
            &h,
            Method::DELETE,
            &format!("/locations/{UID}/mdm-info"),
            None,
        )
        .await,
        200,
    );
    assert_eq!(loc["mdmInfo"], Value::Null);
    assert!(h
        .get(UID, "/client/config")
        .await
        .ok()
        .get("mdmInfo")
        .is_none());
    expect_error(
        &ctl(
            &h,
            Method::PUT,
            &format!("/locations/{UID}/mdm-info"),
            Some(json!({"id": "x".repeat(101), "name": "n", "metadata": "m"})),
        )
        .await,
        400,
        "bad_request",
    );
}

#[tokio::test]
async fn buy_and_refund_move_counts_and_notify() {
    let h = start_notifying(Preset::Demo).await;
    let receiver = Receiver::start(0).await;
    subscribe(&h, UID, &receiver).await;
    let path = format!("/locations/{UID}/assets/{}", demo::SHORTAGE_APP);

    let bought = expect(
        &ctl(
            &h,
            Method::POST,
            &format!("{path}/buy"),
            Some(json!({"count": 20})),
        )
        .await,
        200,
    );
    assert_eq!(bought["totalCount"], 70);
    assert_eq!(bought["availableCount"], 25);
    let apple = apple_asset(&h, UID, demo::SHORTAGE_APP, "STDQ")
        .await
        .unwrap();
    assert_eq!(total(&apple), 70);
    assert_eq!(apple["availableCount"], 25);

    let refunded = expect(
        &ctl(
            &h,
            Method::POST,
            &format!("{path}/refund"),
            Some(json!({"count": 5})),
        )
        .await,
        200,
    );
    assert_eq!(refunded["totalCount"], 65);
    assert_eq!(
        total(
            &apple_asset(&h, UID, demo::SHORTAGE_APP, "STDQ")
                .await
                .unwrap()
        ),
        65
    );
    expect_error(
        &ctl(
            &h,
            Method::POST,
            &format!("{path}/refund"),
            Some(json!({"count": 500})),
        )
        .await,
        409,
        "not_enough_licences",
    );
    expect_error(
        &ctl(&h, Method::POST, &format!("{path}/buy"), Some(json!({}))).await,
        400,
        "bad_request",
    );
    expect_error(
        &ctl(
            &h,
            Method::POST,
            &format!("/locations/{UID}/assets/1999999999/buy"),
            Some(json!({"count": 1})),
        )
        .await,
        404,
        "unknown_asset",
    );

    // The notifications, in the ground truth and at the receiver.
    let flushed = expect(
        &ctl(
            &h,
            Method::POST,
            "/notifications/flush",
            Some(json!({"timeoutMillis": 5000})),
        )
        .await,
        200,
    );
    assert_eq!(flushed["flushed"], true);
    let log = expect(
        &ctl(
            &h,
            Method::GET,
            &format!("/locations/{UID}/notifications"),
            None,
        )
        .await,
        200,
    );
    let deltas: Vec<i64> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["notificationType"] == "ASSET_COUNT")
        .map(|n| {
            assert_eq!(n["uId"], UID);
            assert_eq!(n["outcome"]["status"], "delivered");
            assert_eq!(n["body"]["notificationId"], n["notificationId"]);
            n["body"]["notification"]["countDelta"].as_i64().unwrap()
        })
        .collect();
    assert_eq!(deltas, vec![20, -5]);
    assert_eq!(receiver.of_type("ASSET_COUNT").len(), 2);
    // Another location has no notifications of its own.
    let other = expect(
        &ctl(
            &h,
            Method::GET,
            &format!("/locations/{}/notifications", demo::ACME_LONDON),
            None,
        )
        .await,
        200,
    );
    assert!(other.as_array().unwrap().is_empty());
    expect_error(
        &ctl(&h, Method::GET, "/locations/999/notifications", None).await,
        404,
        "unknown_location",
    );
}

#[tokio::test]
async fn add_read_and_remove_assets() {
    let h = start(Preset::Demo).await;
    let added = expect(
        &ctl(
            &h,
            Method::POST,
            &format!("/locations/{UID}/assets"),
            Some(
                json!({"adamId": "1600000001", "pricingParam": "PLUS", "totalCount": 12,
                        "retiredCount": 2, "supportedPlatforms": ["iOS", "macOS"],
                        "name": "Star Atlas", "bundleId": "org.example.atlas"}),
            ),
        )
        .await,
        201,
    );
    assert_eq!(added["totalCount"], 12);
    assert_eq!(added["availableCount"], 10);
    assert_eq!(added["pricingParam"], "PLUS");
    let apple = apple_asset(&h, UID, 1_600_000_001, "PLUS").await.unwrap();
    assert_eq!(apple["retiredCount"], 2);
    assert_eq!(apple["supportedPlatforms"], json!(["iOS", "macOS"]));
    // The metadata lookup knows its name.
    let lookup = h
        .http
        .get(format!("{}?version=2&p=mdm-lockup&caller=MDM&platform=enterprisestore&cc=us&l=en&id=1600000001", h.sim.metadata_url()))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(lookup["results"]["1600000001"]["name"], "Star Atlas");

    // One asset: the pricing param comes from the query (default STDQ).
    let one = expect(
        &ctl(
            &h,
            Method::GET,
            &format!("/locations/{UID}/assets/1600000001?pricingParam=PLUS"),
            None,
        )
        .await,
        200,
    );
    assert_eq!(one, added);
    expect_error(
        &ctl(
            &h,
            Method::GET,
            &format!("/locations/{UID}/assets/1600000001"),
            None,
        )
        .await,
        404,
        "unknown_asset",
    );
    expect_error(
        &ctl(
            &h,
            Method::GET,
            &format!("/locations/{UID}/assets/1600000001?pricingParam=GOLD"),
            None,
        )
        .await,
        400,
        "bad_request",
    );
    expect_error(
        &ctl(
            &h,
            Method::GET,
            &format!("/locations/{UID}/assets/abc"),
            None,
        )
        .await,
        400,
        "bad_request",
    );
    expect_error(
        &ctl(
            &h,
            Method::POST,
            &format!("/locations/{UID}/assets"),
            Some(json!({"adamId": "1600000001", "pricingParam": "PLUS", "totalCount": 1})),
        )
        .await,
        409,
        "duplicate_asset",
    );

    // The ground-truth list agrees with Apple's.
    let truth = expect(
        &ctl(&h, Method::GET, &format!("/locations/{UID}/assets"), None).await,
        200,
    );
    let (apple_all, _) = h.walk(UID, "/assets", "assets").await;
    assert_eq!(truth.as_array().unwrap().len(), apple_all.len());
    for a in truth.as_array().unwrap() {
        let same = apple_all
            .iter()
            .find(|b| b["adamId"] == a["adamId"] && b["pricingParam"] == a["pricingParam"])
            .unwrap();
        for field in [
            "totalCount",
            "assignedCount",
            "availableCount",
            "retiredCount",
            "productType",
        ] {
            assert_eq!(a[field], same[field], "{field} of {a}");
        }
    }

    let removed = expect(
        &ctl(
            &h,
            Method::DELETE,
            &format!("/locations/{UID}/assets/1600000001?pricingParam=PLUS"),
            None,
        )
        .await,
        200,
    );
    assert_eq!(
        removed["removed"],
        json!({"adamId": "1600000001", "pricingParam": "PLUS"})
    );
    assert!(apple_asset(&h, UID, 1_600_000_001, "PLUS").await.is_none());
    expect_error(
        &ctl(
            &h,
            Method::DELETE,
            &format!("/locations/{UID}/assets/1600000001?pricingParam=PLUS"),
            None,
        )
        .await,
        404,
        "unknown_asset",
    );
}

#[tokio::test]
async fn events_clock_and_assignments() {
    let h = start(Preset::Demo).await;
    let serial = "CTL000000001";
    let shortage = demo::SHORTAGE_APP.to_string();
    let event = h
        .submit(
            UID,
            "/assets/associate",
            json!({"assets": [{"adamId": demo::SHORTAGE_APP.to_string(), "pricingParam": "STDQ"}],
                   "serialNumbers": [serial]}),
        )
        .await;
    let events = expect(
        &ctl(&h, Method::GET, &format!("/locations/{UID}/events"), None).await,
        200,
    );
    let ours = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["eventId"] == event)
        .unwrap();
    assert_eq!(ours["eventStatus"], "PENDING");
    assert_eq!(ours["eventType"], "ASSOCIATE");
    assert_eq!(ours["numRequested"], 1);
    let loc = expect(
        &ctl(&h, Method::GET, &format!("/locations/{UID}"), None).await,
        200,
    );
    assert_eq!(loc["pendingEvents"], 1);

    // Half the event delay: still pending.
    let clock = expect(
        &ctl(
            &h,
            Method::POST,
            "/clock/advance",
            Some(json!({"millis": 500})),
        )
        .await,
        200,
    );
    assert_eq!(clock["nowMillis"], 500);
    assert_eq!(clock["pendingEvents"], 1);
    assert_eq!(h.status(UID, &event).await["eventStatus"], "PENDING");
    let clock = expect(
        &ctl(
            &h,
            Method::POST,
            "/clock/advance",
            Some(json!({"seconds": 0.5})),
        )
        .await,
        200,
    );
    assert_eq!(clock["nowMillis"], 1000);
    assert_eq!(clock["pendingEvents"], 0);
    assert_eq!(h.status(UID, &event).await["eventStatus"], "COMPLETE");
    for bad in [
        json!({}),
        json!({"seconds": 1, "millis": 1}),
        json!({"seconds": -1}),
    ] {
        expect_error(
            &ctl(&h, Method::POST, "/clock/advance", Some(bad)).await,
            400,
            "bad_request",
        );
    }

    // The assignment is in the ground truth.
    let count = expect(
        &ctl(
            &h,
            Method::GET,
            &format!("/locations/{UID}/assignments/count"),
            None,
        )
        .await,
        200,
    )["count"]
        .as_u64()
        .unwrap();
    let all = expect(
        &ctl(
            &h,
            Method::GET,
            &format!("/locations/{UID}/assignments"),
            None,
        )
        .await,
        200,
    );
    assert_eq!(all["total"], count);
    let items = all["assignments"].as_array().unwrap();
    assert_eq!(items.len() as u64, count);
    assert!(items.iter().any(|a| a["serialNumber"] == serial
        && a["adamId"].as_str() == Some(shortage.as_str())
        && a["pricingParam"] == "STDQ"));
    assert!(items.iter().any(|a| a.get("clientUserId").is_some()));
    let (apple, _) = h.walk(UID, "/assignments", "assignments").await;
    assert_eq!(apple.len() as u64, count);
    let page = expect(
        &ctl(
            &h,
            Method::GET,
            &format!("/locations/{UID}/assignments?offset=10&limit=5"),
            None,
        )
        .await,
        200,
    );
    assert_eq!(page["total"], count);
    assert_eq!(page["assignments"].as_array().unwrap()[..], items[10..15]);
    expect_error(
        &ctl(
            &h,
            Method::GET,
            &format!("/locations/{UID}/assignments?limit=-1"),
            None,
        )
        .await,
        400,
        "bad_request",
    );

    // complete-pending finishes events whatever the clock.
    let second = h
        .submit(
            UID,
            "/assets/disassociate",
            json!({"assets": [{"adamId": demo::SHORTAGE_APP.to_string()}], "serialNumbers": [serial]}),
        )
        .await;
    let clock = expect(
        &ctl(&h, Method::POST, "/events/complete-pending", None).await,
        200,
    );
    assert_eq!(clock["pendingEvents"], 0);
    assert_eq!(clock["nowMillis"], 1000);
    assert_eq!(h.status(UID, &second).await["eventStatus"], "COMPLETE");
    let after = expect(
        &ctl(
            &h,
            Method::GET,
            &format!("/locations/{UID}/assignments/count"),
            None,
        )
        .await,
        200,
    );
    assert_eq!(after["count"].as_u64().unwrap(), count - 1);
    let heap = expect(
        &ctl(
            &h,
            Method::GET,
            &format!("/locations/{UID}/heap-bytes"),
            None,
        )
        .await,
        200,
    );
    assert!(heap["heapBytes"].as_u64().unwrap() > 10_000, "{heap}");
}

#[tokio::test]
async fn advancing_a_real_time_clock_is_a_conflict() {
    let h = start_with(Simulator::builder().preset(Preset::Demo)).await;
    let clock = expect(&ctl(&h, Method::GET, "", None).await, 200)["clock"].clone();
    assert_eq!(clock["manual"], false);
    assert_eq!(clock["eventDelayMillis"], 200);
    expect_error(
        &ctl(
            &h,
            Method::POST,
            "/clock/advance",
            Some(json!({"seconds": 1})),
        )
        .await,
        409,
        "manual_clock_required",
    );
}

#[tokio::test]
async fn accept_invitation_associates_and_notifies() {
    let h = start_notifying(Preset::Demo).await;
    let uid = demo::ACME_LONDON;
    let receiver = Receiver::start(0).await;
    subscribe(&h, uid, &receiver).await;
    let event = h
        .submit(
            uid,
            "/users/create",
            json!({"users": [{"clientUserId": "ctl-user@1", "email": "ctl@example.org"}]}),
        )
        .await;
    ctl(&h, Method::POST, "/events/complete-pending", None).await;
    assert_eq!(h.status(uid, &event).await["eventStatus"], "COMPLETE");
    let users = expect(
        &ctl(&h, Method::GET, &format!("/locations/{uid}/users"), None).await,
        200,
    );
    let user = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["clientUserId"] == "ctl-user@1")
        .unwrap();
    assert_eq!(user["status"], "Registered");
    assert_eq!(user["email"], "ctl@example.org");

    // The client user id is percent-encoded in the path.
    let accepted = expect(
        &ctl(
            &h,
            Method::POST,
            &format!("/locations/{uid}/users/ctl-user%401/accept-invitation"),
            None,
        )
        .await,
        200,
    );
    assert_eq!(accepted["status"], "Associated");
    assert_eq!(accepted["clientUserId"], "ctl-user@1");
    let apple = h.get(uid, "/users?clientUserId=ctl-user%401").await.ok();
    assert_eq!(apple["users"][0]["status"], "Associated");
    assert_eq!(apple["users"][0]["idHash"].as_str().unwrap().len(), 28);

    expect_error(
        &ctl(
            &h,
            Method::POST,
            &format!("/locations/{uid}/users/ctl-user%401/accept-invitation"),
            None,
        )
        .await,
        409,
        "not_registered",
    );
    expect_error(
        &ctl(
            &h,
            Method::POST,
            &format!("/locations/{uid}/users/nobody/accept-invitation"),
            None,
        )
        .await,
        404,
        "unknown_user",
    );
    assert_eq!(
        expect(
            &ctl(&h, Method::POST, "/notifications/flush", None).await,
            200
        )["flushed"],
        true
    );
    let log = expect(
        &ctl(
            &h,
            Method::GET,
            &format!("/locations/{uid}/notifications"),
            None,
        )
        .await,
        200,
    );
    assert!(log
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["notificationType"] == "USER_ASSOCIATED"));
    assert_eq!(receiver.of_type("USER_ASSOCIATED").len(), 1);
}

#[tokio::test]
async fn throttling_switch() {
    let h = start(Preset::Demo).await;
    let on = expect(
        &ctl(
            &h,
            Method::PUT,
            "/throttling",
            Some(json!({"enabled": true})),
        )
        .await,
        200,
    );
    assert_eq!(on["enabled"], true);
    let started = Instant::now();
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let r = h.get(UID, "/client/config").await;
        statuses.push((r.status.as_u16(), r.error_number()));
    }
    if started.elapsed() < Duration::from_millis(900) {
        assert!(statuses.contains(&(429, Some(9646))), "{statuses:?}");
    }
    // The control API itself is never throttled.
    for _ in 0..20 {
        expect(&ctl(&h, Method::GET, "", None).await, 200);
    }
    ctl(
        &h,
        Method::PUT,
        "/throttling",
        Some(json!({"enabled": false})),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..30 {
        h.get(UID, "/client/config").await.ok();
    }
}

#[tokio::test]
async fn server_error_bursts() {
    let h = start(Preset::Demo).await;
    let set = expect(
        &ctl(
            &h,
            Method::POST,
            "/server-errors",
            Some(json!({"count": 2, "kind": "internal", "retryAfterSeconds": 30})),
        )
        .await,
        200,
    );
    assert_eq!(set["count"], 2);
    // The control API is not affected by the burst.
    expect(&ctl(&h, Method::GET, "/locations", None).await, 200);
    for _ in 0..2 {
        let r = h.get(UID, "/assets").await;
        r.assert_error(9603, 500);
        assert_eq!(r.headers["retry-after"], "30");
    }
    h.get(UID, "/assets").await.ok();
    // Defaults: unavailable, Retry-After 1.
    ctl(
        &h,
        Method::POST,
        "/server-errors",
        Some(json!({"count": 1})),
    )
    .await;
    let r = h.get(UID, "/assets").await;
    r.assert_error(9729, 503);
    assert_eq!(r.headers["retry-after"], "1");
    expect_error(
        &ctl(
            &h,
            Method::POST,
            "/server-errors",
            Some(json!({"count": 1, "kind": "teapot"})),
        )
        .await,
        400,
        "bad_request",
    );
    h.get(UID, "/assets").await.ok();
}

#[tokio::test]
async fn latency_applies_to_apple_paths_only() {
    let h = start(Preset::Demo).await;
    let set = expect(
        &ctl(&h, Method::PUT, "/latency", Some(json!({"millis": 300}))).await,
        200,
    );
    assert_eq!(set["millis"], 300);
    let t = Instant::now();
    h.get(UID, "/client/config").await.ok();
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
    let t = Instant::now();
    expect(&ctl(&h, Method::GET, "/locations", None).await, 200);
    assert!(
        t.elapsed() < Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
    ctl(&h, Method::PUT, "/latency", Some(json!({"millis": 0}))).await;
    let t = Instant::now();
    h.get(UID, "/client/config").await.ok();
    assert!(
        t.elapsed() < Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn invalid_token_http_200_switch() {
    let h = start(Preset::Demo).await;
    let bogus = "Bearer bm90IGEgdG9rZW4=";
    // The default: HTTP 200 with the error body.
    let r = h.raw(Method::GET, "/assets", Some(bogus), None, None).await;
    r.assert_error(9622, 200);
    ctl(
        &h,
        Method::PUT,
        "/invalid-token-http-200",
        Some(json!({"enabled": true})),
    )
    .await;
    let r = h.raw(Method::GET, "/assets", Some(bogus), None, None).await;
    r.assert_error(9622, 200);
    let off = expect(
        &ctl(
            &h,
            Method::PUT,
            "/invalid-token-http-200",
            Some(json!({"enabled": false})),
        )
        .await,
        200,
    );
    assert_eq!(off["enabled"], false);
    h.raw(Method::GET, "/assets", Some(bogus), None, None)
        .await
        .assert_error(9622, 401);
}

#[tokio::test]
async fn page_size_switch() {
    let h = start(Preset::Demo).await;
    let first = h.get(UID, "/assets").await.ok();
    let n = first["size"].as_u64().unwrap();
    assert!(n > 5, "{n}");
    assert_eq!(first["totalPages"], 1);
    let set = expect(
        &ctl(&h, Method::PUT, "/page-size", Some(json!({"pageSize": 5}))).await,
        200,
    );
    assert_eq!(set["pageSize"], 5);
    let paged = h.get(UID, "/assets").await.ok();
    assert_eq!(paged["assets"].as_array().unwrap().len(), 5);
    assert_eq!(paged["totalPages"].as_u64().unwrap(), n.div_ceil(5));
    assert_eq!(paged["nextPageIndex"], 1);
    expect_error(
        &ctl(&h, Method::PUT, "/page-size", Some(json!({"pageSize": 0}))).await,
        400,
        "bad_request",
    );
}

#[tokio::test]
async fn notification_faults_switch() {
    let h = start_notifying(Preset::Demo).await;
    let receiver = Receiver::start(0).await;
    subscribe(&h, UID, &receiver).await;
    let set = expect(
        &ctl(
            &h,
            Method::PUT,
            "/notification-faults",
            Some(json!({"drop": true})),
        )
        .await,
        200,
    );
    assert_eq!(
        set,
        json!({"drop": true, "duplicate": false, "reorder": false})
    );
    let buy = format!("/locations/{UID}/assets/{}/buy", demo::SHORTAGE_APP);
    ctl(&h, Method::POST, &buy, Some(json!({"count": 1}))).await;
    ctl(&h, Method::POST, "/notifications/flush", None).await;
    let log = expect(
        &ctl(
            &h,
            Method::GET,
            &format!("/locations/{UID}/notifications"),
            None,
        )
        .await,
        200,
    );
    let last = log.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["notificationType"], "ASSET_COUNT");
    assert_eq!(last["outcome"]["status"], "dropped");
    assert!(receiver.of_type("ASSET_COUNT").is_empty());

    ctl(
        &h,
        Method::PUT,
        "/notification-faults",
        Some(json!({"duplicate": true})),
    )
    .await;
    ctl(&h, Method::POST, &buy, Some(json!({"count": 1}))).await;
    ctl(&h, Method::POST, "/notifications/flush", None).await;
    let log = expect(
        &ctl(
            &h,
            Method::GET,
            &format!("/locations/{UID}/notifications"),
            None,
        )
        .await,
        200,
    );
    let last = log.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["outcome"]["status"], "delivered");
    assert_eq!(last["outcome"]["copies"], 2);
    let got = receiver.of_type("ASSET_COUNT");
    assert_eq!(got.len(), 2);
    assert_eq!(got[0]["notificationId"], got[1]["notificationId"]);

    ctl(&h, Method::PUT, "/notification-faults", Some(json!({}))).await;
    ctl(&h, Method::POST, &buy, Some(json!({"count": 1}))).await;
    ctl(&h, Method::POST, "/notifications/flush", None).await;
    assert_eq!(receiver.of_type("ASSET_COUNT").len(), 3);
}

/// Starts the binary and returns it with the lines it printed up to "Ctrl-C".
fn run_binary(args: &[&str]) -> (std::process::Child, Vec<String>) {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_vppkit-sim"))
        .args(["--preset", "demo", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let done = line.starts_with("Ctrl-C");
        lines.push(line);
        if done {
            break;
        }
    }
    (child, lines)
}

fn printed(lines: &[String], label: &str) -> Option<String> {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(label).map(|v| v.trim().to_owned()))
}

#[test]
fn the_binary_prints_the_control_url_and_serves_it() {
    let (mut child, lines) = run_binary(&["--manual-clock"]);
    let base = printed(&lines, "base URL:").expect("base URL printed");
    let control = printed(&lines, "control API:").expect("control API printed");
    assert_eq!(
        control,
        format!("{}/_sim/v1", base.trim_end_matches("/mdm/v2"))
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (locations, advanced) = rt.block_on(async {
        let http = reqwest::Client::new();
        let locations: Value = http
            .get(format!("{control}/locations"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let advanced = http
            .post(format!("{control}/clock/advance"))
            .body(r#"{"seconds": 2}"#)
            .send()
            .await
            .unwrap();
        let status = advanced.status();
        let body: Value = advanced.json().await.unwrap();
        (locations, (status, body))
    });
    child.kill().unwrap();
    let _ = child.wait();
    assert_eq!(locations.as_array().unwrap().len(), 4);
    assert_eq!(advanced.0, StatusCode::OK, "{}", advanced.1);
    assert_eq!(advanced.1["nowMillis"], 2000);
    assert_eq!(advanced.1["manual"], true);

    let (mut child, lines) = run_binary(&["--no-control-api"]);
    child.kill().unwrap();
    let _ = child.wait();
    assert_eq!(printed(&lines, "control API:").as_deref(), Some("off"));
}
