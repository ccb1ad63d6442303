//! Operator actions on any account: suspend, restore, delete, roles.

use fitflow_auth::{Caller, Principal, Role};
use fitflow_outbox::{Action, AuditEventBuilder};
use uuid::Uuid;

use super::{Account, Accounts};
use crate::repo::{self, UserRow};
use crate::{IdentityError, SERVICE};

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
        operator: &Principal,
        user_id: Uuid,
    ) -> Result<Account, IdentityError> {
        self.change_status(operator, user_id, "suspended").await
    }

    /// Makes a suspended or deleted account active again.
    pub async fn restore_user(
        &self,
        operator: &Principal,
        user_id: Uuid,
    ) -> Result<Account, IdentityError> {
        self.change_status(operator, user_id, "active").await
    }

    /// Soft-deletes an account and revokes its sessions.
    pub async fn delete_user(
        &self,
        operator: &Principal,
        user_id: Uuid,
    ) -> Result<Account, IdentityError> {
        self.change_status(operator, user_id, "deleted").await
    }

    async fn change_status(
        &self,
        operator: &Principal,
        user_id: Uuid,
        status: &'static str,
    ) -> Result<Account, IdentityError> {
        require_operator(operator)?;
        let mut tx = fitflow_db::tx(&self.pool, &Caller::User(operator.clone())).await?;
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
            let action = if status == "deleted" {
                Action::Delete
            } else {
                Action::Update
            };
            let event = AuditEventBuilder::new(SERVICE, action, "users", user_id)
                .actor_user(operator.user_id)
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

    /// Grants or revokes a role; only operators may.
    pub async fn change_role(
        &self,
        operator: &Principal,
        user_id: Uuid,
        change: RoleChange,
    ) -> Result<Account, IdentityError> {
        require_operator(operator)?;
        if change == RoleChange::Revoke(Role::Operator) && operator.user_id == user_id {
            return Err(IdentityError::CannotRevokeOwnOperator);
        }
        let mut tx = fitflow_db::tx(&self.pool, &Caller::User(operator.clone())).await?;
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
                .actor_user(operator.user_id)
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

fn require_operator(principal: &Principal) -> Result<(), IdentityError> {
    Ok(principal.require_role(Role::Operator)?)
}

async fn reread(tx: &mut sqlx::PgConnection, user_id: Uuid) -> Result<UserRow, IdentityError> {
    repo::find_user(tx, user_id)
        .await?
        .ok_or(IdentityError::UserNotFound)
}
