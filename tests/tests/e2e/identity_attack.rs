//! Identity and audit attacked as a determined attacker would, through the
//! real stack (mTLS, PostgreSQL, OpenBao): hostile text in every string
//! field, forged and replayed page tokens, impossible filter times, poisoned
//! and spoofed ingestion batches, raced one-time credentials, a revoked
//! session's token everywhere, and floods of the most expensive reads while
//! another user is served. Every attack must fail cleanly: INVALID_ARGUMENT
//! naming the request's own field, nothing written, never INTERNAL.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fitflow_e2e::{AUDIT, IDENTITY, PASSWORD, Sandbox, bearer};
use fitflow_outbox::{Action, AuditEventBuilder};
use fitflow_proto::audit::{
    AuditEvent, EventFilter, ExportEventsRequest, IngestRequest, IngestResponse, ListEventsRequest,
    VerifyChainRequest,
};
use fitflow_proto::identity::{
    ChangePasswordRequest, DisableMfaRequest, EnrollMfaRequest, GetCurrentUserRequest,
    GetUserRequest, ListSessionsRequest, ListUsersRequest, LoginRequest, RefreshTokenRequest,
    RegisterRequest, RequestPasswordResetRequest, ResendVerificationRequest, ResetPasswordRequest,
    ResetUserMfaRequest, RevokeAllSessionsRequest, RevokeSessionRequest, UpdateProfileRequest,
    disable_mfa_request,
};
use prost_types::Timestamp;
use sqlx::PgPool;
use tonic::Code;
use uuid::Uuid;

use crate::identity_support::{reason, violated_fields};

/// Control characters an attacker sends: NUL, bell, escape, DEL, a C1 control
/// and a CR LF header injection.
const CONTROLS: [&str; 6] = [
    "\0",
    "a\u{7}b",
    "\u{1b}[31m",
    "x\u{7f}",
    "x\u{85}",
    "x\r\nX-Forged: 1",
];

/// Characters that draw nothing or reorder what follows: a name or an email
/// holding one looks exactly like another person's.
const INVISIBLES: [&str; 6] = [
    "\u{202e}", // RIGHT-TO-LEFT OVERRIDE
    "\u{200b}", // ZERO WIDTH SPACE
    "\u{200f}", // RIGHT-TO-LEFT MARK
    "\u{2066}", // LEFT-TO-RIGHT ISOLATE
    "\u{feff}", // ZERO WIDTH NO-BREAK SPACE (BOM)
    "\u{2060}", // WORD JOINER
];

async fn count(pool: &PgPool, statement: &str) -> i64 {
    sqlx::query_scalar(statement)
        .fetch_one(pool)
        .await
        .expect("count")
}

/// Rows identity would have to write for any accepted request.
async fn identity_writes(pool: &PgPool) -> i64 {
    count(
        pool,
        "SELECT (SELECT count(*) FROM identity.audit_outbox) + (SELECT count(*) FROM identity.users) \
         + (SELECT count(*) FROM identity.sessions)",
    )
    .await
}

fn assert_refused_naming(
    result: Result<impl std::fmt::Debug, tonic::Status>,
    field: &str,
    what: &str,
) {
    let status = result.expect_err(what);
    assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
    let fields = violated_fields(&status);
    assert!(
        fields.iter().any(|named| named == field),
        "{what}: expected a violation of {field}, got {fields:?}"
    );
}

fn sign_up(email: &str, display_name: &str, request_id: &str) -> RegisterRequest {
    RegisterRequest {
        email: email.into(),
        password: PASSWORD.into(),
        display_name: display_name.into(),
        roles: vec![],
        request_id: request_id.into(),
    }
}

fn login(email: &str, client_address: &str, user_agent: &str) -> LoginRequest {
    LoginRequest {
        email: email.into(),
        password: PASSWORD.into(),
        client_address: client_address.into(),
        user_agent: user_agent.into(),
    }
}

#[tokio::test]
async fn control_characters_in_every_identity_string_field_are_refused_by_name_and_write_nothing() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (victim, victim_email) = sandbox.register("Victim").await;
    let (_, user_email) = sandbox.register("Attacker").await;
    let user = sandbox.login(&user_email).await;
    let (_, operator) = sandbox.operator().await;
    let admin = sandbox.db.admin_pool().await;
    let before = identity_writes(&admin).await;
    let mails_before = sandbox.mail.received_by(&victim_email).len();
    let gateway = sandbox.identity();
    let ops = sandbox.identity_as_operator();

    for bad in CONTROLS {
        let what = format!("{bad:?}");
        let email = format!("user{bad}@example.com");
        assert_refused_naming(
            gateway.clone().register(sign_up(&email, "Name", "")).await,
            "email",
            &what,
        );
        assert_refused_naming(
            gateway
                .clone()
                .register(sign_up("fresh@example.com", &format!("Name{bad}"), ""))
                .await,
            "display_name",
            &what,
        );
        assert_refused_naming(
            gateway
                .clone()
                .register(sign_up("fresh@example.com", "Name", bad))
                .await,
            "request_id",
            &what,
        );
        assert!(
            gateway
                .clone()
                .login(login(&email, "198.51.100.30", "e2e"))
                .await
                .is_err(),
            "{what}: a login with a control character in the email"
        );
        assert_refused_naming(
            gateway
                .clone()
                .login(login(
                    &victim_email,
                    "198.51.100.30",
                    &format!("agent{bad}"),
                ))
                .await,
            "user_agent",
            &what,
        );
        assert_refused_naming(
            gateway
                .clone()
                .login(login(&victim_email, &format!("198.51.100.30{bad}"), "e2e"))
                .await,
            "client_address",
            &what,
        );
        assert_refused_naming(
            gateway
                .clone()
                .request_password_reset(RequestPasswordResetRequest {
                    email: format!("{victim_email}{bad}"),
                })
                .await,
            "email",
            &what,
        );
        assert_refused_naming(
            gateway
                .clone()
                .resend_verification(ResendVerificationRequest {
                    email: format!("{victim_email}{bad}"),
                })
                .await,
            "email",
            &what,
        );
        assert_refused_naming(
            gateway
                .clone()
                .update_profile(bearer(
                    UpdateProfileRequest {
                        display_name: format!("Renamed{bad}"),
                        update_mask: Some(prost_types::FieldMask {
                            paths: vec!["display_name".into()],
                        }),
                        etag: String::new(),
                    },
                    &user.access_token,
                ))
                .await,
            "display_name",
            &what,
        );
        assert!(
            gateway
                .clone()
                .revoke_session(bearer(
                    RevokeSessionRequest {
                        session_id: format!("{}{bad}", user.session_id),
                    },
                    &user.access_token,
                ))
                .await
                .is_err_and(|status| status.code() == Code::InvalidArgument),
            "{what}: a session id with a control character"
        );
        assert_refused_naming(
            ops.clone()
                .list_users(bearer(
                    ListUsersRequest {
                        email_prefix: format!("user{bad}"),
                        ..Default::default()
                    },
                    &operator.access_token,
                ))
                .await,
            "email_prefix",
            &what,
        );
        assert_refused_naming(
            ops.clone()
                .list_users(bearer(
                    ListUsersRequest {
                        page_token: format!("token{bad}"),
                        ..Default::default()
                    },
                    &operator.access_token,
                ))
                .await,
            "page_token",
            &what,
        );
        assert_refused_naming(
            ops.clone()
                .get_user(bearer(
                    GetUserRequest {
                        user_id: format!("{}{bad}", victim.id),
                    },
                    &operator.access_token,
                ))
                .await,
            "user_id",
            &what,
        );
        assert_refused_naming(
            ops.clone()
                .reset_user_mfa(bearer(
                    ResetUserMfaRequest {
                        user_id: victim.id.clone(),
                        reason: format!("ticket 42{bad}"),
                    },
                    &operator.access_token,
                ))
                .await,
            "reason",
            &what,
        );
    }
    // The password fields take any printable text, but never a NUL that a
    // C-string consumer would cut the password at.
    for bad in ["\0", "\u{1b}"] {
        let weak = format!("{PASSWORD}{bad}");
        assert!(
            gateway
                .clone()
                .change_password(bearer(
                    ChangePasswordRequest {
                        current_password: PASSWORD.into(),
                        new_password: weak.clone(),
                    },
                    &user.access_token,
                ))
                .await
                .is_err_and(|status| status.code() == Code::InvalidArgument),
            "{bad:?} in a new password"
        );
    }
    assert_eq!(identity_writes(&admin).await, before, "nothing was written");
    // Give a reset or verification mail that should never have been sent a
    // moment to arrive before checking it did not.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sandbox.mail.received_by(&victim_email).len(), mails_before);
    stack.shutdown().await;
}

