//! Sealing, opening, rotation, shredding and blind indexes.

use std::time::Duration;

use fitflow_crypto::{CryptoError, FieldAddress, KeyRing, Vault, VaultSettings};
use fitflow_error::ApiError;
use secrecy::SecretString;
use uuid::Uuid;

use crate::{Harness, LONG_TTL, address, sealed_version};

const PLAINTEXT: &[u8] = b"torn ACL, left knee; avoid deep squats";

#[tokio::test]
async fn a_sealed_field_opens_for_the_same_tenant_and_address() {
    let harness = Harness::new("cryptotest", LONG_TTL).await;
    let (tenant, row) = (Uuid::new_v4(), Uuid::new_v4());
    let sealed = harness
        .keyring
        .seal(tenant, address(row), PLAINTEXT)
        .await
        .expect("seal");
    let opened = harness
        .keyring
        .open(tenant, address(row), &sealed)
        .await
        .expect("open");
    assert_eq!(opened.as_slice(), PLAINTEXT);

    // A replica with a cold cache unwraps the stored key and opens it too.
    let replica = harness.replica(LONG_TTL);
    let opened = replica
        .open(tenant, address(row), &sealed)
        .await
        .expect("open");
    assert_eq!(opened.as_slice(), PLAINTEXT);
}

#[tokio::test]
async fn a_ciphertext_contains_no_plaintext_and_the_database_holds_only_wrapped_keys() {
    let harness = Harness::new("cryptotest", LONG_TTL).await;
    let tenant = Uuid::new_v4();
    let sealed = harness
        .keyring
        .seal(tenant, address(Uuid::new_v4()), PLAINTEXT)
        .await
        .expect("seal");
    assert!(
        !sealed
            .windows(4)
            .any(|window| PLAINTEXT.windows(4).any(|part| part == window))
    );
    let again = harness
        .keyring
        .seal(tenant, address(Uuid::new_v4()), PLAINTEXT)
        .await
        .expect("seal");
    assert_ne!(sealed, again, "nonces are random");

    let rows = harness.key_rows(tenant).await;
    assert_eq!(rows.len(), 1);
    let (purpose, version, wrapped) = &rows[0];
    assert_eq!((purpose.as_str(), *version), ("seal", 1));
    assert!(
        wrapped.starts_with("vault:v"),
        "only the transit ciphertext is stored"
    );
}

#[tokio::test]
async fn a_ciphertext_moved_to_another_row_column_table_or_tenant_does_not_open() {
    let harness = Harness::new("cryptotest", LONG_TTL).await;
    let (tenant, other_tenant, row) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let sealed = harness
        .keyring
        .seal(tenant, address(row), PLAINTEXT)
        .await
        .expect("seal");
    // The other tenant has a key of the same version, so only the binding can refuse.
    harness
        .keyring
        .seal(other_tenant, address(row), b"x")
        .await
        .expect("seal");

    let elsewhere = [
        (tenant, address(Uuid::new_v4())),
        (
            tenant,
            FieldAddress {
                column: "email",
                ..address(row)
            },
        ),
        (
            tenant,
            FieldAddress {
                table: "trainers",
                ..address(row)
            },
        ),
        (other_tenant, address(row)),
    ];
    for (tenant_id, at) in elsewhere {
        let result = harness.keyring.open(tenant_id, at, &sealed).await;
        assert!(
            matches!(result, Err(CryptoError::Tampered)),
            "opened at {at:?}"
        );
    }
}

#[tokio::test]
async fn a_flipped_byte_does_not_open() {
    let harness = Harness::new("cryptotest", LONG_TTL).await;
    let (tenant, row) = (Uuid::new_v4(), Uuid::new_v4());
    let sealed = harness
        .keyring
        .seal(tenant, address(row), PLAINTEXT)
        .await
        .expect("seal");
    for index in [0, 4, 10, 17, sealed.len() / 2, sealed.len() - 1] {
        let mut edited = sealed.clone();
        edited[index] ^= 0x80;
        let result = harness.keyring.open(tenant, address(row), &edited).await;
        assert!(
            matches!(result, Err(CryptoError::Tampered | CryptoError::Malformed)),
            "byte {index}"
        );
    }
    let unreadable: ApiError = CryptoError::Tampered.into();
    assert_eq!(unreadable.code, tonic::Code::DataLoss);
}

