//! vppkit-client and the simulator agree on every endpoint, end to end. Both
//! were written independently from Apple's documentation; a field one of them
//! names wrongly fails here.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use futures::TryStreamExt;
use vppkit_client::{
    parse_notification, verify_notification_bearer, AssetFilter, AssignmentFilter, ClaimStatus,
    Client, ClientBuilder, ClientConfigRequest, ErrorNumber, EventStatusKind, EventType,
    ManageAssetsRequest, ManageUsersRequest, MetadataQuery, Notification, RequestUser,
    RevokeAssetsRequest, UserFilter,
};
use vppkit_core::{
    AccountType, AdamId, AssetKey, ClientUserId, EventId, MdmInfo, PricingParam, SerialNumber,
    TokenState, VppUserStatus,
};
use vppkit_sim::{demo, Preset, SimClock, Simulator};

use crate::support::{start_notifying, start_with, subscribe, Harness, Receiver};

/// Counts and flags of one asset.
type Row = (Option<u32>, Option<u32>, Option<u32>, bool, bool);

fn client(h: &Harness, uid: &str) -> Client {
    ClientBuilder::new(h.token(uid).content)
        .base_url(h.sim.base_url())
        .expected_mdm_id("vppkit-e2e")
        .build()
        .expect("client builds")
}

fn key(adam: u64) -> AssetKey {
    AssetKey::new(AdamId::from(adam), PricingParam::Stdq)
}

fn serial(n: u32) -> SerialNumber {
    SerialNumber::new(demo::device_serial("SPH", n)).unwrap()
}

async fn wait(h: &Harness, c: &Client, id: &EventId) -> vppkit_client::EventStatus {
    let pending = c.event_status(id).await.expect("status").body;
    assert_eq!(pending.event_status, EventStatusKind::Pending);
    h.sim.control().complete_pending();
    let done = c.event_status(id).await.expect("status").body;
    assert!(done.is_finished());
    done
}

async fn demo_harness(page_size: usize) -> Harness {
    start_with(
        Simulator::builder()
            .preset(Preset::Demo)
            .clock(SimClock::manual())
            .page_size(page_size)
            .allow_http_loopback_notifications(true),
    )
    .await
}

#[tokio::test]
async fn config_endpoints_and_envelope() {
    let h = demo_harness(1000).await;
    let uid = demo::SPRINGFIELD_HIGH;
    let c = client(&h, uid);
    let svc = c.service_config().await.expect("service config");
    assert_eq!(svc.limits.max_assets, 25);
    assert_eq!(svc.limits.max_request_per_second, 15);
    assert_eq!(
        svc.urls.content_metadata_lookup(),
        Some(h.sim.metadata_url().as_str())
    );
    assert!(svc
        .error_codes
        .iter()
        .any(|e| e.number == ErrorNumber::NotEnoughLicenses));
    assert_eq!(c.limits().await.unwrap().max_revoke_serial_numbers, 100);

    let cfg = c.client_config().await.expect("client config");
    assert_eq!(
        cfg.body.location_name.as_deref(),
        Some("Springfield High School")
    );
    assert_eq!(cfg.body.account_type(), Some(AccountType::Education));
    assert_eq!(cfg.body.country_iso2a_code.as_deref(), Some("US"));
    assert_eq!(cfg.envelope.uid.as_ref().map(|u| u.as_str()), Some(uid));
    assert_eq!(
        cfg.envelope.token_expiration_date,
        Some(h.token(uid).expires_at)
    );
    assert_eq!(c.claim_status(&cfg.envelope), Some(ClaimStatus::Unclaimed));

    let ours = MdmInfo::new("vppkit-e2e", "vppkit", "e2e.example.org").unwrap();
    let set = c
        .set_client_config(&ClientConfigRequest::new().with_mdm_info(ours.clone()))
        .await
        .expect("claim");
    assert_eq!(set.envelope.mdm_info.as_ref(), Some(&ours));
    assert_eq!(c.claim_status(&set.envelope), Some(ClaimStatus::Ours));
    // Another MDM writes its own mdmInfo: the client sees it on the next answer.
    h.sim
        .control()
        .set_mdm_info(uid, Some(MdmInfo::new("intruder", "Other", "x").unwrap()))
        .unwrap();
    let page = c.assets_page(&AssetFilter::new(), 0).await.unwrap();
    assert!(c.claim_status(&page.envelope).unwrap().is_other());
    let berlin = client(&h, demo::ACME_BERLIN).client_config().await.unwrap();
    assert_eq!(berlin.envelope.mdm_info.unwrap().id, demo::OTHER_MDM_ID);
}