#[tokio::test]
async fn invisible_or_reordering_characters_cannot_make_a_lookalike_email_or_display_name() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (_, victim_email) = sandbox.register("Victim").await;
    let (_, user_email) = sandbox.register("Attacker").await;
    let user = sandbox.login(&user_email).await;
    let admin = sandbox.db.admin_pool().await;
    let before = identity_writes(&admin).await;
    let gateway = sandbox.identity();
    let (local, domain) = victim_email.split_once('@').expect("an email");
    for invisible in INVISIBLES {
        let what = format!("{invisible:?}");
        let lookalike = format!("{local}{invisible}@{domain}");
        assert_refused_naming(
            gateway
                .clone()
                .register(sign_up(&lookalike, "Victim", ""))
                .await,
            "email",
            &what,
        );
        assert_refused_naming(
            gateway
                .clone()
                .register(sign_up(
                    "fresh@example.com",
                    &format!("Admin{invisible}istrator"),
                    "",
                ))
                .await,
            "display_name",
            &what,
        );
        assert_refused_naming(
            gateway
                .clone()
                .update_profile(bearer(
                    UpdateProfileRequest {
                        display_name: format!("FitFlow {invisible}Support"),
                        update_mask: Some(prost_types::FieldMask {
                            paths: vec!["display_name".into()],
                        }),
                        etag: String::new(),
                    },
                    &user.access_token,
                ))
                .await,
            "display_name",
            &what,
        );
    }
    // No mailbox needs a joiner or a soft hyphen either.
    for invisible in ["\u{200d}", "\u{200c}", "\u{ad}"] {
        let lookalike = format!("{local}{invisible}@{domain}");
        assert_refused_naming(
            gateway
                .clone()
                .register(sign_up(&lookalike, "Victim", ""))
                .await,
            "email",
            &format!("{invisible:?}"),
        );
    }
    assert_eq!(identity_writes(&admin).await, before, "nothing was written");
    // Letters of any script are still names; the non-joiner shapes Persian.
    for name in [
        "Zoë Lefèvre",
        "محمد",
        "می\u{200c}خواهم",
        "李小龙",
        "Ólafur Þór",
    ] {
        gateway
            .clone()
            .register(sign_up(
                &format!("intl-{}@example.com", Uuid::new_v4()),
                name,
                "",
            ))
            .await
            .unwrap_or_else(|status| panic!("{name}: {status:?}"));
    }
    let lookalikes = count(
        &admin,
        "SELECT count(*) FROM identity.users WHERE email ~ '[\u{200b}-\u{200f}\u{202a}-\u{202e}\u{2060}-\u{2069}\u{feff}]'",
    )
    .await;
    assert_eq!(lookalikes, 0);
    assert!(
        identity_writes(&admin).await > before,
        "the real names were written"
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn over_long_strings_in_identity_requests_are_refused_by_name() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (victim, victim_email) = sandbox.register("Victim").await;
    let (_, operator) = sandbox.operator().await;
    let gateway = sandbox.identity();
    let ops = sandbox.identity_as_operator();
    // Under the 64 KiB message limit, so the fields' own rules answer.
    let long = "a".repeat(10_000);
    assert_refused_naming(
        gateway
            .clone()
            .register(sign_up(&format!("{long}@example.com"), "Name", ""))
            .await,
        "email",
        "email",
    );
    assert_refused_naming(
        gateway
            .clone()
            .register(sign_up("fresh@example.com", &long, ""))
            .await,
        "display_name",
        "display_name",
    );
    assert_refused_naming(
        gateway
            .clone()
            .login(login(&victim_email, "198.51.100.40", &long))
            .await,
        "user_agent",
        "user_agent",
    );
    assert_refused_naming(
        gateway
            .clone()
            .login(login(&victim_email, &format!("198.51.100.40{long}"), "e2e"))
            .await,
        "client_address",
        "client_address",
    );
    assert_refused_naming(
        ops.clone()
            .list_users(bearer(
                ListUsersRequest {
                    email_prefix: long.clone(),
                    ..Default::default()
                },
                &operator.access_token,
            ))
            .await,
        "email_prefix",
        "email_prefix",
    );
    assert_refused_naming(
        ops.clone()
            .list_users(bearer(
                ListUsersRequest {
                    page_token: long.clone(),
                    ..Default::default()
                },
                &operator.access_token,
            ))
            .await,
        "page_token",
        "page_token",
    );
    assert_refused_naming(
        ops.clone()
            .reset_user_mfa(bearer(
                ResetUserMfaRequest {
                    user_id: victim.id.clone(),
                    reason: long.clone(),
                },
                &operator.access_token,
            ))
            .await,
        "reason",
        "reason",
    );
    let wrong_guess = gateway
        .clone()
        .refresh_token(RefreshTokenRequest {
            refresh_token: long.clone(),
        })
        .await
        .expect_err("a 10 kB refresh token");
    assert!(
        matches!(
            wrong_guess.code(),
            Code::InvalidArgument | Code::Unauthenticated
        ),
        "{wrong_guess:?}"
    );
    let reset = gateway
        .clone()
        .reset_password(ResetPasswordRequest {
            reset_token: long.clone(),
            new_password: "another fine passphrase".into(),
        })
        .await
        .expect_err("a 10 kB reset code");
    assert!(
        matches!(reset.code(), Code::InvalidArgument | Code::Unauthenticated),
        "{reset:?}"
    );
    stack.shutdown().await;
}

