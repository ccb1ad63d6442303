//! Finding accounts: tenancy's internal lookup by id or email.

use uuid::Uuid;

use super::{Account, Accounts, SELF};
use crate::IdentityError;
use crate::repo;

/// What tenancy looks an account up by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupKey {
    /// The account's id.
    UserId(Uuid),
    /// A normalised email address.
    Email(String),
}

impl Accounts {
    /// The account with `key`, for a FitFlow service (tenancy). A deleted
    /// account is [`IdentityError::UserNotFound`], like an unknown one. Not
    /// audited: an id, email, name and state are neither health nor
    /// financial data, and the caller audits what it does with them.
    pub async fn lookup_user(&self, key: &LookupKey) -> Result<Account, IdentityError> {
        let mut tx = fitflow_db::tx(&self.pool, &SELF).await?;
        let row = match key {
            LookupKey::UserId(user_id) => repo::find_user(&mut tx, *user_id).await?,
            LookupKey::Email(email) => repo::find_user_by_email(&mut tx, email).await?,
        };
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        let row = row
            .filter(|user| user.status != "deleted")
            .ok_or(IdentityError::UserNotFound)?;
        self.open_account(row).await
    }
}
