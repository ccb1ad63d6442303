//! Trainers' bank accounts: the institution, transit and account numbers
//! sealed under the trainer's data key (the key ring's tenant is the
//! trainer), each bound to its table, column and row; shown masked, revealed
//! only with an access event written first in the same transaction. Only
//! the trainer themselves sees or changes them (not a supervisor): the
//! handler checks it and row-level security enforces it again.

use chrono::Utc;
use fitflow_api::etag::Etag;
use fitflow_api::idempotency::{self, Claim};
use fitflow_auth::{Caller, Principal};
use fitflow_crypto::{FieldAddress, KeyRing};
use fitflow_outbox::{Action, AuditEventBuilder, Purpose};
use sqlx::PgPool;
use uuid::Uuid;

use crate::invoices::Idempotency;
use crate::repo::{self, BankAccountRow};
use crate::{BillingError, SERVICE};

/// The table whose rows hold the sealed numbers (part of their associated
/// data).
const TABLE: &str = "bank_accounts";
/// Most accounts one trainer keeps, closed ones included.
const MAX_ACCOUNTS: i64 = 50;

/// A bank account's numbers in clear: only between the request and the
/// seal, or the open and the response. Debug never prints them.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct AccountNumbers {
    pub institution: String,
    pub transit: String,
    pub account: String,
}

impl std::fmt::Debug for AccountNumbers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccountNumbers(<redacted>)")
    }
}

impl AccountNumbers {
    /// The account number's last three digits.
    fn last3(&self) -> String {
        let digits = self.account.len();
        self.account[digits.saturating_sub(3)..].to_owned()
    }
}

/// A bank account's details as asked (the numbers apart).
#[derive(Debug, Clone)]
pub(crate) struct AccountDetails {
    pub name: String,
    pub bank_name: String,
    pub account_type: &'static str,
    pub currency: &'static str,
    pub primary: bool,
}

/// An account as returned: the row (numbers sealed) and its etag.
#[derive(Debug, Clone)]
pub(crate) struct AccountView {
    pub row: BankAccountRow,
    pub etag: Etag,
}

/// The masked form of an account number's last three digits.
pub(crate) fn masked(last3: &str) -> String {
    format!("••••{last3}")
}

fn view(row: BankAccountRow) -> AccountView {
    let etag = Etag::of_version(row.id, row.version);
    AccountView { row, etag }
}

fn user(principal: &Principal) -> Caller {
    Caller::User(principal.clone())
}

async fn commit(tx: fitflow_db::Tx) -> Result<(), BillingError> {
    tx.commit().await.map_err(fitflow_db::DbError::from)?;
    Ok(())
}