/// Lists users one per page with `token`, as `operator`.
async fn list_users_page(
    sandbox: &Sandbox,
    token: &str,
    email_prefix: &str,
    page_token: &str,
) -> Result<fitflow_proto::identity::ListUsersResponse, tonic::Status> {
    sandbox
        .identity_as_operator()
        .list_users(bearer(
            ListUsersRequest {
                page_size: 1,
                page_token: page_token.into(),
                email_prefix: email_prefix.into(),
                ..Default::default()
            },
            token,
        ))
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn list_users_page_tokens_forged_truncated_or_from_another_operator_or_query_are_refused() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    for name in ["One", "Two", "Three"] {
        sandbox.register(name).await;
    }
    let (_, operator) = sandbox.operator().await;
    let (_, other_operator) = sandbox.operator().await;
    let first = list_users_page(&sandbox, &operator.access_token, "user-", "")
        .await
        .expect("the first page");
    let token = first.next_page_token.clone();
    assert!(!token.is_empty(), "more pages follow");
    // Replaying one's own token is fine: it names a position, not a grant.
    let second = list_users_page(&sandbox, &operator.access_token, "user-", &token)
        .await
        .expect("the second page");
    let again = list_users_page(&sandbox, &operator.access_token, "user-", &token)
        .await
        .expect("the second page again");
    assert_eq!(second.users[0].id, again.users[0].id);

    let mut forged = Vec::new();
    forged.push(token[..token.len() / 2].to_owned());
    forged.push(format!("{token}A"));
    let mut flipped = token.clone().into_bytes();
    let middle = flipped.len() / 2;
    flipped[middle] = if flipped[middle] == b'A' { b'B' } else { b'A' };
    forged.push(String::from_utf8(flipped).expect("ascii"));
    forged.push("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into());
    forged.push(Uuid::new_v4().to_string());
    forged.push("%%%not base64%%%".into());
    for bad in &forged {
        let status = list_users_page(&sandbox, &operator.access_token, "user-", bad)
            .await
            .expect_err("a forged page token");
        assert_eq!(status.code(), Code::InvalidArgument, "{bad:?}: {status:?}");
        assert_eq!(violated_fields(&status), ["page_token"], "{bad:?}");
    }
    let other = list_users_page(&sandbox, &other_operator.access_token, "user-", &token)
        .await
        .expect_err("another operator's token");
    assert_eq!(violated_fields(&other), ["page_token"]);
    let other_query = list_users_page(&sandbox, &operator.access_token, "user-o", &token)
        .await
        .expect_err("a token of another query");
    assert_eq!(violated_fields(&other_query), ["page_token"]);
    stack.shutdown().await;
}

fn at(seconds: i64, nanos: i32) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos })
}

/// Seconds since the epoch of 1 January of `year` (proleptic Gregorian).
fn year_start(year: i32) -> i64 {
    chrono::NaiveDate::from_ymd_opt(year, 1, 1)
        .expect("a date")
        .and_hms_opt(0, 0, 0)
        .expect("a time")
        .and_utc()
        .timestamp()
}

/// Filters that no PostgreSQL query can run, each with the field it breaks.
fn impossible_filters() -> Vec<(EventFilter, &'static str)> {
    let resource = |resource_type: &str| EventFilter {
        resource_type: resource_type.into(),
        ..Default::default()
    };
    vec![
        (
            EventFilter {
                start_time: at(i64::MIN, 0),
                ..Default::default()
            },
            "filter.start_time",
        ),
        (
            EventFilter {
                start_time: at(i64::MAX, 999_999_999),
                ..Default::default()
            },
            "filter.start_time",
        ),
        (
            EventFilter {
                end_time: at(year_start(-5000), 0),
                ..Default::default()
            },
            "filter.end_time",
        ),
        (
            EventFilter {
                end_time: at(year_start(-4714), 0),
                ..Default::default()
            },
            "filter.end_time",
        ),
        (
            EventFilter {
                end_time: at(year_start(200_000), 0),
                ..Default::default()
            },
            "filter.end_time",
        ),
        (
            EventFilter {
                start_time: at(0, -1),
                ..Default::default()
            },
            "filter.start_time",
        ),
        (
            EventFilter {
                start_time: at(0, 1_000_000_000),
                ..Default::default()
            },
            "filter.start_time",
        ),
        (
            EventFilter {
                start_time: at(year_start(2026), 0),
                end_time: at(year_start(2025), 0),
                ..Default::default()
            },
            "filter.end_time",
        ),
        (resource("users\0"), "filter.resource_type"),
        (resource("users\u{1b}"), "filter.resource_type"),
        (resource(&"x".repeat(10_000)), "filter.resource_type"),
        (
            EventFilter {
                resource_id: Uuid::new_v4().to_string(),
                ..Default::default()
            },
            "filter.resource_id",
        ),
        (
            EventFilter {
                actor_user_id: "\0".into(),
                ..Default::default()
            },
            "filter.actor_user_id",
        ),
        (
            EventFilter {
                tenant_id: "' OR 1=1 --".into(),
                ..Default::default()
            },
            "filter.tenant_id",
        ),
        (
            EventFilter {
                source_service: "identity\0".into(),
                ..Default::default()
            },
            "filter.source_service",
        ),
        (
            EventFilter {
                source_service: "a".repeat(100_000),
                ..Default::default()
            },
            "filter.source_service",
        ),
        (
            EventFilter {
                log: 99,
                ..Default::default()
            },
            "filter.log",
        ),
    ]
}

