//! Sharing a client with other trainers, moving it to another owner, and
//! the access check other services ask before touching a client's data.

use chrono::{DateTime, Utc};
use fitflow_api::etag::Etag;
use fitflow_api::soft_delete;
use fitflow_auth::Principal;
use fitflow_outbox::Action;
use uuid::Uuid;

use super::{ClientBook, SummaryView, commit, event, plain_record, reach, user};
use crate::ClientsError;
use crate::domain::{self, AccessLevel};
use crate::repo::{self, ShareRow, SummaryRow};

const SHARES: &str = "client_shares";

/// A share as returned.
#[derive(Debug, Clone)]
pub(crate) struct ShareView {
    pub client_id: Uuid,
    pub trainer_id: Uuid,
    pub level: AccessLevel,
    pub granted_by: Uuid,
    pub granted_at: DateTime<Utc>,
}

impl TryFrom<ShareRow> for ShareView {
    type Error = ClientsError;

    fn try_from(row: ShareRow) -> Result<Self, Self::Error> {
        Ok(Self {
            client_id: row.client_id,
            trainer_id: row.trainer_id,
            level: AccessLevel::parse_share(&row.permission_level)
                .ok_or(ClientsError::Corrupt("permission_level"))?,
            granted_by: row.granted_by,
            granted_at: row.granted_at,
        })
    }
}

/// The answer to "may this user reach this client at this level?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AccessAnswer {
    pub allowed: bool,
    pub level: Option<AccessLevel>,
    pub owner: Option<Uuid>,
}

