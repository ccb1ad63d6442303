//! Tenancy's use cases: each opens one transaction as the caller, checks who
//! may do what (row-level security is the second wall), writes its audit
//! event in the same transaction and commits only when all of it worked.

mod claims;
mod contracts;
mod studios;
mod teams;
mod trainers;

pub(crate) use contracts::{ContractView, NewContract, TrainerRef};
pub(crate) use studios::{StudioPatch, StudioView};
pub(crate) use trainers::{TrainerPatch, TrainerView};

use fitflow_api::idempotency::{IdempotencyKey, RequestHash};
use fitflow_api::page::PageTokens;
use fitflow_auth::{Caller, Principal};
use fitflow_crypto::{FieldAddress, KeyRing};
use fitflow_db::SystemPool;
use sqlx::PgPool;
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::TenancyError;
use crate::domain::BankAccount;
use crate::identity::Accounts;
use crate::letters::Letters;

/// Most studio listings (searches) one process runs at once. A listing
/// reads up to 201 studios and, for each the caller manages, its billing
/// studio: 500 at once held all 16 connections of the pool, and another
/// user's one-row read waited behind them (p99 5.6 s on 2 cores). Beyond,
/// a listing waits here for its turn, not in the pool's line.
const CONCURRENT_LISTINGS: usize = 4;

/// The tenancy service's state: its pool, key ring, page-token key, the
/// identity client it checks accounts with and the letters it mails.
pub struct Directory {
    pool: PgPool,
    /// The system role's pool: lookups for identity and billing, which
    /// carry no user context.
    system: SystemPool,
    keyring: KeyRing,
    page_tokens: PageTokens,
    accounts: Accounts,
    letters: Letters,
    /// Turns for [`CONCURRENT_LISTINGS`].
    listings: Semaphore,
}

impl Directory {
    /// The use cases over `pool`, sealing with `keyring`, asking identity
    /// through `accounts` and mailing invitations with `letters`. Page
    /// tokens are signed with a key drawn once per process (a restarted
    /// process refuses older tokens; callers start over).
    pub fn new(
        pool: PgPool,
        system: SystemPool,
        keyring: KeyRing,
        accounts: Accounts,
        letters: Letters,
    ) -> Self {
        Self {
            pool,
            system,
            keyring,
            page_tokens: PageTokens::with_random_key(),
            accounts,
            letters,
            listings: Semaphore::new(CONCURRENT_LISTINGS),
        }
    }

    /// The page-token issuer, for the gRPC layer's List methods.
    pub(crate) fn page_tokens(&self) -> &PageTokens {
        &self.page_tokens
    }

    async fn seal_bank_account(
        &self,
        tenant_id: Uuid,
        table: &'static str,
        account: &BankAccount,
    ) -> Result<Vec<u8>, TenancyError> {
        let plaintext = zeroize::Zeroizing::new(
            serde_json::to_vec(account).map_err(|_| TenancyError::Corrupt("bank account"))?,
        );
        let address = FieldAddress {
            table,
            column: "bank_account",
            row_id: tenant_id,
        };
        Ok(self.keyring.seal(tenant_id, address, &plaintext).await?)
    }

    async fn open_bank_account(
        &self,
        tenant_id: Uuid,
        table: &'static str,
        sealed: &[u8],
    ) -> Result<BankAccount, TenancyError> {
        let address = FieldAddress {
            table,
            column: "bank_account",
            row_id: tenant_id,
        };
        let plaintext = self.keyring.open(tenant_id, address, sealed).await?;
        serde_json::from_slice(&plaintext).map_err(|_| TenancyError::Corrupt("bank account"))
    }
}

/// A create's idempotency record: its key and request hash, when the
/// request carried a `request_id` (AIP-155).
#[derive(Debug, Default)]
pub(crate) struct Idempotency(pub Option<(IdempotencyKey, RequestHash)>);

fn user(principal: &Principal) -> Caller {
    Caller::User(principal.clone())
}
