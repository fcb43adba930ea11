//! Content tokens and notification auth tokens are sealed at rest.

use vppkit_core::Secret;
use vppkit_store::prelude::*;
use vppkit_store::testkit::{loc_id, location_record};
use vppkit_store::{ErrorKind, NotificationSettings, SecretCipher};

use crate::support::{cipher, raw, schema};

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn secrets_are_encrypted_and_bound_to_their_row() {
    let Some(schema) = schema().await else { return };
    let store = schema.open(cipher()).await.unwrap();
    let mut a = location_record(&loc_id("a"));
    a.notification = Some(NotificationSettings::new(
        "https://mdm.example/vpp",
        Secret::new("NOTIFY-SECRET-abc"),
        vec!["ASSET_COUNT".to_owned()],
    ));
    store.save_location(&a).await.unwrap();
    store
        .save_location(&location_record(&loc_id("b")))
        .await
        .unwrap();
    a.revision = 1;
    assert!(store.location(&a.id).await.unwrap().unwrap().same_as(&a));

    let mut conn = raw(&schema).await;
    let (token, notify): (Vec<u8>, Vec<u8>) = sqlx::query_as(
        "SELECT token_sealed, notification_token_sealed FROM locations WHERE id = 'a'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(!contains(&token, a.token.expose()));
    assert!(!contains(&token, "TOKEN-SECRET"));
    assert!(!contains(&notify, "NOTIFY-SECRET"));
    assert_eq!(token[0], 1, "AES-256-GCM scheme byte");

    // Another key cannot read them; the error names the secret, never its value.
    let other = schema
        .open(SecretCipher::from_key_bytes(&[1u8; 32]).unwrap())
        .await
        .unwrap();
    let e = other.location(&a.id).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Crypto);
    assert!(e.to_string().contains("content token"));
    assert!(!e.to_string().contains("TOKEN-SECRET"));
    assert!(!format!("{e:?}").contains("TOKEN-SECRET"));

    // A sealed token copied into another row does not open there.
    sqlx::query("UPDATE locations SET token_sealed = $1 WHERE id = 'b'")
        .bind(&token)
        .execute(&mut conn)
        .await
        .unwrap();
    let e = store.location(&loc_id("b")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Crypto);
    schema.drop_schema().await.unwrap();
}

#[tokio::test]
async fn clear_text_is_an_explicit_choice_and_not_mixed_up() {
    let Some(schema) = schema().await else { return };
    let clear = schema.open(SecretCipher::plaintext()).await.unwrap();
    let rec = location_record(&loc_id("clear"));
    clear.save_location(&rec).await.unwrap();
    let mut conn = raw(&schema).await;
    let token: Vec<u8> = sqlx::query_scalar("SELECT token_sealed FROM locations")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(
        contains(&token, rec.token.expose()),
        "stored in clear, as chosen"
    );
    assert_eq!(
        clear
            .location(&rec.id)
            .await
            .unwrap()
            .unwrap()
            .token
            .expose(),
        rec.token.expose()
    );
    // A store opened with a key refuses to read a clear value instead of trusting it.
    let keyed = schema.open(cipher()).await.unwrap();
    assert_eq!(
        keyed.locations().await.unwrap_err().kind(),
        ErrorKind::Crypto
    );
    // The store's Debug output shows neither secrets nor the key.
    let text = format!("{keyed:?}");
    assert!(!text.contains("TOKEN-SECRET"), "{text}");
    schema.drop_schema().await.unwrap();
}