#[tokio::test]
async fn paginated_reads_match_the_ground_truth() {
    let h = demo_harness(700).await;
    let uid = demo::SPRINGFIELD_HIGH;
    let c = client(&h, uid);
    let truth = h.sim.control();

    let assets: Vec<_> = c
        .assets(AssetFilter::new())
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    let got: BTreeMap<AssetKey, Row> = assets
        .iter()
        .flat_map(|p| p.items.iter())
        .map(|a| {
            (
                a.key(),
                (
                    a.total_count,
                    a.assigned_count,
                    a.available_count,
                    a.device_assignable,
                    a.revocable,
                ),
            )
        })
        .collect();
    let want: BTreeMap<AssetKey, Row> = truth
        .assets(uid)
        .unwrap()
        .into_iter()
        .map(|a| {
            (
                a.key.clone(),
                (
                    Some(a.counts.total),
                    Some(a.counts.assigned),
                    Some(a.counts.available),
                    a.device_assignable,
                    a.revocable,
                ),
            )
        })
        .collect();
    assert_eq!(got, want);
    let unlimited = c
        .assets_page(&AssetFilter::new().unlimited(true), 0)
        .await
        .unwrap();
    assert!(unlimited
        .items
        .iter()
        .any(|a| a.is_unlimited() && a.adam_id.as_u64() == demo::FREE_APP));

    let mut stream = c.assignments(AssignmentFilter::new());
    let mut seen = HashSet::new();
    let mut pages = 0;
    while let Some(page) = stream.try_next().await.unwrap() {
        pages += 1;
        for a in &page.items {
            assert!(seen.insert((a.asset_key(), a.holder().expect("a holder"))));
        }
    }
    assert!(pages > 1, "the walk spans several pages");
    let want: HashSet<_> = truth.assignments(uid).unwrap().into_iter().collect();
    assert_eq!(seen, want);
    let since = stream.first_version_id().expect("versionId");

    // A change, then only the change through sinceVersionId.
    let request = ManageAssetsRequest::devices(vec![key(1_200_000_006)], vec![serial(3)]);
    let event = c.associate_assets(&request).await.unwrap().body.event_id;
    assert_eq!(
        wait(&h, &c, &event).await.event_status,
        EventStatusKind::Complete
    );
    let changes: Vec<_> = c
        .assignments(AssignmentFilter::new().since_version_id(since))
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    let items: Vec<_> = changes.iter().flat_map(|p| p.items.iter()).collect();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].serial_number.as_ref(), Some(&serial(3)));

    let filtered = c
        .assignments_page(
            &AssignmentFilter::new()
                .serial_number(serial(3))
                .adam_id(AdamId::from(1_200_000_006)),
            0,
        )
        .await
        .unwrap();
    assert_eq!(filtered.items.len(), 1);

    let users: Vec<_> = c
        .users(UserFilter::new())
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    let users: Vec<_> = users.into_iter().flat_map(|p| p.items).collect();
    assert_eq!(users.len(), truth.users(uid).unwrap().len());
    assert!(users
        .iter()
        .any(|u| u.status == VppUserStatus::Registered && u.invite_code.is_some()));
    let active = c
        .users_page(
            &UserFilter::new().client_user_id(ClientUserId::new("sph-user-0001").unwrap()),
            0,
        )
        .await
        .unwrap();
    assert_eq!(active.items[0].status, VppUserStatus::Associated);
    assert!(active.items[0].id_hash.is_some());
}

