//! Every SQL statement of the billing service.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

/// A `tax_rates` row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct RateRow {
    pub id: Uuid,
    pub province: Option<String>,
    pub kind: String,
    pub percent: Decimal,
    pub valid_from: NaiveDate,
    pub valid_until: Option<NaiveDate>,
    pub applies_to_services: bool,
    pub source: String,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

const RATE_COLUMNS: &str = "id, province, kind, percent, valid_from, valid_until, \
     applies_to_services, source, created_by, created_at";

/// The whole table: federal first, then by province, tax and start.
pub(crate) async fn rates(conn: &mut PgConnection) -> Result<Vec<RateRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {RATE_COLUMNS} FROM tax_rates \
         ORDER BY province NULLS FIRST, kind, valid_from"
    ))
    .fetch_all(conn)
    .await
}

/// Serialises changes of one (province, tax) for the transaction.
pub(crate) async fn lock_scope(
    conn: &mut PgConnection,
    province: Option<&str>,
    kind: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('fitflow_tax_rates:' || $1 || ':' || $2))")
        .bind(province.unwrap_or("CA"))
        .bind(kind)
        .execute(conn)
        .await?;
    Ok(())
}

/// The open-ended version of (province, tax), if any.
pub(crate) async fn open_rate(
    conn: &mut PgConnection,
    province: Option<&str>,
    kind: &str,
) -> Result<Option<RateRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {RATE_COLUMNS} FROM tax_rates \
         WHERE province IS NOT DISTINCT FROM $1 AND kind = $2 AND valid_until IS NULL"
    ))
    .bind(province)
    .bind(kind)
    .fetch_optional(conn)
    .await
}

/// Ends version `id` on `until`.
pub(crate) async fn end_rate(
    conn: &mut PgConnection,
    id: Uuid,
    until: NaiveDate,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE tax_rates SET valid_until = $2 WHERE id = $1")
        .bind(id)
        .bind(until)
        .execute(conn)
        .await?;
    Ok(())
}

/// Adds a version.
pub(crate) async fn insert_rate(conn: &mut PgConnection, row: &RateRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO tax_rates (id, province, kind, percent, valid_from, valid_until, \
         applies_to_services, source, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(row.id)
    .bind(&row.province)
    .bind(&row.kind)
    .bind(row.percent)
    .bind(row.valid_from)
    .bind(row.valid_until)
    .bind(row.applies_to_services)
    .bind(&row.source)
    .bind(row.created_by)
    .execute(conn)
    .await?;
    Ok(())
}

/// Version `id`.
pub(crate) async fn rate(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<RateRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {RATE_COLUMNS} FROM tax_rates WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}
