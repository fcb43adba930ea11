//! Every endpoint against a mock server: method, path, headers, query, body, and
//! the typed answer with its envelope.

use std::time::Duration;

use futures::TryStreamExt;
use serde_json::json;
use vppkit_client::{
    AssetFilter, AssignmentFilter, ClaimStatus, ClientBuilder, ClientConfigRequest, Error,
    EventStatusKind, EventType, ManageAssetsRequest, ManageUsersRequest, NotificationType,
    RequestUser, RevokeAssetsRequest, UserFilter,
};
use vppkit_core::{
    AdamId, Asset, AssetCounts, AssetKey, ClientUserId, EventId, MdmInfo, PricingParam,
    ProductType, Secret, SerialNumber, VppUser, VppUserStatus,
};
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, Request, ResponseTemplate};

use crate::support::{base, bearer_header, client, server, with_envelope};

fn key(id: &str) -> AssetKey {
    AssetKey::new(AdamId::new(id).unwrap(), PricingParam::Stdq)
}

fn service_config_body(server_uri: &str) -> serde_json::Value {
    json!({
        "errorCodes": [{"errorNumber": 9646, "errorMessage": "There are too many recent requests."}],
        "limits": {"maxAssets": 25, "maxClientUserIds": 1000, "maxSerialNumbers": 1000,
                   "maxRevokeClientUserIds": 100, "maxRevokeSerialNumbers": 100, "maxUsers": 100,
                   "maxNotificationLength": 512, "maxMdmIdLength": 100, "maxMdmNameLength": 100,
                   "maxMdmMetadataLength": 255, "maxRequestPerSecond": 15, "newLimit": 7},
        "notificationTypes": ["ASSET_MANAGEMENT", "USER_MANAGEMENT", "USER_ASSOCIATED", "ASSET_COUNT"],
        "urls": {"contentMetadataLookup": format!("{server_uri}/lookup"),
                 "getAssets": format!("{server_uri}/mdm/v2/assets")},
        "someNewTopLevelField": {"x": [1, 2]}
    })
}

#[tokio::test]
async fn service_config_needs_no_token() {
    let server = server().await;
    Mock::given(method("GET"))
        .and(path("/mdm/v2/service/config"))
        .and(|r: &Request| !r.headers.contains_key("authorization"))
        .respond_with(ResponseTemplate::new(200).set_body_json(service_config_body(&server.uri())))
        .expect(1)
        .mount(&server)
        .await;
    let c = ClientBuilder::unauthenticated()
        .base_url(base(&server))
        .build()
        .unwrap();
    assert!(!c.has_token());
    let cfg = c.service_config().await.unwrap();
    assert_eq!(cfg.limits.max_assets, 25);
    assert_eq!(cfg.limits.other["newLimit"], 7);
    assert_eq!(cfg.notification_types.len(), 4);
    assert_eq!(cfg.error_codes[0].number.number(), 9646);
    // Everything else needs the token.
    assert!(matches!(c.client_config().await, Err(Error::NoToken)));
}

#[tokio::test]
async fn limits_are_cached_and_refreshed() {
    let server = server().await;
    Mock::given(method("GET"))
        .and(path("/mdm/v2/service/config"))
        .respond_with(ResponseTemplate::new(200).set_body_json(service_config_body(&server.uri())))
        .expect(3)
        .mount(&server)
        .await;
    let c = client(&server);
    for _ in 0..3 {
        assert_eq!(c.limits().await.unwrap().max_users, 100);
    }
    // A clone shares the cache; another token too.
    assert_eq!(c.clone().limits().await.unwrap().max_assets, 25);
    assert_eq!(
        c.with_token(Secret::new("other"))
            .limits()
            .await
            .unwrap()
            .max_assets,
        25
    );
    // service_config() always reads fresh (request 2).
    c.service_config().await.unwrap();
    // A TTL of zero re-reads every time (request 3).
    let c0 = crate::support::builder(&server)
        .service_config_ttl(Duration::ZERO)
        .build()
        .unwrap();
    c0.limits().await.unwrap();
}

