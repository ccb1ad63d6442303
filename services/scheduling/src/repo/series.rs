//! The SQL of recurring series: their rules, their occurrences locked for an
//! edit, and an occurrence's change in place.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{APPOINTMENT_COLUMNS, AppointmentRow};

/// An `appointment_series` row: a series' rule in local wall time.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct SeriesRow {
    pub id: Uuid,
    pub trainer_id: Uuid,
    pub time_zone: String,
    pub wall_time: NaiveTime,
    pub first_date: NaiveDate,
    /// ISO weekdays, 1 Monday .. 7 Sunday.
    pub days: Vec<i16>,
    pub interval_weeks: i16,
    pub until_date: Option<NaiveDate>,
    pub occurrence_limit: Option<i32>,
}

const SERIES_COLUMNS: &str = "id, trainer_id, time_zone, wall_time, first_date, days, \
     interval_weeks, until_date, occurrence_limit";

/// Inserts a series' rule.
pub(crate) async fn insert_series(
    conn: &mut PgConnection,
    row: &SeriesRow,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO appointment_series (id, trainer_id, time_zone, wall_time, first_date, days, \
         interval_weeks, until_date, occurrence_limit) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(row.id)
    .bind(row.trainer_id)
    .bind(&row.time_zone)
    .bind(row.wall_time)
    .bind(row.first_date)
    .bind(&row.days)
    .bind(row.interval_weeks)
    .bind(row.until_date)
    .bind(row.occurrence_limit)
    .execute(conn)
    .await?;
    Ok(())
}

/// A series' rule the caller may see, if the series has one (series booked
/// before rules were kept have none); `lock` takes it for a change.
pub(crate) async fn series_rule(
    conn: &mut PgConnection,
    id: Uuid,
    lock: bool,
) -> Result<Option<SeriesRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SERIES_COLUMNS} FROM appointment_series WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Ends a series' rule on `until` (inclusive).
pub(crate) async fn end_series(
    conn: &mut PgConnection,
    id: Uuid,
    until: NaiveDate,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE appointment_series SET until_date = $2, version = version + 1 WHERE id = $1",
    )
    .bind(id)
    .bind(until)
    .execute(conn)
    .await?;
    Ok(())
}

/// Moves a series' rule to another wall time and weekdays.
pub(crate) async fn move_series(
    conn: &mut PgConnection,
    id: Uuid,
    wall_time: NaiveTime,
    days: &[i16],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE appointment_series SET wall_time = $2, days = $3, version = version + 1 \
         WHERE id = $1",
    )
    .bind(id)
    .bind(wall_time)
    .bind(days)
    .execute(conn)
    .await?;
    Ok(())
}

/// Every occurrence of a series, in start order, locked for an edit (in
/// that order, so two edits of one series queue instead of deadlocking).
pub(crate) async fn series_locked(
    conn: &mut PgConnection,
    series_id: Uuid,
) -> Result<Vec<AppointmentRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {APPOINTMENT_COLUMNS} FROM appointments WHERE series_id = $1 \
         ORDER BY start_time, id LIMIT 200 FOR UPDATE"
    ))
    .bind(series_id)
    .fetch_all(conn)
    .await
}

/// What an edit writes on one appointment.
#[derive(Debug, Clone)]
pub(crate) struct AppointmentEdit {
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    pub location_type: String,
    pub location_details: String,
    pub client_price: Option<Decimal>,
}

/// Writes `edit` on appointment `id` (now starting at `start_time`); a new
/// start moves the row to its year's partition and, by the cascading
/// foreign key, its participants with it.
pub(crate) async fn edit_appointment(
    conn: &mut PgConnection,
    id: Uuid,
    start_time: DateTime<Utc>,
    edit: &AppointmentEdit,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE appointments SET start_time = $3, end_time = $4, location_type = $5, \
         location_details = $6, client_price = $7, version = version + 1 \
         WHERE id = $1 AND start_time = $2",
    )
    .bind(id)
    .bind(start_time)
    .bind(edit.start_time)
    .bind(edit.end_time)
    .bind(&edit.location_type)
    .bind(&edit.location_details)
    .bind(edit.client_price)
    .execute(conn)
    .await?;
    Ok(())
}

/// Frees the trainer's time held by appointment `id`.
pub(crate) async fn free_time(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM trainer_busy WHERE appointment_id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}
