//! The identity use cases: each opens one transaction, writes its audit event
//! in it, and commits only when everything (including token signing) worked.

mod admin;
mod directory;
mod mfa;
mod profile;
mod revocation;
mod sessions;

pub(crate) use admin::{OperatorCall, RoleChange};
pub(crate) use directory::LookupKey;
pub(crate) use profile::ProfileChange;
pub(crate) use sessions::session_page_size;

use std::sync::{Arc, LazyLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use chrono::{DateTime, Utc};
use fitflow_api::etag::Etag;
use fitflow_api::idempotency::{self, Claim, IdempotencyKey, RequestHash};
use fitflow_api::page::PageTokens;
use fitflow_auth::{Caller, Principal, Role};
use fitflow_crypto::{FieldAddress, KeyRing};
use fitflow_db::SystemPool;
use fitflow_outbox::{Action, AuditEventBuilder};
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::{self, NewAccount};
use crate::hashing::{Admission, PasswordHashing};
use crate::repo::{self, NewUserRow, UserRow};
use crate::revocations::RevocationFeed;
use crate::structure::{ActingFor, Structure};
use crate::{IdentityError, SERVICE, TokenSigner};

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
    /// When the account was soft-deleted.
    pub deleted_at: Option<DateTime<Utc>>,
    /// The account's current etag (AIP-154).
    pub etag: Etag,
}

/// What a correct password leads to.
pub enum LoginOutcome {
    /// A new session (no MFA).
    Tokens(IssuedTokens),
    /// MFA is on: finish with [`Accounts::complete_mfa_login`].
    MfaRequired {
        /// The opaque, single-use challenge token.
        challenge_token: String,
        /// When it expires.
        expires_at: DateTime<Utc>,
    },
}

/// A second factor.
pub enum MfaProof {
    /// A 6-digit TOTP code.
    TotpCode(String),
    /// A recovery code as typed.
    RecoveryCode(String),
}

impl MfaProof {
    /// The method's name for audit events (never the code).
    fn method(&self) -> &'static str {
        match self {
            MfaProof::TotpCode(_) => "totp",
            MfaProof::RecoveryCode(_) => "recovery_code",
        }
    }
}

/// The rate-limit keys of one login attempt.
struct LimitKeys {
    account: String,
    address: Option<String>,
}

const ACCOUNT_KIND: &str = "account";
const ADDRESS_KIND: &str = "address";
/// `login_attempts.kind` of second-factor failures, keyed by user id.
const SECOND_FACTOR_KIND: &str = "second_factor";

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

/// What makes a `Register` call safe to retry: its request id's key and the
/// hash of the request without its password.
pub struct RegisterRetry {
    /// Who sent which request id to `Register`.
    pub key: IdempotencyKey,
    /// The request, password left out.
    pub hash: RequestHash,
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
    /// Connections of `pool` for one-statement reads ([`fitflow_db::Express`]).
    express: Arc<fitflow_db::Express>,
    /// The system role's pool: sign-in, refresh and the other work identity
    /// does for itself, before or without a user's context.
    system: SystemPool,
    keyring: KeyRing,
    signer: Arc<TokenSigner>,
    hashing: PasswordHashing,
    /// Derived on first use from the service's blind-index key.
    page_tokens: Arc<tokio::sync::OnceCell<PageTokens>>,
    /// Where tokens' acting-for claims come from (tenancy).
    structure: Option<Structure>,
    /// The revocation stream's state.
    revocations: RevocationFeed,
}

