//! Checks on locations, assets and users.

use serde_json::json;
use vppkit_core::{
    AccountType, AssetMetadata, ClientUserId, MdmInfo, NotificationId, Secret, TokenState, Uid,
    VppUser, VppUserStatus,
};

use super::fixtures::*;
use super::{fresh, StoreFactory};
use crate::{
    ErrorKind, HoldingUpsert, InstallRecord, InstallState, JournalQuery, NewJournalRecord,
    NotificationSettings, Operation, OperationKind, Reservation, SyncPage,
};

/// Every location field, secrets included, survives a round trip; listing is by id.
pub async fn locations_round_trip(factory: &dyn StoreFactory) {
    let Some(store) = fresh(factory, "locations_round_trip").await else {
        return;
    };
    let id = loc_id("loc-b");
    let mut rec = location_record(&id);
    rec.token_state = TokenState::Expiring;
    rec.uid = Some(Uid::new("7300112233445566").unwrap());
    rec.country = Some("US".into());
    rec.account_type = Some(AccountType::Education);
    rec.apple_account_name = Some("Example School District".into());
    rec.mdm_info = Some(MdmInfo::new_unchecked("mdm-1", "vppkit", "host-a"));
    rec.notification = Some(NotificationSettings::new(
        "https://mdm.example.org/vpp/hook",
        Secret::new("NOTIF-AUTH-SECRET-1234"),
        vec!["ASSET_MANAGEMENT".into(), "ASSET_COUNT".into()],
    ));
    rec.service_config = Some(json!({"limits": {"maxAssets": 25}}));
    assert_eq!(store.save_location(&rec).await.unwrap(), 1);
    rec.revision = 1;
    let back = store.location(&id).await.unwrap().expect("stored");
    assert!(
        back.same_as(&rec),
        "round trip changed the record: {back:?}"
    );
    assert_eq!(
        back.notification.as_ref().unwrap().auth_token.expose(),
        "NOTIF-AUTH-SECRET-1234"
    );

    let other = add_location(&store, "loc-a").await;
    let all = store.locations().await.unwrap();
    let ids: Vec<_> = all.iter().map(|l| l.id.clone()).collect();
    assert_eq!(ids, vec![other, id.clone()]);
    assert!(store.location(&loc_id("nope")).await.unwrap().is_none());

    // Clearing optional fields works too.
    let mut cleared = back.clone();
    cleared.notification = None;
    cleared.mdm_info = None;
    cleared.service_config = None;
    cleared.token = Secret::new("NEW-TOKEN");
    cleared.updated_at = t(50);
    assert_eq!(store.save_location(&cleared).await.unwrap(), 2);
    cleared.revision = 2;
    let back = store.location(&id).await.unwrap().unwrap();
    assert!(back.same_as(&cleared));
}

/// Revisions: duplicate insert conflicts, stale update mismatches, missing update is not found.
pub async fn location_revisions(factory: &dyn StoreFactory) {
    let Some(store) = fresh(factory, "location_revisions").await else {
        return;
    };
    let id = add_location(&store, "rev").await;
    let dup = store
        .save_location(&location_record(&id))
        .await
        .unwrap_err();
    assert_eq!(dup.kind(), ErrorKind::Conflict);

    let mut rec = store.location(&id).await.unwrap().unwrap();
    assert_eq!(rec.revision, 1);
    rec.name = "renamed".into();
    assert_eq!(store.save_location(&rec).await.unwrap(), 2);
    let stale = store.save_location(&rec).await.unwrap_err();
    assert_eq!(stale.kind(), ErrorKind::VersionMismatch);
    assert_eq!(store.location(&id).await.unwrap().unwrap().name, "renamed");

    let mut ghost = location_record(&loc_id("ghost"));
    ghost.revision = 3;
    let e = store.save_location(&ghost).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(store.location(&loc_id("ghost")).await.unwrap().is_none());

    let mut current = store.location(&id).await.unwrap().unwrap();
    current.token_state = TokenState::Revoked;
    assert_eq!(store.save_location(&current).await.unwrap(), 3);
    let back = store.location(&id).await.unwrap().unwrap();
    assert_eq!(back.token_state, TokenState::Revoked);
    assert_eq!(back.revision, 3);
}

