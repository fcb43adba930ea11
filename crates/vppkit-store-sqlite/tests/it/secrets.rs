//! Secrets at rest: sealed in the file, a wrong key is a typed error.

use sqlx::Row;
use vppkit_core::Secret;
use vppkit_store::prelude::*;
use vppkit_store::testkit::{loc_id, location_record};
use vppkit_store::{ErrorKind, NotificationSettings, SecretCipher};
use vppkit_store_sqlite::SqliteStore;

#[tokio::test]
async fn tokens_are_encrypted_and_a_wrong_key_fails_typed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let key = SecretCipher::generate_key_base64();
    let store = SqliteStore::connect(&url, SecretCipher::from_base64(key.expose()).unwrap())
        .await
        .unwrap();
    let id = loc_id("enc");
    let mut rec = location_record(&id);
    rec.notification = Some(NotificationSettings::new(
        "https://h.example/hook",
        Secret::new("NOTIF-AUTH-SECRET-77"),
        vec!["ASSET_COUNT".into()],
    ));
    store.save_location(&rec).await.unwrap();
    store.close().await;

    // The raw columns hold neither secret, and the file as a whole does not either.
    let raw = sqlx::SqlitePool::connect(&url).await.unwrap();
    let row = sqlx::query("SELECT token, notification_auth_token FROM locations")
        .fetch_one(&raw)
        .await
        .unwrap();
    for col in ["token", "notification_auth_token"] {
        let blob: Vec<u8> = row.get(col);
        let text = String::from_utf8_lossy(&blob);
        assert!(!text.contains("TOKEN-SECRET"), "{col} in clear");
        assert!(!text.contains("NOTIF-AUTH-SECRET"), "{col} in clear");
    }
    raw.close().await;
    let bytes = std::fs::read(&path).unwrap();
    let all = String::from_utf8_lossy(&bytes);
    assert!(!all.contains("TOKEN-SECRET") && !all.contains("NOTIF-AUTH-SECRET"));

    // The right key reads them back.
    let store = SqliteStore::connect(&url, SecretCipher::from_base64(key.expose()).unwrap())
        .await
        .unwrap();
    let back = store.location(&id).await.unwrap().unwrap();
    assert_eq!(back.token.expose(), rec.token.expose());
    assert_eq!(
        back.notification.unwrap().auth_token.expose(),
        "NOTIF-AUTH-SECRET-77"
    );
    store.close().await;

    // A wrong key, or no key, is a typed error that names no secret.
    let wrong = SqliteStore::connect(&url, SecretCipher::from_key_bytes(&[1u8; 32]).unwrap())
        .await
        .unwrap();
    let e = wrong.location(&id).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Crypto);
    assert!(!e.to_string().contains("TOKEN-SECRET"));
    assert_eq!(
        wrong.locations().await.unwrap_err().kind(),
        ErrorKind::Crypto
    );
    let plain = SqliteStore::connect(&url, SecretCipher::plaintext())
        .await
        .unwrap();
    assert_eq!(
        plain.location(&id).await.unwrap_err().kind(),
        ErrorKind::Crypto
    );
    assert!(!format!("{plain:?}").contains("TOKEN-SECRET"));
}

#[tokio::test]
async fn plaintext_is_an_explicit_choice_that_still_round_trips() {
    let store = SqliteStore::in_memory(SecretCipher::plaintext())
        .await
        .unwrap();
    let id = loc_id("plain");
    store.save_location(&location_record(&id)).await.unwrap();
    let back = store.location(&id).await.unwrap().unwrap();
    assert_eq!(back.token.expose(), location_record(&id).token.expose());
}
