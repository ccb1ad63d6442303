//! Retrying after a lost response: `Register` with a `request_id`, and
//! `RefreshToken` within its retry window.

use fitflow_e2e::{IDENTITY, PASSWORD, Sandbox};
use fitflow_proto::identity::{
    RefreshTokenRequest, RegisterRequest, RegisterResponse, TokenPair, VerifyEmailRequest,
};
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
    // The retry mails a fresh code (the first mail may be lost), and it works.
    assert!(
        retried.email_verification_token.is_empty() && first.email_verification_token.is_empty()
    );
    let first_code = sandbox.mailed_code(&email, "Verify your email", 1).await;
    let retried_code = sandbox.mailed_code(&email, "Verify your email", 2).await;
    assert_ne!(first_code, retried_code);
    sandbox
        .identity()
        .verify_email(VerifyEmailRequest {
            token: retried_code,
        })
        .await
        .expect("the retry's code verifies the email");

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

async fn refresh(sandbox: &Sandbox, refresh_token: &str) -> Result<TokenPair, tonic::Status> {
    sandbox
        .identity()
        .refresh_token(RefreshTokenRequest {
            refresh_token: refresh_token.into(),
        })
        .await
        .map(|response| response.into_inner().tokens.expect("tokens"))
}

/// Moves the spending of `refresh_token` a minute into the past, beyond the
/// retry window (no sleeping, no timing assertion).
async fn spend_long_ago(sandbox: &Sandbox, refresh_token: &str) {
    let admin = sandbox.db.admin_pool().await;
    let moved = sqlx::query(
        "UPDATE identity.refresh_tokens SET spent_at = spent_at - interval '1 minute' \
         WHERE token_hash = $1 AND spent_at IS NOT NULL",
    )
    .bind(fitflow_identity::domain::hash_token(refresh_token))
    .execute(&admin)
    .await
    .expect("backdate the refresh");
    assert_eq!(moved.rows_affected(), 1);
}

#[tokio::test]
async fn a_lost_refresh_response_retried_within_the_window_gets_a_fresh_pair_of_the_same_session() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (_, email) = sandbox.register("Flaky Network").await;
    let login = sandbox.login(&email).await;

    let lost = refresh(&sandbox, &login.refresh_token)
        .await
        .expect("a response that never arrives");
    let retried = refresh(&sandbox, &login.refresh_token)
        .await
        .expect("the retry of a lost response is answered");
    assert_eq!(retried.session_id, login.session_id);
    assert_eq!(lost.session_id, login.session_id);
    assert_ne!(retried.refresh_token, lost.refresh_token);
    assert_ne!(retried.access_token, lost.access_token);

    // The retried pair is the session's live one.
    let next = refresh(&sandbox, &retried.refresh_token)
        .await
        .expect("the retried pair refreshes");
    assert_eq!(next.session_id, login.session_id);

    // The lost pair was revoked: whoever presents it holds a response the
    // client never received, which is reuse.
    let stolen = refresh(&sandbox, &lost.refresh_token).await.unwrap_err();
    assert_eq!(stolen.code(), Code::Unauthenticated);
    assert_eq!(reason(&stolen), "REFRESH_TOKEN_REUSED");
    let after = refresh(&sandbox, &next.refresh_token).await.unwrap_err();
    assert_eq!(reason(&after), "REFRESH_TOKEN_INVALID");
    stack.shutdown().await;
}

#[tokio::test]
async fn a_refresh_token_retried_a_second_time_revokes_the_session() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (_, email) = sandbox.register("Twice Retried").await;
    let login = sandbox.login(&email).await;
    refresh(&sandbox, &login.refresh_token)
        .await
        .expect("first");
    let retried = refresh(&sandbox, &login.refresh_token)
        .await
        .expect("the one retry");
    let again = refresh(&sandbox, &login.refresh_token).await.unwrap_err();
    assert_eq!(reason(&again), "REFRESH_TOKEN_REUSED");
    let revoked = refresh(&sandbox, &retried.refresh_token).await.unwrap_err();
    assert_eq!(reason(&revoked), "REFRESH_TOKEN_INVALID");
    stack.shutdown().await;
}

#[tokio::test]
async fn a_spent_refresh_token_presented_after_its_new_pair_was_used_revokes_the_session() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (_, email) = sandbox.register("Stolen Token").await;
    let login = sandbox.login(&email).await;
    let received = refresh(&sandbox, &login.refresh_token)
        .await
        .expect("received");
    let used = refresh(&sandbox, &received.refresh_token)
        .await
        .expect("the new pair is used");
    // Within seconds, but the response plainly arrived: this is a thief.
    let replayed = refresh(&sandbox, &login.refresh_token).await.unwrap_err();
    assert_eq!(reason(&replayed), "REFRESH_TOKEN_REUSED");
    let revoked = refresh(&sandbox, &used.refresh_token).await.unwrap_err();
    assert_eq!(reason(&revoked), "REFRESH_TOKEN_INVALID");
    stack.shutdown().await;
}

#[tokio::test]
async fn a_spent_refresh_token_presented_after_the_retry_window_revokes_the_session() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (_, email) = sandbox.register("Late Retry").await;
    let login = sandbox.login(&email).await;
    let issued = refresh(&sandbox, &login.refresh_token)
        .await
        .expect("refreshed");
    spend_long_ago(&sandbox, &login.refresh_token).await;
    let late = refresh(&sandbox, &login.refresh_token).await.unwrap_err();
    assert_eq!(late.code(), Code::Unauthenticated);
    assert_eq!(reason(&late), "REFRESH_TOKEN_REUSED");
    let revoked = refresh(&sandbox, &issued.refresh_token).await.unwrap_err();
    assert_eq!(reason(&revoked), "REFRESH_TOKEN_INVALID");
    stack.shutdown().await;
}