async fn export_events_recorded(pool: &PgPool) -> i64 {
    count(
        pool,
        "SELECT count(*) FROM audit.access_log WHERE action = 'export'",
    )
    .await
}

#[tokio::test]
async fn audit_filters_with_impossible_times_or_hostile_text_are_refused_by_name_and_export_nothing()
 {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY, AUDIT]).await;
    let (_, operator) = sandbox.operator().await;
    let admin = sandbox.db.admin_pool().await;
    let exports_before = export_events_recorded(&admin).await;
    for (filter, field) in impossible_filters() {
        let what = format!("{field}: {filter:?}")
            .chars()
            .take(200)
            .collect::<String>();
        assert_refused_naming(
            sandbox
                .audit()
                .list_events(bearer(
                    ListEventsRequest {
                        filter: Some(filter.clone()),
                        page_size: 10,
                        page_token: String::new(),
                    },
                    &operator.access_token,
                ))
                .await,
            field,
            &what,
        );
        assert_refused_naming(
            sandbox
                .audit()
                .export_events(bearer(
                    ExportEventsRequest {
                        filter: Some(filter),
                        purpose: fitflow_proto::audit::Purpose::Operations as i32,
                    },
                    &operator.access_token,
                ))
                .await,
            field,
            &what,
        );
    }
    // The oldest and newest times PostgreSQL stores are a query like any other.
    sandbox
        .audit()
        .list_events(bearer(
            ListEventsRequest {
                filter: Some(EventFilter {
                    start_time: at(year_start(1), 0),
                    end_time: at(year_start(9999), 0),
                    ..Default::default()
                }),
                page_size: 10,
                page_token: String::new(),
            },
            &operator.access_token,
        ))
        .await
        .expect("the widest storable window");
    for page_size in [-1, i32::MIN] {
        assert_refused_naming(
            sandbox
                .audit()
                .list_events(bearer(
                    ListEventsRequest {
                        filter: None,
                        page_size,
                        page_token: String::new(),
                    },
                    &operator.access_token,
                ))
                .await,
            "page_size",
            "a negative page size",
        );
    }
    sandbox
        .audit()
        .list_events(bearer(
            ListEventsRequest {
                filter: None,
                page_size: i32::MAX,
                page_token: String::new(),
            },
            &operator.access_token,
        ))
        .await
        .expect("a huge page size is cut to the maximum");
    assert_eq!(
        export_events_recorded(&admin).await,
        exports_before,
        "no refused export was recorded as a disclosure"
    );
    stack.shutdown().await;
}

/// Ingests `events` as `peer` in one batch; the answer.
async fn ingest(
    sandbox: &Sandbox,
    peer: &str,
    events: Vec<AuditEvent>,
) -> Result<IngestResponse, tonic::Status> {
    let mut responses = sandbox
        .audit_ingest(peer)
        .ingest(futures::stream::iter([IngestRequest { events }]))
        .await?
        .into_inner();
    Ok(responses.message().await?.expect("one answer"))
}

/// A change that spoils an otherwise valid event.
type Poison = Box<dyn Fn(&mut AuditEvent)>;

fn billing_event() -> AuditEvent {
    AuditEventBuilder::new("billing", Action::Update, "invoices", Uuid::new_v4())
        .actor_user(Uuid::new_v4())
        .change("status", "draft", "issued")
        .build()
}

/// A page of `ListEvents` of billing's `invoices`, as `token`.
async fn list_invoices(
    sandbox: &Sandbox,
    token: &str,
    resource_type: &str,
    page_token: &str,
) -> Result<fitflow_proto::audit::ListEventsResponse, tonic::Status> {
    sandbox
        .audit()
        .list_events(bearer(
            ListEventsRequest {
                filter: Some(EventFilter {
                    resource_type: resource_type.into(),
                    source_service: "billing".into(),
                    ..Default::default()
                }),
                page_size: 1,
                page_token: page_token.into(),
            },
            token,
        ))
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn list_events_page_tokens_forged_truncated_or_from_another_operator_or_query_are_refused() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY, AUDIT]).await;
    let answer = ingest(
        &sandbox,
        "billing",
        (0..3).map(|_| billing_event()).collect(),
    )
    .await
    .expect("ingest");
    assert!(answer.rejected.is_empty());
    let (_, operator) = sandbox.operator().await;
    let (_, other_operator) = sandbox.operator().await;
    let first = list_invoices(&sandbox, &operator.access_token, "invoices", "")
        .await
        .expect("the first page");
    let token = first.next_page_token;
    assert!(!token.is_empty());
    let replayed = list_invoices(&sandbox, &operator.access_token, "invoices", &token)
        .await
        .expect("a replayed token of one's own query");
    assert_eq!(replayed.events.len(), 1);

    let mut flipped = token.clone().into_bytes();
    let middle = flipped.len() / 2;
    flipped[middle] = if flipped[middle] == b'A' { b'B' } else { b'A' };
    let forged = [
        token[..token.len() / 2].to_owned(),
        format!("{token}AA"),
        String::from_utf8(flipped).expect("ascii"),
        "AAAA".into(),
        "\0".into(),
        "a".repeat(100_000),
    ];
    for bad in &forged {
        let status = list_invoices(&sandbox, &operator.access_token, "invoices", bad)
            .await
            .expect_err("a forged page token");
        let shown: String = bad.chars().take(40).collect();
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{shown:?}: {status:?}"
        );
        assert_eq!(violated_fields(&status), ["page_token"], "{shown:?}");
    }
    let other = list_invoices(&sandbox, &other_operator.access_token, "invoices", &token)
        .await
        .expect_err("another operator's token");
    assert_eq!(violated_fields(&other), ["page_token"]);
    let other_query = list_invoices(&sandbox, &operator.access_token, "refunds", &token)
        .await
        .expect_err("a token of another query");
    assert_eq!(violated_fields(&other_query), ["page_token"]);
    stack.shutdown().await;
}

