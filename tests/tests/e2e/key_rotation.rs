//! Rotating the token signing key keeps issued tokens valid until they expire.

use base64::Engine as _;
use fitflow_e2e::Sandbox;
use fitflow_e2e::{AUDIT, IDENTITY};
use fitflow_proto::identity::ListPublicKeysRequest;
use tonic::Code;

fn kid(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    let header = String::from_utf8(decoded).unwrap();
    let (_, after) = header.split_once(r#""kid":""#).expect("a kid");
    after.split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn a_token_signed_before_a_key_rotation_still_works_and_new_tokens_use_the_new_key() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY, AUDIT]).await;
    let (_, email) = sandbox.register("Rotation").await;
    let before = sandbox.login(&email).await;
    // A trainer is refused on role (PERMISSION_DENIED), which proves the token verified.
    assert_eq!(
        sandbox.audit_answer(&before.access_token).await,
        Code::PermissionDenied
    );
    let old_kid = kid(&before.access_token);

    fitflow_testkit::vault()
        .await
        .rotate_transit_key(fitflow_identity::SIGNING_KEY)
        .await
        .expect("rotate the signing key");

    let after = sandbox.login(&email).await;
    let new_kid = kid(&after.access_token);
    assert_ne!(new_kid, old_kid);
    assert!(new_kid.ends_with(":v2"), "{new_kid}");
    assert_eq!(
        sandbox.audit_answer(&before.access_token).await,
        Code::PermissionDenied,
        "the old token still verifies"
    );
    // A verifier meeting an unknown kid refetches the published keys, at most
    // once per refetch interval (5 s), so the new key may take that long to arrive.
    let mut answer = sandbox.audit_answer(&after.access_token).await;
    for _ in 0..40 {
        if answer == Code::PermissionDenied {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        answer = sandbox.audit_answer(&after.access_token).await;
    }
    assert_eq!(answer, Code::PermissionDenied, "the new token verifies");
    assert_eq!(
        sandbox.audit_answer(&before.access_token).await,
        Code::PermissionDenied,
        "the old token verifies after the key set was refetched"
    );
    let published: Vec<String> = sandbox
        .identity()
        .list_public_keys(ListPublicKeysRequest {})
        .await
        .unwrap()
        .into_inner()
        .keys
        .into_iter()
        .map(|key| key.key_id)
        .collect();
    assert!(published.contains(&old_kid) && published.contains(&new_kid));
    stack.shutdown().await;
}
