//! The calling user's own profile.

use fitflow_api::etag::Etag;
use fitflow_auth::{Caller, Principal};
use fitflow_outbox::{Action, AuditEventBuilder};

use super::{Account, Accounts, display_name_address};
use crate::repo;
use crate::{IdentityError, SERVICE};

/// What `UpdateProfile` writes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ProfileChange {
    /// The new display name, validated and trimmed.
    pub display_name: Option<String>,
}

impl Accounts {
    /// Writes `change` to the caller's account if `expected_etag` (when not
    /// empty) is still its etag. A change to the value it already has writes
    /// nothing and records no event. The display name is sealed, so the
    /// audit event names the field only, never a value.
    pub async fn update_profile(
        &self,
        principal: &Principal,
        change: ProfileChange,
        expected_etag: &str,
    ) -> Result<Account, IdentityError> {
        let user_id = principal.user_id;
        // Sealed before the row is locked: no lock waits on OpenBao.
        let sealed_name = match &change.display_name {
            Some(name) => Some(
                self.keyring
                    .seal(user_id, display_name_address(user_id), name.as_bytes())
                    .await?,
            ),
            None => None,
        };
        let mut tx = fitflow_db::tx(&self.pool, &Caller::User(principal.clone())).await?;
        let user = repo::lock_user(&mut tx, user_id)
            .await?
            .filter(|user| user.status != "deleted")
            .ok_or(IdentityError::UserNotFound)?;
        if user.status == "suspended" {
            return Err(IdentityError::AccountSuspended);
        }
        Etag::of_version(user.id, user.version).check(expected_etag)?;
        let current = self.open_account(user).await?;
        let new_name = change
            .display_name
            .filter(|name| *name != current.display_name)
            .and(sealed_name);
        let Some(sealed_name) = new_name else {
            tx.commit().await.map_err(fitflow_db::DbError::from)?;
            return Ok(current);
        };
        repo::set_display_name(&mut tx, user_id, &sealed_name).await?;
        let event = AuditEventBuilder::new(SERVICE, Action::Update, "users", user_id)
            .actor_user(user_id)
            .tenant(user_id)
            .changed_field("display_name")
            .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        let row = repo::find_user(&mut tx, user_id)
            .await?
            .ok_or(IdentityError::UserNotFound)?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        self.open_account(row).await
    }
}
