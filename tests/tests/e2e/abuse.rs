//! Login abuse resistance: lockouts per account and per address, uniform
//! failures, and audit events that never hold the email.

use fitflow_e2e::IDENTITY;
use fitflow_e2e::{PASSWORD, Sandbox};
use tonic::Code;

use crate::identity_support::{reason, retry_delay};

#[tokio::test]
async fn an_unknown_email_fails_exactly_like_a_wrong_password() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (_, email) = sandbox.register("Known").await;
    let wrong_password = sandbox
        .try_login(&email, "not the right password", "198.51.100.7")
        .await
        .unwrap_err();
    let unknown_email = sandbox
        .try_login("nobody@example.com", PASSWORD, "198.51.100.8")
        .await
        .unwrap_err();
    assert_eq!(wrong_password.code(), Code::Unauthenticated);
    assert_eq!(wrong_password.code(), unknown_email.code());
    assert_eq!(wrong_password.message(), unknown_email.message());
    assert_eq!(reason(&wrong_password), "INVALID_CREDENTIALS");
    assert_eq!(reason(&unknown_email), "INVALID_CREDENTIALS");
    stack.shutdown().await;
}

#[tokio::test]
async fn five_failed_logins_lock_the_account_even_for_the_right_password() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (_, email) = sandbox.register("Targeted").await;
    for attempt in 0..5 {
        // Different addresses: the per-account limit alone trips.
        let address = format!("198.51.100.{attempt}");
        let status = sandbox
            .try_login(&email, "guessing the password", &address)
            .await
            .unwrap_err();
        assert_eq!(reason(&status), "INVALID_CREDENTIALS");
    }
    let locked = sandbox
        .try_login(&email, PASSWORD, "203.0.113.50")
        .await
        .unwrap_err();
    assert_eq!(locked.code(), Code::ResourceExhausted);
    assert_eq!(reason(&locked), "LOGIN_RATE_LIMITED");
    let delay = retry_delay(&locked).expect("retry info");
    assert!(
        delay.as_secs() > 60 && delay.as_secs() <= 15 * 60,
        "{delay:?}"
    );

    // The lock is shared through PostgreSQL, not held in memory.
    let admin = sandbox.db.admin_pool().await;
    let locked_rows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM identity.login_attempts WHERE kind = 'account' AND locked_until > now()",
    )
    .fetch_one(&admin)
    .await
    .unwrap();
    assert_eq!(locked_rows, 1);
    let keys: Vec<String> = sqlx::query_scalar("SELECT key FROM identity.login_attempts")
        .fetch_all(&admin)
        .await
        .unwrap();
    assert!(
        keys.iter()
            .all(|key| !key.contains("example.com") && !key.contains("198.51"))
    );

    // Another account is not affected.
    let (_, other) = sandbox.register("Bystander").await;
    sandbox.login(&other).await;
    stack.shutdown().await;
}

#[tokio::test]
async fn an_unknown_email_is_locked_out_the_same_way() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    for attempt in 0..5 {
        let address = format!("198.51.100.{attempt}");
        sandbox
            .try_login("ghost@example.com", PASSWORD, &address)
            .await
            .unwrap_err();
    }
    let locked = sandbox
        .try_login("ghost@example.com", PASSWORD, "203.0.113.51")
        .await
        .unwrap_err();
    assert_eq!(reason(&locked), "LOGIN_RATE_LIMITED");
    stack.shutdown().await;
}

#[tokio::test]
async fn twenty_failures_from_one_address_lock_that_address_for_every_account() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (_, victim) = sandbox.register("Victim").await;
    let attacker = "203.0.113.66";
    for attempt in 0..20 {
        let status = sandbox
            .try_login(&format!("spray-{attempt}@example.com"), PASSWORD, attacker)
            .await
            .unwrap_err();
        assert_eq!(reason(&status), "INVALID_CREDENTIALS");
    }
    let blocked = sandbox
        .try_login(&victim, PASSWORD, attacker)
        .await
        .unwrap_err();
    assert_eq!(blocked.code(), Code::ResourceExhausted);
    assert_eq!(reason(&blocked), "LOGIN_RATE_LIMITED");
    sandbox
        .try_login(&victim, PASSWORD, "198.51.100.99")
        .await
        .expect("the account itself is not locked");
    stack.shutdown().await;
}

