//! Every SQL statement of the scheduling service. Row-level security applies
//! to each (the caller's context is set by `fitflow_db::tx`).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

/// A `class_types` row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct ClassTypeRow {
    pub id: Uuid,
    pub trainer_id: Uuid,
    pub name: String,
    pub category: String,
    pub duration_minutes: i32,
    pub max_participants: i32,
    pub default_rate: Option<Decimal>,
    pub description: String,
    pub color: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
}

const CLASS_TYPE_COLUMNS: &str = "id, trainer_id, name, category, duration_minutes, \
     max_participants, default_rate, description, color, status, created_at";

/// Inserts a class type.
pub(crate) async fn insert_class_type(
    conn: &mut PgConnection,
    row: &ClassTypeRow,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO class_types (id, trainer_id, name, category, duration_minutes, \
         max_participants, default_rate, description, color, status) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(row.id)
    .bind(row.trainer_id)
    .bind(&row.name)
    .bind(&row.category)
    .bind(row.duration_minutes)
    .bind(row.max_participants)
    .bind(row.default_rate)
    .bind(&row.description)
    .bind(&row.color)
    .bind(&row.status)
    .execute(conn)
    .await?;
    Ok(())
}

/// A class type the caller may see.
pub(crate) async fn class_type(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<ClassTypeRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {CLASS_TYPE_COLUMNS} FROM class_types WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// One page of a trainer's class types, oldest first, after `after`.
pub(crate) async fn class_types(
    conn: &mut PgConnection,
    trainer_id: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<ClassTypeRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {CLASS_TYPE_COLUMNS} FROM class_types WHERE trainer_id = $1 \
         AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3)) \
         ORDER BY created_at, id LIMIT $4"
    ))
    .bind(trainer_id)
    .bind(after.map(|(at, _)| at))
    .bind(after.map(|(_, id)| id).unwrap_or_default())
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// An `appointments` row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct AppointmentRow {
    pub id: Uuid,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    pub trainer_id: Uuid,
    pub class_type_id: Uuid,
    pub client_id: Option<Uuid>,
    pub status: String,
    pub location_type: String,
    pub location_details: String,
    pub client_price: Option<Decimal>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub cancel_reason: String,
    pub cancelled_by: Option<Uuid>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
}

const APPOINTMENT_COLUMNS: &str = "id, start_time, end_time, trainer_id, class_type_id, \
     client_id, status, location_type, location_details, client_price, cancelled_at, \
     cancel_reason, cancelled_by, version, created_at";

/// Inserts an appointment.
pub(crate) async fn insert_appointment(
    conn: &mut PgConnection,
    row: &AppointmentRow,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO appointments (id, start_time, end_time, trainer_id, class_type_id, client_id, \
         location_type, location_details, client_price) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(row.id)
    .bind(row.start_time)
    .bind(row.end_time)
    .bind(row.trainer_id)
    .bind(row.class_type_id)
    .bind(row.client_id)
    .bind(&row.location_type)
    .bind(&row.location_details)
    .bind(row.client_price)
    .execute(conn)
    .await?;
    Ok(())
}

/// Why the trainer's time could not be taken.
#[derive(Debug)]
pub(crate) enum HoldError {
    /// Another live appointment overlaps (the exclusion constraint).
    Overlap,
    /// Anything else.
    Database(sqlx::Error),
}

/// Takes [start, end) of the trainer's time for `appointment_id`.
pub(crate) async fn hold_time(
    conn: &mut PgConnection,
    appointment_id: Uuid,
    trainer_id: Uuid,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<(), HoldError> {
    sqlx::query(
        "INSERT INTO trainer_busy (appointment_id, trainer_id, period) \
         VALUES ($1, $2, tstzrange($3, $4, '[)'))",
    )
    .bind(appointment_id)
    .bind(trainer_id)
    .bind(start)
    .bind(end)
    .execute(conn)
    .await
    .map(|_| ())
    .map_err(|error| {
        if error
            .as_database_error()
            .is_some_and(|db| db.constraint() == Some("trainer_busy_no_overlap"))
        {
            HoldError::Overlap
        } else {
            HoldError::Database(error)
        }
    })
}

/// The live appointment of the trainer that overlaps [start, end), if any.
pub(crate) async fn overlapping(
    conn: &mut PgConnection,
    trainer_id: Uuid,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT appointment_id FROM trainer_busy \
         WHERE trainer_id = $1 AND period && tstzrange($2, $3, '[)') LIMIT 1",
    )
    .bind(trainer_id)
    .bind(start)
    .bind(end)
    .fetch_optional(conn)
    .await
}

/// An appointment the caller may see; `lock` takes it for a change.
pub(crate) async fn appointment(
    conn: &mut PgConnection,
    id: Uuid,
    lock: bool,
) -> Result<Option<AppointmentRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {APPOINTMENT_COLUMNS} FROM appointments WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Marks an appointment cancelled and frees the trainer's time.
pub(crate) async fn cancel(
    conn: &mut PgConnection,
    id: Uuid,
    start_time: DateTime<Utc>,
    by: Uuid,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE appointments SET status = 'cancelled', cancelled_at = now(), cancelled_by = $3, \
         cancel_reason = $4, version = version + 1 WHERE id = $1 AND start_time = $2",
    )
    .bind(id)
    .bind(start_time)
    .bind(by)
    .bind(reason)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM trainer_busy WHERE appointment_id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// One page of a trainer's appointments starting in [from, to), in start
/// order, after `after`.
pub(crate) async fn appointments(
    conn: &mut PgConnection,
    trainer_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    show_cancelled: bool,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<AppointmentRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {APPOINTMENT_COLUMNS} FROM appointments \
         WHERE trainer_id = $1 AND start_time >= $2 AND start_time < $3 \
           AND ($4 OR status <> 'cancelled') \
           AND ($5::timestamptz IS NULL OR (start_time, id) > ($5, $6)) \
         ORDER BY start_time, id LIMIT $7"
    ))
    .bind(trainer_id)
    .bind(from)
    .bind(to)
    .bind(show_cancelled)
    .bind(after.map(|(at, _)| at))
    .bind(after.map(|(_, id)| id).unwrap_or_default())
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Creates the partition of `year` unless it exists (owner's function).
pub(crate) async fn ensure_year_partition(
    pool: &sqlx::PgPool,
    year: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT ensure_year_partition($1)")
        .bind(year)
        .execute(pool)
        .await?;
    Ok(())
}