#[tokio::test]
async fn client_config_get_and_claim_status() {
    let server = server().await;
    let body = std::fs::read(crate::support::recorded("client_config_response.json")).unwrap();
    Mock::given(method("GET"))
        .and(path("/mdm/v2/client/config"))
        .and(header("authorization", bearer_header().as_str()))
        .and(header("accept", "application/json"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body, "application/json"))
        .expect(2)
        .mount(&server)
        .await;
    let ours = crate::support::builder(&server)
        .expected_mdm_id("29dd58b6-93fe-4791-a660-96d7339c9f54")
        .build()
        .unwrap();
    let r = ours.client_config().await.unwrap();
    assert_eq!(r.body.location_name.as_deref(), Some("Yolo Fomo 2022"));
    assert_eq!(ours.claim_status(&r.envelope), Some(ClaimStatus::Ours));
    let theirs = crate::support::builder(&server)
        .expected_mdm_id("my-own-id")
        .build()
        .unwrap();
    let r = theirs.client_config().await.unwrap();
    assert!(theirs.claim_status(&r.envelope).unwrap().is_other());
    assert_eq!(client(&server).claim_status(&r.envelope), None);
}

#[tokio::test]
async fn client_config_post() {
    let server = server().await;
    let expected = json!({
        "mdmInfo": {"id": "8d1f0c9e", "name": "ExampleMDM", "metadata": "mdm.example.org"},
        "notificationUrl": "https://mdm.example.org/vpp/notify",
        "notificationAuthToken": "n0t1f1cat10n-shared-secret",
        "notificationTypes": ["ASSET_MANAGEMENT", "ASSET_COUNT", "USER_MANAGEMENT", "USER_ASSOCIATED"]
    });
    Mock::given(method("POST"))
        .and(path("/mdm/v2/client/config"))
        .and(header("content-type", "application/json"))
        .and(header("authorization", bearer_header().as_str()))
        .and(body_json(&expected))
        .respond_with(ResponseTemplate::new(200).set_body_json(with_envelope(json!({
            "countryISO2ACode": "GB", "defaultPlatform": "enterprisestore", "locationName": "London Office",
            "mdmInfo": {"id": "8d1f0c9e", "name": "ExampleMDM", "metadata": "mdm.example.org"},
            "notificationAuthToken": "n0t1f1cat10n-shared-secret",
            "notificationUrl": "https://mdm.example.org/vpp/notify",
            "subscribedNotificationTypes": ["ASSET_MANAGEMENT", "ASSET_COUNT", "USER_MANAGEMENT", "USER_ASSOCIATED"],
            "websiteURL": "https://business.apple.com"
        }))))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let req = ClientConfigRequest::new()
        .with_mdm_info(MdmInfo::new("8d1f0c9e", "ExampleMDM", "mdm.example.org").unwrap())
        .with_notifications(
            "https://mdm.example.org/vpp/notify",
            Secret::new("n0t1f1cat10n-shared-secret"),
            NotificationType::MANAGEMENT.to_vec(),
        );
    let r = c.set_client_config(&req).await.unwrap();
    assert_eq!(r.envelope.mdm_info.unwrap().id, "8d1f0c9e");
    assert_eq!(r.body.subscribed_notification_types.len(), 4);
    assert_eq!(r.body.storefront().as_deref(), Some("gb"));
    // Refused locally, never sent: URL without its token.
    let mut bad = ClientConfigRequest::new();
    bad.notification_url = Some("https://x.example/n".into());
    assert!(matches!(
        c.set_client_config(&bad).await,
        Err(Error::InvalidRequest(_))
    ));
}