#[tokio::test]
async fn one_poisoned_event_is_refused_on_its_own_and_the_rest_of_its_batch_is_stored() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY, AUDIT]).await;
    let admin = sandbox.db.admin_pool().await;
    let poisons: Vec<(&str, Poison)> = vec![
        (
            "NUL resource type",
            Box::new(|event| event.resource_type = "invoices\0".into()),
        ),
        (
            "NUL change value",
            Box::new(|event| event.changes[0].new_value = "issu\0ed".into()),
        ),
        (
            "ESC change field",
            Box::new(|event| event.changes[0].field = "st\u{1b}atus".into()),
        ),
        (
            "NUL user agent",
            Box::new(|event| event.user_agent = "\0".into()),
        ),
        (
            "year -5000",
            Box::new(|event| event.occur_time = at(year_start(-5000), 0)),
        ),
        (
            "seconds i64::MIN",
            Box::new(|event| event.occur_time = at(i64::MIN, 0)),
        ),
        (
            "negative nanos",
            Box::new(|event| event.occur_time = at(0, -5)),
        ),
        (
            "a year ahead",
            Box::new(|event| {
                event.occur_time = at(chrono::Utc::now().timestamp() + 366 * 86_400, 0)
            }),
        ),
        ("no occur time", Box::new(|event| event.occur_time = None)),
        (
            "bad event id",
            Box::new(|event| event.event_id = "' OR 1=1".into()),
        ),
        (
            "spoofed source",
            Box::new(|event| event.source_service = "identity".into()),
        ),
        (
            "spoofed service actor",
            Box::new(|event| {
                event.actor = Some(fitflow_proto::types::Actor {
                    kind: Some(fitflow_proto::types::actor::Kind::Service(
                        "spiffe://fitflow/identity".into(),
                    )),
                });
            }),
        ),
        (
            "foreign spiffe actor",
            Box::new(|event| {
                event.actor = Some(fitflow_proto::types::Actor {
                    kind: Some(fitflow_proto::types::actor::Kind::Service(
                        "spiffe://evil/billing".into(),
                    )),
                });
            }),
        ),
        ("no actor", Box::new(|event| event.actor = None)),
        (
            "bad client address",
            Box::new(|event| event.client_address = "198.51.100.1\0".into()),
        ),
        (
            "bad tenant",
            Box::new(|event| event.tenant_id = "tenant".into()),
        ),
        (
            "bad trace id",
            Box::new(|event| event.trace_id = "00000000000000000000000000000000".into()),
        ),
        ("unknown action", Box::new(|event| event.action = 99)),
        (
            "huge change value",
            Box::new(|event| event.changes[0].new_value = "x".repeat(5_000)),
        ),
        (
            "RTL override kind",
            Box::new(|event| event.resource_type = "invoices\u{202e}".into()),
        ),
    ];
    let mut batch = Vec::new();
    let mut poisoned_at = Vec::new();
    for (name, poison) in &poisons {
        batch.push(billing_event());
        let mut event = billing_event();
        poison(&mut event);
        poisoned_at.push((batch.len(), *name));
        batch.push(event);
    }
    batch.push(billing_event());
    let valid_ids: Vec<String> = batch
        .iter()
        .enumerate()
        .filter(|(index, _)| !poisoned_at.iter().any(|(at, _)| at == index))
        .map(|(_, event)| event.event_id.clone())
        .collect();
    let answer = ingest(&sandbox, "billing", batch)
        .await
        .expect("the batch is answered");
    let rejected: HashMap<u32, String> = answer
        .rejected
        .iter()
        .map(|rejected| (rejected.index, rejected.reason.clone()))
        .collect();
    for (index, name) in &poisoned_at {
        // A bidi override in a kind is not a control character; it is stored as sent.
        if *name == "RTL override kind" {
            continue;
        }
        let reason = rejected
            .get(&u32::try_from(*index).expect("small"))
            .unwrap_or_else(|| panic!("{name} was not rejected: {:?}", answer.rejected));
        assert!(
            reason.starts_with(&format!("events[{index}].")),
            "{name}: {reason}"
        );
        assert!(
            !reason.contains('\0'),
            "{name}: the reason never echoes the value"
        );
    }
    for id in &valid_ids {
        assert!(
            answer.acknowledged_event_ids.contains(id),
            "a valid event was lost"
        );
    }
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit.audit_log WHERE source_service = 'billing' AND event_id = ANY($1)",
    )
    .bind(valid_ids.iter().map(|id| Uuid::parse_str(id).expect("uuid")).collect::<Vec<_>>())
    .fetch_one(&admin)
    .await
    .expect("count");
    assert_eq!(stored, valid_ids.len() as i64);
    let (_, operator) = sandbox.operator().await;
    let verified = sandbox
        .audit()
        .verify_chain(bearer(
            VerifyChainRequest {
                source_service: "billing".into(),
            },
            &operator.access_token,
        ))
        .await
        .expect("verify")
        .into_inner();
    assert!(verified.intact, "{verified:?}");
    stack.shutdown().await;
}

#[tokio::test]
async fn an_event_id_taken_by_another_source_cannot_suppress_its_event_nor_can_a_replay() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY, AUDIT]).await;
    let admin = sandbox.db.admin_pool().await;
    let genuine = billing_event();
    // Scheduling learns billing's next event id and sends it first.
    let mut squatter =
        AuditEventBuilder::new("scheduling", Action::Delete, "appointments", Uuid::new_v4())
            .actor_user(Uuid::new_v4())
            .build();
    squatter.event_id = genuine.event_id.clone();
    let first = ingest(&sandbox, "scheduling", vec![squatter])
        .await
        .expect("ingest");
    assert!(first.rejected.is_empty());
    let second = ingest(&sandbox, "billing", vec![genuine.clone()])
        .await
        .expect("ingest");
    assert!(second.rejected.is_empty());
    assert_eq!(second.acknowledged_event_ids, [genuine.event_id.as_str()]);
    // A replay of billing's own event is a duplicate, acknowledged and not stored twice.
    let mut replay = genuine.clone();
    replay.changes[0].new_value = "void".into();
    let third = ingest(&sandbox, "billing", vec![replay])
        .await
        .expect("ingest");
    assert_eq!(third.acknowledged_event_ids, [genuine.event_id.as_str()]);
    let rows: Vec<(String, serde_json::Value)> =
        sqlx::query_as("SELECT source_service, changes FROM audit.audit_log WHERE event_id = $1 ORDER BY source_service")
            .bind(Uuid::parse_str(&genuine.event_id).expect("uuid"))
            .fetch_all(&admin)
            .await
            .expect("rows");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0].0, "billing");
    assert_eq!(
        rows[0].1[0]["new_value"], "issued",
        "the first version is kept"
    );
    assert_eq!(rows[1].0, "scheduling");
    // Edge peers never ingest.
    for peer in ["gateway", "operator"] {
        let refused = ingest(&sandbox, peer, vec![billing_event()])
            .await
            .expect_err("an edge peer ingests");
        assert_eq!(refused.code(), Code::PermissionDenied, "{peer}");
    }
    stack.shutdown().await;
}

