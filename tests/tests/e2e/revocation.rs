//! Revocation in seconds (DESIGN.md §4): identity pushes revoked sessions,
//! disabled accounts and stale structure claims to every service, whose
//! verifier refuses the tokens they name long before those expire. Each
//! test polls with a generous deadline: these are correctness tests, not
//! timing ones (`fitflow bench --scenario revocation` measures the delay).

use std::time::Duration;

use fitflow_e2e::{AUDIT, IDENTITY, Sandbox, bearer};
use fitflow_proto::identity::{
    GetCurrentUserRequest, RefreshTokenRequest, RestoreUserRequest, RevokeSessionRequest,
    SuspendUserRequest, TokenPair,
};
use fitflow_proto::tenancy as pb;
use tonic::Code;

use crate::identity_support::reason;
use crate::tenancy::{
    TENANCY, answer, bench, claims_of, ids, invite_to_team, member, member_trail, tenancy, trainer,
};

/// Far beyond the ≤ 2 s the design promises: only a broken push fails it.
const DEADLINE: Duration = Duration::from_secs(30);

/// What tenancy answers `token` with: OK, or the refusal's reason.
async fn tenancy_answer(sandbox: &Sandbox, token: &str) -> Result<(), String> {
    tenancy(sandbox, "gateway")
        .list_studios(bearer(
            pb::ListStudiosRequest {
                page_size: 1,
                ..Default::default()
            },
            token,
        ))
        .await
        .map(drop)
        .map_err(|status| reason(&status))
}

/// What identity itself answers `token` with.
async fn identity_answer(sandbox: &Sandbox, token: &str) -> Result<(), String> {
    sandbox
        .identity()
        .get_current_user(bearer(GetCurrentUserRequest {}, token))
        .await
        .map(drop)
        .map_err(|status| reason(&status))
}

/// Waits until tenancy refuses `token` with `expected` (a reason).
async fn tenancy_refuses(sandbox: &Sandbox, token: &str, expected: &str) {
    fitflow_testkit::eventually(
        &format!("tenancy refuses the token with {expected}"),
        DEADLINE,
        async || tenancy_answer(sandbox, token).await == Err(expected.to_owned()),
    )
    .await;
}

async fn refresh(sandbox: &Sandbox, refresh_token: &str) -> TokenPair {
    sandbox
        .identity()
        .refresh_token(RefreshTokenRequest {
            refresh_token: refresh_token.into(),
        })
        .await
        .expect("refresh")
        .into_inner()
        .tokens
        .expect("tokens")
}

#[tokio::test]
async fn a_logged_out_sessions_token_is_refused_by_other_services_and_identity() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let (_, email) = sandbox.register("Logout").await;
    let phone = sandbox.login(&email).await;
    let laptop = sandbox.login(&email).await;
    assert_eq!(tenancy_answer(&sandbox, &phone.access_token).await, Ok(()));

    sandbox
        .identity()
        .revoke_session(bearer(
            RevokeSessionRequest {
                session_id: phone.session_id.clone(),
            },
            &laptop.access_token,
        ))
        .await
        .expect("log the phone out");

    tenancy_refuses(&sandbox, &phone.access_token, "TOKEN_REVOKED").await;
    // Identity follows its own stream like every service, on its own
    // subscription, so it may learn of the revocation a moment after
    // tenancy did (seen under load): the same bound applies to it.
    fitflow_testkit::eventually("identity honours the same set", DEADLINE, async || {
        identity_answer(&sandbox, &phone.access_token).await == Err("TOKEN_REVOKED".to_owned())
    })
    .await;
    assert_eq!(
        tenancy_answer(&sandbox, &laptop.access_token).await,
        Ok(()),
        "the other session is untouched"
    );
    assert_eq!(
        identity_answer(&sandbox, &laptop.access_token).await,
        Ok(()),
        "the other session is untouched at identity too"
    );
}

#[tokio::test]
async fn a_suspended_users_tokens_are_refused_and_a_login_after_restoring_is_accepted() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let (_, operator) = sandbox.operator().await;
    let (user, email) = sandbox.register("Suspended").await;
    let tokens = sandbox.login(&email).await;
    assert_eq!(tenancy_answer(&sandbox, &tokens.access_token).await, Ok(()));

    sandbox
        .identity_as_operator()
        .suspend_user(bearer(
            SuspendUserRequest {
                user_id: user.id.clone(),
            },
            &operator.access_token,
        ))
        .await
        .expect("suspend");
    tenancy_refuses(&sandbox, &tokens.access_token, "TOKEN_REVOKED").await;

    sandbox
        .identity_as_operator()
        .restore_user(bearer(
            RestoreUserRequest {
                user_id: user.id.clone(),
            },
            &operator.access_token,
        ))
        .await
        .expect("restore");
    let again = sandbox.login(&email).await;
    assert_eq!(
        tenancy_answer(&sandbox, &again.access_token).await,
        Ok(()),
        "a token issued after the suspension is not refused"
    );
    assert_eq!(
        tenancy_answer(&sandbox, &tokens.access_token).await,
        Err("TOKEN_REVOKED".to_owned()),
        "restoring does not bring the old sessions back"
    );
}