#[tokio::test]
async fn after_rotate_new_seals_use_version_2_and_version_1_still_opens() {
    let harness = Harness::new("cryptotest", LONG_TTL).await;
    let (tenant, row) = (Uuid::new_v4(), Uuid::new_v4());
    let old = harness
        .keyring
        .seal(tenant, address(row), b"old")
        .await
        .expect("seal");
    assert_eq!(sealed_version(&old), 1);
    let index_before = harness
        .keyring
        .blind_index(tenant, "clients.email", b"a@b.ca")
        .await
        .expect("index");

    harness.keyring.rotate(tenant).await.expect("rotate");
    let new = harness
        .keyring
        .seal(tenant, address(row), b"new")
        .await
        .expect("seal");
    assert_eq!(sealed_version(&new), 2);

    let replica = harness.replica(LONG_TTL);
    for keyring in [&harness.keyring, &replica] {
        assert_eq!(
            keyring
                .open(tenant, address(row), &old)
                .await
                .expect("v1")
                .as_slice(),
            b"old"
        );
        assert_eq!(
            keyring
                .open(tenant, address(row), &new)
                .await
                .expect("v2")
                .as_slice(),
            b"new"
        );
    }
    // A replica that never saw the rotation picks up the newest version from the table.
    assert_eq!(
        sealed_version(
            &replica
                .seal(tenant, address(row), b"r")
                .await
                .expect("seal")
        ),
        2
    );

    let index_after = harness
        .keyring
        .blind_index(tenant, "clients.email", b"a@b.ca")
        .await
        .expect("index");
    assert_eq!(index_before, index_after, "the index key is never rotated");
    let purposes: Vec<(String, i32)> = harness
        .key_rows(tenant)
        .await
        .into_iter()
        .map(|(purpose, version, _)| (purpose, version))
        .collect();
    assert_eq!(
        purposes,
        [
            ("index".to_owned(), 1),
            ("seal".to_owned(), 1),
            ("seal".to_owned(), 2)
        ]
    );
}

#[tokio::test]
async fn old_wrapped_keys_still_unwrap_after_the_transit_key_rotates_and_the_cache_expires() {
    let short_ttl = Duration::from_millis(50);
    let harness = Harness::new("cryptotest-kek-rotation", short_ttl).await;
    let (tenant, row) = (Uuid::new_v4(), Uuid::new_v4());
    let sealed = harness
        .keyring
        .seal(tenant, address(row), PLAINTEXT)
        .await
        .expect("seal");

    harness
        .vault
        .rotate_transit_key("fitflow-cryptotest-kek-rotation")
        .await
        .expect("rotate the KEK");
    tokio::time::sleep(short_ttl * 3).await;

    let opened = harness
        .keyring
        .open(tenant, address(row), &sealed)
        .await
        .expect("open");
    assert_eq!(opened.as_slice(), PLAINTEXT);
    // New data keys are wrapped with the newest KEK version.
    harness.keyring.rotate(tenant).await.expect("rotate");
    let rows = harness.key_rows(tenant).await;
    let (_, _, newest_wrapped) = rows.last().expect("rows");
    let (_, _, oldest_wrapped) = rows.first().expect("rows");
    assert_ne!(
        newest_wrapped.split(':').nth(1),
        oldest_wrapped.split(':').nth(1),
        "the new data key is wrapped by a newer KEK version"
    );
}

#[tokio::test]
async fn a_shredded_tenant_never_opens_again() {
    let harness = Harness::new("cryptotest", LONG_TTL).await;
    let (tenant, survivor, row) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let sealed = harness
        .keyring
        .seal(tenant, address(row), PLAINTEXT)
        .await
        .expect("seal");
    let kept = harness
        .keyring
        .seal(survivor, address(row), PLAINTEXT)
        .await
        .expect("seal");
    harness
        .keyring
        .blind_index(tenant, "clients.email", b"a@b.ca")
        .await
        .expect("index");

    harness.keyring.shred(tenant).await.expect("shred");

    assert!(harness.key_rows(tenant).await.is_empty());
    for keyring in [&harness.keyring, &harness.replica(LONG_TTL)] {
        let result = keyring.open(tenant, address(row), &sealed).await;
        assert!(matches!(result, Err(CryptoError::Tampered)));
    }
    // A later seal gets a brand-new key; the old ciphertext stays unreadable.
    harness
        .keyring
        .seal(tenant, address(row), b"fresh")
        .await
        .expect("seal");
    let result = harness.keyring.open(tenant, address(row), &sealed).await;
    assert!(matches!(result, Err(CryptoError::Tampered)));
    // Other tenants are untouched.
    let opened = harness
        .keyring
        .open(survivor, address(row), &kept)
        .await
        .expect("open");
    assert_eq!(opened.as_slice(), PLAINTEXT);
}

