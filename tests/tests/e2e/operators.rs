//! Account status and roles, managed by operators.

use fitflow_e2e::{AUDIT, IDENTITY};
use fitflow_e2e::{PASSWORD, Sandbox, bearer};
use fitflow_proto::identity::{
    DeleteUserRequest, GrantRoleRequest, RefreshTokenRequest, RestoreUserRequest,
    RevokeRoleRequest, Role, SuspendUserRequest, UserStatus,
};
use tonic::Code;

use crate::identity_support::reason;

/// The suspension's audit event (still in identity's outbox: audit is not
/// running) names the operator as the actor and the operator peer beside it.
async fn assert_suspension_names_operator_and_peer(
    sandbox: &Sandbox,
    user_id: &str,
    operator_id: &str,
) {
    use prost::Message as _;
    let admin = sandbox.db.admin_pool().await;
    let payloads: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT payload FROM identity.audit_outbox ORDER BY id")
            .fetch_all(&admin)
            .await
            .expect("outbox payloads");
    let suspension = payloads
        .iter()
        .map(|payload| fitflow_proto::audit::AuditEvent::decode(payload.as_slice()).unwrap())
        .find(|event| {
            event.resource_id == user_id
                && event
                    .changes
                    .iter()
                    .any(|change| change.field == "status" && change.new_value == "suspended")
        })
        .expect("the suspension is audited");
    assert_eq!(
        suspension.actor.and_then(|actor| actor.kind),
        Some(fitflow_proto::types::actor::Kind::UserId(
            operator_id.to_owned()
        ))
    );
    assert!(
        suspension
            .changes
            .iter()
            .any(|change| change.field == "caller_peer" && change.new_value == "operator"),
        "{:?}",
        suspension.changes
    );
}

