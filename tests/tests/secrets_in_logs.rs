//! No password, token, TOTP secret or recovery code reaches the logs. Its own
//! test binary, because it installs the process-wide tracing subscriber (at
//! TRACE, spans included) and captures everything it writes.

use std::io::Write;
use std::sync::{Arc, Mutex};

use fitflow_e2e::{AUDIT, IDENTITY};
use fitflow_e2e::{PASSWORD, Sandbox, bearer, totp};
use fitflow_proto::identity::{
    ChangePasswordRequest, CompleteMfaLoginRequest, ConfirmMfaRequest, EnrollMfaRequest,
    ListSessionsRequest, RefreshTokenRequest, RegisterRequest, RequestPasswordResetRequest,
    ResetPasswordRequest, VerifyEmailRequest, complete_mfa_login_request, login_response,
};
use tracing_subscriber::fmt::format::FmtSpan;

/// Every byte the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

#[tokio::test]
async fn no_secret_of_a_full_account_flow_appears_in_the_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "trace,h2=debug,hyper=debug,hyper_util=debug,rustls=debug,tower=debug",
        ))
        .with_span_events(FmtSpan::FULL)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY, AUDIT]).await;
    let mut secrets: Vec<String> = vec![PASSWORD.to_owned()];
    let email = format!("secrets-{}@example.com", uuid::Uuid::new_v4());
    let mut identity = sandbox.identity();

    let registered = identity
        .register(RegisterRequest {
            email: email.clone(),
            password: PASSWORD.into(),
            display_name: "Secret Keeper".into(),
            roles: vec![],
            request_id: String::new(),
        })
        .await
        .expect("register")
        .into_inner();
    assert!(registered.email_verification_token.is_empty());
    let verification = sandbox.mailed_code(&email, "Verify your email", 1).await;
    secrets.push(verification.clone());
    identity
        .verify_email(VerifyEmailRequest {
            token: verification,
        })
        .await
        .expect("verify");

    let tokens = sandbox.login(&email).await;
    secrets.push(tokens.access_token.clone());
    secrets.push(tokens.refresh_token.clone());
    let _ = sandbox
        .try_login(&email, "a wrong password to log", "198.51.100.9")
        .await;
    secrets.push("a wrong password to log".to_owned());

    let enrollment = identity
        .enroll_mfa(bearer(
            EnrollMfaRequest {
                current_password: PASSWORD.into(),
            },
            &tokens.access_token,
        ))
        .await
        .expect("enrol")
        .into_inner();
    secrets.push(enrollment.secret.clone());
    secrets.push(enrollment.provisioning_uri.clone());
    let recovery_codes = identity
        .confirm_mfa(bearer(
            ConfirmMfaRequest {
                totp_code: totp(&enrollment.secret, 0),
            },
            &tokens.access_token,
        ))
        .await
        .expect("confirm")
        .into_inner()
        .recovery_codes;
    secrets.extend(recovery_codes.iter().cloned());
    secrets.extend(recovery_codes.iter().map(|code| code.replace('-', "")));

    let challenge = match sandbox
        .try_login(&email, PASSWORD, "198.51.100.9")
        .await
        .expect("password accepted")
        .result
    {
        Some(login_response::Result::MfaChallenge(challenge)) => challenge.challenge_token,
        other => panic!("expected a challenge, got {other:?}"),
    };
    secrets.push(challenge.clone());
    let mfa_tokens = identity
        .complete_mfa_login(CompleteMfaLoginRequest {
            challenge_token: challenge,
            proof: Some(complete_mfa_login_request::Proof::TotpCode(totp(
                &enrollment.secret,
                1,
            ))),
        })
        .await
        .expect("complete mfa")
        .into_inner()
        .tokens
        .expect("tokens");
    secrets.push(mfa_tokens.access_token.clone());
    secrets.push(mfa_tokens.refresh_token.clone());

    let refreshed = identity
        .refresh_token(RefreshTokenRequest {
            refresh_token: mfa_tokens.refresh_token.clone(),
        })
        .await
        .expect("refresh")
        .into_inner()
        .tokens
        .expect("tokens");
    secrets.push(refreshed.access_token.clone());
    secrets.push(refreshed.refresh_token.clone());
    identity
        .list_sessions(bearer(
            ListSessionsRequest::default(),
            &refreshed.access_token,
        ))
        .await
        .expect("list sessions");

    let new_password = "the changed passphrase of the test";
    secrets.push(new_password.to_owned());
    identity
        .change_password(bearer(
            ChangePasswordRequest {
                current_password: PASSWORD.into(),
                new_password: new_password.into(),
            },
            &refreshed.access_token,
        ))
        .await
        .expect("change password");

    identity
        .request_password_reset(RequestPasswordResetRequest {
            email: email.clone(),
        })
        .await
        .expect("request reset");
    let reset_token = sandbox.mailed_code(&email, "Reset your password", 1).await;
    secrets.push(reset_token.clone());
    let reset_password = "the reset passphrase of the test";
    secrets.push(reset_password.to_owned());
    identity
        .reset_password(ResetPasswordRequest {
            reset_token,
            new_password: reset_password.into(),
        })
        .await
        .expect("reset password");

    stack.shutdown().await;
    let logs = captured.text();
    // The capture really saw the flow: identity's request spans and its SQL.
    for expected in [
        "fitflow.identity.v1.IdentityService/CompleteMfaLogin",
        "fitflow.identity.v1.IdentityService/ResetPassword",
        "UPDATE users SET password_hash",
    ] {
        assert!(
            logs.contains(expected),
            "no {expected:?} in the captured logs"
        );
    }
    for secret in &secrets {
        assert!(!secret.is_empty());
        if let Some(at) = logs.find(secret.as_str()) {
            let start = at.saturating_sub(300);
            let context: String = logs[start..].chars().take(600).collect();
            panic!("a secret reached the logs:\n{context}");
        }
    }
}