#[tokio::test]
async fn a_member_leaving_makes_the_leads_token_stale_until_it_is_refreshed() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let (lead_id, lead_email, lead_token) = trainer(&sandbox, "Lena").await;
    let (member_id, member_email, member_token) = trainer(&sandbox, "Milo").await;
    let invitation = invite_to_team(&sandbox, &lead_token, &lead_id, &member_email)
        .await
        .expect("invite");
    answer(&sandbox, &member_token, &invitation.id, true)
        .await
        .expect("join");
    // The join made the lead's older tokens stale too: log in once
    // identity knows, and audit, another service, honours the new team.
    sandbox.structure_settled().await;
    let lead = sandbox.login(&lead_email).await;
    assert_eq!(
        ids(&claims_of(&lead.access_token), "sup"),
        vec![member_id.clone()]
    );
    assert_eq!(
        member_trail(&sandbox, &lead.access_token, &member_id).await,
        Code::Ok
    );

    tenancy(&sandbox, "gateway")
        .leave_team(bearer(
            pb::LeaveTeamRequest {
                trainer_id: member_id.clone(),
            },
            &member_token,
        ))
        .await
        .expect("leave");

    fitflow_testkit::eventually(
        "audit refuses the lead's stale token",
        DEADLINE,
        async || {
            member_trail(&sandbox, &lead.access_token, &member_id).await == Code::Unauthenticated
        },
    )
    .await;
    let refused = audit_status(&sandbox, &lead.access_token, &lead_id).await;
    assert_eq!(
        refused.map_err(|status| reason(&status)),
        Err("TOKEN_STALE".to_owned())
    );
    // Tenancy reads the structure from its own tables, not from the token:
    // the stale token still works there.
    assert_eq!(tenancy_answer(&sandbox, &lead.access_token).await, Ok(()));
    // The member's own claims (those below them) did not change.
    assert_eq!(
        member_trail(&sandbox, &member_token, &member_id).await,
        Code::Ok
    );

    let refreshed = refresh(&sandbox, &lead.refresh_token).await;
    assert!(ids(&claims_of(&refreshed.access_token), "sup").is_empty());
    // Identity's record of the invalidation reaches the lead's trail (an
    // event naming tenancy as its actor would be refused by audit).
    fitflow_testkit::eventually(
        "the invalidation is in the lead's audit trail",
        DEADLINE,
        async || claims_invalidated_events(&sandbox, &refreshed.access_token, &lead_id).await > 0,
    )
    .await;
    assert_eq!(
        member_trail(&sandbox, &refreshed.access_token, &lead_id).await,
        Code::Ok,
        "the refreshed token is accepted again"
    );
    assert_eq!(
        member_trail(&sandbox, &refreshed.access_token, &member_id).await,
        Code::PermissionDenied,
        "and no longer acts for the member"
    );
}

/// How many of identity's `claims_invalidated` events `tenant_id`'s trail holds.
async fn claims_invalidated_events(sandbox: &Sandbox, token: &str, tenant_id: &str) -> usize {
    let request = fitflow_proto::audit::ListEventsRequest {
        filter: Some(fitflow_proto::audit::EventFilter {
            tenant_id: tenant_id.into(),
            source_service: "identity".into(),
            ..Default::default()
        }),
        page_size: 100,
        ..Default::default()
    };
    let Ok(response) = fitflow_proto::audit::audit_service_client::AuditServiceClient::new(
        sandbox.channel(AUDIT, "gateway"),
    )
    .list_events(bearer(request, token))
    .await
    else {
        return 0;
    };
    response
        .into_inner()
        .events
        .iter()
        .filter_map(|stored| stored.event.as_ref())
        .filter(|event| {
            event
                .changes
                .iter()
                .any(|change| change.new_value == "claims_invalidated")
        })
        .count()
}