#[tokio::test]
async fn writes_events_and_failures() {
    let h = demo_harness(1000).await;
    let uid = demo::SPRINGFIELD_HIGH;
    let c = client(&h, uid);
    // Shortage: 5 free licences of the shortage app, 8 new devices.
    let serials: Vec<SerialNumber> = (701..=708).map(serial).collect();
    let ev = c
        .associate_assets(&ManageAssetsRequest::devices(
            vec![key(demo::SHORTAGE_APP)],
            serials,
        ))
        .await
        .unwrap();
    assert_eq!(ev.envelope.uid.as_ref().map(|u| u.as_str()), Some(uid));
    let done = wait(&h, &c, &ev.body.event_id).await;
    assert_eq!(done.event_status, EventStatusKind::Failed);
    assert_eq!(done.event_type, Some(EventType::Associate));
    assert_eq!((done.num_requested, done.num_completed), (8, 5));
    let failure = &done.failures[0];
    assert_eq!(failure.number, ErrorNumber::NotEnoughLicenses);
    let info = failure.info.as_ref().unwrap();
    assert_eq!(info.serial_numbers.len(), 3);
    assert_eq!(info.assets, vec![key(demo::SHORTAGE_APP)]);

    let ev = c
        .disassociate_assets(&ManageAssetsRequest::devices(
            vec![key(demo::SHORTAGE_APP)],
            vec![serial(701)],
        ))
        .await
        .unwrap();
    assert_eq!(
        wait(&h, &c, &ev.body.event_id).await.event_type,
        Some(EventType::Disassociate)
    );

    let ev = c
        .revoke_assets(&RevokeAssetsRequest::new(vec![], vec![serial(702)]))
        .await
        .unwrap();
    let done = wait(&h, &c, &ev.body.event_id).await;
    assert_eq!(
        (done.event_type, done.event_status),
        (Some(EventType::Revoke), EventStatusKind::Complete)
    );
    assert!(!h
        .sim
        .control()
        .assignments(uid)
        .unwrap()
        .iter()
        .any(|(_, x)| x.id() == serial(702).as_str()));

    // Users: create (email and Managed Apple Account), update, retire.
    let create = ManageUsersRequest::new(vec![
        RequestUser::new(ClientUserId::new("e2e-1").unwrap()).with_email("e2e1@example.org"),
        RequestUser::new(ClientUserId::new("e2e-2").unwrap())
            .with_managed_apple_id("e2e2@appleid.example.org"),
    ]);
    let ev = c.create_users(&create).await.unwrap();
    assert_eq!(
        wait(&h, &c, &ev.body.event_id).await.event_type,
        Some(EventType::Create)
    );
    let u = c
        .users_page(
            &UserFilter::new().client_user_id(ClientUserId::new("e2e-1").unwrap()),
            0,
        )
        .await
        .unwrap();
    assert_eq!(u.items[0].status, VppUserStatus::Registered);
    assert_eq!(u.items[0].invite_code.as_ref().map(String::len), Some(32));
    let update =
        ManageUsersRequest::new(vec![
            RequestUser::new(ClientUserId::new("e2e-1").unwrap()).with_email("new@example.org")
        ]);
    let ev = c.update_users(&update).await.unwrap();
    assert_eq!(
        wait(&h, &c, &ev.body.event_id).await.event_status,
        EventStatusKind::Complete
    );
    let retire =
        ManageUsersRequest::new(vec![RequestUser::new(ClientUserId::new("e2e-2").unwrap())]);
    let ev = c.retire_users(&retire).await.unwrap();
    assert_eq!(
        wait(&h, &c, &ev.body.event_id).await.event_type,
        Some(EventType::Retire)
    );
    let dup = c
        .create_users(&ManageUsersRequest::new(vec![RequestUser::new(
            ClientUserId::new("e2e-1").unwrap(),
        )]))
        .await
        .unwrap();
    let done = wait(&h, &c, &dup.body.event_id).await;
    assert_eq!(done.failures[0].number, ErrorNumber::from_number(9716));
    // User licences through the client, and 9609 for an unknown user.
    let ev = c
        .associate_assets(&ManageAssetsRequest::users(
            vec![key(demo::USER_ONLY_APP)],
            vec![
                ClientUserId::new("e2e-1").unwrap(),
                ClientUserId::new("nobody").unwrap(),
            ],
        ))
        .await
        .unwrap();
    let done = wait(&h, &c, &ev.body.event_id).await;
    assert_eq!(done.failures[0].number, ErrorNumber::from_number(9609));
    assert_eq!(done.num_completed, 1);
}

