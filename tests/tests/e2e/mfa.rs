//! TOTP multi-factor authentication: enrolment, challenge, codes, recovery, removal.

use fitflow_e2e::IDENTITY;
use fitflow_e2e::{PASSWORD, Sandbox, bearer, totp};
use fitflow_proto::identity::identity_service_client::IdentityServiceClient;
use fitflow_proto::identity::{
    CompleteMfaLoginRequest, ConfirmMfaRequest, DisableMfaRequest, EnrollMfaRequest,
    GetCurrentUserRequest, ResetUserMfaRequest, TokenPair, complete_mfa_login_request,
    disable_mfa_request, login_response,
};
use tonic::Code;
use tonic::transport::Channel;

use crate::identity_support::reason;

const ADDRESS: &str = "192.0.2.10";

async fn challenge(sandbox: &Sandbox, email: &str) -> String {
    match sandbox
        .try_login(email, PASSWORD, ADDRESS)
        .await
        .expect("password accepted")
        .result
    {
        Some(login_response::Result::MfaChallenge(challenge)) => {
            assert!(challenge.expire_time.is_some());
            challenge.challenge_token
        }
        other => panic!("expected an mfa challenge, got {other:?}"),
    }
}

async fn complete(
    sandbox: &Sandbox,
    challenge_token: &str,
    proof: complete_mfa_login_request::Proof,
) -> Result<TokenPair, tonic::Status> {
    sandbox
        .identity()
        .complete_mfa_login(CompleteMfaLoginRequest {
            challenge_token: challenge_token.into(),
            proof: Some(proof),
        })
        .await
        .map(|response| response.into_inner().tokens.expect("tokens"))
}

