//! Registration, login and the current user, at the service boundary.

use fitflow_proto::identity::GetCurrentUserRequest;
use fitflow_proto::identity::identity_service_server::IdentityService as _;
use tonic::Code;

use crate::{PASSWORD, identity, reason, unique_email};

#[tokio::test]
async fn a_registered_user_logs_in_and_reads_their_own_account() {
    let identity = identity().await;
    let email = unique_email();
    let user = identity.register(&email).await.expect("register");
    let tokens = identity.login(&email, PASSWORD).await.expect("login");
    let request = identity
        .authorized(GetCurrentUserRequest {}, &tokens.access_token)
        .await;
    let current = identity
        .grpc
        .get_current_user(request)
        .await
        .expect("the current user")
        .into_inner()
        .user
        .expect("a user");
    assert_eq!(current.id, user.id);
    assert_eq!(current.email, email);
    assert_eq!(current.display_name, "Ana");
}

#[tokio::test]
async fn an_email_registers_once_whatever_its_case_or_spacing() {
    let identity = identity().await;
    let email = unique_email();
    identity.register(&email).await.expect("register");
    let again = identity
        .register(&format!("  {}  ", email.to_uppercase()))
        .await
        .expect_err("the same email again");
    assert_eq!(again.code(), Code::AlreadyExists);
}

#[tokio::test]
async fn an_unknown_email_and_a_wrong_password_get_the_same_answer() {
    let identity = identity().await;
    let email = unique_email();
    identity.register(&email).await.expect("register");
    let wrong_password = identity
        .login(&email, "not the password at all")
        .await
        .expect_err("a wrong password");
    let unknown_email = identity
        .login(&unique_email(), PASSWORD)
        .await
        .expect_err("an unknown email");
    assert_eq!(wrong_password.code(), unknown_email.code());
    assert_eq!(reason(&wrong_password), reason(&unknown_email));
    assert_eq!(wrong_password.message(), unknown_email.message());
}

#[tokio::test]
async fn reading_the_current_user_without_a_token_is_unauthenticated() {
    let identity = identity().await;
    let status = identity
        .grpc
        .get_current_user(tonic::Request::new(GetCurrentUserRequest {}))
        .await
        .expect_err("no principal");
    assert_eq!(status.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn a_weak_password_is_refused_with_a_field_violation() {
    use tonic_types::StatusExt as _;
    let identity = identity().await;
    let status = identity
        .grpc
        .register(tonic::Request::new(
            fitflow_proto::identity::RegisterRequest {
                email: unique_email(),
                password: "short".into(),
                display_name: "Ana".into(),
                roles: vec![],
                request_id: String::new(),
            },
        ))
        .await
        .expect_err("a short password");
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields: Vec<String> = status
        .get_details_bad_request()
        .map(|bad| {
            bad.field_violations
                .into_iter()
                .map(|violation| violation.field)
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(fields, ["password"]);
}
