//! The first operator is granted from the command line, with an audit event.

use fitflow_e2e::{AUDIT, IDENTITY};
use fitflow_e2e::{Sandbox, bearer};
use fitflow_proto::audit::ListEventsRequest;

#[tokio::test]
async fn grant_operator_bootstraps_an_operator_who_can_read_the_trail() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY, AUDIT]).await;
    let (user, email) = sandbox.register("First Operator").await;
    let before = sandbox.login(&email).await;
    let refused = sandbox
        .audit()
        .list_events(bearer(ListEventsRequest::default(), &before.access_token))
        .await;
    assert_eq!(refused.unwrap_err().code(), tonic::Code::PermissionDenied);

    let pool = fitflow_db::connect_system(&sandbox.db.system_url("identity"), "identity", 1)
        .await
        .unwrap();
    let granted = fitflow_identity::bootstrap::grant_operator(&pool, &email.to_uppercase())
        .await
        .unwrap();
    assert_eq!(granted.to_string(), user.id);

    // The operator role counts only in a session that completed MFA.
    let password_only = sandbox.login(&email).await;
    let (secret, _) = sandbox.enable_mfa(&password_only.access_token).await;
    let after = sandbox.mfa_login(&email, &secret).await;
    let listed = sandbox
        .audit()
        .list_events(bearer(ListEventsRequest::default(), &after.access_token))
        .await;
    assert!(listed.is_ok(), "{listed:?}");
    let admin = sandbox.db.admin_pool().await;
    let mut stored = 0_i64;
    for _ in 0..300 {
        stored = sqlx::query_scalar(
            "SELECT count(*) FROM audit.audit_log WHERE resource_id = $1 AND action = 'update' \
             AND actor_service = 'spiffe://fitflow/identity'",
        )
        .bind(granted)
        .fetch_one(&admin)
        .await
        .unwrap();
        if stored > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        stored, 1,
        "exactly one role-change event by the identity service"
    );
    stack.shutdown().await;
}
