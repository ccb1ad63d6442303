//! The outbox table: [`record`] in the caller's transaction, and the
//! relay's reads and deletes.

use prost::Message as _;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::OutboxError;
use fitflow_proto::audit::AuditEvent;

/// The channel on which the relay also listens, for wake-ups from other
/// processes (a dead letter replayed by an operator's command).
pub const NOTIFY_CHANNEL: &str = "fitflow_audit_outbox";

/// Writes `event` into `audit_outbox` on `conn`, which should be inside the
/// transaction that does the audited work, and wakes this process's relay
/// of the schema ([`crate::ring`]), which looks again shortly after should
/// it wake before the commit. Fails (so the work must fail too) when the event has
/// no UUID event id or no actor, or when the insert fails.
pub async fn record(conn: &mut PgConnection, event: &AuditEvent) -> Result<(), OutboxError> {
    let event_id = recordable(event)?;
    // One statement, one round trip: every audited request pays for it. No
    // NOTIFY: it would serialise this transaction's commit with every other
    // notifying one (crate::doorbell); the schema names the bell to ring.
    let schema: String = sqlx::query_scalar(
        "INSERT INTO audit_outbox (event_id, payload) VALUES ($1, $2) \
         RETURNING current_schema()::text",
    )
    .bind(event_id)
    .bind(event.encode_to_vec())
    .fetch_one(&mut *conn)
    .await?;
    crate::doorbell::ring(&schema);
    Ok(())
}

/// The id of `event`, checked to be recordable: a UUID event id and an actor.
pub(crate) fn recordable(event: &AuditEvent) -> Result<Uuid, OutboxError> {
    let event_id = Uuid::try_parse(&event.event_id)
        .map_err(|_| OutboxError::InvalidEvent("event_id must be a UUID"))?;
    if event
        .actor
        .as_ref()
        .and_then(|actor| actor.kind.as_ref())
        .is_none()
    {
        return Err(OutboxError::InvalidEvent("an actor is required"));
    }
    Ok(event_id)
}

/// One pending outbox row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct PendingEvent {
    pub(crate) event_id: Uuid,
    pub(crate) payload: Vec<u8>,
}

/// The oldest `limit` rows, in id (commit-order-ish) order.
pub(crate) async fn oldest(pool: &PgPool, limit: usize) -> Result<Vec<PendingEvent>, sqlx::Error> {
    sqlx::query_as("SELECT event_id, payload FROM audit_outbox ORDER BY id LIMIT $1")
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(pool)
        .await
}

/// Removes the rows of `event_ids`.
pub(crate) async fn delete(pool: &PgPool, event_ids: &[Uuid]) -> Result<u64, sqlx::Error> {
    if event_ids.is_empty() {
        return Ok(0);
    }
    let result = sqlx::query("DELETE FROM audit_outbox WHERE event_id = ANY($1)")
        .bind(event_ids)
        .execute(pool)
        .await?;
    Ok(result.rows_affected())
}

/// Takes the outbox's relay lock on a connection detached from the pool, so
/// the lock lives exactly as long as that connection; `None` when another
/// relay holds it. The key includes the schema: services sharing one database
/// each have their own relay.
pub(crate) async fn try_lead(pool: &PgPool) -> Result<Option<sqlx::PgConnection>, sqlx::Error> {
    try_lead_as(pool, "audit_outbox_relay").await
}

/// Takes the lock of the relay called `role` in the pool's schema (one lock
/// per relay kind) on a connection detached from the pool, held as long as
/// that connection lives; `None` when another relay holds it. A service's own
/// relay leads its schema the same way as the platform's.
pub async fn try_lead_as(
    pool: &PgPool,
    role: &str,
) -> Result<Option<sqlx::PgConnection>, sqlx::Error> {
    let mut connection = pool.acquire().await?.detach();
    let locked: bool =
        sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext(current_schema() || '.' || $1))")
            .bind(role)
            .fetch_one(&mut connection)
            .await?;
    if locked {
        Ok(Some(connection))
    } else {
        use sqlx::Connection as _;
        let _ = connection.close().await;
        Ok(None)
    }
}

