//! Finding accounts: tenancy's internal lookup by id or email, and the
//! operators' directory (one account, or a filtered, paged list).

use fitflow_api::page::PageTokens;
use fitflow_outbox::{Action, AuditEventBuilder, Purpose};
use uuid::Uuid;

use super::{Account, Accounts, OperatorCall};
use crate::repo::{self, UserFilter, UserRow};
use crate::{IdentityError, SERVICE};

/// The blind-index scope whose value under the service's nil-tenant index
/// key is the page-token key: the same on every replica and across restarts
/// (the index key never rotates), and never stored anywhere.
const PAGE_TOKEN_KEY_SCOPE: &str = "identity.page_tokens";

/// What tenancy looks an account up by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupKey {
    /// The account's id.
    UserId(Uuid),
    /// A normalised email address.
    Email(String),
}

/// One page of the operators' account list.
pub(crate) struct UserPage {
    /// The accounts, oldest first.
    pub(crate) accounts: Vec<Account>,
    /// The last account's id when more follow.
    pub(crate) next_after: Option<Uuid>,
}

impl Accounts {
    /// The account with `key`, for a FitFlow service (tenancy). A deleted
    /// account is [`IdentityError::UserNotFound`], like an unknown one. Not
    /// audited: an id, email, name and state are neither health nor
    /// financial data, and the caller audits what it does with them.
    pub async fn lookup_user(&self, key: &LookupKey) -> Result<Account, IdentityError> {
        let mut tx = fitflow_db::system_tx(&self.system).await?;
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

    /// The page tokens of `ListUsers`, keyed by a key derived once from the
    /// service's blind-index key (so every replica agrees).
    pub async fn page_tokens(&self) -> Result<&PageTokens, IdentityError> {
        self.page_tokens
            .get_or_try_init(|| async {
                let derived = self
                    .keyring
                    .blind_index(Uuid::nil(), PAGE_TOKEN_KEY_SCOPE, b"v1")
                    .await?;
                let key: [u8; 32] = derived
                    .as_slice()
                    .try_into()
                    .map_err(|_| IdentityError::Credentials)?;
                Ok::<_, IdentityError>(PageTokens::new(&key))
            })
            .await
    }

    /// One account, whatever its status, for an operator; audited as a read
    /// in the user's trail.
    pub async fn get_user(
        &self,
        operator: OperatorCall<'_>,
        user_id: Uuid,
    ) -> Result<Account, IdentityError> {
        operator.require()?;
        let mut tx = fitflow_db::tx(&self.pool, &operator.caller()).await?;
        let row = repo::find_user(&mut tx, user_id)
            .await?
            .ok_or(IdentityError::UserNotFound)?;
        // Opened before the event is written: the trail never shows a
        // disclosure that did not happen.
        let account = self.open_account(row).await?;
        record_operator_read(&mut tx, operator, user_id, "user_read_by_operator").await?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        Ok(account)
    }

    /// A page of accounts matching `filter`, oldest first, after `after`;
    /// each returned account is audited as a read in its user's trail.
    pub(crate) async fn list_users(
        &self,
        operator: OperatorCall<'_>,
        filter: &UserFilter<'_>,
        page_size: u32,
        after: Option<Uuid>,
    ) -> Result<UserPage, IdentityError> {
        operator.require()?;
        let mut tx = fitflow_db::tx(&self.pool, &operator.caller()).await?;
        let mut rows: Vec<UserRow> =
            repo::list_users(&mut tx, filter, after, i64::from(page_size) + 1).await?;
        let next_after = fitflow_api::page::split_page(&mut rows, page_size, |row| row.id);
        let mut accounts = Vec::with_capacity(rows.len());
        for row in rows {
            accounts.push(self.open_account(row).await?);
        }
        for account in &accounts {
            record_operator_read(&mut tx, operator, account.id, "user_listed_by_operator").await?;
        }
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        Ok(UserPage {
            accounts,
            next_after,
        })
    }
}

/// The access event of an operator reading `user_id`'s account.
async fn record_operator_read(
    tx: &mut sqlx::PgConnection,
    operator: OperatorCall<'_>,
    user_id: Uuid,
    event: &str,
) -> Result<(), IdentityError> {
    let event = AuditEventBuilder::new(SERVICE, Action::Read, "users", user_id)
        .actor_user(operator.principal.user_id)
        .change("caller_peer", "", operator.peer)
        .tenant(user_id)
        .purpose(Purpose::Operations)
        .change("event", "", event)
        .build();
    fitflow_outbox::record(tx, &event).await?;
    Ok(())
}
