//! What Apple sends is read leniently: unknown enum values are kept, ids are any
//! non-empty string, and a record that still cannot be read is skipped and reported
//! (or fails the walk in strict mode).

use futures::TryStreamExt;
use serde_json::json;
use vppkit_client::{AssetFilter, AssignmentFilter, Error, UserFilter};
use vppkit_core::{Asset, ProductType, VppUser, VppUserStatus};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{builder, client, server, with_envelope};

async fn serve_page(server: &MockServer, at: &str, index: u32, body: serde_json::Value) {
    Mock::given(method("GET"))
        .and(path(format!("/mdm/v2{at}")))
        .and(query_param("pageIndex", index.to_string()))
        .respond_with(ResponseTemplate::new(200).set_body_json(with_envelope(body)))
        .mount(server)
        .await;
}

#[tokio::test]
async fn unknown_user_status_and_odd_ids_do_not_fail_the_walk() {
    let server = server().await;
    serve_page(
        &server,
        "/users",
        0,
        json!({"users": [
            {"clientUserId": "ana maria.1", "status": "Suspended"},
            {"clientUserId": "u-2", "status": "Associated", "idHash": "x"}
        ], "currentPageIndex": 0, "size": 2, "totalPages": 1, "versionId": "v1"}),
    )
    .await;
    let (users, _) = client(&server)
        .users(UserFilter::new())
        .collect_all()
        .await
        .unwrap();
    let users: Vec<VppUser> = users.into_iter().map(VppUser::from).collect();
    assert_eq!(users.len(), 2);
    assert_eq!(users[0].client_user_id.as_str(), "ana maria.1");
    assert_eq!(users[0].status.as_str(), "Suspended");
    assert!(matches!(users[0].status, VppUserStatus::Other(_)));
    assert!(!users[0].status.is_active());
}

#[tokio::test]
async fn unknown_product_type_is_kept() {
    let server = server().await;
    serve_page(
        &server,
        "/assets",
        0,
        json!({"assets": [
            {"adamId": "1", "pricingParam": "STDQ", "productType": "Subscription", "deviceAssignable": false,
             "revocable": false, "supportedPlatforms": ["iOS", "holoOS"], "totalCount": 1, "assignedCount": 0,
             "availableCount": 1, "retiredCount": 0}
        ], "currentPageIndex": 0, "size": 1, "totalPages": 1, "versionId": "v1"}),
    )
    .await;
    let (assets, _) = client(&server)
        .assets(AssetFilter::new())
        .collect_all()
        .await
        .unwrap();
    let asset = Asset::try_from(assets[0].clone()).unwrap();
    assert_eq!(asset.product_type.as_str(), "Subscription");
    assert!(!asset.product_type.is_known());
    assert_ne!(asset.product_type, ProductType::App);
    assert_eq!(assets[0].supported_platforms, vec!["iOS", "holoOS"]);
}

fn broken_pages() -> [serde_json::Value; 2] {
    [
        json!({"assignments": [
            {"adamId": "1", "pricingParam": "STDQ", "serialNumber": "serial 1"},
            {"adamId": "not digits", "pricingParam": "STDQ", "serialNumber": "S2"},
            {"adamId": "1", "pricingParam": "STDQ", "clientUserId": ""}
        ], "currentPageIndex": 0, "nextPageIndex": 1, "size": 3, "totalPages": 2, "versionId": "v1"}),
        json!({"assignments": [
            {"adamId": "2", "pricingParam": "STDQ", "serialNumber": "S3"}
        ], "currentPageIndex": 1, "size": 1, "totalPages": 2, "versionId": "v1"}),
    ]
}

#[tokio::test]
async fn unreadable_records_are_skipped_and_reported_with_their_page() {
    let server = server().await;
    for (i, page) in broken_pages().into_iter().enumerate() {
        serve_page(&server, "/assignments", i as u32, page).await;
    }
    let pages: Vec<_> = client(&server)
        .assignments(AssignmentFilter::new())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(pages.len(), 2);
    assert_eq!(pages[0].items.len(), 1);
    assert_eq!(
        pages[0].items[0].serial_number.as_ref().unwrap().as_str(),
        "serial 1"
    );
    let skipped: Vec<(u32, &str, usize)> = pages[0]
        .skipped
        .iter()
        .map(|s| (s.page, s.list, s.position))
        .collect();
    assert_eq!(skipped, vec![(0, "assignments", 1), (0, "assignments", 2)]);
    assert!(pages[0].skipped[0].reason.contains("adamId"));
    assert!(pages[1].skipped.is_empty());
    assert_eq!(pages[1].items.len(), 1);
}

#[tokio::test]
async fn strict_mode_fails_the_walk_on_an_unreadable_record() {
    let server = server().await;
    for (i, page) in broken_pages().into_iter().enumerate() {
        serve_page(&server, "/assignments", i as u32, page).await;
    }
    let c = builder(&server).strict_records(true).build().unwrap();
    let err = c
        .assignments(AssignmentFilter::new())
        .collect_all()
        .await
        .unwrap_err();
    match err {
        Error::Record {
            path,
            page,
            list,
            position,
            ..
        } => {
            assert_eq!(path, "/assignments");
            assert_eq!((page, list, position), (0, "assignments", 1));
        }
        other => panic!("expected Error::Record, got {other:?}"),
    }
}
