//! Notification payloads of every documented type (Apple's examples, section 7).

use vppkit_client::{
    parse_notification, verify_notification_bearer, ErrorNumber, EventType, Notification,
    NotificationResult, NotificationType,
};
use vppkit_core::{Secret, VppUser, VppUserStatus};

#[test]
fn asset_management_failure_carries_the_error() {
    let n = parse_notification(br#"{"notificationId": "a1e2b3c4-0000-4111-8222-933344445555", "notificationType": "ASSET_MANAGEMENT",
 "uId": "7300112233445566",
 "notification": {"type": "ASSOCIATE", "result": "FAILURE", "eventId": "77aa0d6e-2b3c-4d5e-8f90-112233445566",
                  "assignments": [{"adamId": "1200000001", "pricingParam": "STDQ", "serialNumber": "DMPZQ1ABCDEF"}],
                  "error": {"errorNumber": 9709, "errorMessage": "There aren't enough assets available to complete this association."}}}"#).unwrap();
    let Notification::AssetManagement(m) = n.notification else {
        panic!("wrong type")
    };
    assert_eq!(m.result, NotificationResult::Failure);
    assert_eq!(m.error.unwrap().number, ErrorNumber::NotEnoughLicenses);
    assert_eq!(m.event_type, EventType::Associate);
}

#[test]
fn revoke_with_user_targets() {
    let n = parse_notification(
        br#"{"notificationId": "r1", "notificationType": "ASSET_MANAGEMENT", "uId": "1",
 "notification": {"type": "REVOKE", "result": "SUCCESS", "eventId": "e",
   "assignments": [{"adamId": "1", "pricingParam": "PLUS", "clientUserId": "u-1"}]}}"#,
    )
    .unwrap();
    let Notification::AssetManagement(m) = n.notification else {
        panic!("wrong type")
    };
    assert_eq!(m.event_type, EventType::Revoke);
    assert!(m.assignments[0].holder().unwrap().is_user());
}

#[test]
fn asset_count_negative_delta() {
    let n = parse_notification(br#"{"notificationId": "5e6f7a8b-1111-4222-9333-444455556666", "notificationType": "ASSET_COUNT",
 "uId": "7300112233445566", "notification": {"adamId": "1200000001", "pricingParam": "STDQ", "countDelta": -20}}"#).unwrap();
    let Notification::AssetCount(c) = n.notification else {
        panic!("wrong type")
    };
    assert_eq!(c.count_delta, -20);
}

#[test]
fn user_associated() {
    let n = parse_notification(br#"{"notificationId": "6d7e8f90-2222-4333-8444-555566667777", "notificationType": "USER_ASSOCIATED",
 "uId": "7300112233445566",
 "notification": {"associatedUsers": [{"clientUserId": "u-7f3a", "email": "ana@example.org",
                  "idHash": "Qm9ndXNIYXNoVmFsdWVGb3JEb2M=", "inviteCode": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
                  "status": "Associated"}]}}"#).unwrap();
    assert_eq!(
        n.notification.notification_type(),
        NotificationType::UserAssociated
    );
    let Notification::UserAssociated(u) = n.notification else {
        panic!("wrong type")
    };
    let user = VppUser::from(u.associated_users[0].clone());
    assert_eq!(user.status, VppUserStatus::Associated);
    assert_eq!(
        user.id_hash.as_deref(),
        Some("Qm9ndXNIYXNoVmFsdWVGb3JEb2M=")
    );
}

#[test]
fn user_management() {
    let n = parse_notification(br#"{"notificationId": "m1", "notificationType": "USER_MANAGEMENT", "uId": "1",
 "notification": {"type": "CREATE", "result": "FAILURE", "eventId": "e1",
   "users": [{"clientUserId": "u-1", "email": "a@example.org", "status": "Registered", "inviteCode": "ab"}],
   "error": {"errorNumber": 9716, "errorMessage": "exists"}}}"#).unwrap();
    let Notification::UserManagement(m) = n.notification else {
        panic!("wrong type")
    };
    assert_eq!(m.event_type, EventType::Create);
    assert_eq!(m.users.len(), 1);
    assert_eq!(m.error.unwrap().number, ErrorNumber::UserAlreadyExists);
}

#[test]
fn subscription_types_kept_raw() {
    for t in [
        "SUBSCRIPTION_COUNT",
        "SUBSCRIPTION_MANAGEMENT",
        "UNLIMITED_ASSET",
    ] {
        let body = format!(
            r#"{{"notificationId":"s","notificationType":"{t}","notification":{{"adamId":123}}}}"#
        );
        let n = parse_notification(body.as_bytes()).unwrap();
        assert_eq!(n.notification.notification_type().as_str(), t);
    }
}

#[test]
fn bearer_check_against_recorded_token() {
    let secret = Secret::new("qhLNx6TXKrQPTHJLGn4yO6SjJ5Av78iYLbgSU1hujO6GJbgsseKeCazDpDBcIjGZ");
    assert!(verify_notification_bearer(
        "Bearer qhLNx6TXKrQPTHJLGn4yO6SjJ5Av78iYLbgSU1hujO6GJbgsseKeCazDpDBcIjGZ",
        &secret
    ));
    assert!(!verify_notification_bearer(
        "Bearer qhLNx6TXKrQPTHJLGn4yO6SjJ5Av78iYLbgSU1hujO6GJbgsseKeCazDpDBcIjGz",
        &secret
    ));
}