#[tokio::test]
async fn a_revoked_sessions_access_token_is_refused_at_every_identity_rpc() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY, AUDIT]).await;
    let (user, email) = sandbox.register("Robbed").await;
    let stolen = sandbox.login(&email).await;
    let kept = sandbox.login(&email).await;
    sandbox
        .identity()
        .revoke_session(bearer(
            RevokeSessionRequest {
                session_id: stolen.session_id.clone(),
            },
            &kept.access_token,
        ))
        .await
        .expect("the owner revokes the stolen session");
    let token = stolen.access_token.as_str();
    let gateway = sandbox.identity();
    fitflow_testkit::eventually(
        "the stolen token is refused",
        Duration::from_secs(10),
        async || {
            gateway
                .clone()
                .get_current_user(bearer(GetCurrentUserRequest {}, token))
                .await
                .is_err_and(|status| status.code() == Code::Unauthenticated)
        },
    )
    .await;
    let mask = Some(prost_types::FieldMask {
        paths: vec!["display_name".into()],
    });
    let answers: Vec<(&str, Result<(), tonic::Status>)> = vec![
        (
            "UpdateProfile",
            gateway
                .clone()
                .update_profile(bearer(
                    UpdateProfileRequest {
                        display_name: "Thief".into(),
                        update_mask: mask,
                        etag: String::new(),
                    },
                    token,
                ))
                .await
                .map(drop),
        ),
        (
            "ListSessions",
            gateway
                .clone()
                .list_sessions(bearer(ListSessionsRequest::default(), token))
                .await
                .map(drop),
        ),
        (
            "RevokeSession",
            gateway
                .clone()
                .revoke_session(bearer(
                    RevokeSessionRequest {
                        session_id: kept.session_id.clone(),
                    },
                    token,
                ))
                .await
                .map(drop),
        ),
        (
            "RevokeAllSessions",
            gateway
                .clone()
                .revoke_all_sessions(bearer(RevokeAllSessionsRequest {}, token))
                .await
                .map(drop),
        ),
        (
            "ChangePassword",
            gateway
                .clone()
                .change_password(bearer(
                    ChangePasswordRequest {
                        current_password: PASSWORD.into(),
                        new_password: "the thief's own passphrase".into(),
                    },
                    token,
                ))
                .await
                .map(drop),
        ),
        (
            "EnrollMfa",
            gateway
                .clone()
                .enroll_mfa(bearer(
                    EnrollMfaRequest {
                        current_password: PASSWORD.into(),
                    },
                    token,
                ))
                .await
                .map(drop),
        ),
        (
            "DisableMfa",
            gateway
                .clone()
                .disable_mfa(bearer(
                    DisableMfaRequest {
                        password: PASSWORD.into(),
                        proof: Some(disable_mfa_request::Proof::TotpCode("123456".into())),
                    },
                    token,
                ))
                .await
                .map(drop),
        ),
    ];
    for (rpc, answer) in answers {
        let status = answer.expect_err(rpc);
        assert_eq!(status.code(), Code::Unauthenticated, "{rpc}: {status:?}");
    }
    let own_trail = ListEventsRequest {
        filter: Some(EventFilter {
            tenant_id: user.id.clone(),
            ..Default::default()
        }),
        page_size: 1,
        page_token: String::new(),
    };
    let mut audit_gateway = fitflow_proto::audit::audit_service_client::AuditServiceClient::new(
        sandbox.channel(AUDIT, "gateway"),
    );
    fitflow_testkit::eventually(
        "audit refuses the stolen token",
        Duration::from_secs(10),
        async || {
            audit_gateway
                .list_events(bearer(own_trail.clone(), token))
                .await
                .is_err_and(|status| status.code() == Code::Unauthenticated)
        },
    )
    .await;
    // The owner's other session and password are untouched.
    let me = gateway
        .clone()
        .get_current_user(bearer(GetCurrentUserRequest {}, &kept.access_token))
        .await
        .expect("the owner is still signed in")
        .into_inner()
        .user
        .expect("user");
    assert_eq!(me.display_name, "Robbed");
    assert!(!me.mfa_enabled);
    sandbox.login(&email).await;
    stack.shutdown().await;
}

/// Runs `calls` concurrently; counts the answers by code.
async fn race<F, Fut>(calls: usize, call: F) -> HashMap<Code, usize>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<(), tonic::Status>> + Send + 'static,
{
    let handles: Vec<_> = (0..calls).map(|index| tokio::spawn(call(index))).collect();
    let mut answers = HashMap::new();
    for handle in handles {
        let code = match handle.await.expect("the call ran") {
            Ok(()) => Code::Ok,
            Err(status) => status.code(),
        };
        *answers.entry(code).or_insert(0) += 1;
    }
    answers
}

#[tokio::test]
async fn hundred_concurrent_refreshes_of_one_token_leave_one_usable_pair_and_never_fail_inside() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (_, email) = sandbox.register("Raced").await;
    let tokens = sandbox.login(&email).await;
    let client = sandbox.identity();
    let refresh_token = tokens.refresh_token.clone();
    let answers = race(100, |_| {
        let mut client = client.clone();
        let refresh_token = refresh_token.clone();
        async move {
            client
                .refresh_token(RefreshTokenRequest { refresh_token })
                .await
                .map(drop)
        }
    })
    .await;
    let ok = answers.get(&Code::Ok).copied().unwrap_or_default();
    assert!(
        (1..=2).contains(&ok),
        "a rotation and at most its retry: {answers:?}"
    );
    assert!(
        answers
            .keys()
            .all(|code| matches!(code, Code::Ok | Code::Unauthenticated)),
        "{answers:?}"
    );
    let admin = sandbox.db.admin_pool().await;
    let usable: i64 = sqlx::query_scalar(
        "SELECT count(*) FILTER (WHERE spent_at IS NULL AND revoked_at IS NULL) \
         FROM identity.refresh_tokens WHERE session_id = $1::uuid",
    )
    .bind(&tokens.session_id)
    .fetch_one(&admin)
    .await
    .expect("count");
    assert!(
        usable <= 1,
        "at most one refresh token of the session is usable: {usable}"
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn hundred_concurrent_uses_of_one_reset_code_set_exactly_one_password() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (_, email) = sandbox.register("Forgetful").await;
    sandbox
        .identity()
        .request_password_reset(RequestPasswordResetRequest {
            email: email.clone(),
        })
        .await
        .expect("request a reset");
    let code = sandbox.mailed_code(&email, "Reset your password", 1).await;
    let client = sandbox.identity();
    let winners = Arc::new(std::sync::Mutex::new(Vec::new()));
    let answers = race(100, |index| {
        let mut client = client.clone();
        let code = code.clone();
        let winners = Arc::clone(&winners);
        async move {
            let new_password = format!("raced passphrase number {index}");
            client
                .reset_password(ResetPasswordRequest {
                    reset_token: code,
                    new_password: new_password.clone(),
                })
                .await?;
            winners.lock().expect("winners").push(new_password);
            Ok(())
        }
    })
    .await;
    assert_eq!(answers.get(&Code::Ok), Some(&1), "{answers:?}");
    assert!(
        answers.keys().all(|code| matches!(
            code,
            // Beyond the hashing gate's queue a call is turned away to retry.
            Code::Ok
                | Code::InvalidArgument
                | Code::Unauthenticated
                | Code::FailedPrecondition
                | Code::NotFound
                | Code::ResourceExhausted
        )),
        "{answers:?}"
    );
    let winner = winners.lock().expect("winners")[0].clone();
    sandbox
        .identity()
        .login(LoginRequest {
            email: email.clone(),
            password: winner,
            client_address: "198.51.100.60".into(),
            user_agent: "e2e".into(),
        })
        .await
        .expect("the one password set works");
    let old = sandbox
        .try_login(&email, PASSWORD, "198.51.100.61")
        .await
        .expect_err("the old password is gone");
    assert_eq!(reason(&old), "INVALID_CREDENTIALS");
    stack.shutdown().await;
}

