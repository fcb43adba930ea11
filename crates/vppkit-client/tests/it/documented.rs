//! Apple's documented example payloads (tests/resources/documented, copied with
//! their README) parse unchanged, through the client's own request paths.

use std::path::{Path, PathBuf};

use vppkit_client::{
    parse_metadata_lookup, parse_notification, AssetFilter, AssignmentFilter, EventStatusKind,
    ManageAssetsRequest, MetadataQuery, Notification, UserFilter,
};
use vppkit_core::{
    AdamId, Asset, AssetKey, EventId, PricingParam, SerialNumber, VppUser, VppUserStatus,
};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::client;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/resources/documented")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Every file the tests below read; a new fixture without a test fails here.
const COVERED: &[&str] = &[
    "README.md",
    "assets_doc.json",
    "assets_unlimited_shape.json",
    "assign_doc_mixed.json",
    "assign_paginated_p0.json",
    "cc_doc.json",
    "event_associate.json",
    "meta_doc_artwork_array.json",
    "meta_doc_b2b_object_artwork.json",
    "meta_doc_empty.json",
    "notif_asset_count_neg.json",
    "notif_assoc.json",
    "notif_disassoc_user.json",
    "notif_failure_9709.json",
    "notif_revoke.json",
    "notif_sub_count.json",
    "notif_sub_mgmt.json",
    "notif_test.json",
    "notif_user_associated.json",
    "notif_user_create.json",
    "notif_user_retire.json",
    "notif_user_update.json",
    "sc_doc.json",
    "sc_getting_started.json",
    "status_complete.json",
    "status_failed_9609.json",
    "status_pending.json",
    "users_doc.json",
];

#[test]
fn every_documented_file_has_a_test() {
    let mut names: Vec<String> = std::fs::read_dir(dir())
        .expect("tests/resources/documented exists in the repository")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, COVERED, "a documented fixture was added or removed");
}

async fn serve(server: &MockServer, verb: &str, at: &str, file: &str) {
    Mock::given(method(verb))
        .and(path(format!("/mdm/v2{at}")))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(read(file)))
        .up_to_n_times(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn service_config_examples() {
    for file in ["sc_doc.json", "sc_getting_started.json"] {
        let server = crate::support::server().await;
        serve(&server, "GET", "/service/config", file).await;
        let sc = client(&server)
            .service_config()
            .await
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(sc.limits.max_assets, 25, "{file}");
        assert!(sc.urls.invitation_email().is_some(), "{file}");
        if file == "sc_doc.json" {
            assert_eq!(sc.error_codes.len(), 38);
            assert_eq!(sc.limits.max_request_per_second, 15);
        }
    }
}

#[tokio::test]
async fn client_config_example() {
    let server = crate::support::server().await;
    serve(&server, "GET", "/client/config", "cc_doc.json").await;
    let cc = client(&server).client_config().await.unwrap();
    assert_eq!(cc.body.location_name.as_deref(), Some("PS01"));
    assert_eq!(cc.body.storefront().as_deref(), Some("us"));
    assert_eq!(
        cc.body.account_type(),
        Some(vppkit_core::AccountType::Education)
    );
    assert_eq!(cc.envelope.mdm_info.unwrap().name, "Apple Configurator 2");
    assert!(!format!("{:?}", cc.body).contains("SUp3rS3Cr3t"));
}

#[tokio::test]
async fn assets_examples() {
    let server = crate::support::server().await;
    serve(&server, "GET", "/assets", "assets_doc.json").await;
    let (assets, version) = client(&server)
        .assets(AssetFilter::new())
        .collect_all()
        .await
        .unwrap();
    assert_eq!(assets.len(), 5);
    assert_eq!(
        version.as_deref(),
        Some("70e8c740-514c-11eb-bb63-a90b882fcd52")
    );
    let first = Asset::try_from(assets[0].clone()).unwrap();
    assert_eq!(first.counts.total, 15000);

    let server = crate::support::server().await;
    serve(&server, "GET", "/assets", "assets_unlimited_shape.json").await;
    let page = client(&server)
        .assets_page(&AssetFilter::new().unlimited(true), 0)
        .await
        .unwrap();
    assert!(page.skipped.is_empty());
    let free = Asset::try_from(page.items[0].clone()).unwrap();
    assert!(free.counts.is_unlimited());
    assert_eq!(free.counts.assigned, 12);
}

#[tokio::test]
async fn assignments_examples_keep_apples_ids() {
    let server = crate::support::server().await;
    serve(&server, "GET", "/assignments", "assign_doc_mixed.json").await;
    let page = client(&server)
        .assignments_page(&AssignmentFilter::new(), 0)
        .await
        .unwrap();
    assert!(page.skipped.is_empty());
    let ids: Vec<String> = page
        .items
        .iter()
        .map(|a| a.holder().unwrap().to_string())
        .collect();
    assert_eq!(ids, vec!["user:client-1", "device:serial-1"]);

    // Apple's paginated example: UUID-like serial numbers, page 0 of 353.
    let server = crate::support::server().await;
    serve(&server, "GET", "/assignments", "assign_paginated_p0.json").await;
    let page = client(&server)
        .assignments_page(&AssignmentFilter::new(), 0)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 2);
    assert_eq!(page.next_page_index, Some(1));
    assert_eq!(page.total_pages, Some(353));
    assert_eq!(
        page.items[0].serial_number.as_ref().unwrap().as_str(),
        "b6817f44-6229-4f1b-ba16-9eef9ebf24c6"
    );
}