/// Neither the store's `Debug` nor its records' `Debug` nor its errors show a secret.
pub async fn secrets_stay_out_of_debug(factory: &dyn StoreFactory) {
    let Some(store) = fresh(factory, "secrets_stay_out_of_debug").await else {
        return;
    };
    let id = loc_id("sec");
    let mut rec = location_record(&id);
    rec.notification = Some(NotificationSettings::new(
        "https://h.example/x",
        Secret::new("NOTIF-AUTH-SECRET-9"),
        vec![],
    ));
    store.save_location(&rec).await.unwrap();
    let back = store.location(&id).await.unwrap().unwrap();
    for text in [
        format!("{store:?}"),
        format!("{back:?}"),
        format!("{:?}", store.locations().await.unwrap()),
        format!("{:?}", store.save_location(&rec).await.unwrap_err()),
        store.save_location(&rec).await.unwrap_err().to_string(),
    ] {
        assert!(!text.contains("TOKEN-SECRET"), "token leaked: {text}");
        assert!(
            !text.contains("NOTIF-AUTH-SECRET"),
            "auth token leaked: {text}"
        );
    }
}

/// Deleting a location removes everything of it and nothing of others.
pub async fn delete_location_cascades(factory: &dyn StoreFactory) {
    let Some(store) = fresh(factory, "delete_location_cascades").await else {
        return;
    };
    let (a, key) = location_with_app(&store, "del-a", 1, 10).await;
    let (b, _) = location_with_app(&store, "del-b", 1, 10).await;
    for loc in [&a, &b] {
        store
            .reserve(&Reservation::new(
                loc.clone(),
                key.clone(),
                vec![device(1)],
                format!("op-{loc}"),
                t(2),
            ))
            .await
            .unwrap();
        store
            .append_journal(
                loc,
                &[NewJournalRecord::new(t(2), "operator:x", "note", json!({}))],
            )
            .await
            .unwrap();
        put_user(
            &*store,
            loc,
            VppUser::new(ClientUserId::new("u-1").unwrap(), VppUserStatus::Registered),
            true,
            t(2),
        )
        .await
        .unwrap();
        store
            .insert_operation(&Operation::new(
                format!("oper-{loc}"),
                loc.clone(),
                OperationKind::Associate,
                json!({}),
                t(2),
            ))
            .await
            .unwrap();
        store
            .put_install_status(&InstallRecord::new(
                loc.clone(),
                device(1),
                key.clone(),
                InstallState::Queued,
                t(2),
            ))
            .await
            .unwrap();
        store
            .record_notification(loc, &NotificationId::new(format!("n-{loc}")).unwrap(), t(2))
            .await
            .unwrap();
    }
    assert!(store.delete_location(&a).await.unwrap());
    assert!(!store.delete_location(&a).await.unwrap());
    assert!(store.location(&a).await.unwrap().is_none());
    assert!(store.assets(&a).await.unwrap().is_empty());
    assert!(store.holdings_page(&a, None, 10).await.unwrap().is_empty());
    assert!(store
        .read_journal(&JournalQuery::new(a.clone(), 10))
        .await
        .unwrap()
        .is_empty());
    assert!(store.users_page(&a, None, 10).await.unwrap().is_empty());
    assert!(store
        .operation(&format!("oper-{a}"))
        .await
        .unwrap()
        .is_none());
    assert!(store
        .install_status(&a, &device(1), &key)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store.sync_status(&a).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );

    // Re-creating it starts empty, with a fresh journal.
    add_location(&store, "del-a").await;
    assert!(store.holdings_page(&a, None, 10).await.unwrap().is_empty());
    assert_eq!(
        store
            .append_journal(
                &a,
                &[NewJournalRecord::new(t(3), "operator:x", "note", json!({}))]
            )
            .await
            .unwrap(),
        1
    );
    assert!(store
        .record_notification(&a, &NotificationId::new(format!("n-{a}")).unwrap(), t(3))
        .await
        .unwrap());

    // The other location is untouched.
    assert_eq!(store.holdings_page(&b, None, 10).await.unwrap().len(), 1);
    assert_eq!(
        store
            .read_journal(&JournalQuery::new(b.clone(), 10))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(store
        .user(&b, &ClientUserId::new("u-1").unwrap())
        .await
        .unwrap()
        .is_some());
    assert!(store
        .operation(&format!("oper-{b}"))
        .await
        .unwrap()
        .is_some());
    assert!(store
        .install_status(&b, &device(1), &key)
        .await
        .unwrap()
        .is_some());
    assert!(!store
        .record_notification(&b, &NotificationId::new(format!("n-{b}")).unwrap(), t(3))
        .await
        .unwrap());
}

/// Every write for a location that does not exist fails with not found.
pub async fn writes_need_a_location(factory: &dyn StoreFactory) {
    let Some(store) = fresh(factory, "writes_need_a_location").await else {
        return;
    };
    let ghost = loc_id("ghost");
    let key = app(1);
    let nf = |r: Result<(), crate::StoreError>| {
        assert_eq!(r.unwrap_err().kind(), ErrorKind::NotFound);
    };
    nf(store
        .apply_sync_page(&ghost, &SyncPage::new(t(0)))
        .await
        .map(drop));
    nf(put_assets(&*store, &ghost, vec![app_asset(&key, 1, 0)], t(0)).await);
    nf(store
        .reserve(&Reservation::new(
            ghost.clone(),
            key.clone(),
            vec![device(1)],
            "op",
            t(0),
        ))
        .await
        .map(drop));
    nf(store
        .append_journal(&ghost, &[NewJournalRecord::new(t(0), "c", "k", json!(1))])
        .await
        .map(drop));
    nf(store
        .insert_operation(&Operation::new(
            "op",
            ghost.clone(),
            OperationKind::Revoke,
            json!({}),
            t(0),
        ))
        .await);
    nf(store
        .record_notification(&ghost, &NotificationId::new("n").unwrap(), t(0))
        .await
        .map(drop));
    nf(store
        .put_install_status(&InstallRecord::new(
            ghost.clone(),
            device(1),
            key.clone(),
            InstallState::Queued,
            t(0),
        ))
        .await);
    nf(store
        .record_sync_summary(&ghost, &crate::SyncSummary::success(t(0)))
        .await);
    nf(store.transition_holdings(&ghost, &[], &[], t(0)).await);
    nf(store.sync_status(&ghost).await.map(drop));

    // With the location but without the asset: holdings need their asset.
    let id = add_location(&store, "real").await;
    nf(put_holdings(
        &*store,
        &id,
        vec![HoldingUpsert::new(
            key.clone(),
            device(1),
            vppkit_core::HoldingStatus::Active,
        )],
        t(0),
    )
    .await);
    nf(store
        .reserve(&Reservation::new(
            id.clone(),
            key.clone(),
            vec![device(1)],
            "op",
            t(0),
        ))
        .await
        .map(drop));
    let mut page = SyncPage::new(t(0));
    page.asset_metadata = vec![(key.clone(), AssetMetadata::new("x"))];
    nf(store.apply_sync_page(&id, &page).await.map(drop));
}

/// Paged reads reject a zero limit.
pub async fn limits_must_be_positive(factory: &dyn StoreFactory) {
    let Some(store) = fresh(factory, "limits_must_be_positive").await else {
        return;
    };
    let (id, key) = location_with_app(&store, "lim", 1, 1).await;
    let inv = |kind: ErrorKind| assert_eq!(kind, ErrorKind::Invalid);
    inv(store.holdings_page(&id, None, 0).await.unwrap_err().kind());
    inv(store
        .holdings_by_asset(&id, &key, None, 0)
        .await
        .unwrap_err()
        .kind());
    inv(store.users_page(&id, None, 0).await.unwrap_err().kind());
    inv(store
        .read_journal(&JournalQuery::new(id.clone(), 0))
        .await
        .unwrap_err()
        .kind());
}

/// Assets: upsert, counts overwrite, metadata kept across upserts, key order.
pub async fn assets_round_trip(factory: &dyn StoreFactory) {
    let Some(store) = fresh(factory, "assets_round_trip").await else {
        return;
    };
    let id = add_location(&store, "assets").await;
    let a = app(20);
    let b = app(100);
    let book = vppkit_core::AssetKey::new(
        vppkit_core::AdamId::from(20),
        vppkit_core::PricingParam::Plus,
    );
    let mut book_asset = app_asset(&book, 5, 1);
    book_asset.product_type = vppkit_core::ProductType::Book;
    book_asset.device_assignable = false;
    book_asset.revocable = false;
    book_asset.supported_platforms = vec![];
    put_assets(
        &*store,
        &id,
        vec![
            app_asset(&a, 10, 2),
            app_asset(&b, 3, 0),
            book_asset.clone(),
        ],
        t(5),
    )
    .await
    .unwrap();
    let mut page = SyncPage::new(t(6));
    let mut meta = AssetMetadata::new("Keynote");
    meta.bundle_id = Some("com.apple.Keynote".into());
    meta.artwork_url = Some("https://is1.example/{w}x{h}.{f}".into());
    meta.version = Some("14.1".into());
    meta.platforms = vec!["iPad".into(), "iPhone".into()];
    page.asset_metadata = vec![(a.clone(), meta.clone())];
    store.apply_sync_page(&id, &page).await.unwrap();

    let got = store.asset(&id, &a).await.unwrap().unwrap();
    assert_eq!(got.asset, app_asset(&a, 10, 2));
    assert_eq!(got.metadata.as_ref(), Some(&meta));
    assert_eq!(got.updated_at, t(6));
    assert_eq!(
        store.asset(&id, &book).await.unwrap().unwrap().asset,
        book_asset
    );

    // Counts change; metadata stays.
    put_assets(&*store, &id, vec![app_asset(&a, 50, 0)], t(7))
        .await
        .unwrap();
    let got = store.asset(&id, &a).await.unwrap().unwrap();
    assert_eq!(got.asset.counts.total, 50);
    assert_eq!(got.metadata, Some(meta));

    // Order: bytes of adamId ("100" < "20"), then pricingParam ("PLUS" < "STDQ").
    let keys: Vec<_> = store
        .assets(&id)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.asset.key)
        .collect();
    assert_eq!(keys, vec![b.clone(), book, a]);
    assert!(store.asset(&id, &app(999)).await.unwrap().is_none());
    assert!(store.assets(&loc_id("other")).await.unwrap().is_empty());
}