#[tokio::test]
async fn a_suspended_or_deleted_user_cannot_log_in_or_refresh_until_restored() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (operator_user, operator) = sandbox.operator().await;
    let (user, email) = sandbox.register("Suspect").await;
    let tokens = sandbox.login(&email).await;

    let suspended = sandbox
        .identity_as_operator()
        .suspend_user(bearer(
            SuspendUserRequest {
                user_id: user.id.clone(),
            },
            &operator.access_token,
        ))
        .await
        .expect("suspended")
        .into_inner()
        .user
        .unwrap();
    assert_eq!(suspended.status, UserStatus::Suspended as i32);
    assert_suspension_names_operator_and_peer(&sandbox, &user.id, &operator_user.id).await;
    let login = sandbox
        .try_login(&email, PASSWORD, "198.51.100.2")
        .await
        .unwrap_err();
    assert_eq!(login.code(), Code::FailedPrecondition);
    assert_eq!(reason(&login), "ACCOUNT_SUSPENDED");
    let refresh = sandbox
        .identity()
        .refresh_token(RefreshTokenRequest {
            refresh_token: tokens.refresh_token.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&refresh), "REFRESH_TOKEN_INVALID");

    let deleted = sandbox
        .identity_as_operator()
        .delete_user(bearer(
            DeleteUserRequest {
                user_id: user.id.clone(),
            },
            &operator.access_token,
        ))
        .await
        .expect("deleted")
        .into_inner()
        .user
        .unwrap();
    assert_eq!(deleted.status, UserStatus::Deleted as i32);
    assert!(deleted.delete_time.is_some());
    let login = sandbox
        .try_login(&email, PASSWORD, "198.51.100.2")
        .await
        .unwrap_err();
    assert_eq!(login.code(), Code::Unauthenticated);
    assert_eq!(reason(&login), "INVALID_CREDENTIALS");

    let restored = sandbox
        .identity_as_operator()
        .restore_user(bearer(
            RestoreUserRequest {
                user_id: user.id.clone(),
            },
            &operator.access_token,
        ))
        .await
        .expect("restored")
        .into_inner()
        .user
        .unwrap();
    assert_eq!(restored.status, UserStatus::Active as i32);
    assert!(restored.delete_time.is_none());
    sandbox.login(&email).await;

    let unknown = sandbox
        .identity_as_operator()
        .suspend_user(bearer(
            SuspendUserRequest {
                user_id: uuid::Uuid::new_v4().to_string(),
            },
            &operator.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    stack.shutdown().await;
}

#[tokio::test]
async fn only_an_operator_may_change_status_or_roles() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (victim, _) = sandbox.register("Victim").await;
    let (trainer, email) = sandbox.register("Ambitious Trainer").await;
    let tokens = sandbox.login(&email).await;

    let suspend = sandbox
        .identity_as_operator()
        .suspend_user(bearer(
            SuspendUserRequest {
                user_id: victim.id.clone(),
            },
            &tokens.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(suspend.code(), Code::PermissionDenied);
    assert_eq!(reason(&suspend), "ROLE_REQUIRED");

    let self_promotion = sandbox
        .identity_as_operator()
        .grant_role(bearer(
            GrantRoleRequest {
                user_id: trainer.id.clone(),
                role: Role::Operator as i32,
            },
            &tokens.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(self_promotion.code(), Code::PermissionDenied);
    stack.shutdown().await;
}

#[tokio::test]
async fn a_granted_role_reaches_the_next_access_token() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (operator_user, operator) = sandbox.operator().await;
    let (user, email) = sandbox.register("Future Owner").await;
    let tokens = sandbox.login(&email).await;

    let granted = sandbox
        .identity_as_operator()
        .grant_role(bearer(
            GrantRoleRequest {
                user_id: user.id.clone(),
                role: Role::StudioOwner as i32,
            },
            &operator.access_token,
        ))
        .await
        .expect("granted")
        .into_inner()
        .user
        .unwrap();
    assert!(granted.roles.contains(&(Role::StudioOwner as i32)));

    let refreshed = sandbox
        .identity()
        .refresh_token(RefreshTokenRequest {
            refresh_token: tokens.refresh_token,
        })
        .await
        .unwrap()
        .into_inner()
        .tokens
        .unwrap();
    use base64::Engine as _;
    let payload = refreshed.access_token.split('.').nth(1).unwrap();
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    assert!(String::from_utf8(claims).unwrap().contains("studio_owner"));

    let revoked = sandbox
        .identity_as_operator()
        .revoke_role(bearer(
            RevokeRoleRequest {
                user_id: user.id.clone(),
                role: Role::StudioOwner as i32,
            },
            &operator.access_token,
        ))
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    assert!(!revoked.roles.contains(&(Role::StudioOwner as i32)));

    let unspecified = sandbox
        .identity_as_operator()
        .grant_role(bearer(
            GrantRoleRequest {
                user_id: user.id.clone(),
                role: Role::Unspecified as i32,
            },
            &operator.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(unspecified.code(), Code::InvalidArgument);

    let own = sandbox
        .identity_as_operator()
        .revoke_role(bearer(
            RevokeRoleRequest {
                user_id: operator_user.id,
                role: Role::Operator as i32,
            },
            &operator.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(reason(&own), "CANNOT_REVOKE_OWN_OPERATOR");
    stack.shutdown().await;
}

#[tokio::test]
async fn operator_powers_through_the_gateway_are_refused_even_to_an_mfa_operator() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (_, operator) = sandbox.operator().await;
    let (victim, victim_email) = sandbox.register("Victim").await;

    let through_gateway = sandbox
        .identity()
        .suspend_user(bearer(
            SuspendUserRequest {
                user_id: victim.id.clone(),
            },
            &operator.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(through_gateway.code(), Code::PermissionDenied);
    assert_eq!(reason(&through_gateway), "PEER_NOT_ALLOWED");
    let promotion = sandbox
        .identity()
        .grant_role(bearer(
            GrantRoleRequest {
                user_id: victim.id.clone(),
                role: Role::Operator as i32,
            },
            &operator.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(reason(&promotion), "PEER_NOT_ALLOWED");
    // Nothing happened: the victim still logs in.
    sandbox.login(&victim_email).await;
    stack.shutdown().await;
}

#[tokio::test]
async fn an_operator_whose_session_skipped_mfa_cannot_wield_operator_powers() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY, AUDIT]).await;
    let (_, _, password_only) = sandbox.operator_without_mfa().await;
    let (victim, victim_email) = sandbox.register("Victim").await;

    let suspend = sandbox
        .identity_as_operator()
        .suspend_user(bearer(
            SuspendUserRequest {
                user_id: victim.id.clone(),
            },
            &password_only.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(suspend.code(), Code::PermissionDenied);
    assert_eq!(reason(&suspend), "MFA_REQUIRED");
    let audit_read = sandbox
        .audit()
        .list_events(bearer(
            fitflow_proto::audit::ListEventsRequest::default(),
            &password_only.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(audit_read.code(), Code::PermissionDenied);
    assert_eq!(reason(&audit_read), "MFA_REQUIRED");
    sandbox.login(&victim_email).await;
    stack.shutdown().await;
}

#[tokio::test]
async fn the_operator_wide_audit_trail_is_refused_through_the_gateway() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY, AUDIT]).await;
    let (_, operator) = sandbox.operator().await;
    let gateway_audit = fitflow_proto::audit::audit_service_client::AuditServiceClient::new(
        sandbox.channel(AUDIT, "gateway"),
    );
    let refused = gateway_audit
        .clone()
        .list_events(bearer(
            fitflow_proto::audit::ListEventsRequest::default(),
            &operator.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert_eq!(reason(&refused), "PEER_NOT_ALLOWED");
    let verify = gateway_audit
        .clone()
        .verify_chain(bearer(
            fitflow_proto::audit::VerifyChainRequest::default(),
            &operator.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(reason(&verify), "PEER_NOT_ALLOWED");
    // The same token over the operator certificate reads the whole trail.
    sandbox
        .audit()
        .list_events(bearer(
            fitflow_proto::audit::ListEventsRequest::default(),
            &operator.access_token,
        ))
        .await
        .expect("an MFA operator over the operator peer reads the trail");
    stack.shutdown().await;
}

#[tokio::test]
async fn sign_up_cannot_choose_supervision_studio_ownership_or_operator() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    for role in [Role::TrainerAdmin, Role::StudioOwner, Role::Operator] {
        let refused = sandbox
            .identity()
            .register(fitflow_proto::identity::RegisterRequest {
                email: format!("climber-{}@example.com", uuid::Uuid::new_v4()),
                password: PASSWORD.into(),
                display_name: "Climber".into(),
                roles: vec![role as i32],
                request_id: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{role:?}");
    }
    stack.shutdown().await;
}