#[tokio::test]
async fn assets_with_every_filter() {
    let server = server().await;
    Mock::given(method("GET"))
        .and(path("/mdm/v2/assets"))
        .and(header("authorization", bearer_header().as_str()))
        .and(query_param("pageIndex", "0"))
        .and(query_param("productType", "App"))
        .and(query_param("pricingParam", "STDQ"))
        .and(query_param("revocable", "true"))
        .and(query_param("deviceAssignable", "true"))
        .and(query_param("minAvailableCount", "1"))
        .and(query_param("maxAvailableCount", "100"))
        .and(query_param("minAssignedCount", "0"))
        .and(query_param("maxAssignedCount", "50"))
        .and(query_param("adamId", "1200000001"))
        .and(query_param("unlimited", "true"))
        .respond_with(ResponseTemplate::new(200).set_body_json(with_envelope(json!({
            "assets": [{"adamId": "1200000001", "pricingParam": "STDQ", "productType": "App",
                        "deviceAssignable": true, "revocable": true, "supportedPlatforms": ["iOS", "macOS"],
                        "totalCount": 50, "assignedCount": 12, "availableCount": 38, "retiredCount": 0,
                        "futureField": "tolerated"}],
            "unlimitedAssets": [{"adamId": "1300000009", "pricingParam": "STDQ", "productType": "App",
                        "deviceAssignable": true, "revocable": true, "supportedPlatforms": ["iOS"],
                        "assignedCount": 4}],
            "currentPageIndex": 0, "size": 2, "totalPages": 1,
            "versionId": "5b0e6a1c-0f3d-11f0-8b9e-0242ac120002"
        }))))
        .expect(1)
        .mount(&server)
        .await;
    let filter = AssetFilter::new()
        .product_type(ProductType::App)
        .pricing_param(PricingParam::Stdq)
        .revocable(true)
        .device_assignable(true)
        .available_count(Some(1), Some(100))
        .assigned_count(Some(0), Some(50))
        .adam_id(AdamId::new("1200000001").unwrap())
        .unlimited(true);
    let pages: Vec<_> = client(&server).assets(filter).try_collect().await.unwrap();
    assert_eq!(pages.len(), 1);
    let page = &pages[0];
    assert_eq!(
        page.version_id.as_deref(),
        Some("5b0e6a1c-0f3d-11f0-8b9e-0242ac120002")
    );
    assert_eq!(
        page.envelope.uid.as_ref().unwrap().as_str(),
        "7300112233445566"
    );
    let assets: Vec<Asset> = page
        .items
        .iter()
        .cloned()
        .map(|a| Asset::try_from(a).unwrap())
        .collect();
    assert_eq!(assets[0].counts, AssetCounts::new(50, 12, 38, 0));
    assert!(assets[1].counts.is_unlimited());
    assert!(page.items[1].is_unlimited());
}

#[tokio::test]
async fn assignments_with_every_filter() {
    let server = server().await;
    Mock::given(method("GET"))
        .and(path("/mdm/v2/assignments"))
        .and(query_param("pageIndex", "0"))
        .and(query_param("adamId", "1200000001"))
        .and(query_param("pricingParam", "PLUS"))
        .and(query_param("clientUserId", "u-7f3a"))
        .and(query_param("serialNumber", "C02XK0AAJGH5"))
        .and(query_param("sinceVersionId", "v-previous"))
        .and(query_param("excludeInactiveUsers", "true"))
        .and(query_param("includeUserState", "true"))
        .respond_with(ResponseTemplate::new(200).set_body_json(with_envelope(json!({
            "assignments": [
                {"adamId": "1200000001", "pricingParam": "STDQ", "serialNumber": "C02XK0AAJGH5"},
                {"adamId": "1200000001", "pricingParam": "STDQ", "clientUserId": "u-7f3a",
                 "userStatus": "Associated", "idHash": "Qm9n", "newField": 1}
            ],
            "currentPageIndex": 0, "size": 2, "totalPages": 1, "versionId": "v-next"
        }))))
        .expect(1)
        .mount(&server)
        .await;
    let filter = AssignmentFilter::new()
        .adam_id(AdamId::new("1200000001").unwrap())
        .pricing_param(PricingParam::Plus)
        .client_user_id(ClientUserId::new("u-7f3a").unwrap())
        .serial_number(SerialNumber::new("C02XK0AAJGH5").unwrap())
        .since_version_id("v-previous")
        .exclude_inactive_users(true)
        .include_user_state(true);
    let (items, version) = client(&server)
        .assignments(filter)
        .collect_all()
        .await
        .unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(version.as_deref(), Some("v-next"));
    assert_eq!(items[1].user_status, Some(VppUserStatus::Associated));
}

#[tokio::test]
async fn single_page_reads() {
    let server = server().await;
    Mock::given(method("GET"))
        .and(path("/mdm/v2/assignments"))
        .and(query_param("pageIndex", "3"))
        .respond_with(ResponseTemplate::new(200).set_body_json(with_envelope(json!({
            "assignments": [], "currentPageIndex": 3, "nextPageIndex": 4, "totalPages": 9, "size": 0, "versionId": "v"
        }))))
        .expect(1)
        .mount(&server)
        .await;
    let p = client(&server)
        .assignments_page(&AssignmentFilter::new(), 3)
        .await
        .unwrap();
    assert_eq!(p.index, 3);
    assert_eq!(p.next_page_index, Some(4));
    assert_eq!(p.total_pages, Some(9));
}

