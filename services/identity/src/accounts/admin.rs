//! Operator actions on any account: suspend, restore, delete, roles.

use chrono::Utc;
use fitflow_auth::{Caller, Principal, Role};
use fitflow_outbox::{Action, AuditEventBuilder};
use uuid::Uuid;

use super::{Account, Accounts};
use crate::domain::{NewRevocations, RevocationKind};
use crate::repo::{self, UserRow};
use crate::{IdentityError, SERVICE};

/// An operator's call: the user (operator role, MFA session) and the mTLS
/// peer it came through, both recorded in the audit event.
#[derive(Debug, Clone, Copy)]
pub struct OperatorCall<'a> {
    /// The operator's verified token.
    pub principal: &'a Principal,
    /// The calling peer's name (`operator`).
    pub peer: &'a str,
}

impl OperatorCall<'_> {
    /// PERMISSION_DENIED unless the operator role is honoured (it needs an
    /// MFA session) and the call came over the operator certificate. The
    /// handler checks this before validating; checked again here so no
    /// other path into these use cases can skip it.
    pub(super) fn require(&self) -> Result<(), IdentityError> {
        self.principal.require_role(Role::Operator)?;
        fitflow_auth::require_operator_peer(Some(&fitflow_auth::PeerIdentity(
            self.peer.to_owned(),
        )))?;
        Ok(())
    }

    pub(super) fn caller(&self) -> Caller {
        Caller::User(self.principal.clone())
    }
}

/// An operator's change to an account's roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleChange {
    /// Add the role.
    Grant(Role),
    /// Remove the role.
    Revoke(Role),
}

impl Accounts {
    /// Suspends an account and revokes its sessions.
    pub async fn suspend_user(
        &self,
        operator: OperatorCall<'_>,
        user_id: Uuid,
    ) -> Result<Account, IdentityError> {
        self.change_status(operator, user_id, "suspended").await
    }

    /// Makes a suspended or deleted account active again.
    pub async fn restore_user(
        &self,
        operator: OperatorCall<'_>,
        user_id: Uuid,
    ) -> Result<Account, IdentityError> {
        self.change_status(operator, user_id, "active").await
    }

    /// Soft-deletes an account and revokes its sessions.
    pub async fn delete_user(
        &self,
        operator: OperatorCall<'_>,
        user_id: Uuid,
    ) -> Result<Account, IdentityError> {
        self.change_status(operator, user_id, "deleted").await
    }

    async fn change_status(
        &self,
        operator: OperatorCall<'_>,
        user_id: Uuid,
        status: &'static str,
    ) -> Result<Account, IdentityError> {
        operator.require()?;
        let mut tx = fitflow_db::tx(&self.pool, &operator.caller()).await?;
        let user = repo::lock_user(&mut tx, user_id)
            .await?
            .ok_or(IdentityError::UserNotFound)?;
        if status == "suspended" && user.status == "deleted" {
            return Err(IdentityError::AccountDeleted);
        }
        let revoked = if status == "active" {
            0
        } else {
            repo::revoke_user_sessions(&mut tx, user_id, None).await?
        };
        if user.status != status {
            repo::set_status(&mut tx, user_id, status).await?;
            if status != "active" {
                // Beside its revoked sessions: refuses a token of a session
                // opened while this transaction ran, too.
                let disabled =
                    NewRevocations::at(RevocationKind::UserDisabled, vec![user_id], Utc::now());
                repo::insert_revocations(&mut tx, &disabled).await?;
            }
            let action = if status == "deleted" {
                Action::Delete
            } else {
                Action::Update
            };
            let event = AuditEventBuilder::new(SERVICE, action, "users", user_id)
                .actor_user(operator.principal.user_id)
                .change("caller_peer", "", operator.peer)
                .tenant(user_id)
                .change("status", &user.status, status)
                .change("revoked_sessions", "", &revoked.to_string())
                .build();
            fitflow_outbox::record(&mut tx, &event).await?;
        }
        let row = reread(&mut tx, user_id).await?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        self.open_account(row).await
    }

    /// Turns off the MFA of a user who lost their authenticator and lifts a
    /// second-factor lock; audited with the operator's `reason`.
    pub async fn reset_user_mfa(
        &self,
        operator: OperatorCall<'_>,
        user_id: Uuid,
        reason: &str,
    ) -> Result<Account, IdentityError> {
        operator.require()?;
        let mut tx = fitflow_db::tx(&self.pool, &operator.caller()).await?;
        let user = repo::lock_user(&mut tx, user_id)
            .await?
            .filter(|user| user.status != "deleted")
            .ok_or(IdentityError::UserNotFound)?;
        if !user.mfa_enabled {
            return Err(IdentityError::MfaNotEnabled);
        }
        repo::disable_mfa(&mut tx, user_id).await?;
        let event = AuditEventBuilder::new(SERVICE, Action::Update, "users", user_id)
            .actor_user(operator.principal.user_id)
            .change("caller_peer", "", operator.peer)
            .tenant(user_id)
            .change("mfa_enabled", "true", "false")
            .changed_field("mfa_secret")
            .changed_field("recovery_codes")
            .change("event", "", "mfa_reset_by_operator")
            .change("reason", "", reason)
            .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        let row = reread(&mut tx, user_id).await?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        // The lock table is the service's own (RLS admits only its system
        // role); a failure here leaves at most the current lock in place.
        self.lift_second_factor_lock(user_id).await?;
        self.open_account(row).await
    }

    /// Grants or revokes a role; only operators may.
    pub async fn change_role(
        &self,
        operator: OperatorCall<'_>,
        user_id: Uuid,
        change: RoleChange,
    ) -> Result<Account, IdentityError> {
        operator.require()?;
        if change == RoleChange::Revoke(Role::Operator) && operator.principal.user_id == user_id {
            return Err(IdentityError::CannotRevokeOwnOperator);
        }
        let mut tx = fitflow_db::tx(&self.pool, &operator.caller()).await?;
        let user = repo::lock_user(&mut tx, user_id)
            .await?
            .ok_or(IdentityError::UserNotFound)?;
        let mut roles = user.roles.clone();
        match change {
            RoleChange::Grant(role) => {
                if !roles.iter().any(|name| name == role.as_str()) {
                    roles.push(role.as_str().to_owned());
                }
            }
            RoleChange::Revoke(role) => roles.retain(|name| name != role.as_str()),
        }
        if roles != user.roles {
            repo::set_roles(&mut tx, user_id, &roles).await?;
            let event = AuditEventBuilder::new(SERVICE, Action::Update, "users", user_id)
                .actor_user(operator.principal.user_id)
                .change("caller_peer", "", operator.peer)
                .tenant(user_id)
                .change("roles", &user.roles.join(","), &roles.join(","))
                .build();
            fitflow_outbox::record(&mut tx, &event).await?;
        }
        let row = reread(&mut tx, user_id).await?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        self.open_account(row).await
    }
}

async fn reread(tx: &mut sqlx::PgConnection, user_id: Uuid) -> Result<UserRow, IdentityError> {
    repo::find_user(tx, user_id)
        .await?
        .ok_or(IdentityError::UserNotFound)
}
