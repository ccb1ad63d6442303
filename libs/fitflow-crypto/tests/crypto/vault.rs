//! The OpenBao client: transit keys and ed25519 signatures.

use fitflow_crypto::TransitKeyKind;
use ring::signature::{ED25519, UnparsedPublicKey};

#[tokio::test]
async fn an_ed25519_signature_verifies_against_the_published_public_key() {
    let vault = fitflow_testkit::vault().await;
    let key = "crypto-test-signing";
    vault
        .ensure_transit_key(key, TransitKeyKind::Ed25519)
        .await
        .expect("create");
    vault
        .ensure_transit_key(key, TransitKeyKind::Ed25519)
        .await
        .expect("ensuring an existing key is a no-op");

    let message = b"header.payload";
    let (version, signature) = vault.sign_ed25519(key, message).await.expect("sign");
    assert_eq!(signature.len(), 64);
    let public_keys = vault.ed25519_public_keys(key).await.expect("public keys");
    let (_, public_key) = public_keys
        .iter()
        .find(|(published, _)| *published == version)
        .expect("the signing version is published");
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(message, &signature)
        .expect("the signature verifies");
    assert!(
        UnparsedPublicKey::new(&ED25519, public_key)
            .verify(b"another message", &signature)
            .is_err()
    );
}

#[tokio::test]
async fn after_rotation_signatures_use_the_new_version_and_every_version_stays_published() {
    let vault = fitflow_testkit::vault().await;
    let key = "crypto-test-signing-rotated";
    vault
        .ensure_transit_key(key, TransitKeyKind::Ed25519)
        .await
        .expect("create");
    let (first_version, _) = vault.sign_ed25519(key, b"m").await.expect("sign");
    vault.rotate_transit_key(key).await.expect("rotate");
    let (second_version, signature) = vault.sign_ed25519(key, b"m").await.expect("sign");
    assert_eq!(second_version, first_version + 1);

    let public_keys = vault.ed25519_public_keys(key).await.expect("public keys");
    let versions: Vec<u64> = public_keys.iter().map(|(version, _)| *version).collect();
    assert_eq!(versions, [first_version, second_version]);
    let (_, newest) = &public_keys[1];
    UnparsedPublicKey::new(&ED25519, newest)
        .verify(b"m", &signature)
        .expect("verifies with the new key");
    let (_, oldest) = &public_keys[0];
    assert!(
        UnparsedPublicKey::new(&ED25519, oldest)
            .verify(b"m", &signature)
            .is_err()
    );
}

#[tokio::test]
async fn public_keys_of_a_symmetric_key_are_refused() {
    let vault = fitflow_testkit::vault().await;
    let key = "crypto-test-symmetric";
    vault
        .ensure_transit_key(key, TransitKeyKind::Aes256Gcm96)
        .await
        .expect("create");
    assert!(vault.ed25519_public_keys(key).await.is_err());
}
