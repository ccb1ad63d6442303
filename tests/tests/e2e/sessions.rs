//! Refresh-token rotation, the session list, revocation, password change and reset.

use fitflow_e2e::IDENTITY;
use fitflow_e2e::{PASSWORD, Sandbox, bearer};
use fitflow_proto::identity::{
    ChangePasswordRequest, ListSessionsRequest, RefreshTokenRequest, RequestPasswordResetRequest,
    ResetPasswordRequest, RevokeAllSessionsRequest, RevokeSessionRequest, TokenPair,
};
use tonic::Code;

use crate::identity_support::reason;

const NEW_PASSWORD: &str = "a brand new passphrase for e2e";

async fn refresh(sandbox: &Sandbox, refresh_token: &str) -> Result<TokenPair, tonic::Status> {
    sandbox
        .identity()
        .refresh_token(RefreshTokenRequest {
            refresh_token: refresh_token.into(),
        })
        .await
        .map(|response| response.into_inner().tokens.expect("tokens"))
}

async fn live_session_ids(sandbox: &Sandbox, access_token: &str) -> Vec<String> {
    sandbox
        .identity()
        .list_sessions(bearer(ListSessionsRequest::default(), access_token))
        .await
        .expect("list sessions")
        .into_inner()
        .sessions
        .into_iter()
        .map(|session| session.id)
        .collect()
}

#[tokio::test]
async fn a_reused_refresh_token_revokes_the_whole_session() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (_, email) = sandbox.register("Rotation Tester").await;
    let first = sandbox.login(&email).await;
    let second = refresh(&sandbox, &first.refresh_token)
        .await
        .expect("rotates");
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_eq!(second.session_id, first.session_id);
    // Beyond the retry window of a lost response (see retries.rs).
    let admin = sandbox.db.admin_pool().await;
    sqlx::query(
        "UPDATE identity.refresh_tokens SET spent_at = spent_at - interval '1 minute' \
         WHERE token_hash = $1",
    )
    .bind(fitflow_identity::domain::hash_token(&first.refresh_token))
    .execute(&admin)
    .await
    .unwrap();

    let reused = refresh(&sandbox, &first.refresh_token).await.unwrap_err();
    assert_eq!(reused.code(), Code::Unauthenticated);
    assert_eq!(reason(&reused), "REFRESH_TOKEN_REUSED");

    // The legitimate holder's newer token died with the session.
    let after = refresh(&sandbox, &second.refresh_token).await.unwrap_err();
    assert_eq!(reason(&after), "REFRESH_TOKEN_INVALID");
    stack.shutdown().await;
}

