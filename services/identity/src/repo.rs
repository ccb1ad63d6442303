//! SQL of the identity schema. Every function runs inside the caller's
//! transaction, so a request's writes and its audit event commit together.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{FailureCounter, FailureLimit, NewRevocations, RevocationKind};

/// A row of `users`.
#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    pub(crate) id: Uuid,
    pub(crate) email: String,
    pub(crate) email_verified: bool,
    pub(crate) password_hash: String,
    pub(crate) display_name_sealed: Vec<u8>,
    pub(crate) roles: Vec<String>,
    pub(crate) mfa_enabled: bool,
    pub(crate) status: String,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) last_login_at: Option<DateTime<Utc>>,
    pub(crate) deleted_at: Option<DateTime<Utc>>,
    pub(crate) mfa_secret_sealed: Option<Vec<u8>>,
    pub(crate) mfa_last_step: Option<i64>,
    /// Moved on by every write of the row (a trigger); the etag's source.
    pub(crate) version: i64,
}

const USER_COLUMNS: &str = "id, email, email_verified, password_hash, display_name_sealed, roles, \
                            mfa_enabled, status, created_at, last_login_at, deleted_at, \
                            mfa_secret_sealed, mfa_last_step, version";

/// A new account's row.
pub(crate) struct NewUserRow<'a> {
    pub(crate) id: Uuid,
    pub(crate) email: &'a str,
    pub(crate) password_hash: &'a str,
    pub(crate) display_name_sealed: &'a [u8],
    pub(crate) roles: Vec<String>,
}

/// Inserts a user; a duplicate email violates `users_email_key`.
pub(crate) async fn insert_user(
    conn: &mut PgConnection,
    user: NewUserRow<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO users (id, email, password_hash, display_name_sealed, roles) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(user.id)
    .bind(user.email)
    .bind(user.password_hash)
    .bind(user.display_name_sealed)
    .bind(user.roles)
    .execute(conn)
    .await?;
    Ok(())
}

/// Stores the hash of an email verification token.
pub(crate) async fn insert_email_verification(
    conn: &mut PgConnection,
    token_hash: &[u8],
    user_id: Uuid,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO email_verifications (token_hash, user_id, expires_at) VALUES ($1, $2, $3)",
    )
    .bind(token_hash)
    .bind(user_id)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// When the user's newest email verification code expires, if any.
pub(crate) async fn newest_verification_expiry(
    conn: &mut PgConnection,
    user_id: Uuid,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar("SELECT max(expires_at) FROM email_verifications WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(conn)
        .await
}

/// When the user's newest password reset code was issued, if ever.
pub(crate) async fn newest_reset_at(
    conn: &mut PgConnection,
    user_id: Uuid,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar("SELECT max(created_at) FROM password_resets WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(conn)
        .await
}

/// The user with a normalised email, if any.
pub(crate) async fn find_user_by_email(
    conn: &mut PgConnection,
    email: &str,
) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE email = $1"
    ))
    .bind(email)
    .fetch_optional(conn)
    .await
}

/// The user with an id, if `caller` sees it under row-level security, read
/// in one round trip ([`fitflow_db::one_trip`]).
pub(crate) async fn find_user_once(
    express: &fitflow_db::Express,
    caller: &fitflow_auth::Caller,
    id: Uuid,
) -> Result<Option<UserRow>, fitflow_db::DbError> {
    // One text, so each connection prepares it once.
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        fitflow_db::one_trip(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE id = $4 AND {}",
            fitflow_db::CONTEXT_SET
        ))
    });
    express
        .fetch_optional(fitflow_db::bind_context(sqlx::query_as(SQL.as_str()), caller)?.bind(id))
        .await
}

/// The user with an id, if visible under row-level security.
pub(crate) async fn find_user(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// What the operators' account list is filtered by.
pub(crate) struct UserFilter<'a> {
    /// A normalised email prefix; empty matches every email.
    pub(crate) email_prefix: &'a str,
    /// `active`, `suspended` or `deleted`; `None` for any.
    pub(crate) status: Option<&'a str>,
    /// A role name; `None` for any.
    pub(crate) role: Option<&'a str>,
}

