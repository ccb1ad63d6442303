//! Every SQL statement of the scheduling service. Row-level security applies
//! to each (the caller's context is set by `fitflow_db::tx`).

mod availability;
mod billing;
mod notify;
mod roster;
mod series;
mod settings;

pub(crate) use availability::*;
pub(crate) use billing::*;
pub(crate) use notify::*;
pub(crate) use roster::*;
pub(crate) use series::*;
pub(crate) use settings::*;

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

/// One page of a trainer's class types, oldest first, after `after`; with
/// `tsquery` (words already made a `tsquery` by `fitflow_api::search`),
/// only those whose name or description matches it.
pub(crate) async fn class_types(
    conn: &mut PgConnection,
    trainer_id: Uuid,
    tsquery: Option<&str>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<ClassTypeRow>, sqlx::Error> {
    let mut query = sqlx::QueryBuilder::new(format!(
        "SELECT {CLASS_TYPE_COLUMNS} FROM class_types WHERE trainer_id = "
    ));
    query.push_bind(trainer_id);
    if let Some(tsquery) = tsquery {
        // The expression of class_types_search_idx, so the index serves it.
        query
            .push(" AND class_type_search(name, description) @@ class_type_search_query(")
            .push_bind(tsquery.to_owned())
            .push(")");
    }
    if let Some((at, id)) = after {
        query
            .push(" AND (created_at, id) > (")
            .push_bind(at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    query
        .push(" ORDER BY created_at, id LIMIT ")
        .push_bind(limit);
    // A search is planned with its own words every time (an unnamed
    // statement), as tenancy's studio search: a prepared statement turns
    // generic after five runs, and a generic plan cannot weigh how many
    // class types a given set of words matches.
    query
        .build_query_as()
        .persistent(tsquery.is_none())
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
    pub late_cancel: bool,
    pub penalty_fee: Option<Decimal>,
    pub fee_waived: bool,
    pub client_attended: Option<bool>,
    pub series_id: Option<Uuid>,
    pub studio_id: Option<Uuid>,
}

const APPOINTMENT_COLUMNS: &str = "id, start_time, end_time, trainer_id, class_type_id, \
     client_id, status, location_type, location_details, client_price, cancelled_at, \
     cancel_reason, cancelled_by, version, created_at, late_cancel, penalty_fee, fee_waived, \
     client_attended, series_id, studio_id";

/// Inserts an appointment.
pub(crate) async fn insert_appointment(
    conn: &mut PgConnection,
    row: &AppointmentRow,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO appointments (id, start_time, end_time, trainer_id, class_type_id, client_id, \
         location_type, location_details, client_price, series_id, studio_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
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
    .bind(row.series_id)
    .bind(row.studio_id)
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

/// How a cancellation ends: late or not, and the fee it owes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cancellation<'a> {
    pub by: Uuid,
    pub reason: &'a str,
    pub late: bool,
    pub fee: Option<Decimal>,
}

/// Marks an appointment cancelled and frees the trainer's time.
pub(crate) async fn cancel(
    conn: &mut PgConnection,
    id: Uuid,
    start_time: DateTime<Utc>,
    cancellation: Cancellation<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE appointments SET status = 'cancelled', cancelled_at = now(), cancelled_by = $3, \
         cancel_reason = $4, late_cancel = $5, penalty_fee = $6, version = version + 1 \
         WHERE id = $1 AND start_time = $2",
    )
    .bind(id)
    .bind(start_time)
    .bind(cancellation.by)
    .bind(cancellation.reason)
    .bind(cancellation.late)
    .bind(cancellation.fee)
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

/// An appointment as a calendar export shows it: times, state and the
/// class type's name.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct CalendarEventRow {
    pub id: Uuid,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    pub status: String,
    pub version: i64,
    pub class_type_name: String,
}

/// A trainer's appointments (cancelled ones too) starting in [from, to), in
/// start order, at most `limit`.
pub(crate) async fn calendar_events(
    conn: &mut PgConnection,
    trainer_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<CalendarEventRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT a.id, a.start_time, a.end_time, a.status, a.version, \
                c.name AS class_type_name \
         FROM appointments a JOIN class_types c ON c.id = a.class_type_id \
         WHERE a.trainer_id = $1 AND a.start_time >= $2 AND a.start_time < $3 \
         ORDER BY a.start_time, a.id LIMIT $4",
    )
    .bind(trainer_id)
    .bind(from)
    .bind(to)
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

/// A participant of a group class.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct ParticipantRow {
    pub appointment_id: Uuid,
    pub client_id: Uuid,
    pub status: String,
    pub position: i64,
    pub joined_at: DateTime<Utc>,
}

const PARTICIPANT_COLUMNS: &str = "appointment_id, client_id, status, position, joined_at";

/// The client's row in the class, if any (locked for a change).
pub(crate) async fn participant(
    conn: &mut PgConnection,
    appointment_id: Uuid,
    client_id: Uuid,
) -> Result<Option<ParticipantRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PARTICIPANT_COLUMNS} FROM appointment_participants \
         WHERE appointment_id = $1 AND client_id = $2 FOR UPDATE"
    ))
    .bind(appointment_id)
    .bind(client_id)
    .fetch_optional(conn)
    .await
}