#[tokio::test]
async fn manage_assets_writes() {
    let server = server().await;
    let device_req = json!({"assets": [{"adamId": "1200000001", "pricingParam": "STDQ"}],
                            "serialNumbers": ["C02XK0AAJGH5", "DMPZQ1ABCDEF"]});
    let user_req = json!({"assets": [{"adamId": "1200000001", "pricingParam": "STDQ"}],
                          "clientUserIds": ["u-1"]});
    for (p, body, event) in [
        ("/mdm/v2/assets/associate", device_req.clone(), "ev-assoc"),
        ("/mdm/v2/assets/disassociate", user_req.clone(), "ev-dis"),
        (
            "/mdm/v2/assets/revoke",
            json!({"clientUserIds": ["u-1"], "serialNumbers": ["C02XK0AAJGH5"]}),
            "ev-rev",
        ),
    ] {
        Mock::given(method("POST"))
            .and(path(p))
            .and(header("content-type", "application/json"))
            .and(header("authorization", bearer_header().as_str()))
            .and(body_json(body))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(with_envelope(json!({"eventId": event, "extra": true}))),
            )
            .expect(1)
            .mount(&server)
            .await;
    }
    let c = client(&server);
    let serials = vec![
        SerialNumber::new("C02XK0AAJGH5").unwrap(),
        SerialNumber::new("DMPZQ1ABCDEF").unwrap(),
    ];
    let r = c
        .associate_assets(&ManageAssetsRequest::devices(
            vec![key("1200000001")],
            serials,
        ))
        .await
        .unwrap();
    assert_eq!(r.body.event_id.as_str(), "ev-assoc");
    assert!(r.envelope.token_expiration_date.is_some());
    let r = c
        .disassociate_assets(&ManageAssetsRequest::users(
            vec![key("1200000001")],
            vec![ClientUserId::new("u-1").unwrap()],
        ))
        .await
        .unwrap();
    assert_eq!(r.body.event_id.as_str(), "ev-dis");
    let r = c
        .revoke_assets(&RevokeAssetsRequest::new(
            vec![ClientUserId::new("u-1").unwrap()],
            vec![SerialNumber::new("C02XK0AAJGH5").unwrap()],
        ))
        .await
        .unwrap();
    assert_eq!(r.body.event_id.as_str(), "ev-rev");
}

#[tokio::test]
async fn event_status() {
    let server = server().await;
    Mock::given(method("GET"))
        .and(path("/mdm/v2/status"))
        .and(query_param("eventId", "3f6b1c2a-8e4d-4b1a-9c55-0d2e7a6f9b10"))
        .respond_with(ResponseTemplate::new(200).set_body_json(with_envelope(json!({
            "eventStatus": "FAILED", "eventType": "ASSOCIATE", "numRequested": 16, "numCompleted": 14,
            "failures": [{"errorNumber": 9609, "errorMessage": "Unable to find the registered user.",
                          "errorInfo": {"clientUserIds": ["u-unknown"]}}],
            "mdmInfo": {"id": "x", "name": "y", "metadata": "z"}
        }))))
        .expect(1)
        .mount(&server)
        .await;
    let r = client(&server)
        .event_status(&EventId::new("3f6b1c2a-8e4d-4b1a-9c55-0d2e7a6f9b10").unwrap())
        .await
        .unwrap();
    assert_eq!(r.body.event_status, EventStatusKind::Failed);
    assert_eq!(r.body.event_type, Some(EventType::Associate));
    assert_eq!((r.body.num_requested, r.body.num_completed), (16, 14));
    let info = r.body.failures[0].info.as_ref().unwrap();
    assert_eq!(info.client_user_ids[0].as_str(), "u-unknown");
    assert_eq!(r.envelope.mdm_info.unwrap().id, "x");
}

