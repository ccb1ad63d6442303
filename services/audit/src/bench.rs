//! What `fitflow audit bench` needs of the audit service's storage: a
//! scratch database, a source outbox filled in bulk, and a large access log.
//! The binary times; this module only prepares and cleans up.

use chrono::{DateTime, Months, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{AuditError, repo};

/// Creates the database `name` on the server of `admin_url` (a superuser URL).
pub async fn create_database(admin_url: &str, name: &str) -> Result<(), AuditError> {
    Ok(repo::create_database(admin_url, name).await?)
}

/// Drops the database `name` on the server of `admin_url`, ending its sessions.
pub async fn drop_database(admin_url: &str, name: &str) -> Result<(), AuditError> {
    Ok(repo::drop_database(admin_url, name).await?)
}

/// Appends already encoded events (`(event_id, payload)`) to the outbox of
/// the source service whose runtime pool is `source`.
pub async fn fill_outbox(
    source: &PgPool,
    event_ids: Vec<Uuid>,
    payloads: Vec<Vec<u8>>,
) -> Result<(), AuditError> {
    Ok(repo::fill_outbox(source, event_ids, payloads).await?)
}

/// Events still waiting in the outbox of the source whose pool is `source`.
pub async fn pending_outbox(source: &PgPool) -> Result<i64, AuditError> {
    Ok(repo::pending_outbox(source).await?)
}

/// Generates `rows` view events about `clients` clients spread evenly over
/// the 24 months before `now` (each month in its own partition, created
/// through the runtime pool `audit`), inserted as the superuser `admin`.
pub async fn generate_access_log(
    admin: &PgPool,
    audit: &PgPool,
    rows: u64,
    clients: u64,
    now: DateTime<Utc>,
) -> Result<(), AuditError> {
    for months_back in (0..24).step_by(3) {
        let Some(at) = now.checked_sub_months(Months::new(months_back + 2)) else {
            continue;
        };
        crate::ensure_partitions(audit, at).await?;
    }
    let seconds_in_24_months = 24 * 30 * 86_400_i64;
    repo::generate_access_log(
        admin,
        i64::try_from(rows).unwrap_or(i64::MAX),
        seconds_in_24_months,
        i64::try_from(clients).unwrap_or(i64::MAX),
    )
    .await?;
    Ok(())
}