#[tokio::test]
async fn a_blind_indexer_computes_the_same_indexes_without_another_lookup() {
    let harness = Harness::new("cryptotest", LONG_TTL).await;
    let tenant = Uuid::new_v4();
    // Fetched first, on a cold cache: the key is created here.
    let indexer = harness
        .keyring
        .blind_indexer(tenant)
        .await
        .expect("indexer");
    let index = harness
        .keyring
        .blind_index(tenant, "clients.email", b"a@b.ca")
        .await
        .expect("index");
    assert_eq!(indexer.index("clients.email", b"a@b.ca"), index);
    assert_ne!(indexer.index("clients.phone", b"a@b.ca"), index);
    let replica = harness.replica(LONG_TTL);
    let replica_indexer = replica.blind_indexer(tenant).await.expect("indexer");
    assert_eq!(replica_indexer.index("clients.email", b"a@b.ca"), index);
    assert!(
        format!("{indexer:?}").contains("redacted"),
        "the key is never printed"
    );
}

#[tokio::test]
async fn a_blind_index_is_stable_but_differs_across_tenants_and_scopes() {
    let harness = Harness::new("cryptotest", LONG_TTL).await;
    let (tenant, other_tenant) = (Uuid::new_v4(), Uuid::new_v4());
    let index = harness
        .keyring
        .blind_index(tenant, "clients.email", b"a@b.ca")
        .await
        .expect("index");
    assert_eq!(index.len(), 32);

    let replica = harness.replica(LONG_TTL);
    assert_eq!(
        replica
            .blind_index(tenant, "clients.email", b"a@b.ca")
            .await
            .expect("index"),
        index
    );
    harness.keyring.rotate(tenant).await.expect("rotate");
    assert_eq!(
        harness
            .keyring
            .blind_index(tenant, "clients.email", b"a@b.ca")
            .await
            .expect("index"),
        index
    );

    let other_tenant_index = harness
        .keyring
        .blind_index(other_tenant, "clients.email", b"a@b.ca")
        .await
        .expect("index");
    let other_scope_index = harness
        .keyring
        .blind_index(tenant, "clients.phone", b"a@b.ca")
        .await
        .expect("index");
    assert_ne!(index, other_tenant_index);
    assert_ne!(index, other_scope_index);
}

#[tokio::test]
async fn an_unreachable_openbao_without_a_cached_key_fails_closed() {
    let harness = Harness::new("cryptotest", LONG_TTL).await;
    let (tenant, row) = (Uuid::new_v4(), Uuid::new_v4());
    let sealed = harness
        .keyring
        .seal(tenant, address(row), PLAINTEXT)
        .await
        .expect("seal");

    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let unreachable = Vault::connect(&VaultSettings {
        addr: format!("http://127.0.0.1:{closed_port}"),
        token: SecretString::from("irrelevant"),
    })
    .expect("settings are valid");
    let cold = KeyRing::new(unreachable, harness.pool.clone(), "cryptotest", LONG_TTL);

    let open = cold.open(tenant, address(row), &sealed).await;
    assert!(matches!(open, Err(CryptoError::Unavailable(_))), "{open:?}");
    let new_tenant = Uuid::new_v4();
    let seal = cold.seal(new_tenant, address(row), PLAINTEXT).await;
    assert!(matches!(seal, Err(CryptoError::Unavailable(_))), "{seal:?}");
    assert!(
        harness.key_rows(new_tenant).await.is_empty(),
        "nothing was written"
    );
    let index = cold
        .blind_index(new_tenant, "clients.email", b"a@b.ca")
        .await;
    assert!(matches!(index, Err(CryptoError::Unavailable(_))));

    let api: ApiError = seal.expect_err("unavailable").into();
    assert_eq!(api.code, tonic::Code::Unavailable);
    assert_eq!(api.reason, "KEYS_UNAVAILABLE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_seals_for_one_tenant_create_exactly_one_key_row() {
    let harness = Harness::new("cryptotest", LONG_TTL).await;
    let tenant = Uuid::new_v4();
    let replicas: Vec<KeyRing> = (0..8).map(|_| harness.replica(LONG_TTL)).collect();
    let seals = replicas.iter().enumerate().map(|(index, keyring)| {
        let row = Uuid::from_u128(index as u128 + 1);
        async move { (row, keyring.seal(tenant, address(row), PLAINTEXT).await) }
    });
    let sealed = futures::future::join_all(seals).await;

    let rows = harness.key_rows(tenant).await;
    assert_eq!(
        rows.len(),
        1,
        "exactly one key version: {:?}",
        rows.iter().map(|r| r.1).collect::<Vec<_>>()
    );
    for (row, result) in sealed {
        let ciphertext = result.expect("every concurrent seal succeeds");
        assert_eq!(sealed_version(&ciphertext), 1);
        let opened = harness
            .keyring
            .open(tenant, address(row), &ciphertext)
            .await
            .expect("open");
        assert_eq!(opened.as_slice(), PLAINTEXT);
    }
}