fn address(column: &'static str, row_id: Uuid) -> FieldAddress<'static> {
    FieldAddress {
        table: TABLE,
        column,
        row_id,
    }
}

/// The use cases of bank accounts.
pub struct BankAccounts {
    pool: PgPool,
    keyring: KeyRing,
}

impl BankAccounts {
    /// The use cases over `pool`, sealing with `keyring` (the billing
    /// service's per-tenant data keys; the tenant is the trainer).
    pub fn new(pool: PgPool, keyring: KeyRing) -> Self {
        Self { pool, keyring }
    }

    /// The three numbers sealed for row `id` of `trainer_id`.
    async fn seal(
        &self,
        trainer_id: Uuid,
        id: Uuid,
        numbers: &AccountNumbers,
    ) -> Result<(Vec<u8>, Vec<u8>, Vec<u8>), BillingError> {
        let institution = self
            .keyring
            .seal(
                trainer_id,
                address("institution_number", id),
                numbers.institution.as_bytes(),
            )
            .await?;
        let transit = self
            .keyring
            .seal(
                trainer_id,
                address("transit_number", id),
                numbers.transit.as_bytes(),
            )
            .await?;
        let account = self
            .keyring
            .seal(
                trainer_id,
                address("account_number", id),
                numbers.account.as_bytes(),
            )
            .await?;
        Ok((institution, transit, account))
    }

    async fn open_one(
        &self,
        row: &BankAccountRow,
        column: &'static str,
        sealed: &[u8],
    ) -> Result<String, BillingError> {
        let plaintext = self
            .keyring
            .open(row.trainer_id, address(column, row.id), sealed)
            .await?;
        String::from_utf8(plaintext.to_vec()).map_err(|_| BillingError::Corrupt("bank number"))
    }

    /// The account locked for a change, if the caller owns it.
    async fn locked(
        tx: &mut fitflow_db::Tx,
        principal: &Principal,
        id: Uuid,
        etag: &str,
    ) -> Result<BankAccountRow, BillingError> {
        let row = repo::bank_account(tx, id, true)
            .await?
            .filter(|row| row.trainer_id == principal.user_id)
            .ok_or(BillingError::BankAccountNotFound)?;
        Etag::of_version(row.id, row.version).check(etag)?;
        Ok(row)
    }

    /// Makes the trainer's other primary account not primary, audited.
    async fn demote_other_primary(
        tx: &mut fitflow_db::Tx,
        principal: &Principal,
        trainer_id: Uuid,
        id: Uuid,
    ) -> Result<(), BillingError> {
        if let Some(other) = repo::other_primary(tx, trainer_id, id).await? {
            repo::unset_primary(tx, other).await?;
            let event = AuditEventBuilder::new(SERVICE, Action::Update, TABLE, other)
                .actor_user(principal.user_id)
                .tenant(trainer_id)
                .change("primary", "true", "false")
                .build();
            fitflow_outbox::record(tx, &event).await?;
        }
        Ok(())
    }

    /// Adds an account; its numbers sealed before the transaction starts.
    pub(crate) async fn create(
        &self,
        principal: &Principal,
        trainer_id: Option<Uuid>,
        details: AccountDetails,
        numbers: AccountNumbers,
        request: Idempotency,
    ) -> Result<AccountView, BillingError> {
        let trainer_id = trainer_id.unwrap_or(principal.user_id);
        if trainer_id != principal.user_id {
            return Err(BillingError::TrainerNotFound);
        }
        let id = Uuid::now_v7();
        // Sealed first: no transaction waits on OpenBao.
        let (institution, transit, account) = self.seal(trainer_id, id, &numbers).await?;
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        if let Some((key, hash)) = &request.0
            && let Claim::Replay(existing) = idempotency::claim(&mut tx, key, hash, id).await?
        {
            let row = repo::bank_account(&mut tx, existing, false)
                .await?
                .ok_or(BillingError::BankAccountNotFound)?;
            commit(tx).await?;
            return Ok(view(row));
        }
        repo::lock_bank_accounts(&mut tx, trainer_id).await?;
        if repo::bank_account_count(&mut tx, trainer_id).await? >= MAX_ACCOUNTS {
            return Err(BillingError::BankAccountLimit);
        }
        if details.primary {
            Self::demote_other_primary(&mut tx, principal, trainer_id, id).await?;
        }
        let now = Utc::now();
        let row = BankAccountRow {
            id,
            trainer_id,
            name: details.name,
            bank_name: details.bank_name,
            account_type: details.account_type.to_owned(),
            currency: details.currency.to_owned(),
            is_primary: details.primary,
            status: "active".to_owned(),
            institution_number_sealed: institution,
            transit_number_sealed: transit,
            account_number_sealed: account,
            account_number_last3: numbers.last3(),
            version: 1,
            created_at: now,
            updated_at: now,
            closed_at: None,
        };
        repo::insert_bank_account(&mut tx, &row).await?;
        let event = AuditEventBuilder::new(SERVICE, Action::Create, TABLE, id)
            .actor_user(principal.user_id)
            .tenant(trainer_id)
            .change("name", "", &row.name)
            .change("bank_name", "", &row.bank_name)
            .change("account_type", "", &row.account_type)
            .change("currency", "", &row.currency)
            .change("primary", "", &row.is_primary.to_string())
            .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        let stored = repo::bank_account(&mut tx, id, false)
            .await?
            .ok_or(BillingError::Corrupt("bank account just added"))?;
        commit(tx).await?;
        Ok(view(stored))
    }

    /// Replaces an active account's details, and its numbers when given.
    pub(crate) async fn update(
        &self,
        principal: &Principal,
        id: Uuid,
        details: AccountDetails,
        numbers: Option<AccountNumbers>,
        etag: &str,
    ) -> Result<AccountView, BillingError> {
        // The numbers are bound to the row, not its version: sealed before
        // the transaction (the owner is the caller, checked again below).
        let sealed = match &numbers {
            Some(numbers) => Some(self.seal(principal.user_id, id, numbers).await?),
            None => None,
        };
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        // The trainer's lock before the row's, in the order `create` takes
        // them (it locks the trainer, then demotes a row): never a deadlock.
        // Only the owner reaches the row, so the trainer is the caller.
        repo::lock_bank_accounts(&mut tx, principal.user_id).await?;
        let row = Self::locked(&mut tx, principal, id, etag).await?;
        if row.status != "active" {
            return Err(BillingError::BankAccountState);
        }
        if details.primary && !row.is_primary {
            Self::demote_other_primary(&mut tx, principal, row.trainer_id, id).await?;
        }
        let mut updated = BankAccountRow {
            name: details.name,
            bank_name: details.bank_name,
            account_type: details.account_type.to_owned(),
            currency: details.currency.to_owned(),
            is_primary: details.primary,
            ..row.clone()
        };
        if let (Some((institution, transit, account)), Some(numbers)) = (sealed, &numbers) {
            updated.institution_number_sealed = institution;
            updated.transit_number_sealed = transit;
            updated.account_number_sealed = account;
            updated.account_number_last3 = numbers.last3();
        }
        repo::update_bank_account(&mut tx, &updated).await?;
        let mut event = AuditEventBuilder::new(SERVICE, Action::Update, TABLE, id)
            .actor_user(principal.user_id)
            .tenant(row.trainer_id);
        for (field, before, after) in [
            ("name", &row.name, &updated.name),
            ("bank_name", &row.bank_name, &updated.bank_name),
            ("account_type", &row.account_type, &updated.account_type),
            ("currency", &row.currency, &updated.currency),
        ] {
            if before != after {
                event = event.change(field, before, after);
            }
        }
        if row.is_primary != updated.is_primary {
            event = event.change(
                "primary",
                &row.is_primary.to_string(),
                &updated.is_primary.to_string(),
            );
        }
        if numbers.is_some() {
            // That they changed, never their values.
            event = event.change("numbers", "", "replaced");
        }
        fitflow_outbox::record(&mut tx, &event.build()).await?;
        let stored = repo::bank_account(&mut tx, id, false)
            .await?
            .ok_or(BillingError::BankAccountNotFound)?;
        commit(tx).await?;
        Ok(view(stored))
    }

    /// The trainer's accounts (masked), with one access event.
    pub(crate) async fn list(
        &self,
        principal: &Principal,
        trainer_id: Option<Uuid>,
    ) -> Result<Vec<AccountView>, BillingError> {
        let trainer_id = trainer_id.unwrap_or(principal.user_id);
        if trainer_id != principal.user_id {
            return Err(BillingError::TrainerNotFound);
        }
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let rows = repo::bank_accounts_of(&mut tx, trainer_id).await?;
        let access = AuditEventBuilder::new(SERVICE, Action::Read, "bank_account_list", trainer_id)
            .actor_user(principal.user_id)
            .tenant(trainer_id)
            .change("bank_accounts", "", &rows.len().to_string())
            .purpose(Purpose::Payment)
            .build();
        fitflow_outbox::record(&mut tx, &access).await?;
        commit(tx).await?;
        Ok(rows.into_iter().map(view).collect())
    }

    /// An account's numbers in full. The access event is recorded before
    /// anything is opened, and the numbers leave only once it is committed.
    pub(crate) async fn reveal(
        &self,
        principal: &Principal,
        id: Uuid,
    ) -> Result<(AccountView, AccountNumbers), BillingError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let row = repo::bank_account(&mut tx, id, false)
            .await?
            .filter(|row| row.trainer_id == principal.user_id)
            .ok_or(BillingError::BankAccountNotFound)?;
        let access = AuditEventBuilder::new(SERVICE, Action::Read, TABLE, id)
            .actor_user(principal.user_id)
            .tenant(row.trainer_id)
            .purpose(Purpose::Payment)
            .build();
        fitflow_outbox::record(&mut tx, &access).await?;
        let numbers = AccountNumbers {
            institution: self
                .open_one(&row, "institution_number", &row.institution_number_sealed)
                .await?,
            transit: self
                .open_one(&row, "transit_number", &row.transit_number_sealed)
                .await?,
            account: self
                .open_one(&row, "account_number", &row.account_number_sealed)
                .await?,
        };
        commit(tx).await?;
        Ok((view(row), numbers))
    }

    /// Closes an active account; it stays listed, never primary again.
    pub(crate) async fn close(
        &self,
        principal: &Principal,
        id: Uuid,
        etag: &str,
    ) -> Result<AccountView, BillingError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let row = Self::locked(&mut tx, principal, id, etag).await?;
        if row.status != "active" {
            return Err(BillingError::BankAccountState);
        }
        repo::close_bank_account(&mut tx, id).await?;
        let mut event = AuditEventBuilder::new(SERVICE, Action::Update, TABLE, id)
            .actor_user(principal.user_id)
            .tenant(row.trainer_id)
            .change("status", "active", "closed");
        if row.is_primary {
            event = event.change("primary", "true", "false");
        }
        fitflow_outbox::record(&mut tx, &event.build()).await?;
        let stored = repo::bank_account(&mut tx, id, false)
            .await?
            .ok_or(BillingError::BankAccountNotFound)?;
        commit(tx).await?;
        Ok(view(stored))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_numbers_show_the_last_three_digits_and_debug_redacts() {
        let numbers = AccountNumbers {
            institution: "003".into(),
            transit: "12345".into(),
            account: "9876543123".into(),
        };
        assert_eq!(masked(&numbers.last3()), "••••123");
        let printed = format!("{numbers:?}");
        assert!(!printed.contains("9876543123") && !printed.contains("12345"));
    }
}
