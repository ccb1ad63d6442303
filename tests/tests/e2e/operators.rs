//! Account status and roles, managed by operators.

use fitflow_e2e::IDENTITY;
use fitflow_e2e::{PASSWORD, Sandbox, bearer};
use fitflow_proto::identity::{
    DeleteUserRequest, GrantRoleRequest, RefreshTokenRequest, RestoreUserRequest,
    RevokeRoleRequest, Role, SuspendUserRequest, UserStatus,
};
use tonic::Code;

use crate::identity_support::reason;

#[tokio::test]
async fn a_suspended_or_deleted_user_cannot_log_in_or_refresh_until_restored() {
    let sandbox = Sandbox::new().await;
    let stack = sandbox.start(&[IDENTITY]).await;
    let (_, operator) = sandbox.operator().await;
    let (user, email) = sandbox.register("Suspect").await;
    let tokens = sandbox.login(&email).await;

    let suspended = sandbox
        .identity()
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
        .identity()
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
        .identity()
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
        .identity()
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
        .identity()
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
        .identity()
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
        .identity()
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
        .identity()
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
        .identity()
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
        .identity()
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
