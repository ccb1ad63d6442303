//! Registration, email verification and input validation of the identity service.

use fitflow_e2e::IDENTITY;
use fitflow_e2e::{PASSWORD, Sandbox, bearer};
use fitflow_proto::identity::{
    ListSessionsRequest, LoginRequest, RegisterRequest, ResendVerificationRequest,
    RevokeSessionRequest, SuspendUserRequest, VerifyEmailRequest,
};
use tonic::Code;

use crate::identity_support::{reason, violated_fields};

fn registration(email: &str) -> RegisterRequest {
    RegisterRequest {
        email: email.into(),
        password: PASSWORD.into(),
        display_name: "Verifier".into(),
        roles: vec![],
        request_id: String::new(),
    }
}

async fn resend(sandbox: &Sandbox, email: &str) {
    sandbox
        .identity()
        .resend_verification(ResendVerificationRequest {
            email: email.into(),
        })
        .await
        .expect("answered OK whatever the address");
}

#[tokio::test]
async fn a_resent_verification_code_is_mailed_at_most_once_a_minute_and_only_to_an_unverified_account()
 {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let email = format!("resend-{}@example.com", uuid::Uuid::new_v4());
    sandbox
        .identity()
        .register(registration(&email))
        .await
        .expect("register");
    let first = sandbox.mailed_code(&email, "Verify your email", 1).await;

    // At once: nothing more is mailed (no mailbox flooding).
    resend(&sandbox, &email).await;
    // A minute later (moved back in the database rather than waited for).
    let admin = sandbox.db.admin_pool().await;
    sqlx::query(
        "UPDATE identity.email_verifications SET expires_at = expires_at - interval '2 minutes' \
         WHERE user_id = (SELECT id FROM identity.users WHERE email = $1)",
    )
    .bind(&email)
    .execute(&admin)
    .await
    .expect("age the first code");
    resend(&sandbox, &email).await;
    let second = sandbox.mailed_code(&email, "Verify your email", 2).await;
    assert_ne!(first, second);
    assert_eq!(
        sandbox.mail.received_by(&email).len(),
        2,
        "the immediate resend mailed nothing"
    );

    // Unknown addresses get the same answer and no mail.
    resend(&sandbox, "nobody-at-all@example.com").await;
    sandbox
        .identity()
        .verify_email(VerifyEmailRequest { token: second })
        .await
        .expect("the resent code verifies");
    // Verified: a resend mails nothing, however long after.
    sqlx::query(
        "UPDATE identity.email_verifications SET expires_at = expires_at - interval '1 hour'",
    )
    .execute(&admin)
    .await
    .expect("age every code");
    resend(&sandbox, &email).await;
    let refused = sandbox
        .identity()
        .resend_verification(ResendVerificationRequest {
            email: "not an email\0".into(),
        })
        .await
        .expect_err("not an address");
    assert_eq!(violated_fields(&refused), ["email"]);
    assert_eq!(sandbox.mail.received_by(&email).len(), 2);
    assert!(
        sandbox
            .mail
            .received_by("nobody-at-all@example.com")
            .is_empty()
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn an_email_verification_code_is_mailed_never_returned_and_works_once() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let email = format!("verify-{}@example.com", uuid::Uuid::new_v4());
    let registered = sandbox
        .identity()
        .register(registration(&email))
        .await
        .unwrap()
        .into_inner();
    assert!(!registered.user.unwrap().email_verified);
    assert!(
        registered.email_verification_token.is_empty(),
        "the code is mailed, never returned"
    );
    let token = sandbox.mailed_code(&email, "Verify your email", 1).await;

    let verified = sandbox
        .identity()
        .verify_email(VerifyEmailRequest {
            token: token.clone(),
        })
        .await
        .expect("first use verifies")
        .into_inner();
    assert!(verified.user.unwrap().email_verified);

    let again = sandbox
        .identity()
        .verify_email(VerifyEmailRequest { token })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert_eq!(reason(&again), "VERIFICATION_TOKEN_INVALID");

    let unknown = sandbox
        .identity()
        .verify_email(VerifyEmailRequest {
            token: "not-a-token".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&unknown), "VERIFICATION_TOKEN_INVALID");

    let admin = sandbox.db.admin_pool().await;
    let stored: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT token_hash FROM identity.email_verifications")
            .fetch_all(&admin)
            .await
            .unwrap();
    assert!(
        stored.iter().all(|hash| hash.len() == 32),
        "only hashes are stored"
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn emails_are_unique_whatever_their_case() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let email = format!("case-{}@example.com", uuid::Uuid::new_v4());
    sandbox
        .identity()
        .register(registration(&email))
        .await
        .unwrap();
    let status = sandbox
        .identity()
        .register(registration(&format!("  {}  ", email.to_uppercase())))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    assert_eq!(reason(&status), "EMAIL_TAKEN");
    stack.shutdown().await;
}

#[tokio::test]
async fn two_registrations_of_one_email_at_once_leave_exactly_one_account() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let email = format!("race-{}@example.com", uuid::Uuid::new_v4());
    let (mut first, mut second) = (sandbox.identity(), sandbox.identity());
    let (a, b) = tokio::join!(
        first.register(registration(&email)),
        second.register(registration(&email))
    );
    let outcomes = [a.map(|_| ()), b.map(|_| ())];
    let successes = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    assert_eq!(successes, 1, "{outcomes:?}");
    let failure = outcomes
        .into_iter()
        .find_map(Result::err)
        .expect("one refusal");
    assert_eq!(failure.code(), Code::AlreadyExists, "{failure:?}");
    let admin = sandbox.db.admin_pool().await;
    let accounts: i64 = sqlx::query_scalar("SELECT count(*) FROM identity.users WHERE email = $1")
        .bind(&email)
        .fetch_one(&admin)
        .await
        .unwrap();
    assert_eq!(accounts, 1);
    stack.shutdown().await;
}

#[tokio::test]
async fn bad_input_is_invalid_argument_naming_each_field_never_internal() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (_, email) = sandbox.register("Validator").await;
    let tokens = sandbox.login(&email).await;

    let login = sandbox
        .identity()
        .login(LoginRequest {
            email: "not an email".into(),
            password: String::new(),
            client_address: "x".repeat(10_000),
            user_agent: "y".repeat(10_000),
        })
        .await
        .unwrap_err();
    assert_eq!(login.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&login),
        ["email", "password", "client_address", "user_agent"]
    );

    let oversized = sandbox
        .identity()
        .register(RegisterRequest {
            email: format!("{}@example.com", "a".repeat(300)),
            password: "p".repeat(5_000),
            display_name: "n".repeat(1_000),
            roles: vec![],
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(oversized.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&oversized),
        ["email", "password", "display_name"]
    );

    let empty_token = sandbox
        .identity()
        .verify_email(VerifyEmailRequest {
            token: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&empty_token), ["token"]);

    let bad_session = sandbox
        .identity()
        .revoke_session(bearer(
            RevokeSessionRequest {
                session_id: "not-a-uuid".into(),
            },
            &tokens.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_session.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&bad_session), ["session_id"]);

    let bad_page = sandbox
        .identity()
        .list_sessions(bearer(
            ListSessionsRequest {
                page_size: -1,
                page_token: "garbage".into(),
            },
            &tokens.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&bad_page), ["page_size", "page_token"]);

    let (_, operator_tokens) = sandbox.operator().await;
    let bad_user = sandbox
        .identity_as_operator()
        .suspend_user(bearer(
            SuspendUserRequest {
                user_id: String::new(),
            },
            &operator_tokens.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_user.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&bad_user), ["user_id"]);
    stack.shutdown().await;
}
