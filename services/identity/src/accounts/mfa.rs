//! TOTP enrolment, confirmation and removal for the calling user.

use chrono::Utc;
use fitflow_auth::{Caller, Principal};
use fitflow_outbox::{Action, AuditEventBuilder};

use super::{Accounts, MfaProof, mfa_secret_address};
use crate::domain;
use crate::repo;
use crate::{IdentityError, SERVICE};

/// What `EnrollMfa` hands out, once.
pub struct MfaEnrollment {
    /// The `otpauth://` URI for a QR code.
    pub provisioning_uri: String,
    /// The secret in base32, for typing.
    pub secret_base32: String,
}

impl Accounts {
    /// Stores a fresh, sealed TOTP secret for the caller (MFA stays off
    /// until confirmed). Needs the current password, checked against the
    /// login limits, so a stolen access token cannot bind the account to an
    /// attacker's authenticator.
    pub async fn enroll_mfa(
        &self,
        principal: &Principal,
        current_password: String,
    ) -> Result<MfaEnrollment, IdentityError> {
        let admission = self.hashing.admit()?;
        let user_id = principal.user_id;
        let user = self.active_account(principal).await?;
        if user.mfa_enabled {
            return Err(IdentityError::MfaAlreadyEnabled);
        }
        let (email, stored_hash) = (user.email, user.password_hash);
        // Hashed with no connection held.
        self.confirm_password(admission, &email, stored_hash, current_password)
            .await?;
        let secret = zeroize::Zeroizing::new(
            domain::new_totp_secret().map_err(|_| IdentityError::Credentials)?,
        );
        let sealed = self
            .keyring
            .seal(user_id, mfa_secret_address(user_id), &secret)
            .await?;
        let mut tx = fitflow_db::tx(&self.pool, &Caller::User(principal.clone())).await?;
        let user = repo::lock_user(&mut tx, user_id)
            .await?
            .filter(|user| user.status == "active")
            .ok_or(IdentityError::UserNotFound)?;
        if user.mfa_enabled {
            return Err(IdentityError::MfaAlreadyEnabled);
        }
        repo::set_pending_mfa_secret(&mut tx, user_id, &sealed).await?;
        let event = AuditEventBuilder::new(SERVICE, Action::Update, "users", user_id)
            .actor_user(user_id)
            .tenant(user_id)
            .changed_field("mfa_secret")
            .change("event", "", "mfa_enrolled")
            .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        Ok(MfaEnrollment {
            provisioning_uri: domain::provisioning_uri(&secret, &user.email),
            secret_base32: domain::totp_secret_base32(&secret),
        })
    }

    /// Confirms enrolment with a first code; turns MFA on and returns the
    /// recovery codes, once.
    pub async fn confirm_mfa(
        &self,
        principal: &Principal,
        code: &str,
    ) -> Result<Vec<String>, IdentityError> {
        let user_id = principal.user_id;
        let mut tx = fitflow_db::tx(&self.pool, &Caller::User(principal.clone())).await?;
        let user = repo::lock_user(&mut tx, user_id)
            .await?
            .filter(|user| user.status == "active")
            .ok_or(IdentityError::UserNotFound)?;
        if user.mfa_enabled {
            return Err(IdentityError::MfaAlreadyEnabled);
        }
        let Some(sealed) = user.mfa_secret_sealed.as_deref() else {
            return Err(IdentityError::MfaNotEnrolled);
        };
        let secret = self
            .keyring
            .open(user_id, mfa_secret_address(user_id), sealed)
            .await?;
        let step =
            domain::accepted_totp_step(&secret, code, Utc::now().timestamp(), user.mfa_last_step)
                .ok_or(IdentityError::MfaCodeInvalid)?;
        let recovery_codes =
            domain::new_recovery_codes().map_err(|_| IdentityError::Credentials)?;
        let hashes: Vec<Vec<u8>> = recovery_codes
            .iter()
            .filter_map(|code| domain::normalize_recovery_code(code))
            .map(|normalized| domain::hash_recovery_code(&normalized))
            .collect();
        debug_assert_eq!(hashes.len(), recovery_codes.len());
        repo::enable_mfa(&mut tx, user_id, step, &hashes).await?;
        let event = AuditEventBuilder::new(SERVICE, Action::Update, "users", user_id)
            .actor_user(user_id)
            .tenant(user_id)
            .change("mfa_enabled", "false", "true")
            .changed_field("recovery_codes")
            .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        Ok(recovery_codes)
    }

    /// Turns MFA off with the password and a second factor.
    pub async fn disable_mfa(
        &self,
        principal: &Principal,
        password: String,
        proof: MfaProof,
    ) -> Result<(), IdentityError> {
        let admission = self.hashing.admit()?;
        let user_id = principal.user_id;
        let caller = Caller::User(principal.clone());
        // Verify the password outside any transaction: no connection or row
        // lock is held while argon2id runs.
        let user = self.active_account(principal).await?;
        if !user.mfa_enabled {
            return Err(IdentityError::MfaNotEnabled);
        }
        let (email, stored_hash) = (user.email, user.password_hash);
        self.confirm_password(admission, &email, stored_hash.clone(), password)
            .await?;
        self.second_factor_open(user_id).await?;
        let mut tx = fitflow_db::tx(&self.pool, &caller).await?;
        let user = repo::lock_user(&mut tx, user_id)
            .await?
            .filter(|user| user.status == "active" && user.password_hash == stored_hash)
            .ok_or(IdentityError::InvalidCredentials)?;
        if !user.mfa_enabled {
            return Err(IdentityError::MfaNotEnabled);
        }
        if !self.check_second_factor(&mut tx, &user, &proof).await? {
            drop(tx);
            self.count_wrong_code(user_id).await?;
            return Err(IdentityError::MfaCodeInvalid);
        }
        repo::disable_mfa(&mut tx, user_id).await?;
        let event = AuditEventBuilder::new(SERVICE, Action::Update, "users", user_id)
            .actor_user(user_id)
            .tenant(user_id)
            .change("mfa_enabled", "true", "false")
            .changed_field("mfa_secret")
            .changed_field("recovery_codes")
            .change("method", "", proof.method())
            .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        Ok(())
    }
}