impl Accounts {
    /// Use cases over the identity schema, sealing with `keyring` and signing with `signer`.
    pub fn new(
        pool: PgPool,
        system: SystemPool,
        keyring: KeyRing,
        signer: Arc<TokenSigner>,
    ) -> Self {
        // Compute the decoy hash now, off the async threads, so the first
        // unknown email costs no more than any other.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn_blocking(|| LazyLock::force(&DECOY_HASH));
        }
        Self {
            keyring,
            signer,
            hashing: PasswordHashing::for_this_machine(),
            page_tokens: Arc::default(),
            structure: None,
            revocations: RevocationFeed::polling(pool.clone()),
            express: Arc::new(fitflow_db::Express::half_of(pool.clone())),
            pool,
            system,
        }
    }

    /// Streams revocations through `feed` (woken by its listener, ended at
    /// shutdown) instead of a feed that only polls.
    pub fn with_revocation_feed(mut self, feed: RevocationFeed) -> Self {
        self.revocations = feed;
        self
    }

    /// Issues tokens carrying what each user acts for, asked of tenancy
    /// through `structure`; without it tokens are partial (own id only).
    pub fn with_structure(mut self, structure: Structure) -> Self {
        self.structure = Some(structure);
        self
    }

    /// The token signer (also the source of published keys).
    pub fn signer(&self) -> &TokenSigner {
        &self.signer
    }

    /// Creates an account; returns it and its email verification token.
    /// With `retry`, a request seen before answers with the account it
    /// created (see [`Accounts::replay_registration`]).
    pub async fn register(
        &self,
        account: NewAccount,
        password: String,
        retry: Option<RegisterRetry>,
    ) -> Result<(Account, String), IdentityError> {
        // Kept only to check a replay's password against the account's hash.
        let password_for_replay = retry.as_ref().map(|_| password.clone());
        let password_hash = self.hashing.hash(password).await?;
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

        let mut tx = fitflow_db::system_tx(&self.system).await?;
        if let Some(retry) = &retry {
            // Claimed in the transaction that creates the account: both
            // commit or neither does, so a failed create frees the id.
            let claim = idempotency::claim(&mut tx, &retry.key, &retry.hash, user_id).await?;
            if let Claim::Replay(first_user_id) = claim {
                tx.rollback().await.map_err(fitflow_db::DbError::from)?;
                return self
                    .replay_registration(first_user_id, password_for_replay.unwrap_or_default())
                    .await;
            }
        }
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

    /// The answer to a retried `Register`: the account the first call
    /// created, as it is now, if `password` is the one it was created with
    /// (else the request differs: REQUEST_ID_REUSED), with a fresh email
    /// verification token while the email is unverified (the first one's
    /// response was lost, and only its hash was kept). Changes nothing else,
    /// so it records no audit event.
    async fn replay_registration(
        &self,
        user_id: Uuid,
        password: String,
    ) -> Result<(Account, String), IdentityError> {
        let row = {
            let mut tx = fitflow_db::system_tx(&self.system).await?;
            let row = repo::find_user(&mut tx, user_id).await?;
            tx.commit().await.map_err(fitflow_db::DbError::from)?;
            row.ok_or(IdentityError::UserNotFound)?
        };
        if !self
            .hashing
            .verify(password, row.password_hash.clone())
            .await?
        {
            return Err(fitflow_api::ContractError::RequestIdReused.into());
        }
        let verification_token = if row.email_verified {
            String::new()
        } else {
            let (token, token_hash) =
                domain::new_opaque_token().map_err(|_| IdentityError::Credentials)?;
            let mut tx = fitflow_db::system_tx(&self.system).await?;
            repo::insert_email_verification(
                &mut tx,
                &token_hash,
                user_id,
                Utc::now() + domain::EMAIL_VERIFICATION_TTL,
            )
            .await?;
            tx.commit().await.map_err(fitflow_db::DbError::from)?;
            token
        };
        Ok((self.open_account(row).await?, verification_token))
    }

    /// Marks the email of a verification token's account verified.
    pub async fn verify_email(&self, token: &str) -> Result<Account, IdentityError> {
        let token_hash = domain::hash_token(token);
        let mut tx = fitflow_db::system_tx(&self.system).await?;
        let user_id = repo::take_email_verification(&mut tx, &token_hash)
            .await?
            .ok_or(IdentityError::VerificationTokenInvalid)?;
        let row = repo::find_user(&mut tx, user_id)
            .await?
            .ok_or(IdentityError::VerificationTokenInvalid)?;
        let event = AuditEventBuilder::new(SERVICE, Action::Update, "users", user_id)
            .actor_user(user_id)
            .tenant(user_id)
            .change("email_verified", "false", "true")
            .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        self.open_account(row).await
    }

    /// Verifies a password; opens a session, or for an MFA account issues a
    /// challenge. Failures count against the account and the client address.
    pub async fn login(
        &self,
        email: &str,
        password: String,
        client: ClientContext<'_>,
    ) -> Result<LoginOutcome, IdentityError> {
        // A place in the hashing gate before anything else: a flood beyond
        // its queue is refused without database work.
        let admission = self.hashing.admit()?;
        let keys = self.limit_keys(email, client.address).await?;
        // The cheap checks first, in a transaction that ends before the hash:
        // no connection or lock is held while argon2id runs.
        let (user, stored_hash) = {
            let mut tx = fitflow_db::system_tx(&self.system).await?;
            ensure_not_locked(&mut tx, &keys).await?;
            let user = repo::find_user_by_email(&mut tx, email).await?;
            tx.commit().await.map_err(fitflow_db::DbError::from)?;
            let stored_hash = user
                .as_ref()
                .map_or_else(|| DECOY_HASH.clone(), |row| row.password_hash.clone());
            (user, stored_hash)
        };
        let password_ok = admission.verify(password, stored_hash.clone()).await?;
        let mut tx = fitflow_db::system_tx(&self.system).await?;
        // The password may have changed while we hashed: only the verified one counts.
        let user = match user {
            Some(_) => repo::find_user_by_email(&mut tx, email)
                .await?
                .filter(|current| current.password_hash == stored_hash),
            None => None,
        };
        let user = match user {
            Some(user) if password_ok && user.status != "deleted" => user,
            other => {
                let known_user = other.map(|user| user.id);
                count_failure(&mut tx, &keys).await?;
                let mut event = AuditEventBuilder::new(
                    SERVICE,
                    Action::Authenticate,
                    "users",
                    known_user.unwrap_or_else(Uuid::nil),
                )
                .actor_service(SERVICE)
                .change("event", "", "login_failed")
                .client(client.address, client.user_agent);
                if let Some(user_id) = known_user {
                    event = event.tenant(user_id);
                }
                fitflow_outbox::record(&mut tx, &event.build()).await?;
                tx.commit().await.map_err(fitflow_db::DbError::from)?;
                return Err(IdentityError::InvalidCredentials);
            }
        };
        if user.status == "suspended" {
            let event = AuditEventBuilder::new(SERVICE, Action::Authenticate, "users", user.id)
                .actor_service(SERVICE)
                .tenant(user.id)
                .change("event", "", "login_refused_suspended")
                .client(client.address, client.user_agent)
                .build();
            fitflow_outbox::record(&mut tx, &event).await?;
            tx.commit().await.map_err(fitflow_db::DbError::from)?;
            return Err(IdentityError::AccountSuspended);
        }
        repo::clear_failures(&mut tx, ACCOUNT_KIND, &keys.account).await?;

        if user.mfa_enabled {
            let (challenge_token, challenge_hash) =
                domain::new_opaque_token().map_err(|_| IdentityError::Credentials)?;
            let expires_at = Utc::now() + domain::MFA_CHALLENGE_TTL;
            repo::insert_mfa_challenge(
                &mut tx,
                &challenge_hash,
                user.id,
                client.user_agent,
                client.address,
                expires_at,
            )
            .await?;
            let event = AuditEventBuilder::new(SERVICE, Action::Authenticate, "users", user.id)
                .actor_user(user.id)
                .tenant(user.id)
                .change("event", "", "mfa_challenge_issued")
                .client(client.address, client.user_agent)
                .build();
            fitflow_outbox::record(&mut tx, &event).await?;
            tx.commit().await.map_err(fitflow_db::DbError::from)?;
            return Ok(LoginOutcome::MfaRequired {
                challenge_token,
                expires_at,
            });
        }

        let tokens = self
            .open_session(&mut tx, &user, client, "password")
            .await?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        Ok(LoginOutcome::Tokens(tokens))
    }

    /// The signed-in caller's active account, read in a short transaction
    /// that ends before any password is hashed.
    async fn active_account(&self, principal: &Principal) -> Result<UserRow, IdentityError> {
        let mut tx = fitflow_db::tx(&self.pool, &Caller::User(principal.clone())).await?;
        let user = repo::find_user(&mut tx, principal.user_id)
            .await?
            .filter(|user| user.status == "active")
            .ok_or(IdentityError::UserNotFound)?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        Ok(user)
    }

    /// Checks the password a signed-in user gives to confirm a sensitive
    /// change (ChangePassword, EnrollMfa, DisableMfa) against the same
    /// per-account limit as login, so a stolen access token does not buy
    /// unlimited guesses. The hash runs with no connection held, in the
    /// gate place `admission` the caller took before any database work.
    async fn confirm_password(
        &self,
        admission: Admission,
        email: &str,
        stored_hash: String,
        password: String,
    ) -> Result<(), IdentityError> {
        let keys = self.limit_keys(email, "").await?;
        let mut tx = fitflow_db::system_tx(&self.system).await?;
        ensure_not_locked(&mut tx, &keys).await?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        if admission.verify(password, stored_hash).await? {
            return Ok(());
        }
        let mut tx = fitflow_db::system_tx(&self.system).await?;
        count_failure(&mut tx, &keys).await?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        Err(IdentityError::InvalidCredentials)
    }

    /// Refuses while the account's second factor is locked.
    async fn second_factor_open(&self, user_id: Uuid) -> Result<(), IdentityError> {
        let mut tx = fitflow_db::system_tx(&self.system).await?;
        ensure_second_factor_open(&mut tx, user_id).await?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        Ok(())
    }

    /// Clears the account's second-factor failures (an operator reset MFA).
    async fn lift_second_factor_lock(&self, user_id: Uuid) -> Result<(), IdentityError> {
        let mut tx = fitflow_db::system_tx(&self.system).await?;
        repo::clear_failures(&mut tx, SECOND_FACTOR_KIND, &user_id.to_string()).await?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        Ok(())
    }

    /// Counts a wrong code given outside a login (DisableMfa).
    async fn count_wrong_code(&self, user_id: Uuid) -> Result<(), IdentityError> {
        let mut tx = fitflow_db::system_tx(&self.system).await?;
        count_second_factor_failure(&mut tx, user_id).await?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        Ok(())
    }

    /// Finishes an MFA login with a TOTP or recovery code.
    pub async fn complete_mfa_login(
        &self,
        challenge_token: &str,
        proof: MfaProof,
    ) -> Result<IssuedTokens, IdentityError> {
        let challenge_hash = domain::hash_token(challenge_token);
        let mut tx = fitflow_db::system_tx(&self.system).await?;
        let challenge = repo::lock_mfa_challenge(&mut tx, &challenge_hash)
            .await?
            .filter(|challenge| challenge.used_at.is_none() && challenge.expires_at > Utc::now())
            .ok_or(IdentityError::MfaChallengeInvalid)?;
        let user = repo::lock_user(&mut tx, challenge.user_id)
            .await?
            .filter(|user| user.status == "active" && user.mfa_enabled)
            .ok_or(IdentityError::MfaChallengeInvalid)?;
        let keys = self.limit_keys(&user.email, &challenge.client_addr).await?;
        ensure_not_locked(&mut tx, &keys).await?;
        ensure_second_factor_open(&mut tx, user.id).await?;
        let client = ClientContext {
            address: &challenge.client_addr,
            user_agent: &challenge.user_agent,
        };

        let method = proof.method();
        if !self.check_second_factor(&mut tx, &user, &proof).await? {
            let failed_attempts = challenge.failed_attempts + 1;
            let spent = failed_attempts >= domain::MFA_CHALLENGE_MAX_FAILURES;
            repo::update_mfa_challenge(&mut tx, &challenge_hash, failed_attempts, spent).await?;
            count_failure(&mut tx, &keys).await?;
            count_second_factor_failure(&mut tx, user.id).await?;
            let event = AuditEventBuilder::new(SERVICE, Action::Authenticate, "users", user.id)
                .actor_service(SERVICE)
                .tenant(user.id)
                .change("event", "", "mfa_failed")
                .change("method", "", method)
                .client(client.address, client.user_agent)
                .build();
            fitflow_outbox::record(&mut tx, &event).await?;
            tx.commit().await.map_err(fitflow_db::DbError::from)?;
            return Err(IdentityError::MfaCodeInvalid);
        }
        repo::update_mfa_challenge(&mut tx, &challenge_hash, challenge.failed_attempts, true)
            .await?;
        repo::clear_failures(&mut tx, ACCOUNT_KIND, &keys.account).await?;
        repo::clear_failures(&mut tx, SECOND_FACTOR_KIND, &user.id.to_string()).await?;
        let tokens = self.open_session(&mut tx, &user, client, method).await?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        Ok(tokens)
    }

    /// Checks a TOTP or recovery code of `user` (whose row the transaction
    /// holds locked); spends what it accepts (the step, or the recovery code).
    async fn check_second_factor(
        &self,
        tx: &mut sqlx::PgConnection,
        user: &UserRow,
        proof: &MfaProof,
    ) -> Result<bool, IdentityError> {
        match proof {
            MfaProof::TotpCode(code) => {
                let Some(sealed) = user.mfa_secret_sealed.as_deref() else {
                    return Ok(false);
                };
                let secret = self
                    .keyring
                    .open(user.id, mfa_secret_address(user.id), sealed)
                    .await?;
                let accepted = domain::accepted_totp_step(
                    &secret,
                    code,
                    Utc::now().timestamp(),
                    user.mfa_last_step,
                );
                match accepted {
                    Some(step) => {
                        repo::set_mfa_last_step(tx, user.id, step).await?;
                        Ok(true)
                    }
                    None => Ok(false),
                }
            }
            MfaProof::RecoveryCode(code) => {
                let Some(normalized) = domain::normalize_recovery_code(code) else {
                    return Ok(false);
                };
                let code_hash = domain::hash_recovery_code(&normalized);
                Ok(repo::use_recovery_code(tx, user.id, &code_hash).await?)
            }
        }
    }

    /// Opens a session for `user` and issues its first tokens, with the
    /// login's audit event.
    async fn open_session(
        &self,
        tx: &mut sqlx::PgConnection,
        user: &UserRow,
        client: ClientContext<'_>,
        method: &str,
    ) -> Result<IssuedTokens, IdentityError> {
        let session_id = Uuid::now_v7();
        let amr = domain::session_amr(method);
        repo::insert_session(
            tx,
            session_id,
            user.id,
            client.user_agent,
            client.address,
            &amr,
        )
        .await?;
        let evicted = repo::revoke_sessions_beyond(tx, user.id, domain::MAX_LIVE_SESSIONS).await?;
        repo::touch_last_login(tx, user.id).await?;
        let tokens = self.issue_tokens(tx, user, session_id, &amr).await?;
        let event = AuditEventBuilder::new(SERVICE, Action::Authenticate, "sessions", session_id)
            .actor_user(user.id)
            .tenant(user.id)
            .change("event", "", "login")
            .change("method", "", method)
            .change("evicted_sessions", "", &evicted.to_string())
            .client(client.address, client.user_agent)
            .build();
        fitflow_outbox::record(tx, &event).await?;
        Ok(tokens)
    }

    /// The rate-limit keys of a login: keyed blind indexes (HMAC) of the
    /// normalised email and of the client address, so neither is stored in clear.
    async fn limit_keys(&self, email: &str, address: &str) -> Result<LimitKeys, IdentityError> {
        let account = self
            .keyring
            .blind_index(Uuid::nil(), "login_attempts.account", email.as_bytes())
            .await?;
        let address = if address.is_empty() {
            None
        } else {
            let index = self
                .keyring
                .blind_index(Uuid::nil(), "login_attempts.address", address.as_bytes())
                .await?;
            Some(URL_SAFE_NO_PAD.encode(index))
        };
        Ok(LimitKeys {
            account: URL_SAFE_NO_PAD.encode(account),
            address,
        })
    }

    /// Spends a refresh token for a new pair; a spent token presented again
    /// revokes its session, unless it is the one retry of a lost response
    /// (see [`Accounts::lost_response_retry`]).
    pub async fn refresh(&self, refresh_token: &str) -> Result<IssuedTokens, IdentityError> {
        let token_hash = domain::hash_token(refresh_token);
        let mut tx = fitflow_db::system_tx(&self.system).await?;
        let Some(stored) =
            repo::lock_refresh_token(&mut tx, &token_hash, domain::REFRESH_RETRY_WINDOW).await?
        else {
            return Err(IdentityError::RefreshTokenInvalid);
        };
        let lost_pair = lost_response_retry(&mut tx, &stored).await?;
        let presented_before = stored.spent_at.is_some() || stored.revoked_at.is_some();
        if presented_before && lost_pair.is_none() {
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
        debug_assert_eq!(user.id, stored.user_id);
        let tokens = self
            .issue_tokens(&mut tx, &user, stored.session_id, &stored.session_amr)
            .await?;
        let new_hash = domain::hash_token(&tokens.refresh_token);
        let event =
            AuditEventBuilder::new(SERVICE, Action::Authenticate, "sessions", stored.session_id)
                .actor_user(user.id)
                .tenant(user.id);
        let event = match lost_pair {
            Some(lost_refresh_hash) => {
                // The pair issued for the lost response dies (its access
                // token lives out its 15 minutes, like every access token).
                repo::revoke_refresh_token(&mut tx, &lost_refresh_hash).await?;
                repo::spend_refresh_retry(&mut tx, &token_hash, &new_hash).await?;
                event.change("event", "", "refresh_retried").change(
                    "revoked_lost_refresh_token",
                    "",
                    "true",
                )
            }
            None => {
                repo::spend_refresh_token(&mut tx, &token_hash, &new_hash).await?;
                event.change("event", "", "refresh")
            }
        };
        fitflow_outbox::record(&mut tx, &event.build()).await?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        Ok(tokens)
    }

    /// The account of the calling user.
    pub async fn current(&self, principal: &Principal) -> Result<Account, IdentityError> {
        let row = repo::find_user_once(
            &self.express,
            &Caller::User(principal.clone()),
            principal.user_id,
        )
        .await?
        .filter(|user| user.status != "deleted")
        .ok_or(IdentityError::UserNotFound)?;
        self.open_account(row).await
    }

    async fn issue_tokens(
        &self,
        tx: &mut sqlx::PgConnection,
        user: &UserRow,
        session_id: Uuid,
        amr: &[String],
    ) -> Result<IssuedTokens, IdentityError> {
        if let Some(mark) = repo::latest_user_mark(tx, user.id).await?
            && let Some(wait) = domain::issue_delay(Utc::now(), mark)
        {
            // Right after a change (at most a second): a token issued
            // before the mark would be refused with the older ones.
            tokio::time::sleep(wait).await;
        }
        // Taken before the structure is read: a token whose claims were
        // read before a change committed has an `iat` before its mark.
        let now = Utc::now();
        let roles = parse_roles(&user.roles);
        let acting_for = match &self.structure {
            Some(structure) => structure.acting_for(user.id).await,
            None => ActingFor::partial(),
        };
        let claims = domain::access_claims(user.id, session_id, &roles, amr, &acting_for, now);
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
            deleted_at: row.deleted_at,
            etag: Etag::of_version(row.id, row.version),
        })
    }
}

