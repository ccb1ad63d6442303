//! A trainer's scheduling settings (`scheduling_settings`).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// A trainer's stored settings.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct SettingsRow {
    pub trainer_id: Uuid,
    pub default_buffer_minutes: i32,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
}

/// A trainer's stored settings, locked for update when `lock` (none when
/// they never set any).
pub(crate) async fn settings(
    conn: &mut PgConnection,
    trainer_id: Uuid,
    lock: bool,
) -> Result<Option<SettingsRow>, sqlx::Error> {
    let sql = if lock {
        "SELECT trainer_id, default_buffer_minutes, version, updated_at \
         FROM scheduling_settings WHERE trainer_id = $1 FOR UPDATE"
    } else {
        "SELECT trainer_id, default_buffer_minutes, version, updated_at \
         FROM scheduling_settings WHERE trainer_id = $1"
    };
    sqlx::query_as(sql)
        .bind(trainer_id)
        .fetch_optional(conn)
        .await
}

/// Stores a trainer's first settings; None when a concurrent first write
/// stored theirs since this transaction read none.
pub(crate) async fn insert_settings(
    conn: &mut PgConnection,
    trainer_id: Uuid,
    default_buffer_minutes: i32,
) -> Result<Option<SettingsRow>, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO scheduling_settings (trainer_id, default_buffer_minutes) VALUES ($1, $2) \
         ON CONFLICT (trainer_id) DO NOTHING \
         RETURNING trainer_id, default_buffer_minutes, version, updated_at",
    )
    .bind(trainer_id)
    .bind(default_buffer_minutes)
    .fetch_optional(conn)
    .await
}

/// Updates a trainer's stored (and locked) settings, bumping their version.
pub(crate) async fn update_settings(
    conn: &mut PgConnection,
    trainer_id: Uuid,
    default_buffer_minutes: i32,
) -> Result<SettingsRow, sqlx::Error> {
    sqlx::query_as(
        "UPDATE scheduling_settings \
         SET default_buffer_minutes = $2, version = version + 1, updated_at = now() \
         WHERE trainer_id = $1 \
         RETURNING trainer_id, default_buffer_minutes, version, updated_at",
    )
    .bind(trainer_id)
    .bind(default_buffer_minutes)
    .fetch_one(conn)
    .await
}
