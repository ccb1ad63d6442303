//! The outbox table: [`record`] in the caller's transaction, and the
//! relay's reads and deletes.

use prost::Message as _;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::OutboxError;
use fitflow_proto::audit::AuditEvent;

/// The channel on which [`record`] wakes the relay (delivered at commit).
pub const NOTIFY_CHANNEL: &str = "fitflow_audit_outbox";

/// Writes `event` into `audit_outbox` on `conn`, which should be inside the
/// transaction that does the audited work, and wakes the relay when that
/// transaction commits. Fails (so the work must fail too) when the event has
/// no UUID event id or no actor, or when the insert fails.
pub async fn record(conn: &mut PgConnection, event: &AuditEvent) -> Result<(), OutboxError> {
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
    sqlx::query("INSERT INTO audit_outbox (event_id, payload) VALUES ($1, $2)")
        .bind(event_id)
        .bind(event.encode_to_vec())
        .execute(&mut *conn)
        .await?;
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(NOTIFY_CHANNEL)
        .execute(&mut *conn)
        .await?;
    Ok(())
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
    let mut connection = pool.acquire().await?.detach();
    let locked: bool = sqlx::query_scalar(
        "SELECT pg_try_advisory_lock(hashtext(current_schema() || '.audit_outbox_relay'))",
    )
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