#[tokio::test]
async fn errors_are_read_the_same_way() {
    let h = demo_harness(1000).await;
    let uid = demo::SPRINGFIELD_HIGH;
    let c = client(&h, uid);
    // 9707 from the simulator's validation (a book to a device).
    let e = c
        .associate_assets(&ManageAssetsRequest::devices(
            vec![key(demo::BOOK)],
            vec![serial(1)],
        ))
        .await
        .unwrap_err();
    assert_eq!(
        e.error_number(),
        Some(ErrorNumber::AssetNotDeviceAssignable)
    );
    // 9708 for an unknown event.
    let e = c
        .event_status(&EventId::new("3f6b1c2a-8e4d-4b1a-9c55-0d2e7a6f9b10").unwrap())
        .await
        .unwrap_err();
    assert_eq!(e.error_number(), Some(ErrorNumber::from_number(9708)));
    // 9650 for a page past the end.
    let e = c.assets_page(&AssetFilter::new(), 99).await.unwrap_err();
    assert_eq!(e.error_number(), Some(ErrorNumber::PageIndexOutOfRange));
    // Token problems: revoked, expired, unknown (also with the HTTP-200 quirk).
    let control = h.sim.control();
    let token = h.token(uid);
    control.revoke_token(&token).unwrap();
    let e = c.client_config().await.unwrap_err();
    assert_eq!(
        e.token_problem().map(|p| p.token_state()),
        Some(TokenState::Revoked)
    );
    control.restore_token(&token).unwrap();
    control.expire_token(&token).unwrap();
    let e = c.client_config().await.unwrap_err();
    assert_eq!(
        e.token_problem().map(|p| p.token_state()),
        Some(TokenState::Expired)
    );
    let stranger = ClientBuilder::new(vppkit_core::Secret::new("not-a-token"))
        .base_url(h.sim.base_url())
        .build()
        .unwrap();
    for quirk in [false, true] {
        control.set_invalid_token_http_200(quirk);
        let e = stranger.client_config().await.unwrap_err();
        assert_eq!(
            e.error_number(),
            Some(ErrorNumber::InvalidAuthenticationToken),
            "quirk {quirk}"
        );
        assert_eq!(
            e.token_problem().map(|p| p.token_state()),
            Some(TokenState::Invalid)
        );
    }
}

#[tokio::test]
async fn retries_throttling_and_server_errors() {
    let h = demo_harness(1000).await;
    let c = client(&h, demo::ACME_LONDON);
    let control = h.sim.control();
    control.fail_next_requests(1, vppkit_sim::ServerErrorKind::Unavailable, 1);
    // A read is retried after Retry-After and succeeds.
    c.client_config().await.expect("retried read succeeds");
    control.set_throttling(true);
    for _ in 0..20 {
        c.client_config()
            .await
            .expect("paced or retried under throttling");
    }
}

#[tokio::test]
async fn metadata_lookup_and_notifications_parse() {
    let h = start_notifying(Preset::Demo).await;
    let uid = demo::ACME_LONDON;
    let c = client(&h, uid);
    let ids: Vec<AdamId> = demo::CATALOG.iter().map(|e| AdamId::from(e.0)).collect();
    let meta = c
        .lookup_metadata(&ids, &MetadataQuery::new("gb"))
        .await
        .expect("lookup");
    for (adam, name, bundle, _) in demo::CATALOG {
        let m = &meta[&AdamId::from(*adam)];
        assert_eq!(m.name, *name);
        assert_eq!(m.bundle_id.as_deref().unwrap_or(""), *bundle);
        assert!(m.artwork_url.is_some() && m.version.is_some());
    }

    // Notifications produced by the simulator parse with the client's parser.
    let r = Receiver::start(0).await;
    subscribe(&h, uid, &r).await;
    let control = h.sim.control();
    control.buy_licences(uid, &key(1_200_000_017), 3).unwrap();
    c.associate_assets(&ManageAssetsRequest::devices(
        vec![key(1_200_000_017)],
        vec![SerialNumber::new("ACL000000001").unwrap()],
    ))
    .await
    .unwrap();
    control.complete_pending();
    let create = ManageUsersRequest::new(vec![
        RequestUser::new(ClientUserId::new("n-1").unwrap()).with_email("n1@example.org")
    ]);
    c.create_users(&create).await.unwrap();
    control.complete_pending();
    control.accept_invitation(uid, "n-1").unwrap();
    assert!(control.flush_notifications(Duration::from_secs(20)).await);
    let secret = vppkit_core::Secret::new("shared-secret-for-tests");
    let mut kinds = HashSet::new();
    for (auth, body) in r.seen.lock().unwrap().iter() {
        assert!(verify_notification_bearer(
            auth.as_deref().unwrap(),
            &secret
        ));
        let n = parse_notification(body.to_string().as_bytes())
            .expect("client parses the notification");
        assert_eq!(n.uid.as_ref().map(|u| u.as_str()), Some(uid));
        match &n.notification {
            Notification::Test => kinds.insert("test"),
            Notification::AssetCount(_) => kinds.insert("count"),
            Notification::AssetManagement(_) => kinds.insert("management"),
            Notification::UserManagement(_) => kinds.insert("users"),
            Notification::UserAssociated(_) => kinds.insert("associated"),
            other => panic!("unexpected {other:?}"),
        };
    }
    assert_eq!(kinds.len(), 5, "{kinds:?}");
}
