//! The identity use cases: each opens one transaction, writes its audit event
//! in it, and commits only when everything (including token signing) worked.

use std::sync::{Arc, LazyLock};

use chrono::{DateTime, Utc};
use fitflow_auth::{Caller, Principal, Role};
use fitflow_crypto::{FieldAddress, KeyRing};
use fitflow_outbox::{Action, AuditEventBuilder};
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::{self, NewAccount};
use crate::repo::{self, NewUserRow, UserRow};
use crate::{IdentityError, SERVICE, TokenSigner};

/// The identity service acting on its own, before any user token exists.
const SELF: Caller = Caller::Service(SERVICE);

/// A hash to verify against when the email is unknown, so that an unknown
/// email costs the same time as a wrong password.
static DECOY_HASH: LazyLock<String> =
    LazyLock::new(|| domain::hash_password("decoy password for timing").unwrap_or_default());

/// An account as returned to callers.
#[derive(Debug, Clone)]
pub struct Account {
    /// The user's id.
    pub id: Uuid,
    /// Normalised email.
    pub email: String,
    /// Whether the email is verified.
    pub email_verified: bool,
    /// The opened display name.
    pub display_name: String,
    /// `active`, `suspended` or `deleted`.
    pub status: String,
    /// Roles held.
    pub roles: Vec<Role>,
    /// Whether MFA is on.
    pub mfa_enabled: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last successful login.
    pub last_login_at: Option<DateTime<Utc>>,
}

/// A freshly issued token pair.
#[derive(Clone)]
pub struct IssuedTokens {
    /// The signed access token.
    pub access_token: String,
    /// When it expires.
    pub access_expires_at: DateTime<Utc>,
    /// The opaque refresh token.
    pub refresh_token: String,
    /// When it expires.
    pub refresh_expires_at: DateTime<Utc>,
    /// The session.
    pub session_id: Uuid,
}

/// Where a login comes from, as reported by the gateway.
pub struct ClientContext<'a> {
    /// End-user IP address.
    pub address: &'a str,
    /// End-user user agent.
    pub user_agent: &'a str,
}

/// The identity use cases.
#[derive(Clone)]
pub struct Accounts {
    pool: PgPool,
    keyring: KeyRing,
    signer: Arc<TokenSigner>,
}

impl Accounts {
    /// Use cases over the identity schema, sealing with `keyring` and signing with `signer`.
    pub fn new(pool: PgPool, keyring: KeyRing, signer: Arc<TokenSigner>) -> Self {
        Self {
            pool,
            keyring,
            signer,
        }
    }

    /// The token signer (also the source of published keys).
    pub fn signer(&self) -> &TokenSigner {
        &self.signer
    }

    /// Creates an account; returns it and its email verification token.
    pub async fn register(
        &self,
        account: NewAccount,
        password: String,
    ) -> Result<(Account, String), IdentityError> {
        let password_hash = tokio::task::spawn_blocking(move || domain::hash_password(&password))
            .await
            .map_err(|_| IdentityError::Credentials)?
            .map_err(|_| IdentityError::Credentials)?;
        let user_id = Uuid::now_v7();
        let display_name_sealed = self
            .keyring
            .seal(
                user_id,
                display_name_address(user_id),
                account.display_name.as_bytes(),
            )
            .await?;
        let (verification_token, verification_hash) =
            domain::new_opaque_token().map_err(|_| IdentityError::Credentials)?;
        let role_names: Vec<String> = account
            .roles
            .iter()
            .map(|r| r.as_str().to_owned())
            .collect();

        let mut tx = fitflow_db::tx(&self.pool, &SELF).await?;
        let inserted = repo::insert_user(
            &mut tx,
            NewUserRow {
                id: user_id,
                email: &account.email,
                password_hash: &password_hash,
                display_name_sealed: &display_name_sealed,
                roles: role_names.clone(),
            },
        )
        .await;
        if let Err(error) = inserted {
            return Err(
                if fitflow_db::is_unique_violation(&error, "users_email_key") {
                    IdentityError::EmailTaken
                } else {
                    error.into()
                },
            );
        }
        repo::insert_email_verification(
            &mut tx,
            &verification_hash,
            user_id,
            Utc::now() + domain::EMAIL_VERIFICATION_TTL,
        )
        .await?;
        let event = AuditEventBuilder::new(SERVICE, Action::Create, "users", user_id)
            .actor_user(user_id)
            .tenant(user_id)
            .changed_field("email")
            .changed_field("password_hash")
            .changed_field("display_name")
            .change("roles", "", &role_names.join(","))
            .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        let row = repo::find_user(&mut tx, user_id)
            .await?
            .ok_or(IdentityError::UserNotFound)?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        let account = self.open_account(row).await?;
        Ok((account, verification_token))
    }