/// Up to `limit` users matching `filter`, oldest first (ids are UUIDv7),
/// after `after` when given. The prefix is matched with `starts_with`, so
/// `%` and `_` in it are plain characters.
pub(crate) async fn list_users(
    conn: &mut PgConnection,
    filter: &UserFilter<'_>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM users \
         WHERE starts_with(email, $1) AND ($2::text IS NULL OR status = $2) \
         AND ($3::text IS NULL OR $3 = ANY (roles)) AND ($4::uuid IS NULL OR id > $4) \
         ORDER BY id LIMIT $5"
    ))
    .bind(filter.email_prefix)
    .bind(filter.status)
    .bind(filter.role)
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Records a successful login.
pub(crate) async fn touch_last_login(
    conn: &mut PgConnection,
    user_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET last_login_at = now() WHERE id = $1")
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Opens a session.
pub(crate) async fn insert_session(
    conn: &mut PgConnection,
    session_id: Uuid,
    user_id: Uuid,
    user_agent: &str,
    client_addr: &str,
    amr: &[String],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sessions (id, user_id, user_agent, client_addr, amr) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(session_id)
    .bind(user_id)
    .bind(user_agent)
    .bind(client_addr)
    .bind(amr)
    .execute(conn)
    .await?;
    Ok(())
}

/// Revokes the user's oldest live sessions beyond the newest `keep`; returns
/// how many it revoked.
pub(crate) async fn revoke_sessions_beyond(
    conn: &mut PgConnection,
    user_id: Uuid,
    keep: i64,
) -> Result<u64, sqlx::Error> {
    let revoked: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE sessions SET revoked_at = now() WHERE id IN ( \
             SELECT id FROM sessions WHERE user_id = $1 AND revoked_at IS NULL \
             ORDER BY created_at DESC, id DESC OFFSET $2) \
         RETURNING id",
    )
    .bind(user_id)
    .bind(keep)
    .fetch_all(&mut *conn)
    .await?;
    streamed_session_revocations(conn, revoked).await
}

/// Stores the hash of a refresh token.
pub(crate) async fn insert_refresh_token(
    conn: &mut PgConnection,
    token_hash: &[u8],
    session_id: Uuid,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)",
    )
    .bind(token_hash)
    .bind(session_id)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A refresh token with its session, locked for the rest of the transaction.
#[derive(sqlx::FromRow)]
pub(crate) struct RefreshRow {
    pub(crate) session_id: Uuid,
    pub(crate) user_id: Uuid,
    pub(crate) expires_at: DateTime<Utc>,
    pub(crate) spent_at: Option<DateTime<Utc>>,
    /// Revoked by the retry of a lost response (so never to be presented).
    pub(crate) revoked_at: Option<DateTime<Utc>>,
    /// When its one retry was spent.
    pub(crate) retried_at: Option<DateTime<Utc>>,
    /// The hash of the token issued in exchange for it.
    pub(crate) replaced_by: Option<Vec<u8>>,
    /// Whether it was spent within the retry window before now (by the
    /// database's clock, which stamped `spent_at`).
    pub(crate) within_retry_window: bool,
    pub(crate) session_revoked_at: Option<DateTime<Utc>>,
    /// How the session was authenticated; refreshed tokens carry it on.
    pub(crate) session_amr: Vec<String>,
}

/// Finds a refresh token by hash and locks its session, then the token:
/// every refresh of one session serialises on the session row, always
/// taken first, so two refreshes of one family (a retry and its successor)
/// never wait on each other in opposite orders.
pub(crate) async fn lock_refresh_token(
    conn: &mut PgConnection,
    token_hash: &[u8],
    retry_window: chrono::Duration,
) -> Result<Option<RefreshRow>, sqlx::Error> {
    let session: Option<Uuid> = sqlx::query_scalar(
        "SELECT s.id FROM sessions s JOIN refresh_tokens r ON r.session_id = s.id \
         WHERE r.token_hash = $1 FOR UPDATE OF s",
    )
    .bind(token_hash)
    .fetch_optional(&mut *conn)
    .await?;
    if session.is_none() {
        return Ok(None);
    }
    sqlx::query_as(
        "SELECT r.session_id, s.user_id, r.expires_at, r.spent_at, r.revoked_at, r.retried_at, \
         r.replaced_by, coalesce(r.spent_at > now() - $2::interval, false) AS within_retry_window, \
         s.revoked_at AS session_revoked_at, s.amr AS session_amr \
         FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id \
         WHERE r.token_hash = $1 FOR UPDATE OF r",
    )
    .bind(token_hash)
    .bind(retry_window)
    .fetch_optional(conn)
    .await
}

