//! The SQL of a studio's roster. Row-level security admits the studio's
//! rows only once the use case has set `fitflow.managed_studio`
//! ([`admit_studio_manager`]) after checking the caller's token.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// A session at a studio, as its roster shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct RosterSessionRow {
    pub id: Uuid,
    pub trainer_id: Uuid,
    pub class_type_id: Uuid,
    pub class_type_name: String,
    pub category: String,
    pub max_participants: i32,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    pub status: String,
    /// The client of an individual or trial session.
    pub client_id: Option<Uuid>,
    pub client_attended: Option<bool>,
}

/// A client in a group class of a roster.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct RosterParticipantRow {
    pub appointment_id: Uuid,
    pub client_id: Uuid,
    pub status: String,
    pub attended: Option<bool>,
}

/// Lets this transaction read `studio_id`'s sessions (the caller manages
/// it: checked by the use case before).
pub(crate) async fn admit_studio_manager(
    conn: &mut PgConnection,
    studio_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT set_config('fitflow.managed_studio', $1, true)")
        .bind(studio_id.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

/// One page of the studio's sessions starting in [from, to), in start
/// order, after `after`.
pub(crate) async fn roster_sessions(
    conn: &mut PgConnection,
    studio_id: Uuid,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    show_cancelled: bool,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<RosterSessionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT a.id, a.trainer_id, a.class_type_id, c.name AS class_type_name, c.category, \
                c.max_participants, a.start_time, a.end_time, a.status, a.client_id, \
                a.client_attended \
         FROM appointments a JOIN class_types c ON c.id = a.class_type_id \
         WHERE a.studio_id = $1 AND a.start_time >= $2 AND a.start_time < $3 \
           AND ($4 OR a.status <> 'cancelled') \
           AND ($5::timestamptz IS NULL OR (a.start_time, a.id) > ($5, $6)) \
         ORDER BY a.start_time, a.id LIMIT $7",
    )
    .bind(studio_id)
    .bind(from)
    .bind(to)
    .bind(show_cancelled)
    .bind(after.map(|(at, _)| at))
    .bind(after.map(|(_, id)| id).unwrap_or_default())
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// The confirmed and waitlisted participants of `appointments` (each
/// `(id, start_time)`), confirmed first, each in joining order.
pub(crate) async fn roster_participants(
    conn: &mut PgConnection,
    appointments: &[(Uuid, DateTime<Utc>)],
) -> Result<Vec<RosterParticipantRow>, sqlx::Error> {
    let ids: Vec<Uuid> = appointments.iter().map(|(id, _)| *id).collect();
    let starts: Vec<DateTime<Utc>> = appointments.iter().map(|(_, at)| *at).collect();
    sqlx::query_as(
        "SELECT p.appointment_id, p.client_id, p.status, p.attended \
         FROM appointment_participants p \
         JOIN unnest($1::uuid[], $2::timestamptz[]) AS s(id, start_time) \
           ON p.appointment_id = s.id AND p.start_time = s.start_time \
         WHERE p.status <> 'cancelled' \
         ORDER BY p.appointment_id, p.status, p.position",
    )
    .bind(ids)
    .bind(starts)
    .fetch_all(conn)
    .await
}