/// The hash of the refresh token issued for a lost response, when `stored`
/// is presented again as that response's retry: spent within the retry
/// window, not retried before, and the token it was exchanged for never
/// used (had the caller received it, it would present that one). Anything
/// else presented a second time is reuse. The successor is locked, so a
/// concurrent refresh with it waits and then finds it revoked.
async fn lost_response_retry(
    tx: &mut sqlx::PgConnection,
    stored: &repo::RefreshRow,
) -> Result<Option<Vec<u8>>, IdentityError> {
    let retry_candidate = stored.spent_at.is_some()
        && stored.revoked_at.is_none()
        && stored.retried_at.is_none()
        && stored.within_retry_window;
    let Some(successor) = stored.replaced_by.as_deref().filter(|_| retry_candidate) else {
        return Ok(None);
    };
    let unused = repo::lock_unused_refresh_token(tx, successor).await?;
    Ok(unused.then(|| successor.to_vec()))
}

/// RESOURCE_EXHAUSTED when the account or the address is locked.
async fn ensure_not_locked(
    tx: &mut sqlx::PgConnection,
    keys: &LimitKeys,
) -> Result<(), IdentityError> {
    let now = Utc::now();
    let mut longest: Option<chrono::Duration> = None;
    let mut candidates = vec![(ACCOUNT_KIND, keys.account.as_str())];
    if let Some(address) = &keys.address {
        candidates.push((ADDRESS_KIND, address.as_str()));
    }
    for (kind, key) in candidates {
        let wait = repo::failure_counter(tx, kind, key)
            .await?
            .and_then(|counter| counter.retry_after(now));
        longest = longest.max(wait);
    }
    match longest {
        Some(wait) => Err(IdentityError::LoginRateLimited {
            retry_after: wait.to_std().unwrap_or_default(),
        }),
        None => Ok(()),
    }
}