/// Whether the refresh token `token_hash` was never spent nor revoked;
/// locks it for the rest of the transaction.
pub(crate) async fn lock_unused_refresh_token(
    conn: &mut PgConnection,
    token_hash: &[u8],
) -> Result<bool, sqlx::Error> {
    let unused: Option<bool> = sqlx::query_scalar(
        "SELECT spent_at IS NULL AND revoked_at IS NULL FROM refresh_tokens \
         WHERE token_hash = $1 FOR UPDATE",
    )
    .bind(token_hash)
    .fetch_optional(conn)
    .await?;
    Ok(unused.unwrap_or(false))
}

/// Revokes one refresh token (the one issued for a lost response).
pub(crate) async fn revoke_refresh_token(
    conn: &mut PgConnection,
    token_hash: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE refresh_tokens SET revoked_at = now() WHERE token_hash = $1")
        .bind(token_hash)
        .execute(conn)
        .await?;
    Ok(())
}

/// Marks a refresh token spent in exchange for `replaced_by`.
pub(crate) async fn spend_refresh_token(
    conn: &mut PgConnection,
    token_hash: &[u8],
    replaced_by: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE refresh_tokens SET spent_at = now(), replaced_by = $2 WHERE token_hash = $1",
    )
    .bind(token_hash)
    .bind(replaced_by)
    .execute(&mut *conn)
    .await?;
    touch_session_of_refresh_token(conn, token_hash).await
}

/// Marks a spent refresh token's one retry used, now exchanged for `replaced_by`.
pub(crate) async fn spend_refresh_retry(
    conn: &mut PgConnection,
    token_hash: &[u8],
    replaced_by: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE refresh_tokens SET retried_at = now(), replaced_by = $2 WHERE token_hash = $1",
    )
    .bind(token_hash)
    .bind(replaced_by)
    .execute(&mut *conn)
    .await?;
    touch_session_of_refresh_token(conn, token_hash).await
}

async fn touch_session_of_refresh_token(
    conn: &mut PgConnection,
    token_hash: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE sessions SET last_used_at = now() WHERE id = (SELECT session_id FROM refresh_tokens WHERE token_hash = $1)")
        .bind(token_hash)
        .execute(conn)
        .await?;
    Ok(())
}

/// Revokes a session (and so every refresh token of its family).
pub(crate) async fn revoke_session(
    conn: &mut PgConnection,
    session_id: Uuid,
) -> Result<(), sqlx::Error> {
    let revoked: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING id",
    )
    .bind(session_id)
    .fetch_all(&mut *conn)
    .await?;
    streamed_session_revocations(conn, revoked).await?;
    Ok(())
}