impl ClientBook {
    /// Shares a client with `trainer_id` at `level` (or changes the level).
    pub(crate) async fn share(
        &self,
        principal: &Principal,
        client_id: Uuid,
        trainer_id: Uuid,
        level: AccessLevel,
    ) -> Result<ShareView, ClientsError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        // The client's row stays locked until the commit, so the changes to
        // one client's shares (and its transfers) happen one at a time: the
        // previous level read below is the one this change replaces, and a
        // caller who stops acting for the owner meanwhile no longer shares.
        let (row, _) = reach(&mut tx, principal, client_id, AccessLevel::Admin, true).await?;
        soft_delete::check_mutable("client", row.deleted_at)?;
        if trainer_id == row.trainer_id {
            return Err(ClientsError::ShareWithOwner);
        }
        // An ADMIN grantee writes the share under the policies that name
        // ADMIN grantees (`caller_administers`), as the owner does.
        let (share, previous) = repo::put_share(
            &mut tx,
            client_id,
            trainer_id,
            row.trainer_id,
            level,
            principal.user_id,
        )
        .await?;
        let (action, history) = if previous.is_some() {
            (Action::Update, "changed")
        } else {
            (Action::Create, "granted")
        };
        repo::record_history(
            &mut tx,
            client_id,
            trainer_id,
            history,
            Some(level),
            principal.user_id,
        )
        .await?;
        let audit = event(principal, action, SHARES, client_id, row.trainer_id)
            .change("trainer_id", "", &trainer_id.to_string())
            .change("level", previous.as_deref().unwrap_or(""), level.as_str())
            .build();
        fitflow_outbox::record(&mut tx, &audit).await?;
        commit(tx).await?;
        share.try_into()
    }

    /// Shares a client with the trainer whose account uses `email`
    /// (normalised): resolved only once the caller is known to administer
    /// the client (so no one else learns whose email it is), then stored
    /// and audited as a share by id. TRAINER_NOT_FOUND alike for an email
    /// of no active account and of an account without a trainer profile.
    pub(crate) async fn share_by_email(
        &self,
        principal: &Principal,
        client_id: Uuid,
        email: &str,
        level: AccessLevel,
    ) -> Result<ShareView, ClientsError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let (row, _) = reach(&mut tx, principal, client_id, AccessLevel::Admin, false).await?;
        commit(tx).await?;
        soft_delete::check_mutable("client", row.deleted_at)?;
        // Asked outside any transaction: no connection or row lock waits on
        // identity or tenancy. `share` checks the caller's access again.
        let trainer_id = self
            .trainers
            .by_email(email)
            .await?
            .ok_or(ClientsError::TrainerNotFound)?;
        self.share(principal, client_id, trainer_id, level).await
    }

    /// Ends `trainer_id`'s share: by someone who administers the client, or
    /// by the grantee giving up their own.
    pub(crate) async fn revoke(
        &self,
        principal: &Principal,
        client_id: Uuid,
        trainer_id: Uuid,
    ) -> Result<(), ClientsError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let needed = if trainer_id == principal.user_id {
            AccessLevel::Read
        } else {
            AccessLevel::Admin
        };
        // Locked as in `share` when the caller administers the client; a
        // grantee giving up their own share may not lock the client row (a
        // READ grantee may not update it), and needs no previous level.
        let lock = needed == AccessLevel::Admin;
        let (row, _) = reach(&mut tx, principal, client_id, needed, lock).await?;
        let level = repo::delete_share(&mut tx, client_id, trainer_id)
            .await?
            .ok_or(ClientsError::ShareNotFound)?;
        repo::record_history(
            &mut tx,
            client_id,
            trainer_id,
            "revoked",
            None,
            principal.user_id,
        )
        .await?;
        let audit = event(principal, Action::Delete, SHARES, client_id, row.trainer_id)
            .change("trainer_id", &trainer_id.to_string(), "")
            .change("level", &level, "")
            .build();
        fitflow_outbox::record(&mut tx, &audit).await?;
        commit(tx).await
    }

    /// A client's shares: all of them for an administrator, the caller's
    /// own for a READ or WRITE grantee.
    pub(crate) async fn shares(
        &self,
        principal: &Principal,
        client_id: Uuid,
    ) -> Result<Vec<ShareView>, ClientsError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let (_, level) = reach(&mut tx, principal, client_id, AccessLevel::Read, false).await?;
        let rows = repo::shares(&mut tx, client_id).await?;
        commit(tx).await?;
        rows.into_iter()
            .filter(|row| level >= AccessLevel::Admin || row.trainer_id == principal.user_id)
            .map(ShareView::try_from)
            .collect()
    }

    /// Moves a client to `new_owner`; the caller must act for both owners.
    pub(crate) async fn transfer(
        &self,
        principal: &Principal,
        client_id: Uuid,
        new_owner: Uuid,
        etag: &str,
    ) -> Result<SummaryView, ClientsError> {
        // Before the transaction: the index key may need a pooled connection.
        let indexer = self.sealer.indexer().await?;
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let (row, _) = reach(&mut tx, principal, client_id, AccessLevel::Owner, true).await?;
        soft_delete::check_mutable("client", row.deleted_at)?;
        Etag::of_version(row.id, row.version).check(etag)?;
        if !principal.acts_for(new_owner) {
            return Err(ClientsError::TransferTargetNotAllowed);
        }
        let old_owner = row.trainer_id;
        if new_owner == old_owner {
            let summary = self
                .summary(&summary_row(&row, old_owner), AccessLevel::Owner)
                .await?;
            commit(tx).await?;
            return Ok(summary);
        }
        // The lookups are scoped by owner: recompute them for the new one.
        let mut record = plain_record(&row)?;
        self.sealer
            .open_into(client_id, &row.sealed(), &mut record)
            .await?;
        let lookups = self.sealer.lookups(&indexer, new_owner, &record)?;
        repo::transfer(&mut tx, client_id, new_owner, &lookups).await?;
        repo::record_history(
            &mut tx,
            client_id,
            old_owner,
            "transferred_from",
            None,
            principal.user_id,
        )
        .await?;
        repo::record_history(
            &mut tx,
            client_id,
            new_owner,
            "transferred_to",
            None,
            principal.user_id,
        )
        .await?;
        let old = old_owner.to_string();
        let new = new_owner.to_string();
        for tenant in [old_owner, new_owner] {
            let audit = event(
                principal,
                Action::Update,
                crate::seal::TABLE,
                client_id,
                tenant,
            )
            .change("owner_trainer_id", &old, &new)
            .build();
            fitflow_outbox::record(&mut tx, &audit).await?;
        }
        let summary = self
            .summary(&summary_row(&row, new_owner), AccessLevel::Owner)
            .await?;
        commit(tx).await?;
        Ok(summary)
    }

    /// Whether `principal` reaches a live client at `needed`, by the same
    /// rules as every RPC; a missing or deleted client is simply "no".
    pub(crate) async fn check_access(
        &self,
        principal: &Principal,
        client_id: Uuid,
        needed: AccessLevel,
    ) -> Result<AccessAnswer, ClientsError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let row = repo::client(&mut tx, client_id, principal.user_id, false).await?;
        commit(tx).await?;
        let Some(row) = row.filter(|row| row.deleted_at.is_none()) else {
            return Ok(AccessAnswer {
                allowed: false,
                level: None,
                owner: None,
            });
        };
        let level = domain::caller_level(principal, row.trainer_id, row.share());
        let allowed = level.is_some_and(|level| level >= needed);
        Ok(AccessAnswer {
            allowed,
            level,
            owner: allowed.then_some(row.trainer_id),
        })
    }
}

fn summary_row(row: &repo::ClientRow, owner: Uuid) -> SummaryRow {
    SummaryRow {
        id: row.id,
        trainer_id: owner,
        first_name: row.first_name.clone(),
        last_name: row.last_name.clone(),
        source: row.source.clone(),
        status: row.status.clone(),
        created_at: row.created_at,
        deleted_at: row.deleted_at,
        share_level: None,
    }
}