/// Moves the audit events `rejected` (event id, audit's reason) from the
/// outbox to the dead letters, in one transaction.
pub(crate) async fn dead_letter_events(
    pool: &PgPool,
    rejected: &[(Uuid, String)],
) -> Result<(), sqlx::Error> {
    if rejected.is_empty() {
        return Ok(());
    }
    let (ids, reasons): (Vec<Uuid>, Vec<String>) = rejected.iter().cloned().unzip();
    sqlx::query(
        "WITH moved AS ( \
             DELETE FROM audit_outbox o USING unnest($1::uuid[], $2::text[]) AS r(event_id, reason) \
             WHERE o.event_id = r.event_id \
             RETURNING o.event_id, o.payload, o.created_at, r.reason) \
         INSERT INTO outbox_dead_letters (kind, message_id, target, payload, reason, created_at) \
         SELECT 'audit', event_id, 'audit', payload, reason, created_at FROM moved",
    )
    .bind(&ids)
    .bind(&reasons)
    .execute(pool)
    .await?;
    Ok(())
}

/// One pending command.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct PendingCommand {
    pub(crate) id: i64,
    pub(crate) command_id: Uuid,
    pub(crate) target: String,
    pub(crate) method: String,
    pub(crate) payload: Vec<u8>,
    pub(crate) attempts: i32,
}

/// The oldest `limit` commands.
pub(crate) async fn oldest_commands(
    pool: &PgPool,
    limit: i64,
) -> Result<Vec<PendingCommand>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, command_id, target, method, payload, attempts FROM command_outbox \
         ORDER BY id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Removes a delivered command.
pub(crate) async fn delete_command(pool: &PgPool, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM command_outbox WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Counts a transient failure of a command.
pub(crate) async fn record_attempt(
    pool: &PgPool,
    id: i64,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE command_outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1")
        .bind(id)
        .bind(reason)
        .execute(pool)
        .await?;
    Ok(())
}

/// Moves a refused command to the dead letters, in one transaction.
pub(crate) async fn dead_letter_command(
    pool: &PgPool,
    command: &PendingCommand,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "WITH moved AS (DELETE FROM command_outbox WHERE id = $1 \
                        RETURNING command_id, target, method, payload, created_at) \
         INSERT INTO outbox_dead_letters (kind, message_id, target, method, payload, reason, created_at) \
         SELECT 'command', command_id, target, method, payload, $2, created_at FROM moved",
    )
    .bind(command.id)
    .bind(reason)
    .execute(pool)
    .await?;
    Ok(())
}

/// A message a relay could not deliver, as an operator sees it (no payload).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeadLetter {
    /// Its id in `outbox_dead_letters`.
    pub id: i64,
    /// `audit` or `command`.
    pub kind: String,
    /// The event or command id.
    pub message_id: Uuid,
    /// `audit`, or the command's receiving service.
    pub target: String,
    /// The command's gRPC path (empty for audit events).
    pub method: String,
    /// Why the receiver refused it.
    pub reason: String,
    /// When it was refused.
    pub failed_at: chrono::DateTime<chrono::Utc>,
}

/// The newest `limit` dead letters of the pool's schema.
pub async fn dead_letters(pool: &PgPool, limit: i64) -> Result<Vec<DeadLetter>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, kind, message_id, target, method, reason, failed_at \
         FROM outbox_dead_letters ORDER BY failed_at DESC, id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Puts dead letter `id` back into its outbox (after the cause was fixed),
/// in one transaction; false when there is no such dead letter.
pub async fn replay_dead_letter(pool: &PgPool, id: i64) -> Result<bool, sqlx::Error> {
    let mut transaction = pool.begin().await?;
    let moved: Option<(String,)> = sqlx::query_as(
        "WITH moved AS (DELETE FROM outbox_dead_letters WHERE id = $1 RETURNING *), \
              audit AS (INSERT INTO audit_outbox (event_id, payload, created_at) \
                        SELECT message_id, payload, created_at FROM moved WHERE kind = 'audit'), \
              command AS (INSERT INTO command_outbox (command_id, target, method, payload, created_at) \
                          SELECT message_id, target, method, payload, created_at FROM moved \
                          WHERE kind = 'command') \
         SELECT kind FROM moved",
    )
    .bind(id)
    .fetch_optional(&mut *transaction)
    .await?;
    let Some((kind,)) = moved else {
        return Ok(false);
    };
    let channel = if kind == "audit" {
        NOTIFY_CHANNEL
    } else {
        crate::command::COMMAND_NOTIFY_CHANNEL
    };
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(channel)
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await?;
    Ok(true)
}