/// The user with an id, locked for the rest of the transaction (serialises
/// concurrent MFA code checks, password and status changes).
pub(crate) async fn lock_user(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Spends an unused, unexpired email verification token and marks its
/// user's email verified; returns the user.
pub(crate) async fn take_email_verification(
    conn: &mut PgConnection,
    token_hash: &[u8],
) -> Result<Option<Uuid>, sqlx::Error> {
    let user_id: Option<Uuid> = sqlx::query_scalar(
        "UPDATE email_verifications SET used_at = now() \
         WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now() RETURNING user_id",
    )
    .bind(token_hash)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(user_id) = user_id {
        sqlx::query("UPDATE users SET email_verified = true, updated_at = now() WHERE id = $1")
            .bind(user_id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(user_id)
}

/// Stores a new (unconfirmed) TOTP secret; MFA stays off until confirmed.
pub(crate) async fn set_pending_mfa_secret(
    conn: &mut PgConnection,
    user_id: Uuid,
    sealed_secret: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE users SET mfa_secret_sealed = $2, mfa_enabled = false, mfa_last_step = NULL, \
         updated_at = now() WHERE id = $1",
    )
    .bind(user_id)
    .bind(sealed_secret)
    .execute(conn)
    .await?;
    Ok(())
}

/// Turns MFA on and replaces the recovery codes.
pub(crate) async fn enable_mfa(
    conn: &mut PgConnection,
    user_id: Uuid,
    accepted_step: i64,
    recovery_code_hashes: &[Vec<u8>],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE users SET mfa_enabled = true, mfa_last_step = $2, updated_at = now() WHERE id = $1",
    )
    .bind(user_id)
    .bind(accepted_step)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM mfa_recovery_codes WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO mfa_recovery_codes (code_hash, user_id) SELECT hash, $1 FROM unnest($2::bytea[]) AS hash",
    )
    .bind(user_id)
    .bind(recovery_code_hashes)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Turns MFA off and forgets the secret and every recovery code.
pub(crate) async fn disable_mfa(conn: &mut PgConnection, user_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE users SET mfa_enabled = false, mfa_secret_sealed = NULL, mfa_last_step = NULL, \
         updated_at = now() WHERE id = $1",
    )
    .bind(user_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM mfa_recovery_codes WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Records the last accepted TOTP step.
pub(crate) async fn set_mfa_last_step(
    conn: &mut PgConnection,
    user_id: Uuid,
    step: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET mfa_last_step = $2 WHERE id = $1")
        .bind(user_id)
        .bind(step)
        .execute(conn)
        .await?;
    Ok(())
}

/// Spends an unused recovery code of the user; whether one was spent.
pub(crate) async fn use_recovery_code(
    conn: &mut PgConnection,
    user_id: Uuid,
    code_hash: &[u8],
) -> Result<bool, sqlx::Error> {
    let spent = sqlx::query(
        "UPDATE mfa_recovery_codes SET used_at = now() \
         WHERE code_hash = $1 AND user_id = $2 AND used_at IS NULL",
    )
    .bind(code_hash)
    .bind(user_id)
    .execute(conn)
    .await?;
    Ok(spent.rows_affected() == 1)
}

/// Stores an MFA login challenge.
pub(crate) async fn insert_mfa_challenge(
    conn: &mut PgConnection,
    token_hash: &[u8],
    user_id: Uuid,
    user_agent: &str,
    client_addr: &str,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO mfa_challenges (token_hash, user_id, user_agent, client_addr, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash)
    .bind(user_id)
    .bind(user_agent)
    .bind(client_addr)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// An MFA challenge.
#[derive(sqlx::FromRow)]
pub(crate) struct ChallengeRow {
    pub(crate) user_id: Uuid,
    pub(crate) user_agent: String,
    pub(crate) client_addr: String,
    pub(crate) expires_at: DateTime<Utc>,
    pub(crate) failed_attempts: i32,
    pub(crate) used_at: Option<DateTime<Utc>>,
}

/// Finds an MFA challenge by hash and locks it.
pub(crate) async fn lock_mfa_challenge(
    conn: &mut PgConnection,
    token_hash: &[u8],
) -> Result<Option<ChallengeRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT user_id, user_agent, client_addr, expires_at, failed_attempts, used_at \
         FROM mfa_challenges WHERE token_hash = $1 FOR UPDATE",
    )
    .bind(token_hash)
    .fetch_optional(conn)
    .await
}

/// Updates a challenge after a code: its failure count, and whether it is spent.
pub(crate) async fn update_mfa_challenge(
    conn: &mut PgConnection,
    token_hash: &[u8],
    failed_attempts: i32,
    spent: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE mfa_challenges SET failed_attempts = $2, \
         used_at = CASE WHEN $3 THEN now() ELSE used_at END WHERE token_hash = $1",
    )
    .bind(token_hash)
    .bind(failed_attempts)
    .bind(spent)
    .execute(conn)
    .await?;
    Ok(())
}

/// A row of `sessions`.
#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    pub(crate) id: Uuid,
    pub(crate) user_agent: String,
    pub(crate) client_addr: String,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) last_used_at: DateTime<Utc>,
}

/// The user's live sessions (not revoked, used within the refresh token
/// lifetime), newest first, older than `before` when given.
pub(crate) async fn list_live_sessions(
    conn: &mut PgConnection,
    user_id: Uuid,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<SessionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, user_agent, client_addr, created_at, last_used_at FROM sessions \
         WHERE user_id = $1 AND revoked_at IS NULL AND last_used_at > now() - interval '30 days' \
         AND ($2::uuid IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
    )
    .bind(user_id)
    .bind(before)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Revokes one session of the user; `None` if the user has no such session,
/// else whether it was live until now.
pub(crate) async fn revoke_user_session(
    conn: &mut PgConnection,
    user_id: Uuid,
    session_id: Uuid,
) -> Result<Option<bool>, sqlx::Error> {
    let was_live: Option<bool> = sqlx::query_scalar(
        "UPDATE sessions SET revoked_at = coalesce(revoked_at, now()) \
         WHERE id = $1 AND user_id = $2 \
         RETURNING revoked_at = now()",
    )
    .bind(session_id)
    .bind(user_id)
    .fetch_optional(&mut *conn)
    .await?;
    if was_live == Some(true) {
        streamed_session_revocations(conn, vec![session_id]).await?;
    }
    Ok(was_live)
}

/// Revokes every live session of the user except `keep`; returns how many.
pub(crate) async fn revoke_user_sessions(
    conn: &mut PgConnection,
    user_id: Uuid,
    keep: Option<Uuid>,
) -> Result<u64, sqlx::Error> {
    let revoked: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE sessions SET revoked_at = now() \
         WHERE user_id = $1 AND revoked_at IS NULL AND ($2::uuid IS NULL OR id <> $2) \
         RETURNING id",
    )
    .bind(user_id)
    .bind(keep)
    .fetch_all(&mut *conn)
    .await?;
    streamed_session_revocations(conn, revoked).await
}

