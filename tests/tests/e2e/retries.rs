//! Retrying after a lost response: `Register` with a `request_id`, and
//! `RefreshToken` within its retry window.

use fitflow_e2e::{IDENTITY, PASSWORD, Sandbox};
use fitflow_proto::identity::{RegisterRequest, RegisterResponse, VerifyEmailRequest};
use tonic::Code;

use crate::identity_support::{reason, violated_fields};

fn sign_up(email: &str, request_id: &str) -> RegisterRequest {
    RegisterRequest {
        email: email.into(),
        password: PASSWORD.into(),
        display_name: "Retrying Trainer".into(),
        roles: vec![],
        request_id: request_id.into(),
    }
}

async fn register(
    sandbox: &Sandbox,
    request: RegisterRequest,
) -> Result<RegisterResponse, tonic::Status> {
    sandbox
        .identity()
        .register(request)
        .await
        .map(tonic::Response::into_inner)
}

fn fresh_email() -> String {
    format!("retry-{}@example.com", uuid::Uuid::new_v4())
}

#[tokio::test]
async fn a_retried_registration_returns_the_first_account_instead_of_email_taken() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let email = fresh_email();
    let request_id = uuid::Uuid::new_v4().to_string();

    let first = register(&sandbox, sign_up(&email, &request_id))
        .await
        .expect("created");
    let retried = register(&sandbox, sign_up(&email, &request_id))
        .await
        .expect("a retry answers like the first call");
    let (first_user, retried_user) = (first.user.unwrap(), retried.user.unwrap());
    assert_eq!(retried_user.id, first_user.id);
    assert_eq!(retried_user.email, first_user.email);
    // The retry's verification token works (the first response was lost).
    assert!(!retried.email_verification_token.is_empty());
    assert_ne!(
        retried.email_verification_token,
        first.email_verification_token
    );
    sandbox
        .identity()
        .verify_email(VerifyEmailRequest {
            token: retried.email_verification_token,
        })
        .await
        .expect("the retry's token verifies the email");

    // One account.
    let admin = sandbox.db.admin_pool().await;
    let accounts: i64 = sqlx::query_scalar("SELECT count(*) FROM identity.users WHERE email = $1")
        .bind(&email)
        .fetch_one(&admin)
        .await
        .unwrap();
    assert_eq!(accounts, 1);

    // Without the request id, the same sign-up is what it always was.
    let again = register(&sandbox, sign_up(&email, "")).await.unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists);
    assert_eq!(reason(&again), "EMAIL_TAKEN");
    stack.shutdown().await;
}

#[tokio::test]
async fn two_identical_registrations_at_once_create_one_account() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let email = fresh_email();
    let request_id = uuid::Uuid::new_v4().to_string();
    let (a, b) = tokio::join!(
        register(&sandbox, sign_up(&email, &request_id)),
        register(&sandbox, sign_up(&email, &request_id)),
    );
    let (a, b) = (a.expect("first"), b.expect("second"));
    assert_eq!(a.user.unwrap().id, b.user.unwrap().id);
    stack.shutdown().await;
}

#[tokio::test]
async fn a_request_id_sent_again_with_a_different_request_is_refused() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let email = fresh_email();
    let request_id = uuid::Uuid::new_v4().to_string();
    register(&sandbox, sign_up(&email, &request_id))
        .await
        .expect("created");

    let other_name = RegisterRequest {
        display_name: "Someone Else".into(),
        ..sign_up(&email, &request_id)
    };
    let other_password = RegisterRequest {
        password: "another long passphrase here".into(),
        ..sign_up(&email, &request_id)
    };
    let other_email = sign_up(&fresh_email(), &request_id);
    for different in [other_name, other_password, other_email] {
        let refused = register(&sandbox, different).await.unwrap_err();
        assert_eq!(refused.code(), Code::AlreadyExists);
        assert_eq!(reason(&refused), "REQUEST_ID_REUSED");
    }
    stack.shutdown().await;
}

#[tokio::test]
async fn a_request_id_that_is_not_a_canonical_uuid_is_refused_with_the_other_bad_fields() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    for bad in [
        "retry-1".to_owned(),
        uuid::Uuid::nil().to_string(),
        uuid::Uuid::new_v4().simple().to_string(),
        format!("{}\0", uuid::Uuid::new_v4()),
    ] {
        let refused = register(&sandbox, sign_up(&fresh_email(), &bad))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{bad:?}");
        assert_eq!(violated_fields(&refused), ["request_id"], "{bad:?}");
    }
    let both = register(&sandbox, sign_up("not an email", "retry-1"))
        .await
        .unwrap_err();
    let mut fields = violated_fields(&both);
    fields.sort();
    assert_eq!(fields, ["email", "request_id"]);
    stack.shutdown().await;
}