#[tokio::test]
async fn with_mfa_on_login_needs_a_fresh_totp_code_or_an_unused_recovery_code() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (_, email) = sandbox.register("Second Factor").await;
    let tokens = sandbox.login(&email).await;

    let enrollment = sandbox
        .identity()
        .enroll_mfa(bearer(
            EnrollMfaRequest {
                current_password: PASSWORD.into(),
            },
            &tokens.access_token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(
        enrollment
            .provisioning_uri
            .starts_with("otpauth://totp/FitFlow%3A")
    );
    assert!(
        enrollment
            .provisioning_uri
            .contains(&format!("secret={}", enrollment.secret))
    );
    // Not confirmed yet: login still returns tokens.
    sandbox.login(&email).await;

    let wrong_first = sandbox
        .identity()
        .confirm_mfa(bearer(
            ConfirmMfaRequest {
                totp_code: totp(&enrollment.secret, -10),
            },
            &tokens.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(reason(&wrong_first), "MFA_CODE_INVALID");
    let recovery_codes = sandbox
        .identity()
        .confirm_mfa(bearer(
            ConfirmMfaRequest {
                totp_code: totp(&enrollment.secret, 0),
            },
            &tokens.access_token,
        ))
        .await
        .expect("confirmed")
        .into_inner()
        .recovery_codes;
    assert_eq!(recovery_codes.len(), 10);
    let secret = enrollment.secret;

    let admin = sandbox.db.admin_pool().await;
    let sealed: Vec<u8> =
        sqlx::query_scalar("SELECT mfa_secret_sealed FROM identity.users WHERE email = $1")
            .bind(&email)
            .fetch_one(&admin)
            .await
            .unwrap();
    let secret_bytes = fitflow_identity::domain::totp_secret_from_base32(&secret).unwrap();
    assert!(
        !sealed
            .windows(secret_bytes.len())
            .any(|window| window == secret_bytes),
        "the secret is stored sealed"
    );

    // The code that confirmed enrolment was spent: it is refused at login.
    let first_challenge = challenge(&sandbox, &email).await;
    let reused = complete(
        &sandbox,
        &first_challenge,
        complete_mfa_login_request::Proof::TotpCode(totp(&secret, 0)),
    )
    .await
    .unwrap_err();
    assert_eq!(reused.code(), Code::Unauthenticated);
    assert_eq!(reason(&reused), "MFA_CODE_INVALID");
    let stale = complete(
        &sandbox,
        &first_challenge,
        complete_mfa_login_request::Proof::TotpCode(totp(&secret, -10)),
    )
    .await
    .unwrap_err();
    assert_eq!(reason(&stale), "MFA_CODE_INVALID");

    // The next step's code is within the window and new: accepted once.
    let signed_in = complete(
        &sandbox,
        &first_challenge,
        complete_mfa_login_request::Proof::TotpCode(totp(&secret, 1)),
    )
    .await
    .expect("a fresh code completes the login");
    let me = sandbox
        .identity()
        .get_current_user(bearer(GetCurrentUserRequest {}, &signed_in.access_token))
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    assert!(me.mfa_enabled);

    // The challenge is single-use.
    let spent = complete(
        &sandbox,
        &first_challenge,
        complete_mfa_login_request::Proof::TotpCode(totp(&secret, 1)),
    )
    .await
    .unwrap_err();
    assert_eq!(reason(&spent), "MFA_CHALLENGE_INVALID");

    // A code reused within its window is refused on a new challenge too.
    let second_challenge = challenge(&sandbox, &email).await;
    let replay = complete(
        &sandbox,
        &second_challenge,
        complete_mfa_login_request::Proof::TotpCode(totp(&secret, 1)),
    )
    .await
    .unwrap_err();
    assert_eq!(reason(&replay), "MFA_CODE_INVALID");

    // A recovery code works once, typed in any case.
    let recovery = recovery_codes[0].to_uppercase();
    complete(
        &sandbox,
        &second_challenge,
        complete_mfa_login_request::Proof::RecoveryCode(recovery.clone()),
    )
    .await
    .expect("a recovery code completes the login");
    let third_challenge = challenge(&sandbox, &email).await;
    let used = complete(
        &sandbox,
        &third_challenge,
        complete_mfa_login_request::Proof::RecoveryCode(recovery),
    )
    .await
    .unwrap_err();
    assert_eq!(reason(&used), "MFA_CODE_INVALID");

    let stored_codes: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT code_hash FROM identity.mfa_recovery_codes")
            .fetch_all(&admin)
            .await
            .unwrap();
    assert_eq!(stored_codes.len(), 10);
    assert!(stored_codes.iter().all(|hash| hash.len() == 32));
    stack.shutdown().await;
}

#[tokio::test]
async fn an_mfa_challenge_dies_after_five_wrong_codes() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (_, email) = sandbox.register("Guesser").await;
    let tokens = sandbox.login(&email).await;
    let (secret, _) = sandbox.enable_mfa(&tokens.access_token).await;
    let challenge_token = challenge(&sandbox, &email).await;
    for _ in 0..5 {
        let status = complete(
            &sandbox,
            &challenge_token,
            complete_mfa_login_request::Proof::TotpCode("000000".into()),
        )
        .await
        .unwrap_err();
        assert!(
            ["MFA_CODE_INVALID", "LOGIN_RATE_LIMITED"].contains(&reason(&status).as_str()),
            "{status:?}"
        );
    }
    let after = complete(
        &sandbox,
        &challenge_token,
        complete_mfa_login_request::Proof::TotpCode(totp(&secret, 1)),
    )
    .await
    .unwrap_err();
    assert_eq!(reason(&after), "MFA_CHALLENGE_INVALID");
    stack.shutdown().await;
}

#[tokio::test]
async fn disabling_mfa_needs_the_password_and_a_code() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (_, email) = sandbox.register("Disabler").await;
    let tokens = sandbox.login(&email).await;
    let (_, recovery_codes) = sandbox.enable_mfa(&tokens.access_token).await;

    let wrong_password = sandbox
        .identity()
        .disable_mfa(bearer(
            DisableMfaRequest {
                password: "not the password at all".into(),
                proof: Some(disable_mfa_request::Proof::RecoveryCode(
                    recovery_codes[0].clone(),
                )),
            },
            &tokens.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(reason(&wrong_password), "INVALID_CREDENTIALS");

    let no_code = sandbox
        .identity()
        .disable_mfa(bearer(
            DisableMfaRequest {
                password: PASSWORD.into(),
                proof: None,
            },
            &tokens.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(no_code.code(), Code::InvalidArgument);

    sandbox
        .identity()
        .disable_mfa(bearer(
            DisableMfaRequest {
                password: PASSWORD.into(),
                proof: Some(disable_mfa_request::Proof::RecoveryCode(
                    recovery_codes[0].clone(),
                )),
            },
            &tokens.access_token,
        ))
        .await
        .expect("disabled");
    // Login returns tokens again.
    sandbox.login(&email).await;
    let again = sandbox
        .identity()
        .disable_mfa(bearer(
            DisableMfaRequest {
                password: PASSWORD.into(),
                proof: Some(disable_mfa_request::Proof::RecoveryCode(
                    recovery_codes[1].clone(),
                )),
            },
            &tokens.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(reason(&again), "MFA_NOT_ENABLED");
    stack.shutdown().await;
}

#[tokio::test]
async fn the_second_factor_locks_after_ten_wrong_codes_however_many_fresh_challenges() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (_, email) = sandbox.register("Guessed").await;
    let tokens = sandbox.login(&email).await;
    let (secret, _) = sandbox.enable_mfa(&tokens.access_token).await;
    let wrong_code = || {
        let right: u32 = totp(&secret, 0).parse().expect("six digits");
        format!("{:06}", (right + 500_000) % 1_000_000)
    };

    // An attacker who knows the password logs in afresh for every guess;
    // the correct password never resets the second factor's count.
    let mut reasons = Vec::new();
    for attempt in 0..30 {
        let address = format!("198.51.100.{attempt}");
        let challenge_token = match sandbox
            .try_login(&email, PASSWORD, &address)
            .await
            .expect("the password is right")
            .result
        {
            Some(login_response::Result::MfaChallenge(challenge)) => challenge.challenge_token,
            other => panic!("expected a challenge, got {other:?}"),
        };
        let status = complete(
            &sandbox,
            &challenge_token,
            complete_mfa_login_request::Proof::TotpCode(wrong_code()),
        )
        .await
        .expect_err("a wrong code");
        reasons.push(reason(&status));
    }
    assert!(
        reasons[..10]
            .iter()
            .all(|reason| reason == "MFA_CODE_INVALID"),
        "{reasons:?}"
    );
    assert!(
        reasons[10..]
            .iter()
            .all(|reason| reason == "SECOND_FACTOR_LOCKED"),
        "{reasons:?}"
    );

    // During the lock even the right code is refused.
    let challenge_token = challenge(&sandbox, &email).await;
    let refused = complete(
        &sandbox,
        &challenge_token,
        complete_mfa_login_request::Proof::TotpCode(totp(&secret, 0)),
    )
    .await
    .expect_err("locked");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert_eq!(reason(&refused), "SECOND_FACTOR_LOCKED");
    stack.shutdown().await;
}

#[tokio::test]
async fn a_stolen_access_token_cannot_enrol_mfa_without_the_password_and_guesses_lock_the_account()
{
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (_, email) = sandbox.register("Token Theft Victim").await;
    let stolen = sandbox.login(&email).await;

    let enroll = |password: &'static str| {
        let mut client = sandbox.identity();
        let token = stolen.access_token.clone();
        async move {
            client
                .enroll_mfa(bearer(
                    EnrollMfaRequest {
                        current_password: password.into(),
                    },
                    &token,
                ))
                .await
        }
    };
    let missing = enroll("").await.unwrap_err();
    assert_eq!(missing.code(), Code::InvalidArgument);
    let mut last = None;
    for _ in 0..10 {
        last = Some(enroll("attacker guess 123").await.unwrap_err());
        if last.as_ref().map(reason).as_deref() == Some("LOGIN_RATE_LIMITED") {
            break;
        }
        assert_eq!(
            last.as_ref().map(reason).as_deref(),
            Some("INVALID_CREDENTIALS")
        );
    }
    // Wrong passwords count like login failures: the account locks, and
    // then even the right password is refused until the lock ends.
    let locked = last.expect("a refusal");
    assert_eq!(locked.code(), Code::ResourceExhausted);
    assert_eq!(reason(&locked), "LOGIN_RATE_LIMITED");
    let during_lock = enroll(PASSWORD).await.unwrap_err();
    assert_eq!(reason(&during_lock), "LOGIN_RATE_LIMITED");
    stack.shutdown().await;
}

#[tokio::test]
async fn an_operator_resets_the_mfa_of_a_user_who_lost_their_phone_and_nobody_else_can() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (_, operator) = sandbox.operator().await;
    let (user, email) = sandbox.register("Lost Phone").await;
    let tokens = sandbox.login(&email).await;
    sandbox.enable_mfa(&tokens.access_token).await;
    let reset = |mut client: IdentityServiceClient<Channel>, token: &str, reason_text: &str| {
        let request = bearer(
            ResetUserMfaRequest {
                user_id: user.id.clone(),
                reason: reason_text.into(),
            },
            token,
        );
        async move { client.reset_user_mfa(request).await }
    };

    // The user themself, with their own token, over either peer: no.
    let by_user = reset(
        sandbox.identity_as_operator(),
        &tokens.access_token,
        "ticket 1",
    )
    .await
    .unwrap_err();
    assert_eq!(reason(&by_user), "ROLE_REQUIRED");
    // An operator through the gateway: no.
    let via_gateway = reset(sandbox.identity(), &operator.access_token, "ticket 1")
        .await
        .unwrap_err();
    assert_eq!(reason(&via_gateway), "PEER_NOT_ALLOWED");
    // Without a reason: no.
    let no_reason = reset(sandbox.identity_as_operator(), &operator.access_token, " ")
        .await
        .unwrap_err();
    assert_eq!(no_reason.code(), Code::InvalidArgument);
    // Still MFA: the login asks for the second factor.
    assert!(matches!(
        sandbox
            .try_login(&email, PASSWORD, "203.0.113.7")
            .await
            .unwrap()
            .result,
        Some(login_response::Result::MfaChallenge(_))
    ));

    let user_after = reset(
        sandbox.identity_as_operator(),
        &operator.access_token,
        "support ticket 4711: phone lost",
    )
    .await
    .expect("an MFA operator over the operator peer resets MFA")
    .into_inner()
    .user
    .unwrap();
    assert!(!user_after.mfa_enabled);
    // The password alone logs in again, and the user can enrol anew.
    let fresh = sandbox.login(&email).await;
    sandbox.enable_mfa(&fresh.access_token).await;
    let again = reset(
        sandbox.identity_as_operator(),
        &operator.access_token,
        "support ticket 4712",
    )
    .await;
    assert!(again.is_ok(), "{again:?}");
    let twice = reset(
        sandbox.identity_as_operator(),
        &operator.access_token,
        "support ticket 4713",
    )
    .await
    .unwrap_err();
    assert_eq!(reason(&twice), "MFA_NOT_ENABLED");

    // The audit event names the reason and the peer.
    use prost::Message as _;
    let admin = sandbox.db.admin_pool().await;
    let payloads: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT payload FROM identity.audit_outbox ORDER BY id")
            .fetch_all(&admin)
            .await
            .unwrap();
    let reset_event = payloads
        .iter()
        .map(|payload| fitflow_proto::audit::AuditEvent::decode(payload.as_slice()).unwrap())
        .find(|event| {
            event
                .changes
                .iter()
                .any(|change| change.new_value == "mfa_reset_by_operator")
        })
        .expect("the reset is audited");
    let value = |field: &str| {
        reset_event
            .changes
            .iter()
            .find(|change| change.field == field)
            .map(|change| change.new_value.clone())
    };
    assert_eq!(
        value("reason").as_deref(),
        Some("support ticket 4711: phone lost")
    );
    assert_eq!(value("caller_peer").as_deref(), Some("operator"));
    stack.shutdown().await;
}