#[tokio::test]
async fn one_refresh_token_presented_twice_at_once_leaves_one_usable_pair() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (_, email) = sandbox.register("Race Tester").await;
    let tokens = sandbox.login(&email).await;
    // The later call is the retry of a lost response: both may answer.
    let (a, b) = tokio::join!(
        refresh(&sandbox, &tokens.refresh_token),
        refresh(&sandbox, &tokens.refresh_token)
    );
    assert!(a.is_ok() || b.is_ok(), "{a:?} {b:?}");
    let admin = sandbox.db.admin_pool().await;
    let (issued, usable): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE spent_at IS NULL AND revoked_at IS NULL) \
         FROM identity.refresh_tokens WHERE session_id = $1::uuid",
    )
    .bind(&tokens.session_id)
    .fetch_one(&admin)
    .await
    .unwrap();
    assert!(
        issued <= 3,
        "login's token plus at most a rotation and its retry, got {issued}"
    );
    assert_eq!(
        usable, 1,
        "exactly one refresh token of the session is usable"
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn sessions_are_listed_with_the_bearer_token_and_can_be_revoked_one_or_all() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (_, email) = sandbox.register("Session Tester").await;
    let laptop = sandbox.login(&email).await;
    let phone = sandbox.login(&email).await;
    let tablet = sandbox.login(&email).await;

    let listed = sandbox
        .identity()
        .list_sessions(bearer(ListSessionsRequest::default(), &laptop.access_token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.sessions.len(), 3);
    let current: Vec<_> = listed.sessions.iter().filter(|s| s.current).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0].id, laptop.session_id);
    assert_eq!(current[0].client_address, "203.0.113.7");

    let first_page = sandbox
        .identity()
        .list_sessions(bearer(
            ListSessionsRequest {
                page_size: 2,
                page_token: String::new(),
            },
            &laptop.access_token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first_page.sessions.len(), 2);
    let second_page = sandbox
        .identity()
        .list_sessions(bearer(
            ListSessionsRequest {
                page_size: 2,
                page_token: first_page.next_page_token.clone(),
            },
            &laptop.access_token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second_page.sessions.len(), 1);
    assert!(second_page.next_page_token.is_empty());

    sandbox
        .identity()
        .revoke_session(bearer(
            RevokeSessionRequest {
                session_id: phone.session_id.clone(),
            },
            &laptop.access_token,
        ))
        .await
        .expect("revoke the phone");
    let phone_refresh = refresh(&sandbox, &phone.refresh_token).await.unwrap_err();
    assert_eq!(reason(&phone_refresh), "REFRESH_TOKEN_INVALID");
    assert!(
        !live_session_ids(&sandbox, &laptop.access_token)
            .await
            .contains(&phone.session_id)
    );

    // Someone else's session is not found, not revoked.
    let (_, other_email) = sandbox.register("Other").await;
    let other = sandbox.login(&other_email).await;
    let foreign = sandbox
        .identity()
        .revoke_session(bearer(
            RevokeSessionRequest {
                session_id: other.session_id.clone(),
            },
            &laptop.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(foreign.code(), Code::NotFound);
    assert_eq!(reason(&foreign), "SESSION_NOT_FOUND");
    refresh(&sandbox, &other.refresh_token)
        .await
        .expect("the other user's session lives on");

    let revoked = sandbox
        .identity()
        .revoke_all_sessions(bearer(RevokeAllSessionsRequest {}, &laptop.access_token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(revoked.revoked_count, 2);
    for tokens in [&laptop, &tablet] {
        let status = refresh(&sandbox, &tokens.refresh_token).await.unwrap_err();
        assert_eq!(reason(&status), "REFRESH_TOKEN_INVALID");
    }
    stack.shutdown().await;
}

#[tokio::test]
async fn changing_the_password_needs_the_current_one_and_revokes_the_other_sessions() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (_, email) = sandbox.register("Password Changer").await;
    let here = sandbox.login(&email).await;
    let elsewhere = sandbox.login(&email).await;

    let wrong = sandbox
        .identity()
        .change_password(bearer(
            ChangePasswordRequest {
                current_password: "not my password at all".into(),
                new_password: NEW_PASSWORD.into(),
            },
            &here.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
    assert_eq!(reason(&wrong), "INVALID_CREDENTIALS");

    let weak = sandbox
        .identity()
        .change_password(bearer(
            ChangePasswordRequest {
                current_password: PASSWORD.into(),
                new_password: "short".into(),
            },
            &here.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(weak.code(), Code::InvalidArgument);

    let changed = sandbox
        .identity()
        .change_password(bearer(
            ChangePasswordRequest {
                current_password: PASSWORD.into(),
                new_password: NEW_PASSWORD.into(),
            },
            &here.access_token,
        ))
        .await
        .expect("changed")
        .into_inner();
    assert_eq!(changed.revoked_session_count, 1);
    refresh(&sandbox, &here.refresh_token)
        .await
        .expect("this session stays");
    let other = refresh(&sandbox, &elsewhere.refresh_token)
        .await
        .unwrap_err();
    assert_eq!(reason(&other), "REFRESH_TOKEN_INVALID");

    let old = sandbox
        .try_login(&email, PASSWORD, "198.51.100.1")
        .await
        .unwrap_err();
    assert_eq!(reason(&old), "INVALID_CREDENTIALS");
    sandbox
        .try_login(&email, NEW_PASSWORD, "198.51.100.1")
        .await
        .expect("the new password works");
    stack.shutdown().await;
}

#[tokio::test]
async fn a_mailed_password_reset_code_sets_a_new_password_once_and_revokes_every_session() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (_, email) = sandbox.register("Forgetful").await;
    let session = sandbox.login(&email).await;

    let unknown = sandbox
        .identity()
        .request_password_reset(RequestPasswordResetRequest {
            email: "nobody-here@example.com".into(),
        })
        .await
        .expect("unknown emails are answered the same way")
        .into_inner();
    assert!(unknown.reset_token.is_empty());

    let answer = sandbox
        .identity()
        .request_password_reset(RequestPasswordResetRequest {
            email: email.to_uppercase(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        answer.reset_token.is_empty(),
        "the code is mailed, never returned"
    );
    let token = sandbox.mailed_code(&email, "Reset your password", 1).await;
    // A second request within the minute mails nothing: no mailbox flooding.
    sandbox
        .identity()
        .request_password_reset(RequestPasswordResetRequest {
            email: email.clone(),
        })
        .await
        .expect("answered the same way");
    assert!(
        sandbox
            .mail
            .received_by("nobody-here@example.com")
            .is_empty(),
        "nothing is mailed for an unknown address"
    );

    sandbox
        .identity()
        .reset_password(ResetPasswordRequest {
            reset_token: token.clone(),
            new_password: NEW_PASSWORD.into(),
        })
        .await
        .expect("reset");
    let revoked = refresh(&sandbox, &session.refresh_token).await.unwrap_err();
    assert_eq!(reason(&revoked), "REFRESH_TOKEN_INVALID");

    let again = sandbox
        .identity()
        .reset_password(ResetPasswordRequest {
            reset_token: token,
            new_password: "yet another passphrase here".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert_eq!(reason(&again), "RESET_TOKEN_INVALID");
    sandbox
        .try_login(&email, NEW_PASSWORD, "198.51.100.1")
        .await
        .expect("the reset password works");
    stack.shutdown().await;
}

#[tokio::test]
async fn a_login_beyond_twenty_live_sessions_revokes_the_oldest() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (_, email) = sandbox.register("Many Devices").await;
    let oldest = sandbox.login(&email).await;
    let mut newest = oldest.clone();
    for _ in 0..20 {
        newest = sandbox.login(&email).await;
    }
    let refused = refresh(&sandbox, &oldest.refresh_token)
        .await
        .expect_err("the oldest session was revoked");
    assert_eq!(reason(&refused), "REFRESH_TOKEN_INVALID");
    refresh(&sandbox, &newest.refresh_token)
        .await
        .expect("the newest session lives");
    let live = live_session_ids(&sandbox, &newest.access_token).await;
    assert!(live.len() <= 20, "{} live sessions", live.len());
    stack.shutdown().await;
}