#[tokio::test]
async fn users_read_and_write() {
    let server = server().await;
    Mock::given(method("GET"))
        .and(path("/mdm/v2/users"))
        .and(query_param("pageIndex", "0"))
        .and(query_param("clientUserId", "u-7f3a"))
        .and(query_param("activeOnly", "true"))
        .and(query_param("sinceVersionId", "v0"))
        .respond_with(ResponseTemplate::new(200).set_body_json(with_envelope(json!({
            "users": [
                {"clientUserId": "u-7f3a", "email": "ana@example.org", "status": "Retired", "idHash": "old"},
                {"clientUserId": "u-7f3a", "email": "ana@example.org", "inviteCode": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
                 "status": "Registered"}
            ],
            "currentPageIndex": 0, "size": 2, "totalPages": 1, "versionId": "v1"
        }))))
        .expect(1)
        .mount(&server)
        .await;
    let users_body = json!({"users": [
        {"clientUserId": "u-1", "email": "a@example.org"},
        {"clientUserId": "u-2", "managedAppleId": "b@appleid.example.org"}
    ]});
    for (p, event) in [
        ("/mdm/v2/users/create", "ev-c"),
        ("/mdm/v2/users/update", "ev-u"),
        ("/mdm/v2/users/retire", "ev-r"),
    ] {
        Mock::given(method("POST"))
            .and(path(p))
            .and(body_json(&users_body))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(with_envelope(json!({"eventId": event}))),
            )
            .expect(1)
            .mount(&server)
            .await;
    }
    let c = client(&server);
    let (users, version) = c
        .users(
            UserFilter::new()
                .client_user_id(ClientUserId::new("u-7f3a").unwrap())
                .active_only(true)
                .since_version_id("v0"),
        )
        .collect_all()
        .await
        .unwrap();
    assert_eq!(version.as_deref(), Some("v1"));
    let users: Vec<VppUser> = users.into_iter().map(VppUser::from).collect();
    assert_eq!(users[0].status, VppUserStatus::Retired);
    assert_eq!(users[1].status, VppUserStatus::Registered);
    assert_eq!(
        users[1].invite_code.as_deref(),
        Some("0f1e2d3c4b5a69788796a5b4c3d2e1f0")
    );

    let req = ManageUsersRequest::new(vec![
        RequestUser::new(ClientUserId::new("u-1").unwrap()).with_email("a@example.org"),
        RequestUser::new(ClientUserId::new("u-2").unwrap())
            .with_managed_apple_id("b@appleid.example.org"),
    ]);
    assert_eq!(
        c.create_users(&req).await.unwrap().body.event_id.as_str(),
        "ev-c"
    );
    assert_eq!(
        c.update_users(&req).await.unwrap().body.event_id.as_str(),
        "ev-u"
    );
    assert_eq!(
        c.retire_users(&req).await.unwrap().body.event_id.as_str(),
        "ev-r"
    );
}

#[tokio::test]
async fn user_agent_and_custom_http_client() {
    let server = server().await;
    Mock::given(method("GET"))
        .and(path("/mdm/v2/client/config"))
        .and(header("user-agent", "acme-mdm/2.0"))
        .respond_with(ResponseTemplate::new(200).set_body_json(with_envelope(json!({}))))
        .expect(1)
        .mount(&server)
        .await;
    let c = crate::support::builder(&server)
        .http_client(reqwest::Client::new())
        .user_agent("acme-mdm/2.0")
        .build()
        .unwrap();
    let r = c.client_config().await.unwrap();
    assert!(r.body.location_name.is_none());
}

#[tokio::test]
async fn pacing_spaces_requests_of_one_token() {
    let server = server().await;
    Mock::given(method("GET"))
        .and(path("/mdm/v2/client/config"))
        .respond_with(ResponseTemplate::new(200).set_body_json(with_envelope(json!({}))))
        .expect(6)
        .mount(&server)
        .await;
    let c = crate::support::builder(&server)
        .pacing(vppkit_client::Pacing::PerSecond(20))
        .build()
        .unwrap();
    let start = std::time::Instant::now();
    let clones: Vec<_> = (0..6).map(|_| c.clone()).collect();
    let results = futures::future::join_all(clones.iter().map(|c| c.client_config())).await;
    assert!(results.iter().all(Result::is_ok));
    // 6 requests at 20/s: the last starts 5 x 50 ms after the first.
    assert!(
        start.elapsed() >= Duration::from_millis(245),
        "{:?}",
        start.elapsed()
    );
}