/// Records revoked sessions for the revocation stream, in the transaction
/// that revoked them, so no revoked session escapes it; returns how many.
/// Every statement that revokes sessions goes through here.
async fn streamed_session_revocations(
    conn: &mut PgConnection,
    sessions: Vec<Uuid>,
) -> Result<u64, sqlx::Error> {
    let count = sessions.len() as u64;
    if count > 0 {
        let entries = NewRevocations::at(RevocationKind::SessionRevoked, sessions, Utc::now());
        insert_revocations(conn, &entries).await?;
    }
    Ok(count)
}

/// The channel `insert_revocations` notifies at commit, so the stream
/// sends new entries at once instead of at its next poll.
pub(crate) const REVOCATIONS_CHANNEL: &str = "fitflow_identity_revocations";

/// Records revocation entries. Takes the advisory lock that orders writers
/// of `revocations` until commit, so ids become visible in increasing order
/// and a subscriber resuming after an id misses none; wakes the stream at
/// commit.
pub(crate) async fn insert_revocations(
    conn: &mut PgConnection,
    entries: &NewRevocations,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('identity.revocations'))")
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO revocations (kind, subject_id, issued_before, expires_at) \
         SELECT $1, subject, $3, $4 FROM unnest($2::uuid[]) AS subject",
    )
    .bind(entries.kind.as_str())
    .bind(&entries.subjects)
    .bind(entries.issued_before)
    .bind(entries.expires_at)
    .execute(&mut *conn)
    .await?;
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(REVOCATIONS_CHANNEL)
        .execute(conn)
        .await?;
    Ok(())
}

/// A row of `revocations`.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct RevocationRow {
    pub(crate) id: i64,
    pub(crate) kind: String,
    pub(crate) subject_id: Uuid,
    pub(crate) issued_before: DateTime<Utc>,
    pub(crate) expires_at: DateTime<Utc>,
}

/// Unexpired entries after `after`, oldest first, at most `limit`.
pub(crate) async fn revocations_after(
    conn: &mut PgConnection,
    after: i64,
    limit: i64,
) -> Result<Vec<RevocationRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, kind, subject_id, issued_before, expires_at FROM revocations \
         WHERE id > $1 AND expires_at > now() ORDER BY id LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// The largest id ever handed out (0 before the first): a subscriber's
/// position beyond it comes from before a restore of the database.
pub(crate) async fn newest_revocation_id(conn: &mut PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM revocations_id_seq",
    )
    .fetch_one(conn)
    .await
}

/// Deletes expired entries; returns how many.
pub(crate) async fn delete_expired_revocations(
    conn: &mut PgConnection,
) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM revocations WHERE expires_at <= now()")
            .execute(conn)
            .await?
            .rows_affected(),
    )
}

/// The latest live "tokens issued before" mark of a user (disabled or
/// stale claims), if any.
pub(crate) async fn latest_user_mark(
    conn: &mut PgConnection,
    user_id: Uuid,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT max(issued_before) FROM revocations \
         WHERE subject_id = $1 AND kind <> 'session_revoked' AND expires_at > now()",
    )
    .bind(user_id)
    .fetch_one(conn)
    .await
}

/// Replaces the password hash.
pub(crate) async fn set_password_hash(
    conn: &mut PgConnection,
    user_id: Uuid,
    password_hash: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1")
        .bind(user_id)
        .bind(password_hash)
        .execute(conn)
        .await?;
    Ok(())
}

/// Stores the hash of a password reset token.
pub(crate) async fn insert_password_reset(
    conn: &mut PgConnection,
    token_hash: &[u8],
    user_id: Uuid,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO password_resets (token_hash, user_id, expires_at) VALUES ($1, $2, $3)",
    )
    .bind(token_hash)
    .bind(user_id)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Spends an unused, unexpired reset token (and every other outstanding
/// token of its user); returns the user.
/// Whether `token_hash` names a live (unused, unexpired) reset: the cheap
/// check before a new password is hashed.
pub(crate) async fn password_reset_is_live(
    conn: &mut PgConnection,
    token_hash: &[u8],
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT FROM password_resets \
         WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now())",
    )
    .bind(token_hash)
    .fetch_one(&mut *conn)
    .await
}