#[tokio::test]
async fn failed_logins_are_audited_without_the_email() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (_, email) = sandbox.register("Audited").await;
    let admin = sandbox.db.admin_pool().await;
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM identity.audit_outbox")
        .fetch_one(&admin)
        .await
        .unwrap();
    sandbox
        .try_login(&email, "wrong password entirely", "198.51.100.3")
        .await
        .unwrap_err();
    sandbox
        .try_login("unknown-person@example.com", PASSWORD, "198.51.100.3")
        .await
        .unwrap_err();
    let payloads: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT payload FROM identity.audit_outbox ORDER BY id")
            .fetch_all(&admin)
            .await
            .unwrap();
    assert_eq!(payloads.len() as i64, before + 2, "one event per failure");
    for payload in &payloads {
        let text = String::from_utf8_lossy(payload);
        assert!(!text.contains("@example.com"), "no email in audit values");
        assert!(
            !text.contains("wrong password"),
            "no password in audit values"
        );
    }
    let last = String::from_utf8_lossy(payloads.last().unwrap());
    assert!(last.contains("login_failed"));
    assert!(last.contains("00000000-0000-0000-0000-000000000000"));
    stack.shutdown().await;
}

#[tokio::test]
async fn one_address_in_any_form_shares_one_login_allowance() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (_, victim) = sandbox.register("Victim").await;
    // Twenty failures spread over the forms of one address: with the port
    // dropped and IPv4-mapped IPv6 folded, they all count against one key.
    let forms = [
        "198.51.100.7",
        "198.51.100.7:1",
        "::ffff:198.51.100.7",
        "[::ffff:198.51.100.7]:80",
    ];
    for attempt in 0..20 {
        let status = sandbox
            .try_login(
                &format!("spray-{attempt}@example.com"),
                PASSWORD,
                forms[attempt % forms.len()],
            )
            .await
            .unwrap_err();
        assert_eq!(reason(&status), "INVALID_CREDENTIALS");
    }
    for form in forms {
        let blocked = sandbox
            .try_login(&victim, PASSWORD, form)
            .await
            .unwrap_err();
        assert_eq!(reason(&blocked), "LOGIN_RATE_LIMITED", "{form}");
    }
    stack.shutdown().await;
}

#[tokio::test]
async fn a_padded_address_or_none_from_the_gateway_is_refused_before_any_hash() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (_, email) = sandbox.register("Padded").await;
    for address in [
        "198.51.100.7 ",
        " 198.51.100.7",
        "198.51.100.7\t",
        "not an address",
        "",
    ] {
        let status = sandbox
            .try_login(&email, PASSWORD, address)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{address:?}");
    }
    stack.shutdown().await;
}

#[tokio::test]
async fn a_control_character_in_the_user_agent_is_refused_before_it_reaches_the_trail() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    for user_agent in ["\0", "agent\u{7}", "agent\r\nX-Forged: 1"] {
        let status = sandbox
            .identity()
            .login(fitflow_proto::identity::LoginRequest {
                email: "nobody@example.com".into(),
                password: PASSWORD.into(),
                client_address: "198.51.100.20".into(),
                user_agent: user_agent.into(),
            })
            .await
            .expect_err("a control character");
        assert_eq!(status.code(), Code::InvalidArgument, "{user_agent:?}");
    }
    let admin = sandbox.db.admin_pool().await;
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM identity.audit_outbox")
        .fetch_one(&admin)
        .await
        .unwrap();
    assert_eq!(queued, 0, "no event was written for a refused request");
    stack.shutdown().await;
}