    /// Verifies a password and opens a session.
    pub async fn login(
        &self,
        email: &str,
        password: String,
        client: ClientContext<'_>,
    ) -> Result<IssuedTokens, IdentityError> {
        let mut tx = fitflow_db::tx(&self.pool, &SELF).await?;
        let user = repo::find_user_by_email(&mut tx, email).await?;
        let stored_hash = user
            .as_ref()
            .map_or_else(|| DECOY_HASH.clone(), |row| row.password_hash.clone());
        let password_ok =
            tokio::task::spawn_blocking(move || domain::verify_password(&password, &stored_hash))
                .await
                .map_err(|_| IdentityError::Credentials)?;
        let Some(user) = user.filter(|_| password_ok) else {
            return Err(IdentityError::InvalidCredentials);
        };
        match user.status.as_str() {
            "active" => {}
            "suspended" => return Err(IdentityError::AccountSuspended),
            _ => return Err(IdentityError::InvalidCredentials),
        }

        let session_id = Uuid::now_v7();
        repo::insert_session(
            &mut tx,
            session_id,
            user.id,
            client.user_agent,
            client.address,
        )
        .await?;
        repo::touch_last_login(&mut tx, user.id).await?;
        let tokens = self.issue_tokens(&mut tx, &user, session_id).await?;
        let event = AuditEventBuilder::new(SERVICE, Action::Authenticate, "sessions", session_id)
            .actor_user(user.id)
            .tenant(user.id)
            .change("event", "", "login")
            .client(client.address, client.user_agent)
            .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        Ok(tokens)
    }

    /// Spends a refresh token for a new pair; a spent token presented again
    /// revokes its session.
    pub async fn refresh(&self, refresh_token: &str) -> Result<IssuedTokens, IdentityError> {
        let token_hash = domain::hash_token(refresh_token);
        let mut tx = fitflow_db::tx(&self.pool, &SELF).await?;
        let Some(stored) = repo::lock_refresh_token(&mut tx, &token_hash).await? else {
            return Err(IdentityError::RefreshTokenInvalid);
        };
        if stored.spent_at.is_some() {
            repo::revoke_session(&mut tx, stored.session_id).await?;
            let event =
                AuditEventBuilder::new(SERVICE, Action::Update, "sessions", stored.session_id)
                    .actor_service(SERVICE)
                    .tenant(stored.user_id)
                    .change("revoked", "false", "true")
                    .change("reason", "", "refresh_token_reused")
                    .build();
            fitflow_outbox::record(&mut tx, &event).await?;
            tx.commit().await.map_err(fitflow_db::DbError::from)?;
            tracing::warn!(session_id = %stored.session_id, "refresh token reuse: session revoked");
            return Err(IdentityError::RefreshTokenReused);
        }
        if stored.session_revoked_at.is_some() || stored.expires_at <= Utc::now() {
            return Err(IdentityError::RefreshTokenInvalid);
        }
        let user = repo::find_user(&mut tx, stored.user_id)
            .await?
            .filter(|user| user.status == "active")
            .ok_or(IdentityError::RefreshTokenInvalid)?;
        repo::spend_refresh_token(&mut tx, &token_hash).await?;
        let tokens = self.issue_tokens(&mut tx, &user, stored.session_id).await?;
        let event =
            AuditEventBuilder::new(SERVICE, Action::Authenticate, "sessions", stored.session_id)
                .actor_user(user.id)
                .tenant(user.id)
                .change("event", "", "refresh")
                .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        Ok(tokens)
    }

    /// The account of the calling user.
    pub async fn current(&self, principal: &Principal) -> Result<Account, IdentityError> {
        let mut tx = fitflow_db::tx(&self.pool, &Caller::User(principal.clone())).await?;
        let row = repo::find_user(&mut tx, principal.user_id)
            .await?
            .filter(|user| user.status != "deleted")
            .ok_or(IdentityError::UserNotFound)?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        self.open_account(row).await
    }

    async fn issue_tokens(
        &self,
        tx: &mut sqlx::PgConnection,
        user: &UserRow,
        session_id: Uuid,
    ) -> Result<IssuedTokens, IdentityError> {
        let now = Utc::now();
        let roles = parse_roles(&user.roles);
        let claims = domain::access_claims(user.id, session_id, &roles, now);
        let access_token = self.signer.sign(&claims).await?;
        let (refresh_token, refresh_hash) =
            domain::new_opaque_token().map_err(|_| IdentityError::Credentials)?;
        let refresh_expires_at = now + domain::REFRESH_TOKEN_TTL;
        repo::insert_refresh_token(tx, &refresh_hash, session_id, refresh_expires_at).await?;
        Ok(IssuedTokens {
            access_token,
            access_expires_at: now + domain::ACCESS_TOKEN_TTL,
            refresh_token,
            refresh_expires_at,
            session_id,
        })
    }

    async fn open_account(&self, row: UserRow) -> Result<Account, IdentityError> {
        let display_name = self
            .keyring
            .open(
                row.id,
                display_name_address(row.id),
                &row.display_name_sealed,
            )
            .await?;
        Ok(Account {
            id: row.id,
            email: row.email,
            email_verified: row.email_verified,
            display_name: String::from_utf8_lossy(&display_name).into_owned(),
            status: row.status,
            roles: parse_roles(&row.roles),
            mfa_enabled: row.mfa_enabled,
            created_at: row.created_at,
            last_login_at: row.last_login_at,
        })
    }
}

fn display_name_address(user_id: Uuid) -> FieldAddress<'static> {
    FieldAddress {
        table: "users",
        column: "display_name",
        row_id: user_id,
    }
}

fn parse_roles(names: &[String]) -> Vec<Role> {
    names.iter().filter_map(|name| name.parse().ok()).collect()
}