/// Refuses second-factor checks while the account's second factor is locked.
async fn ensure_second_factor_open(
    tx: &mut sqlx::PgConnection,
    user_id: Uuid,
) -> Result<(), IdentityError> {
    let wait = repo::failure_counter(tx, SECOND_FACTOR_KIND, &user_id.to_string())
        .await?
        .and_then(|counter| counter.retry_after(Utc::now()));
    match wait {
        Some(wait) => Err(IdentityError::SecondFactorLocked {
            retry_after: wait.to_std().unwrap_or_default(),
        }),
        None => Ok(()),
    }
}

/// Counts a wrong second-factor code against the account.
async fn count_second_factor_failure(
    tx: &mut sqlx::PgConnection,
    user_id: Uuid,
) -> Result<(), IdentityError> {
    let counter = repo::record_failure(
        tx,
        SECOND_FACTOR_KIND,
        &user_id.to_string(),
        domain::SECOND_FACTOR_FAILURE_LIMIT,
        Utc::now(),
    )
    .await?;
    if counter.locked_until.is_some_and(|until| until > Utc::now()) {
        tracing::warn!("second factor lockout: account");
    }
    Ok(())
}

/// Counts a failed attempt against the account and the address.
async fn count_failure(tx: &mut sqlx::PgConnection, keys: &LimitKeys) -> Result<(), IdentityError> {
    let now = Utc::now();
    let account = repo::record_failure(
        tx,
        ACCOUNT_KIND,
        &keys.account,
        domain::ACCOUNT_FAILURE_LIMIT,
        now,
    )
    .await?;
    if account.locked_until.is_some_and(|until| until > now) {
        tracing::warn!("login lockout: account");
    }
    if let Some(address) = &keys.address {
        let counter = repo::record_failure(
            tx,
            ADDRESS_KIND,
            address,
            domain::ADDRESS_FAILURE_LIMIT,
            now,
        )
        .await?;
        if counter.locked_until.is_some_and(|until| until > now) {
            tracing::warn!("login lockout: client address");
        }
    }
    Ok(())
}

fn mfa_secret_address(user_id: Uuid) -> FieldAddress<'static> {
    FieldAddress {
        table: "users",
        column: "mfa_secret",
        row_id: user_id,
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