/// Users: every field, `managed_by_us`, paging by id, deletion.
pub async fn users_round_trip(factory: &dyn StoreFactory) {
    let Some(store) = fresh(factory, "users_round_trip").await else {
        return;
    };
    let id = add_location(&store, "users").await;
    let mut full = VppUser::new(ClientUserId::new("u-b").unwrap(), VppUserStatus::Associated);
    full.email = Some("ana@example.org".into());
    full.managed_apple_id = Some("ana@school.example".into());
    full.invite_code = Some("0f1e2d".into());
    full.id_hash = Some("Qm9n".into());
    let mut page = SyncPage::new(t(3));
    page.upsert_users = vec![
        (full.clone(), true),
        (
            VppUser::new(ClientUserId::new("u-a").unwrap(), VppUserStatus::Registered),
            false,
        ),
        (
            VppUser::new(ClientUserId::new("u-c").unwrap(), VppUserStatus::Retired),
            true,
        ),
    ];
    store.apply_sync_page(&id, &page).await.unwrap();
    let got = store
        .user(&id, &full.client_user_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.user, full);
    assert!(got.managed_by_us);
    assert_eq!(got.updated_at, t(3));

    let first = store.users_page(&id, None, 2).await.unwrap();
    let ids: Vec<_> = first
        .iter()
        .map(|u| u.user.client_user_id.as_str().to_owned())
        .collect();
    assert_eq!(ids, ["u-a", "u-b"]);
    assert!(!first[0].managed_by_us);
    let rest = store
        .users_page(&id, Some(&first[1].user.client_user_id), 2)
        .await
        .unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].user.client_user_id.as_str(), "u-c");

    let mut page = SyncPage::new(t(4));
    page.delete_users = vec![
        ClientUserId::new("u-a").unwrap(),
        ClientUserId::new("u-zz").unwrap(),
    ];
    let mut changed = full.clone();
    changed.status = VppUserStatus::Retired;
    page.upsert_users = vec![(changed.clone(), false)];
    store.apply_sync_page(&id, &page).await.unwrap();
    assert!(store
        .user(&id, &ClientUserId::new("u-a").unwrap())
        .await
        .unwrap()
        .is_none());
    let got = store
        .user(&id, &full.client_user_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.user.status, VppUserStatus::Retired);
    assert!(!got.managed_by_us);
    assert_eq!(store.users_page(&id, None, 10).await.unwrap().len(), 2);
}
