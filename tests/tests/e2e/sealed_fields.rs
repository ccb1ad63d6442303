//! Sealed fields are ciphertext at rest, open through the service, and
//! cannot be moved to another row.

use fitflow_e2e::{AUDIT, IDENTITY};
use fitflow_e2e::{Sandbox, bearer};
use fitflow_proto::identity::GetCurrentUserRequest;
use tonic::Code;
use uuid::Uuid;

#[tokio::test]
async fn a_sealed_display_name_is_ciphertext_in_postgres_and_opens_only_in_its_own_row() {
    let sandbox = Sandbox::new().await;
    let admin = sandbox.db.admin_pool().await;
    let stack = sandbox.start(&[IDENTITY, AUDIT]).await;
    let secret_name = "Zebediah Quartermaine";
    let (owner, owner_email) = sandbox.register(secret_name).await;
    let owner_id: Uuid = owner.id.parse().unwrap();

    let whole_row: String =
        sqlx::query_scalar("SELECT row_to_json(u)::text FROM identity.users u WHERE id = $1")
            .bind(owner_id)
            .fetch_one(&admin)
            .await
            .unwrap();
    assert!(!whole_row.contains("Zebediah"), "plaintext found at rest");
    let sealed: Vec<u8> =
        sqlx::query_scalar("SELECT display_name_sealed FROM identity.users WHERE id = $1")
            .bind(owner_id)
            .fetch_one(&admin)
            .await
            .unwrap();
    assert!(!sealed.windows(8).any(|window| window == b"Zebediah"));

    let tokens = sandbox.login(&owner_email).await;
    let me = sandbox
        .identity()
        .get_current_user(bearer(GetCurrentUserRequest {}, &tokens.access_token))
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    assert_eq!(me.display_name, secret_name);

    // An attacker with write access to the table moves the ciphertext to their own row.
    let (attacker, attacker_email) = sandbox.register("Mallory").await;
    sqlx::query("UPDATE identity.users SET display_name_sealed = $1 WHERE id = $2")
        .bind(&sealed)
        .bind(attacker.id.parse::<Uuid>().unwrap())
        .execute(&admin)
        .await
        .unwrap();
    let attacker_tokens = sandbox.login(&attacker_email).await;
    let status = sandbox
        .identity()
        .get_current_user(bearer(
            GetCurrentUserRequest {},
            &attacker_tokens.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DataLoss);
    assert!(!status.message().contains("Zebediah"));
    stack.shutdown().await;
}
