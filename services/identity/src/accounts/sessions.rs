//! Sessions of the calling user, and password changes and resets (which
//! revoke sessions).

use chrono::{DateTime, Utc};
use fitflow_auth::{Caller, Principal};
use fitflow_outbox::{Action, AuditEventBuilder};
use uuid::Uuid;

use super::{ACCOUNT_KIND, Accounts};
use crate::domain;
use crate::repo;
use crate::{IdentityError, SERVICE};

/// Sessions per page unless asked otherwise.
const DEFAULT_PAGE_SIZE: i64 = 50;
/// Most sessions per page.
const MAX_PAGE_SIZE: i64 = 100;

/// A live session as listed to its owner.
pub struct SessionInfo {
    /// The session id.
    pub id: Uuid,
    /// User agent at login.
    pub user_agent: String,
    /// Client address at login.
    pub client_address: String,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
    /// When it was last refreshed.
    pub last_used_at: DateTime<Utc>,
    /// Whether the calling token belongs to it.
    pub current: bool,
}

/// One page of sessions.
pub struct SessionPage {
    /// The sessions, newest first.
    pub sessions: Vec<SessionInfo>,
    /// The id to continue after, if there are more.
    pub next_after: Option<Uuid>,
}

/// Checks a `page_size` field; `None` when out of range.
pub(crate) fn session_page_size(requested: i32) -> Option<i64> {
    domain::page_size(requested, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
}

impl Accounts {
    /// The caller's live sessions, newest first, older than `after` when given.
    pub async fn list_sessions(
        &self,
        principal: &Principal,
        page_size: i64,
        after: Option<Uuid>,
    ) -> Result<SessionPage, IdentityError> {
        let mut tx = fitflow_db::tx(&self.pool, &Caller::User(principal.clone())).await?;
        let mut rows =
            repo::list_live_sessions(&mut tx, principal.user_id, after, page_size + 1).await?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        let more = rows.len() as i64 > page_size;
        rows.truncate(usize::try_from(page_size).unwrap_or(0));
        let next_after = if more {
            rows.last().map(|row| row.id)
        } else {
            None
        };
        let sessions = rows
            .into_iter()
            .map(|row| SessionInfo {
                current: row.id == principal.session_id,
                id: row.id,
                user_agent: row.user_agent,
                client_address: row.client_addr,
                created_at: row.created_at,
                last_used_at: row.last_used_at,
            })
            .collect();
        Ok(SessionPage {
            sessions,
            next_after,
        })
    }

    /// Revokes one of the caller's sessions.
    pub async fn revoke_session(
        &self,
        principal: &Principal,
        session_id: Uuid,
    ) -> Result<(), IdentityError> {
        let user_id = principal.user_id;
        let mut tx = fitflow_db::tx(&self.pool, &Caller::User(principal.clone())).await?;
        let was_live = repo::revoke_user_session(&mut tx, user_id, session_id)
            .await?
            .ok_or(IdentityError::SessionNotFound)?;
        if was_live {
            let event = AuditEventBuilder::new(SERVICE, Action::Update, "sessions", session_id)
                .actor_user(user_id)
                .tenant(user_id)
                .change("revoked", "false", "true")
                .change("reason", "", "revoked_by_user")
                .build();
            fitflow_outbox::record(&mut tx, &event).await?;
        }
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        Ok(())
    }

    /// Revokes every session of the caller; returns how many were live.
    pub async fn revoke_all_sessions(&self, principal: &Principal) -> Result<u64, IdentityError> {
        let user_id = principal.user_id;
        let mut tx = fitflow_db::tx(&self.pool, &Caller::User(principal.clone())).await?;
        let revoked = repo::revoke_user_sessions(&mut tx, user_id, None).await?;
        let event = AuditEventBuilder::new(SERVICE, Action::Update, "users", user_id)
            .actor_user(user_id)
            .tenant(user_id)
            .change("event", "", "all_sessions_revoked")
            .change("revoked_sessions", "", &revoked.to_string())
            .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        Ok(revoked)
    }

    /// Changes the caller's password (the current one is required) and
    /// revokes every other session; returns how many.
    pub async fn change_password(
        &self,
        principal: &Principal,
        current_password: String,
        new_password: String,
    ) -> Result<u64, IdentityError> {
        // A place in the hashing gate first: a flood beyond its queue is
        // refused without database work.
        let admission = self.hashing.admit()?;
        let user_id = principal.user_id;
        let caller = Caller::User(principal.clone());
        // Hash and verify outside any transaction: no connection or row lock
        // is held while argon2id runs.
        let user = self.active_account(principal).await?;
        let (email, stored_hash) = (user.email, user.password_hash);
        self.confirm_password(admission, &email, stored_hash.clone(), current_password)
            .await?;
        let new_hash = self.hashing.hash(new_password).await?;
        let mut tx = fitflow_db::tx(&self.pool, &caller).await?;
        let user = repo::lock_user(&mut tx, user_id)
            .await?
            .filter(|user| user.status == "active")
            .ok_or(IdentityError::UserNotFound)?;
        if user.password_hash != stored_hash {
            // Changed by someone else while we hashed: verify again.
            return Err(IdentityError::InvalidCredentials);
        }
        repo::set_password_hash(&mut tx, user_id, &new_hash).await?;
        let revoked =
            repo::revoke_user_sessions(&mut tx, user_id, Some(principal.session_id)).await?;
        let event = AuditEventBuilder::new(SERVICE, Action::Update, "users", user_id)
            .actor_user(user_id)
            .tenant(user_id)
            .changed_field("password_hash")
            .change("event", "", "password_changed")
            .change("revoked_sessions", "", &revoked.to_string())
            .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        Ok(revoked)
    }

    /// A single-use reset token for an active account's email, or `None`
    /// (answered the same way) when there is no such account.
    pub async fn request_password_reset(
        &self,
        email: &str,
    ) -> Result<Option<String>, IdentityError> {
        let (token, token_hash) =
            domain::new_opaque_token().map_err(|_| IdentityError::Credentials)?;
        let mut tx = fitflow_db::system_tx(&self.system).await?;
        let Some(user) = repo::find_user_by_email(&mut tx, email)
            .await?
            .filter(|user| user.status == "active")
        else {
            return Ok(None);
        };
        // One code a minute at most: the endpoint must not flood a mailbox.
        if repo::newest_reset_at(&mut tx, user.id)
            .await?
            .is_some_and(|at| at + domain::RESEND_INTERVAL > Utc::now())
        {
            return Ok(None);
        }
        repo::insert_password_reset(
            &mut tx,
            &token_hash,
            user.id,
            Utc::now() + domain::PASSWORD_RESET_TTL,
        )
        .await?;
        let event = AuditEventBuilder::new(SERVICE, Action::Create, "password_resets", user.id)
            .actor_service(SERVICE)
            .tenant(user.id)
            .change("event", "", "password_reset_requested")
            .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        Ok(Some(token))
    }

    /// A new email verification code for the active, unverified account of
    /// `email`, to mail; `None` when there is none, or when one was issued
    /// less than [`domain::RESEND_INTERVAL`] ago (so the endpoint cannot be
    /// used to flood someone's mailbox).
    pub async fn resend_verification(&self, email: &str) -> Result<Option<String>, IdentityError> {
        let (token, token_hash) =
            domain::new_opaque_token().map_err(|_| IdentityError::Credentials)?;
        let mut tx = fitflow_db::system_tx(&self.system).await?;
        let Some(user) = repo::find_user_by_email(&mut tx, email)
            .await?
            .filter(|user| user.status == "active" && !user.email_verified)
        else {
            return Ok(None);
        };
        let now = Utc::now();
        let newest = repo::newest_verification_expiry(&mut tx, user.id).await?;
        if newest.is_some_and(|expiry| {
            expiry - domain::EMAIL_VERIFICATION_TTL + domain::RESEND_INTERVAL > now
        }) {
            return Ok(None);
        }
        repo::insert_email_verification(
            &mut tx,
            &token_hash,
            user.id,
            now + domain::EMAIL_VERIFICATION_TTL,
        )
        .await?;
        let event = AuditEventBuilder::new(SERVICE, Action::Create, "email_verifications", user.id)
            .actor_service(SERVICE)
            .tenant(user.id)
            .change("event", "", "verification_resent")
            .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        Ok(Some(token))
    }

    /// Sets a new password with a reset token; revokes every session and
    /// lifts a login lockout of the account.
    pub async fn reset_password(
        &self,
        reset_token: &str,
        new_password: String,
    ) -> Result<(), IdentityError> {
        let token_hash = domain::hash_token(reset_token);
        // A bogus token costs a lookup, never a hash.
        {
            let mut tx = fitflow_db::system_tx(&self.system).await?;
            let live = repo::password_reset_is_live(&mut tx, &token_hash).await?;
            tx.commit().await.map_err(fitflow_db::DbError::from)?;
            if !live {
                return Err(IdentityError::ResetTokenInvalid);
            }
        }
        let new_hash = self.hashing.hash(new_password).await?;
        let mut tx = fitflow_db::system_tx(&self.system).await?;
        let user_id = repo::take_password_reset(&mut tx, &token_hash)
            .await?
            .ok_or(IdentityError::ResetTokenInvalid)?;
        let user = repo::lock_user(&mut tx, user_id)
            .await?
            .filter(|user| user.status == "active")
            .ok_or(IdentityError::ResetTokenInvalid)?;
        repo::set_password_hash(&mut tx, user_id, &new_hash).await?;
        let revoked = repo::revoke_user_sessions(&mut tx, user_id, None).await?;
        let keys = self.limit_keys(&user.email, "").await?;
        repo::clear_failures(&mut tx, ACCOUNT_KIND, &keys.account).await?;
        let event = AuditEventBuilder::new(SERVICE, Action::Update, "users", user_id)
            .actor_user(user_id)
            .tenant(user_id)
            .changed_field("password_hash")
            .change("event", "", "password_reset")
            .change("revoked_sessions", "", &revoked.to_string())
            .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        Ok(())
    }
}