/// Audit's answer to `token` reading `tenant_id`'s trail, with its status.
async fn audit_status(
    sandbox: &Sandbox,
    token: &str,
    tenant_id: &str,
) -> Result<(), tonic::Status> {
    let request = fitflow_proto::audit::ListEventsRequest {
        filter: Some(fitflow_proto::audit::EventFilter {
            tenant_id: tenant_id.into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    fitflow_proto::audit::audit_service_client::AuditServiceClient::new(
        sandbox.channel(AUDIT, "gateway"),
    )
    .list_events(bearer(request, token))
    .await
    .map(drop)
}

#[tokio::test]
async fn a_verifier_that_lost_its_stream_catches_up_when_identity_is_back() {
    let sandbox = Sandbox::new().await;
    let identity = sandbox.start(&[IDENTITY, AUDIT]).await;
    let tenancy_stack = sandbox.start(&[TENANCY]).await;
    let (_, email, _) = member(&sandbox, "Resume").await;
    let missed = sandbox.login(&email).await;
    let live = sandbox.login(&email).await;
    assert_eq!(tenancy_answer(&sandbox, &missed.access_token).await, Ok(()));
    assert_eq!(tenancy_answer(&sandbox, &live.access_token).await, Ok(()));

    identity.shutdown().await;
    // Committed while tenancy's stream was down (as another identity
    // replica would): tenancy must be replayed it when it resubscribes.
    let admin = sandbox.db.admin_pool().await;
    sqlx::query(
        "INSERT INTO identity.revocations (kind, subject_id, issued_before, expires_at) \
         VALUES ('session_revoked', $1, now(), now() + interval '16 minutes')",
    )
    .bind(uuid::Uuid::parse_str(&missed.session_id).expect("session id"))
    .execute(&admin)
    .await
    .expect("a revocation committed while the stream was down");
    assert_eq!(
        tenancy_answer(&sandbox, &missed.access_token).await,
        Ok(()),
        "not known yet"
    );

    let _identity = sandbox.start(&[IDENTITY, AUDIT]).await;
    tenancy_refuses(&sandbox, &missed.access_token, "TOKEN_REVOKED").await;
    // And the new stream carries what comes after.
    sandbox
        .identity()
        .revoke_session(bearer(
            RevokeSessionRequest {
                session_id: live.session_id.clone(),
            },
            &live.access_token,
        ))
        .await
        .expect("log out");
    tenancy_refuses(&sandbox, &live.access_token, "TOKEN_REVOKED").await;
    tenancy_stack.shutdown().await;
}

#[tokio::test]
async fn the_revocation_bench_measures_every_logout() {
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, TENANCY, AUDIT]).await;
    let output = bench(&sandbox, "revocation", "10").await;
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{printed}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Figures are printed, never asserted: only that every logout was seen.
    assert!(printed.contains("10 ok, 0 failed"), "{printed}");
    assert!(printed.contains("p99"), "{printed}");
}

#[tokio::test]
async fn only_fitflow_services_watch_revocations_and_only_tenancy_invalidates_claims() {
    use fitflow_proto::identity::identity_service_client::IdentityServiceClient;
    use fitflow_proto::identity::{InvalidateClaimsRequest, WatchRevocationsRequest};
    let sandbox = Sandbox::new().await;
    let _stack = sandbox.start(&[IDENTITY, AUDIT]).await;
    let watch = WatchRevocationsRequest { after_position: 0 };
    for peer in ["gateway", "operator"] {
        let refused = IdentityServiceClient::new(sandbox.channel(IDENTITY, peer))
            .watch_revocations(watch)
            .await
            .expect_err("an edge peer may not watch");
        assert_eq!(refused.code(), Code::PermissionDenied, "{peer}");
        assert_eq!(reason(&refused), "PEER_NOT_ALLOWED", "{peer}");
    }
    let mut stream = IdentityServiceClient::new(sandbox.channel(IDENTITY, "clients"))
        .watch_revocations(watch)
        .await
        .expect("a service watches")
        .into_inner();
    let first = stream.message().await.expect("a response").expect("one");
    assert!(first.caught_up, "the replay ends at once");

    let invalidate = InvalidateClaimsRequest {
        user_ids: vec![uuid::Uuid::new_v4().to_string()],
    };
    for peer in ["gateway", "operator", "clients", "audit"] {
        let refused = IdentityServiceClient::new(sandbox.channel(IDENTITY, peer))
            .invalidate_claims(invalidate.clone())
            .await
            .expect_err("only tenancy invalidates claims");
        assert_eq!(reason(&refused), "PEER_NOT_ALLOWED", "{peer}");
    }
    let invalid = IdentityServiceClient::new(sandbox.channel(IDENTITY, TENANCY))
        .invalidate_claims(InvalidateClaimsRequest {
            user_ids: vec!["not a uuid".into()],
        })
        .await
        .expect_err("ids are checked");
    assert_eq!(invalid.code(), Code::InvalidArgument);
}