#[tokio::test]
async fn users_example() {
    let server = crate::support::server().await;
    serve(&server, "GET", "/users", "users_doc.json").await;
    let page = client(&server)
        .users_page(&UserFilter::new(), 0)
        .await
        .unwrap();
    let users: Vec<VppUser> = page.items.into_iter().map(VppUser::from).collect();
    assert_eq!(users.len(), 3);
    assert_eq!(users[2].status, VppUserStatus::Retired);
    assert_eq!(
        users[0].invite_code.as_deref(),
        Some("46bc93ea3acd41e0a4919c02db0d7d3a")
    );
}

#[tokio::test]
async fn event_and_status_examples() {
    let server = crate::support::server().await;
    serve(&server, "POST", "/assets/associate", "event_associate.json").await;
    let key = AssetKey::new(AdamId::new("408709785").unwrap(), PricingParam::Stdq);
    let answer = client(&server)
        .associate_assets(&ManageAssetsRequest::devices(
            vec![key],
            vec![SerialNumber::new("C02").unwrap()],
        ))
        .await
        .unwrap();
    assert_eq!(
        answer.body.event_id.as_str(),
        "954910a8-3d9c-4fde-948d-253e5aef431a"
    );
    for (file, kind, failures) in [
        ("status_complete.json", EventStatusKind::Complete, 0),
        ("status_failed_9609.json", EventStatusKind::Failed, 1),
        ("status_pending.json", EventStatusKind::Pending, 0),
    ] {
        let server = crate::support::server().await;
        serve(&server, "GET", "/status", file).await;
        let s = client(&server)
            .event_status(&EventId::new("e").unwrap())
            .await
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(s.body.event_status, kind, "{file}");
        assert_eq!(s.body.failures.len(), failures, "{file}");
    }
}

#[test]
fn every_notification_example_parses() {
    for name in COVERED.iter().filter(|n| n.starts_with("notif_")) {
        let n = parse_notification(&read(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let ok = match (*name, &n.notification) {
            ("notif_test.json", Notification::Test) => true,
            ("notif_asset_count_neg.json", Notification::AssetCount(c)) => c.count_delta == -12,
            (
                "notif_assoc.json"
                | "notif_disassoc_user.json"
                | "notif_failure_9709.json"
                | "notif_revoke.json",
                Notification::AssetManagement(m),
            ) => !m.assignments.is_empty(),
            (
                "notif_user_create.json" | "notif_user_retire.json" | "notif_user_update.json",
                Notification::UserManagement(m),
            ) => m.users.len() == 1,
            ("notif_user_associated.json", Notification::UserAssociated(u)) => {
                u.associated_users[0].status == VppUserStatus::Associated
            }
            ("notif_sub_count.json", Notification::SubscriptionCount(_)) => true,
            ("notif_sub_mgmt.json", Notification::SubscriptionManagement(_)) => true,
            _ => false,
        };
        assert!(ok, "{name}: unexpected {:?}", n.notification);
    }
}

#[test]
fn both_artwork_forms_parse() {
    let array = parse_metadata_lookup(&read("meta_doc_artwork_array.json")).unwrap();
    let pages = &array[&AdamId::new("361309726").unwrap()];
    assert_eq!(pages.name, "Pages");
    assert_eq!(pages.bundle_id.as_deref(), Some("com.apple.Pages"));
    assert_eq!(pages.version.as_deref(), Some("5.0.1"));
    // The largest of the sized images.
    assert!(pages
        .artwork_url
        .as_deref()
        .unwrap()
        .ends_with("360x216bb.png"));

    let object = parse_metadata_lookup(&read("meta_doc_b2b_object_artwork.json")).unwrap();
    let b2b = &object[&AdamId::new("451796775").unwrap()];
    assert_eq!(b2b.name, "b2b Test 2");
    assert!(b2b.artwork_url.as_deref().unwrap().contains("{w}x{h}"));

    assert!(parse_metadata_lookup(&read("meta_doc_empty.json"))
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn artwork_array_through_the_lookup() {
    let server = crate::support::server().await;
    Mock::given(method("GET"))
        .and(path("/lookup"))
        .respond_with(
            ResponseTemplate::new(200).set_body_bytes(read("meta_doc_artwork_array.json")),
        )
        .expect(1)
        .mount(&server)
        .await;
    let c = crate::support::builder(&server)
        .metadata_lookup_url(format!("{}/lookup", server.uri()))
        .build()
        .unwrap();
    let found = c
        .lookup_metadata(
            &[AdamId::new("361309726").unwrap()],
            &MetadataQuery::new("us"),
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
}