/// How many participants of the class are confirmed.
pub(crate) async fn confirmed_count(
    conn: &mut PgConnection,
    appointment_id: Uuid,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM appointment_participants \
         WHERE appointment_id = $1 AND status = 'confirmed'",
    )
    .bind(appointment_id)
    .fetch_one(conn)
    .await
}

/// Puts the client in the class with `status` at the end of the line
/// (a client who left comes back as a new join).
pub(crate) async fn join(
    conn: &mut PgConnection,
    appointment: &AppointmentRow,
    client_id: Uuid,
    status: &str,
) -> Result<ParticipantRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO appointment_participants (appointment_id, start_time, client_id, trainer_id, \
         status, position) \
         VALUES ($1, $2, $3, $4, $5, nextval('appointment_participants_position')) \
         ON CONFLICT (appointment_id, client_id) DO UPDATE \
         SET status = EXCLUDED.status, position = EXCLUDED.position, joined_at = now() \
         RETURNING {PARTICIPANT_COLUMNS}"
    ))
    .bind(appointment.id)
    .bind(appointment.start_time)
    .bind(client_id)
    .bind(appointment.trainer_id)
    .bind(status)
    .fetch_one(conn)
    .await
}

/// Sets a participant's status.
pub(crate) async fn set_participant_status(
    conn: &mut PgConnection,
    appointment_id: Uuid,
    client_id: Uuid,
    status: &str,
) -> Result<ParticipantRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE appointment_participants SET status = $3 \
         WHERE appointment_id = $1 AND client_id = $2 RETURNING {PARTICIPANT_COLUMNS}"
    ))
    .bind(appointment_id)
    .bind(client_id)
    .bind(status)
    .fetch_one(conn)
    .await
}

/// The first waitlisted participant of the class, if any.
pub(crate) async fn first_waitlisted(
    conn: &mut PgConnection,
    appointment_id: Uuid,
) -> Result<Option<ParticipantRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PARTICIPANT_COLUMNS} FROM appointment_participants \
         WHERE appointment_id = $1 AND status = 'waitlisted' ORDER BY position LIMIT 1"
    ))
    .bind(appointment_id)
    .fetch_optional(conn)
    .await
}

/// The class's participants in join order.
pub(crate) async fn participants(
    conn: &mut PgConnection,
    appointment_id: Uuid,
    show_cancelled: bool,
) -> Result<Vec<ParticipantRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PARTICIPANT_COLUMNS} FROM appointment_participants \
         WHERE appointment_id = $1 AND ($2 OR status <> 'cancelled') \
         ORDER BY position LIMIT 2000"
    ))
    .bind(appointment_id)
    .bind(show_cancelled)
    .fetch_all(conn)
    .await
}

/// The capacity of an appointment's class type.
pub(crate) async fn capacity(
    conn: &mut PgConnection,
    class_type_id: Uuid,
) -> Result<Option<(String, i32)>, sqlx::Error> {
    sqlx::query_as("SELECT category, max_participants FROM class_types WHERE id = $1")
        .bind(class_type_id)
        .fetch_optional(conn)
        .await
}

/// A stored policy: late-cancel hours, late-cancel fee, no-show fee.
pub(crate) type PolicyRow = (i32, Option<Decimal>, Option<Decimal>);

/// A studio's stored cancellation policy (anyone may read one).
pub(crate) async fn studio_policy(
    conn: &mut PgConnection,
    studio_id: Uuid,
) -> Result<Option<PolicyRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT late_cancel_hours, late_cancel_fee, no_show_fee \
         FROM studio_cancellation_policies WHERE studio_id = $1",
    )
    .bind(studio_id)
    .fetch_optional(conn)
    .await
}

/// Stores a studio's cancellation policy (the transaction admitted the
/// studio's manager: `admit_studio_manager`).
pub(crate) async fn put_studio_policy(
    conn: &mut PgConnection,
    studio_id: Uuid,
    policy: &crate::domain::Policy,
    by: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO studio_cancellation_policies \
             (studio_id, late_cancel_hours, late_cancel_fee, no_show_fee, updated_by) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (studio_id) DO UPDATE SET late_cancel_hours = EXCLUDED.late_cancel_hours, \
         late_cancel_fee = EXCLUDED.late_cancel_fee, no_show_fee = EXCLUDED.no_show_fee, \
         updated_by = EXCLUDED.updated_by, updated_at = now()",
    )
    .bind(studio_id)
    .bind(policy.late_cancel_hours)
    .bind(policy.late_cancel_fee)
    .bind(policy.no_show_fee)
    .bind(by)
    .execute(conn)
    .await?;
    Ok(())
}