/// What a flood answered and what the bystander saw meanwhile.
struct Flood {
    answers: HashMap<Code, usize>,
    bystander_ok: u64,
    bystander_failures: Vec<Code>,
}

/// Runs `callers` copies of `call` at once while the bystander reads their
/// own account one call at a time.
async fn flood<F, Fut>(sandbox: &Sandbox, bystander_token: &str, callers: usize, call: F) -> Flood
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<(), tonic::Status>> + Send + 'static,
{
    let done = Arc::new(AtomicBool::new(false));
    let bystander = tokio::spawn({
        let done = Arc::clone(&done);
        let mut identity = sandbox.identity();
        let token = bystander_token.to_owned();
        async move {
            let (mut ok, mut failures) = (0_u64, Vec::new());
            loop {
                match identity
                    .get_current_user(bearer(GetCurrentUserRequest {}, &token))
                    .await
                {
                    Ok(_) => ok += 1,
                    Err(status) => failures.push(status.code()),
                }
                if done.load(Ordering::Relaxed) {
                    break (ok, failures);
                }
            }
        }
    });
    let answers = race(callers, call).await;
    done.store(true, Ordering::Relaxed);
    let (bystander_ok, bystander_failures) = bystander.await.expect("the bystander ran");
    Flood {
        answers,
        bystander_ok,
        bystander_failures,
    }
}

#[tokio::test]
async fn five_hundred_concurrent_broad_user_listings_never_fail_inside_and_another_user_is_served_hundred_concurrent()
 {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    for index in 0..20 {
        sandbox.register(&format!("Listed {index}")).await;
    }
    let (_, operator) = sandbox.operator().await;
    let (_, bystander_email) = sandbox.register("Bystander").await;
    let bystander = sandbox.login(&bystander_email).await;
    let clients: Vec<_> = (0..5).map(|_| sandbox.identity_as_operator()).collect();
    let token = operator.access_token.clone();
    let outcome = flood(&sandbox, &bystander.access_token, 500, |index| {
        let mut client = clients[index % clients.len()].clone();
        let token = token.clone();
        async move {
            client
                .list_users(bearer(
                    ListUsersRequest {
                        page_size: 100,
                        email_prefix: "user-".into(),
                        ..Default::default()
                    },
                    &token,
                ))
                .await
                .map(drop)
        }
    })
    .await;
    assert!(
        outcome
            .answers
            .keys()
            .all(|code| matches!(code, Code::Ok | Code::ResourceExhausted | Code::Unavailable)),
        "{:?}",
        outcome.answers
    );
    assert!(
        outcome.answers.contains_key(&Code::Ok),
        "{:?}",
        outcome.answers
    );
    assert!(outcome.bystander_ok >= 1);
    assert!(
        outcome.bystander_failures.is_empty(),
        "the bystander was refused: {:?} (flood: {:?})",
        outcome.bystander_failures,
        outcome.answers
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn five_hundred_concurrent_trail_exports_never_fail_inside_and_another_user_is_served_hundred_concurrent()
 {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY, AUDIT]).await;
    let answer = ingest(
        &sandbox,
        "billing",
        (0..200).map(|_| billing_event()).collect(),
    )
    .await
    .expect("ingest");
    assert!(answer.rejected.is_empty());
    let (_, operator) = sandbox.operator().await;
    let (bystander_user, bystander_email) = sandbox.register("Bystander").await;
    let bystander = sandbox.login(&bystander_email).await;
    // Meanwhile a trainer reads their own trail through the gateway and
    // billing keeps ingesting: the exports must not starve either.
    let trail_done = Arc::new(AtomicBool::new(false));
    let trail_reader = tokio::spawn({
        let done = Arc::clone(&trail_done);
        let mut audit = fitflow_proto::audit::audit_service_client::AuditServiceClient::new(
            sandbox.channel(AUDIT, "gateway"),
        );
        let mut ingestion = sandbox.audit_ingest("billing");
        let token = bystander.access_token.clone();
        let tenant_id = bystander_user.id.clone();
        async move {
            let mut failures = Vec::new();
            loop {
                let own_trail = ListEventsRequest {
                    filter: Some(EventFilter {
                        tenant_id: tenant_id.clone(),
                        ..Default::default()
                    }),
                    page_size: 10,
                    page_token: String::new(),
                };
                if let Err(status) = audit.list_events(bearer(own_trail, &token)).await {
                    failures.push(format!(
                        "ListEvents {:?} {}",
                        status.code(),
                        reason(&status)
                    ));
                }
                let batch = IngestRequest {
                    events: vec![billing_event()],
                };
                match ingestion.ingest(futures::stream::iter([batch])).await {
                    Ok(answer) => match answer.into_inner().message().await {
                        Ok(Some(answer)) if answer.rejected.is_empty() => {}
                        other => failures.push(format!("Ingest {other:?}")),
                    },
                    Err(status) => {
                        failures.push(format!("Ingest {:?} {}", status.code(), reason(&status)));
                    }
                }
                if done.load(Ordering::Relaxed) {
                    break failures;
                }
            }
        }
    });
    let clients: Vec<_> = (0..5).map(|_| sandbox.audit()).collect();
    let token = operator.access_token.clone();
    let outcome = flood(&sandbox, &bystander.access_token, 500, |index| {
        let mut client = clients[index % clients.len()].clone();
        let token = token.clone();
        async move {
            let mut stream = match client
                .export_events(bearer(
                    ExportEventsRequest {
                        filter: None,
                        purpose: fitflow_proto::audit::Purpose::Operations as i32,
                    },
                    &token,
                ))
                .await
            {
                Ok(response) => response.into_inner(),
                // Turned away: only with its reason and a retry hint.
                Err(status)
                    if status.code() == Code::ResourceExhausted
                        && (reason(&status) != "EXPORTS_BUSY"
                            || crate::identity_support::retry_delay(&status).is_none()) =>
                {
                    return Err(tonic::Status::unknown(format!(
                        "busy without reason or hint: {status:?}"
                    )));
                }
                Err(status) => return Err(status),
            };
            while stream.message().await?.is_some() {}
            Ok(())
        }
    })
    .await;
    assert!(
        outcome
            .answers
            .keys()
            .all(|code| matches!(code, Code::Ok | Code::ResourceExhausted)),
        "{:?}",
        outcome.answers
    );
    assert!(
        outcome.answers.contains_key(&Code::Ok),
        "{:?}",
        outcome.answers
    );
    assert!(outcome.bystander_ok >= 1);
    assert!(
        outcome.bystander_failures.is_empty(),
        "{:?}",
        outcome.bystander_failures
    );
    trail_done.store(true, Ordering::Relaxed);
    let trail_failures = trail_reader.await.expect("the trail reader ran");
    assert!(
        trail_failures.is_empty(),
        "the trainer's trail or billing's ingestion was starved: {trail_failures:?} (flood: {:?})",
        outcome.answers
    );
    // Every export that ran is in the trail, and no refused one.
    let admin = sandbox.db.admin_pool().await;
    let recorded = export_events_recorded(&admin).await;
    let answered = outcome.answers.get(&Code::Ok).copied().unwrap_or_default() as i64;
    assert_eq!(recorded, answered, "EXPORT events for the exports that ran");
    stack.shutdown().await;
}

