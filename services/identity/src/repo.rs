//! SQL of the identity schema. Every function runs inside the caller's
//! transaction, so a request's writes and its audit event commit together.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

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
}

const USER_COLUMNS: &str = "id, email, email_verified, password_hash, display_name_sealed, roles, \
                            mfa_enabled, status, created_at, last_login_at";

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
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sessions (id, user_id, user_agent, client_addr) VALUES ($1, $2, $3, $4)",
    )
    .bind(session_id)
    .bind(user_id)
    .bind(user_agent)
    .bind(client_addr)
    .execute(conn)
    .await?;
    Ok(())
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
    pub(crate) session_revoked_at: Option<DateTime<Utc>>,
}

/// Finds a refresh token by hash and locks it and its session, so two
/// concurrent refreshes with one token are serialised.
pub(crate) async fn lock_refresh_token(
    conn: &mut PgConnection,
    token_hash: &[u8],
) -> Result<Option<RefreshRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.session_id, s.user_id, r.expires_at, r.spent_at, s.revoked_at AS session_revoked_at \
         FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id \
         WHERE r.token_hash = $1 FOR UPDATE OF r, s",
    )
    .bind(token_hash)
    .fetch_optional(conn)
    .await
}

/// Marks a refresh token spent.
pub(crate) async fn spend_refresh_token(
    conn: &mut PgConnection,
    token_hash: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE refresh_tokens SET spent_at = now() WHERE token_hash = $1")
        .bind(token_hash)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE sessions SET last_used_at = now() WHERE id = (SELECT session_id FROM refresh_tokens WHERE token_hash = $1)")
        .bind(token_hash)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Revokes a session (and so every refresh token of its family).
pub(crate) async fn revoke_session(
    conn: &mut PgConnection,
    session_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL")
        .bind(session_id)
        .execute(conn)
        .await?;
    Ok(())
}
