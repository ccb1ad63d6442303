//! A token issued by identity is accepted by another service; forged ones are not.

use base64::Engine as _;
use fitflow_e2e::{AUDIT, IDENTITY};
use fitflow_e2e::{Sandbox, bearer};

use crate::identity_support::reason;
use fitflow_proto::audit::ListEventsRequest;
use tonic::Code;

#[tokio::test]
async fn a_token_from_identity_is_accepted_by_audit_and_forged_ones_are_refused() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY, AUDIT]).await;
    let (_, email) = sandbox.register("Token Tester").await;
    let tokens = sandbox.login(&email).await;

    // Accepted: audit knows who it is (a trainer) and refuses on role, not on the token.
    let accepted = sandbox
        .audit()
        .list_events(bearer(ListEventsRequest::default(), &tokens.access_token))
        .await
        .expect_err("a trainer is not an auditor");
    assert_eq!(accepted.code(), Code::PermissionDenied, "{accepted:?}");

    // Tampered: roles elevated to operator in the payload, signature kept.
    let parts: Vec<&str> = tokens.access_token.split('.').collect();
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = String::from_utf8(engine.decode(parts[1]).unwrap()).unwrap();
    let elevated = payload.replace(r#""roles":["trainer"]"#, r#""roles":["operator"]"#);
    assert_ne!(payload, elevated, "the payload carries the trainer role");
    let tampered = format!("{}.{}.{}", parts[0], engine.encode(elevated), parts[2]);
    assert_eq!(sandbox.audit_answer(&tampered).await, Code::Unauthenticated);

    // alg: none, with the same claims and no signature.
    let header = engine.encode(br#"{"alg":"none","typ":"JWT","kid":"fitflow-identity-jwt:v1"}"#);
    let unsigned = format!("{header}.{}.", parts[1]);
    assert_eq!(sandbox.audit_answer(&unsigned).await, Code::Unauthenticated);

    // Expired: properly signed by the real transit key, but an hour old.
    let vault = fitflow_testkit::vault().await;
    let signer = fitflow_identity::TokenSigner::new(vault).await.unwrap();
    let mut claims = fitflow_identity::domain::access_claims(
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
        &[fitflow_auth::Role::Operator],
        &fitflow_identity::domain::session_amr("totp"),
        &fitflow_identity::structure::ActingFor::default(),
        chrono::Utc::now() - chrono::Duration::hours(1),
    );
    claims.exp = (chrono::Utc::now() - chrono::Duration::minutes(30)).timestamp();
    let expired = signer.sign(&claims).await.unwrap();
    let status = sandbox
        .audit()
        .list_events(bearer(ListEventsRequest::default(), &expired))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(reason(&status), "TOKEN_EXPIRED");

    // And the same signer with fresh claims proves the expired one failed only on time.
    let fresh = fitflow_identity::domain::access_claims(
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
        &[fitflow_auth::Role::Operator],
        &fitflow_identity::domain::session_amr("totp"),
        &fitflow_identity::structure::ActingFor::default(),
        chrono::Utc::now(),
    );
    let operator_token = fitflow_identity::TokenSigner::new(fitflow_testkit::vault().await)
        .await
        .unwrap()
        .sign(&fresh)
        .await
        .unwrap();
    assert_eq!(sandbox.audit_answer(&operator_token).await, Code::Ok);
    stack.shutdown().await;
}

#[tokio::test]
async fn a_malformed_authorization_header_is_refused_before_any_handler_runs() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let mut request = tonic::Request::new(fitflow_proto::identity::GetCurrentUserRequest {});
    request
        .metadata_mut()
        .insert("authorization", "Basic dXNlcjpwYXNz".parse().unwrap());
    let status = sandbox
        .identity()
        .get_current_user(request)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let status = sandbox
        .identity()
        .get_current_user(fitflow_proto::identity::GetCurrentUserRequest {})
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(reason(&status), "TOKEN_REQUIRED");
    stack.shutdown().await;
}

#[tokio::test]
async fn a_request_with_a_deadline_verifies_its_token_within_it() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY, AUDIT]).await;
    let (_, email) = sandbox.register("Deadline Tester").await;
    let tokens = sandbox.login(&email).await;
    // Audit has no keys yet: verifying fetches them from identity under the caller's deadline.
    let mut request = bearer(ListEventsRequest::default(), &tokens.access_token);
    request.set_timeout(std::time::Duration::from_secs(5));
    let status = sandbox.audit().list_events(request).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    stack.shutdown().await;
}
