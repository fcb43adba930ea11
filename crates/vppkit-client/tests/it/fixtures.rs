//! The recorded Apple payloads (tests/resources/recorded, copied with their README)
//! parse unchanged.

use vppkit_client::{
    parse_client_config, parse_notification, EventType, Notification, NotificationResult,
    NotificationType,
};
use vppkit_core::{format_apple_datetime, PricingParam};

use crate::support::recorded;

const FILES: [&str; 5] = [
    "client_config_response.json",
    "notification_test.json",
    "notification_asset_count.json",
    "notification_associate_success.json",
    "notification_disassociate_success.json",
];

#[test]
fn every_notification_fixture_parses() {
    for name in &FILES[1..] {
        parse_notification(&read(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(recorded(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn client_config_response() {
    let r = parse_client_config(&read("client_config_response.json")).unwrap();
    assert_eq!(r.body.country_iso2a_code.as_deref(), Some("DE"));
    assert_eq!(r.body.storefront().as_deref(), Some("de"));
    assert_eq!(r.body.default_platform.as_deref(), Some("enterprisestore"));
    assert_eq!(r.body.location_name.as_deref(), Some("Yolo Fomo 2022"));
    assert_eq!(
        r.body.account_type(),
        Some(vppkit_core::AccountType::Business)
    );
    assert_eq!(
        r.body.subscribed_notification_types,
        vec![
            NotificationType::AssetCount,
            NotificationType::AssetManagement
        ]
    );
    assert_eq!(
        r.body.notification_auth_token.as_ref().unwrap().expose(),
        "qhLNx6TXKrQPTHJLGn4yO6SjJ5Av78iYLbgSU1hujO6GJbgsseKeCazDpDBcIjGZ"
    );
    assert!(!format!("{r:?}")
        .contains("qhLNx6TXKrQPTHJLGn4yO6SjJ5Av78iYLbgSU1hujO6GJbgsseKeCazDpDBcIjGZ"));
    let mdm = r.envelope.mdm_info.as_ref().unwrap();
    assert_eq!(mdm.id, "29dd58b6-93fe-4791-a660-96d7339c9f54");
    assert_eq!(mdm.name, "Zentral");
    assert_eq!(mdm.metadata, "zentral.example.com");
    assert_eq!(
        r.envelope.uid.as_ref().unwrap().as_str(),
        "981060278089131045"
    );
    assert_eq!(
        format_apple_datetime(r.envelope.token_expiration_date.unwrap()),
        "2023-09-26T08:30:39+0000"
    );
    assert_eq!(
        r.body.website_url.as_deref(),
        Some("https://business.apple.com")
    );
}

#[test]
fn test_notification() {
    let n = parse_notification(&read("notification_test.json")).unwrap();
    assert_eq!(n.notification, Notification::Test);
    assert_eq!(
        n.notification_id.as_str(),
        "7f9d6ed5-32cd-478d-8340-19ba67b17766"
    );
    assert_eq!(n.uid.unwrap().as_str(), "981060278089131045");
}

#[test]
fn asset_count_notification() {
    let n = parse_notification(&read("notification_asset_count.json")).unwrap();
    let Notification::AssetCount(c) = n.notification else {
        panic!("not ASSET_COUNT: {:?}", n.notification)
    };
    assert_eq!(c.adam_id.as_u64(), 361304891);
    assert_eq!(c.pricing_param, PricingParam::Stdq);
    assert_eq!(c.count_delta, 1);
    assert_eq!(c.asset_key().to_string(), "361304891/STDQ");
}

#[test]
fn associate_and_disassociate_notifications() {
    for (file, kind, event) in [
        (
            "notification_associate_success.json",
            EventType::Associate,
            "1451d195-7818-44cc-844e-efd2557084c4",
        ),
        (
            "notification_disassociate_success.json",
            EventType::Disassociate,
            "ee9eaa43-e6d1-4bcd-9452-b77cb664f60f",
        ),
    ] {
        let n = parse_notification(&read(file)).unwrap();
        let Notification::AssetManagement(m) = n.notification else {
            panic!("{file}: not ASSET_MANAGEMENT")
        };
        assert_eq!(m.event_type, kind);
        assert_eq!(m.result, NotificationResult::Success);
        assert_eq!(m.event_id.unwrap().as_str(), event);
        assert!(m.error.is_none());
        assert_eq!(m.assignments.len(), 1);
        let holder = m.assignments[0].holder().unwrap();
        assert!(holder.is_device());
        assert_eq!(holder.id(), "C02000000000");
        assert_eq!(m.assignments[0].adam_id.as_str(), "409203825");
    }
}