#[tokio::test]
async fn the_operator_directory_and_trail_refuse_a_password_only_operator_and_the_gateway_peer() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY, AUDIT]).await;
    let (victim, _) = sandbox.register("Victim").await;
    let (_, _, password_only) = sandbox.operator_without_mfa().await;
    let (_, operator) = sandbox.operator().await;
    let admin = sandbox.db.admin_pool().await;
    // Audit runs, so identity's outbox drains: count what a refused call could
    // have written that stays.
    let accounts_and_sessions = "SELECT (SELECT count(*) FROM identity.users) \
        + (SELECT count(*) FROM identity.sessions) \
        + (SELECT count(*) FROM identity.users WHERE mfa_enabled)";
    let before = count(&admin, accounts_and_sessions).await;
    let exports_before = export_events_recorded(&admin).await;
    let mut audit_gateway = fitflow_proto::audit::audit_service_client::AuditServiceClient::new(
        sandbox.channel(AUDIT, "gateway"),
    );
    for (peer, token) in [
        ("operator", password_only.access_token.as_str()),
        ("gateway", operator.access_token.as_str()),
    ] {
        let mut identity =
            fitflow_proto::identity::identity_service_client::IdentityServiceClient::new(
                sandbox.channel(IDENTITY, peer),
            );
        let answers: Vec<(&str, tonic::Status)> = vec![
            (
                "ListUsers",
                identity
                    .list_users(bearer(ListUsersRequest::default(), token))
                    .await
                    .expect_err("ListUsers"),
            ),
            (
                "GetUser",
                identity
                    .get_user(bearer(
                        GetUserRequest {
                            user_id: victim.id.clone(),
                        },
                        token,
                    ))
                    .await
                    .expect_err("GetUser"),
            ),
            (
                "ResetUserMfa",
                identity
                    .reset_user_mfa(bearer(
                        ResetUserMfaRequest {
                            user_id: victim.id.clone(),
                            reason: "ticket 7".into(),
                        },
                        token,
                    ))
                    .await
                    .expect_err("ResetUserMfa"),
            ),
            (
                "ExportEvents",
                match audit_gateway
                    .export_events(bearer(
                        ExportEventsRequest {
                            filter: None,
                            purpose: fitflow_proto::audit::Purpose::Operations as i32,
                        },
                        token,
                    ))
                    .await
                {
                    Ok(mut stream) => stream
                        .get_mut()
                        .message()
                        .await
                        .expect_err("an export of the whole trail"),
                    Err(status) => status,
                },
            ),
            (
                "VerifyChain",
                audit_gateway
                    .verify_chain(bearer(VerifyChainRequest::default(), token))
                    .await
                    .expect_err("VerifyChain"),
            ),
        ];
        for (rpc, status) in answers {
            assert_eq!(
                status.code(),
                Code::PermissionDenied,
                "{peer} {rpc}: {status:?}"
            );
        }
    }
    // A real operator through the operator peer, with hostile arguments.
    let ops = sandbox.identity_as_operator();
    let unknown = ops
        .clone()
        .get_user(bearer(
            GetUserRequest {
                user_id: Uuid::new_v4().to_string(),
            },
            &operator.access_token,
        ))
        .await
        .expect_err("an unknown user");
    assert_eq!(unknown.code(), Code::NotFound);
    for source_service in ["billing\0", "Billing", &"a".repeat(65)] {
        assert_refused_naming(
            sandbox
                .audit()
                .verify_chain(bearer(
                    VerifyChainRequest {
                        source_service: source_service.to_owned(),
                    },
                    &operator.access_token,
                ))
                .await,
            "source_service",
            source_service,
        );
    }
    assert_refused_naming(
        sandbox
            .audit()
            .export_events(bearer(
                ExportEventsRequest {
                    filter: None,
                    purpose: 99,
                },
                &operator.access_token,
            ))
            .await,
        "purpose",
        "an unknown purpose",
    );
    assert_eq!(
        count(&admin, accounts_and_sessions).await,
        before,
        "nothing was written"
    );
    assert_eq!(export_events_recorded(&admin).await, exports_before);
    stack.shutdown().await;
}