pub(crate) async fn take_password_reset(
    conn: &mut PgConnection,
    token_hash: &[u8],
) -> Result<Option<Uuid>, sqlx::Error> {
    let user_id: Option<Uuid> = sqlx::query_scalar(
        "UPDATE password_resets SET used_at = now() \
         WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now() RETURNING user_id",
    )
    .bind(token_hash)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(user_id) = user_id {
        sqlx::query(
            "UPDATE password_resets SET used_at = now() WHERE user_id = $1 AND used_at IS NULL",
        )
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(user_id)
}

/// Sets the account status; `deleted` stamps `deleted_at`, others clear it.
pub(crate) async fn set_status(
    conn: &mut PgConnection,
    user_id: Uuid,
    status: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE users SET status = $2, \
         deleted_at = CASE WHEN $2 = 'deleted' THEN coalesce(deleted_at, now()) ELSE NULL END, \
         updated_at = now() WHERE id = $1",
    )
    .bind(user_id)
    .bind(status)
    .execute(conn)
    .await?;
    Ok(())
}

/// Replaces the sealed display name.
pub(crate) async fn set_display_name(
    conn: &mut PgConnection,
    user_id: Uuid,
    display_name_sealed: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET display_name_sealed = $2, updated_at = now() WHERE id = $1")
        .bind(user_id)
        .bind(display_name_sealed)
        .execute(conn)
        .await?;
    Ok(())
}

/// Replaces the roles.
pub(crate) async fn set_roles(
    conn: &mut PgConnection,
    user_id: Uuid,
    roles: &[String],
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET roles = $2, updated_at = now() WHERE id = $1")
        .bind(user_id)
        .bind(roles)
        .execute(conn)
        .await?;
    Ok(())
}

/// The failed-login counter of a key, if any.
pub(crate) async fn failure_counter(
    conn: &mut PgConnection,
    kind: &str,
    key: &str,
) -> Result<Option<FailureCounter>, sqlx::Error> {
    let row: Option<(DateTime<Utc>, i32, Option<DateTime<Utc>>)> = sqlx::query_as(
        "SELECT window_start, failures, locked_until FROM login_attempts WHERE kind = $1 AND key = $2",
    )
    .bind(kind)
    .bind(key)
    .fetch_optional(conn)
    .await?;
    Ok(
        row.map(|(window_start, failures, locked_until)| FailureCounter {
            window_start,
            failures,
            locked_until,
        }),
    )
}

/// Counts one more failure for a key, atomically across replicas.
pub(crate) async fn record_failure(
    conn: &mut PgConnection,
    kind: &str,
    key: &str,
    limit: FailureLimit,
    now: DateTime<Utc>,
) -> Result<FailureCounter, sqlx::Error> {
    sqlx::query(
        "INSERT INTO login_attempts (kind, key, window_start, failures) VALUES ($1, $2, $3, 0) \
         ON CONFLICT (kind, key) DO NOTHING",
    )
    .bind(kind)
    .bind(key)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let current: (DateTime<Utc>, i32, Option<DateTime<Utc>>) = sqlx::query_as(
        "SELECT window_start, failures, locked_until FROM login_attempts \
         WHERE kind = $1 AND key = $2 FOR UPDATE",
    )
    .bind(kind)
    .bind(key)
    .fetch_one(&mut *conn)
    .await?;
    let next = FailureCounter::after_failure(
        Some(FailureCounter {
            window_start: current.0,
            failures: current.1,
            locked_until: current.2,
        }),
        limit,
        now,
    );
    sqlx::query(
        "UPDATE login_attempts SET window_start = $3, failures = $4, locked_until = $5 \
         WHERE kind = $1 AND key = $2",
    )
    .bind(kind)
    .bind(key)
    .bind(next.window_start)
    .bind(next.failures)
    .bind(next.locked_until)
    .execute(conn)
    .await?;
    Ok(next)
}

/// Forgets a key's failures (after a successful login).
pub(crate) async fn clear_failures(
    conn: &mut PgConnection,
    kind: &str,
    key: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM login_attempts WHERE kind = $1 AND key = $2")
        .bind(kind)
        .bind(key)
        .execute(conn)
        .await?;
    Ok(())
}