/// A trainer's stored cancellation policy.
pub(crate) async fn policy(
    conn: &mut PgConnection,
    trainer_id: Uuid,
) -> Result<Option<PolicyRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT late_cancel_hours, late_cancel_fee, no_show_fee FROM cancellation_policies \
         WHERE trainer_id = $1",
    )
    .bind(trainer_id)
    .fetch_optional(conn)
    .await
}

/// Stores a trainer's cancellation policy.
pub(crate) async fn put_policy(
    conn: &mut PgConnection,
    trainer_id: Uuid,
    policy: &crate::domain::Policy,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO cancellation_policies (trainer_id, late_cancel_hours, late_cancel_fee, no_show_fee) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (trainer_id) DO UPDATE SET late_cancel_hours = EXCLUDED.late_cancel_hours, \
         late_cancel_fee = EXCLUDED.late_cancel_fee, no_show_fee = EXCLUDED.no_show_fee, \
         updated_at = now()",
    )
    .bind(trainer_id)
    .bind(policy.late_cancel_hours)
    .bind(policy.late_cancel_fee)
    .bind(policy.no_show_fee)
    .execute(conn)
    .await?;
    Ok(())
}

/// Sets an appointment's status (completed or no-show) and the fee it owes.
pub(crate) async fn close(
    conn: &mut PgConnection,
    id: Uuid,
    start_time: DateTime<Utc>,
    status: &str,
    fee: Option<Decimal>,
    client_attended: Option<bool>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE appointments SET status = $3, penalty_fee = $4, client_attended = $5, \
         version = version + 1 WHERE id = $1 AND start_time = $2",
    )
    .bind(id)
    .bind(start_time)
    .bind(status)
    .bind(fee)
    .bind(client_attended)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records whether a participant came; false when the client is not a
/// confirmed participant.
pub(crate) async fn set_attended(
    conn: &mut PgConnection,
    appointment_id: Uuid,
    client_id: Uuid,
    attended: bool,
) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query(
        "UPDATE appointment_participants SET attended = $3 \
         WHERE appointment_id = $1 AND client_id = $2 AND status = 'confirmed'",
    )
    .bind(appointment_id)
    .bind(client_id)
    .bind(attended)
    .execute(conn)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Waives an appointment's fee.
pub(crate) async fn waive(
    conn: &mut PgConnection,
    id: Uuid,
    start_time: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE appointments SET fee_waived = true, version = version + 1 \
         WHERE id = $1 AND start_time = $2",
    )
    .bind(id)
    .bind(start_time)
    .execute(conn)
    .await?;
    Ok(())
}

/// The appointments of a series, in start order.
pub(crate) async fn series(
    conn: &mut PgConnection,
    series_id: Uuid,
) -> Result<Vec<AppointmentRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {APPOINTMENT_COLUMNS} FROM appointments WHERE series_id = $1 \
         ORDER BY start_time, id LIMIT 200"
    ))
    .bind(series_id)
    .fetch_all(conn)
    .await
}

/// A client's appointments, oldest first (system role).
pub(crate) async fn appointments_of_client(
    conn: &mut PgConnection,
    client_id: Uuid,
) -> Result<Vec<AppointmentRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {APPOINTMENT_COLUMNS} FROM appointments WHERE client_id = $1 \
         ORDER BY start_time, id LIMIT 10000"
    ))
    .bind(client_id)
    .fetch_all(conn)
    .await
}

/// A client's places in group classes, oldest first (system role).
pub(crate) async fn participations_of_client(
    conn: &mut PgConnection,
    client_id: Uuid,
) -> Result<Vec<ParticipantRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PARTICIPANT_COLUMNS} FROM appointment_participants WHERE client_id = $1 \
         ORDER BY joined_at, appointment_id LIMIT 10000"
    ))
    .bind(client_id)
    .fetch_all(conn)
    .await
}

/// Whether `client_id` was recorded present at appointment `id`: its own
/// client's `client_attended`, or the participant row's `attended`. `None`
/// when the client is neither the appointment's client nor a participant.
pub(crate) async fn attendance(
    conn: &mut PgConnection,
    id: Uuid,
    client_id: Uuid,
) -> Result<Option<(AppointmentRow, bool)>, sqlx::Error> {
    let Some(row) = appointment(&mut *conn, id, false).await? else {
        return Ok(None);
    };
    if row.client_id == Some(client_id) {
        let attended = row.client_attended == Some(true);
        return Ok(Some((row, attended)));
    }
    let attended: Option<Option<bool>> = sqlx::query_scalar(
        "SELECT attended FROM appointment_participants \
         WHERE appointment_id = $1 AND client_id = $2",
    )
    .bind(id)
    .bind(client_id)
    .fetch_optional(conn)
    .await?;
    Ok(attended.map(|attended| (row, attended == Some(true))))
}
